// The SDK, driver and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use lambda_runtime::LambdaEvent;
use landfall_runtime::{Env, Telemetry};
use mysql_loader::{App, Task};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let telemetry = Telemetry::init("mysql-loader");
    let app = App::from_env(&Env::from_process())
        .await
        .inspect_err(|err| {
            tracing::error!(error = %err, "cold start failed");
        })?;
    landfall_runtime::run(telemetry, |event: LambdaEvent<Task>| {
        let app = &app;
        async move { app.handle(event.payload).await }
    })
    .await
}
