//! An SES identity.

use super::*;

/// An SES email identity.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let identity =
        text(c.properties, "EmailIdentity").ok_or_else(|| anyhow!("EmailIdentity missing"))?;
    let ses = &c.clients.ses;
    let created = ses
        .create_email_identity()
        .email_identity(&identity)
        .send()
        .await;
    created_or_exists(created, |e| e.is_already_exists_exception())?;
    Ok(Created::new(identity, true))
}
