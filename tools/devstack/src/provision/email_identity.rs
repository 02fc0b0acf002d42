//! An SES identity.

use super::*;

/// An SES email identity.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let Creation {
        clients,
        properties,
        ..
    } = c;
    let identity =
        text(properties, "EmailIdentity").ok_or_else(|| anyhow!("EmailIdentity missing"))?;
    created_or_exists(
        clients
            .ses
            .create_email_identity()
            .email_identity(&identity)
            .send()
            .await,
        |e| e.is_already_exists_exception(),
    )?;
    Ok(Created {
        reference: identity,
        emulated: true,
        attributes: Vec::new(),
    })
}
