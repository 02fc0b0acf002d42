//! SQS event source mappings, which moto cannot run: receive, invoke, and delete what
//! the function says succeeded. Failed messages stay on the queue, come back after the
//! visibility timeout and reach the DLQ after `maxReceiveCount`, exactly as in AWS.

use crate::host::Host;
use crate::provision::{FunctionSpec, SqsMapping, Stack};
use anyhow::Result;
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// What one delivery did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub received: usize,
    pub deleted: usize,
    /// Message ids left on the queue (reported failures, or all of them on a function error).
    pub failed: Vec<String>,
    pub function_error: Option<String>,
    /// Succeeded, yet left on the queue to come back (`deliver_keeping`).
    pub kept: usize,
}

/// Every SQS event source mapping of `stack`, polling as Lambda's poller does until the
/// returned tasks are aborted (or dropped with the runtime).
pub fn poll_event_sources(
    host: &Host,
    sqs: &aws_sdk_sqs::Client,
    stack: &Stack,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut pollers = Vec::new();
    for function in stack.functions.values() {
        for mapping in &function.sqs {
            let (host, sqs, function, mapping, region) = (
                host.clone(),
                sqs.clone(),
                function.clone(),
                mapping.clone(),
                stack.region.clone(),
            );
            pollers.push(tokio::spawn(async move {
                loop {
                    let window = Duration::from_secs(mapping.batching_window_secs);
                    match deliver_once(&host, &sqs, &region, &function, &mapping, 1, window).await {
                        Ok(delivery) if delivery.received > 0 => tracing::info!(
                            function = function.binary,
                            received = delivery.received,
                            deleted = delivery.deleted,
                            failed = delivery.failed.len(),
                            function_error = delivery.function_error,
                            "delivered SQS batch"
                        ),
                        Ok(_) => {}
                        Err(err) => {
                            tracing::warn!(function = function.binary, error = %err, "SQS poll failed");
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                    }
                }
            }));
        }
    }
    pollers
}

/// Receives up to the mapping's batch size and delivers it as one invocation. Once a first
/// message arrives, records are gathered for up to `batching_window` (the mapping's
/// MaximumBatchingWindowInSeconds; zero takes only what is already there).
pub async fn deliver_once(
    host: &Host,
    sqs: &aws_sdk_sqs::Client,
    region: &str,
    function: &FunctionSpec,
    mapping: &SqsMapping,
    wait_seconds: i32,
    batching_window: Duration,
) -> Result<Delivery> {
    deliver_keeping(
        host,
        sqs,
        region,
        function,
        mapping,
        wait_seconds,
        batching_window,
        &|_| false,
    )
    .await
}

/// As `deliver_once`, but a message that succeeded and for which `keep` says so is not
/// deleted: it comes back after the visibility timeout with the same id and a higher
/// receive count, as SQS's at-least-once delivery may bring any message back.
#[allow(clippy::too_many_arguments)] // deliver_once's, plus the one choice it adds
pub async fn deliver_keeping(
    host: &Host,
    sqs: &aws_sdk_sqs::Client,
    region: &str,
    function: &FunctionSpec,
    mapping: &SqsMapping,
    wait_seconds: i32,
    batching_window: Duration,
    keep: &(dyn Fn(&Message) -> bool + Sync),
) -> Result<Delivery> {
    let mut messages: Vec<Message> = Vec::new();
    let wanted = mapping.batch_size.max(1) as usize;
    let mut window_ends = None;
    while messages.len() < wanted {
        let wait = match window_ends {
            None => wait_seconds,
            Some(end) if Instant::now() < end => 1,
            Some(_) => 0,
        };
        let received = sqs
            .receive_message()
            .queue_url(&mapping.queue_url)
            .max_number_of_messages((wanted - messages.len()).min(10) as i32)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await?;
        let batch = received.messages.unwrap_or_default();
        if batch.is_empty() && window_ends.is_none_or(|end| Instant::now() >= end) {
            break;
        }
        if !batch.is_empty() && window_ends.is_none() {
            window_ends = Some(Instant::now() + batching_window);
        }
        messages.extend(batch);
    }
    if messages.is_empty() {
        return Ok(Delivery::default());
    }

    let event = sqs_event(&messages, &mapping.queue_arn, region);
    let invoked = host
        .invoke(&function.binary, event.to_string().into())
        .await?;
    let all_ids: Vec<String> = messages
        .iter()
        .filter_map(|m| m.message_id.clone())
        .collect();
    let failed: HashSet<String> =
        match (&invoked.function_error, mapping.report_batch_item_failures) {
            (Some(_), _) => all_ids.iter().cloned().collect(),
            (None, false) => HashSet::new(),
            (None, true) => reported_failures(&invoked.payload, &all_ids)
                .unwrap_or_else(|| all_ids.iter().cloned().collect()),
        };

    let mut deleted = 0;
    let (kept, done): (Vec<&Message>, Vec<&Message>) = messages
        .iter()
        .filter(|m| !failed.contains(m.message_id.as_deref().unwrap_or_default()))
        .partition(|m| keep(m));
    for chunk in done.chunks(10) {
        let entries = chunk
            .iter()
            .enumerate()
            .map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle.clone().unwrap_or_default())
                    .build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        let out = sqs
            .delete_message_batch()
            .queue_url(&mapping.queue_url)
            .set_entries(Some(entries))
            .send()
            .await?;
        deleted += out.successful.len();
    }
    let mut failed: Vec<String> = failed.into_iter().collect();
    failed.sort();
    Ok(Delivery {
        received: messages.len(),
        deleted,
        failed,
        function_error: invoked.function_error,
        kept: kept.len(),
    })
}

/// Lambda's rule: a malformed response, or an id that was not in the batch, fails the whole batch.
fn reported_failures(payload: &[u8], batch: &[String]) -> Option<HashSet<String>> {
    let response: Value = serde_json::from_slice(payload).ok()?;
    let Some(items) = response.get("batchItemFailures") else {
        return Some(HashSet::new());
    };
    let mut failed = HashSet::new();
    for item in items.as_array()? {
        let id = item.get("itemIdentifier")?.as_str()?;
        if !batch.iter().any(|b| b == id) {
            return None;
        }
        failed.insert(id.to_owned());
    }
    Some(failed)
}

/// The event Lambda's SQS poller builds.
pub fn sqs_event(messages: &[Message], queue_arn: &str, region: &str) -> Value {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let attributes: Map<String, Value> = m
                .attributes
                .iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.clone())))
                .collect();
            let message_attributes: Map<String, Value> = m
                .message_attributes
                .iter()
                .flatten()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        json!({
                            "stringValue": v.string_value,
                            "stringListValues": [],
                            "binaryListValues": [],
                            "dataType": v.data_type,
                        }),
                    )
                })
                .collect();
            json!({
                "messageId": m.message_id,
                "receiptHandle": m.receipt_handle,
                "body": m.body,
                "attributes": attributes,
                "messageAttributes": message_attributes,
                "md5OfBody": m.md5_of_body,
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            })
        })
        .collect();
    json!({ "Records": records })
}

/// The event an EventBridge schedule sends.
pub fn scheduled_event(rule: &str, region: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    json!({
        "version": "0",
        "id": format!("local-{now}"),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": aws_smithy_types_time(now),
        "region": region,
        "resources": [format!("arn:aws:events:{region}:123456789012:rule/{rule}")],
        "detail": {}
    })
}

fn aws_smithy_types_time(secs: u64) -> String {
    aws_smithy_types::DateTime::from_secs(secs as i64)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap_or_default()
}
