//! An IAM role, registered with the local IAM that checks every request made as it.

use super::*;

/// An IAM role.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let Creation {
        clients,
        target,
        stack,
        properties,
        id,
        ..
    } = c;
    let mut attributes: Vec<(&'static str, String)> = Vec::new();
    let name = text(properties, "RoleName").unwrap_or_else(|| default_name(target, id));
    let policies = items(properties, "/Policies")
        .filter_map(|p| Some((text(p, "PolicyName")?, p.get("PolicyDocument")?.clone())))
        .collect();
    let managed: Vec<String> = items(properties, "/ManagedPolicyArns")
        .map(scalar_text)
        .collect();
    let session = create_role(&clients.moto, &name, id, &policies, &managed).await?;
    attributes.push(("Arn", session.role_arn.clone()));
    stack.roles.insert(session.role_arn.clone(), session);
    Ok(Created {
        reference: name,
        emulated: true,
        attributes,
    })
}
