// The SDK, driver and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use mysql_loader::{App, Task};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    landfall_runtime::serve(
        "mysql-loader",
        |env| async move { App::from_env(&env).await },
        |app, task: Task| app.handle(task),
    )
    .await
}
