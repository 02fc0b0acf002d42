//! `make p4-scale`: P4 at a hundred times totesys, measured end to end — rows committed in the
//! source until they are visible in the warehouse, at the template's default schedules.
//!
//! 1. A totesys of `P4_SCALE` (100) times the live volumes, seeded; an empty warehouse; the
//!    local stack with the real function binaries and the template's settle window.
//! 2. The first load (every table's history), timed stage by stage.
//!    (`P4_EXTRACT_SECONDS`, `P4_LOAD_SECONDS` and `P4_SETTLE_SECONDS` override the template's
//!    schedules and settle window, for a quick try.)
//! 3. `P4_SCALE_MINUTES` (20) of churn — `P4_SCALE_ORDERS` (100) new sales orders every 10 s,
//!    each commit with its transactions, payments and some updates — while the schedules fire
//!    as EventBridge would (db-extract every `ExtractSchedule`, warehouse-loader every
//!    `LoadSchedule`, both read from template.yaml), star-transform takes the ingestion
//!    queue as its event source mapping does, and a probe looks for the new orders in the
//!    warehouse every 5 s.
//! 4. Per new order: the lag (its commit → seen in `fact_sales_order`) and where it went —
//!    waiting for the extract run whose upper bound covers it (the settle window is part of
//!    this), that run, star-transform after it, then waiting for and running the load. The
//!    last line, `p4-scale: …`, and `bench/results/p4-scale.json`.
//!
//! A run of the whole system in real time, not a test: `make test` builds it, never runs it.

use anyhow::{anyhow, Context, Result};
use landfall_devstack::Template;
use landfall_tests::pipeline::{extract_all_within, load_on, EXTRACT, TRANSFORM};
use landfall_tests::postgres::{TotesysDatabase, WarehouseDatabase};
use landfall_tests::{workspace_root, LocalStack};
use landfall_totesys_seed::Volumes;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const CHURN_EVERY: Duration = Duration::from_secs(10);
const PROBE_EVERY: Duration = Duration::from_secs(5);

fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seconds since the epoch, as the source and the warehouse count (UTC).
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// `rate(5 minutes)` as a duration (the form the template's schedules take).
fn rate(expression: &str) -> Result<Duration> {
    let inner = expression
        .strip_prefix("rate(")
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| anyhow!("{expression} is not a rate()"))?;
    let (n, unit) = inner
        .split_once(' ')
        .ok_or_else(|| anyhow!("{expression}"))?;
    let n: u64 = n.parse()?;
    let seconds = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        other => return Err(anyhow!("{expression}: unit {other}")),
    };
    Ok(Duration::from_secs(n * seconds))
}

fn default_of(template: &Template, parameter: &str) -> Result<String> {
    let value = template
        .parameters
        .get(parameter)
        .cloned()
        .flatten()
        .ok_or_else(|| anyhow!("{parameter} has no default"))?;
    Ok(match value {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

/// One extract run as the schedule fired it: when, and when the queue it filled was drained.
struct Cycle {
    started: f64,
    extracted: f64,
    transformed: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[rank]
}

/// Delivers the ingestion queue to star-transform until it is empty (the event source
/// mapping); the time it emptied.
async fn transform_all(stack: &mut LocalStack) -> Result<f64> {
    let queue = stack.resource("IngestionQueue");
    loop {
        let delivery = stack.deliver(TRANSFORM).await?;
        if let Some(error) = delivery.function_error {
            return Err(anyhow!("star-transform failed: {error}"));
        }
        if delivery.received == 0 && stack.queue_depth(&queue).await? == 0 {
            return Ok(now());
        }
    }
}

async fn source_orders(totesys: &TotesysDatabase, after: i32) -> Result<BTreeMap<i32, f64>> {
    let rows: Vec<(i32, f64)> = sqlx::query_as(
        "SELECT sales_order_id, extract(epoch FROM last_updated)::float8 FROM sales_order WHERE sales_order_id > $1",
    )
    .bind(after)
    .fetch_all(&mut totesys.conn().await?)
    .await?;
    Ok(rows.into_iter().collect())
}

#[tokio::main]
async fn main() -> Result<()> {
    let scale: u32 = setting("P4_SCALE", 100);
    let minutes: u64 = setting("P4_SCALE_MINUTES", 20);
    let orders_per_churn: u32 = setting("P4_SCALE_ORDERS", 100);
    let template = Template::load(&workspace_root().join("template.yaml"))?;
    let extract_every = match std::env::var("P4_EXTRACT_SECONDS") {
        Ok(s) => Duration::from_secs(s.parse()?),
        Err(_) => rate(&default_of(&template, "ExtractSchedule")?)?,
    };
    let load_every = match std::env::var("P4_LOAD_SECONDS") {
        Ok(s) => Duration::from_secs(s.parse()?),
        Err(_) => rate(&default_of(&template, "LoadSchedule")?)?,
    };
    let settle: u64 = match std::env::var("P4_SETTLE_SECONDS") {
        Ok(s) => s.parse()?,
        Err(_) => default_of(&template, "ExtractSettleSeconds")?.parse()?,
    };

    // 1. The source, the warehouse, the stack.
    let volumes = Volumes {
        sales_orders: 11_175 * scale,
        purchase_orders: 4_640 * scale,
    };
    let clock = Instant::now();
    let totesys = TotesysDatabase::seeded(volumes).await?;
    let source_rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM sales_order) + (SELECT count(*) FROM purchase_order) \
         + (SELECT count(*) FROM payment) + (SELECT count(*) FROM \"transaction\") \
         + (SELECT count(*) FROM address) + (SELECT count(*) FROM counterparty) \
         + (SELECT count(*) FROM staff) + (SELECT count(*) FROM design) + 40",
    )
    .fetch_one(&mut totesys.conn().await?)
    .await?;
    let seed_s = clock.elapsed().as_secs_f64();
    eprintln!("p4-scale: seeded {source_rows} source rows ({scale}x) in {seed_s:.0} s");
    let warehouse = WarehouseDatabase::empty().await?;
    let mut stack = LocalStack::start_with_secrets(&[
        ("TotesysSecret", totesys.secret()),
        ("WarehouseSecret", warehouse.secret()),
    ])
    .await?;
    stack.set_function_env(EXTRACT, "SETTLE_SECONDS", Some(&settle.to_string()));
    let host = stack.host();

    // 2. The first load.
    let clock = Instant::now();
    extract_all_within(&host, &stack, Duration::from_secs(3600)).await?;
    let initial_extract_s = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    transform_all(&mut stack).await?;
    let initial_transform_s = clock.elapsed().as_secs_f64();
    let clock = Instant::now();
    let mut runs = 0;
    loop {
        let report = load_on(&host, &stack).await?;
        runs += 1;
        let loaded = report["loaded"].as_array().map_or(0, Vec::len);
        if loaded == 0 || runs > 20 {
            break;
        }
    }
    let initial_load_s = clock.elapsed().as_secs_f64();
    eprintln!(
        "p4-scale: first load: extract {initial_extract_s:.0} s, transform {initial_transform_s:.0} s, load {initial_load_s:.0} s ({runs} runs)"
    );

    // 3. Churn under the schedules.
    let last_seeded: i32 = sqlx::query_scalar("SELECT max(sales_order_id) FROM sales_order")
        .fetch_one(&mut totesys.conn().await?)
        .await?;
    let mut source = totesys.conn().await?;
    let mut target = warehouse.conn().await?;
    let started = Instant::now();
    let until = started + Duration::from_secs(minutes * 60);
    // The schedules start where EventBridge would: anywhere in their period.
    let (mut next_churn, mut next_extract, mut next_load, mut next_probe) = (
        started,
        started + extract_every / 3,
        started + load_every / 2,
        started,
    );
    let mut cycles: Vec<Cycle> = Vec::new();
    let mut loads: Vec<(f64, f64)> = Vec::new();
    let mut seen: BTreeMap<i32, f64> = BTreeMap::new();
    let mut churns = 0u64;
    let mut tick = 0u64;
    // Churn stops at `until`; the pipeline runs on until every new order is seen.
    let drain_by = until + extract_every + load_every + Duration::from_secs(settle + 600);
    loop {
        let at = Instant::now();
        if at >= next_churn && at < until {
            tick += 1;
            landfall_totesys_seed::churn(&mut source, 1_000_000 + tick, orders_per_churn, 20)
                .await
                .context("churn")?;
            churns += 1;
            next_churn += CHURN_EVERY;
        }
        if at >= next_extract {
            let started = now();
            extract_all_within(&host, &stack, Duration::from_secs(600)).await?;
            let extracted = now();
            let transformed = transform_all(&mut stack).await?;
            cycles.push(Cycle {
                started,
                extracted,
                transformed,
            });
            next_extract += extract_every;
        }
        if at >= next_load {
            let began = now();
            load_on(&host, &stack).await?;
            loads.push((began, now()));
            next_load += load_every;
        }
        if at >= next_probe {
            let visible: Vec<i32> = sqlx::query_scalar(
                "SELECT sales_order_id FROM fact_sales_order WHERE sales_order_id > $1",
            )
            .bind(last_seeded)
            .fetch_all(&mut target)
            .await?;
            let t = now();
            for id in visible {
                seen.entry(id).or_insert(t);
            }
            next_probe += PROBE_EVERY;
        }
        if at >= until {
            let committed = source_orders(&totesys, last_seeded).await?;
            if committed.keys().all(|id| seen.contains_key(id)) || at >= drain_by {
                break;
            }
        }
        // The ingestion queue between extract runs (late retries) goes on, as the mapping's.
        transform_all(&mut stack).await?;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // 4. Lags, and where they went.
    let committed = source_orders(&totesys, last_seeded).await?;
    let mut lags = Vec::new();
    let mut parts: [Vec<f64>; 4] = Default::default();
    let mut unseen = 0;
    for (id, at) in &committed {
        let Some(visible) = seen.get(id) else {
            unseen += 1;
            continue;
        };
        lags.push(visible - at);
        // The extract run whose upper bound (its start minus the settle window) covers it.
        if let Some(cycle) = cycles.iter().find(|c| c.started - settle as f64 >= *at) {
            parts[0].push(cycle.started - at);
            parts[1].push(cycle.extracted - cycle.started);
            parts[2].push(cycle.transformed - cycle.extracted);
            parts[3].push(visible - cycle.transformed);
        }
    }
    lags.sort_by(f64::total_cmp);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let load_run_s = mean(&loads.iter().map(|(a, b)| b - a).collect::<Vec<_>>());
    let result = json!({
        "bench": "p4-scale",
        "measured_at_unix_s": now().round(),
        "scale": scale,
        "source_rows": source_rows,
        "seed_s": seed_s,
        "initial_extract_s": initial_extract_s,
        "initial_transform_s": initial_transform_s,
        "initial_load_s": initial_load_s,
        "minutes": minutes,
        "churns": churns,
        "orders_per_churn": orders_per_churn,
        "extract_every_s": extract_every.as_secs(),
        "load_every_s": load_every.as_secs(),
        "settle_s": settle,
        "changes": committed.len(),
        "unseen": unseen,
        "lag_p50_s": percentile(&lags, 0.5),
        "lag_p95_s": percentile(&lags, 0.95),
        "lag_max_s": lags.last().copied().unwrap_or(f64::NAN),
        "mean_wait_for_extract_s": mean(&parts[0]),
        "mean_extract_s": mean(&parts[1]),
        "mean_transform_s": mean(&parts[2]),
        "mean_wait_for_load_and_load_s": mean(&parts[3]),
        "mean_load_run_s": load_run_s,
        "extract_runs": cycles.len(),
        "load_runs": loads.len(),
    });
    let out = workspace_root().join("bench/results/p4-scale.json");
    std::fs::write(&out, serde_json::to_string_pretty(&result)? + "\n")?;
    println!(
        "p4-scale: scale={scale} source_rows={source_rows} changes={} unseen={unseen} lag_p50_s={:.0} lag_p95_s={:.0} lag_max_s={:.0} wait_for_extract_s={:.0} extract_s={:.1} transform_s={:.1} wait_for_load_s={:.0} initial_extract_s={initial_extract_s:.0} initial_transform_s={initial_transform_s:.0} initial_load_s={initial_load_s:.0}",
        committed.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.95),
        lags.last().copied().unwrap_or(f64::NAN),
        mean(&parts[0]),
        mean(&parts[1]),
        mean(&parts[2]),
        mean(&parts[3]),
    );
    if unseen > 0 {
        return Err(anyhow!("{unseen} new orders never reached the warehouse"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_read_as_eventbridge_rates() {
        assert_eq!(rate("rate(5 minutes)").unwrap(), Duration::from_secs(300));
        assert_eq!(rate("rate(1 minute)").unwrap(), Duration::from_secs(60));
        assert!(rate("cron(0/5 * * * ? *)").is_err());
        assert_eq!(percentile(&[1.0, 2.0, 3.0, 4.0, 5.0], 0.5), 3.0);
    }
}
