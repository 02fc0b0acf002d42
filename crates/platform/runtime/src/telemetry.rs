//! JSON logs (tracing) and CloudWatch embedded-metric-format metrics (the `metrics` facade
//! with `metrics_cloudwatch_embedded`), plus the runtime loop that flushes metrics after
//! every invocation so each invoke's numbers land in its own log line.

use crate::failure::FunctionError;
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use metrics_cloudwatch_embedded::Collector;
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;
use tracing_subscriber::EnvFilter;

/// CloudWatch namespace of every landfall metric.
pub const METRICS_NAMESPACE: &str = "landfall";

/// Handle to the process-wide metrics collector.
#[derive(Clone, Copy)]
pub struct Telemetry {
    metrics: &'static Collector,
}

impl Telemetry {
    /// Call once, first thing in `main`. Logs go to stdout as one JSON object per line
    /// (Lambda's JSON log format); `RUST_LOG` sets the filter (default `info`).
    pub fn init(function: &str) -> Telemetry {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .with_ansi(false)
            .init();
        let metrics = metrics_cloudwatch_embedded::Builder::new()
            .cloudwatch_namespace(METRICS_NAMESPACE)
            .with_dimension("function", function.to_owned())
            .init()
            .expect("the metrics recorder is installed once per process");
        Telemetry { metrics }
    }

    /// Writes this invocation's metrics as one EMF document to stdout.
    pub fn flush(&self, request_id: &str) {
        self.metrics
            .set_property("requestId", request_id.to_owned());
        if let Err(err) = self.metrics.flush(std::io::stdout()) {
            tracing::warn!(error = %err, "could not write EMF metrics");
        }
    }
}

/// The Lambda runtime loop around a handler: logs failures with their disposition and
/// flushes metrics after every invocation, whatever its outcome.
pub async fn run<E, R, H, Fut>(
    telemetry: Telemetry,
    handler: H,
) -> Result<(), lambda_runtime::Error>
where
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    H: Fn(LambdaEvent<E>) -> Fut,
    Fut: Future<Output = Result<R, FunctionError>>,
{
    lambda_runtime::run(service_fn(|event: LambdaEvent<E>| {
        let request_id = event.context.request_id.clone();
        let outcome = handler(event);
        async move {
            let outcome = outcome.await;
            if let Err(err) = &outcome {
                tracing::error!(
                    request_id,
                    error_type = err.disposition.as_str(),
                    error = %err.message,
                    "invocation failed"
                );
            }
            telemetry.flush(&request_id);
            outcome.map_err(diagnostic)
        }
    }))
    .await
}

/// The disposition becomes the error type Lambda reports (and a destination can route on).
fn diagnostic(err: FunctionError) -> Diagnostic {
    Diagnostic {
        error_type: err.disposition.as_str().to_owned(),
        error_message: err.message,
    }
}

/// The whole `main` of a function: telemetry, configuration and clients built once from
/// the environment (a failure ends the cold start with the reason logged), then the
/// runtime loop handing each event's payload to `handle`. The app lives for the process,
/// so handlers borrow it freely.
pub async fn serve<A, E, R, I, IFut, H, HFut>(
    function: &str,
    init: I,
    handle: H,
) -> Result<(), lambda_runtime::Error>
where
    A: 'static,
    I: FnOnce(crate::Env) -> IFut,
    IFut: Future<Output = Result<A, crate::ConfigError>>,
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    H: Fn(&'static A, E) -> HFut,
    HFut: Future<Output = Result<R, FunctionError>>,
{
    serve_with_deadline(function, init, |app, event, _| handle(app, event)).await
}

/// As [`serve`], for handlers whose steps check the invocation's time left.
pub async fn serve_with_deadline<A, E, R, I, IFut, H, HFut>(
    function: &str,
    init: I,
    handle: H,
) -> Result<(), lambda_runtime::Error>
where
    A: 'static,
    I: FnOnce(crate::Env) -> IFut,
    IFut: Future<Output = Result<A, crate::ConfigError>>,
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    H: Fn(&'static A, E, Invocation) -> HFut,
    HFut: Future<Output = Result<R, FunctionError>>,
{
    let telemetry = Telemetry::init(function);
    let app = init(crate::Env::from_process()).await.inspect_err(|err| {
        tracing::error!(error = %err, "cold start failed");
    })?;
    let app: &'static A = Box::leak(Box::new(app));
    run(telemetry, |event: LambdaEvent<E>| {
        let invocation = Invocation {
            request_id: event.context.request_id.clone(),
            deadline: crate::Deadline::at(event.context.deadline()),
        };
        handle(app, event.payload, invocation)
    })
    .await
}

/// What a handler may need of its invocation besides the event.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Unique per invocation: names one attempt at a piece of work.
    pub request_id: String,
    /// When the invocation ends.
    pub deadline: crate::Deadline,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_carries_disposition_as_error_type() {
        let diagnostic = diagnostic(FunctionError::retryable("throttled"));
        assert_eq!(diagnostic.error_type, "Retryable");
        assert_eq!(diagnostic.error_message, "throttled");
    }
}
