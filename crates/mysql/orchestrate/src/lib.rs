//! P1's part of the landing flow (`landfall_landing::flow::FilePipeline`): the calls that
//! load a file, by its plan (`landfall_mysql_load::pipeline::LoadPlan`) — a data file to
//! mysql-loader whole (an upsert dataset's always), split into parts staged in parallel,
//! bounded, and promoted together when it is big, or to the same loader run as an ECS task
//! when it is too big for Lambda's 15 minutes; a `.sql` script to the db-init ECS task; then
//! the dataset's reports, rebuilt and exported. Linked by file-orchestrator alone: it starts
//! tasks, which the task binaries must not (`tests/tests/workspace.rs`).

use landfall_aws::invoke::{invoke, Callee};
use landfall_ecs_run::{Tasks, Work};
use landfall_failure::{Deadline, Disposition, FunctionError};
use landfall_landing::flow::{About, Delivery, FilePipeline};
use landfall_landing::{split_into_parts, LandingError, ObjectVersion, Part};
use landfall_mysql_datasets::{Dataset, Datasets};
use landfall_mysql_load::pipeline::{
    route, stage_all, FileLoaded, LoadPlan, MysqlDone, MysqlFile, ScriptApplied,
};
use landfall_mysql_load::protocol::{db_init, loader, reporter};
use std::time::Duration;

/// Container names in the task definitions (template.yaml).
const LOADER_CONTAINER: &str = "mysql-loader";
const DB_INIT_CONTAINER: &str = "db-init";

/// How P1 loads: its callees, its thresholds, who hears of what.
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

/// P1's part of the landing flow: the calls that load a file.
pub struct MysqlFiles {
    pub settings: Settings,
    pub datasets: Datasets,
    pub s3: aws_sdk_s3::Client,
    pub lambda: aws_sdk_lambda::Client,
    pub tasks: Tasks,
}

/// What loading left before the file was archived.
pub enum Loaded {
    Data {
        dataset: String,
        promoted: loader::Response,
        parts: usize,
        plan: LoadPlan,
    },
    Script(db_init::Response),
}

impl FilePipeline for MysqlFiles {
    type File<'a> = MysqlFile<'a>;
    type Loaded = Loaded;
    type Done = MysqlDone;

    const DONE_METRIC: &'static str = "FilesLoaded";

    fn route(&self, key: &str) -> Result<MysqlFile<'_>, LandingError> {
        route(key, &self.datasets)
    }

    fn about<'a>(&'a self, file: &MysqlFile<'a>) -> About<'a> {
        match file {
            MysqlFile::Data { name, dataset } => About {
                name: (*name).to_owned(),
                heading: format!("Dataset: {name}"),
                notify: &dataset.notify,
                folder: (*name).to_owned(),
                not_done: "not loaded; nothing was promoted",
                done: "loaded",
            },
            MysqlFile::Init => About {
                name: "database init".into(),
                heading: String::new(),
                notify: &self.settings.init_notify,
                folder: "init".into(),
                not_done: "not applied (each statement that ran before the error stays \
                           applied; the script is recorded only when all of it ran)",
                done: "applied",
            },
        }
    }

    async fn load(
        &self,
        file: &Self::File<'_>,
        object: &ObjectVersion,
        size: u64,
        delivery: &Delivery<'_>,
    ) -> Result<Loaded, FunctionError> {
        match file {
            MysqlFile::Data { name, dataset } => {
                self.load_data(name, dataset, object, size, delivery).await
            }
            // Schema changes can outlast Lambda's 15 minutes: the db-init task applies them.
            MysqlFile::Init => {
                let event = db_init::Request {
                    script: object.clone(),
                };
                let definition = &self.settings.db_init_task_definition;
                let applied = self
                    .run_task(definition, DB_INIT_CONTAINER, object, &event)
                    .await?;
                Ok(Loaded::Script(applied))
            }
        }
    }

    async fn finish(
        &self,
        _file: &Self::File<'_>,
        object: &ObjectVersion,
        loaded: Loaded,
        archived_to: String,
        delivery: &Delivery<'_>,
    ) -> MysqlDone {
        let (name, promoted, parts, plan) = match loaded {
            Loaded::Script(applied) => {
                return MysqlDone::Applied(ScriptApplied {
                    applied,
                    archived_to,
                })
            }
            Loaded::Data {
                dataset,
                promoted,
                parts,
                plan,
            } => (dataset, promoted, parts, plan),
        };
        // The rows are in and the file is archived: a redelivery would find nothing to do,
        // so a report that fails now is told, not retried (the next load rebuilds it).
        let (report_procedures, reports, reports_failed) = match self
            .reports(&name, object, delivery.deadline)
            .await
        {
            Ok((procedures, reports)) => (procedures, reports, None),
            Err(err) => {
                tracing::error!(key = object.key, error = %err.message, "loaded; the reports failed");
                metrics::counter!("ReportsFailed").increment(1);
                (0, vec![], Some(err.message))
            }
        };
        MysqlDone::Loaded(FileLoaded {
            dataset: name,
            rows: promoted.rows,
            already_loaded: promoted.already_loaded,
            superseded_by: promoted.superseded_by,
            parts,
            plan,
            archived_to,
            report_procedures,
            reports,
            reports_failed,
        })
    }
}

impl MysqlFiles {
    /// A data file, by its plan: one call to mysql-loader, parts staged side by side and
    /// promoted together, or the loader as an ECS task.
    async fn load_data(
        &self,
        name: &str,
        dataset: &Dataset,
        object: &ObjectVersion,
        size: u64,
        delivery: &Delivery<'_>,
    ) -> Result<Loaded, FunctionError> {
        let deadline = delivery.deadline;
        let plan = LoadPlan::of(
            size,
            dataset,
            self.settings.split_bytes,
            self.settings.task_bytes,
        );
        let whole = loader::Request::Load {
            dataset: name.to_owned(),
            source: object.clone(),
            landed: delivery.event_time.map(str::to_owned),
        };
        let (promoted, parts) = match plan {
            LoadPlan::Task => {
                let definition = &self.settings.loader_task_definition;
                let outcome = self
                    .run_task(definition, LOADER_CONTAINER, object, &whole)
                    .await?;
                (outcome, 1)
            }
            LoadPlan::Split => {
                self.load_split(name, dataset, object, size, delivery)
                    .await?
            }
            LoadPlan::Whole => {
                deadline.ensure("loading the file", self.load_time(size))?;
                (self.call_loader(&whole, deadline).await?, 1)
            }
        };
        Ok(Loaded::Data {
            dataset: name.to_owned(),
            promoted,
            parts,
            plan,
        })
    }

    /// The dataset's report procedures, then its export: (procedures run, objects written).
    async fn reports(
        &self,
        name: &str,
        object: &ObjectVersion,
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
            run: object.version.to_string(),
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
        object: &ObjectVersion,
        size: u64,
        delivery: &Delivery<'_>,
    ) -> Result<(loader::Response, usize), FunctionError> {
        let deadline = delivery.deadline;
        deadline.ensure("splitting the file", Duration::ZERO)?;
        let folder = format!(
            "{}-{}",
            name,
            object
                .version
                .to_string()
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
        let attempt = delivery.request_id;
        let staged = self
            .stage_parts(name, object, attempt, &parts, deadline)
            .await;
        let promoted = async {
            let rows = staged?;
            deadline.ensure("promoting the staged parts", self.load_time(size))?;
            let task = loader::Request::Promote {
                dataset: name.to_owned(),
                source: object.clone(),
                landed: delivery.event_time.map(str::to_owned),
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

    /// Stages every part by its own mysql-loader invocation, `stage_concurrency` at a time
    /// (`stage_all`: stop at the first failure, name the earliest); the rows staged.
    async fn stage_parts(
        &self,
        name: &str,
        object: &ObjectVersion,
        attempt: &str,
        parts: &[Part],
        deadline: &Deadline,
    ) -> Result<u64, FunctionError> {
        let count = parts.len();
        stage_all(
            parts,
            self.settings.stage_concurrency,
            |index, part| async move {
                deadline.ensure(
                    &format!("staging part {} of {count}", index + 1),
                    self.load_time(self.settings.split_bytes),
                )?;
                let task = loader::Request::Stage {
                    dataset: name.to_owned(),
                    source: object.clone(),
                    attempt: attempt.to_owned(),
                    part_index: index as u32,
                    part,
                };
                Ok(self.call_loader(&task, deadline).await?.rows)
            },
        )
        .await
    }

    /// How long loading `bytes` may take on a slow database.
    fn load_time(&self, bytes: u64) -> Duration {
        Duration::from_secs(bytes / self.settings.load_bytes_per_second)
    }

    /// Runs `event` for `object` in an ECS task (or adopts the one already running for it).
    async fn run_task<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        task_definition: &str,
        container: &str,
        object: &ObjectVersion,
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
}

/// Names one object version as a unit of work (a task started for it is found again by it).
fn work_id(object: &ObjectVersion) -> String {
    format!("s3://{}/{}#{}", object.bucket, object.key, object.version)
}
