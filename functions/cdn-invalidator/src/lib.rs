//! cdn-invalidator: changes in a website bucket (S3 → SQS) become one CloudFront
//! invalidation per distribution and batch. The rules live in `landfall-cdn`; this crate
//! adapts SQS records to them and maps each failure back to the records it came from.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_smithy_types::DateTime;
use futures::stream::{self, StreamExt};
use landfall_aws::Aws;
use landfall_runtime::{ConfigError, Env, FunctionError};
use landfall_sqs_batch::{receive_count, s3_changes, BatchOutcome, DeadLetters};
use landfall_website_cdn::{
    distributions::Distributions, plan, ChangeFilter, Invalidator, Settings,
};
use std::collections::{BTreeMap, BTreeSet};

/// Object checks (S3 version look-ups) run this many at a time within a batch.
const CHECK_CONCURRENCY: usize = 16;

pub struct App {
    settings: Settings,
    filter: ChangeFilter,
    distributions: Distributions,
    invalidator: Invalidator,
    dead_letters: Option<DeadLetters>,
}

/// The keys one distribution must invalidate, and the records that asked for them.
#[derive(Default)]
struct Group<'a> {
    keys: BTreeSet<String>,
    records: BTreeSet<usize>,
    message_ids: BTreeSet<&'a str>,
}

impl App {
    /// Built once per container: configuration, SDK clients and caches.
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let settings = Settings::from_env(env)?;
        let aws = Aws::load(env).await?;
        let dead_letters = DeadLetters::from_env(env, aws.sqs())?;
        Ok(App {
            filter: ChangeFilter::new(settings.policy, aws.s3()),
            distributions: Distributions::new(settings.distributions.clone(), aws.cloudfront()),
            invalidator: Invalidator::new(aws.cloudfront()),
            settings,
            dead_letters,
        })
    }

    pub async fn handle(&self, event: &SqsEvent) -> Result<SqsBatchResponse, FunctionError> {
        let mut outcome = BatchOutcome::new(event);
        let targets: Vec<_> = stream::iter(event.records.iter().enumerate())
            .map(|(index, record)| async move { (index, self.targets(record).await) })
            .buffered(CHECK_CONCURRENCY)
            .collect()
            .await;

        let mut groups: BTreeMap<String, Group> = BTreeMap::new();
        for (index, result) in targets {
            match result {
                Ok(pairs) => {
                    for (distribution, key) in pairs {
                        let group = groups.entry(distribution).or_default();
                        group.keys.insert(key);
                        group.records.insert(index);
                        group
                            .message_ids
                            .insert(event.records[index].message_id.as_deref().unwrap_or(""));
                    }
                }
                Err(err) => outcome.fail(index, err),
            }
        }

        for (distribution, group) in &groups {
            let invalidation = plan(
                distribution,
                group.keys.iter().map(String::as_str),
                group.message_ids.iter().copied(),
                self.settings.wildcard_threshold,
            );
            let redelivered_since =
                redelivered_since(group.records.iter().map(|&i| &event.records[i]));
            match self
                .invalidator
                .submit(&invalidation, redelivered_since)
                .await
            {
                Ok(submitted) => {
                    tracing::info!(
                        distribution,
                        invalidation_id = submitted.id,
                        already_existed = submitted.already_existed,
                        whole_site = submitted.whole_site,
                        keys = group.keys.len(),
                        paths = invalidation.paths.len(),
                        caller_reference = invalidation.caller_reference,
                        "invalidation submitted"
                    );
                    if !submitted.already_existed {
                        metrics::counter!("InvalidationsCreated").increment(1);
                        let paths = if submitted.whole_site {
                            1
                        } else {
                            invalidation.paths.len()
                        };
                        metrics::counter!("InvalidationPaths").increment(paths as u64);
                    }
                }
                Err(err) => {
                    let mut failure = FunctionError::from_error(&err);
                    if err.limited() {
                        // Even `/*` waits: come back when earlier invalidations are done,
                        // not at once (and not a receive burned every few seconds).
                        failure = failure.retry_after(landfall_website_cdn::LIMITED_RETRY_AFTER);
                    }
                    for &index in &group.records {
                        outcome.fail(index, failure.clone());
                    }
                }
            }
        }
        outcome.finish(self.dead_letters.as_ref()).await
    }

    /// (distribution, key) pairs one record asks to invalidate.
    async fn targets(&self, record: &SqsMessage) -> Result<Vec<(String, String)>, FunctionError> {
        let changes = s3_changes(record)?;
        let mut pairs = Vec::new();
        for change in changes {
            if !self
                .filter
                .needs_invalidation(&change)
                .await
                .map_err(|e| FunctionError::from_error(&e))?
            {
                tracing::info!(
                    bucket = change.bucket,
                    key = change.key,
                    "first upload of a new key: nothing cached to invalidate"
                );
                continue;
            }
            let distributions = self
                .distributions
                .for_bucket(&change.bucket)
                .await
                .map_err(|e| FunctionError::from_error(&e))?;
            pairs.extend(distributions.into_iter().map(|d| (d, change.key.clone())));
        }
        Ok(pairs)
    }
}

/// For a batch that SQS delivers again (a receive count above 1): when its oldest
/// message was first sent, so the earlier attempt's invalidation can be found.
fn redelivered_since<'a>(records: impl Iterator<Item = &'a SqsMessage>) -> Option<DateTime> {
    let mut redelivered = false;
    let mut oldest_sent_ms: Option<i64> = None;
    for record in records {
        redelivered |= receive_count(record) > 1;
        if let Some(sent) = record
            .attributes
            .get("SentTimestamp")
            .and_then(|s| s.parse::<i64>().ok())
        {
            oldest_sent_ms = Some(oldest_sent_ms.map_or(sent, |o: i64| o.min(sent)));
        }
    }
    redelivered.then(|| DateTime::from_millis(oldest_sent_ms.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> SqsEvent {
        let path = format!(
            "{}/../../events/cdn-invalidator/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    #[test]
    fn sample_events_parse_as_the_function_sees_them() {
        use landfall_s3_events::Notification;
        let change = sample("website-change.json");
        let body = change.records[0].body.as_deref().unwrap();
        let Notification::Changes(changes) = landfall_s3_events::parse(body).unwrap() else {
            panic!("changes expected")
        };
        assert_eq!(changes[0].key, "docs/release notes.html");
        let test = sample("test-event.json");
        let body = test.records[0].body.as_deref().unwrap();
        assert!(matches!(
            landfall_s3_events::parse(body),
            Ok(Notification::Test { .. })
        ));
    }

    #[test]
    fn only_redelivered_batches_look_for_an_earlier_invalidation() {
        let mut event = sample("website-change.json");
        assert_eq!(redelivered_since(event.records.iter()), None);
        event.records[0]
            .attributes
            .insert("ApproximateReceiveCount".into(), "2".into());
        assert_eq!(
            redelivered_since(event.records.iter()),
            Some(DateTime::from_millis(1_795_306_819_000))
        );
    }
}
