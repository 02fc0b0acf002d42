//! The task side of work too long for Lambda's 15 minutes, run as an ECS (Fargate) task by
//! the same binary as the function: [`serve_or_run_once`] handles the one event in
//! `LANDFALL_TASK` and exits, or serves Lambda invocations when it is not set. The task
//! leaves a [`Report`] in S3 for its parent (`landfall-ecs-run`, which only the parent links;
//! the report itself is `landfall-ecs-report`, which both sides link).
#![warn(missing_docs)]

use landfall_aws::{AwsError, SdkResultExt};
pub use landfall_ecs_report::{Report, RESULT_VAR, TASK_VAR};
use landfall_runtime::{ConfigError, Env, FunctionError, Telemetry};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::future::Future;

/// The whole `main` of a binary that is both a Lambda function and an ECS task: with
/// `LANDFALL_TASK` set it handles that one event, writes the report and exits (0 on
/// success, 1 on failure); otherwise it serves Lambda invocations with the same handler.
pub async fn serve_or_run_once<A, E, R, I, IFut, H, HFut>(
    function: &str,
    init: I,
    handle: H,
) -> Result<(), lambda_runtime::Error>
where
    A: 'static,
    I: FnOnce(Env) -> IFut,
    IFut: Future<Output = Result<A, ConfigError>>,
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
    H: Fn(&'static A, E) -> HFut,
    HFut: Future<Output = Result<R, FunctionError>>,
{
    let env = Env::from_process();
    let Some(event) = env.optional(TASK_VAR).map(str::to_owned) else {
        return landfall_runtime::serve(function, init, handle).await;
    };
    let telemetry = Telemetry::init(function);
    let result = async {
        let app = init(env.clone())
            .await
            .map_err(|e| FunctionError::permanent(format!("configuration: {e}")))?;
        let app: &'static A = Box::leak(Box::new(app));
        let event: E = serde_json::from_str(&event).map_err(|e| {
            FunctionError::permanent(format!("{TASK_VAR} is not a valid event: {e}"))
        })?;
        let outcome = handle(app, event).await?;
        serde_json::to_value(outcome).map_err(|e| FunctionError::permanent(format!("outcome: {e}")))
    }
    .await;
    telemetry.flush("task");
    std::process::exit(finish(&env, result).await)
}

/// Logs the result, writes the report where `LANDFALL_RESULT_URI` says (when it is set),
/// and gives the process exit code.
pub async fn finish(env: &Env, result: Result<Value, FunctionError>) -> i32 {
    let code = match &result {
        Ok(_) => {
            tracing::info!("task succeeded");
            0
        }
        Err(err) => {
            tracing::error!(
                error_type = err.disposition.as_str(),
                error = err.message,
                "task failed"
            );
            1
        }
    };
    if let Some(uri) = env.optional(RESULT_VAR) {
        if let Err(err) = write_report(env, uri, &Report::from_result(result)).await {
            // The parent then treats the task as died without a report: retryable.
            tracing::error!(error = %err, uri, "could not write the task report");
            return 2;
        }
    }
    code
}

#[derive(Debug, thiserror::Error)]
enum ReportError {
    #[error("{RESULT_VAR} {0:?} is not s3://bucket/key")]
    Uri(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Aws(#[from] AwsError),
}

async fn write_report(env: &Env, uri: &str, report: &Report) -> Result<(), ReportError> {
    let (bucket, key) = uri
        .strip_prefix("s3://")
        .and_then(|rest| rest.split_once('/'))
        .ok_or_else(|| ReportError::Uri(uri.to_owned()))?;
    let aws = landfall_aws::Aws::load(env).await?;
    let body = serde_json::to_vec(report).expect("a report is plain JSON");
    aws.s3()
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/json")
        .body(body.into())
        .send()
        .await
        .or_aws("S3", "PutObject")?;
    Ok(())
}
