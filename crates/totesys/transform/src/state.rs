//! The transform's durable state, split so that an object reads and writes only what its
//! transform needs (`SourceTable::state_group`): one small gzip JSON object per group in the
//! processed bucket, `<prefix><group>.json.gz` — the joined rows of address and counterparty,
//! of department and staff; for every other table only the objects it absorbed — and the
//! calendar, `<prefix>calendar.json.gz`, the days dim_date holds. So an object's cost follows
//! the object, not the history before it, and objects of different groups commit at once.
//!
//! Each is replaced only by a conditional write (S3 `If-Match` on the ETag that was read,
//! `If-None-Match: *` for the first), so of two transforms that read the same state exactly
//! one commits; the other re-reads and redoes its object on top of the winner's state.
//!
//! Why this makes concurrent deliveries equal to in-order ones: every commit of a group is a
//! transform of one object applied to the state left by all commits of that group before it
//! — a serial history — and an object's transform reads nothing outside its group
//! (`landfall_totesys_star::transform` explains why the order of that history does not
//! change the warehouse). A transform whose commit loses rewrites its Parquet under the same
//! keys before it tries again, and nothing is marked ready before its commit wins.
//!
//! A group's state also records which source object versions it has absorbed, so a
//! redelivery after a crash between the commit and the ready marker publishes the committed
//! attempt's output instead of transforming the object a second time.

use landfall_aws::AwsError;
use landfall_failure::{Classify, Disposition};
use landfall_totesys_star::transform::{Changes, MemoryLookup};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Read;
use std::marker::PhantomData;
use time::Date;

/// Absorbed-object entries older than this are dropped at commit. They only bridge a crash
/// between a commit and its ready marker (redelivered within minutes); an object delivered
/// again later is transformed again, and the warehouse keeps what it held: its dimension
/// versions are not newer, its fact versions are there (their unique key).
pub const ABSORBED_RETENTION_SECONDS: u64 = 3 * 86_400;

/// The state as it was kept before it was split, whole, under `<prefix>transform.json.gz`: a
/// group stored for the first time starts from its rows there (and the calendar from its
/// dates), so an upgrade carries on where the old state stopped.
const UNSPLIT: &str = "transform";
const CALENDAR: &str = "calendar";

/// One state group's state.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The latest version of every joined row of the group (none for the other tables).
    pub lookup: MemoryLookup,
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
    /// The state after one object: its changes, and the object itself.
    pub fn absorb(mut self, changes: &Changes, source: String, absorbed: Absorbed) -> Snapshot {
        self.lookup.apply(changes);
        let horizon = absorbed.at.saturating_sub(ABSORBED_RETENTION_SECONDS);
        self.absorbed.retain(|_, entry| entry.at >= horizon);
        self.absorbed.insert(source, absorbed);
        self
    }
}

/// The days dim_date holds, as published: one contiguous span, which only grows.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Calendar {
    pub dates: Option<(Date, Date)>,
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    serde_json::to_writer(&mut gz, value).expect("the state serialises");
    gz.finish().expect("writing to memory")
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let mut json = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut json)
        .map_err(|e| format!("not gzip: {e}"))?;
    serde_json::from_slice(&json).map_err(|e| format!("not a transform state: {e}"))
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

/// A state as read: its ETag is the condition of the next commit (None: not stored yet).
pub struct Loaded<T> {
    pub etag: Option<String>,
    pub value: T,
}

pub enum Commit {
    Committed,
    /// Another transform committed since this state was read.
    Conflict,
}

/// One state object.
#[derive(Clone, Debug)]
pub struct StateObject<T> {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    value: PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned + Default> StateObject<T> {
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, key: &str) -> StateObject<T> {
        StateObject {
            s3,
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            value: PhantomData,
        }
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    fn fail(&self, cause: impl Into<StateFailure>) -> StateError {
        StateError {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            cause: cause.into(),
        }
    }

    /// The state, or the default one with no ETag when it is not stored yet.
    pub async fn load(&self) -> Result<Loaded<T>, StateError> {
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
                    value: T::default(),
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
        let value =
            decode(&bytes).map_err(|message| self.fail(StateFailure::Undecodable(message)))?;
        Ok(Loaded { etag, value })
    }

    /// Replaces the state read with `etag` by `next`, unless someone else replaced it first.
    pub async fn commit(&self, etag: Option<&str>, next: &T) -> Result<Commit, StateError> {
        let mut put = self
            .s3
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json")
            .content_encoding("gzip")
            .body(encode(next).into());
        put = match etag {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.send().await {
            Ok(_) => Ok(Commit::Committed),
            // 412: the condition failed; 409: a concurrent conditional write is in flight
            // (S3 user guide, "How to prevent object overwrites with conditional writes").
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

/// The state objects under one prefix of the processed bucket.
#[derive(Clone, Debug)]
pub struct States {
    s3: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

impl States {
    pub fn new(s3: aws_sdk_s3::Client, bucket: &str, prefix: &str) -> States {
        States {
            s3,
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    fn object<T: Serialize + DeserializeOwned + Default>(&self, name: &str) -> StateObject<T> {
        let key = format!("{}{name}.json.gz", self.prefix);
        StateObject::new(self.s3.clone(), &self.bucket, &key)
    }

    /// A state group's object (`SourceTable::state_group`).
    pub fn group(&self, group: &str) -> StateObject<Snapshot> {
        self.object(group)
    }

    pub fn calendar(&self) -> StateObject<Calendar> {
        self.object(CALENDAR)
    }

    /// A group's state; one not stored yet starts from the group's rows of the unsplit state,
    /// when there is one (its fact versions and absorbed objects are not needed any more).
    pub async fn load_group(&self, group: &str) -> Result<Loaded<Snapshot>, StateError> {
        let loaded = self.group(group).load().await?;
        if loaded.etag.is_some() {
            return Ok(loaded);
        }
        let unsplit = self.object::<Snapshot>(UNSPLIT).load().await?.value;
        Ok(Loaded {
            etag: None,
            value: Snapshot {
                lookup: unsplit.lookup.only(group),
                absorbed: BTreeMap::new(),
            },
        })
    }

    /// The calendar; one not stored yet starts from the unsplit state's dates.
    pub async fn load_calendar(&self) -> Result<Loaded<Calendar>, StateError> {
        let loaded = self.calendar().load().await?;
        if loaded.etag.is_some() {
            return Ok(loaded);
        }
        let unsplit = self.object::<Calendar>(UNSPLIT).load().await?.value;
        Ok(Loaded {
            etag: None,
            value: unsplit,
        })
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

    fn address() -> Record {
        record(
            SourceTable::Address,
            r#"{"address_id":5,"address_line_1":"1 A St","address_line_2":null,"district":null,"city":"C","postal_code":"P","country":"X","phone":"1","created_at":"2024-01-01T00:00:00.000","last_updated":"2024-01-01T10:00:00.125"}"#,
        )
    }

    #[test]
    fn a_snapshot_survives_encoding_with_rows_and_absorbed_objects() {
        let (_, changes) = transform([(1, address())], &MemoryLookup::default()).unwrap();
        let snapshot = Snapshot::default().absorb(
            &changes,
            "address/x.jsonl.gz@v1".into(),
            Absorbed {
                tag: "t".into(),
                at: 1_000_000,
            },
        );
        let back: Snapshot = decode(&encode(&snapshot)).unwrap();
        assert_eq!(back.lookup.latest(SourceTable::Address, 5), Some(address()));
        assert_eq!(back.absorbed, snapshot.absorbed);
        let calendar = Calendar {
            dates: Some((
                time::macros::date!(2024 - 01 - 01),
                time::macros::date!(2024 - 02 - 01),
            )),
        };
        assert_eq!(decode::<Calendar>(&encode(&calendar)).unwrap(), calendar);
    }

    /// The state as stored before the split (rows, fact versions, dates and absorbed objects
    /// in one object) still reads: as a group's rows and as the calendar.
    #[test]
    fn the_unsplit_state_reads_as_each_groups_rows_and_as_the_calendar() {
        let unsplit = serde_json::json!({
            "lookup": {
                "rows": [serde_json::to_value(address()).unwrap()],
                "facts": [["SalesOrder", 7, ["2024-01-01", "10:00:00.125"]]],
            },
            "dates": ["2024-01-01", "2024-02-01"],
            "absorbed": {"address/x.jsonl.gz@v1": {"tag": "t", "at": 1}},
        });
        let bytes = encode(&unsplit);
        let snapshot: Snapshot = decode(&bytes).unwrap();
        let group = SourceTable::Address.state_group();
        assert_eq!(
            snapshot
                .lookup
                .clone()
                .only(group)
                .latest(SourceTable::Address, 5),
            Some(address())
        );
        assert!(snapshot.lookup.only("sales_order").is_empty());
        let calendar: Calendar = decode(&bytes).unwrap();
        assert_eq!(
            calendar.dates,
            Some((
                time::macros::date!(2024 - 01 - 01),
                time::macros::date!(2024 - 02 - 01)
            ))
        );
    }

    #[test]
    fn absorbed_entries_expire_after_the_retention() {
        let entry = |at| Absorbed {
            tag: "t".into(),
            at,
        };
        let old = Snapshot::default().absorb(&Default::default(), "a@1".into(), entry(10));
        let later = old.absorb(
            &Default::default(),
            "b@1".into(),
            entry(10 + ABSORBED_RETENTION_SECONDS + 1),
        );
        assert_eq!(later.absorbed.keys().collect::<Vec<_>>(), ["b@1"]);
    }

    #[test]
    fn an_unreadable_state_is_an_error_not_an_empty_state() {
        assert!(decode::<Snapshot>(b"not gzip").is_err());
    }
}
