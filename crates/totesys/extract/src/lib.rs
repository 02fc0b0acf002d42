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
//! A run with more than `rows_per_object` rows (a first load of a big table) writes several
//! objects, each its own sequence id, in (cursor, key) order; after each, the pending run
//! records the object's last row, and the next starts after it — in this invocation while
//! its `time_budget` lasts, then in the next (`Extracted::Done { more: true }`). Only the
//! run's last object carries its upper bound, and the watermark moves only when the run ends,
//! so nothing is visible as complete before it is, and the late-commit guarantee below holds
//! for every object: each reads in a snapshot taken after the run's `upper` was fixed.
//!
//! Late commits: a row stamped `last_updated = T` but committed later is invisible to a run
//! whose snapshot predates the commit. Because the upper bound trails the snapshot by `settle`,
//! every transaction that commits within `settle` of its timestamps lands in a later run's
//! range; `settle` must exceed the longest write transaction of the source (default 120 s).

pub mod config;
pub mod source;

pub use config::{ExtractConfig, TableSpec};
pub use landfall_aws::parameters::{JsonParameters as StateStore, ParameterError as StateError};
pub use landfall_totesys_contract::extract_state::{PendingRun, Position, TableState};
pub use landfall_totesys_contract::ingestion::{object_key, parse_object_key};

use flate2::write::GzEncoder;
use flate2::Compression;
use futures::Stream;
use futures::TryStreamExt;
use landfall_aws::s3_stream::MultipartWriter;
use landfall_aws::AwsError;
use landfall_failure::{Classify, Disposition};
use landfall_secrets::postgres::ConnectError;
use landfall_secrets::{CredentialSource, SecretError};
pub use sqlx::postgres::PgSslMode;
use sqlx::{Connection, PgConnection, Postgres, Transaction};
use std::io::Write;
use std::time::{Duration, Instant};

/// gzip level 1: about three times the speed of the default 6 for objects about a quarter
/// larger — the extract's time is the pipeline's lag; S3 bytes are cheap.
pub const DEFAULT_GZIP_LEVEL: u32 = 1;

/// Compressed bytes handed to the uploader at a time.
const UPLOAD_CHUNK: usize = 8 * 1024 * 1024;

/// Rows per object: about 60 MB of gzip JSON lines, which star-transform reads in about a
/// second within its memory.
pub const DEFAULT_ROWS_PER_OBJECT: u64 = 1_000_000;

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
        /// The last object written (None: no row changed).
        key: Option<String>,
        sequence: u64,
        lower: Option<String>,
        upper: String,
        /// Seconds between the source's clock and the new watermark.
        lag_seconds: f64,
        /// The run is not finished: its next object is the next invocation's.
        more: bool,
    },
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub bucket: String,
    pub settle: Duration,
    pub gzip_level: u32,
    pub ssl_mode: PgSslMode,
    pub rows_per_object: u64,
    /// After this long, an invocation writes no further object of a run (see the top).
    pub time_budget: Duration,
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
        let started = Instant::now();
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
                more: false,
            });
        }
        let (relation, columns) = source_relation(&mut tx, table).await.map_err(&db)?;
        if columns.is_empty() {
            return Err(ExtractError::MissingTable {
                table: name.to_owned(),
            });
        }
        let key = self.order_key(&mut tx, table, &relation, &columns).await?;
        let mut run = run;
        let mut rows = 0;
        loop {
            let chunk = match &key {
                Some(key) => {
                    let chunked = source::Chunked {
                        relation: &relation,
                        cursor: &table.cursor,
                        key,
                        has_lower: lower.is_some(),
                        has_after: run.after.is_some(),
                    };
                    self.write_chunk(&mut tx, table, &chunked, &columns, lower.as_deref(), &run)
                        .await?
                }
                None => {
                    self.write_changes(&mut tx, table, &relation, &columns, lower.as_deref(), &run)
                        .await?
                }
            };
            rows += chunk.rows;
            let Some(after) = chunk.next else {
                tx.commit().await.map_err(&db)?;
                // A resumed run that finds no rows may find its object from before the crash:
                // its id is taken.
                let written =
                    chunk.written || (chunk.rows == 0 && resumed && self.exists(&run.key).await);
                state.watermark = Some(run.upper.clone());
                if written {
                    state.sequence = run.sequence;
                }
                state.pending = None;
                self.state.save(name, &state).await?;
                return Ok(Extracted::Done {
                    rows,
                    key: written.then(|| run.key.clone()),
                    sequence: state.sequence,
                    lower,
                    lag_seconds: lag_seconds(&now, Some(&run.upper)),
                    upper: run.upper,
                    more: false,
                });
            };
            // The object is written and more rows follow: the run goes on after its last row.
            let written = run.key.clone();
            state.sequence = run.sequence;
            run = PendingRun {
                sequence: run.sequence + 1,
                key: object_key(name, &run.upper, run.sequence + 1),
                upper: run.upper,
                after: Some(after),
            };
            state.pending = Some(run.clone());
            self.state.save(name, &state).await?;
            if started.elapsed() >= self.settings.time_budget {
                tx.commit().await.map_err(&db)?;
                return Ok(Extracted::Done {
                    rows,
                    key: Some(written),
                    sequence: state.sequence,
                    lag_seconds: lag_seconds(&now, lower.as_deref()),
                    lower,
                    upper: run.upper,
                    more: true,
                });
            }
        }
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
            after: None,
        };
        state.pending = Some(pending.clone());
        self.state.save(name, state).await?;
        Ok(pending)
    }

    /// The column that orders rows of equal cursor (`TableSpec::key`, else the primary key),
    /// with its type; None: the run is one object.
    async fn order_key(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        table: &TableSpec,
        relation: &str,
        columns: &[source::Column],
    ) -> Result<Option<source::Column>, ExtractError> {
        let name = match &table.key {
            Some(key) => Some(key.as_str().to_owned()),
            None => source::primary_key(tx, relation)
                .await
                .map_err(ExtractError::database(table.name.as_str()))?,
        };
        Ok(name.and_then(|name| columns.iter().find(|c| c.name == name).cloned()))
    }

    /// Streams every row changed in (`lower`, `run.upper`] as gzipped JSON lines into the
    /// run's object, a part at a time (a relation without a key to order by: one object).
    async fn write_changes(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        table: &TableSpec,
        relation: &str,
        columns: &[source::Column],
        lower: Option<&str>,
        run: &PendingRun,
    ) -> Result<Chunk, ExtractError> {
        let name = table.name.as_str();
        let sql = source::select_changed(
            relation,
            &source::json_expression(columns),
            &table.cursor,
            lower.is_some(),
        );
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        if let Some(lower) = lower {
            query = query.bind(lower);
        }
        let lines = query.bind(&run.upper).fetch(&mut **tx);
        let rows = self
            .write_object(name, lines, run, Some(&run.upper))
            .await?;
        Ok(Chunk {
            rows,
            written: rows > 0,
            next: None,
        })
    }

    /// The run's next object: at most `rows_per_object` rows in (cursor, key) order, after
    /// the row its previous object ended with. One more row is asked for: when it comes, the
    /// run goes on after this object; when it does not, this object is the run's last, the
    /// one that carries `upper`. Its object's metadata is fixed when the upload starts, so the
    /// object is compressed into memory first (at most `rows_per_object` rows of gzip). A run
    /// the planner expects to fit well within one object is read as `write_changes` reads
    /// it, in no order and streamed (were the estimate wrong, the object is bigger, no less
    /// right).
    #[allow(clippy::too_many_arguments)]
    async fn write_chunk(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        table: &TableSpec,
        chunked: &source::Chunked<'_>,
        columns: &[source::Column],
        lower: Option<&str>,
        run: &PendingRun,
    ) -> Result<Chunk, ExtractError> {
        let name = table.name.as_str();
        let db = ExtractError::database(name);
        let limit = self.settings.rows_per_object;
        let mut binds: Vec<&str> = lower.into_iter().chain([run.upper.as_str()]).collect();
        if let Some(after) = &run.after {
            binds.extend([after.cursor.as_str(), after.key.as_str()]);
        }
        if run.after.is_none() {
            let sql = chunked.estimate();
            let mut explain = sqlx::query_scalar::<_, String>(&sql);
            for value in &binds {
                explain = explain.bind(*value);
            }
            let plan = explain.fetch_one(&mut **tx).await.map_err(&db)?;
            if planned_rows(&plan).is_some_and(|rows| rows <= limit / 2) {
                return self
                    .write_changes(tx, table, chunked.relation, columns, lower, run)
                    .await;
            }
        }
        let sql = chunked.select(&source::json_expression(columns));
        let mut select = sqlx::query_as::<_, (String, String, String)>(&sql);
        for value in &binds {
            select = select.bind(*value);
        }
        let mut rows = select
            .bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX))
            .fetch(&mut **tx);
        let mut gzip = GzEncoder::new(Vec::new(), Compression::new(self.settings.gzip_level));
        let (mut count, mut last, mut more) = (0u64, None, false);
        while let Some((json, cursor, key)) = rows.try_next().await.map_err(&db)? {
            if count == limit {
                more = true;
                break;
            }
            count += 1;
            gzip.write_all(json.as_bytes())
                .and_then(|_| gzip.write_all(b"\n"))
                .map_err(|source| ExtractError::Compress {
                    table: name.to_owned(),
                    source,
                })?;
            last = Some(Position { cursor, key });
        }
        drop(rows);
        if count > 0 {
            let body = gzip.finish().map_err(|source| ExtractError::Compress {
                table: name.to_owned(),
                source,
            })?;
            let upper = (!more).then_some(run.upper.as_str());
            self.upload(&run.key, &body, upper)
                .await
                .map_err(|source| ExtractError::Upload {
                    table: name.to_owned(),
                    bucket: self.settings.bucket.clone(),
                    key: run.key.clone(),
                    source,
                })?;
        }
        Ok(Chunk {
            rows: count,
            written: count > 0,
            next: if more { last } else { None },
        })
    }

    /// `body` as the object `key`, a part at a time.
    async fn upload(&self, key: &str, body: &[u8], upper: Option<&str>) -> Result<(), AwsError> {
        let mut writer = self.start_object(key, upper).await?;
        for part in body.chunks(UPLOAD_CHUNK) {
            writer.write(part).await?;
        }
        writer.finish().await
    }

    /// Writes `lines` as gzipped JSON lines to the run's object, a part at a time (nothing
    /// for no line); `upper`, when given, as its metadata. The lines written.
    async fn write_object(
        &self,
        name: &str,
        lines: impl Stream<Item = Result<String, sqlx::Error>>,
        run: &PendingRun,
        upper: Option<&str>,
    ) -> Result<u64, ExtractError> {
        let db = ExtractError::database(name);
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
        futures::pin_mut!(lines);
        while let Some(line) = lines.try_next().await.map_err(&db)? {
            count += 1;
            gzip.write_all(line.as_bytes())
                .and_then(|_| gzip.write_all(b"\n"))
                .map_err(compress)?;
            if gzip.get_ref().len() >= UPLOAD_CHUNK {
                let chunk = std::mem::take(gzip.get_mut());
                let writer = match &mut writer {
                    Some(w) => w,
                    None => {
                        writer.insert(self.start_object(&run.key, upper).await.map_err(upload)?)
                    }
                };
                writer.write(&chunk).await.map_err(upload)?;
            }
        }
        if count == 0 {
            return Ok(0);
        }
        let tail = gzip.finish().map_err(compress)?;
        let mut writer = match writer {
            Some(w) => w,
            None => self.start_object(&run.key, upper).await.map_err(upload)?,
        };
        writer.write(&tail).await.map_err(upload)?;
        writer.finish().await.map_err(upload)?;
        Ok(count)
    }

    async fn start_object(
        &self,
        key: &str,
        upper: Option<&str>,
    ) -> Result<MultipartWriter, AwsError> {
        let writer =
            MultipartWriter::start(&self.s3, &self.settings.bucket, key, UPLOAD_CHUNK).await?;
        Ok(match upper {
            Some(upper) => {
                writer.with_metadata(landfall_totesys_contract::ingestion::UPPER_METADATA, upper)
            }
            None => writer,
        })
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

/// The rows a plan's first line estimates (`… rows=<n> width=<w>)`).
fn planned_rows(plan: &str) -> Option<u64> {
    let rows = plan.split(" rows=").nth(1)?;
    rows.split(' ').next()?.parse().ok()
}

/// One object of a run.
struct Chunk {
    rows: u64,
    written: bool,
    /// More rows follow: the next object starts after this one's last row.
    next: Option<Position>,
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
    fn a_plan_says_how_many_rows_it_expects() {
        assert_eq!(
            planned_rows("Seq Scan on \"payment\" t  (cost=0.00..45.10 rows=2100 width=0)"),
            Some(2100)
        );
        assert_eq!(planned_rows("Result  (cost=0.00..0.01 width=0)"), None);
    }

    #[test]
    fn lag_is_measured_on_the_source_clock() {
        assert_eq!(
            lag_seconds("2024-11-14T15:36:09.845", Some("2024-11-14T15:34:09.345")),
            120.5
        );
        assert!(lag_seconds("2024-11-14T15:36:09.845", None).is_nan());
    }
}
