//! An IAM role, registered with the local IAM that checks every request made as it.

use super::*;

/// An IAM role.
pub(super) async fn create(c: Creation<'_>) -> Result<Created> {
    let name = c.name("RoleName");
    let policies = items(c.properties, "/Policies")
        .filter_map(|p| Some((text(p, "PolicyName")?, p.get("PolicyDocument")?.clone())))
        .collect();
    let managed: Vec<String> = items(c.properties, "/ManagedPolicyArns")
        .map(scalar_text)
        .collect();
    let session = create_role(&c.clients.moto, &name, c.id, &policies, &managed).await?;
    let arn = session.role_arn.clone();
    c.stack.roles.insert(arn.clone(), session);
    Ok(Created::new(name, true).with("Arn", arn))
}
