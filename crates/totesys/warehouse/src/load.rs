//! One manifest into the warehouse, in one transaction with its ledger row. A dimension
//! file is COPYed into a temporary stage table and merged by its table's kind (dim_date:
//! insert the new days; dims: newest version wins). A fact file is COPYed straight into its
//! table — each row written once — and only when a row of it is already there (the same
//! source version, extracted again) does it go through the stage and merge instead: one row
//! per source version either way. Its references are then checked by set, each referenced
//! key of the file against its dimension: a fact whose dimension row is not in the
//! warehouse yet makes the whole manifest wait for a later pass — nothing is half-loaded,
//! no key dangles.

use crate::copy_text;
use crate::schema::{in_load_order, Kind, Reference, Table};
use arrow_array::cast::AsArray;
use arrow_array::types::{Date32Type, Int32Type};
use arrow_array::RecordBatch;
use arrow_schema::DataType;
use bytes::Bytes;
use landfall_aws::AwsError;
use landfall_failure::{Classify, Disposition};
use landfall_sql_ident::Ident;
use landfall_totesys_contract::processed::Manifest;
use landfall_totesys_star::parquet::{read_checked, VERSION_COLUMNS};
use sqlx::postgres::PgDatabaseError;
use sqlx::{Connection, PgConnection};
use std::collections::HashSet;

/// Rows per Arrow batch read from Parquet, and COPY data sent per message.
const BATCH_ROWS: usize = 8192;
const COPY_CHUNK: usize = 1 << 20;
const STAGE: &str = "landfall_stage";
/// A file of at least this many rows refreshes its table's planner statistics in the load's
/// transaction, so the first queries after a big load are not planned for an empty table.
const ANALYZE_AFTER_ROWS: u64 = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    /// The object can never load as it is (malformed Parquet, a schema or row count that
    /// is not what the manifest and the contract say, values the warehouse rejects).
    #[error("{manifest}: {key}: {reason}")]
    Rejected {
        manifest: String,
        key: String,
        reason: String,
    },
    /// A fact refers to a dimension row that has not been loaded yet.
    #[error("{manifest}: {table} waits for a dimension row: {detail}")]
    Waiting {
        manifest: String,
        table: String,
        detail: String,
    },
    #[error("reading s3://{bucket}/{key}: no such object")]
    Missing { bucket: String, key: String },
    #[error("reading s3://{bucket}/{key}")]
    Storage {
        bucket: String,
        key: String,
        #[source]
        source: AwsError,
    },
    #[error("reading s3://{bucket}/{key}: the body")]
    Body {
        bucket: String,
        key: String,
        #[source]
        source: aws_sdk_s3::primitives::ByteStreamError,
    },
    #[error("extract state: {0}")]
    State(#[from] landfall_aws::parameters::ParameterError),
    #[error("warehouse: {context}: {source}")]
    Database {
        context: String,
        #[source]
        source: sqlx::Error,
    },
    /// A statement through the Redshift Data API (the warehouse on Redshift).
    #[error("warehouse: {context}: {source}")]
    DataApi {
        context: String,
        #[source]
        source: landfall_redshift_data::DataApiError,
    },
}

impl Classify for WarehouseError {
    fn disposition(&self) -> Disposition {
        match self {
            WarehouseError::Rejected { .. } => Disposition::Permanent,
            WarehouseError::Waiting { .. } => Disposition::Retryable,
            WarehouseError::Missing { .. } => Disposition::Permanent,
            WarehouseError::Storage { source, .. } => source.disposition(),
            WarehouseError::Body { .. } => Disposition::Retryable,
            WarehouseError::State(e) => e.disposition(),
            WarehouseError::DataApi { source, .. } => source.disposition(),
            WarehouseError::Database { source, .. } => match source {
                // permission denied, undefined table or column: the same on every retry
                sqlx::Error::Database(e) if e.code().is_some_and(|c| c.starts_with("42")) => {
                    Disposition::Permanent
                }
                _ => Disposition::Retryable,
            },
        }
    }
}

pub(crate) fn database(context: impl Into<String>) -> impl FnOnce(sqlx::Error) -> WarehouseError {
    let context = context.into();
    move |source| WarehouseError::Database { context, source }
}

/// What loading one manifest did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// Rows written per warehouse table (dims: inserted or replaced by a newer version;
    /// facts and dates: inserted).
    Rows(Vec<(&'static str, u64)>),
    /// The ledger already has it: a retry, or another run got there first.
    Already,
}

/// One Parquet file of a manifest, fetched.
pub struct File {
    pub table: String,
    pub key: String,
    pub rows: usize,
    pub bytes: Bytes,
}

/// Loads `files` (the manifest's outputs, fetched) with the manifest's ledger row.
pub async fn load_manifest(
    conn: &mut PgConnection,
    manifest_key: &str,
    manifest: &Manifest,
    files: &[File],
) -> Result<Loaded, WarehouseError> {
    let rejected = |key: &str, reason: String| WarehouseError::Rejected {
        manifest: manifest_key.to_owned(),
        key: key.to_owned(),
        reason,
    };
    let plan = in_load_order(files, |f| (&f.table, &f.key))
        .map_err(|(key, reason)| rejected(&key, reason))?;

    let mut tx = conn
        .begin()
        .await
        .map_err(database("beginning a transaction"))?;
    let total: usize = files.iter().map(|f| f.rows).sum();
    let claimed = sqlx::query(
        "INSERT INTO landfall.load_ledger
           (manifest, source, source_version, source_table, sequence, upper_bound, rows)
         VALUES ($1, $2, $3, $4, $5, $6::timestamp, $7)
         ON CONFLICT (manifest) DO NOTHING",
    )
    .bind(manifest_key)
    .bind(&manifest.source)
    .bind(&manifest.source_version)
    .bind(&manifest.table)
    .bind(manifest.sequence as i64)
    .bind(manifest.upper.as_deref())
    .bind(i32::try_from(total).unwrap_or(i32::MAX))
    .execute(&mut *tx)
    .await
    .map_err(database(format!("{manifest_key}: ledger")))?
    .rows_affected();
    if claimed == 0 {
        return Ok(Loaded::Already);
    }
    let mut written = Vec::with_capacity(plan.len());
    for (table, file) in plan {
        let rows = load_file(&mut tx, table, file)
            .await
            .map_err(|failure| failure.into_error(manifest_key, table, &file.key))?;
        written.push((table.name, rows));
    }
    tx.commit()
        .await
        .map_err(database(format!("{manifest_key}: commit")))?;
    Ok(Loaded::Rows(written))
}

/// A file's failure before it is tied to its manifest.
enum FileFailure {
    Bad(String),
    Sql(&'static str, sqlx::Error),
    /// A referenced dimension row is not in the warehouse (yet).
    Unreferenced(String),
}

impl FileFailure {
    fn into_error(self, manifest: &str, table: &Table, key: &str) -> WarehouseError {
        match self {
            FileFailure::Bad(reason) => WarehouseError::Rejected {
                manifest: manifest.to_owned(),
                key: key.to_owned(),
                reason,
            },
            FileFailure::Unreferenced(detail) => WarehouseError::Waiting {
                manifest: manifest.to_owned(),
                table: table.name.to_owned(),
                detail,
            },
            FileFailure::Sql(step, source) => {
                let pg = match &source {
                    sqlx::Error::Database(e) => e.try_downcast_ref::<PgDatabaseError>(),
                    _ => None,
                };
                let code = pg.map(|e| e.code().to_owned()).unwrap_or_default();
                let detail = pg
                    .map(|e| match (e.detail(), e.r#where()) {
                        (Some(detail), _) => format!("{}: {detail}", e.message()),
                        (None, Some(at)) => format!("{} ({at})", e.message()),
                        (None, None) => e.message().to_owned(),
                    })
                    .unwrap_or_else(|| source.to_string());
                match code.as_str() {
                    "23503" => WarehouseError::Waiting {
                        manifest: manifest.to_owned(),
                        table: table.name.to_owned(),
                        detail,
                    },
                    // data exceptions, NOT NULL, CHECK: the file's values, not the database
                    c if c.starts_with("22") || c == "23502" || c == "23514" => {
                        WarehouseError::Rejected {
                            manifest: manifest.to_owned(),
                            key: key.to_owned(),
                            reason: format!("{step}: {detail}"),
                        }
                    }
                    _ => WarehouseError::Database {
                        context: format!("{manifest}: {} {step}", table.name),
                        source,
                    },
                }
            }
        }
    }
}

async fn load_file(tx: &mut PgConnection, table: &Table, file: &File) -> Result<u64, FileFailure> {
    let sql = Statements::of(table);
    let mut keys = ReferencedKeys::new(table);
    let rows = match &sql.direct_copy {
        Some(direct) => {
            sql_step(tx, "SAVEPOINT landfall_direct", "a savepoint").await?;
            match copy_file(tx, table, file, direct, &mut keys).await {
                Ok(rows) => {
                    sql_step(tx, "RELEASE SAVEPOINT landfall_direct", "a savepoint").await?;
                    rows
                }
                // A source version already in the table: this file goes by the merge, which
                // skips such rows (reading it again notes every key again: the same set).
                Err(FileFailure::Sql(_, e)) if unique_violation(&e) => {
                    sql_step(tx, "ROLLBACK TO SAVEPOINT landfall_direct", "a savepoint").await?;
                    stage_and_merge(tx, table, file, &sql, &mut keys).await?
                }
                Err(other) => return Err(other),
            }
        }
        None => stage_and_merge(tx, table, file, &sql, &mut keys).await?,
    };
    keys.check(tx, table).await?;
    if rows >= ANALYZE_AFTER_ROWS {
        sql_step(tx, &sql.analyze, "ANALYZE").await?;
    }
    Ok(rows)
}

fn unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.code().as_deref() == Some("23505"))
}

async fn sql_step(
    tx: &mut PgConnection,
    sql: &str,
    step: &'static str,
) -> Result<u64, FileFailure> {
    // Simple protocol: statements over a temporary table are not worth a cached plan.
    Ok(sqlx::raw_sql(sql)
        .execute(&mut *tx)
        .await
        .map_err(|e| FileFailure::Sql(step, e))?
        .rows_affected())
}

async fn stage_and_merge(
    tx: &mut PgConnection,
    table: &Table,
    file: &File,
    sql: &Statements,
    keys: &mut ReferencedKeys,
) -> Result<u64, FileFailure> {
    sql_step(tx, &sql.create_stage, "creating the stage").await?;
    copy_file(tx, table, file, &sql.copy, keys).await?;
    let merged = sql_step(tx, &sql.merge, "merging").await?;
    sql_step(tx, &sql.drop_stage, "dropping the stage").await?;
    Ok(merged)
}

/// The file checked against the contract (schema, row count), then streamed by `copy` as
/// COPY text, its referenced keys noted on the way. Returns the rows COPY wrote.
async fn copy_file(
    tx: &mut PgConnection,
    table: &Table,
    file: &File,
    copy: &str,
    keys: &mut ReferencedKeys,
) -> Result<u64, FileFailure> {
    let bad = |what: &str, e: &dyn std::fmt::Display| FileFailure::Bad(format!("{what}: {e}"));
    let reader = read_checked(
        file.bytes.clone(),
        table.name,
        &table.file_schema(),
        file.rows,
        BATCH_ROWS,
    )
    .map_err(FileFailure::Bad)?;

    let mut copy = tx
        .copy_in_raw(copy)
        .await
        .map_err(|e| FileFailure::Sql("COPY", e))?;
    let mut buffer = Vec::with_capacity(COPY_CHUNK + 64 * 1024);
    let mut streamed: Result<(), FileFailure> = Ok(());
    for batch in reader {
        let encoded = batch.map_err(|e| bad("reading Parquet", &e)).and_then(|b| {
            keys.note(&b);
            copy_text::encode(&b, &mut buffer).map_err(|e| bad("encoding", &e))
        });
        if let Err(e) = encoded {
            streamed = Err(e);
            break;
        }
        if buffer.len() >= COPY_CHUNK {
            if let Err(e) = copy.send(std::mem::take(&mut buffer)).await {
                streamed = Err(FileFailure::Sql("COPY", e));
                break;
            }
            buffer.reserve(COPY_CHUNK + 64 * 1024);
        }
    }
    if let Err(failure) = streamed {
        let _ = copy.abort("landfall: the file could not be read").await;
        return Err(failure);
    }
    if !buffer.is_empty() {
        copy.send(buffer)
            .await
            .map_err(|e| FileFailure::Sql("COPY", e))?;
    }
    copy.finish().await.map_err(|e| FileFailure::Sql("COPY", e))
}

/// The distinct keys a fact file refers to, per reference: a few thousand values at most
/// (the dimensions' sizes), however many rows the file has.
struct ReferencedKeys {
    keys: Vec<(Reference, HashSet<i32>)>,
}

impl ReferencedKeys {
    fn new(table: &Table) -> ReferencedKeys {
        ReferencedKeys {
            keys: table
                .references
                .iter()
                .map(|r| (*r, HashSet::new()))
                .collect(),
        }
    }

    /// Integer keys and dates (as days since 1970, Arrow's Date32) alike.
    fn note(&mut self, batch: &RecordBatch) {
        for (reference, keys) in &mut self.keys {
            let Some(column) = batch.column_by_name(reference.column) else {
                continue; // the schema check already refused such a file
            };
            match column.data_type() {
                DataType::Int32 => keys.extend(column.as_primitive::<Int32Type>().iter().flatten()),
                DataType::Date32 => {
                    keys.extend(column.as_primitive::<Date32Type>().iter().flatten())
                }
                _ => {}
            }
        }
    }

    /// One anti-join per reference, the file's keys against the dimension, in the load's
    /// transaction (it sees the dimension rows this manifest brought). The first missing
    /// key is named, as PostgreSQL names a foreign key violation.
    async fn check(&self, tx: &mut PgConnection, table: &Table) -> Result<(), FileFailure> {
        let schema = (table.schema)();
        for (reference, keys) in &self.keys {
            if keys.is_empty() {
                continue;
            }
            let is_date = schema
                .field_with_name(reference.column)
                .is_ok_and(|f| f.data_type() == &DataType::Date32);
            let value = if is_date {
                "DATE '1970-01-01' + k"
            } else {
                "k"
            };
            let dim = quoted(reference.table);
            let key = quoted(reference.key);
            let missing: Option<String> = sqlx::query_scalar(&format!(
                "SELECT ({value})::text FROM unnest($1::int4[]) AS k \
                 WHERE NOT EXISTS (SELECT 1 FROM {dim} d WHERE d.{key} = {value}) \
                 ORDER BY k LIMIT 1"
            ))
            .bind(keys.iter().copied().collect::<Vec<i32>>())
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| FileFailure::Sql("checking references", e))?;
            if let Some(missing) = missing {
                return Err(FileFailure::Unreferenced(unreferenced(
                    table, reference, &missing,
                )));
            }
        }
        Ok(())
    }
}

/// A fact's key whose dimension row is not loaded, named as PostgreSQL names a foreign key
/// violation (on either engine).
pub(crate) fn unreferenced(table: &Table, reference: &Reference, missing: &str) -> String {
    format!(
        "insert on table \"{}\" violates foreign key constraint \"{}_{}_fkey\" \
         (checked by set): Key ({})=({missing}) is not present in table \"{}\".",
        table.name, table.name, reference.column, reference.column, reference.table
    )
}

fn quoted(name: &str) -> String {
    Ident::new(name)
        .expect("contract names are plain identifiers")
        .pg_quoted()
}

/// The SQL that loads one file of `table`: a temporary stage shaped like the file, COPY
/// into it (the file's column order, text format), the merge, and the stage dropped; for a
/// fact, first the COPY straight into the table. Every identifier comes from the allowlist
/// (`schema::TABLES`); there are no values to bind.
#[derive(Debug, Clone)]
pub struct Statements {
    pub create_stage: String,
    pub copy: String,
    pub merge: String,
    pub drop_stage: String,
    /// Facts: COPY into the table itself (the warehouse assigns the record ids).
    pub direct_copy: Option<String>,
    pub analyze: String,
}

impl Statements {
    pub fn of(table: &Table) -> Statements {
        let file = table.file_schema();
        let all: Vec<String> = file.fields().iter().map(|f| quoted(f.name())).collect();
        let data: Vec<String> = file
            .fields()
            .iter()
            .filter(|f| !VERSION_COLUMNS.contains(&f.name().as_str()))
            .map(|f| quoted(f.name()))
            .collect();
        let list = data.join(", ");
        let target = quoted(table.name);
        let versions = match table.kind {
            Kind::Dimension { .. } => {
                ", NULL::timestamp(3) AS source_last_updated, \
                                      NULL::timestamp(3) AS joined_last_updated"
            }
            _ => "",
        };
        Statements {
            create_stage: format!(
                "CREATE TEMPORARY TABLE {STAGE} ON COMMIT DROP AS \
                 SELECT {list}{versions} FROM {target} WITH NO DATA"
            ),
            copy: format!("COPY {STAGE} ({}) FROM STDIN", all.join(", ")),
            merge: merge_sql(table, &target, &data),
            drop_stage: format!("DROP TABLE {STAGE}"),
            direct_copy: table
                .is_fact()
                .then(|| format!("COPY {target} ({list}) FROM STDIN")),
            analyze: format!("ANALYZE {target}"),
        }
    }
}

fn merge_sql(table: &Table, target: &str, columns: &[String]) -> String {
    let list = columns.join(", ");
    match table.kind {
        Kind::Calendar { key } => format!(
            "INSERT INTO {target} ({list}) SELECT {list} FROM {STAGE} \
             ON CONFLICT ({key}) DO NOTHING"
        ),
        Kind::Fact { id, .. } => format!(
            "INSERT INTO {target} ({list}) SELECT {list} FROM {STAGE} \
             ON CONFLICT ({id}, last_updated_date, last_updated_time) DO NOTHING"
        ),
        Kind::Dimension { key } => {
            let set = columns
                .iter()
                .filter(|c| c.trim_matches('"') != key)
                .map(|c| format!("{c} = excluded.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let incoming = columns
                .iter()
                .map(|c| format!("i.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let dim = table.name;
            // The newest version per key in this file, then only where it is newer than the
            // version the warehouse holds: a late, older version changes nothing.
            format!(
                "WITH incoming AS (
                   SELECT DISTINCT ON ({key}) * FROM {STAGE}
                   ORDER BY {key}, source_last_updated DESC, joined_last_updated DESC NULLS LAST
                 ), newer AS (
                   INSERT INTO landfall.dim_version AS v (dim, id, source_last_updated, joined_last_updated)
                   SELECT '{dim}', {key}, source_last_updated, joined_last_updated FROM incoming
                   ON CONFLICT (dim, id) DO UPDATE
                     SET source_last_updated = excluded.source_last_updated,
                         joined_last_updated = excluded.joined_last_updated
                     WHERE (excluded.source_last_updated, coalesce(excluded.joined_last_updated, '-infinity'))
                         > (v.source_last_updated, coalesce(v.joined_last_updated, '-infinity'))
                   RETURNING id
                 )
                 INSERT INTO {target} ({list})
                 SELECT {incoming} FROM incoming i JOIN newer n ON n.id = i.{key}
                 ON CONFLICT ({key}) DO UPDATE SET {set}"
            )
        }
    }
}
