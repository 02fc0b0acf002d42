//! The soak: every pipeline driven at once on one local stack for a bounded time, with
//! at-least-once delivery and faults injected, then every input reconciled against its
//! target (Jepsen-style: a workload, faults, and a checker that runs afterwards).
//!
//! - `rig`: the stack — moto behind an HTTP fault proxy, MariaDB and PostgreSQL behind TCP
//!   fault proxies, the real function binaries, every SQS event source pumped;
//! - `workload`: the inputs of P1–P5 and the ledger of what each must become;
//! - `files`: the file pipelines (P1–P3), one `SoakedPipeline` impl each: their files'
//!   shape, when one is complete, how their targets are checked;
//! - `faults`: processes killed mid-invocation, connections cut, databases restarted,
//!   moto failing and throttling — one at a time, each bounded;
//! - `reconcile`: the targets read back and compared with the ledger.
//!
//! `make soak` runs it for ten minutes; `make test` runs a short one.

mod faults;
pub(crate) mod files;
pub(crate) mod reconcile;
pub(crate) mod rig;
pub(crate) mod workload;

pub use reconcile::Report;
pub use rig::Rig;
pub use workload::Input;

use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long and with what seed (`SOAK_SECONDS`, `SOAK_SEED`).
#[derive(Debug, Clone)]
pub struct Settings {
    pub duration: Duration,
    pub seed: u64,
}

impl Settings {
    /// `SOAK_SECONDS` (default `default_seconds`) and `SOAK_SEED` (default: the clock, printed
    /// in the report so a run can be repeated).
    pub fn from_env(default_seconds: u64) -> Settings {
        let seconds = std::env::var("SOAK_SECONDS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default_seconds);
        let seed = std::env::var("SOAK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(1)
            });
        Settings {
            duration: Duration::from_secs(seconds),
            seed,
        }
    }
}

/// Runs the soak: load with faults for `settings.duration`, then drain, then reconcile.
pub async fn run(settings: Settings) -> Result<Report> {
    let started = Instant::now();
    let rig = Arc::new(rig::Rig::start().await?);
    let ledger = Arc::new(workload::Ledger::default());
    let producing = Arc::new(AtomicBool::new(true));
    let pumping = Arc::new(AtomicBool::new(true));

    let pumps = rig.pump_all(pumping.clone(), ledger.clone());
    let inputs = workload::spawn(
        rig.clone(),
        ledger.clone(),
        producing.clone(),
        settings.seed,
    );
    // Faults stop a little before the inputs, so the last of them meets a healed stack.
    let faults = tokio::spawn(faults::inject(
        rig.clone(),
        settings.duration.mul_f64(0.85),
        settings.seed,
    ));

    tokio::time::sleep(settings.duration).await;
    producing.store(false, Ordering::SeqCst);
    for task in inputs {
        task.await??;
    }
    let faults = faults.await??;
    rig.heal();
    let loaded_at = Instant::now();
    let waited_on = workload::finish(&rig, &ledger).await?;
    let drained_in = loaded_at.elapsed();
    pumping.store(false, Ordering::SeqCst);
    for pump in pumps {
        pump.await?;
    }

    let mut report = reconcile::check(&rig, &ledger).await?;
    report.faults = faults;
    report.seed = settings.seed;
    report.load_seconds = settings.duration.as_secs_f64();
    report.drain_seconds = drained_in.as_secs_f64();
    report.drain_waited_on = waited_on;
    report.total_seconds = started.elapsed().as_secs_f64();
    Ok(report)
}
