//! warehouse-loader: each scheduled run loads every ready manifest of the processed bucket
//! into the warehouse (`landfall_totesys_warehouse`: PostgreSQL, or Redshift when
//! `WAREHOUSE_ENGINE=redshift`) and reports the pipeline lag.

use landfall_aws::parameters::JsonParameters;
use landfall_aws::Aws;
use landfall_redshift_data::Warehouse;
use landfall_runtime::{ConfigError, Env, FunctionError};
use landfall_secrets::CredentialSource;
use landfall_totesys_warehouse::redshift::Redshift;
use landfall_totesys_warehouse::{Engine, PgSslMode, Settings, WarehouseLoader};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub struct App {
    loader: WarehouseLoader,
}

impl App {
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let aws = Aws::load(env).await?;
        let settings = Settings {
            processed_bucket: env.required("PROCESSED_BUCKET")?.to_owned(),
            migrate: env.parse_or("MIGRATE", true)?,
            time_budget: Duration::from_secs(env.parse_or("TIME_BUDGET_SECONDS", 600)?),
        };
        let engine = match env.optional("WAREHOUSE_ENGINE").unwrap_or("postgres") {
            "postgres" => Engine::Postgres {
                credentials: CredentialSource::from_env(aws.secrets(), env, "WAREHOUSE")?,
                ssl_mode: env.parse_or("WAREHOUSE_SSL_MODE", PgSslMode::Prefer)?,
            },
            "redshift" => Engine::Redshift(Redshift {
                warehouse: Warehouse::from_env(env, aws.redshift_data())?,
                copy_role_arn: env.required("COPY_ROLE_ARN")?.to_owned(),
                bucket: settings.processed_bucket.clone(),
                statement_budget: Duration::from_secs(
                    env.parse_or("STATEMENT_BUDGET_SECONDS", 300)?,
                ),
            }),
            other => {
                return Err(ConfigError::invalid(
                    "WAREHOUSE_ENGINE",
                    other,
                    "postgres or redshift",
                ))
            }
        };
        let extract_state = JsonParameters::new(aws.ssm(), env.required("EXTRACT_STATE_PREFIX")?);
        Ok(App {
            loader: WarehouseLoader::new(aws.s3(), engine, extract_state, settings),
        })
    }

    pub async fn handle(&self) -> Result<Value, FunctionError> {
        let started = Instant::now();
        let report = self
            .loader
            .run()
            .await
            .map_err(|err| FunctionError::from_error(&err))?;
        let rows: u64 = report
            .loaded
            .iter()
            .flat_map(|m| m.rows.iter().map(|(_, n)| n))
            .sum();
        let lag = report.freshness.as_ref().and_then(|f| f.lag_seconds());
        tracing::info!(
            busy = report.busy,
            loaded = report.loaded.len(),
            rows,
            already_loaded = report.already_loaded,
            waiting = report.waiting.len(),
            rejected = report.rejected.len(),
            deferred = report.deferred,
            lag_seconds = lag,
            seconds = started.elapsed().as_secs_f64(),
            "run finished"
        );
        Ok(json!(report))
    }
}
