//! file-orchestrator: the parent of the MySQL pipeline. For each landing file: route it by
//! key and size — a data file to mysql-loader (whole, for an upsert dataset; for a dataset
//! with a load procedure split into parts staged in parallel, bounded, and promoted together
//! when it is big), a file too big for Lambda's 15 minutes to the same
//! loader run as an ECS task, a `.sql` script to the db-init ECS task — then archive the
//! file, rebuild the reports, and email the people in charge. Failures go back to SQS
//! (retryable) or to the DLQ with their reason (permanent).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use futures::stream::{self, StreamExt};
use landfall_aws::invoke::{invoke, Callee};
use landfall_aws::Aws;
use landfall_ecs_run::{TaskSettings, Tasks, Work};
use landfall_email::Mailer;
use landfall_landing::{
    archive_today, current_version, first_notice, refusal_notice, route, split_into_parts,
    ObjectRef, Part, Route,
};
use landfall_mysql_datasets::{Dataset, Datasets, Promotion};
use landfall_mysql_load::protocol::{db_init, loader, reporter};
use landfall_runtime::{ConfigError, Deadline, Disposition, Env, FunctionError, Invocation};
use landfall_s3_events::ObjectChange;
use landfall_sqs_batch::{process_created_objects, DeadLetters};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Landing keys this pipeline owns.
const PREFIX: &str = "mysql";
/// Container names in the task definitions (template.yaml).
const LOADER_CONTAINER: &str = "mysql-loader";
const DB_INIT_CONTAINER: &str = "db-init";

// Sizes and rates from a 285 MB file on the local stack (README, "Big files"): parts staged
// at 5.8 MB/s, the promotion (the dataset's upsert procedure) at 2.2 MB/s.
/// The rate a step's time is estimated with: the slower of the two, the promotion's.
pub const DEFAULT_LOAD_BYTES_PER_SECOND: u64 = 2 * 1024 * 1024;
/// A part stages in about 23 s (64 s estimated), a small fraction of the loader's 15 minutes.
pub const DEFAULT_SPLIT_BYTES: u64 = 128 * 1024 * 1024;
/// Promoting 1 GiB takes about 8 minutes at that rate; with splitting, staging and archiving
/// beside it a bigger file would not fit in 15, so it loads in an ECS task.
pub const DEFAULT_TASK_BYTES: u64 = 1024 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct Settings {
    pub loader: Callee,
    pub reporter: Callee,
    pub archive_bucket: String,
    /// Files larger than this are split into parts of about this size.
    pub split_bytes: u64,
    /// A slow database's staging and promotion rate, to tell whether a step still fits in
    /// this invocation's time before starting it.
    pub load_bytes_per_second: u64,
    /// Parts staged at the same time.
    pub stage_concurrency: usize,
    /// The queue's maxReceiveCount: a retryable failure is emailed on the last attempt.
    pub max_receive_count: u32,
    /// Files larger than this load in an ECS task: even split, they would not finish in
    /// one Lambda invocation's 15 minutes.
    pub task_bytes: u64,
    pub loader_task_definition: String,
    pub db_init_task_definition: String,
    /// Who hears about database init scripts.
    pub init_notify: Vec<String>,
    /// Who hears about files refused by their key (no dataset knows them).
    pub operations_notify: Vec<String>,
}

pub struct App {
    settings: Settings,
    datasets: Datasets,
    s3: aws_sdk_s3::Client,
    lambda: aws_sdk_lambda::Client,
    tasks: Tasks,
    mailer: Mailer,
    dead_letters: Option<DeadLetters>,
}

/// What happened to one file, for the log and the email.
#[derive(Debug)]
struct Loaded {
    parts: usize,
    /// "mysql-loader (Lambda)" or "mysql-loader (ECS task)".
    loaded_by: &'static str,
    rows: u64,
    already_loaded: bool,
    archived_to: String,
    report_procedures: u64,
    /// Report objects written: "s3://… (N rows)".
    reports: Vec<String>,
    /// Why the reports were not rebuilt, when they were not: the file is loaded all the same.
    reports_failed: Option<String>,
}

/// A file that did not get through, and whether its rows were already promoted when the
/// failure came: a failure after the promotion must never be reported as "not loaded".
#[derive(Debug)]
struct NotDone {
    error: FunctionError,
    promoted_rows: Option<u64>,
}

impl From<FunctionError> for NotDone {
    fn from(error: FunctionError) -> Self {
        NotDone {
            error,
            promoted_rows: None,
        }
    }
}

impl App {
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let datasets = Datasets::from_env(env)?;
        let settings = Settings {
            loader: Callee::from_env(env, "LOADER_FUNCTION", "LOADER_TIMEOUT_SECONDS")?,
            reporter: Callee::from_env(env, "REPORTER_FUNCTION", "REPORTER_TIMEOUT_SECONDS")?,
            archive_bucket: env.required("ARCHIVE_BUCKET")?.to_owned(),
            split_bytes: env.parse_or("SPLIT_BYTES", DEFAULT_SPLIT_BYTES)?,
            load_bytes_per_second: env
                .parse_or("LOAD_BYTES_PER_SECOND", DEFAULT_LOAD_BYTES_PER_SECOND)?
                .max(1),
            stage_concurrency: env.parse_or("STAGE_CONCURRENCY", 4)?,
            max_receive_count: env.parse_or("MAX_RECEIVE_COUNT", 5)?,
            task_bytes: env.parse_or("TASK_BYTES", DEFAULT_TASK_BYTES)?,
            loader_task_definition: env.required("LOADER_TASK_DEFINITION")?.to_owned(),
            db_init_task_definition: env.required("DB_INIT_TASK_DEFINITION")?.to_owned(),
            init_notify: env.list("INIT_NOTIFY"),
            operations_notify: env.list("OPERATIONS_NOTIFY"),
        };
        let aws = Aws::load(env).await?;
        Ok(App {
            tasks: Tasks::new(aws.ecs(), aws.s3(), TaskSettings::from_env(env)?),
            mailer: Mailer::new(aws.ses(), env.required("SENDER_EMAIL")?),
            dead_letters: DeadLetters::from_env(env, aws.sqs())?,
            s3: aws.s3(),
            lambda: aws.lambda(),
            datasets,
            settings,
        })
    }

    pub async fn handle(
        &self,
        event: &SqsEvent,
        invocation: &Invocation,
    ) -> Result<SqsBatchResponse, FunctionError> {
        process_created_objects(event, self.dead_letters.as_ref(), |change, attempt| {
            async move { Box::pin(self.file(&change, attempt, invocation)).await }
        })
        .await
    }

    async fn file(
        &self,
        change: &ObjectChange,
        attempt: u32,
        invocation: &Invocation,
    ) -> Result<(), FunctionError> {
        let started = Instant::now();
        let dataset_name = match route(PREFIX, &change.key, &self.datasets.names()) {
            Ok(Route::Data { dataset }) => dataset,
            Ok(Route::Init { .. }) => return self.init_script(change, attempt).await,
            Err(refused) => {
                // No dataset's people know this file: tell operations, then dead-letter it.
                let err = FunctionError::from_error(&refused);
                let (subject, body) =
                    refusal_notice(&change.bucket, &change.key, &err.message, "not loaded");
                self.mailer
                    .notify(&self.settings.operations_notify, &subject, &body)
                    .await;
                return Err(err);
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
        let outcome = self
            .load(&dataset_name, dataset, &object, size, invocation)
            .await;
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
                    "[landfall] {dataset_name}: {} rows loaded from {}{}",
                    loaded.rows,
                    object.key,
                    if loaded.reports_failed.is_some() {
                        " (reports failed)"
                    } else {
                        ""
                    }
                );
                let result = match (&loaded.reports_failed, loaded.already_loaded) {
                    (Some(why), _) => format!("loaded; report failed ({why}); the reports are rebuilt by the next load or a `report` invoke (README, Runbook)"),
                    (None, true) => "already loaded earlier; nothing changed".to_owned(),
                    (None, false) => "loaded".to_owned(),
                };
                let body = format!(
                    "Dataset: {dataset_name}\nFile: s3://{}/{} (version {})\nResult: {result}\nRows loaded: {}\nRows rejected: 0\nParts: {}\nLoaded by: {}\nArchived to: {}\nReport procedures run: {}\nReports written:\n  {}\nDuration: {seconds:.1} s\n",
                    object.bucket,
                    object.key,
                    object.version,
                    loaded.rows,
                    loaded.parts,
                    loaded.loaded_by,
                    loaded.archived_to,
                    loaded.report_procedures,
                    loaded.reports.join("\n  "),
                );
                let bucket = &self.settings.archive_bucket;
                if first_notice(&self.s3, bucket, &dataset_name, &object).await {
                    self.email(dataset, &subject, &body).await;
                }
                Ok(())
            }
            Err(NotDone {
                error,
                promoted_rows,
            }) => {
                let last_attempt = error.disposition == Disposition::Permanent
                    || attempt >= self.settings.max_receive_count;
                if last_attempt {
                    let (subject, result, rows) = match promoted_rows {
                        Some(rows) => (
                            format!("[landfall] {dataset_name}: {rows} rows loaded from {}, NOT ARCHIVED", object.key),
                            "loaded; archiving failed, so the file stays in landing (a redelivery archives it without loading it again)",
                            *rows,
                        ),
                        None => (
                            format!("[landfall] FAILED {dataset_name}: {}", object.key),
                            "not loaded; nothing was promoted",
                            0,
                        ),
                    };
                    let body = format!(
                        "Dataset: {dataset_name}\nFile: s3://{}/{} (version {})\nResult: {result}\nRows loaded: {rows}\nError ({}): {}\nAttempt: {attempt}\nDuration: {seconds:.1} s\nThe message is in the dead-letter queue; see the runbook in README.md.\n",
                        object.bucket, object.key, object.version, error.disposition, error.message
                    );
                    self.email(dataset, &subject, &body).await;
                }
                Err(error.clone())
            }
        }
    }

    /// The version the notification is about, and its size; None when it is gone.
    async fn current_version(
        &self,
        change: &ObjectChange,
    ) -> Result<Option<(ObjectRef, u64)>, FunctionError> {
        current_version(
            &self.s3,
            &change.bucket,
            &change.key,
            change.version_id.as_deref(),
        )
        .await
        .map_err(|e| FunctionError::from_error(&e))
    }

    async fn load(
        &self,
        name: &str,
        dataset: &Dataset,
        object: &ObjectRef,
        size: u64,
        invocation: &Invocation,
    ) -> Result<Loaded, NotDone> {
        let deadline = &invocation.deadline;
        let in_task = size > self.settings.task_bytes;
        // An upsert dataset's file loads whole, straight into its table, in one transaction:
        // faster than staging parts side by side and promoting them, at any size up to a task's.
        let split = !in_task
            && size > self.settings.split_bytes
            && matches!(dataset.promotion(), Promotion::Procedure { .. });
        let (promoted, parts) = if in_task {
            // The same single-transaction load, in a task without the 15-minute limit.
            let event = loader::Request::Load {
                dataset: name.to_owned(),
                source: object.clone(),
            };
            let outcome: loader::Response = self
                .run_task(
                    &self.settings.loader_task_definition,
                    LOADER_CONTAINER,
                    object,
                    &event,
                )
                .await?;
            (outcome, 1)
        } else if split {
            self.load_split(name, dataset, object, size, invocation)
                .await?
        } else {
            // Not split: one transaction on one connection.
            deadline.ensure("loading the file", self.load_time(size))?;
            let task = loader::Request::Load {
                dataset: name.to_owned(),
                source: object.clone(),
            };
            (self.call_loader(&task, deadline).await?, 1)
        };

        let archived_to = async {
            deadline.ensure("archiving the file", Duration::ZERO)?;
            self.archive(object, name).await
        }
        .await
        .map_err(|error| NotDone {
            error,
            promoted_rows: Some(promoted.rows),
        })?;

        // The rows are in and the file is archived: a redelivery would find nothing to do,
        // so a report that fails now is told, not retried (the next load rebuilds it).
        let (report_procedures, reports, reports_failed) = match self
            .reports(name, object, deadline)
            .await
        {
            Ok((procedures, reports)) => (procedures, reports, None),
            Err(err) => {
                tracing::error!(key = object.key, error = %err.message, "loaded; the reports failed");
                metrics::counter!("ReportsFailed").increment(1);
                (0, vec![], Some(err.message))
            }
        };
        Ok(Loaded {
            reports,
            reports_failed,
            parts,
            loaded_by: if in_task {
                "mysql-loader (ECS task)"
            } else {
                "mysql-loader (Lambda)"
            },
            rows: promoted.rows,
            already_loaded: promoted.already_loaded,
            archived_to,
            report_procedures,
        })
    }

    /// The dataset's report procedures, then its export: (procedures run, objects written).
    async fn reports(
        &self,
        name: &str,
        object: &ObjectRef,
        deadline: &Deadline,
    ) -> Result<(u64, Vec<String>), FunctionError> {
        deadline.ensure("running the report procedures", Duration::ZERO)?;
        let reported = self
            .call_loader(
                &loader::Request::Report {
                    dataset: name.to_owned(),
                },
                deadline,
            )
            .await?;
        deadline.ensure("exporting the reports", Duration::ZERO)?;
        let request = reporter::Request {
            dataset: name.to_owned(),
            run: object.version.clone(),
        };
        let exported: reporter::Response =
            invoke(&self.lambda, &self.settings.reporter, &request, deadline).await?;
        Ok((
            reported.procedures,
            exported
                .exports
                .iter()
                .map(|e| format!("{} ({} rows)", e.object, e.rows))
                .collect(),
        ))
    }

    async fn call_loader(
        &self,
        request: &loader::Request,
        deadline: &Deadline,
    ) -> Result<loader::Response, FunctionError> {
        Ok(invoke(&self.lambda, &self.settings.loader, request, deadline).await?)
    }

    /// A file over `split_bytes`: cut into parts, each staged by its own mysql-loader
    /// invocation (bounded concurrency) under this attempt's batch, then promoted together.
    /// A failed attempt's staged rows are discarded; the parts are deleted either way.
    async fn load_split(
        &self,
        name: &str,
        dataset: &Dataset,
        object: &ObjectRef,
        size: u64,
        invocation: &Invocation,
    ) -> Result<(loader::Response, usize), FunctionError> {
        let deadline = &invocation.deadline;
        deadline.ensure("splitting the file", Duration::ZERO)?;
        let folder = format!(
            "{}-{}",
            name,
            object
                .version
                .replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        let parts = split_into_parts(
            &self.s3,
            object,
            &folder,
            dataset.csv.quote as u8,
            dataset.csv.header,
            self.settings.split_bytes,
        )
        .await
        .map_err(|e| FunctionError::from_error(&e))?;
        let attempt = invocation.request_id.as_str();
        let staged = self
            .stage_parts(name, object, attempt, &parts, deadline)
            .await;
        let promoted = async {
            let rows = staged?;
            deadline.ensure("promoting the staged parts", self.load_time(size))?;
            let task = loader::Request::Promote {
                dataset: name.to_owned(),
                source: object.clone(),
                attempt: attempt.to_owned(),
                parts: parts.len() as u32,
                rows,
            };
            self.call_loader(&task, deadline).await
        }
        .await;
        if let Err(err) = &promoted {
            let task = loader::Request::Discard {
                dataset: name.to_owned(),
                source: object.clone(),
                attempt: attempt.to_owned(),
                // Refused for good: no attempt at this file will be promoted, so what earlier
                // ones left (a crash, a cut connection) goes too, not at the hourly sweep.
                every_attempt: err.disposition == Disposition::Permanent,
            };
            if let Err(err) = self.call_loader(&task, deadline).await {
                // The next promotion of this dataset removes them (an abandoned attempt).
                tracing::warn!(key = object.key, error = %err.message, "could not discard the failed attempt's stage rows");
            }
        }
        for part in &parts {
            // Best effort: the bucket's lifecycle rule expires parts/ anyway.
            let _ = self
                .s3
                .delete_object()
                .bucket(&part.object.bucket)
                .key(&part.object.key)
                .send()
                .await;
        }
        Ok((promoted?, parts.len()))
    }

    /// Stages every part, `stage_concurrency` at a time; returns the rows staged. After a
    /// failure no new part starts, the running ones finish (so nothing is still writing
    /// when the attempt is discarded), and the failure of the earliest part is returned —
    /// the first bad line of the file.
    async fn stage_parts(
        &self,
        name: &str,
        object: &ObjectRef,
        attempt: &str,
        parts: &[Part],
        deadline: &Deadline,
    ) -> Result<u64, FunctionError> {
        let failed = AtomicBool::new(false);
        let failed = &failed;
        let outcomes: Vec<Result<u64, FunctionError>> = stream::iter(parts.iter().enumerate())
            .map(|(index, part)| async move {
                if failed.load(Ordering::SeqCst) {
                    return Err(None);
                }
                let staged = async {
                    deadline.ensure(
                        &format!("staging part {} of {}", index + 1, parts.len()),
                        self.load_time(self.settings.split_bytes),
                    )?;
                    let task = loader::Request::Stage {
                        dataset: name.to_owned(),
                        source: object.clone(),
                        attempt: attempt.to_owned(),
                        part_index: index as u32,
                        part: part.clone(),
                    };
                    Ok(self.call_loader(&task, deadline).await?.rows)
                }
                .await;
                if staged.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                staged.map_err(Some)
            })
            .buffered(self.settings.stage_concurrency.max(1))
            .filter_map(|outcome| async move {
                match outcome {
                    Err(None) => None, // not started after a failure
                    Ok(rows) => Some(Ok(rows)),
                    Err(Some(err)) => Some(Err(err)),
                }
            })
            .collect()
            .await;
        outcomes.into_iter().sum()
    }

    /// How long loading `bytes` may take on a slow database.
    fn load_time(&self, bytes: u64) -> Duration {
        Duration::from_secs(bytes / self.settings.load_bytes_per_second)
    }

    /// A `mysql/init/*.sql` script: applied by the db-init task (schema changes can outlast
    /// Lambda's 15 minutes), then archived under `init/`, and the outcome emailed.
    async fn init_script(&self, change: &ObjectChange, attempt: u32) -> Result<(), FunctionError> {
        let started = Instant::now();
        let Some((object, _)) = self.current_version(change).await? else {
            tracing::info!(
                key = change.key,
                "no longer in landing: already applied and archived"
            );
            return Ok(());
        };
        let applied = async {
            let event = db_init::Request {
                script: object.clone(),
            };
            let outcome: db_init::Response = self
                .run_task(
                    &self.settings.db_init_task_definition,
                    DB_INIT_CONTAINER,
                    &object,
                    &event,
                )
                .await?;
            let archived = self.archive(&object, "init").await?;
            Ok::<_, FunctionError>((outcome, archived))
        }
        .await;
        let seconds = started.elapsed().as_secs_f64();
        let file = format!(
            "s3://{}/{} (version {})",
            object.bucket, object.key, object.version
        );
        match &applied {
            Ok((outcome, archived)) => {
                let scripts = outcome
                    .scripts
                    .iter()
                    .map(|s| format!("{}: {}", s.name, s.outcome))
                    .collect::<Vec<_>>()
                    .join("\n  ");
                tracing::info!(key = object.key, seconds, "init script applied");
                let body = format!("Script: {file}\nResult:\n  {scripts}\nArchived to: {archived}\nDuration: {seconds:.1} s\n");
                self.mailer
                    .notify(
                        &self.settings.init_notify,
                        &format!("[landfall] database init: {}", object.key),
                        &body,
                    )
                    .await;
            }
            Err(err)
                if err.disposition == Disposition::Permanent
                    || attempt >= self.settings.max_receive_count =>
            {
                let body = format!(
                    "Script: {file}\nResult: not applied (each statement that ran before the error stays applied; the script is recorded only when all of it ran)\nError ({}): {}\nAttempt: {attempt}\nDuration: {seconds:.1} s\nThe message is in the dead-letter queue; see the runbook in README.md.\n",
                    err.disposition, err.message
                );
                self.mailer
                    .notify(
                        &self.settings.init_notify,
                        &format!("[landfall] FAILED database init: {}", object.key),
                        &body,
                    )
                    .await;
            }
            Err(_) => {}
        }
        applied.map(|_| ())
    }

    /// Runs `event` for `object` in an ECS task (or adopts the one already running for it).
    async fn run_task<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        task_definition: &str,
        container: &str,
        object: &ObjectRef,
        event: &Req,
    ) -> Result<Resp, FunctionError> {
        self.tasks
            .run(&Work {
                task_definition,
                container,
                id: &work_id(object),
                event,
            })
            .await
    }

    /// Backs `object` up under `<folder>/<date>/` in the archive bucket and removes it from
    /// landing; gives the archive location.
    async fn archive(&self, object: &ObjectRef, folder: &str) -> Result<String, FunctionError> {
        archive_today(&self.s3, object, &self.settings.archive_bucket, folder)
            .await
            .map_err(|e| FunctionError::from_error(&e))
    }

    async fn email(&self, dataset: &Dataset, subject: &str, body: &str) {
        self.mailer.notify(&dataset.notify, subject, body).await;
    }
}

/// Names one object version as a unit of work (a task started for it is found again by it).
fn work_id(object: &ObjectRef) -> String {
    format!("s3://{}/{}#{}", object.bucket, object.key, object.version)
}
