//! file-orchestrator: the parent of the MySQL pipeline. For each landing file: route it by
//! key, split it when it is big, have mysql-loader stage every part (in parallel, bounded)
//! and promote them together, archive the file, rebuild the reports, and email the people
//! in charge. Failures go back to SQS (retryable) or to the DLQ with their reason (permanent).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures::stream::{self, StreamExt, TryStreamExt};
use landfall_aws::{invoke::invoke_json, Aws};
use landfall_datasets::{Dataset, Datasets};
use landfall_landing::{archive, archive_key, route, split_into_parts, ObjectRef, Route};
use landfall_notify::Mailer;
use landfall_runtime::{ConfigError, Disposition, Env, FunctionError};
use landfall_s3_events::{ChangeKind, Notification, ObjectChange};
use landfall_sqs_batch::{process_each, DeadLetters};
use serde_json::json;
use std::time::Instant;

/// Landing keys this pipeline owns.
const PREFIX: &str = "mysql";

#[derive(Debug, Clone)]
pub struct Settings {
    pub loader_function: String,
    pub reporter_function: String,
    pub archive_bucket: String,
    /// Files larger than this are split into parts of about this size.
    pub split_bytes: u64,
    /// Parts staged at the same time.
    pub stage_concurrency: usize,
    /// The queue's maxReceiveCount: a retryable failure is emailed on the last attempt.
    pub max_receive_count: u32,
}

pub struct App {
    settings: Settings,
    datasets: Datasets,
    s3: aws_sdk_s3::Client,
    lambda: aws_sdk_lambda::Client,
    mailer: Mailer,
    dead_letters: Option<DeadLetters>,
}

/// What happened to one file, for the log and the email.
#[derive(Debug)]
struct Loaded {
    parts: usize,
    rows: u64,
    already_loaded: bool,
    archived_to: String,
    report_procedures: u64,
    /// Report objects written: "s3://… (N rows)".
    reports: Vec<String>,
}

impl App {
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let datasets = Datasets::from_env(env)?;
        let settings = Settings {
            loader_function: env.required("LOADER_FUNCTION")?.to_owned(),
            reporter_function: env.required("REPORTER_FUNCTION")?.to_owned(),
            archive_bucket: env.required("ARCHIVE_BUCKET")?.to_owned(),
            split_bytes: env.parse_or("SPLIT_BYTES", 256 * 1024 * 1024)?,
            stage_concurrency: env.parse_or("STAGE_CONCURRENCY", 4)?,
            max_receive_count: env.parse_or("MAX_RECEIVE_COUNT", 5)?,
        };
        let aws = Aws::load(env).await?;
        Ok(App {
            mailer: Mailer::new(aws.ses(), env.required("SENDER_EMAIL")?),
            dead_letters: env
                .optional("DEAD_LETTER_QUEUE_URL")
                .map(|url| DeadLetters::new(aws.sqs(), url)),
            s3: aws.s3(),
            lambda: aws.lambda(),
            datasets,
            settings,
        })
    }

    /// One record at a time: each file is heavy, and Lambda scales by concurrency.
    pub async fn handle(&self, event: &SqsEvent) -> Result<SqsBatchResponse, FunctionError> {
        process_each(event, self.dead_letters.as_ref(), 1, |_, record| {
            self.record(record)
        })
        .await
    }

    async fn record(&self, record: &SqsMessage) -> Result<(), FunctionError> {
        let body = record.body.as_deref().unwrap_or_default();
        let changes =
            match landfall_s3_events::parse(body).map_err(|e| FunctionError::from_error(&e))? {
                Notification::Test { .. } => {
                    tracing::info!(message_id = record.message_id, "skipping s3:TestEvent");
                    return Ok(());
                }
                Notification::Changes(changes) => changes,
            };
        let attempt: u32 = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        for change in changes.iter().filter(|c| c.kind == ChangeKind::Created) {
            Box::pin(self.file(change, attempt)).await?;
        }
        Ok(())
    }

    async fn file(&self, change: &ObjectChange, attempt: u32) -> Result<(), FunctionError> {
        let started = Instant::now();
        let dataset_name = match route(PREFIX, &change.key, &self.datasets).map_err(|e| FunctionError::from_error(&e))? {
            Route::Data { dataset } => dataset,
            Route::Init { script } => {
                return Err(FunctionError::permanent(format!(
                    "{}: database init scripts ({script}) run as the db-init task, which is not wired to this pipeline yet",
                    change.key
                )))
            }
        };
        let dataset = self
            .datasets
            .get(&dataset_name)
            .expect("route checked the dataset");
        let Some((object, size)) = self.current_version(change).await? else {
            tracing::info!(
                key = change.key,
                "no longer in landing: already loaded and archived"
            );
            return Ok(());
        };
        let outcome = self.load(&dataset_name, dataset, &object, size).await;
        let seconds = started.elapsed().as_secs_f64();
        match &outcome {
            Ok(loaded) => {
                tracing::info!(
                    key = object.key,
                    rows = loaded.rows,
                    parts = loaded.parts,
                    already_loaded = loaded.already_loaded,
                    seconds,
                    "file loaded"
                );
                metrics::counter!("FilesLoaded").increment(1);
                let subject = format!(
                    "[landfall] {dataset_name}: {} rows loaded from {}",
                    loaded.rows, object.key
                );
                let body = format!(
                    "Dataset: {dataset_name}\nFile: s3://{}/{} (version {})\nResult: {}\nRows loaded: {}\nRows rejected: 0\nParts: {}\nArchived to: {}\nReport procedures run: {}\nReports written:\n  {}\nDuration: {seconds:.1} s\n",
                    object.bucket,
                    object.key,
                    object.version,
                    if loaded.already_loaded { "already loaded earlier; nothing changed" } else { "loaded" },
                    loaded.rows,
                    loaded.parts,
                    loaded.archived_to,
                    loaded.report_procedures,
                    loaded.reports.join("\n  "),
                );
                self.email(dataset, &subject, &body).await;
                Ok(())
            }
            Err(err) => {
                let last_attempt = err.disposition == Disposition::Permanent
                    || attempt >= self.settings.max_receive_count;
                if last_attempt {
                    let subject = format!("[landfall] FAILED {dataset_name}: {}", object.key);
                    let body = format!(
                        "Dataset: {dataset_name}\nFile: s3://{}/{} (version {})\nResult: not loaded; nothing was promoted\nRows loaded: 0\nError ({}): {}\nAttempt: {attempt}\nDuration: {seconds:.1} s\nThe message is in the dead-letter queue; see the runbook in README.md.\n",
                        object.bucket, object.key, object.version, err.disposition, err.message
                    );
                    self.email(dataset, &subject, &body).await;
                }
                outcome.map(|_| ())
            }
        }
    }

    /// The version the notification is about, and its size; None when it is gone.
    async fn current_version(
        &self,
        change: &ObjectChange,
    ) -> Result<Option<(ObjectRef, u64)>, FunctionError> {
        let mut head = self
            .s3
            .head_object()
            .bucket(&change.bucket)
            .key(&change.key);
        if let Some(version) = &change.version_id {
            head = head.version_id(version);
        }
        match head.send().await {
            Ok(out) => {
                let version = out
                    .version_id()
                    .filter(|v| *v != "null")
                    .map(str::to_owned)
                    .or_else(|| out.e_tag().map(|t| format!("etag:{}", t.trim_matches('"'))))
                    .unwrap_or_default();
                let object = ObjectRef {
                    bucket: change.bucket.clone(),
                    key: change.key.clone(),
                    version,
                };
                Ok(Some((
                    object,
                    out.content_length().unwrap_or(0).max(0) as u64,
                )))
            }
            Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
            Err(err) => {
                let (disposition, message) = landfall_aws::describe(&err);
                Err(FunctionError {
                    disposition,
                    message: format!("s3://{}/{}: {message}", change.bucket, change.key),
                })
            }
        }
    }

    async fn load(
        &self,
        name: &str,
        dataset: &Dataset,
        object: &ObjectRef,
        size: u64,
    ) -> Result<Loaded, FunctionError> {
        let parts = if size > self.settings.split_bytes {
            let folder = format!(
                "{}-{}",
                name,
                object
                    .version
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "")
            );
            split_into_parts(
                &self.s3,
                object,
                &folder,
                dataset.csv.quote as u8,
                dataset.csv.header,
                self.settings.split_bytes,
            )
            .await
            .map_err(|e| FunctionError::from_error(&e))?
        } else {
            vec![object.clone()]
        };

        let promoted = if parts.len() == 1 {
            // Not split: one transaction on one connection, through a temporary stage table.
            let task = json!({"mode": "load", "dataset": name, "source": object});
            invoke_json(&self.lambda, &self.settings.loader_function, &task).await?
        } else {
            let staged: Vec<u64> = stream::iter(parts.iter().enumerate())
                .map(|(index, part)| {
                    let task = json!({"mode": "stage", "dataset": name, "source": object, "part_index": index, "part": part});
                    async move {
                        let answer = invoke_json(&self.lambda, &self.settings.loader_function, &task).await?;
                        Ok::<u64, FunctionError>(answer["rows"].as_u64().unwrap_or(0))
                    }
                })
                .buffered(self.settings.stage_concurrency.max(1))
                .try_collect()
                .await?;
            let rows: u64 = staged.iter().sum();
            let task = json!({"mode": "promote", "dataset": name, "source": object, "parts": parts.len(), "rows": rows});
            invoke_json(&self.lambda, &self.settings.loader_function, &task).await?
        };
        let rows = promoted["rows"].as_u64().unwrap_or(0);
        let already_loaded = promoted["already_loaded"].as_bool().unwrap_or(false);

        let today = time::OffsetDateTime::now_utc().date();
        let archived = ObjectRef {
            bucket: self.settings.archive_bucket.clone(),
            key: archive_key(
                name,
                &object.key,
                (today.year(), today.month() as u32, today.day() as u32),
            ),
            version: String::new(),
        };
        archive(&self.s3, object, &archived)
            .await
            .map_err(|e| FunctionError::from_error(&e))?;
        if parts.len() > 1 {
            for part in &parts {
                // Best effort: the bucket's lifecycle rule expires parts/ anyway.
                let _ = self
                    .s3
                    .delete_object()
                    .bucket(&part.bucket)
                    .key(&part.key)
                    .send()
                    .await;
            }
        }

        let reported = invoke_json(
            &self.lambda,
            &self.settings.loader_function,
            &json!({"mode": "report", "dataset": name}),
        )
        .await?;
        let exported = invoke_json(
            &self.lambda,
            &self.settings.reporter_function,
            &json!({"dataset": name, "run": object.version}),
        )
        .await?;
        let reports = exported["exports"]
            .as_array()
            .map(|exports| {
                exports
                    .iter()
                    .map(|e| {
                        let object = e["object"].as_str().unwrap_or_default();
                        format!("{object} ({} rows)", e["rows"].as_u64().unwrap_or(0))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Loaded {
            reports,
            parts: parts.len(),
            rows,
            already_loaded,
            archived_to: format!("s3://{}/{}", archived.bucket, archived.key),
            report_procedures: reported["procedures"].as_u64().unwrap_or(0),
        })
    }

    /// An email that cannot be sent is logged, not retried: the data is loaded either way.
    async fn email(&self, dataset: &Dataset, subject: &str, body: &str) {
        if let Err(err) = self.mailer.send(&dataset.notify, subject, body).await {
            tracing::error!(error = %err, "could not email the outcome");
        }
    }
}
