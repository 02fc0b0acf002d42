//! The transform's durable state: one gzip JSON object in the processed bucket, replaced only
//! by a conditional write (S3 `If-Match` on the ETag that was read, `If-None-Match: *` for the
//! first), so of two transforms that read the same state exactly one commits; the other
//! re-reads and redoes its object on top of the winner's state.
//!
//! Why this makes concurrent deliveries equal to in-order ones: every commit is a transform of
//! one object applied to the state left by all commits before it — a serial history — and
//! the transform's output is determined by that state (`landfall_totesys_star::transform` explains
//! why the order of that history does not change the warehouse). A transform whose commit
//! loses rewrites its Parquet under the same keys before it tries again, and nothing is
//! marked ready before its commit wins.
//!
//! The state also records which source object versions it has absorbed, so a redelivery
//! after a crash between the commit and the ready marker publishes the committed attempt's
//! output instead of transforming the object a second time.

use landfall_aws::AwsError;
use landfall_failure::{Classify, Disposition};
use landfall_totesys_star::transform::{Changes, MemoryLookup};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use time::Date;

/// Absorbed-object entries older than this are dropped at commit. They only bridge a crash
/// between a commit and its ready marker (redelivered within minutes); an object delivered
/// again later is transformed again, which emits nothing: its rows are no longer newer than
/// the state and its fact versions are known.
pub const ABSORBED_RETENTION_SECONDS: u64 = 3 * 86_400;

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The latest version of every joined row and every fact version emitted.
    pub lookup: MemoryLookup,
    /// The dates dim_date already holds (one contiguous span).
    pub dates: Option<(Date, Date)>,
    /// Source object versions absorbed: `<key>@<version>` → how its output is named.
    pub absorbed: BTreeMap<String, Absorbed>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Absorbed {
    /// Names the committed attempt's Parquet and manifest (see `outputs`).
    pub tag: String,
    /// Unix seconds of the commit.
    pub at: u64,
}

impl Snapshot {
    /// The state after one object: its changes, the grown date span, and the object itself.
    pub fn absorb(
        mut self,
        changes: &Changes,
        dates: Option<(Date, Date)>,
        source: String,
        absorbed: Absorbed,
    ) -> Snapshot {
        self.lookup.apply(changes);
        if dates.is_some() {
            self.dates = dates;
        }
        let horizon = absorbed.at.saturating_sub(ABSORBED_RETENTION_SECONDS);
        self.absorbed.retain(|_, entry| entry.at >= horizon);
        self.absorbed.insert(source, absorbed);
        self
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        serde_json::to_writer(&mut gz, self).expect("the state serialises");
        gz.finish().expect("writing to memory")
    }

    pub fn decode(bytes: &[u8]) -> Result<Snapshot, String> {
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut json)
            .map_err(|e| format!("not gzip: {e}"))?;
        serde_json::from_slice(&json).map_err(|e| format!("not a transform state: {e}"))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("transform state s3://{bucket}/{key}")]
pub struct StateError {
    pub bucket: String,
    pub key: String,
    #[source]
    pub cause: StateFailure,
}

#[derive(Debug, thiserror::Error)]
pub enum StateFailure {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error("reading the body")]
    Read(#[source] aws_sdk_s3::primitives::ByteStreamError),
    /// A state that cannot be read must stop the pipeline, not be replaced by an empty one.
    #[error("{0}")]
    Undecodable(String),
}

impl Classify for StateError {
    fn disposition(&self) -> Disposition {
        match &self.cause {
            StateFailure::Aws(source) => source.disposition(),
            StateFailure::Read(_) => Disposition::Retryable,
            StateFailure::Undecodable(_) => Disposition::Permanent,
        }
    }
}

/// The state as read: its ETag is the condition of the next commit (None: no state yet).
pub struct Loaded {
    pub etag: Option<String>,
    pub snapshot: Snapshot,
}

pub enum Commit {
    Committed,
    /// Another transform committed since this state was read.
    Conflict,
}

#[derive(Clone, Debug)]
pub struct StateObject {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
}

impl StateObject {
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, key: &str) -> StateObject {
        StateObject {
            s3,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
        }
    }

    fn fail(&self, cause: impl Into<StateFailure>) -> StateError {
        StateError {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            cause: cause.into(),
        }
    }

    pub async fn load(&self) -> Result<Loaded, StateError> {
        let got = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .send()
            .await;
        let out = match got {
            Ok(out) => out,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(Loaded {
                    etag: None,
                    snapshot: Snapshot::default(),
                })
            }
            Err(err) => return Err(self.fail(AwsError::new("S3", "GetObject", err))),
        };
        let etag = out.e_tag().map(str::to_owned);
        let bytes = out
            .body
            .collect()
            .await
            .map_err(|e| self.fail(StateFailure::Read(e)))?
            .into_bytes();
        let snapshot = Snapshot::decode(&bytes)
            .map_err(|message| self.fail(StateFailure::Undecodable(message)))?;
        Ok(Loaded { etag, snapshot })
    }

    /// Replaces the state read with `etag` by `next`, unless someone else replaced it first.
    pub async fn commit(&self, etag: Option<&str>, next: &Snapshot) -> Result<Commit, StateError> {
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .content_encoding("gzip")
            .body(next.encode().into());
        put = match etag {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(_) => Ok(Commit::Committed),
            // 412: the condition failed; 409: a concurrent conditional write is in flight.
            Err(err)
                if matches!(
                    landfall_aws::error_code(&err),
                    Some("PreconditionFailed" | "ConditionalRequestConflict")
                ) || err
                    .raw_response()
                    .is_some_and(|r| matches!(r.status().as_u16(), 412 | 409)) =>
            {
                Ok(Commit::Conflict)
            }
            Err(err) => Err(self.fail(AwsError::new("S3", "PutObject", err))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_totesys_star::transform::{transform, Lookup};
    use landfall_totesys_star::{Record, SourceRow, SourceTable};

    fn record(table: SourceTable, line: &str) -> Record {
        Record::parse(table, &SourceRow::parse(line).unwrap()).unwrap()
    }

    #[test]
    fn a_snapshot_survives_encoding_with_rows_facts_dates_and_absorbed_objects() {
        let address = record(
            SourceTable::Address,
            r#"{"address_id":5,"address_line_1":"1 A St","address_line_2":null,"district":null,"city":"C","postal_code":"P","country":"X","phone":"1","created_at":"2024-01-01T00:00:00.000","last_updated":"2024-01-01T10:00:00.125"}"#,
        );
        let (_, changes) = transform([(1, address.clone())], &MemoryLookup::default()).unwrap();
        let dates = Some((
            time::macros::date!(2024 - 01 - 01),
            time::macros::date!(2024 - 02 - 01),
        ));
        let mut changes = changes;
        let fact = (SourceTable::SalesOrder, 7, address.version().2);
        changes.facts.push(fact);
        let snapshot = Snapshot::default().absorb(
            &changes,
            dates,
            "address/x.jsonl.gz@v1".into(),
            Absorbed {
                tag: "t".into(),
                at: 1_000_000,
            },
        );
        let back = Snapshot::decode(&snapshot.encode()).unwrap();
        assert_eq!(back.lookup.latest(SourceTable::Address, 5), Some(address));
        assert!(back.lookup.fact_seen(fact));
        assert_eq!(back.dates, dates);
        assert_eq!(back.absorbed, snapshot.absorbed);
    }

    #[test]
    fn absorbed_entries_expire_after_the_retention_and_dates_never_shrink_to_none() {
        let dates = Some((
            time::macros::date!(2024 - 01 - 01),
            time::macros::date!(2024 - 01 - 02),
        ));
        let entry = |at| Absorbed {
            tag: "t".into(),
            at,
        };
        let old = Snapshot::default().absorb(&Default::default(), dates, "a@1".into(), entry(10));
        let later = old.absorb(
            &Default::default(),
            None,
            "b@1".into(),
            entry(10 + ABSORBED_RETENTION_SECONDS + 1),
        );
        assert_eq!(later.absorbed.keys().collect::<Vec<_>>(), ["b@1"]);
        assert_eq!(later.dates, dates);
    }

    #[test]
    fn an_unreadable_state_is_an_error_not_an_empty_state() {
        assert!(Snapshot::decode(b"not gzip").is_err());
    }
}
