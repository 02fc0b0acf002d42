//! Synchronous invocation of another landfall function, with its failure classification
//! carried across: the callee's `Diagnostic` error type ("Retryable"/"Permanent") becomes
//! the caller's disposition.
//!
//! A synchronous invoke is not idempotent while it runs: a caller that gives up, or an SDK
//! that retries, leaves the first run going and may start a second one beside it. So the
//! caller waits as long as the callee may run (its function timeout, plus a margin for its
//! cold start and the network) unless its own deadline comes first, and the only failures
//! tried again are those that say the function never started (throttling).

use crate::{AwsError, SdkResultExt};
use aws_config::timeout::TimeoutConfig;
use backon::{ExponentialBuilder, Retryable};
use landfall_env::{ConfigError, Env};
use landfall_failure::{Classify, Deadline, Disposition, FunctionError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

/// Added to the callee's timeout: its cold start and the round trip.
pub const MARGIN: Duration = Duration::from_secs(15);
/// Less time than this left to wait, and the invoke is not sent.
const MIN_WAIT: Duration = Duration::from_secs(1);

/// Answers that mean Lambda did not start the function: safe to send again.
const NOT_STARTED: &[&str] = &[
    "TooManyRequestsException",
    "EC2ThrottledException",
    "ResourceNotReadyException",
];

/// Another function and the longest one invocation of it may run (its `Timeout`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callee {
    /// The function's name or ARN.
    pub function: String,
    /// The function's configured timeout: how long an answer may take.
    pub timeout: Duration,
}

impl Callee {
    /// The function named by `name_var`, whose timeout in seconds `timeout_var` gives
    /// (template.yaml sets both from the callee's definition).
    pub fn from_env(env: &Env, name_var: &str, timeout_var: &str) -> Result<Callee, ConfigError> {
        Ok(Callee {
            function: env.required(name_var)?.to_owned(),
            timeout: Duration::from_secs(env.parse_or(timeout_var, 900)?),
        })
    }
}

/// Why a call to another function gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// Too little of the caller's time is left to wait for the callee.
    #[error("not invoking {function}: this invocation has {left} s left (keeping {reserve} s to report); the retry resumes")]
    NoTimeLeft {
        /// The callee.
        function: String,
        /// Seconds the caller has left.
        left: u64,
        /// Seconds the caller keeps for itself after the call.
        reserve: u64,
    },
    /// The callee still ran when the caller had to stop waiting.
    #[error("{function} was still running when this invocation had to stop waiting ({waited} s; its own time is nearly up); the retry resumes")]
    StoppedWaiting {
        /// The callee.
        function: String,
        /// Seconds waited.
        waited: u64,
    },
    /// No answer within the callee's timeout and a margin.
    #[error("{function} gave no answer within {waited} s, its timeout and a margin")]
    NoAnswer {
        /// The callee.
        function: String,
        /// Seconds waited.
        waited: u64,
    },
    /// The Invoke call failed.
    #[error("invoking {function}")]
    Aws {
        /// The callee.
        function: String,
        /// The Lambda API's error.
        #[source]
        source: AwsError,
    },
    /// The callee ran and failed; its own classification comes across.
    #[error("{function}: {message}")]
    Failed {
        /// The callee.
        function: String,
        /// How the callee classified its failure.
        disposition: Disposition,
        /// The callee's error message.
        message: String,
    },
    /// The callee answered with something its protocol type does not describe: a
    /// renamed or missing field is an error, never a default.
    #[error("{function} answered {answer}, which is not its {expected}")]
    Answer {
        /// The callee.
        function: String,
        /// The Rust type the answer should have been.
        expected: &'static str,
        /// The answer as received (its first 500 characters).
        answer: String,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
}

impl Classify for InvokeError {
    fn disposition(&self) -> Disposition {
        match self {
            InvokeError::Aws { source, .. } => source.disposition(),
            InvokeError::Failed { disposition, .. } => *disposition,
            // Waiting again can help; an answer of the wrong shape is a deployment in
            // progress (caller and callee at different versions) until proven otherwise.
            InvokeError::NoTimeLeft { .. }
            | InvokeError::StoppedWaiting { .. }
            | InvokeError::NoAnswer { .. }
            | InvokeError::Answer { .. } => Disposition::Retryable,
        }
    }
}

impl From<InvokeError> for FunctionError {
    fn from(err: InvokeError) -> Self {
        FunctionError::from_error(&err)
    }
}

/// Invokes `callee` with `request` and decodes its answer as `Resp`, waiting for it as long
/// as the callee may run, but never past what `deadline` leaves usable. Caller and callee
/// name the same two types (each callee's protocol module).
pub async fn invoke<Req, Resp>(
    lambda: &aws_sdk_lambda::Client,
    callee: &Callee,
    request: &Req,
    deadline: &Deadline,
) -> Result<Resp, InvokeError>
where
    Req: Serialize,
    Resp: DeserializeOwned,
{
    let function = callee.function.as_str();
    let full_wait = callee.timeout + MARGIN;
    let wait = full_wait.min(deadline.usable());
    if wait < MIN_WAIT {
        // Sent now, it would run on with nobody waiting for its answer.
        return Err(InvokeError::NoTimeLeft {
            function: function.to_owned(),
            left: deadline.remaining().as_secs(),
            reserve: landfall_failure::deadline::RESERVE.as_secs(),
        });
    }
    let payload = serde_json::to_vec(request).expect("a request is plain data");
    let body = aws_sdk_lambda::primitives::Blob::new(payload);
    let send = || async {
        lambda
            .invoke()
            .function_name(function)
            .payload(body.clone())
            .customize()
            .config_override(
                aws_sdk_lambda::config::Builder::default().timeout_config(
                    TimeoutConfig::builder()
                        .operation_attempt_timeout(wait)
                        .operation_timeout(wait)
                        .build(),
                ),
            )
            .send()
            .await
    };
    let out = send
        .retry(
            ExponentialBuilder::default()
                .with_min_delay(Duration::from_millis(500))
                .with_max_delay(Duration::from_secs(8))
                .with_max_times(4)
                .with_jitter(),
        )
        .when(|err| crate::error_code(err).is_some_and(|code| NOT_STARTED.contains(&code)))
        .await
        .map_err(|err| match err {
            aws_sdk_lambda::error::SdkError::TimeoutError(_) if wait < full_wait => {
                InvokeError::StoppedWaiting {
                    function: function.to_owned(),
                    waited: wait.as_secs(),
                }
            }
            aws_sdk_lambda::error::SdkError::TimeoutError(_) => InvokeError::NoAnswer {
                function: function.to_owned(),
                waited: wait.as_secs(),
            },
            err => InvokeError::Aws {
                function: function.to_owned(),
                source: AwsError::new("Lambda", "Invoke", err),
            },
        })?;
    let answer = out.payload().map(|b| b.as_ref()).unwrap_or_default();
    if out.function_error().is_some() {
        let body: Value = serde_json::from_slice(answer).unwrap_or(Value::Null);
        let disposition = match body.get("errorType").and_then(Value::as_str) {
            Some("Permanent") => Disposition::Permanent,
            // Timeouts, crashes and our own retryable errors may pass next time.
            _ => Disposition::Retryable,
        };
        return Err(InvokeError::Failed {
            function: function.to_owned(),
            disposition,
            message: body
                .get("errorMessage")
                .and_then(Value::as_str)
                .unwrap_or("no message")
                .to_owned(),
        });
    }
    serde_json::from_slice(answer).map_err(|source| InvokeError::Answer {
        function: function.to_owned(),
        expected: std::any::type_name::<Resp>(),
        answer: String::from_utf8_lossy(answer).chars().take(500).collect(),
        source,
    })
}

/// Queues `event` for `function` (an asynchronous invoke: Lambda runs it, retries it on
/// failure, and nothing waits for the answer).
pub async fn invoke_async<Req: Serialize>(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    event: &Req,
) -> Result<(), AwsError> {
    let payload = serde_json::to_vec(event).expect("an event is plain data");
    lambda
        .invoke()
        .function_name(function)
        .invocation_type(aws_sdk_lambda::types::InvocationType::Event)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .or_aws("Lambda", "Invoke")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Instant, SystemTime};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A Lambda endpoint that answers every request with `answer` after `delay`, counting them.
    async fn endpoint(
        answers: Vec<(u16, &'static str, &'static str)>,
        delay: Duration,
    ) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                let (status, error_type, body) = answers[n.min(answers.len() - 1)];
                tokio::spawn(async move {
                    let mut request = vec![0; 64 * 1024];
                    let _ = socket.read(&mut request).await;
                    tokio::time::sleep(delay).await;
                    let response = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\nx-amzn-errortype: {error_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(response.as_bytes()).await;
                });
            }
        });
        (url, requests)
    }

    /// The client `Aws::lambda` builds, over SDK settings like `Aws::load`'s with a
    /// one-second attempt timeout.
    async fn client(url: &str) -> aws_sdk_lambda::Client {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-2"))
            .endpoint_url(url)
            .credentials_provider(aws_sdk_lambda::config::Credentials::for_tests())
            .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(4))
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_attempt_timeout(Duration::from_secs(1))
                    .build(),
            )
            .load()
            .await;
        crate::Aws {
            sdk,
            custom_s3_endpoint: true,
        }
        .lambda()
    }

    fn callee(timeout_secs: u64) -> Callee {
        Callee {
            function: "mysql-loader".into(),
            timeout: Duration::from_secs(timeout_secs),
        }
    }

    fn far() -> Deadline {
        Deadline::at(SystemTime::now() + Duration::from_secs(900))
    }

    #[tokio::test]
    async fn waits_for_the_callee_past_the_sdk_attempt_timeout() {
        let (url, requests) = endpoint(
            vec![(200, "", r#"{"rows":3}"#)],
            Duration::from_millis(2500),
        )
        .await;
        let answer = invoke::<_, Value>(&client(&url).await, &callee(900), &Value::Null, &far())
            .await
            .unwrap();
        assert_eq!(answer["rows"], 3);
        assert_eq!(requests.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_failure_after_sending_is_never_sent_again() {
        let (url, requests) = endpoint(
            vec![(500, "ServiceException", r#"{"message":"boom"}"#)],
            Duration::ZERO,
        )
        .await;
        let err = invoke::<_, Value>(&client(&url).await, &callee(900), &Value::Null, &far())
            .await
            .unwrap_err();
        assert_eq!(err.disposition(), Disposition::Retryable, "{err}");
        assert_eq!(requests.load(Ordering::SeqCst), 1, "one request only");
    }

    #[tokio::test]
    async fn throttling_is_sent_again_because_nothing_ran() {
        let throttled = (
            429,
            "TooManyRequestsException",
            r#"{"message":"Rate exceeded"}"#,
        );
        let (url, requests) =
            endpoint(vec![throttled, throttled, (200, "", "{}")], Duration::ZERO).await;
        invoke::<_, Value>(&client(&url).await, &callee(900), &Value::Null, &far())
            .await
            .unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), 3);
    }

    /// A new account's 10 concurrent executions: the callee stays throttled past the retries.
    /// Nothing ran, so the file goes back to its queue to wait (retryable), never to the DLQ
    /// as a permanent failure.
    #[tokio::test]
    async fn throttling_that_lasts_hands_the_work_back_to_its_queue() {
        let throttled = (
            429,
            "TooManyRequestsException",
            r#"{"message":"Rate exceeded","Reason":"ReservedFunctionConcurrentInvocationLimitExceeded"}"#,
        );
        let (url, requests) = endpoint(vec![throttled; 8], Duration::ZERO).await;
        let err = invoke::<_, Value>(&client(&url).await, &callee(900), &Value::Null, &far())
            .await
            .unwrap_err();
        assert_eq!(err.disposition(), Disposition::Retryable, "{err}");
        assert_eq!(
            requests.load(Ordering::SeqCst),
            5,
            "the first try and four more"
        );
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Outcome {
        rows: u64,
    }

    #[tokio::test]
    async fn an_answer_without_a_field_of_its_type_is_an_error_naming_both() {
        let (url, _) = endpoint(vec![(200, "", r#"{"row":3}"#)], Duration::ZERO).await;
        let err = invoke::<_, Outcome>(&client(&url).await, &callee(900), &Value::Null, &far())
            .await
            .unwrap_err();
        let text = landfall_failure::error_chain(&err);
        assert!(
            text.contains("mysql-loader answered {\"row\":3}")
                && text.contains("missing field `rows`"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn nothing_is_sent_when_no_time_is_left_to_wait() {
        let (url, requests) = endpoint(vec![(200, "", "{}")], Duration::ZERO).await;
        let deadline = Deadline::at(SystemTime::now() + landfall_failure::deadline::RESERVE);
        let err = invoke::<_, Value>(&client(&url).await, &callee(900), &Value::Null, &deadline)
            .await
            .unwrap_err();
        assert!(
            err.to_string().starts_with("not invoking mysql-loader"),
            "{err}"
        );
        assert_eq!(requests.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn the_wait_ends_before_the_callers_own_deadline() {
        let (url, _) = endpoint(vec![(200, "", "{}")], Duration::from_secs(30)).await;
        let deadline = Deadline::at(
            SystemTime::now() + landfall_failure::deadline::RESERVE + Duration::from_secs(2),
        );
        let started = Instant::now();
        let err = invoke::<_, Value>(&client(&url).await, &callee(900), &Value::Null, &deadline)
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.disposition(), Disposition::Retryable);
        assert!(
            err.to_string()
                .contains("was still running when this invocation had to stop"),
            "{err}"
        );
    }
}
