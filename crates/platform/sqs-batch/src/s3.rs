//! The start every consumer of S3 notifications delivered by SQS shares: the dead-letter
//! set-up from the environment, the record → object changes adapter (test events skipped),
//! the receive count, and a batch loop that hands each record's changes to the pipeline.

use crate::{process_each, DeadLetters};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use landfall_env::{ConfigError, Env};
use landfall_failure::FunctionError;
use landfall_s3_events::{Notification, ObjectChange};
use std::future::Future;
use std::time::Duration;

/// How many times SQS has handed this message out, this delivery included.
pub fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

/// The object changes a record carries; none for `s3:TestEvent` (sent once when a
/// notification is configured). A body that is no S3 notification is a permanent failure.
pub fn s3_changes(record: &SqsMessage) -> Result<Vec<ObjectChange>, FunctionError> {
    let body = record.body.as_deref().unwrap_or_default();
    match landfall_s3_events::parse(body).map_err(|e| FunctionError::from_error(&e))? {
        Notification::Test { bucket } => {
            tracing::info!(
                message_id = record.message_id,
                bucket,
                "skipping s3:TestEvent"
            );
            Ok(Vec::new())
        }
        Notification::Changes(changes) => Ok(changes),
    }
}

impl DeadLetters {
    /// `DEAD_LETTER_QUEUE_URL` (None when unset: failures then only return to the queue).
    /// With `SOURCE_QUEUE_URL` too, a retryable failure comes back after
    /// `RETRY_FIRST_SECONDS` (60) doubling per receive up to `RETRY_MAX_SECONDS` (900),
    /// instead of the queue's whole visibility timeout.
    pub fn from_env(
        env: &Env,
        sqs: aws_sdk_sqs::Client,
    ) -> Result<Option<DeadLetters>, ConfigError> {
        let Some(dlq) = env.optional("DEAD_LETTER_QUEUE_URL") else {
            return Ok(None);
        };
        let dead_letters = DeadLetters::new(sqs, dlq);
        Ok(Some(match env.optional("SOURCE_QUEUE_URL") {
            Some(source) => dead_letters.with_retry_backoff(
                source,
                Duration::from_secs(env.parse_or("RETRY_FIRST_SECONDS", 60)?),
                Duration::from_secs(env.parse_or("RETRY_MAX_SECONDS", 900)?),
            ),
            None => dead_letters,
        }))
    }
}

/// One SQS record of S3 changes, as a consumer's handler receives it.
#[derive(Debug)]
pub struct Delivery<'a> {
    /// The SQS record.
    pub record: &'a SqsMessage,
    /// The objects it says changed.
    pub changes: Vec<ObjectChange>,
    /// 1 on the first delivery; compare with the queue's maxReceiveCount to know the last.
    pub receive_count: u32,
}

/// [`process_each`] for S3 notifications: each record's changes go to `handle`, up to
/// `concurrency` records at a time; a record that is no notification fails alone.
pub async fn process_s3_changes<'a, F, Fut>(
    event: &'a SqsEvent,
    dead_letters: Option<&DeadLetters>,
    concurrency: usize,
    handle: F,
) -> Result<SqsBatchResponse, FunctionError>
where
    F: Fn(Delivery<'a>) -> Fut,
    Fut: Future<Output = Result<(), FunctionError>>,
{
    process_each(event, dead_letters, concurrency, |_, record| {
        let delivery = s3_changes(record).map(|changes| Delivery {
            record,
            changes,
            receive_count: receive_count(record),
        });
        let handled = delivery.map(&handle);
        async move {
            match handled {
                Ok(fut) => fut.await,
                Err(err) => Err(err),
            }
        }
    })
    .await
}

/// The file pipelines' consumer: one record at a time (each file is heavy, and Lambda scales
/// by concurrency), each object it says was created (not removed) handed to `handle` with the
/// record's receive count, in order; the first failure fails the record.
pub async fn process_created_objects<F, Fut>(
    event: &SqsEvent,
    dead_letters: Option<&DeadLetters>,
    handle: F,
) -> Result<SqsBatchResponse, FunctionError>
where
    F: Fn(ObjectChange, u32) -> Fut,
    Fut: Future<Output = Result<(), FunctionError>>,
{
    let handle = &handle;
    process_s3_changes(event, dead_letters, 1, |delivery| async move {
        let created = delivery
            .changes
            .into_iter()
            .filter(|c| c.kind == landfall_s3_events::ChangeKind::Created);
        for change in created {
            handle(change, delivery.receive_count).await?;
        }
        Ok(())
    })
    .await
}
