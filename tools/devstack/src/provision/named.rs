//! Resources the devstack serves itself or needs only the names of (ECS clusters, ECR
//! repositories, alarms, policies…): their names and ARNs, for what references them.

use super::*;

/// An ECS cluster: the devstack serves ECS itself; policies name the cluster by its ARN
/// (ecs:cluster).
pub(super) async fn cluster(c: Creation<'_>) -> Result<Created> {
    let Creation {
        target,
        properties,
        id,
        ..
    } = c;
    let mut attributes: Vec<(&'static str, String)> = Vec::new();
    let name = text(properties, "ClusterName").unwrap_or_else(|| default_name(target, id));
    attributes.push((
        "Arn",
        format!(
            "arn:aws:ecs:{}:{}:cluster/{name}",
            target.region, target.account
        ),
    ));
    Ok(Created {
        reference: name,
        emulated: true,
        attributes,
    })
}

/// An ECR repository: images are not needed locally (tasks run the workspace binaries);
/// the URI is.
pub(super) async fn repository(c: Creation<'_>) -> Result<Created> {
    let Creation {
        target,
        properties,
        id,
        ..
    } = c;
    let mut attributes: Vec<(&'static str, String)> = Vec::new();
    let name = text(properties, "RepositoryName").unwrap_or_else(|| default_name(target, id));
    attributes.push((
        "RepositoryUri",
        format!(
            "{}.dkr.ecr.{}.amazonaws.com/{name}",
            target.account, target.region
        ),
    ));
    attributes.push((
        "Arn",
        format!(
            "arn:aws:ecr:{}:{}:repository/{name}",
            target.region, target.account
        ),
    ));
    Ok(Created {
        reference: name,
        emulated: false,
        attributes,
    })
}

/// Any other resource (IAM policies, alarms, OAC): nothing to emulate locally, but other
/// resources may still reference it.
pub(super) async fn placeholder(c: Creation<'_>) -> Result<Created> {
    let Creation { target, id, .. } = c;
    let mut attributes: Vec<(&'static str, String)> = Vec::new();
    let placeholder = default_name(target, id);
    attributes.push((
        "Arn",
        format!(
            "arn:aws:local:{}:{}:{}",
            target.region, target.account, placeholder
        ),
    ));
    attributes.push(("Id", placeholder.clone()));
    attributes.push(("Name", placeholder.clone()));
    Ok(Created {
        reference: placeholder,
        emulated: false,
        attributes,
    })
}
