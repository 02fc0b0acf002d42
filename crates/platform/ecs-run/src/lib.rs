//! The parent side of an ECS (Fargate) task: work too long for Lambda's 15 minutes.
//!
//! [`Tasks::run`] starts the task with the work in a container environment override (never
//! credentials: the task reads those from Secrets Manager as the function does), waits for
//! it to stop, and reads the report the task wrote to S3 — ECS keeps only an exit code, and
//! the parent needs the outcome and, on failure, whether a retry can help.
//!
//! A parent that runs out of time returns a retryable error; its redelivery finds the task
//! still running by `startedBy` (derived from the work's id) and waits for it instead of
//! starting a second one. A second run of finished work is harmless anyway: the work itself
//! is idempotent (the load ledger, the script ledger), so adoption only saves the time.
//!
//! The task side, which the task binaries link, is `landfall-ecs-task`; the report both
//! sides read and write is `landfall-ecs-report`.
#![warn(missing_docs)]

use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, DesiredStatus, KeyValuePair,
    LaunchType, NetworkConfiguration, Task, TaskOverride,
};
use landfall_aws::{AwsError, SdkResultExt};
use landfall_ecs_report::{Report, RESULT_VAR, TASK_VAR};
use landfall_env::{ConfigError, Env};
use landfall_failure::FunctionError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::{Duration, Instant};

/// Where tasks run and how long a parent waits for one.
#[derive(Debug, Clone)]
pub struct TaskSettings {
    /// The ECS cluster tasks run in.
    pub cluster: String,
    /// Subnets of the tasks' network interface.
    pub subnets: Vec<String>,
    /// Security groups of the tasks' network interface.
    pub security_groups: Vec<String>,
    /// Whether tasks get a public IP (subnets without a NAT gateway need one to reach AWS).
    pub assign_public_ip: bool,
    /// Bucket for task reports, under `tasks/`.
    pub results_bucket: String,
    /// Longest pause between two DescribeTasks calls.
    pub poll: Duration,
    /// How long one parent invocation waits before handing over to its redelivery.
    pub wait: Duration,
}

impl TaskSettings {
    /// The settings from `TASK_*` variables.
    pub fn from_env(env: &Env) -> Result<TaskSettings, ConfigError> {
        Ok(TaskSettings {
            cluster: env.required("ECS_CLUSTER")?.to_owned(),
            subnets: required_list(env, "TASK_SUBNETS")?,
            security_groups: env.list("TASK_SECURITY_GROUPS"),
            assign_public_ip: env.parse_or("TASK_ASSIGN_PUBLIC_IP", false)?,
            results_bucket: env.required("TASK_RESULTS_BUCKET")?.to_owned(),
            poll: Duration::from_secs(env.parse_or("TASK_POLL_SECONDS", 10)?),
            wait: Duration::from_secs(env.parse_or("TASK_WAIT_SECONDS", 840)?),
        })
    }
}

/// Fargate tasks use awsvpc networking and RunTask refuses them without subnets (ECS API
/// reference, RunTask): a stack that may start tasks needs them from its first cold start.
fn required_list(env: &Env, name: &str) -> Result<Vec<String>, ConfigError> {
    let list = env.list(name);
    if list.is_empty() {
        // The value is the SubnetIds parameter of template.yaml, joined.
        return Err(ConfigError::invalid(
            name,
            env.optional(name).unwrap_or_default(),
            "no subnet: set the stack's SubnetIds parameter (private subnets that reach \
             MySQL, ECR, CloudWatch Logs, S3 and Secrets Manager; README, \"Networking\")",
        ));
    }
    Ok(list)
}

/// One piece of work for one container of a task definition; `event` is the task's
/// request type, the one its handler takes.
#[derive(Debug, Clone)]
pub struct Work<'a, E> {
    /// The task definition to run.
    pub task_definition: &'a str,
    /// The container whose command is overridden.
    pub container: &'a str,
    /// Names the work (e.g. a batch id): the same work adopts the same running task.
    pub id: &'a str,
    /// The event, handed to the task as `LANDFALL_TASK`.
    pub event: &'a E,
}

impl<E> Work<'_, E> {
    /// ECS `startedBy`: at most 128 of `[A-Za-z0-9_-]`, so a digest of the id.
    pub fn started_by(&self) -> String {
        let digest = Sha256::digest(self.id.as_bytes());
        format!("landfall-{}", &hex::encode(digest)[..32])
    }

    fn report_key(&self) -> String {
        format!("tasks/{}.json", self.started_by())
    }
}

/// The parent side: start or adopt a task, wait, read its report.
pub struct Tasks {
    ecs: aws_sdk_ecs::Client,
    s3: aws_sdk_s3::Client,
    settings: TaskSettings,
}

impl Tasks {
    /// Runs tasks with `ecs`, reading their reports with `s3`.
    pub fn new(ecs: aws_sdk_ecs::Client, s3: aws_sdk_s3::Client, settings: TaskSettings) -> Tasks {
        Tasks { ecs, s3, settings }
    }

    /// Runs `work` (or adopts its running task) and decodes the task's outcome as `R`, the
    /// handler's response type.
    pub async fn run<E: Serialize, R: DeserializeOwned>(
        &self,
        work: &Work<'_, E>,
    ) -> Result<R, FunctionError> {
        let outcome = self.outcome(work).await?;
        R::deserialize(&outcome).map_err(|e| {
            FunctionError::retryable(format!(
                "the {} task answered {outcome}, which is not its {}: {e}",
                work.task_definition,
                std::any::type_name::<R>()
            ))
        })
    }

    async fn outcome<E: Serialize>(
        &self,
        work: &Work<'_, E>,
    ) -> Result<serde_json::Value, FunctionError> {
        let started_by = work.started_by();
        let task_arn = match self.running(&started_by).await? {
            Some(arn) => {
                tracing::info!(
                    task = arn,
                    work = work.id,
                    "adopting the task already running"
                );
                arn
            }
            None => {
                if let Some(outcome) = self.finished_unwatched(work, &started_by).await? {
                    return Ok(outcome);
                }
                self.start(work, &started_by).await?
            }
        };
        let task = self.wait(&task_arn).await?;
        let exit_code = task
            .containers()
            .iter()
            .find(|c| c.name() == Some(work.container))
            .and_then(|c| c.exit_code());
        let report = self.report(&work.report_key()).await?;
        tracing::info!(task = task_arn, exit_code, "task stopped");
        match (report, exit_code) {
            (Some(report), _) => report.into_result(),
            // No report: the task died before it could write one (out of memory, image
            // pull, capacity, a crash). Nothing says retrying cannot help.
            (None, code) => Err(FunctionError::retryable(format!(
                "task {task_arn} ({}) stopped without a report: exit code {code:?}, {}",
                work.task_definition,
                stop_reason(&task)
            ))),
        }
    }

    /// A task for the same work that succeeded after its parent stopped waiting: its report
    /// (written for this work's `startedBy`, removed before each start) stands. A failed one
    /// is run again.
    async fn finished_unwatched<E>(
        &self,
        work: &Work<'_, E>,
        started_by: &str,
    ) -> Result<Option<serde_json::Value>, FunctionError> {
        match self.report(&work.report_key()).await? {
            Some(Report::Succeeded { outcome }) => {
                tracing::info!(
                    started_by,
                    work = work.id,
                    "the task finished while no one was waiting; using its report"
                );
                Ok(Some(outcome))
            }
            _ => Ok(None),
        }
    }

    /// The task still running for this work, if any. ListTasks takes `startedBy` only as its
    /// one filter (ECS API reference, ListTasks), so the status is read with DescribeTasks.
    async fn running(&self, started_by: &str) -> Result<Option<String>, FunctionError> {
        let listed = self
            .ecs
            .list_tasks()
            .cluster(&self.settings.cluster)
            .started_by(started_by)
            .send()
            .await
            .or_aws("ECS", "ListTasks")?;
        if listed.task_arns().is_empty() {
            return Ok(None);
        }
        let described = self
            .ecs
            .describe_tasks()
            .cluster(&self.settings.cluster)
            .set_tasks(Some(listed.task_arns().to_vec()))
            .send()
            .await
            .or_aws("ECS", "DescribeTasks")?;
        Ok(described
            .tasks()
            .iter()
            .filter(|task| task.desired_status() == Some(DesiredStatus::Running.as_str()))
            .find_map(|task| task.task_arn().map(str::to_owned)))
    }

    async fn start<E: Serialize>(
        &self,
        work: &Work<'_, E>,
        started_by: &str,
    ) -> Result<String, FunctionError> {
        let event = serde_json::to_string(work.event)
            .map_err(|e| FunctionError::permanent(format!("the task's event: {e}")))?;
        let key = work.report_key();
        // A report left by an earlier run of the same work must not pass for this one's.
        self.s3
            .delete_object()
            .bucket(&self.settings.results_bucket)
            .key(&key)
            .send()
            .await
            .or_aws("S3", "DeleteObject")?;
        let variable =
            |name: &str, value: String| KeyValuePair::builder().name(name).value(value).build();
        let overrides = TaskOverride::builder()
            .container_overrides(
                ContainerOverride::builder()
                    .name(work.container)
                    .environment(variable(TASK_VAR, event))
                    .environment(variable(
                        RESULT_VAR,
                        format!("s3://{}/{key}", self.settings.results_bucket),
                    ))
                    .build(),
            )
            .build();
        let mut run = self
            .ecs
            .run_task()
            .cluster(&self.settings.cluster)
            .task_definition(work.task_definition)
            .launch_type(LaunchType::Fargate)
            .started_by(started_by)
            .overrides(overrides);
        if !self.settings.subnets.is_empty() {
            let vpc = AwsVpcConfiguration::builder()
                .set_subnets(Some(self.settings.subnets.clone()))
                .set_security_groups(Some(self.settings.security_groups.clone()))
                .assign_public_ip(if self.settings.assign_public_ip {
                    AssignPublicIp::Enabled
                } else {
                    AssignPublicIp::Disabled
                })
                .build()
                .map_err(|e| FunctionError::permanent(format!("task network: {e}")))?;
            run = run.network_configuration(
                NetworkConfiguration::builder()
                    .awsvpc_configuration(vpc)
                    .build(),
            );
        }
        let started = run.send().await.or_aws("ECS", "RunTask")?;
        if let Some(failure) = started.failures().first() {
            // Capacity and placement failures pass; the next delivery tries again.
            return Err(FunctionError::retryable(format!(
                "{} did not start: {} {}",
                work.task_definition,
                failure.reason().unwrap_or("unknown reason"),
                failure.detail().unwrap_or_default()
            )));
        }
        let arn = started
            .tasks()
            .first()
            .and_then(|t| t.task_arn())
            .ok_or_else(|| FunctionError::retryable("RunTask answered without a task"))?
            .to_owned();
        tracing::info!(
            task = arn,
            definition = work.task_definition,
            work = work.id,
            "task started"
        );
        Ok(arn)
    }

    async fn wait(&self, task_arn: &str) -> Result<Task, FunctionError> {
        let started = Instant::now();
        let mut pause = Duration::from_secs(1);
        loop {
            let described = self
                .ecs
                .describe_tasks()
                .cluster(&self.settings.cluster)
                .tasks(task_arn)
                .send()
                .await
                .or_aws("ECS", "DescribeTasks")?;
            let task = described
                .tasks()
                .first()
                .cloned()
                .ok_or_else(|| FunctionError::retryable(format!("task {task_arn} is gone")))?;
            if task.last_status() == Some("STOPPED") {
                return Ok(task);
            }
            if started.elapsed() + pause > self.settings.wait {
                return Err(FunctionError::retryable(format!(
                    "task {task_arn} still running after {} s; the next delivery waits for it",
                    started.elapsed().as_secs()
                )));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.settings.poll.max(Duration::from_secs(1)));
        }
    }

    async fn report(&self, key: &str) -> Result<Option<Report>, FunctionError> {
        let object = match self
            .s3
            .get_object()
            .bucket(&self.settings.results_bucket)
            .key(key)
            .send()
            .await
        {
            Ok(object) => object,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None)
            }
            Err(err) => return Err(AwsError::new("S3", "GetObject", err).into()),
        };
        let bytes = object
            .body
            .collect()
            .await
            .map_err(|e| FunctionError::retryable(format!("reading the task report: {e}")))?
            .into_bytes();
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| FunctionError::retryable(format!("task report {key}: {e}")))
    }
}

fn stop_reason(task: &Task) -> String {
    let container = task
        .containers()
        .iter()
        .filter_map(|c| c.reason())
        .collect::<Vec<_>>()
        .join("; ");
    format!(
        "{:?} {} {container}",
        task.stop_code(),
        task.stopped_reason().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_without_task_subnets_is_refused_at_cold_start_naming_the_parameter() {
        let env = |subnets: &str| {
            Env::from_pairs([
                ("ECS_CLUSTER", "tasks"),
                ("TASK_RESULTS_BUCKET", "landing"),
                ("TASK_SUBNETS", subnets),
            ])
        };
        let refused = TaskSettings::from_env(&env("")).unwrap_err().to_string();
        assert!(
            refused.contains("TASK_SUBNETS") && refused.contains("SubnetIds"),
            "{refused}"
        );
        let settings = TaskSettings::from_env(&env("subnet-a,subnet-b")).unwrap();
        assert_eq!(settings.subnets, ["subnet-a", "subnet-b"]);
    }

    #[test]
    fn started_by_is_a_valid_ecs_tag_and_names_the_work() {
        let work = |id| Work {
            task_definition: "loader",
            container: "loader",
            id,
            event: &(),
        };
        let a = work("batch-a").started_by();
        assert!(a.len() <= 128);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
        assert_eq!(a, work("batch-a").started_by());
        assert_ne!(a, work("batch-b").started_by());
        assert_eq!(work("batch-a").report_key(), format!("tasks/{a}.json"));
    }
}
