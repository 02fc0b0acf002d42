//! db-init: applies MySQL scripts in file-name order, each once per content (see
//! `landfall_mysql_load::scripts`). Runs as an ECS task — schema work can outlast
//! Lambda's 15 minutes — started by file-orchestrator for a `mysql/init/*.sql` file
//! dropped into landing (`LANDFALL_TASK` = `{"script": {bucket, key, version}}`), and
//! locally as a plain process over a directory (`SCRIPTS_DIR`; `make dev-up` uses it).
//!
//! Credentials: `MYSQL_SECRET_ARN`. The database the secret names is created if missing.
//! The outcome goes where `LANDFALL_RESULT_URI` says, for the orchestrator to read.

use futures::TryStreamExt;
use landfall_aws::Aws;
use landfall_ecs_task::{finish, TASK_VAR};
use landfall_landing::ObjectVersion;
use landfall_mysql_load::protocol::db_init::{Request, Response, Script};
use landfall_mysql_load::{scripts, Database, MysqlError};
use landfall_runtime::{Env, FunctionError};
use landfall_secrets::CredentialSource;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().json().with_target(false).init();
    let env = Env::from_process();
    let result = run(&env).await.and_then(|response| {
        serde_json::to_value(response)
            .map_err(|e| FunctionError::permanent(format!("the response: {e}")))
    });
    std::process::exit(finish(&env, result).await);
}

async fn run(env: &Env) -> Result<Response, FunctionError> {
    let config =
        |e: &dyn std::fmt::Display| FunctionError::permanent(format!("configuration: {e}"));
    let aws = Aws::load(env).await.map_err(|e| config(&e))?;
    let scripts = match (env.optional(TASK_VAR), env.optional("SCRIPTS_DIR")) {
        (Some(event), _) => {
            let event: Request = serde_json::from_str(event)
                .map_err(|e| FunctionError::permanent(format!("{TASK_VAR}: {e}")))?;
            vec![read_object(&aws.s3(), &event.script).await?]
        }
        (None, Some(dir)) => read_dir(dir)?,
        (None, None) => return Err(config(&"set SCRIPTS_DIR, or LANDFALL_TASK")),
    };
    let credentials =
        CredentialSource::from_env(aws.secrets(), env, "MYSQL").map_err(|e| config(&e))?;
    let database = Database::from_env(credentials, env, "MYSQL").map_err(|e| config(&e))?;
    let options = database
        .options()
        .await
        .map_err(|e| FunctionError::from_error(&e))?;
    let database_error = |e: mysql_async::Error| FunctionError::from_error(&MysqlError::from(e));
    if let Some(database) = options.db_name().map(str::to_owned) {
        // The name comes from the secret the operator wrote; quoted, backticks refused.
        if database.contains('`') {
            return Err(config(&format!(
                "database name {database:?} contains a backtick"
            )));
        }
        let mut server = Conn::new(OptsBuilder::from_opts(options.clone()).db_name(None::<String>))
            .await
            .map_err(database_error)?;
        server
            .query_drop(format!(
                "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4"
            ))
            .await
            .map_err(database_error)?;
        server.disconnect().await.map_err(database_error)?;
    }
    let mut conn = Conn::new(options).await.map_err(database_error)?;
    let mut outcomes = Vec::new();
    for (name, text) in &scripts {
        let applied = scripts::apply(&mut conn, name, text)
            .await
            .map_err(|e| FunctionError::from_error(&e))?;
        tracing::info!(script = name, outcome = ?applied, "script");
        let outcome = match applied {
            scripts::Applied::Ran { statements } => format!("applied ({statements} statements)"),
            scripts::Applied::AlreadyApplied => "already applied earlier".to_owned(),
        };
        outcomes.push(Script {
            name: name.clone(),
            outcome,
        });
    }
    conn.disconnect().await.map_err(database_error)?;
    tracing::info!(scripts = scripts.len(), "database initialised");
    Ok(Response { scripts: outcomes })
}

fn read_dir(dir: &str) -> Result<Vec<(String, String)>, FunctionError> {
    let unreadable = |e: std::io::Error| FunctionError::permanent(format!("reading {dir}: {e}"));
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok((name, std::fs::read_to_string(&p).map_err(unreadable)?))
        })
        .collect()
}

/// A script in S3, the exact version the notification named.
async fn read_object(
    s3: &aws_sdk_s3::Client,
    object: &ObjectVersion,
) -> Result<(String, String), FunctionError> {
    let fetch = |e: &dyn std::fmt::Display| {
        FunctionError::retryable(format!("s3://{}/{}: {e}", object.bucket, object.key))
    };
    let chunks: Vec<bytes::Bytes> = landfall_landing::open(s3, object)
        .await
        .map_err(|e| FunctionError::from_error(&e))?
        .try_collect()
        .await
        .map_err(|e| fetch(&e))?;
    let text = String::from_utf8(chunks.concat())
        .map_err(|e| FunctionError::permanent(format!("{}: not UTF-8 ({e})", object.key)))?;
    let name = object
        .key
        .rsplit('/')
        .next()
        .unwrap_or(&object.key)
        .to_owned();
    Ok((name, text))
}
