// The SDK, driver and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use db_extract::{App, Event};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    landfall_runtime::serve(
        "db-extract",
        |env| async move { App::from_env(&env).await },
        |app, event: Event| app.handle(event),
    )
    .await
}
