// The SDK, driver and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use warehouse_loader::App;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    landfall_runtime::serve(
        "warehouse-loader",
        |env| async move { App::from_env(&env).await },
        // The schedule's event carries nothing the run needs.
        |app, _event: serde_json::Value| app.handle(),
    )
    .await
}
