// The SDK, driver and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use mysql_loader::{App, Task};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    // A Lambda function, or (with LANDFALL_TASK set) one load in an ECS task.
    landfall_ecs_task::serve_or_run_once(
        "mysql-loader",
        |env| async move { App::from_env(&env).await },
        |app, task: Task| app.handle(task),
    )
    .await
}
