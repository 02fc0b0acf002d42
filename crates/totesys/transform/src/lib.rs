//! star-transform's work on one ingestion object (db-extract's gzip JSON lines):
//!
//! 1. note its sequence id against the last one processed for its table (SSM) and warn about
//!    skipped ids — then process it anyway;
//! 2. stream its versions (`landfall_totesys_star::transform::with_lines`: a bad line fails the object
//!    naming table, sequence id, line and column) into
//! 3. the transform against the durable state (`state`), write one Parquet file per
//!    warehouse table touched and a pending manifest, and commit the new state with a
//!    conditional write — a lost race redoes the object on the winner's state;
//! 4. publish the manifest under `ready/` for the warehouse loader.

pub mod outputs;
pub mod state;

use landfall_aws::parameters::{JsonParameters, ParameterError};
use landfall_aws::AwsError;
use landfall_failure::{Classify, Disposition};
use landfall_totesys_contract::ingestion::ObjectName;
use landfall_totesys_contract::processed::{
    manifest_key, output_key, restage, Manifest, Output, LOADED_PREFIX, PENDING_PREFIX,
    READY_PREFIX,
};
use landfall_totesys_star::transform::{missing_sequences, transform, with_lines, ObjectError};
use landfall_totesys_star::{extend_dates, SourceTable};
use state::{Absorbed, Commit, Snapshot, StateError, StateObject};
use std::io::BufReader;

/// Commit attempts per object before it goes back to the queue (each lost attempt means
/// another object committed, so the pipeline as a whole made progress).
pub const DEFAULT_COMMIT_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone)]
pub struct Settings {
    pub processed_bucket: String,
    /// The state object's key in the processed bucket.
    pub state_key: String,
    pub commit_attempts: u32,
}

/// One version of one ingestion object, as its notification names it.
pub use landfall_s3_events::{ObjectVersion, Version};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Transformed {
        table: &'static str,
        sequence: u64,
        versions: usize,
        manifest: String,
        outputs: Vec<Output>,
        /// Sequence ids skipped since the last one processed (a warning, not an error).
        missing: Vec<u64>,
        /// Commits lost to concurrent transforms before this one won.
        conflicts: u32,
    },
    /// This object version was committed before (a redelivery); its manifest is published.
    AlreadyDone { manifest: String },
}

#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    #[error(
        "{url}: not an ingestion object (<table>/<date>/<table>-<10-digit sequence>.jsonl.gz)"
    )]
    NotIngestion { url: String },
    #[error("{url}: {table:?} is not a source table of the star schema")]
    UnknownTable { url: String, table: String },
    #[error("{url}: the object (or this version of it) no longer exists")]
    Gone { url: String },
    #[error("{url}")]
    Read {
        url: String,
        #[source]
        source: AwsError,
    },
    #[error("{url}: reading the body")]
    Body {
        url: String,
        #[source]
        source: aws_sdk_s3::primitives::ByteStreamError,
    },
    #[error("{url}: {source}")]
    Rows {
        url: String,
        #[source]
        source: ObjectError,
    },
    #[error("{url}: encoding {table} as Parquet: {message}")]
    Encode {
        url: String,
        table: &'static str,
        message: String,
    },
    #[error("writing s3://{bucket}/{key}")]
    Write {
        bucket: String,
        key: String,
        #[source]
        source: AwsError,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("last sequence id: {0}")]
    Sequence(#[from] ParameterError),
    #[error(
        "{url}: the transform state changed under each of {attempts} attempts; trying again later"
    )]
    Contended { url: String, attempts: u32 },
}

impl Classify for TransformError {
    fn disposition(&self) -> Disposition {
        match self {
            TransformError::NotIngestion { .. }
            | TransformError::UnknownTable { .. }
            | TransformError::Encode { .. }
            | TransformError::Gone { .. } => Disposition::Permanent,
            // A foreign key to a row not seen yet passes once the other object arrives.
            TransformError::Rows { source, .. } if source.error.retryable => Disposition::Retryable,
            TransformError::Rows { .. } => Disposition::Permanent,
            TransformError::Read { source, .. } | TransformError::Write { source, .. } => {
                source.disposition()
            }
            TransformError::State(e) => e.disposition(),
            TransformError::Sequence(e) => e.disposition(),
            TransformError::Body { .. } | TransformError::Contended { .. } => {
                Disposition::Retryable
            }
        }
    }
}

pub struct Transformer {
    s3: aws_sdk_s3::Client,
    settings: Settings,
    state: StateObject,
    sequences: JsonParameters,
}

impl Transformer {
    /// `sequences`: where the last sequence id processed per table is kept.
    pub fn new(s3: aws_sdk_s3::Client, sequences: JsonParameters, settings: Settings) -> Self {
        Transformer {
            state: StateObject::new(s3.clone(), &settings.processed_bucket, &settings.state_key),
            s3,
            settings,
            sequences,
        }
    }

    /// One ingestion object into the star schema: identified by its key, its sequence id
    /// checked, then transformed against the shared state and committed — redone on the new
    /// state when another object's commit came first, at most `commit_attempts` times.
    pub async fn process(&self, source: &ObjectVersion) -> Result<Outcome, TransformError> {
        let url = source.url();
        let (name, table) = identify(source, &url)?;
        let (last, missing) = self.check_sequence(&name).await?;
        // Kept compressed: each attempt streams it through the transform again.
        let (body, upper) = self.read(source).await?;
        let object = Ingestion {
            url: &url,
            version: source.version.to_string(),
            name: &name,
            table,
            body: &body,
            upper,
        };
        let id = format!("{}@{}", source.key, source.version);
        let mut conflicts = 0;
        while conflicts < self.settings.commit_attempts {
            let loaded = self.state.load().await?;
            if let Some(absorbed) = loaded.snapshot.absorbed.get(&id) {
                let manifest = self.publish(name.stem, &absorbed.tag).await?;
                tracing::info!(
                    key = source.key,
                    manifest,
                    "already transformed; manifest published"
                );
                return Ok(Outcome::AlreadyDone { manifest });
            }
            let tag = outputs::attempt_tag();
            let written = self
                .write_attempt(&object, loaded.snapshot, &id, &tag)
                .await?;
            match self
                .state
                .commit(loaded.etag.as_deref(), &written.next)
                .await?
            {
                Commit::Committed => {
                    let ready = self.publish(name.stem, &tag).await?;
                    if last.is_none_or(|last| name.sequence > last) {
                        self.sequences
                            .save(name.table, &Some(name.sequence))
                            .await?;
                    }
                    return Ok(Outcome::Transformed {
                        table: table.name(),
                        sequence: name.sequence,
                        versions: written.versions,
                        manifest: ready,
                        outputs: written.manifest.outputs,
                        missing,
                        conflicts,
                    });
                }
                Commit::Conflict => {
                    conflicts += 1;
                    metrics::counter!("StateConflicts").increment(1);
                    tracing::info!(
                        key = source.key,
                        conflicts,
                        "another transform committed first; redoing this object on its state"
                    );
                    self.discard(&written).await;
                }
            }
        }
        Err(TransformError::Contended {
            url,
            attempts: conflicts,
        })
    }

    /// The last sequence id processed for the object's table, and the ids skipped since
    /// (warned about: objects lost or not delivered yet). Concurrent objects of one table
    /// may both read the old value; the worst case is a spurious gap warning, never a lost
    /// object (the sequence id only drives warnings).
    async fn check_sequence(
        &self,
        name: &ObjectName<'_>,
    ) -> Result<(Option<u64>, Vec<u64>), TransformError> {
        let last: Option<u64> = self.sequences.load(name.table).await?;
        let missing = missing_sequences(last, name.sequence);
        if !missing.is_empty() {
            tracing::warn!(
                table = name.table,
                sequence = name.sequence,
                last_processed = last,
                missing = ?missing,
                "sequence ids skipped: objects lost or not delivered yet; processing this one anyway"
            );
            metrics::counter!("MissingSequences", "table" => name.table.to_owned())
                .increment(missing.len() as u64);
        }
        Ok((last, missing))
    }

    /// One attempt: the object transformed against `snapshot`, its Parquet files and its
    /// pending manifest written under `tag`, and the state that absorbs it, to commit.
    async fn write_attempt(
        &self,
        object: &Ingestion<'_>,
        snapshot: Snapshot,
        id: &str,
        tag: &str,
    ) -> Result<Written, TransformError> {
        let (name, table) = (object.name, object.table);
        let rows_error = |source| TransformError::Rows {
            url: object.url.to_owned(),
            source,
        };
        let mut versions = 0;
        let lines = BufReader::new(flate2::read::GzDecoder::new(object.body));
        let (emitted, changes) = with_lines(table, name.sequence, lines, |records| {
            transform(records.inspect(|_| versions += 1), &snapshot.lookup)
        })
        .map_err(rows_error)?
        .map_err(|error| {
            rows_error(ObjectError {
                table: table.name(),
                sequence: name.sequence,
                error,
            })
        })?;
        let (date_rows, dates) = match emitted.dates {
            Some(needed) => {
                let (rows, span) = extend_dates(snapshot.dates, needed);
                (rows, Some(span))
            }
            None => (Vec::new(), None),
        };
        let encoded =
            outputs::encode(&emitted, &date_rows).map_err(|(table, e)| TransformError::Encode {
                url: object.url.to_owned(),
                table,
                message: e.to_string(),
            })?;
        drop(emitted);
        let manifest = Manifest {
            source: object.url.to_owned(),
            source_version: object.version.clone(),
            table: name.table.to_owned(),
            sequence: name.sequence,
            upper: object.upper.clone(),
            outputs: encoded
                .iter()
                .map(|e| Output {
                    table: e.table.to_owned(),
                    key: output_key(e.table, name.stem, tag),
                    rows: e.rows,
                })
                .collect(),
        };
        let writes = encoded
            .into_iter()
            .zip(&manifest.outputs)
            .map(|(e, out)| self.put(&out.key, e.bytes, "application/vnd.apache.parquet"));
        futures::future::try_join_all(writes).await?;
        let pending = manifest_key(PENDING_PREFIX, name.stem, tag);
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        self.put(&pending, json, "application/json").await?;
        let next = snapshot.absorb(
            &changes,
            dates,
            id.to_owned(),
            Absorbed {
                tag: tag.to_owned(),
                at: unix_now(),
            },
        );
        Ok(Written {
            manifest,
            pending,
            next,
            versions,
        })
    }

    /// An attempt that lost the commit: its files are listed nowhere; removed, best effort.
    async fn discard(&self, written: &Written) {
        let outputs = written.manifest.outputs.iter().map(|o| &o.key);
        for key in outputs.chain([&written.pending]) {
            let _ = self
                .s3
                .delete_object()
                .bucket(&self.settings.processed_bucket)
                .key(key)
                .send()
                .await;
        }
    }

    /// The object's body and its run's upper bound (db-extract's metadata).
    async fn read(
        &self,
        source: &ObjectVersion,
    ) -> Result<(bytes::Bytes, Option<String>), TransformError> {
        let out = self
            .s3
            .get_object()
            .bucket(&source.bucket)
            .key(&source.key)
            .set_version_id(source.version.id().map(str::to_owned))
            .send()
            .await
            .map_err(|err| match err.as_service_error() {
                Some(e) if e.is_no_such_key() => TransformError::Gone { url: source.url() },
                _ => TransformError::Read {
                    url: source.url(),
                    source: AwsError::new("S3", "GetObject", err),
                },
            })?;
        let upper = out
            .metadata()
            .and_then(|m| m.get(landfall_totesys_contract::ingestion::UPPER_METADATA))
            .cloned();
        let body = out.body.collect().await.map_err(|e| TransformError::Body {
            url: source.url(),
            source: e,
        })?;
        Ok((body.into_bytes(), upper))
    }

    async fn put(
        &self,
        key: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<(), TransformError> {
        self.s3
            .put_object()
            .bucket(&self.settings.processed_bucket)
            .key(key)
            .content_type(content_type)
            .body(body.into())
            .send()
            .await
            .map_err(|err| TransformError::Write {
                bucket: self.settings.processed_bucket.clone(),
                key: key.to_owned(),
                source: AwsError::new("S3", "PutObject", err),
            })?;
        Ok(())
    }

    /// Copies the committed attempt's pending manifest to `ready/` (idempotent: a second call
    /// finds the ready one already there, or moved on to `loaded/`).
    async fn publish(&self, stem: &str, tag: &str) -> Result<String, TransformError> {
        let bucket = &self.settings.processed_bucket;
        let pending = manifest_key(PENDING_PREFIX, stem, tag);
        let ready = manifest_key(READY_PREFIX, stem, tag);
        let copied = self
            .s3
            .copy_object()
            .bucket(bucket)
            .key(&ready)
            // Our keys are URL-safe ([a-z0-9_/.-]), so the copy source needs no encoding.
            .copy_source(format!("{bucket}/{pending}"))
            .send()
            .await;
        match copied {
            Ok(_) => {
                // The pending copy has done its job; a leftover is harmless.
                let _ = self
                    .s3
                    .delete_object()
                    .bucket(bucket)
                    .key(&pending)
                    .send()
                    .await;
            }
            Err(err) => {
                // Published already (an earlier call copied it and removed the pending one),
                // and perhaps loaded and moved on by the warehouse loader since?
                let loaded = restage(&ready, READY_PREFIX, LOADED_PREFIX).expect("a ready key");
                let mut exists = false;
                for key in [&ready, &loaded] {
                    exists = exists
                        || self
                            .s3
                            .head_object()
                            .bucket(bucket)
                            .key(key)
                            .send()
                            .await
                            .is_ok();
                }
                if !exists {
                    return Err(TransformError::Write {
                        bucket: bucket.clone(),
                        key: ready.clone(),
                        source: AwsError::new("S3", "CopyObject", err),
                    });
                }
            }
        }
        Ok(ready)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}
/// An ingestion object being processed.
struct Ingestion<'a> {
    url: &'a str,
    /// Its version, as the manifest records it.
    version: String,
    name: &'a ObjectName<'a>,
    table: SourceTable,
    /// The body, gzipped JSON lines.
    body: &'a [u8],
    /// The extract run's upper bound, when the object carries it.
    upper: Option<String>,
}

/// What one attempt wrote, and the state that absorbs it.
struct Written {
    manifest: Manifest,
    pending: String,
    next: Snapshot,
    versions: usize,
}

/// The table and sequence id the object's key names.
fn identify<'a>(
    source: &'a ObjectVersion,
    url: &str,
) -> Result<(ObjectName<'a>, SourceTable), TransformError> {
    let name =
        landfall_totesys_contract::ingestion::parse_object_key(&source.key).ok_or_else(|| {
            TransformError::NotIngestion {
                url: url.to_owned(),
            }
        })?;
    let table = SourceTable::from_name(name.table).ok_or_else(|| TransformError::UnknownTable {
        url: url.to_owned(),
        table: name.table.to_owned(),
    })?;
    Ok((name, table))
}
