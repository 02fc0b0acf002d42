// The SDK and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use aws_lambda_events::sqs::SqsEvent;
use file_orchestrator::App;
use lambda_runtime::LambdaEvent;
use landfall_runtime::{Env, Telemetry};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let telemetry = Telemetry::init("file-orchestrator");
    let app = App::from_env(&Env::from_process())
        .await
        .inspect_err(|err| {
            tracing::error!(error = %err, "cold start failed");
        })?;
    landfall_runtime::run(telemetry, |event: LambdaEvent<SqsEvent>| {
        let app = &app;
        async move { app.handle(&event.payload).await }
    })
    .await
}
