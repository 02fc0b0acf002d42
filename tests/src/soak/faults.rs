//! The faults, one at a time in a fixed rotation (so even a one-minute soak meets each kind),
//! a few seconds apart, each bounded and healed before the next.

use crate::aws_fault_proxy::AwsFault;
use crate::soak::rig::Rig;
use anyhow::{anyhow, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// A function process killed (SIGKILL) in the middle of an invocation.
    Kill,
    /// Every MariaDB connection of the functions cut once it has sent a few more bytes.
    CutMysql,
    /// moto answering one request in three with 500 InternalError.
    MotoServerError,
    /// The MariaDB server stopped and started again.
    RestartMariadb,
    /// As CutMysql, PostgreSQL (totesys and the warehouse).
    CutPostgres,
    /// moto throttling one request in three (503 SlowDown, 400 ThrottlingException).
    MotoThrottling,
    /// The PostgreSQL server stopped and started again.
    RestartPostgres,
}

const ROTATION: [Fault; 7] = [
    Fault::Kill,
    Fault::CutMysql,
    Fault::MotoServerError,
    Fault::RestartMariadb,
    Fault::CutPostgres,
    Fault::MotoThrottling,
    Fault::RestartPostgres,
];

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "process killed mid-invocation",
            Fault::CutMysql => "MariaDB connections cut",
            Fault::MotoServerError => "moto 500s",
            Fault::RestartMariadb => "MariaDB restarted",
            Fault::CutPostgres => "PostgreSQL connections cut",
            Fault::MotoThrottling => "moto throttling",
            Fault::RestartPostgres => "PostgreSQL restarted",
        }
    }
}

/// What was injected: each fault's count, and which functions were killed.
#[derive(Debug, Default, Clone)]
pub struct Injected {
    pub counts: BTreeMap<Fault, u32>,
    pub killed: BTreeMap<String, u32>,
    /// Requests moto's proxy refused.
    pub refused_requests: u64,
}

/// Injects faults until `window` has passed.
pub async fn inject(rig: Arc<Rig>, window: Duration, seed: u64) -> Result<Injected> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfa17);
    let end = Instant::now() + window;
    let mut injected = Injected::default();
    tokio::time::sleep(Duration::from_secs(4)).await;
    for fault in ROTATION.iter().cycle().copied() {
        if Instant::now() >= end {
            break;
        }
        let happened = match fault {
            Fault::Kill => kill_one(&rig, &mut rng, &mut injected).await?,
            Fault::CutMysql => {
                rig.mysql_proxy.cut_after(rng.random_range(0..20_000));
                tokio::time::sleep(Duration::from_millis(1500)).await;
                rig.mysql_proxy.heal();
                true
            }
            Fault::CutPostgres => {
                rig.pg_proxy.cut_after(rng.random_range(0..20_000));
                tokio::time::sleep(Duration::from_millis(1500)).await;
                rig.pg_proxy.heal();
                true
            }
            Fault::MotoServerError | Fault::MotoThrottling => {
                let kind = if fault == Fault::MotoServerError {
                    AwsFault::ServerError
                } else {
                    AwsFault::Throttling
                };
                rig.aws.inject(kind, 3);
                tokio::time::sleep(Duration::from_secs(3)).await;
                rig.aws.heal();
                true
            }
            Fault::RestartMariadb => restart(&rig, "mariadb").await?,
            Fault::RestartPostgres => restart(&rig, "postgres").await?,
        };
        if happened {
            *injected.counts.entry(fault).or_insert(0) += 1;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(1000..2500))).await;
    }
    injected.refused_requests = rig.aws.refused();
    Ok(injected)
}

/// Kills a function that is in the middle of an invocation, waiting up to 10 s for one.
async fn kill_one(rig: &Rig, rng: &mut ChaCha8Rng, injected: &mut Injected) -> Result<bool> {
    let names: Vec<String> = rig.host.functions().map(|f| f.binary.clone()).collect();
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        let name = &names[rng.random_range(0..names.len())];
        if rig.host.kill_mid_invocation(name)? {
            *injected.killed.entry(name.clone()).or_insert(0) += 1;
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(false)
}

/// Output to a log file, not a pipe: the server the script starts would hold a pipe open.
async fn restart(rig: &Rig, server: &str) -> Result<bool> {
    let script = crate::workspace_root().join("scripts/restart-database.sh");
    let log_path = rig.stack.logs_dir().join("restart-database.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let status = tokio::process::Command::new(&script)
        .arg(server)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .await?;
    if !status.success() {
        return Err(anyhow!(
            "{} {server} failed: {}",
            script.display(),
            std::fs::read_to_string(&log_path).unwrap_or_default()
        ));
    }
    Ok(true)
}
