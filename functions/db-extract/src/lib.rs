//! db-extract: the scheduled dispatcher and the per-table worker in one function (the
//! original design's "recursive Lambda"). The schedule invokes it with `{"mode":"dispatch"}`;
//! it invokes itself asynchronously once per configured table with `{"mode":"extract",
//! "table", "run"}` — a table name and a run id, never credentials or SQL — so each table has
//! its own 15 minutes and one failing table does not stop the others (it is retried by
//! Lambda's async retries and by the next schedule). The worker is `landfall_totesys_extract`.

use landfall_aws::invoke::invoke_async;
use landfall_aws::Aws;
use landfall_runtime::{ConfigError, Env, FunctionError};
use landfall_secrets::CredentialSource;
use landfall_totesys_extract::{
    ExtractConfig, Extracted, Extractor, PgSslMode, Settings, StateStore,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Event {
    Dispatch,
    Extract { table: String, run: String },
}

pub struct App {
    config: ExtractConfig,
    extractor: Extractor,
    lambda: aws_sdk_lambda::Client,
    /// This function's own name, for the per-table invocations.
    function_name: String,
}

impl App {
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let config = ExtractConfig::from_env(env)?;
        let aws = Aws::load(env).await?;
        let settings = Settings {
            bucket: env.required("INGESTION_BUCKET")?.to_owned(),
            settle: Duration::from_secs(env.parse_or("SETTLE_SECONDS", 120)?),
            ssl_mode: env.parse_or("SOURCE_SSL_MODE", PgSslMode::Prefer)?,
            gzip_level: env.parse_or("GZIP_LEVEL", landfall_totesys_extract::DEFAULT_GZIP_LEVEL)?,
            rows_per_object: env.parse_or(
                "ROWS_PER_OBJECT",
                landfall_totesys_extract::DEFAULT_ROWS_PER_OBJECT,
            )?,
            // Ten of the function's fifteen minutes: an object started before then ends well
            // within the rest.
            time_budget: Duration::from_secs(env.parse_or("TIME_BUDGET_SECONDS", 600)?),
        };
        let state = StateStore::new(aws.ssm(), env.required("STATE_PARAMETER_PREFIX")?);
        let credentials = CredentialSource::from_env(aws.secrets(), env, "SOURCE")?;
        Ok(App {
            config,
            extractor: Extractor::new(aws.s3(), state, credentials, settings),
            lambda: aws.lambda(),
            function_name: env.required("AWS_LAMBDA_FUNCTION_NAME")?.to_owned(),
        })
    }

    pub async fn handle(&self, event: Event) -> Result<Value, FunctionError> {
        match event {
            Event::Dispatch => self.dispatch().await,
            Event::Extract { table, run } => self.extract(&table, &run).await,
        }
    }

    async fn dispatch(&self) -> Result<Value, FunctionError> {
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis()
            .to_string();
        let mut failed = Vec::new();
        for table in &self.config.tables {
            let event = Event::Extract {
                table: table.name.as_str().to_owned(),
                run: run.clone(),
            };
            if let Err(err) = invoke_async(&self.lambda, &self.function_name, &event).await {
                // The other tables still go; this one waits for the next schedule.
                tracing::error!(
                    table = table.name.as_str(),
                    run,
                    error = %err,
                    "could not dispatch"
                );
                failed.push(table.name.as_str());
            }
        }
        tracing::info!(
            run,
            tables = self.config.tables.len(),
            failed = failed.len(),
            "dispatched"
        );
        if !failed.is_empty() {
            return Err(FunctionError::retryable(format!(
                "could not dispatch {}",
                failed.join(", ")
            )));
        }
        Ok(json!({"run": run, "tables": self.config.tables.len()}))
    }

    async fn extract(&self, table: &str, run: &str) -> Result<Value, FunctionError> {
        // Only configured tables: the name in the event is looked up, never used as SQL.
        let spec = self.config.table(table).ok_or_else(|| {
            FunctionError::permanent(format!("{table:?} is not a configured table"))
        })?;
        let started = Instant::now();
        let outcome = self.extractor.extract(spec).await;
        let seconds = started.elapsed().as_secs_f64();
        match outcome {
            Ok(Extracted::Busy) => {
                tracing::info!(
                    table,
                    run,
                    "another worker is extracting this table; stepping aside"
                );
                Ok(json!({"table": table, "busy": true}))
            }
            Ok(Extracted::Done {
                rows,
                key,
                sequence,
                lower,
                upper,
                lag_seconds,
                more,
            }) => {
                if more {
                    // The run goes on in a fresh invocation now, not at the next schedule.
                    let next = Event::Extract {
                        table: table.to_owned(),
                        run: run.to_owned(),
                    };
                    if let Err(err) = invoke_async(&self.lambda, &self.function_name, &next).await {
                        // The next schedule's worker takes up the pending run instead.
                        tracing::warn!(table, run, error = %err, "could not go on at once");
                    }
                }
                tracing::info!(
                    table,
                    run,
                    rows,
                    sequence,
                    key,
                    more,
                    watermark_from = lower,
                    watermark_to = upper,
                    seconds,
                    "table extracted"
                );
                metrics::counter!("RowsExtracted", "table" => table.to_owned()).increment(rows);
                if lag_seconds.is_finite() {
                    metrics::gauge!("ExtractLagSeconds", "table" => table.to_owned())
                        .set(lag_seconds);
                }
                Ok(
                    json!({"table": table, "rows": rows, "key": key, "sequence": sequence, "watermark": upper, "more": more}),
                )
            }
            Err(err) => {
                let failure = FunctionError::from_error(&err);
                tracing::error!(
                    table,
                    run,
                    seconds,
                    error_type = failure.disposition.as_str(),
                    error = failure.message,
                    "table failed"
                );
                metrics::counter!("ExtractFailures", "table" => table.to_owned()).increment(1);
                Err(failure)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Event;

    /// events/db-extract/ holds the schedule's event and the one the dispatcher sends.
    #[test]
    fn every_sample_event_is_an_event() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/db-extract");
        let mut events: Vec<Event> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                let text = std::fs::read_to_string(&path).unwrap();
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            })
            .collect();
        events.sort_by_key(|e| matches!(e, Event::Extract { .. }));
        assert_eq!(events[0], Event::Dispatch);
        assert!(matches!(&events[1], Event::Extract { table, .. } if table == "sales_order"));
    }
}
