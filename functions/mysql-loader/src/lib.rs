//! mysql-loader: invoked by file-orchestrator (synchronously) with one task at a time:
//! stage a file or one part of a split file, promote a staged file, or run the report
//! procedures (`landfall_mysql_load::protocol::loader`). Credentials come from Secrets
//! Manager, never from the payload.

use landfall_aws::Aws;
use landfall_landing::ObjectVersion;
use landfall_mysql_datasets::Origin;
use landfall_mysql_datasets::{Dataset, Datasets};
use landfall_mysql_load::protocol::loader::{Request, Response};
use landfall_mysql_load::{
    Attempt, BatchId, Database, LedgerSource, MysqlError, MysqlLoader, Promoted,
};
use landfall_runtime::{Classify, ConfigError, Disposition, Env, FunctionError};
use landfall_secrets::{CredentialSource, SecretError};

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    Fetch(#[from] landfall_landing::LandingError),
    #[error(transparent)]
    Load(#[from] MysqlError),
}

impl Classify for Failure {
    fn disposition(&self) -> Disposition {
        match self {
            Failure::Secret(e) => e.disposition(),
            Failure::Fetch(e) => e.disposition(),
            Failure::Load(e) => e.disposition(),
        }
    }
}

pub struct App {
    datasets: Datasets,
    s3: aws_sdk_s3::Client,
    database: Database,
}

impl App {
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let datasets = Datasets::from_env(env)?;
        let aws = Aws::load(env).await?;
        let credentials = CredentialSource::from_env(aws.secrets(), env, "MYSQL")?;
        Ok(App {
            datasets,
            s3: aws.s3(),
            database: Database::from_env(credentials, env, "MYSQL")?,
        })
    }

    pub async fn handle(&self, task: Request) -> Result<Response, FunctionError> {
        let name = task.dataset();
        let dataset = self
            .datasets
            .get(name)
            .ok_or_else(|| FunctionError::permanent(format!("unknown dataset {name:?}")))?;
        // Boxed: the SDK and driver futures together are too deep for the layout limit.
        let outcome = match Box::pin(self.run(dataset, &task)).await {
            Err(Failure::Load(err)) if err.is_access_denied() => {
                self.database
                    .reconnect_with_fresh_credentials()
                    .await
                    .map_err(|e| FunctionError::from_error(&e))?;
                Box::pin(self.run(dataset, &task)).await
            }
            other => other,
        };
        outcome.map_err(|err| FunctionError::from_error(&err))
    }

    async fn run(&self, dataset: &Dataset, task: &Request) -> Result<Response, Failure> {
        let loader = MysqlLoader::new(self.database.pool().await?);
        match task {
            Request::Load {
                source,
                dataset: name,
                landed,
            } => {
                let (batch, origin) = identify(name, source, landed);
                let body = landfall_landing::open(&self.s3, source).await?;
                let result = loader
                    .load(dataset, &batch, &source.key, body, &origin)
                    .await?;
                Ok(promoted(&source.key, result, "loaded"))
            }
            Request::Stage {
                source,
                attempt,
                part_index,
                part,
                ..
            } => {
                let attempt = attempt_of(source, attempt);
                let body = landfall_landing::open(&self.s3, &part.object).await?;
                let origin = Origin::part(&source.key, &part.object.key, part.first_line);
                let rows = loader
                    .stage(dataset, &attempt, *part_index, origin, body)
                    .await?;
                tracing::info!(
                    key = part.object.key,
                    part = part_index,
                    rows,
                    batch = attempt.stage.as_str(),
                    "staged"
                );
                metrics::counter!("RowsStaged").increment(rows);
                Ok(Response {
                    rows,
                    already_loaded: false,
                    superseded_by: None,
                    procedures: 0,
                })
            }
            Request::Promote {
                source,
                attempt,
                parts,
                rows,
                dataset: name,
                landed,
            } => {
                let (_, origin) = identify(name, source, landed);
                let result = loader
                    .promote(
                        dataset,
                        &attempt_of(source, attempt),
                        *parts,
                        *rows,
                        &origin,
                    )
                    .await?;
                Ok(promoted(&source.key, result, "promoted"))
            }
            Request::Discard {
                source,
                attempt,
                every_attempt,
                ..
            } => {
                let rows = loader
                    .discard(dataset, &attempt_of(source, attempt), *every_attempt)
                    .await?;
                tracing::info!(
                    key = source.key,
                    rows,
                    "discarded a failed attempt's stage rows"
                );
                Ok(Response {
                    rows,
                    already_loaded: false,
                    superseded_by: None,
                    procedures: 0,
                })
            }
            Request::Report { .. } => {
                let procedures = loader.run_reports(dataset).await?;
                Ok(Response {
                    rows: 0,
                    already_loaded: false,
                    superseded_by: None,
                    procedures: procedures as u64,
                })
            }
        }
    }
}

fn attempt_of(object: &ObjectVersion, attempt: &str) -> Attempt {
    Attempt::new(
        BatchId::for_object(&object.bucket, &object.key, &object.version.to_string()),
        attempt,
    )
}

/// The batch a source object loads as, and how the ledger records it.
fn identify(
    dataset: &str,
    object: &ObjectVersion,
    landed: &Option<String>,
) -> (BatchId, LedgerSource) {
    let batch = BatchId::for_object(&object.bucket, &object.key, &object.version.to_string());
    let source = LedgerSource {
        dataset: dataset.to_owned(),
        key: object.key.clone(),
        version: object.version.to_string(),
        landed: landed.clone(),
    };
    (batch, source)
}

fn promoted(
    key: &str,
    Promoted {
        rows,
        already_loaded,
        superseded_by,
    }: Promoted,
    what: &str,
) -> Response {
    match &superseded_by {
        Some(later) => tracing::warn!(
            key,
            later,
            "not loaded: an upload of the key that landed later is already loaded"
        ),
        None => tracing::info!(key, rows, already_loaded, "{what}"),
    }
    metrics::counter!("RowsLoaded").increment(rows);
    Response {
        rows,
        already_loaded,
        superseded_by,
        procedures: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::Request;

    /// The sample events under events/mysql-loader/ are the payloads file-orchestrator sends.
    #[test]
    fn every_sample_event_is_a_task() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/mysql-loader");
        let mut modes = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let task: Request =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            modes.push(
                serde_json::to_value(&task).unwrap()["mode"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            );
        }
        modes.sort();
        assert_eq!(modes, ["discard", "load", "promote", "report", "stage"]);
    }
}
