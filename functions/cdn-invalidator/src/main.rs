// The SDK and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use aws_lambda_events::sqs::SqsEvent;
use cdn_invalidator::App;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    landfall_runtime::serve(
        "cdn-invalidator",
        |env| async move { App::from_env(&env).await },
        |app, event: SqsEvent| async move { app.handle(&event).await },
    )
    .await
}
