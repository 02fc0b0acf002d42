//! Processing an SQS batch so that one bad record never fails the others.
//!
//! Semantics (those of Powertools' batch utility, plus dead-lettering):
//! - each failed record is reported in `batchItemFailures`, so only it returns to the queue;
//! - when every record failed, the invocation itself fails (visible as a function error);
//! - FIFO queues: processing stops at the first failure and every later record is reported
//!   too, so no message overtakes one of its group;
//! - a permanent failure (retrying cannot help) is sent to the dead-letter queue at once with
//!   its reason, instead of burning `maxReceiveCount` receives first;
//! - optionally, a retryable failure comes back after a backoff that doubles per receive
//!   instead of the queue's whole visibility timeout (which must cover the function's timeout
//!   and is far longer than, say, waiting for a sibling object to arrive);
//! - work that runs on elsewhere and is only followed (`FunctionError::still_running`: an
//!   import that takes hours) is sent to the source queue again with a delay and its message
//!   completed, so following it spends no receive (`maxReceiveCount` bounds failures, not
//!   looks), up to `MAX_FOLLOW_UPS` times.
#![warn(missing_docs)]

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use aws_sdk_sqs::types::MessageAttributeValue;
use futures::stream::{self, StreamExt};
use landfall_aws::{AwsError, SdkResultExt};
use landfall_failure::{Disposition, FunctionError};
use std::future::Future;

mod s3;
pub use s3::{process_created_objects, process_s3_changes, receive_count, s3_changes, Delivery};

/// Where permanent failures go: the source queue's DLQ (`DEAD_LETTER_QUEUE_URL`); and,
/// with `with_retry_backoff`, when retryable ones come back.
#[derive(Clone, Debug)]
pub struct DeadLetters {
    client: aws_sdk_sqs::Client,
    queue_url: String,
    backoff: Option<Backoff>,
}

#[derive(Clone, Debug)]
struct Backoff {
    source_queue_url: String,
    first: std::time::Duration,
    max: std::time::Duration,
}

impl DeadLetters {
    /// Sends to the queue `queue_url`.
    pub fn new(client: aws_sdk_sqs::Client, queue_url: impl Into<String>) -> Self {
        DeadLetters {
            client,
            queue_url: queue_url.into(),
            backoff: None,
        }
    }

    /// A retryable failure on the `receive`-th receive becomes visible on `source_queue_url`
    /// again after `first × 2^(receive − 1)`, at most `max`.
    pub fn with_retry_backoff(
        mut self,
        source_queue_url: impl Into<String>,
        first: std::time::Duration,
        max: std::time::Duration,
    ) -> Self {
        self.backoff = Some(Backoff {
            source_queue_url: source_queue_url.into(),
            first,
            max,
        });
        self
    }

    /// Shortens the record's visibility to its backoff (best effort: if this fails, the
    /// message returns after the queue's visibility timeout, as it would anyway).
    async fn back_off(&self, record: &SqsMessage, error: &FunctionError) {
        let (Some(backoff), Some(receipt)) = (&self.backoff, &record.receipt_handle) else {
            return;
        };
        let delay = error
            .retry_after
            .unwrap_or_else(|| retry_delay(backoff.first, backoff.max, receive_count(record)));
        let changed = self
            .client
            .change_message_visibility()
            .queue_url(&backoff.source_queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(delay.as_secs().min(43_200) as i32)
            .send()
            .await
            .or_aws("SQS", "ChangeMessageVisibility");
        if let Err(err) = changed {
            tracing::warn!(message_id = record.message_id, error = %err, "could not shorten the retry delay");
        }
    }

    /// Sends the original body with the reason as message attributes, so a person reading
    /// the DLQ sees why, and a redrive replays the original message unchanged.
    async fn send(&self, record: &SqsMessage, error: &FunctionError) -> Result<(), AwsError> {
        let text = |value: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .expect("data type and value are set")
        };
        // SQS attribute values are limited in size together with the body; keep the reason short.
        let reason: String = error.message.chars().take(4000).collect();
        let mut request = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(record.body.clone().unwrap_or_default())
            .message_attributes("landfall-error", text(&reason))
            .message_attributes("landfall-error-type", text(error.disposition.as_str()));
        if let Some(id) = &record.message_id {
            request = request.message_attributes("landfall-source-message-id", text(id));
        }
        if let Some(arn) = &record.event_source_arn {
            request = request.message_attributes("landfall-source-queue", text(arn));
        }
        if self.queue_url.ends_with(".fifo") {
            let group = record
                .attributes
                .get("MessageGroupId")
                .cloned()
                .unwrap_or_else(|| "dead-letters".into());
            request = request
                .message_group_id(group)
                .message_deduplication_id(record.message_id.clone().unwrap_or_default());
        }
        request
            .send()
            .await
            .map(|_| ())
            .or_aws("SQS", "SendMessage")
    }
}

/// How often one message may be sent again to follow work still running: at the most
/// 15 minutes apart (SQS's longest delay) that is two days.
pub const MAX_FOLLOW_UPS: u32 = 192;
/// The message attribute that counts a message's follow-ups.
pub const FOLLOW_UPS: &str = "landfall-follow-ups";

/// How many times this message was already sent again to follow running work.
pub fn follow_ups(record: &SqsMessage) -> u32 {
    record
        .message_attributes
        .get(FOLLOW_UPS)
        .and_then(|a| a.string_value.as_deref())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

impl DeadLetters {
    /// Sends the record's body to the source queue again, delayed by the error's
    /// `retry_after` (at most SQS's 15 minutes), counting the follow-up. False when there is
    /// no source queue, the count is spent, or the send failed: the record then fails as
    /// usual.
    async fn follow_up(&self, record: &SqsMessage, error: &FunctionError) -> bool {
        let Some(backoff) = &self.backoff else {
            return false;
        };
        let count = follow_ups(record);
        if count >= MAX_FOLLOW_UPS {
            tracing::warn!(
                message_id = record.message_id,
                count,
                "followed as often as allowed; the message fails as usual"
            );
            return false;
        }
        let delay = error
            .retry_after
            .unwrap_or(backoff.first)
            .as_secs()
            .clamp(1, 900) as i32;
        let sent = self
            .client
            .send_message()
            .queue_url(&backoff.source_queue_url)
            .message_body(record.body.clone().unwrap_or_default())
            .delay_seconds(delay)
            .message_attributes(
                FOLLOW_UPS,
                MessageAttributeValue::builder()
                    .data_type("Number")
                    .string_value((count + 1).to_string())
                    .build()
                    .expect("data type and value are set"),
            )
            .send()
            .await
            .or_aws("SQS", "SendMessage");
        match sent {
            Ok(_) => {
                tracing::info!(
                    message_id = record.message_id,
                    delay,
                    follow_up = count + 1,
                    "still running: the message comes back as a new one"
                );
                true
            }
            Err(err) => {
                tracing::warn!(message_id = record.message_id, error = %err, "could not send the follow-up; the message comes back as a receive");
                false
            }
        }
    }
}

/// Accounting for one batch: which records failed and how.
pub struct BatchOutcome<'a> {
    records: &'a [SqsMessage],
    failures: Vec<(usize, FunctionError)>,
}

impl<'a> BatchOutcome<'a> {
    /// No record failed yet.
    pub fn new(event: &'a SqsEvent) -> Self {
        BatchOutcome {
            records: &event.records,
            failures: Vec::new(),
        }
    }

    /// The batch's records.
    pub fn records(&self) -> &'a [SqsMessage] {
        self.records
    }

    /// Marks record `index` as failed. A second failure of the same record keeps the first.
    pub fn fail(&mut self, index: usize, error: FunctionError) {
        if !self.failures.iter().any(|(i, _)| *i == index) {
            self.failures.push((index, error));
        }
    }

    /// Whether record `index` has failed.
    pub fn failed(&self, index: usize) -> bool {
        self.failures.iter().any(|(i, _)| *i == index)
    }

    fn is_fifo(&self) -> bool {
        self.records.iter().any(|r| {
            r.event_source_arn
                .as_deref()
                .is_some_and(|arn| arn.ends_with(".fifo"))
        })
    }

    /// Dead-letters permanent failures, reports the rest, and builds the batch response.
    pub async fn finish(
        mut self,
        dead_letters: Option<&DeadLetters>,
    ) -> Result<SqsBatchResponse, FunctionError> {
        self.failures.sort_by_key(|(i, _)| *i);
        if self.is_fifo() {
            if let Some(&(first, _)) = self.failures.first() {
                for later in first + 1..self.records.len() {
                    self.fail(
                        later,
                        FunctionError::retryable(
                            "not processed: an earlier message of this FIFO batch failed",
                        ),
                    );
                }
                self.failures.sort_by_key(|(i, _)| *i);
            }
        }

        let mut reported = Vec::new();
        let mut first_error = None;
        for (index, error) in &self.failures {
            let record = &self.records[*index];
            let message_id = record.message_id.clone().unwrap_or_default();
            if error.still_running
                && !self.is_fifo()
                && match dead_letters {
                    Some(dlq) => dlq.follow_up(record, error).await,
                    None => false,
                }
            {
                continue;
            }
            let sent_to_dlq = match (error.disposition, dead_letters) {
                (Disposition::Permanent, Some(dlq)) => match dlq.send(record, error).await {
                    Ok(()) => true,
                    Err(send_error) => {
                        tracing::error!(message_id, error = %send_error, "could not dead-letter the message; it goes back to the queue");
                        false
                    }
                },
                _ => false,
            };
            tracing::warn!(
                message_id,
                error_type = error.disposition.as_str(),
                error = %error.message,
                dead_lettered = sent_to_dlq,
                "record failed"
            );
            metrics::counter!("RecordsFailed", "disposition" => error.disposition.as_str())
                .increment(1);
            if !sent_to_dlq {
                if let Some(failures) = dead_letters {
                    failures.back_off(record, error).await;
                }
                let mut failure = BatchItemFailure::default();
                failure.item_identifier = message_id;
                reported.push(failure);
                first_error.get_or_insert(error);
            }
        }
        metrics::counter!("RecordsReceived").increment(self.records.len() as u64);

        if !self.records.is_empty() && reported.len() == self.records.len() {
            let first = first_error.expect("every record failed, so one error exists");
            return Err(FunctionError {
                disposition: first.disposition,
                retry_after: first.retry_after,
                still_running: false,
                message: format!(
                    "all {} records of the batch failed; first: {}",
                    self.records.len(),
                    first.message
                ),
            });
        }
        let mut response = SqsBatchResponse::default();
        response.batch_item_failures = reported;
        Ok(response)
    }
}

/// `first × 2^(receive − 1)`, capped at `max`.
pub fn retry_delay(
    first: std::time::Duration,
    max: std::time::Duration,
    receive: u32,
) -> std::time::Duration {
    first
        .saturating_mul(1 << receive.saturating_sub(1).min(20))
        .min(max)
}

/// The common case: handle records independently, up to `concurrency` at a time
/// (one at a time, in order, on FIFO queues).
pub async fn process_each<'a, F, Fut>(
    event: &'a SqsEvent,
    dead_letters: Option<&DeadLetters>,
    concurrency: usize,
    handle: F,
) -> Result<SqsBatchResponse, FunctionError>
where
    F: Fn(usize, &'a SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), FunctionError>>,
{
    let mut outcome = BatchOutcome::new(event);
    if outcome.is_fifo() {
        for (index, record) in event.records.iter().enumerate() {
            if let Err(err) = handle(index, record).await {
                outcome.fail(index, err);
                break;
            }
        }
    } else {
        let results: Vec<_> = stream::iter(event.records.iter().enumerate())
            .map(|(index, record)| {
                let fut = handle(index, record);
                async move { (index, fut.await) }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
        for (index, result) in results {
            if let Err(err) = result {
                outcome.fail(index, err);
            }
        }
    }
    outcome.finish(dead_letters).await
}

#[cfg(test)]
mod tests;
