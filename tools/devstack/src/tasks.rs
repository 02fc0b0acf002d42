//! The local stack's ECS: RunTask, DescribeTasks, ListTasks and StopTask over the task
//! definitions in template.yaml, each task a child process running the container's
//! command (a workspace binary) with the definition's environment plus the overrides.
//!
//! moto accepts RunTask but runs nothing and never stops a task, so a parent waiting for
//! a task would wait forever; this runs the same binary the image would.

use crate::process::{local_process, LocalProcess};
use crate::provision::TaskDefinitionSpec;
use anyhow::{Context as _, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Clone)]
pub struct TaskRunner {
    inner: Arc<Inner>,
}

impl TaskRunner {
    /// The definition a RunTask names: an ARN (…:task-definition/family:revision),
    /// family:revision, or family.
    pub fn definition(&self, requested: &str) -> Option<&TaskDefinitionSpec> {
        let family = requested
            .rsplit('/')
            .next()
            .unwrap_or(requested)
            .split(':')
            .next()
            .unwrap_or_default();
        self.inner.definitions.get(family)
    }
}

struct Inner {
    binaries: PathBuf,
    log_dir: PathBuf,
    base_env: BTreeMap<String, String>,
    /// Family → definition.
    definitions: BTreeMap<String, TaskDefinitionSpec>,
    region: String,
    tasks: Mutex<Vec<TaskRecord>>,
    next_id: AtomicU64,
}

#[derive(Debug, Clone)]
struct TaskRecord {
    arn: String,
    cluster: String,
    definition: TaskDefinitionSpec,
    started_by: Option<String>,
    created_at: f64,
    /// None while running.
    exit_code: Option<i32>,
    stopped: bool,
    stopped_reason: Option<String>,
    pid: Option<u32>,
}

/// An API error in the awsJson shape the SDK parses.
#[derive(Debug)]
pub struct ApiError {
    pub kind: &'static str,
    pub message: String,
}

impl TaskRunner {
    pub fn new(
        definitions: &BTreeMap<String, TaskDefinitionSpec>,
        region: &str,
        binaries: PathBuf,
        log_dir: PathBuf,
        base_env: BTreeMap<String, String>,
    ) -> TaskRunner {
        TaskRunner {
            inner: Arc::new(Inner {
                binaries,
                log_dir,
                base_env,
                definitions: definitions.clone(),
                region: region.to_owned(),
                tasks: Mutex::new(Vec::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// One call of the ECS JSON API: `target` is the operation from `X-Amz-Target`.
    pub async fn call(&self, target: &str, request: &Value) -> Result<Value, ApiError> {
        let operation = target.rsplit('.').next().unwrap_or(target);
        match operation {
            "RunTask" => self.run_task(request).await,
            "DescribeTasks" => Ok(self.describe_tasks(request)),
            "ListTasks" => self.list_tasks(request),
            "StopTask" => self.stop_task(request),
            other => Err(ApiError {
                kind: "InvalidParameterException",
                message: format!("the local stack does not emulate ECS {other}"),
            }),
        }
    }

    async fn run_task(&self, request: &Value) -> Result<Value, ApiError> {
        // Fargate tasks use awsvpc networking: RunTask refuses one without subnets (ECS API
        // reference, RunTask, networkConfiguration).
        let subnets = request
            .pointer("/networkConfiguration/awsvpcConfiguration/subnets")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        if request["launchType"] == "FARGATE" && subnets == 0 {
            return Err(ApiError {
                kind: "InvalidParameterException",
                message:
                    "Network Configuration must be provided when networkMode 'awsvpc' is specified."
                        .into(),
            });
        }
        let requested = request["taskDefinition"].as_str().unwrap_or_default();
        let definition = self
            .definition(requested)
            .cloned()
            .ok_or_else(|| ApiError {
                kind: "ClientException",
                message: format!("Unable to describe task definition {requested:?}"),
            })?;
        let overrides: BTreeMap<String, String> = request
            .pointer("/overrides/containerOverrides")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|o| o["name"] == definition.container)
            .flat_map(|o| o["environment"].as_array().cloned().unwrap_or_default())
            .filter_map(|kv| {
                Some((
                    kv["name"].as_str()?.to_owned(),
                    kv["value"].as_str()?.to_owned(),
                ))
            })
            .collect();
        let id = format!(
            "{:032x}",
            (std::process::id() as u128) << 64
                | self.inner.next_id.fetch_add(1, Ordering::Relaxed) as u128
        );
        let cluster = request["cluster"].as_str().unwrap_or("default").to_owned();
        let cluster_name = cluster.rsplit('/').next().unwrap_or(&cluster).to_owned();
        let arn = format!(
            "arn:aws:ecs:{}:123456789012:task/{cluster_name}/{id}",
            self.inner.region
        );
        let pid = self
            .spawn(&arn, &definition, &overrides)
            .await
            .map_err(|e| ApiError {
                kind: "ServerException",
                message: format!("{e:#}"),
            })?;
        let record = TaskRecord {
            arn,
            cluster: cluster_name,
            definition,
            started_by: request["startedBy"].as_str().map(str::to_owned),
            created_at: now(),
            exit_code: None,
            stopped: false,
            stopped_reason: None,
            pid,
        };
        let answer = describe(&record, &self.inner.region);
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(record);
        Ok(json!({ "tasks": [answer], "failures": [] }))
    }

    async fn spawn(
        &self,
        arn: &str,
        definition: &TaskDefinitionSpec,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Option<u32>> {
        let LocalProcess {
            mut command,
            binary,
            log: log_path,
        } = local_process(
            &self.inner.binaries,
            &definition.binary,
            &self.inner.log_dir,
            &format!("{}-task", definition.binary),
            &self.inner.base_env,
        )?;
        let mut child = command
            .args(&definition.arguments)
            .envs(&definition.environment)
            .envs(definition.session.environment())
            .envs(overrides)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id();
        tracing::info!(task = arn, binary = definition.binary, log = %log_path.display(), "task started");
        let (runner, arn) = (self.clone(), arn.to_owned());
        tokio::spawn(async move {
            let status = child.wait().await;
            let mut tasks = runner
                .inner
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(task) = tasks.iter_mut().find(|t| t.arn == arn) {
                task.stopped = true;
                task.pid = None;
                match status {
                    Ok(status) => {
                        task.exit_code = status.code();
                        if status.code().is_none() {
                            task.stopped_reason
                                .get_or_insert_with(|| "killed by a signal".into());
                        }
                    }
                    Err(err) => task.stopped_reason = Some(err.to_string()),
                }
            }
        });
        Ok(pid)
    }

    fn describe_tasks(&self, request: &Value) -> Value {
        let wanted: Vec<&str> = request["tasks"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let found: Vec<Value> = wanted
            .iter()
            .filter_map(|w| {
                tasks
                    .iter()
                    .find(|t| t.arn == *w || t.arn.ends_with(&format!("/{w}")))
            })
            .map(|t| describe(t, &self.inner.region))
            .collect();
        let failures: Vec<Value> = wanted
            .iter()
            .filter(|w| {
                !tasks
                    .iter()
                    .any(|t| t.arn == **w || t.arn.ends_with(&format!("/{w}")))
            })
            .map(|w| json!({ "arn": w, "reason": "MISSING" }))
            .collect();
        json!({ "tasks": found, "failures": failures })
    }

    fn list_tasks(&self, request: &Value) -> Result<Value, ApiError> {
        let cluster = request["cluster"].as_str().unwrap_or("default");
        let cluster = cluster.rsplit('/').next().unwrap_or(cluster);
        let started_by = request["startedBy"].as_str();
        // "When you specify startedBy as the filter, it must be the only filter that you
        // use" (ECS API reference, ListTasks); the status filter defaults to RUNNING.
        let filters = [
            "containerInstance",
            "family",
            "serviceName",
            "desiredStatus",
            "launchType",
        ];
        if started_by.is_some() && filters.iter().any(|f| !request[f].is_null()) {
            return Err(ApiError {
                kind: "InvalidParameterException",
                message: "startedBy must be the only filter of ListTasks".into(),
            });
        }
        let want_stopped = request["desiredStatus"] == "STOPPED";
        let tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let arns: Vec<&str> = tasks
            .iter()
            .filter(|t| t.cluster == cluster)
            .filter(|t| started_by.is_none() || t.started_by.as_deref() == started_by)
            .filter(|t| t.stopped == want_stopped)
            .map(|t| t.arn.as_str())
            .collect();
        Ok(json!({ "taskArns": arns }))
    }

    fn stop_task(&self, request: &Value) -> Result<Value, ApiError> {
        let wanted = request["task"].as_str().unwrap_or_default();
        let mut tasks = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let task = tasks
            .iter_mut()
            .find(|t| t.arn == wanted || t.arn.ends_with(&format!("/{wanted}")))
            .ok_or_else(|| ApiError {
                kind: "InvalidParameterException",
                message: format!("The referenced task was not found: {wanted}"),
            })?;
        if let Some(pid) = task.pid {
            let _ = std::process::Command::new("kill")
                .arg(pid.to_string())
                .status();
        }
        task.stopped_reason = Some(
            request["reason"]
                .as_str()
                .unwrap_or("Task stopped by user")
                .to_owned(),
        );
        Ok(json!({ "task": describe(task, &self.inner.region) }))
    }
}

fn describe(task: &TaskRecord, region: &str) -> Value {
    let status = if task.stopped { "STOPPED" } else { "RUNNING" };
    let mut container = json!({
        "name": task.definition.container,
        "lastStatus": status,
        "taskArn": task.arn,
    });
    if let Some(code) = task.exit_code {
        container["exitCode"] = json!(code);
    }
    let mut answer = json!({
        "taskArn": task.arn,
        "clusterArn": format!("arn:aws:ecs:{region}:123456789012:cluster/{}", task.cluster),
        "taskDefinitionArn": format!("arn:aws:ecs:{region}:123456789012:task-definition/{}:1", task.definition.family),
        "lastStatus": status,
        "desiredStatus": if task.stopped { "STOPPED" } else { "RUNNING" },
        "launchType": "FARGATE",
        "createdAt": task.created_at,
        "containers": [container],
    });
    if let Some(started_by) = &task.started_by {
        answer["startedBy"] = json!(started_by);
    }
    if task.stopped {
        answer["stopCode"] = json!("EssentialContainerExited");
        answer["stoppedReason"] = json!(task
            .stopped_reason
            .clone()
            .unwrap_or_else(|| "Essential container in task exited".into()));
    }
    answer
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}
