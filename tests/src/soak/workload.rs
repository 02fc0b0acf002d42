//! What the soak puts in, and the ledger of what each input must become.
//! - the file pipelines (`files::FILE_PIPELINES`): files in each one's shape, some uploaded
//!   twice, some with a bad line;
//! - P4: totesys churn, with db-extract's and warehouse-loader's schedules firing;
//! - P5: website pages written and overwritten.
//!
//! Row numbers never repeat across files of a pipeline, so "each input row exactly once"
//! is a set comparison.

use crate::pipeline::{extract_all_on, load_on, EXTRACT};
use crate::soak::files::{SoakedPipeline, FILE_PIPELINES};
use crate::soak::rig::Rig;
use anyhow::{anyhow, Result};
use landfall_devstack::Delivery;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One landing file and what it must become.
#[derive(Debug, Clone)]
pub struct Input {
    pub pipeline: &'static dyn SoakedPipeline,
    /// The file name, unique in the run (`p1-00017.csv`): what archive keys, audit items
    /// and dead letters are matched by.
    pub name: String,
    pub key: String,
    pub dataset: String,
    /// Row numbers: `Item <n>` (P1, P2), `O<n>` (P3).
    pub rows: Range<u32>,
    /// A bad file: nothing of it may load, and its message must reach the DLQ.
    pub bad: bool,
    pub uploads: u32,
    pub uploaded: Instant,
    /// When the target first showed it complete.
    pub done: Option<Instant>,
}

impl Input {
    /// Whether the input is `pipeline`'s.
    pub fn of(&self, pipeline: &dyn SoakedPipeline) -> bool {
        self.pipeline.soak().tag == pipeline.soak().tag
    }
}

#[derive(Default)]
pub struct Ledger {
    inputs: Mutex<Vec<Input>>,
    /// Website keys written.
    pub pages: Mutex<BTreeSet<String>>,
    /// The pipeline lag each warehouse-loader run reported, seconds.
    pub lags: Mutex<Vec<f64>>,
    pub deliveries: AtomicU64,
    /// Succeeded messages left on the queue to come back.
    pub redelivered: AtomicU64,
    /// Deliveries whose invocation failed as a whole (a killed process, say).
    pub function_errors: AtomicU64,
    pub churns: AtomicU64,
}

impl Ledger {
    pub fn delivered(&self, delivery: &Delivery) {
        if delivery.received == 0 {
            return;
        }
        self.deliveries.fetch_add(1, Ordering::Relaxed);
        self.redelivered
            .fetch_add(delivery.kept as u64, Ordering::Relaxed);
        if delivery.function_error.is_some() {
            self.function_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn inputs(&self) -> Vec<Input> {
        self.inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn add(&self, input: Input) {
        self.inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(input);
    }

    /// Marks the inputs their targets now show complete (`SoakedPipeline::completed`).
    pub async fn observe(&self, rig: &Rig) -> Result<()> {
        let inputs = self.inputs();
        let mut complete = BTreeSet::new();
        for pipeline in FILE_PIPELINES {
            let pending: Vec<&Input> = inputs
                .iter()
                .filter(|i| i.of(pipeline) && !i.bad && i.done.is_none())
                .collect();
            if !pending.is_empty() {
                complete.extend(pipeline.completed(rig, &pending).await?);
            }
        }
        let now = Instant::now();
        let mut inputs = self
            .inputs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for input in inputs.iter_mut() {
            if input.done.is_none() && complete.contains(&input.name) {
                input.done = Some(now);
            }
        }
        Ok(())
    }
}

/// File name → versions in the archive bucket.
pub async fn archived_versions(rig: &Rig) -> Result<HashMap<String, u32>> {
    let mut counts = HashMap::new();
    let s3 = rig.stack.s3();
    let bucket = rig.stack.resource("ArchiveBucket");
    // ListObjectVersions has no paginator in the SDK: follow its two markers.
    let (mut key_marker, mut version_marker) = (None, None);
    loop {
        let page = s3
            .list_object_versions()
            .bucket(&bucket)
            .set_key_marker(key_marker)
            .set_version_id_marker(version_marker)
            .send()
            .await?;
        for version in page.versions() {
            let name = version.key().unwrap_or_default().rsplit('/').next();
            *counts
                .entry(name.unwrap_or_default().to_owned())
                .or_insert(0) += 1;
        }
        if !page.is_truncated().unwrap_or(false) {
            break;
        }
        key_marker = page.next_key_marker().map(str::to_owned);
        version_marker = page.next_version_id_marker().map(str::to_owned);
    }
    Ok(counts)
}

/// Starts every producer; each stops when `producing` turns false.
pub fn spawn(
    rig: Arc<Rig>,
    ledger: Arc<Ledger>,
    producing: Arc<AtomicBool>,
    seed: u64,
) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    let mut tasks = Vec::new();
    for (n, pipeline) in FILE_PIPELINES.into_iter().enumerate() {
        let (rig, ledger, producing) = (rig.clone(), ledger.clone(), producing.clone());
        let rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(n as u64));
        tasks.push(tokio::spawn(files(rig, ledger, producing, pipeline, rng)));
    }
    let (r, l, p) = (rig.clone(), ledger.clone(), producing.clone());
    tasks.push(tokio::spawn(pages(r, l, p)));
    let (r, l, p) = (rig.clone(), ledger.clone(), producing.clone());
    tasks.push(tokio::spawn(totesys(r, l, p, seed)));
    tasks.push(tokio::spawn(async move {
        while producing.load(Ordering::SeqCst) {
            ledger.observe(&rig).await?;
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        Ok(())
    }));
    tasks
}

async fn files(
    rig: Arc<Rig>,
    ledger: Arc<Ledger>,
    producing: Arc<AtomicBool>,
    pipeline: &'static dyn SoakedPipeline,
    mut rng: ChaCha8Rng,
) -> Result<()> {
    let shape = pipeline.soak();
    let mut next_row = 0u32;
    let mut n = 0u32;
    while producing.load(Ordering::SeqCst) {
        n += 1;
        let size = shape.sizes[rng.random_range(0..shape.sizes.len())];
        let rows = next_row..next_row + size;
        next_row += size;
        let bad = n.is_multiple_of(shape.bad_every);
        let uploads = if !bad && n.is_multiple_of(shape.twice_every) {
            2
        } else {
            1
        };
        let Some((folder, dataset)) = pipeline.place(n) else {
            break;
        };
        let name = format!("{}-{n:05}.csv", shape.tag);
        let body = pipeline.body(rows.clone(), bad);
        let key = format!("{folder}/{name}");
        ledger.add(Input {
            pipeline,
            name,
            key: key.clone(),
            dataset,
            rows,
            bad,
            uploads,
            uploaded: Instant::now(),
            done: None,
        });
        for _ in 0..uploads {
            rig.stack
                .put(pipeline.bucket(), &key, body.as_bytes().to_vec())
                .await?;
        }
        tokio::time::sleep(shape.every).await;
    }
    Ok(())
}

/// Website pages: forty of them, written in turn, so most writes are overwrites.
async fn pages(rig: Arc<Rig>, ledger: Arc<Ledger>, producing: Arc<AtomicBool>) -> Result<()> {
    let mut n = 0u32;
    while producing.load(Ordering::SeqCst) {
        let key = format!("soak/page-{:02}.html", n % 40);
        let body = format!("<h1>revision {n}</h1>");
        rig.stack
            .put("WebsiteBucket", &key, body.into_bytes())
            .await?;
        ledger
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key);
        n += 1;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(())
}

/// totesys churn every 3 s; db-extract's schedule every 6 s, warehouse-loader's every 8 s.
/// A churn or a run that meets a fault is simply the next one's work.
async fn totesys(
    rig: Arc<Rig>,
    ledger: Arc<Ledger>,
    producing: Arc<AtomicBool>,
    seed: u64,
) -> Result<()> {
    let mut tick = 0u64;
    while producing.load(Ordering::SeqCst) {
        if let Ok(mut conn) = rig.totesys.conn().await {
            if landfall_totesys_seed::churn(&mut conn, seed.wrapping_add(tick), 2, 2)
                .await
                .is_ok()
            {
                ledger.churns.fetch_add(1, Ordering::Relaxed);
            }
        }
        if tick.is_multiple_of(2) {
            let _ = dispatch(&rig).await;
        }
        if tick % 3 == 1 {
            if let Ok(report) = load(&rig).await {
                record_lag(&ledger, &report);
            }
        }
        tick += 1;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok(())
}

fn record_lag(ledger: &Ledger, report: &Value) {
    let lag = report["freshness"]["tables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["lag_seconds"].as_f64())
        .reduce(f64::max);
    if let Some(lag) = lag {
        ledger
            .lags
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(lag);
    }
}

async fn dispatch(rig: &Rig) -> Result<()> {
    let answer = rig
        .host
        .invoke(EXTRACT, json!({"mode": "dispatch"}).to_string().into())
        .await?;
    match answer.function_error {
        None => Ok(()),
        Some(error) => Err(anyhow!("db-extract dispatch failed: {error}")),
    }
}

async fn load(rig: &Rig) -> Result<Value> {
    load_on(&rig.host, &rig.stack).await
}

/// After the inputs stop: the last totesys changes extracted once settled, then every
/// queue drained and the warehouse loaded until nothing is left to do (or a limit passes,
/// and the reconciliation says what is missing). Returns what the drain waited on, each
/// time that changed: `(seconds into the drain, what was outstanding)`.
pub async fn finish(rig: &Rig, ledger: &Ledger) -> Result<Vec<(f64, String)>> {
    let started = Instant::now();
    let mut waited_on: Vec<(f64, String)> = Vec::new();
    tokio::time::sleep(Duration::from_secs(3)).await;
    extract_all_on(&rig.host, &rig.stack).await?;
    let limit = Instant::now() + Duration::from_secs(300);
    let mut quiet = 0;
    while Instant::now() < limit {
        ledger.observe(rig).await?;
        // The extract schedule keeps firing, as in AWS: a table whose last extract met a
        // fault is caught up by the next.
        let _ = extract_all_on(&rig.host, &rig.stack).await;
        let queued = rig.queued_by_queue().await?;
        let warehouse = match load(rig).await {
            // No lag recorded here: with the churn stopped, the source's newest change only
            // ages, and the lag with it.
            Ok(report) => ["loaded", "waiting", "rejected", "deferred"]
                .iter()
                .filter_map(|k| {
                    let n = report[*k]
                        .as_array()
                        .map_or_else(|| report[*k].as_u64().unwrap_or(0), |a| a.len() as u64);
                    (n > 0).then(|| format!("{k} {n}"))
                })
                .collect(),
            Err(err) => vec![format!("run failed: {err}")],
        };
        let pending: Vec<String> = ledger
            .inputs()
            .into_iter()
            .filter(|i| !i.bad && i.done.is_none())
            .map(|i| i.name)
            .collect();
        let mut outstanding = Vec::new();
        if !queued.is_empty() {
            outstanding.push(format!("queued {}", queued.join(", ")));
        }
        if !warehouse.is_empty() {
            outstanding.push(format!("warehouse {}", warehouse.join(", ")));
        }
        if !pending.is_empty() {
            let shown: Vec<&str> = pending.iter().take(4).map(String::as_str).collect();
            outstanding.push(format!(
                "{} files not done ({}…)",
                pending.len(),
                shown.join(", ")
            ));
        }
        let outstanding = outstanding.join("; ");
        if waited_on
            .last()
            .is_none_or(|(_, last)| *last != outstanding)
        {
            waited_on.push((started.elapsed().as_secs_f64(), outstanding.clone()));
        }
        quiet = if outstanding.is_empty() { quiet + 1 } else { 0 };
        // Twice in a row: a redelivered message may still be on its way back.
        if quiet >= 2 {
            return Ok(waited_on);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(waited_on)
}
