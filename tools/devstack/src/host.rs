//! Runs the real function binaries the way Lambda does: each function is a child process
//! talking to its own Lambda Runtime API endpoint served here, one invocation at a time
//! (one warm instance), started on first use with the environment the template gives it.
//!
//! Written here rather than taken from `cargo lambda watch` because that tool compiles a
//! function on its first invocation (minutes of cold build inside a test) and takes one
//! environment for all functions, while every function here needs its own, resolved from
//! template.yaml. The Invoke API on top (`serve_invoke_api`) answers the way AWS does: a
//! function error is HTTP 200 with `X-Amz-Function-Error`.
//!
//! Every payload that crosses it — invocations and their answers, ECS task requests — is
//! also appended to `payloads.log` beside the function logs, so a test can search all a
//! function ever sent or received (for a leaked secret, say).

mod invoke_api;
mod runtime_api;

pub use invoke_api::{serve_invoke_api, served_endpoints};
use runtime_api::{init_error, invocation_error, invocation_response, next_invocation};

use crate::process::{local_process, LocalProcess};
use crate::provision::{FunctionSpec, Stack};
use crate::tasks::{ApiError, TaskRunner};
use anyhow::{anyhow, Context as _, Result};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use landfall_redshift_local::DataApi;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::process::Child;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

/// The answer to one invocation.
#[derive(Debug, Clone)]
pub struct Invoked {
    pub payload: Bytes,
    /// `Some(error type)` when the function failed, as `X-Amz-Function-Error` says.
    pub function_error: Option<String>,
}

impl Invoked {
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.payload).context("function answer is not JSON")
    }
}

#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
}

struct Inner {
    binaries: PathBuf,
    log_dir: PathBuf,
    /// Variables every function gets (endpoint, region, credentials for moto).
    base_env: BTreeMap<String, String>,
    functions: HashMap<String, Arc<Slot>>,
    next_id: AtomicU64,
    tasks: TaskRunner,
    redshift: Option<DataApi>,
    /// `payloads.log`, opened on the first payload.
    journal: std::sync::Mutex<Option<std::fs::File>>,
}

struct Slot {
    spec: FunctionSpec,
    instance: Mutex<Option<Instance>>,
    /// The running instance's process id (0: none), readable while an invocation holds
    /// `instance`, so a fault can kill the process mid-invocation.
    pid: AtomicU32,
    busy: AtomicBool,
}

struct Instance {
    child: Child,
    queue: mpsc::Sender<Pending>,
    runtime: Arc<RuntimeState>,
    server: JoinHandle<()>,
    spawned: Instant,
}

/// One cold start, as Lambda's REPORT line counts it: `init` from the process's start to its
/// first request for work (the Init Duration), `answered` to its first answer.
#[derive(Debug, Clone)]
pub struct ColdStart {
    pub init: Duration,
    pub answered: Duration,
    /// The process's peak resident memory (Linux's VmHWM) after its first answer.
    pub peak_rss_kb: Option<u64>,
    pub pid: Option<u32>,
    pub answer: Invoked,
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

struct Pending {
    id: String,
    payload: Bytes,
    deadline_ms: u64,
}

type Outcome = Result<Bytes, (String, Bytes)>;

struct RuntimeState {
    function_arn: String,
    next: Mutex<mpsc::Receiver<Pending>>,
    waiting: std::sync::Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: std::sync::Mutex<Option<String>>,
    first_poll: std::sync::OnceLock<Instant>,
}

impl Host {
    /// `binaries`: the cargo target directory holding the built function binaries.
    pub fn new(
        stack: &Stack,
        binaries: PathBuf,
        log_dir: PathBuf,
        base_env: BTreeMap<String, String>,
    ) -> Host {
        let functions = stack
            .functions
            .iter()
            .map(|(name, spec)| {
                (
                    name.clone(),
                    Arc::new(Slot {
                        spec: spec.clone(),
                        instance: Mutex::new(None),
                        pid: AtomicU32::new(0),
                        busy: AtomicBool::new(false),
                    }),
                )
            })
            .collect();
        let tasks = TaskRunner::new(
            &stack.task_definitions,
            &stack.region,
            binaries.clone(),
            log_dir.clone(),
            base_env.clone(),
        );
        Host {
            inner: Arc::new(Inner {
                tasks,
                binaries,
                log_dir,
                base_env,
                functions,
                next_id: AtomicU64::new(1),
                redshift: None,
                journal: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Serves the Redshift Data API from `api` too (before the host is shared).
    pub fn with_redshift(mut self, api: DataApi) -> Host {
        Arc::get_mut(&mut self.inner)
            .expect("with_redshift is called before the host is cloned")
            .redshift = Some(api);
        self
    }

    /// Where each function's output goes, a file per function (its CloudWatch log group).
    pub fn log_dir(&self) -> &std::path::Path {
        &self.inner.log_dir
    }

    pub fn functions(&self) -> impl Iterator<Item = &FunctionSpec> {
        self.inner.functions.values().map(|slot| &slot.spec)
    }

    fn slot(&self, name: &str) -> Result<Arc<Slot>> {
        // By binary (the local name), or by the FunctionName the template gives it in AWS.
        self.inner
            .functions
            .get(name)
            .or_else(|| self.inner.functions.values().find(|f| f.spec.name == name))
            .cloned()
            .ok_or_else(|| anyhow!("no function {name:?} in the template"))
    }

    /// Invokes `function` synchronously (RequestResponse) and returns its answer.
    pub async fn invoke(&self, function: &str, payload: Bytes) -> Result<Invoked> {
        let name = function.rsplit(':').next().unwrap_or(function);
        let slot = self.slot(name)?;
        let mut instance = slot.instance.lock().await;
        let alive = match instance.as_mut() {
            Some(running) => running.child.try_wait()?.is_none(),
            None => false,
        };
        if !alive {
            let started = self.start(&slot.spec).await?;
            slot.pid
                .store(started.child.id().unwrap_or(0), Ordering::SeqCst);
            *instance = Some(started);
        }
        self.record(&format!("invoke {name}"), &payload);
        let running = instance.as_mut().expect("started above");
        let id = format!(
            "{:08x}-0000-4000-8000-{:012x}",
            std::process::id(),
            self.inner.next_id.fetch_add(1, Ordering::Relaxed)
        );
        let timeout = Duration::from_secs(slot.spec.timeout_secs.max(1));
        let (tx, rx) = oneshot::channel();
        running
            .runtime
            .waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), tx);
        running
            .queue
            .send(Pending {
                id: id.clone(),
                payload,
                deadline_ms: now_ms() + timeout.as_millis() as u64,
            })
            .await
            .map_err(|_| anyhow!("runtime API of {name} is gone"))?;

        slot.busy.store(true, Ordering::SeqCst);
        let outcome = tokio::select! {
            outcome = rx => outcome.unwrap_or_else(|_| Err(("Runtime.Unknown".into(), Bytes::from_static(b"{}")))),
            status = running.child.wait() => {
                let init = running.runtime.init_error.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                let message = init.unwrap_or_else(|| format!("process exited: {status:?}"));
                *instance = None;
                Err(("Runtime.ExitError".into(), error_body("Runtime.ExitError", &message)))
            }
            _ = tokio::time::sleep(timeout) => {
                if let Some(mut running) = instance.take() {
                    let _ = running.child.kill().await;
                }
                Err(("Sandbox.Timedout".into(), error_body("Sandbox.Timedout", &format!("Task timed out after {} seconds", timeout.as_secs()))))
            }
        };
        slot.busy.store(false, Ordering::SeqCst);
        let answer = match &outcome {
            Ok(payload) | Err((_, payload)) => payload,
        };
        self.record(&format!("answer {name}"), answer);
        Ok(match outcome {
            Ok(payload) => Invoked {
                payload,
                function_error: None,
            },
            Err((kind, payload)) => Invoked {
                payload,
                function_error: Some(kind),
            },
        })
    }

    async fn start(&self, spec: &FunctionSpec) -> Result<Instance> {
        let LocalProcess {
            mut command,
            binary,
            log: log_path,
        } = local_process(
            &self.inner.binaries,
            &spec.binary,
            &self.inner.log_dir,
            &spec.binary,
            &self.inner.base_env,
        )?;
        let (queue, next) = mpsc::channel(16);
        let runtime = Arc::new(RuntimeState {
            function_arn: format!("arn:aws:lambda:local:123456789012:function:{}", spec.binary),
            next: Mutex::new(next),
            waiting: std::sync::Mutex::new(HashMap::new()),
            init_error: std::sync::Mutex::new(None),
            first_poll: std::sync::OnceLock::new(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next_invocation))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(invocation_response),
            )
            .route(
                "/2018-06-01/runtime/invocation/{id}/error",
                post(invocation_error),
            )
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(runtime.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        command
            .envs(&spec.environment)
            .envs(spec.session.environment())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                spec.memory_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.binary),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .kill_on_drop(true);
        let spawned = Instant::now();
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        tracing::info!(function = spec.binary, runtime_api = %address, log = %log_path.display(), "function started");
        Ok(Instance {
            child,
            queue,
            runtime,
            server,
            spawned,
        })
    }

    /// Starts `function` afresh (stopping a running instance), invokes it once and measures
    /// the start; the instance is stopped again, so every call is a cold start.
    pub async fn cold_start(&self, function: &str, payload: Bytes) -> Result<ColdStart> {
        let slot = self.slot(function)?;
        if let Some(mut running) = slot.instance.lock().await.take() {
            let _ = running.child.kill().await;
        }
        let answer = self.invoke(function, payload).await?;
        let answered_at = Instant::now();
        let mut instance = slot.instance.lock().await;
        let mut running = instance
            .take()
            .ok_or_else(|| anyhow!("{function} exited during its first invocation: {answer:?}"))?;
        let first_poll = *running
            .runtime
            .first_poll
            .get()
            .ok_or_else(|| anyhow!("{function} answered without asking for work"))?;
        let pid = running.child.id();
        let peak_rss_kb = pid.and_then(peak_rss_kb);
        let _ = running.child.kill().await;
        Ok(ColdStart {
            pid,
            init: first_poll - running.spawned,
            answered: answered_at - running.spawned,
            peak_rss_kb,
            answer,
        })
    }

    /// Kills `function`'s process (SIGKILL) if it is in the middle of an invocation, as a
    /// crashed Lambda sandbox; the invocation fails with `Runtime.ExitError` and the next
    /// one starts a fresh process. Whether there was one to kill.
    pub fn kill_mid_invocation(&self, function: &str) -> Result<bool> {
        let slot = self.slot(function)?;
        let pid = slot.pid.load(Ordering::SeqCst);
        if pid == 0 || !slot.busy.load(Ordering::SeqCst) {
            return Ok(false);
        }
        // `kill` rather than libc: the workspace forbids unsafe code.
        let status = std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stderr(std::process::Stdio::null())
            .status()?;
        Ok(status.success())
    }

    /// Appends one payload to `payloads.log` (best effort: a journal that cannot be
    /// written must not fail an invocation).
    fn record(&self, what: &str, payload: &[u8]) {
        use std::io::Write as _;
        let mut journal = self
            .inner
            .journal
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if journal.is_none() {
            let _ = std::fs::create_dir_all(&self.inner.log_dir);
            *journal = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.inner.log_dir.join("payloads.log"))
                .ok();
        }
        if let Some(file) = journal.as_mut() {
            let _ = writeln!(file, "{what}\t{}", String::from_utf8_lossy(payload));
        }
    }

    /// Stops every running function process.
    pub async fn shutdown(&self) {
        for slot in self.inner.functions.values() {
            if let Some(mut running) = slot.instance.lock().await.take() {
                let _ = running.child.kill().await;
            }
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

fn error_body(error_type: &str, message: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "errorType": error_type, "errorMessage": message }).to_string())
}

/// VmHWM of a live process, in kB (Linux).
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
