//! star-transform's work on one ingestion object (db-extract's gzip JSON lines):
//!
//! 1. note its sequence id against the last one processed for its table (SSM) and warn about
//!    skipped ids — then process it anyway;
//! 2. stream its versions (`landfall_totesys_star::transform::with_lines`: a bad line fails the object
//!    naming table, sequence id, line and column) into
//! 3. the transform against its table's part of the durable state (`state`), write one
//!    Parquet file per warehouse table touched and a pending manifest, publish the days
//!    dim_date lacks for its facts (`cover`), and commit its state group with a conditional
//!    write — a lost race redoes the object on the winner's state;
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
use landfall_totesys_star::transform::{Changes, Emitted, MemoryLookup};
use landfall_totesys_star::{extend_dates, SourceTable};
use state::{Absorbed, Calendar, Commit, StateError, States};
use std::io::BufReader;

/// Commit attempts per object before it goes back to the queue (each lost attempt means
/// another object committed, so the pipeline as a whole made progress).
pub const DEFAULT_COMMIT_ATTEMPTS: u32 = 8;

#[derive(Debug, Clone)]
pub struct Settings {
    pub processed_bucket: String,
    /// Where the state objects are in the processed bucket (`state::States`).
    pub state_prefix: String,
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
    states: States,
    sequences: JsonParameters,
}

impl Transformer {
    /// `sequences`: where the last sequence id processed per table is kept.
    pub fn new(s3: aws_sdk_s3::Client, sequences: JsonParameters, settings: Settings) -> Self {
        Transformer {
            states: States::new(
                s3.clone(),
                &settings.processed_bucket,
                &settings.state_prefix,
            ),
            s3,
            settings,
            sequences,
        }
    }

    /// One ingestion object into the star schema: identified by its key, its sequence id
    /// checked, then transformed against its state group and committed — redone on the new
    /// state when another object of the group committed first, at most `commit_attempts`
    /// times.
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
        let group = table.state_group();
        let mut conflicts = 0;
        while conflicts < self.settings.commit_attempts {
            let loaded = self.states.load_group(group).await?;
            if let Some(absorbed) = loaded.value.absorbed.get(&id) {
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
                .write_attempt(&object, &loaded.value.lookup, &tag)
                .await?;
            if let Some(needed) = written.dates {
                self.cover(needed, &object).await?;
            }
            let next = loaded.value.absorb(
                &written.changes,
                id.clone(),
                Absorbed {
                    tag: tag.clone(),
                    at: unix_now(),
                },
            );
            match self
                .states
                .group(group)
                .commit(loaded.etag.as_deref(), &next)
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

    /// One attempt: the object transformed against `lookup`, its Parquet files and its
    /// pending manifest written under `tag`, and the state changes to commit.
    async fn write_attempt(
        &self,
        object: &Ingestion<'_>,
        lookup: &MemoryLookup,
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
            transform(records.inspect(|_| versions += 1), lookup)
        })
        .map_err(rows_error)?
        .map_err(|error| {
            rows_error(ObjectError {
                table: table.name(),
                sequence: name.sequence,
                error,
            })
        })?;
        let manifest = Manifest {
            source: object.url.to_owned(),
            source_version: object.version.clone(),
            table: name.table.to_owned(),
            sequence: name.sequence,
            upper: object.upper.clone(),
            outputs: self
                .write_parquet(object.url, &emitted, &[], name.stem, tag)
                .await?,
        };
        let dates = emitted.dates;
        drop(emitted);
        let pending = manifest_key(PENDING_PREFIX, name.stem, tag);
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
        self.put(&pending, json, "application/json").await?;
        Ok(Written {
            manifest,
            pending,
            changes,
            dates,
            versions,
        })
    }

    /// Makes dim_date cover `needed`. The days the calendar lacks are published first, as a
    /// manifest of their own, and recorded in the calendar after (a conditional write; a lost
    /// race re-reads it and publishes what is still missing). So the calendar never names a
    /// day the warehouse will not get, even when this object's attempt dies, and every
    /// extension adjoins the span it read: the days stay one contiguous range
    /// (../shared/spec/README.md, dim_date coverage). The facts that need them wait for them
    /// in the warehouse loader's reference check, if they come first.
    async fn cover(
        &self,
        needed: (time::Date, time::Date),
        object: &Ingestion<'_>,
    ) -> Result<(), TransformError> {
        let calendar = self.states.calendar();
        for _ in 0..self.settings.commit_attempts {
            let loaded = self.states.load_calendar().await?;
            let (days, span) = extend_dates(loaded.value.dates, needed);
            let (Some(first), Some(last)) = (days.first(), days.last()) else {
                return Ok(());
            };
            // Named by the days: publishing the same days again is the same manifest, which
            // the loader's ledger then finds loaded.
            let stem = format!("calendar/{}_{}", first.date_id, last.date_id);
            let manifest = Manifest {
                source: object.url.to_owned(),
                source_version: object.version.clone(),
                // Not a source table: the freshness of none waits for it.
                table: "calendar".to_owned(),
                sequence: 0,
                upper: None,
                outputs: self
                    .write_parquet(object.url, &Emitted::default(), &days, &stem, "days")
                    .await?,
            };
            let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serialises");
            let ready = manifest_key(READY_PREFIX, &stem, "days");
            self.put(&ready, json, "application/json").await?;
            let next = Calendar { dates: Some(span) };
            if let Commit::Committed = calendar.commit(loaded.etag.as_deref(), &next).await? {
                return Ok(());
            }
        }
        Err(TransformError::Contended {
            url: format!("{} (the calendar)", object.url),
            attempts: self.settings.commit_attempts,
        })
    }

    /// Writes `emitted` and `days` as Parquet, one file per warehouse table, named by `stem`
    /// and `tag`: the manifest's outputs.
    async fn write_parquet(
        &self,
        url: &str,
        emitted: &Emitted,
        days: &[landfall_totesys_star::DimDate],
        stem: &str,
        tag: &str,
    ) -> Result<Vec<Output>, TransformError> {
        let encoded =
            outputs::encode(emitted, days).map_err(|(table, e)| TransformError::Encode {
                url: url.to_owned(),
                table,
                message: e.to_string(),
            })?;
        let outputs: Vec<Output> = encoded
            .iter()
            .map(|e| Output {
                table: e.table.to_owned(),
                key: output_key(e.table, stem, tag),
                rows: e.rows,
            })
            .collect();
        let writes = encoded
            .into_iter()
            .zip(&outputs)
            .map(|(e, out)| self.put(&out.key, e.bytes, "application/vnd.apache.parquet"));
        futures::future::try_join_all(writes).await?;
        Ok(outputs)
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

/// What one attempt wrote, and what its commit changes.
struct Written {
    manifest: Manifest,
    pending: String,
    changes: Changes,
    /// The earliest and latest day its facts reference (`cover`).
    dates: Option<(time::Date, time::Date)>,
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
