//! dynamodb-loader: P2. A CSV file under `dynamodb/<dataset>/` (S3 → SQS) becomes the
//! dataset's current DynamoDB table through ImportTable (the rules live in
//! `landfall-dynamodb-import`); the file is then archived and the outcome emailed. Bad input
//! goes to the DLQ at once with its reason; an import still running comes back when it
//! should be done. A scheduled `{"retire": {}}` deletes replaced tables past their grace
//! period even when no new file lands.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use landfall_aws::Aws;
use landfall_dynamodb_datasets::Datasets;
use landfall_dynamodb_import::{ImportError, Imported, Importer, Job, Outcome, Settings};
use landfall_email::Mailer;
use landfall_landing::{
    archive_today, current_version, first_notice, refusal_notice, route, ObjectRef, Route,
};
use landfall_runtime::{ConfigError, Disposition, Env, FunctionError, Invocation};
use landfall_s3_events::ObjectChange;
use landfall_sqs_batch::{process_created_objects, DeadLetters};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Landing keys this pipeline owns.
const PREFIX: &str = "dynamodb";

/// What invokes the function: the landing queue, or the retirement schedule.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Event {
    Retire { retire: Retire },
    Sqs(SqsEvent),
}

/// `{"retire": {}}`: every dataset's retired tables past their grace period are deleted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retire {}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Response {
    Batch(SqsBatchResponse),
    Retired { deleted: Vec<String> },
}

pub struct App {
    datasets: Datasets,
    importer: Importer,
    archive_bucket: String,
    /// The queue's maxReceiveCount: a retryable failure is emailed on the last attempt.
    max_receive_count: u32,
    operations_notify: Vec<String>,
    mailer: Mailer,
    dead_letters: Option<DeadLetters>,
}

impl App {
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let mut datasets = Datasets::from_env(env)?;
        // One grace period for every dataset, where replaced tables should go at once (a
        // local stack, a test account) or stay longer than configured (an incident).
        if env.is_set("RETIRE_AFTER_SECONDS") {
            let seconds: u64 = env.parse("RETIRE_AFTER_SECONDS")?;
            for dataset in datasets.datasets.values_mut() {
                dataset.retire_after_seconds = seconds;
            }
        }
        let settings = Settings {
            import_bucket: env.required("IMPORT_BUCKET")?.to_owned(),
            import_prefix: env
                .optional("IMPORT_PREFIX")
                .unwrap_or("imports")
                .to_owned(),
            pointer_prefix: env.required("POINTER_PREFIX")?.to_owned(),
            table_prefix: env.optional("TABLE_PREFIX").unwrap_or_default().to_owned(),
            split_bytes: env.parse_or("SPLIT_BYTES", 128 * 1024 * 1024)?,
            concurrency: env.parse_or("CONVERT_CONCURRENCY", 2)?,
            poll_interval: Duration::from_millis(env.parse_or("IMPORT_POLL_MILLISECONDS", 10_000)?),
            import_bytes_per_second: env.parse_or("IMPORT_BYTES_PER_SECOND", 2 * 1024 * 1024)?,
            claim_stale_after: Duration::from_secs(env.parse_or(
                "IMPORT_CLAIM_STALE_SECONDS",
                landfall_dynamodb_import::CLAIM_STALE_AFTER.as_secs(),
            )?),
        };
        let aws = Aws::load(env).await?;
        Ok(App {
            importer: Importer {
                s3: aws.s3(),
                dynamodb: aws.dynamodb(),
                ssm: aws.ssm(),
                settings,
            },
            archive_bucket: env.required("ARCHIVE_BUCKET")?.to_owned(),
            max_receive_count: env.parse_or("MAX_RECEIVE_COUNT", 10)?,
            operations_notify: env.list("OPERATIONS_NOTIFY"),
            mailer: Mailer::new(aws.ses(), env.required("SENDER_EMAIL")?),
            dead_letters: DeadLetters::from_env(env, aws.sqs())?,
            datasets,
        })
    }

    pub async fn handle(
        &self,
        event: &Event,
        invocation: &Invocation,
    ) -> Result<Response, FunctionError> {
        match event {
            Event::Sqs(event) => {
                // One file at a time: a conversion uses every core the function has.
                let response = process_created_objects(
                    event,
                    self.dead_letters.as_ref(),
                    |change, attempt| async move {
                        Box::pin(self.file(&change, attempt, invocation)).await
                    },
                )
                .await?;
                Ok(Response::Batch(response))
            }
            Event::Retire { .. } => {
                let mut deleted = Vec::new();
                for (name, dataset) in &self.datasets.datasets {
                    let retired = self.importer.retire(name.as_str(), dataset).await;
                    deleted.extend(retired.map_err(|e| FunctionError::from_error(&e))?);
                }
                Ok(Response::Retired { deleted })
            }
        }
    }

    async fn file(
        &self,
        change: &ObjectChange,
        attempt: u32,
        invocation: &Invocation,
    ) -> Result<(), FunctionError> {
        let started = Instant::now();
        let name = match route(PREFIX, &change.key, &self.datasets.names()) {
            Ok(Route::Data { dataset }) => dataset,
            Ok(Route::Init { .. }) => {
                let err = FunctionError::permanent(format!(
                    "{}: {PREFIX}/init/ holds no scripts: DynamoDB tables are created by their imports",
                    change.key
                ));
                return Err(self.refused(change, err).await);
            }
            Err(refused) => {
                let err = FunctionError::from_error(&refused);
                return Err(self.refused(change, err).await);
            }
        };
        let dataset = self.datasets.get(&name).expect("route checked the dataset");
        let Some((object, _)) = current_version(
            &self.importer.s3,
            &change.bucket,
            &change.key,
            change.version_id.as_deref(),
        )
        .await
        .map_err(|e| FunctionError::from_error(&e))?
        else {
            tracing::info!(
                key = change.key,
                "no longer in landing: already imported and archived"
            );
            return Ok(());
        };
        let job = Job {
            dataset_name: &name,
            dataset,
            source: &object,
            landed: change.event_time.as_deref().unwrap_or_default(),
            attempt: &invocation.request_id,
        };
        let outcome = match self.importer.run(&job, &invocation.deadline).await {
            Ok(imported) => self
                .archive(&object, &name)
                .await
                .map(|archived| (imported, archived)),
            Err(err) => Err(import_failure(&err)),
        };
        let seconds = started.elapsed().as_secs_f64();
        let file = format!(
            "s3://{}/{} (version {})",
            object.bucket, object.key, object.version
        );
        match &outcome {
            Ok((imported, archived)) => {
                tracing::info!(
                    key = object.key,
                    table = imported.table,
                    rows = imported.rows,
                    seconds,
                    "file imported"
                );
                metrics::counter!("FilesImported").increment(1);
                let subject = format!(
                    "[landfall] {name}: {} items imported into {} from {}",
                    imported.rows, imported.table, object.key
                );
                let body = success_body(&name, &file, imported, archived, seconds);
                let folder = format!("{PREFIX}/{name}");
                if first_notice(&self.importer.s3, &self.archive_bucket, &folder, &object).await {
                    self.mailer.notify(&dataset.notify, &subject, &body).await;
                }
            }
            Err(err) => {
                let last =
                    err.disposition == Disposition::Permanent || attempt >= self.max_receive_count;
                if err.retry_after.is_some() {
                    tracing::info!(
                        key = object.key,
                        message = err.message,
                        "import still running"
                    );
                } else if last {
                    let subject = format!("[landfall] FAILED {name}: {}", object.key);
                    let body = format!(
                        "Dataset: {name}\nFile: {file}\nResult: not imported; the current table is unchanged\nError ({}): {}\nAttempt: {attempt}\nDuration: {seconds:.1} s\nThe message is in the dead-letter queue; see the runbook in README.md.\n",
                        err.disposition, err.message
                    );
                    self.mailer.notify(&dataset.notify, &subject, &body).await;
                }
            }
        }
        outcome.map(|_| ())
    }

    /// A key no dataset knows: operations hear of it, and the message goes to the DLQ.
    async fn refused(&self, change: &ObjectChange, err: FunctionError) -> FunctionError {
        let (subject, body) =
            refusal_notice(&change.bucket, &change.key, &err.message, "not imported");
        self.mailer
            .notify(&self.operations_notify, &subject, &body)
            .await;
        err
    }

    /// `<archive>/dynamodb/<dataset>/yyyy/mm/dd/<name>`.
    async fn archive(&self, object: &ObjectRef, dataset: &str) -> Result<String, FunctionError> {
        let folder = format!("{PREFIX}/{dataset}");
        archive_today(&self.importer.s3, object, &self.archive_bucket, &folder)
            .await
            .map_err(|e| FunctionError::from_error(&e))
    }
}

/// The import's error as the record's failure, with when to come back for a running import.
fn import_failure(err: &ImportError) -> FunctionError {
    let failure = FunctionError::from_error(err);
    match (err, err.retry_after()) {
        // An import runs for hours in DynamoDB: following it is sent again, not a receive.
        (ImportError::Running { .. }, Some(delay)) => {
            FunctionError::still_running(failure.message, delay)
        }
        (_, Some(delay)) => failure.retry_after(delay),
        (_, None) => failure,
    }
}

fn success_body(
    name: &str,
    file: &str,
    imported: &Imported,
    archived: &str,
    seconds: f64,
) -> String {
    let result = match &imported.outcome {
        Outcome::Switched { previous: Some(previous) } => {
            format!("imported; the pointer moved from {previous} to {}", imported.table)
        }
        Outcome::Switched { previous: None } => format!("imported; the pointer now names {}", imported.table),
        Outcome::AlreadyCurrent => "imported earlier; the pointer already names this table".into(),
        Outcome::Superseded { current } => format!(
            "imported, but {current} comes from a file that landed later: the pointer stays, and {} is retired",
            imported.table
        ),
    };
    let deleted = if imported.deleted.is_empty() {
        "none".to_owned()
    } else {
        imported.deleted.join(", ")
    };
    format!(
        "Dataset: {name}\nFile: {file}\nResult: {result}\nItems: {}\nParts: {}\nTable: {}\nPointer: {}\nImport: {}\nRetired tables deleted: {deleted}\nArchived to: {archived}\nDuration: {seconds:.1} s\n",
        imported.rows, imported.parts, imported.table, imported.pointer, imported.import_arn
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An injection-shaped name in the datasets file fails the cold start, naming the variable.
    #[tokio::test]
    async fn injection_shaped_names_are_refused_at_cold_start() {
        let dir = std::env::temp_dir().join(format!("dynamodb-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, from, to) in [
            (
                "dataset.toml",
                "[datasets.price_index]",
                "[datasets.\"price_index; drop\"]",
            ),
            ("attribute.toml", "name = \"uom\"", "name = \"uom = :x\""),
        ] {
            let path = dir.join(name);
            let text = landfall_dynamodb_datasets::BUNDLED.replace(from, to);
            assert_ne!(text, landfall_dynamodb_datasets::BUNDLED);
            std::fs::write(&path, text).unwrap();
            let env = Env::from_pairs([("DYNAMODB_DATASETS_FILE", path.to_str().unwrap())]);
            let err = App::from_env(&env)
                .await
                .err()
                .expect("refused")
                .to_string();
            assert!(
                err.contains("DYNAMODB_DATASETS_FILE") && err.contains("not an allowed"),
                "{err}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn every_sample_event_parses() {
        for entry in std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/dynamodb-loader"
        ))
        .unwrap()
        {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let event: Event = serde_json::from_str(&text).unwrap();
            let is_retire = path.to_string_lossy().contains("retire");
            assert_eq!(matches!(event, Event::Retire { .. }), is_retire, "{path:?}");
        }
    }
}
