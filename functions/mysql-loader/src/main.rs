// The SDK, driver and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use landfall_mysql_load::protocol::loader::Request;
use mysql_loader::App;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // A Lambda function, or (with LANDFALL_TASK set) one load in an ECS task.
    landfall_ecs_task::serve_or_run_once(
        "mysql-loader",
        |env| async move { App::from_env(&env).await },
        |app, request: Request| app.handle(request),
    )
    .await
}
