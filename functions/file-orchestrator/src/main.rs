// The SDK, driver and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use aws_lambda_events::sqs::SqsEvent;
use file_orchestrator::App;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    landfall_runtime::serve_with_deadline(
        "file-orchestrator",
        |env| async move { App::from_env(&env).await },
        |app, event: SqsEvent, invocation| async move { app.handle(&event, &invocation).await },
    )
    .await
}
