// The SDK and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use aws_lambda_events::sqs::SqsEvent;
use star_transform::App;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    landfall_runtime::serve(
        "star-transform",
        |env| async move { App::from_env(&env).await },
        |app, event: SqsEvent| async move { app.handle(&event).await },
    )
    .await
}
