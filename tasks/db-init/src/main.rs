//! db-init: applies MySQL scripts in file-name order, each once per content (see
//! `landfall_mysql_load::scripts`). Runs as an ECS task — schema work can outlast
//! Lambda's 15 minutes — and locally as a plain process (`make dev-up` uses it).
//!
//! Scripts come from `SCRIPTS_DIR` (a directory of `.sql` files) or from one object,
//! `SCRIPT_BUCKET` + `SCRIPT_KEY` (a `mysql/init/*.sql` file dropped into landing).
//! Credentials: `MYSQL_SECRET_ARN`. The database the secret names is created if missing.

use anyhow::{Context, Result};
use landfall_aws::Aws;
use landfall_mysql_load::{connect_options, scripts};
use landfall_runtime::Env;
use landfall_secrets::CredentialSource;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt().json().with_target(false).init();
    if let Err(err) = run(&Env::from_process()).await {
        tracing::error!(error = format!("{err:#}"), "db-init failed");
        std::process::exit(1);
    }
}

async fn run(env: &Env) -> Result<()> {
    let aws = Aws::load(env).await?;
    let credentials = CredentialSource::new(aws.secrets(), env.required("MYSQL_SECRET_ARN")?)
        .get()
        .await?;
    let options = connect_options(&credentials, None);
    if let Some(database) = options.db_name().map(str::to_owned) {
        let mut server =
            Conn::new(OptsBuilder::from_opts(options.clone()).db_name(None::<String>)).await?;
        // The name comes from the secret the operator wrote; quoted, backticks refused.
        anyhow::ensure!(
            !database.contains('`'),
            "database name {database:?} contains a backtick"
        );
        server
            .query_drop(format!(
                "CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4"
            ))
            .await?;
        server.disconnect().await?;
    }
    let mut conn = Conn::new(options).await.context("connecting to MySQL")?;

    let scripts: Vec<(String, String)> =
        match (env.optional("SCRIPTS_DIR"), env.optional("SCRIPT_BUCKET")) {
            (Some(dir), _) => {
                let mut paths: Vec<_> = std::fs::read_dir(dir)
                    .with_context(|| format!("reading {dir}"))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "sql"))
                    .collect();
                paths.sort();
                paths
                    .into_iter()
                    .map(|p| {
                        Ok((
                            p.file_name()
                                .unwrap_or_default()
                                .to_string_lossy()
                                .into_owned(),
                            std::fs::read_to_string(&p)?,
                        ))
                    })
                    .collect::<Result<_>>()?
            }
            (None, Some(bucket)) => {
                let key = env.required("SCRIPT_KEY")?;
                let object = aws.s3().get_object().bucket(bucket).key(key).send().await?;
                let bytes = object.body.collect().await?.into_bytes();
                let name = key.rsplit('/').next().unwrap_or(key).to_owned();
                vec![(
                    name,
                    String::from_utf8(bytes.to_vec())
                        .with_context(|| format!("{key} is not UTF-8"))?,
                )]
            }
            (None, None) => anyhow::bail!("set SCRIPTS_DIR, or SCRIPT_BUCKET and SCRIPT_KEY"),
        };
    for (name, text) in &scripts {
        let applied = scripts::apply(&mut conn, name, text)
            .await
            .with_context(|| format!("applying {name}"))?;
        tracing::info!(script = name, outcome = ?applied, "script");
    }
    conn.disconnect().await?;
    tracing::info!(scripts = scripts.len(), "database initialised");
    Ok(())
}
