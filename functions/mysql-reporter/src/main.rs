// The SDK, driver and runtime futures nest deeper than the default layout limit.
#![recursion_limit = "256"]

use landfall_mysql_load::protocol::reporter::Request;
use mysql_reporter::App;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    landfall_runtime::serve(
        "mysql-reporter",
        |env| async move { App::from_env(&env).await },
        |app, request: Request| app.handle(request),
    )
    .await
}
