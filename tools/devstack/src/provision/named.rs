//! Resources the devstack serves itself or needs only the names of (ECS clusters, ECR
//! repositories, alarms, policies…): their names and ARNs, for what references them.

use super::*;

/// An ECS cluster: the devstack serves ECS itself; policies name the cluster by its ARN
/// (ecs:cluster).
pub(super) async fn cluster(c: Creation<'_>) -> Result<Created> {
    let name = c.name("ClusterName");
    let arn = c.arn("ecs", &format!("cluster/{name}"));
    Ok(Created::new(name, true).with("Arn", arn))
}

/// An ECR repository: images are not needed locally (tasks run the workspace binaries);
/// the URI is.
pub(super) async fn repository(c: Creation<'_>) -> Result<Created> {
    let name = c.name("RepositoryName");
    let (account, region) = (&c.target.account, &c.target.region);
    let uri = format!("{account}.dkr.ecr.{region}.amazonaws.com/{name}");
    let arn = c.arn("ecr", &format!("repository/{name}"));
    Ok(Created::new(name, false)
        .with("RepositoryUri", uri)
        .with("Arn", arn))
}

/// Any other resource (IAM policies, alarms, OAC): nothing to emulate locally, but other
/// resources may still reference it.
pub(super) async fn placeholder(c: Creation<'_>) -> Result<Created> {
    let placeholder = default_name(c.target, c.id);
    Ok(Created::new(placeholder.clone(), false)
        .with("Arn", c.arn("local", &placeholder))
        .with("Id", placeholder.clone())
        .with("Name", placeholder))
}
