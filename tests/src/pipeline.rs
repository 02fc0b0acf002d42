//! The totesys pipeline on the local stack, step by step as its schedules and queues would
//! drive it: db-extract's dispatcher (every table's worker), the ingestion queue delivered to
//! star-transform until empty, a warehouse-loader run.

use crate::LocalStack;
use anyhow::{anyhow, Result};
use landfall_devstack::Host;
use serde_json::{json, Value};
use std::time::Duration;

pub const EXTRACT: &str = "db-extract";
pub const TRANSFORM: &str = "star-transform";
pub const LOADER: &str = "warehouse-loader";

/// A stack whose db-extract reads `totesys` (secret JSON) with no settle window (nothing
/// writes to a test's database while it is extracted), and whose warehouse-loader writes
/// `warehouse` when given.
pub async fn stack(totesys: String, warehouse: Option<String>) -> Result<LocalStack> {
    let mut secrets = vec![("TotesysSecret", totesys)];
    secrets.extend(warehouse.map(|w| ("WarehouseSecret", w)));
    let mut stack = LocalStack::start_with_secrets(&secrets).await?;
    stack.set_function_env(EXTRACT, "SETTLE_SECONDS", Some("0"));
    fast_retries(&mut stack);
    Ok(stack)
}

/// As `stack`, with the warehouse on Redshift (`WarehouseEngine=redshift`): the local Data
/// API runs warehouse-loader's statements on `database`.
pub async fn stack_on_redshift(
    totesys: String,
    database: sqlx::postgres::PgConnectOptions,
) -> Result<LocalStack> {
    let mut stack = LocalStack::start_configured(
        &[("TotesysSecret", totesys)],
        &[],
        &[("WarehouseEngine", "redshift")],
    )
    .await?;
    stack.serve_redshift(database);
    stack.set_function_env(EXTRACT, "SETTLE_SECONDS", Some("0"));
    stack.set_function_env(LOADER, "REDSHIFT_POLL_MILLISECONDS", Some("50"));
    fast_retries(&mut stack);
    Ok(stack)
}

/// star-transform's retries come back after a second (the template says a minute).
pub fn fast_retries(stack: &mut LocalStack) {
    stack.set_function_env(TRANSFORM, "RETRY_FIRST_SECONDS", Some("1"));
    stack.set_function_env(TRANSFORM, "RETRY_MAX_SECONDS", Some("1"));
}

/// Runs db-extract's dispatcher and waits for every table's worker.
pub async fn extract_all(stack: &mut LocalStack) -> Result<()> {
    let host = stack.host();
    extract_all_on(&host, stack).await
}

/// As `extract_all`, on the stack's host.
pub async fn extract_all_on(host: &Host, stack: &LocalStack) -> Result<()> {
    extract_all_within(host, stack, Duration::from_secs(60)).await
}

/// As `extract_all_on`, waiting up to `budget` for the workers (a first load of a big source).
pub async fn extract_all_within(host: &Host, stack: &LocalStack, budget: Duration) -> Result<()> {
    let done = |log: &str| {
        log.matches("\"table extracted\"").count() + log.matches("\"table failed\"").count()
    };
    let before = done(&stack.function_log(EXTRACT));
    let answer = host
        .invoke(EXTRACT, json!({"mode": "dispatch"}).to_string().into())
        .await?;
    if answer.function_error.is_some() {
        return Err(anyhow!(
            "db-extract's dispatcher failed: {:?}",
            answer.json()
        ));
    }
    let started = std::time::Instant::now();
    while started.elapsed() < budget {
        if done(&stack.function_log(EXTRACT)) >= before + 11 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow!("extract workers did not finish within {budget:?}"))
}

/// Messages received and not answered come back after a second instead of the template's
/// 30 minutes.
pub async fn short_visibility(stack: &LocalStack) -> Result<()> {
    stack
        .sqs()
        .set_queue_attributes()
        .queue_url(stack.resource("IngestionQueue"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "1",
        )
        .send()
        .await?;
    Ok(())
}

/// Delivers the ingestion queue to star-transform until it is empty.
pub async fn drain(stack: &mut LocalStack) -> Result<()> {
    let queue = stack.resource("IngestionQueue");
    for _ in 0..200 {
        let delivery = stack.deliver(TRANSFORM).await?;
        if delivery.received == 0 {
            if stack.queue_depth(&queue).await? == 0 {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
    Err(anyhow!(
        "the ingestion queue did not drain:\n{}",
        stack.function_log(TRANSFORM)
    ))
}

/// One warehouse-loader run, as its schedule fires it; its report.
pub async fn load(stack: &mut LocalStack) -> Result<Value> {
    let host = stack.host();
    load_on(&host, stack).await
}

/// As `load`, on the stack's host.
pub async fn load_on(host: &Host, stack: &LocalStack) -> Result<Value> {
    let event = json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
    let answer = host.invoke(LOADER, event.to_string().into()).await?;
    if answer.function_error.is_some() {
        return Err(anyhow!(
            "warehouse-loader failed: {:?}\n{}",
            answer.json(),
            stack.function_log(LOADER)
        ));
    }
    answer.json()
}
