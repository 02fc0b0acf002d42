//! DynamoDB's batch calls as AWS defines them, not as an emulator forgives them: at most 25
//! writes or 100 reads per request, and whatever the service hands back unprocessed
//! (throttling, a partition busy) sent again with backoff until none is left — or, when
//! the time given runs out, a retryable failure. An item is never dropped silently.

use crate::{AwsError, SdkResultExt};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use landfall_failure::{Classify, Disposition};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One DynamoDB item, as the SDK holds it.
pub type Item = HashMap<String, AttributeValue>;

/// Most writes one `BatchWriteItem` may carry.
pub const WRITE_CHUNK: usize = 25;
/// Most keys one `BatchGetItem` may carry.
pub const GET_CHUNK: usize = 100;

/// Why a batch write or read did not take every item.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// A call failed.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// DynamoDB kept answering some items unprocessed until the budget ran out.
    #[error("DynamoDB {operation} on {table}: {left} items still unprocessed after {waited:?}")]
    Unprocessed {
        /// `BatchWriteItem` or `BatchGetItem`.
        operation: &'static str,
        /// The table the items are in.
        table: String,
        /// Items still unprocessed.
        left: usize,
        /// How long they were retried.
        waited: Duration,
    },
}

impl Classify for BatchError {
    fn disposition(&self) -> Disposition {
        match self {
            BatchError::Aws(err) => err.disposition(),
            BatchError::Unprocessed { .. } => Disposition::Retryable,
        }
    }
}

fn pause(attempt: u32) -> Duration {
    Duration::from_millis(50u64 << attempt.min(6))
}

/// Puts every item into `table`, in chunks of [`WRITE_CHUNK`], within `budget`.
pub async fn put_all(
    client: &Client,
    table: &str,
    items: Vec<Item>,
    budget: Duration,
) -> Result<(), BatchError> {
    let started = Instant::now();
    let mut requests: Vec<WriteRequest> = items
        .into_iter()
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|put| WriteRequest::builder().put_request(put).build())
                .map_err(|e| AwsError::invalid_request("DynamoDB", "BatchWriteItem", e))
        })
        .collect::<Result<_, _>>()?;
    let mut attempt = 0;
    while !requests.is_empty() {
        let rest = requests.split_off(requests.len().min(WRITE_CHUNK));
        let chunk = std::mem::replace(&mut requests, rest);
        let out = client
            .batch_write_item()
            .request_items(table, chunk)
            .send()
            .await
            .or_aws("DynamoDB", "BatchWriteItem")?;
        let unprocessed = out
            .unprocessed_items
            .and_then(|mut m| m.remove(table))
            .unwrap_or_default();
        if !unprocessed.is_empty() {
            if started.elapsed() + pause(attempt) > budget {
                return Err(BatchError::Unprocessed {
                    operation: "BatchWriteItem",
                    table: table.to_owned(),
                    left: unprocessed.len() + requests.len(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(pause(attempt)).await;
            attempt += 1;
            requests.extend(unprocessed);
        }
    }
    Ok(())
}

/// The items of `table` with these keys (absent ones are not returned), strongly
/// consistent, in chunks of [`GET_CHUNK`], within `budget`.
pub async fn get_all(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    budget: Duration,
) -> Result<Vec<Item>, BatchError> {
    let started = Instant::now();
    let mut found = Vec::new();
    let mut keys = keys;
    let mut attempt = 0;
    while !keys.is_empty() {
        let rest = keys.split_off(keys.len().min(GET_CHUNK));
        let chunk = std::mem::replace(&mut keys, rest);
        let request = KeysAndAttributes::builder()
            .set_keys(Some(chunk))
            .consistent_read(true)
            .build()
            .map_err(|e| AwsError::invalid_request("DynamoDB", "BatchGetItem", e))?;
        let out = client
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
            .or_aws("DynamoDB", "BatchGetItem")?;
        found.extend(
            out.responses
                .and_then(|mut m| m.remove(table))
                .unwrap_or_default(),
        );
        let unprocessed = out
            .unprocessed_keys
            .and_then(|mut m| m.remove(table))
            .map(|k| k.keys)
            .unwrap_or_default();
        if !unprocessed.is_empty() {
            if started.elapsed() + pause(attempt) > budget {
                return Err(BatchError::Unprocessed {
                    operation: "BatchGetItem",
                    table: table.to_owned(),
                    left: unprocessed.len() + keys.len(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(pause(attempt)).await;
            attempt += 1;
            keys.extend(unprocessed);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    //! moto processes every item and ignores the chunk limits; AWS does neither.
    use super::*;
    use aws_sdk_dynamodb::operation::batch_get_item::BatchGetItemOutput;
    use aws_sdk_dynamodb::operation::batch_write_item::BatchWriteItemOutput;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn item(n: usize) -> Item {
        HashMap::from([("pk".to_owned(), AttributeValue::S(format!("f{n}")))])
    }

    fn put_of(n: usize) -> WriteRequest {
        WriteRequest::builder()
            .put_request(
                PutRequest::builder()
                    .set_item(Some(item(n)))
                    .build()
                    .unwrap(),
            )
            .build()
    }

    #[tokio::test]
    async fn writes_go_in_chunks_of_25_and_unprocessed_ones_are_sent_again() {
        let sent = Arc::new(AtomicUsize::new(0));
        let counted = sent.clone();
        // The first request comes back with two items unprocessed; the rest succeed.
        let answered = std::sync::atomic::AtomicBool::new(false);
        let first = mock!(Client::batch_write_item)
            .match_requests(move |r| {
                r.request_items().unwrap()["audit"].len() == WRITE_CHUNK
                    && !answered.swap(true, Ordering::SeqCst)
            })
            .then_output(|| {
                BatchWriteItemOutput::builder()
                    .unprocessed_items("audit", vec![put_of(0), put_of(1)])
                    .build()
            });
        let rest = mock!(Client::batch_write_item)
            .match_requests(move |r| {
                let n = r.request_items().unwrap()["audit"].len();
                assert!(n <= WRITE_CHUNK, "{n} writes in one request");
                counted.fetch_add(n, Ordering::SeqCst);
                true
            })
            .then_output(|| BatchWriteItemOutput::builder().build());
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&first, &rest]);
        let items = (0..60).map(item).collect();
        put_all(&client, "audit", items, Duration::from_secs(5))
            .await
            .unwrap();
        // 25 answered by `first` (two of them sent again), then 35 more and those two.
        assert_eq!(sent.load(Ordering::SeqCst), 35 + 2);
        assert_eq!(first.num_calls(), 1);
    }

    #[tokio::test]
    async fn items_still_unprocessed_when_time_is_up_are_a_retryable_failure() {
        let busy = mock!(Client::batch_write_item).then_output(|| {
            BatchWriteItemOutput::builder()
                .unprocessed_items("audit", vec![put_of(3)])
                .build()
        });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&busy]);
        let err = put_all(&client, "audit", vec![item(3)], Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(
            matches!(err, BatchError::Unprocessed { left: 1, .. }),
            "{err}"
        );
        assert_eq!(err.disposition(), Disposition::Retryable);
        assert!(busy.num_calls() >= 2, "sent again before giving up");
    }

    #[tokio::test]
    async fn reads_go_in_chunks_of_100_and_unprocessed_keys_are_asked_again() {
        let asked = Arc::new(AtomicUsize::new(0));
        let counted = asked.clone();
        let first = mock!(Client::batch_get_item)
            .match_requests(|r| r.request_items().unwrap()["audit"].keys().len() == GET_CHUNK)
            .then_output(|| {
                BatchGetItemOutput::builder()
                    .responses("audit", (0..99).map(item).collect())
                    .unprocessed_keys(
                        "audit",
                        KeysAndAttributes::builder().keys(item(99)).build().unwrap(),
                    )
                    .build()
            });
        let rest = mock!(Client::batch_get_item)
            .match_requests(move |r| {
                counted.fetch_add(
                    r.request_items().unwrap()["audit"].keys().len(),
                    Ordering::SeqCst,
                );
                true
            })
            .then_output(|| {
                BatchGetItemOutput::builder()
                    .responses("audit", vec![item(100)])
                    .build()
            });
        let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&first, &rest]);
        let found = get_all(
            &client,
            "audit",
            (0..130).map(item).collect(),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        // The 30 keys past the first chunk and the one left unprocessed, in one request.
        assert_eq!(asked.load(Ordering::SeqCst), 30 + 1);
        assert_eq!(found.len(), 99 + 1);
    }
}
