//! The local stack: template.yaml provisioned into moto, the real function binaries run
//! behind a Lambda Runtime API, and the event wiring moto lacks (SQS event source
//! mappings, schedules on demand). `make dev-up` drives it through the `devstack` binary;
//! tests use it as a library.

pub mod host;
pub mod iam;
pub mod logs;
pub mod moto;
mod process;
pub mod provision;
pub mod pump;
pub mod sample;
pub mod tasks;
pub mod template;

pub use host::{ColdStart, Host, Invoked};
pub use provision::{provision, Stack, Target};
pub use pump::{deliver_keeping, deliver_once, Delivery};
pub use template::Template;

use std::collections::BTreeMap;

/// Credentials and endpoint every client and function gets on the local stack.
pub fn local_aws_env(endpoint: &str, region: &str) -> BTreeMap<String, String> {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_REGION", region),
        ("AWS_DEFAULT_REGION", region),
        // The admin key (provisioning, tests, the pump), never checked by the local IAM;
        // functions and tasks override it with their role's session. Not secrets.
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// An SDK configuration pointed at moto.
pub async fn local_sdk_config(endpoint: &str, region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(region.to_owned()))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            "testing", "testing", None, None, "local",
        ))
        .load()
        .await
}
