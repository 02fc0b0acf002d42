// The SDK and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use orders_loader::{App, Event};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    landfall_runtime::serve_with_deadline(
        "orders-loader",
        |env| async move { App::from_env(&env).await },
        |app, event: Event, invocation| async move { app.handle(&event, &invocation).await },
    )
    .await
}
