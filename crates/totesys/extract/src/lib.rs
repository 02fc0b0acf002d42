//! Incremental extraction of one source table to gzipped JSON lines in S3.
//!
//! One run of one table:
//! 1. take a PostgreSQL advisory lock for the table on the source (try; held by the session,
//!    so a crashed worker releases it) — a second worker for the same table (an async-invoke
//!    retry, an overlapping schedule) steps aside instead of racing for the sequence id;
//! 2. read the table's state from SSM; reuse its pending run after a crash, otherwise fix
//!    the run's upper bound — the source's `LOCALTIMESTAMP` minus `settle` — and the next
//!    sequence id and key, and record them as pending;
//! 3. stream `watermark < cursor <= upper` in one REPEATABLE READ snapshot through gzip into
//!    the object (multipart once it is big; nothing at all when no row changed);
//! 4. advance the watermark to `upper`, and the sequence id when an object was written.
//!
//! Late commits: a row stamped `last_updated = T` but committed later is invisible to a run
//! whose snapshot predates the commit. Because the upper bound trails the snapshot by `settle`,
//! every transaction that commits within `settle` of its timestamps lands in a later run's
//! range; `settle` must exceed the longest write transaction of the source (default 120 s).

pub mod config;
pub mod source;

pub use config::{ExtractConfig, TableSpec};
pub use landfall_aws::parameters::{JsonParameters as StateStore, ParameterError as StateError};
pub use landfall_totesys_contract::extract_state::{PendingRun, TableState};
pub use landfall_totesys_contract::ingestion::{object_key, parse_object_key};

use flate2::write::GzEncoder;
use flate2::Compression;
use futures::TryStreamExt;
use landfall_aws::s3_stream::MultipartWriter;
use landfall_aws::AwsError;
use landfall_failure::{Classify, Disposition};
use landfall_secrets::postgres::ConnectError;
use landfall_secrets::{CredentialSource, SecretError};
pub use sqlx::postgres::PgSslMode;
use sqlx::{Connection, PgConnection, Postgres, Transaction};
use std::io::Write;
use std::time::Duration;

/// gzip level 1: about three times the speed of the default 6 for objects about a quarter
/// larger — the extract's time is the pipeline's lag; S3 bytes are cheap.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;

/// Compressed bytes handed to the uploader at a time.
const UPLOAD_CHUNK: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{table}: {source}")]
    Database {
        table: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("{table}: no such table or view in the source database (or not visible to its user)")]
    MissingTable { table: String },
    #[error("{table}: writing s3://{bucket}/{key}")]
    Upload {
        table: String,
        bucket: String,
        key: String,
        #[source]
        source: AwsError,
    },
    #[error("{table}: compressing")]
    Compress {
        table: String,
        #[source]
        source: std::io::Error,
    },
}

impl ExtractError {
    fn database(table: &str) -> impl Fn(sqlx::Error) -> ExtractError + '_ {
        move |source| ExtractError::Database {
            table: table.to_owned(),
            source,
        }
    }
}

impl Classify for ExtractError {
    fn disposition(&self) -> Disposition {
        match self {
            ExtractError::Secret(e) => e.disposition(),
            ExtractError::State(e) => e.disposition(),
            ExtractError::Upload { source, .. } => source.disposition(),
            ExtractError::Compress { .. } => Disposition::Retryable,
            ExtractError::MissingTable { .. } => Disposition::Permanent,
            ExtractError::Database { source, .. } => match source {
                // permission denied, undefined objects, syntax: the same next time
                sqlx::Error::Database(e) if e.code().is_some_and(|c| c.starts_with("42")) => {
                    Disposition::Permanent
                }
                _ => Disposition::Retryable,
            },
        }
    }
}

/// What one run did.
#[derive(Debug, Clone, PartialEq)]
pub enum Extracted {
    /// Another worker holds the table's lock.
    Busy,
    Done {
        rows: u64,
        /// The object written (None: no row changed).
        key: Option<String>,
        sequence: u64,
        lower: Option<String>,
        upper: String,
        /// Seconds between the source's clock and the new watermark.
        lag_seconds: f64,
    },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bucket: String,
    pub settle: Duration,
    pub gzip_level: u32,
    pub ssl_mode: PgSslMode,
}

pub struct Extractor {
    s3: aws_sdk_s3::Client,
    state: StateStore,
    credentials: CredentialSource,
    settings: Settings,
}

impl Extractor {
    pub fn new(
        s3: aws_sdk_s3::Client,
        state: StateStore,
        credentials: CredentialSource,
        settings: Settings,
    ) -> Extractor {
        Extractor {
            s3,
            state,
            credentials,
            settings,
        }
    }

    /// One run for `table` (credentials refreshed once after an authentication failure).
    pub async fn extract(&self, table: &TableSpec) -> Result<Extracted, ExtractError> {
        let name = table.name.as_str();
        let mut conn = landfall_secrets::postgres::connect(
            &self.credentials,
            self.settings.ssl_mode,
            "landfall-db-extract",
        )
        .await
        .map_err(|err| match err {
            ConnectError::Secret(e) => ExtractError::Secret(e),
            ConnectError::Database(source) => ExtractError::Database {
                table: name.to_owned(),
                source,
            },
        })?;
        let outcome = self.run(&mut conn, table).await;
        // Closing the session also releases the advisory lock.
        let _ = conn.close().await;
        outcome
    }

    /// One run, step by step: lock the table, open a consistent snapshot, take up the
    /// pending run (or record a new one before reading anything, so a crash resumes it with
    /// the same object key and bound), stream the changed rows into the object, then move
    /// the watermark.
    async fn run(
        &self,
        conn: &mut PgConnection,
        table: &TableSpec,
    ) -> Result<Extracted, ExtractError> {
        let name = table.name.as_str();
        let db = ExtractError::database(name);
        if !try_lock(conn, name).await.map_err(&db)? {
            return Ok(Extracted::Busy);
        }
        let mut state: TableState = self.state.load(name).await?;
        let mut tx = conn.begin().await.map_err(&db)?;
        let (now, proposed_upper) = self.snapshot(&mut tx).await.map_err(&db)?;
        let resumed = state.pending.is_some();
        let run = self.pending_run(name, &mut state, proposed_upper).await?;
        let lower = state.watermark.clone();
        if lower.as_deref().is_some_and(|w| w >= run.upper.as_str()) {
            // Nothing can be newer than the watermark yet (the settle window moved back).
            state.pending = None;
            self.state.save(name, &state).await?;
            return Ok(Extracted::Done {
                rows: 0,
                key: None,
                sequence: state.sequence,
                lower,
                upper: run.upper,
                lag_seconds: lag_seconds(&now, state.watermark.as_deref()),
            });
        }
        let (count, written) = self
            .write_changes(&mut tx, table, lower.as_deref(), &run)
            .await?;
        tx.commit().await.map_err(&db)?;
        // A resumed run that finds no rows may find its object from before the crash: its
        // id is taken.
        let written = written || (count == 0 && resumed && self.exists(&run.key).await);

        state.watermark = Some(run.upper.clone());
        if written {
            state.sequence = run.sequence;
        }
        state.pending = None;
        self.state.save(name, &state).await?;
        Ok(Extracted::Done {
            rows: count,
            key: written.then(|| run.key.clone()),
            sequence: state.sequence,
            lower,
            lag_seconds: lag_seconds(&now, Some(&run.upper)),
            upper: run.upper,
        })
    }

    /// A read-only, repeatable-read snapshot; the source's clock now and the run's proposed
    /// upper bound (now less the settle window), both as the watermark spells them.
    async fn snapshot(
        &self,
        tx: &mut Transaction<'_, Postgres>,
    ) -> Result<(String, String), sqlx::Error> {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut **tx)
            .await?;
        sqlx::query_as(&format!(
            "SELECT to_char(LOCALTIMESTAMP, '{f}'), to_char(LOCALTIMESTAMP - make_interval(secs => $1), '{f}')",
            f = source::TIMESTAMP_FORMAT
        ))
        .bind(self.settings.settle.as_secs_f64())
        .fetch_one(&mut **tx)
        .await
    }

    /// The run a crash left pending, or a new one recorded before any row is read.
    async fn pending_run(
        &self,
        name: &str,
        state: &mut TableState,
        proposed_upper: String,
    ) -> Result<PendingRun, ExtractError> {
        if let Some(pending) = &state.pending {
            return Ok(pending.clone());
        }
        let sequence = state.sequence + 1;
        let pending = PendingRun {
            key: object_key(name, &proposed_upper, sequence),
            sequence,
            upper: proposed_upper,
        };
        state.pending = Some(pending.clone());
        self.state.save(name, state).await?;
        Ok(pending)
    }

    /// Streams the rows changed in (`lower`, `run.upper`] as gzipped JSON lines into the
    /// run's object, a part at a time; the rows counted, and whether an object was written
    /// (none for no rows).
    async fn write_changes(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        table: &TableSpec,
        lower: Option<&str>,
        run: &PendingRun,
    ) -> Result<(u64, bool), ExtractError> {
        let name = table.name.as_str();
        let db = ExtractError::database(name);
        let (relation, columns) = source_relation(tx, table).await.map_err(&db)?;
        if columns.is_empty() {
            return Err(ExtractError::MissingTable {
                table: name.to_owned(),
            });
        }
        let sql = source::select_changed(
            &relation,
            &source::json_expression(&columns),
            &table.cursor,
            lower.is_some(),
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        if let Some(lower) = lower {
            query = query.bind(lower);
        }
        let mut rows = query.bind(&run.upper).fetch(&mut **tx);

        let upload = |source| ExtractError::Upload {
            table: name.to_owned(),
            bucket: self.settings.bucket.clone(),
            key: run.key.clone(),
            source,
        };
        let compress = |source| ExtractError::Compress {
            table: name.to_owned(),
            source,
        };
        let mut count = 0u64;
        let mut gzip = GzEncoder::new(Vec::new(), Compression::new(self.settings.gzip_level));
        let mut writer: Option<MultipartWriter> = None;
        while let Some(line) = rows.try_next().await.map_err(&db)? {
            count += 1;
            gzip.write_all(line.as_bytes())
                .and_then(|_| gzip.write_all(b"\n"))
                .map_err(compress)?;
            if gzip.get_ref().len() >= UPLOAD_CHUNK {
                let chunk = std::mem::take(gzip.get_mut());
                let writer = match &mut writer {
                    Some(w) => w,
                    None => writer.insert(
                        self.start_object(&run.key, &run.upper)
                            .await
                            .map_err(upload)?,
                    ),
                };
                writer.write(&chunk).await.map_err(upload)?;
            }
        }
        if count == 0 {
            return Ok((0, false));
        }
        let tail = gzip.finish().map_err(compress)?;
        let mut writer = match writer {
            Some(w) => w,
            None => self
                .start_object(&run.key, &run.upper)
                .await
                .map_err(upload)?,
        };
        writer.write(&tail).await.map_err(upload)?;
        writer.finish().await.map_err(upload)?;
        Ok((count, true))
    }

    async fn start_object(&self, key: &str, upper: &str) -> Result<MultipartWriter, AwsError> {
        let writer =
            MultipartWriter::start(&self.s3, &self.settings.bucket, key, UPLOAD_CHUNK).await?;
        Ok(writer.with_metadata(landfall_totesys_contract::ingestion::UPPER_METADATA, upper))
    }

    async fn exists(&self, key: &str) -> bool {
        self.s3
            .head_object()
            .bucket(&self.settings.bucket)
            .key(key)
            .send()
            .await
            .is_ok()
    }
}

/// Whether this session took the table's advisory lock (one worker per table at a time;
/// closing the session releases it).
async fn try_lock(conn: &mut PgConnection, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtext('landfall-extract'), hashtext($1))")
        .bind(name)
        .fetch_one(conn)
        .await
}

/// What the run reads: the table, or the configured query as a temporary view; and its
/// columns (none: the table is missing).
async fn source_relation(
    tx: &mut Transaction<'_, Postgres>,
    table: &TableSpec,
) -> Result<(String, Vec<source::Column>), sqlx::Error> {
    let relation = match &table.query {
        Some(query) => {
            // The query comes from the repository's config, never from an event.
            sqlx::raw_sql(&format!(
                "CREATE TEMPORARY VIEW landfall_extract_source AS {query}"
            ))
            .execute(&mut **tx)
            .await?;
            "landfall_extract_source".to_owned()
        }
        None => table.name.pg_quoted(),
    };
    let columns = source::columns(tx, &relation).await?;
    Ok((relation, columns))
}

fn lag_seconds(now: &str, watermark: Option<&str>) -> f64 {
    let parse = |t: &str| {
        time::PrimitiveDateTime::parse(
            t,
            time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]"
            ),
        )
        .ok()
    };
    match (parse(now), watermark.and_then(parse)) {
        (Some(now), Some(mark)) => (now - mark).as_seconds_f64(),
        _ => f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lag_is_measured_on_the_source_clock() {
        assert_eq!(
            lag_seconds("2024-11-14T15:36:09.845", Some("2024-11-14T15:34:09.345")),
            120.5
        );
        assert!(lag_seconds("2024-11-14T15:36:09.845", None).is_nan());
    }
}
