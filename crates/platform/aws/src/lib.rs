//! AWS SDK configuration for every landfall function and tool.
//!
//! The SDK already honours `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`; this crate
//! adds what must also change when an endpoint is set (path-style S3 addressing, since
//! moto has no virtual-host DNS) and makes retries and timeouts explicit instead of implied.
#![warn(missing_docs)]

use aws_config::{retry::RetryConfig, timeout::TimeoutConfig, BehaviorVersion, SdkConfig};
use landfall_env::{ConfigError, Env};
use std::time::Duration;

mod classify;
#[cfg(feature = "dynamodb")]
pub mod dynamodb_batch;
mod error;
#[cfg(feature = "lambda")]
pub mod invoke;
#[cfg(feature = "ssm")]
pub mod parameters;
#[cfg(feature = "s3")]
pub mod s3_stream;
pub use classify::error_code;
pub use error::{AwsError, SdkResultExt};

/// Attempts per SDK call (first try included) unless `AWS_MAX_ATTEMPTS` says otherwise.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;

/// A loaded SDK configuration and the facts needed to build clients from it.
#[derive(Clone, Debug)]
pub struct Aws {
    sdk: SdkConfig,
    #[cfg_attr(not(feature = "s3"), allow(dead_code))]
    custom_s3_endpoint: bool,
}

impl Aws {
    /// Loads credentials, region and endpoints the standard way. Fails with a named
    /// variable when no region is configured (the SDK would otherwise fail per call).
    pub async fn load(env: &Env) -> Result<Aws, ConfigError> {
        if !env.is_set("AWS_REGION") && !env.is_set("AWS_DEFAULT_REGION") {
            return Err(ConfigError::Missing {
                name: "AWS_REGION".into(),
            });
        }
        let max_attempts = env.parse_or("AWS_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)?;
        if max_attempts == 0 {
            return Err(ConfigError::invalid(
                "AWS_MAX_ATTEMPTS",
                "0",
                "must be at least 1",
            ));
        }
        // One attempt of an ordinary SDK call; a call that may rightly take longer (a
        // synchronous invoke) sets its own.
        let attempt_timeout = env.parse_or("AWS_ATTEMPT_TIMEOUT_SECONDS", 60)?;
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(max_attempts)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(5)),
            )
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .operation_attempt_timeout(Duration::from_secs(attempt_timeout))
                    .build(),
            )
            .load()
            .await;
        Ok(Aws {
            sdk,
            custom_s3_endpoint: env.is_set("AWS_ENDPOINT_URL") || env.is_set("AWS_ENDPOINT_URL_S3"),
        })
    }

    /// The SDK configuration every client is built from.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    /// Path-style addressing whenever the S3 endpoint is overridden (moto, MinIO).
    #[cfg(feature = "s3")]
    pub fn s3(&self) -> aws_sdk_s3::Client {
        let config = aws_sdk_s3::config::Builder::from(&self.sdk)
            .force_path_style(self.custom_s3_endpoint)
            .build();
        aws_sdk_s3::Client::from_conf(config)
    }

    /// An SQS client.
    #[cfg(feature = "sqs")]
    pub fn sqs(&self) -> aws_sdk_sqs::Client {
        aws_sdk_sqs::Client::new(&self.sdk)
    }

    /// A CloudFront client.
    #[cfg(feature = "cloudfront")]
    pub fn cloudfront(&self) -> aws_sdk_cloudfront::Client {
        aws_sdk_cloudfront::Client::new(&self.sdk)
    }

    /// A Secrets Manager client.
    #[cfg(feature = "secretsmanager")]
    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk)
    }

    /// An SES v2 client.
    #[cfg(feature = "sesv2")]
    pub fn ses(&self) -> aws_sdk_sesv2::Client {
        aws_sdk_sesv2::Client::new(&self.sdk)
    }

    /// An ECS client.
    #[cfg(feature = "ecs")]
    pub fn ecs(&self) -> aws_sdk_ecs::Client {
        aws_sdk_ecs::Client::new(&self.sdk)
    }

    /// An SSM client.
    #[cfg(feature = "ssm")]
    pub fn ssm(&self) -> aws_sdk_ssm::Client {
        aws_sdk_ssm::Client::new(&self.sdk)
    }

    /// A DynamoDB client.
    #[cfg(feature = "dynamodb")]
    pub fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk)
    }

    /// Data API calls submit and describe statements; a submission the SDK retries carries
    /// the same ClientToken, so it cannot start a statement twice.
    #[cfg(feature = "redshiftdata")]
    pub fn redshift_data(&self) -> aws_sdk_redshiftdata::Client {
        aws_sdk_redshiftdata::Client::new(&self.sdk)
    }

    /// A Glue client.
    #[cfg(feature = "glue")]
    pub fn glue(&self) -> aws_sdk_glue::Client {
        aws_sdk_glue::Client::new(&self.sdk)
    }

    /// Invoking another function is not idempotent: an invoke that failed after it was
    /// sent (a timeout, a 5xx, a dropped connection) may still be running, and the SDK's
    /// retry would start it again beside itself. One attempt; `invoke::invoke` sends
    /// again only what Lambda says it never started.
    #[cfg(feature = "lambda")]
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        let mut config = aws_sdk_lambda::config::Builder::from(&self.sdk)
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(1));
        if let Some(client) = keepalive_http_client() {
            config = config.http_client(client);
        }
        aws_sdk_lambda::Client::from_conf(config.build())
    }
}

/// How often an idle connection of the Lambda client is probed.
#[cfg(feature = "lambda")]
pub const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// A synchronous invoke waits up to 15 minutes on one connection that carries nothing
/// meanwhile; NAT gateways and other middleboxes drop a TCP flow idle for 350 s (Knowledge
/// Center, "lambda-vpc-timeout"), and the caller would then wait out its whole timeout. The
/// Lambda client's sockets send TCP keep-alives, as AWS's own .NET SDK does for Lambda.
/// None (the SDK's default client) only if the connection pool cannot be built.
#[cfg(feature = "lambda")]
fn keepalive_http_client() -> Option<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    use aws_smithy_http_client::pool;
    use aws_smithy_http_client::tls;
    use aws_smithy_runtime_api::shared::IntoShared;
    let pool = pool::Builder::default()
        .tcp_keepalive(TCP_KEEPALIVE)
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .build_https()
        .map_err(|e| tracing::warn!(error = %e, "no keep-alive connection pool for Lambda"))
        .ok()?;
    let client = pool::Client::new(&pool)
        .map_err(|e| tracing::warn!(error = %e, "no keep-alive client for Lambda"))
        .ok()?;
    Some(client.into_shared())
}

#[cfg(test)]
mod tests {
    /// An invoke waiting on its answer holds an idle connection: the kernel must be
    /// probing it (ss shows the socket's keepalive timer), or a NAT would drop it silently.
    #[cfg(feature = "lambda")]
    #[tokio::test]
    async fn the_lambda_clients_idle_connections_send_tcp_keepalives() {
        use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("eu-west-2"))
            .credentials_provider(Credentials::new("AKID", "secret", None, None, "test"))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .http_client(keepalive_http_client().expect("a keep-alive client"))
            .build();
        let client = aws_sdk_lambda::Client::from_conf(config);
        let call = tokio::spawn(async move { client.invoke().function_name("slow").send().await });
        // Accepted and never answered: the invoke waits, as on a 15-minute callee.
        let (_held, _) = tokio::select! {
            accepted = listener.accept() => accepted.unwrap(),
            answered = call => panic!("the invoke ended without waiting: {answered:?}"),
        };
        let sockets = std::process::Command::new("ss")
            .args([
                "-tno",
                "state",
                "established",
                &format!("( dport = :{port} )"),
            ])
            .output()
            .expect("ss (iproute2) runs");
        let listed = String::from_utf8_lossy(&sockets.stdout);
        assert!(listed.contains("timer:(keepalive"), "{listed}");
    }

    use super::*;

    #[tokio::test]
    async fn missing_region_fails_with_its_name() {
        let err = Aws::load(&Env::from_pairs([(
            "AWS_ENDPOINT_URL",
            "http://127.0.0.1:1",
        )]))
        .await
        .unwrap_err();
        assert_eq!(
            err,
            ConfigError::Missing {
                name: "AWS_REGION".into()
            }
        );
    }

    #[tokio::test]
    async fn zero_attempts_is_rejected() {
        let env = Env::from_pairs([("AWS_REGION", "eu-west-2"), ("AWS_MAX_ATTEMPTS", "0")]);
        assert!(matches!(
            Aws::load(&env).await,
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[tokio::test]
    async fn endpoint_override_switches_s3_to_path_style() {
        let env = Env::from_pairs([
            ("AWS_REGION", "eu-west-2"),
            ("AWS_ENDPOINT_URL", "http://127.0.0.1:5000"),
        ]);
        let aws = Aws::load(&env).await.unwrap();
        assert!(aws.custom_s3_endpoint);
        let env = Env::from_pairs([("AWS_REGION", "eu-west-2")]);
        assert!(!Aws::load(&env).await.unwrap().custom_s3_endpoint);
    }
}
