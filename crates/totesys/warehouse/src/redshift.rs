//! The star schema on Amazon Redshift, through the Data API: one manifest is one
//! `BatchExecuteStatement`, which Redshift runs serially as one transaction, with its ledger
//! row. Redshift reads the Parquet itself (`COPY … FORMAT AS PARQUET` as the copy role), so
//! the function handles no row.
//!
//! The batch, in the order `schema::TABLES` loads (referenced rows first):
//! 1. `LOCK landfall.load_ledger`: loads never run side by side (a second waits, then finds
//!    every row already there) — Redshift has no advisory lock, and the lock is what it
//!    advises against serializable-isolation aborts between writers.
//! 2. Each file COPYed into a temporary stage shaped like the file (COPY from Parquet maps
//!    columns by position; Redshift developer guide, "COPY from columnar data formats"), its
//!    row count checked against the manifest, then merged by its table's kind — dim_date:
//!    the new days; a dimension: the newest version per key, only where newer than the
//!    version held (`landfall.dim_version`); a fact: the source versions not there yet, with
//!    record ids after the table's highest — and a fact file's references checked by set
//!    against the dimensions (which this batch's own dimension rows already joined).
//! 3. `CALL landfall.raise_problems`: a wrong row count or a missing dimension row recorded
//!    in step 2 fails the batch, which leaves nothing.
//! 4. The ledger row, unless another run wrote it first.
//!
//! Temporary tables end with the Data API's session, which is the call's.

use crate::load::{unreferenced, Loaded, WarehouseError};
use crate::schema::{in_load_order, Kind, Table};
use arrow_schema::DataType;
use landfall_failure::{Classify, Disposition};
use landfall_redshift_data::migrate::{MigrateError, Migrations};
use landfall_redshift_data::{client_token, literal, DataApiError, Warehouse};
use landfall_sql_ident::Ident;
use landfall_totesys_contract::processed::Manifest;
use landfall_totesys_star::parquet::{is_time_of_day, VERSION_COLUMNS};
use std::collections::HashSet;
use std::time::Duration;

/// `sql/warehouse-redshift/`, applied through the Data API, recorded in
/// `landfall.star_migrations`.
pub const MIGRATIONS: Migrations = Migrations {
    ledger: "landfall.star_migrations",
    scripts: &[(
        1,
        "star schema",
        include_str!("../../../../sql/warehouse-redshift/0001_star_schema.sql"),
    )],
};

/// `BatchExecuteStatement` takes at most 40 statements (Redshift Data API reference,
/// BatchExecuteStatement, `Sqls`).
pub const MAX_STATEMENTS: usize = 40;

/// How a problem recorded inside the batch begins (`landfall.raise_problems` adds
/// `landfall: `): the file is wrong, or waits for dimension rows.
const REJECTED: &str = "rejected: ";
const WAITING: &str = "waiting: ";

/// Where warehouse-loader's statements run, and the role Redshift reads S3 as.
#[derive(Debug, Clone)]
pub struct Redshift {
    pub warehouse: Warehouse,
    pub copy_role_arn: String,
    pub bucket: String,
    /// How long one statement is followed before the run gives up on it (it goes on in
    /// Redshift; the next run's resubmission finds it by its ClientToken).
    pub statement_budget: Duration,
}

/// One manifest's batch: its statements, and which of them writes each table's rows and
/// the ledger row (their `ResultRows` are what the load did).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub sqls: Vec<String>,
    pub writes: Vec<(&'static str, usize)>,
    pub ledger: usize,
}

/// Now (UTC) as SQL timestamp text: when a ledger row or a migration was written.
pub fn now_text() -> String {
    let now = time::OffsetDateTime::now_utc();
    let format = time::macros::format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
    );
    now.format(&format).unwrap_or_default()
}

fn quoted(name: &str) -> String {
    Ident::new(name)
        .expect("contract names are plain identifiers")
        .pg_quoted()
}

fn sql_type(data_type: &DataType) -> Result<String, String> {
    Ok(match data_type {
        DataType::Int32 => "INTEGER".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        // The stage takes any length; the table's own limit is checked by the merge.
        DataType::Utf8 => "VARCHAR(65535)".into(),
        other => return Err(format!("no Redshift type for {other}")),
    })
}

impl Batch {
    /// The batch that loads `manifest` (its files in `bucket`), recorded under `key`.
    pub fn of(
        key: &str,
        manifest: &Manifest,
        bucket: &str,
        copy_role_arn: &str,
        loaded_at: &str,
    ) -> Result<Batch, WarehouseError> {
        let rejected = |file: &str, reason: String| WarehouseError::Rejected {
            manifest: key.to_owned(),
            key: file.to_owned(),
            reason,
        };
        let text = |value: &str| literal(value).map_err(|e| rejected(key, e.to_string()));
        let m = text(key)?;
        let files = in_load_order(&manifest.outputs, |o| (&o.table, &o.key))
            .map_err(|(file, reason)| rejected(&file, reason))?;

        let mut sqls = vec!["LOCK landfall.load_ledger".to_owned()];
        let mut writes = Vec::new();
        let total: usize = manifest.outputs.iter().map(|o| o.rows).sum();
        for (n, (table, output)) in files.iter().enumerate() {
            let stage = format!("landfall_stage_{n}");
            let schema = table.file_schema();
            let columns = schema
                .fields()
                .iter()
                .map(|f| Ok(format!("{} {}", quoted(f.name()), sql_type(f.data_type())?)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|reason| rejected(&output.key, reason))?;
            sqls.push(format!(
                "CREATE TEMPORARY TABLE {stage} ({})",
                columns.join(", ")
            ));
            // FROM is a key prefix to COPY ("COPY from Amazon S3"): a part's key ends with
            // its attempt's tag and `.parquet`, so it is no other object's prefix.
            sqls.push(format!(
                "COPY {stage} FROM {} IAM_ROLE {} FORMAT AS PARQUET",
                text(&format!("s3://{bucket}/{}", output.key))?,
                text(copy_role_arn)?
            ));
            let wrong_count = text(&format!(
                "{REJECTED}{}: the manifest says {} rows; the file has ",
                output.key, output.rows
            ))?;
            sqls.push(format!(
                "INSERT INTO landfall.load_problems (manifest, problem) \
                 SELECT {m}, {wrong_count} || CAST(count(*) AS VARCHAR) FROM {stage} \
                 HAVING count(*) <> {}",
                output.rows
            ));
            let merge = merge(table, &stage);
            let last = merge.len() - 1;
            for (i, sql) in merge.into_iter().enumerate() {
                if i == last {
                    writes.push((table.name, sqls.len()));
                }
                sqls.push(sql);
            }
            if let Some(check) = references(table, &stage, &m)? {
                sqls.push(check);
            }
        }
        sqls.push(format!("CALL landfall.raise_problems({m})"));
        let ledger = sqls.len();
        let upper = match &manifest.upper {
            Some(upper) => format!("CAST({} AS TIMESTAMP)", text(&upper.replace('T', " "))?),
            None => "NULL".into(),
        };
        sqls.push(format!(
            "INSERT INTO landfall.load_ledger \
               (manifest, source, source_version, source_table, sequence, upper_bound, row_count, loaded_at) \
             SELECT {m}, {}, {}, {}, {}, {upper}, {total}, CAST({} AS TIMESTAMP) \
             WHERE NOT EXISTS (SELECT 1 FROM landfall.load_ledger WHERE manifest = {m})",
            text(&manifest.source)?,
            text(&manifest.source_version)?,
            text(&manifest.table)?,
            manifest.sequence,
            text(loaded_at)?,
        ));
        if sqls.len() > MAX_STATEMENTS {
            return Err(rejected(
                key,
                format!(
                    "its load takes {} statements; one Data API batch takes at most {MAX_STATEMENTS}",
                    sqls.len()
                ),
            ));
        }
        Ok(Batch {
            sqls,
            writes,
            ledger,
        })
    }
}

/// The statements that merge `stage` into `table`; the last one writes the table's rows.
fn merge(table: &Table, stage: &str) -> Vec<String> {
    let schema = (table.schema)();
    let fields: Vec<_> = schema
        .fields()
        .iter()
        .filter(|f| !VERSION_COLUMNS.contains(&f.name().as_str()))
        .collect();
    let data: Vec<String> = fields.iter().map(|f| quoted(f.name())).collect();
    let list = data.join(", ");
    // The stage's columns as the table's types: a time of day comes as text.
    let typed = fields
        .iter()
        .map(|f| match is_time_of_day(f) {
            true => format!("CAST({0} AS TIME) AS {0}", quoted(f.name())),
            false => quoted(f.name()),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let target = quoted(table.name);
    match table.kind {
        Kind::Calendar { key } => {
            let key = quoted(key);
            vec![format!(
                "INSERT INTO {target} ({list}) SELECT DISTINCT {typed} FROM {stage} s \
                 WHERE NOT EXISTS (SELECT 1 FROM {target} d WHERE d.{key} = s.{key})"
            )]
        }
        Kind::Fact { id, record } => {
            let (id, record) = (quoted(id), quoted(record));
            let incoming = data
                .iter()
                .map(|c| format!("n.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            vec![format!(
                "INSERT INTO {target} ({record}, {list}) \
                 SELECT b.top + ROW_NUMBER() OVER (ORDER BY n.{id}, n.last_updated_date, n.last_updated_time), {incoming} \
                 FROM (SELECT DISTINCT {typed} FROM {stage}) n \
                 CROSS JOIN (SELECT COALESCE(MAX({record}), 0) AS top FROM {target}) b \
                 WHERE NOT EXISTS (SELECT 1 FROM {target} f WHERE f.{id} = n.{id} \
                   AND f.last_updated_date = n.last_updated_date AND f.last_updated_time = n.last_updated_time)"
            )]
        }
        Kind::Dimension { key } => {
            let key = quoted(key);
            let incoming = format!("{stage}_newer");
            let dim = literal(table.name).expect("a table name is a plain identifier");
            vec![
                // The newest version per key in this file, where newer than the one held.
                format!(
                    "CREATE TEMPORARY TABLE {incoming} AS \
                     SELECT {typed}, source_last_updated, joined_last_updated FROM ( \
                       SELECT s.*, ROW_NUMBER() OVER (PARTITION BY {key} \
                         ORDER BY source_last_updated DESC, joined_last_updated DESC NULLS LAST) AS landfall_rank \
                       FROM {stage} s) r \
                     WHERE landfall_rank = 1 AND NOT EXISTS ( \
                       SELECT 1 FROM landfall.dim_version v WHERE v.dim = {dim} AND v.id = r.{key} \
                       AND (v.source_last_updated > r.source_last_updated \
                         OR (v.source_last_updated = r.source_last_updated \
                           AND COALESCE(v.joined_last_updated, TIMESTAMP '1900-01-01 00:00:00') \
                             >= COALESCE(r.joined_last_updated, TIMESTAMP '1900-01-01 00:00:00'))))"
                ),
                format!(
                    "DELETE FROM landfall.dim_version WHERE dim = {dim} AND id IN (SELECT {key} FROM {incoming})"
                ),
                format!(
                    "INSERT INTO landfall.dim_version (dim, id, source_last_updated, joined_last_updated) \
                     SELECT {dim}, {key}, source_last_updated, joined_last_updated FROM {incoming}"
                ),
                format!("DELETE FROM {target} WHERE {key} IN (SELECT {key} FROM {incoming})"),
                format!("INSERT INTO {target} ({list}) SELECT {list} FROM {incoming}"),
            ]
        }
    }
}

/// A fact file's references, each referenced key of the file against its dimension, in one
/// statement: the first missing key of each reference becomes a problem.
fn references(table: &Table, stage: &str, m: &str) -> Result<Option<String>, WarehouseError> {
    if table.references.is_empty() {
        return Ok(None);
    }
    let checks: Vec<String> = table
        .references
        .iter()
        .map(|r| {
            let (column, dim, key) = (quoted(r.column), quoted(r.table), quoted(r.key));
            // The same words as PostgreSQL's check, the missing key spliced in by SQL.
            let words = format!("{WAITING}{}", unreferenced(table, r, "\u{1}"));
            let (before, after) = words
                .split_once('\u{1}')
                .expect("the marker is in the words");
            let (before, after) = (
                literal(before).expect("contract names are plain identifiers"),
                literal(after).expect("contract names are plain identifiers"),
            );
            format!(
                "SELECT {before} || CAST(MIN(s.{column}) AS VARCHAR) || {after} AS problem \
                 FROM {stage} s WHERE s.{column} IS NOT NULL \
                 AND NOT EXISTS (SELECT 1 FROM {dim} d WHERE d.{key} = s.{column}) \
                 HAVING COUNT(*) > 0"
            )
        })
        .collect();
    Ok(Some(format!(
        "INSERT INTO landfall.load_problems (manifest, problem) SELECT {m}, problem FROM ({}) p",
        checks.join(" UNION ALL ")
    )))
}

impl Redshift {
    /// Applies the pending migrations.
    pub async fn migrate(&self, applied_at: &str) -> Result<Vec<u32>, MigrateError> {
        MIGRATIONS
            .apply(&self.warehouse, applied_at, self.statement_budget)
            .await
    }

    /// The manifests of `keys` the ledger holds.
    pub async fn loaded(&self, keys: &[String]) -> Result<HashSet<String>, WarehouseError> {
        let mut done = HashSet::new();
        // Keys as literals, a few hundred a statement: well under the Data API's SQL size
        // limit. A key that cannot be SQL text is in no ledger row; its load quarantines it.
        let literals: Vec<String> = keys.iter().filter_map(|k| literal(k).ok()).collect();
        for chunk in literals.chunks(200) {
            let rows = self
                .query(&format!(
                    "SELECT manifest FROM landfall.load_ledger WHERE manifest IN ({})",
                    chunk.join(", ")
                ))
                .await?;
            done.extend(
                rows.into_iter()
                    .filter_map(|r| r.into_iter().next().flatten()),
            );
        }
        Ok(done)
    }

    pub(crate) async fn query(
        &self,
        sql: &str,
    ) -> Result<Vec<Vec<Option<String>>>, WarehouseError> {
        self.warehouse
            .query(sql, &[], self.statement_budget)
            .await
            .map_err(|source| WarehouseError::DataApi {
                context: "querying the warehouse".into(),
                source,
            })
    }

    /// Loads one manifest in one batch.
    pub async fn load_manifest(
        &self,
        key: &str,
        manifest: &Manifest,
        loaded_at: &str,
    ) -> Result<Loaded, WarehouseError> {
        let batch = Batch::of(key, manifest, &self.bucket, &self.copy_role_arn, loaded_at)?;
        // A token per attempt: the SDK's own retry of this call finds the batch it submitted,
        // and a later attempt runs anew (a token names its first statement, failed or not). A
        // batch an earlier run gave up following holds the lock until it ends; this one then
        // finds every row there and its ledger row written: `Already`.
        let token = client_token(&["warehouse-load", key, &manifest.source_version, loaded_at]);
        let failed = |source: DataApiError| classify(key, manifest, source);
        let id = self
            .warehouse
            .submit_batch(&batch.sqls, &token, "landfall-warehouse-load")
            .await
            .map_err(|e| failed(e.into()))?;
        let done = self
            .warehouse
            .follow(&id, self.statement_budget)
            .await
            .map_err(failed)?;
        let rows = |index: usize| {
            done.sub_statements
                .get(index)
                .map_or(0, |s| s.result_rows.max(0) as u64)
        };
        if rows(batch.ledger) == 0 {
            return Ok(Loaded::Already);
        }
        Ok(Loaded::Rows(
            batch
                .writes
                .iter()
                .map(|(table, index)| (*table, rows(*index)))
                .collect(),
        ))
    }
}

/// A failed batch as the loader acts on it: a problem the batch recorded (waiting, or the
/// file rejected), data Redshift can never take (rejected), or the moment (retried).
fn classify(key: &str, manifest: &Manifest, source: DataApiError) -> WarehouseError {
    if let DataApiError::Failed { error, .. } = &source {
        if let Some(problem) = error.split("landfall: ").nth(1) {
            if let Some(detail) = problem.strip_prefix(WAITING) {
                return WarehouseError::Waiting {
                    manifest: key.to_owned(),
                    table: manifest.table.clone(),
                    detail: detail.trim().to_owned(),
                };
            }
            if let Some(reason) = problem.strip_prefix(REJECTED) {
                return WarehouseError::Rejected {
                    manifest: key.to_owned(),
                    key: key.to_owned(),
                    reason: reason.trim().to_owned(),
                };
            }
        }
    }
    if source.disposition() == Disposition::Permanent {
        return WarehouseError::Rejected {
            manifest: key.to_owned(),
            key: key.to_owned(),
            reason: source.to_string(),
        };
    }
    WarehouseError::DataApi {
        context: format!("{key}: loading"),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::TABLES;
    use landfall_totesys_contract::processed::Output;

    fn manifest(tables: &[&str]) -> Manifest {
        Manifest {
            source: "s3://ingestion/address/a.jsonl.gz".into(),
            source_version: "v1".into(),
            table: "address".into(),
            sequence: 3,
            upper: Some("2024-11-14T15:04:09.845".into()),
            outputs: tables
                .iter()
                .map(|t| Output {
                    table: (*t).into(),
                    key: format!("processed/{t}/x.parquet"),
                    rows: 10,
                })
                .collect(),
        }
    }

    #[test]
    fn a_batch_locks_first_loads_referenced_rows_first_and_writes_the_ledger_last() {
        let m = manifest(&["fact_sales_order", "dim_location", "dim_date"]);
        let batch = Batch::of(
            "ready/a.json",
            &m,
            "processed",
            "arn:aws:iam::1:role/copy",
            "2024-11-14 15:05:00",
        )
        .unwrap();
        assert_eq!(batch.sqls[0], "LOCK landfall.load_ledger");
        let order: Vec<&str> = batch.writes.iter().map(|(t, _)| *t).collect();
        assert_eq!(order, ["dim_date", "dim_location", "fact_sales_order"]);
        assert!(batch.writes.windows(2).all(|w| w[0].1 < w[1].1));
        assert_eq!(batch.ledger, batch.sqls.len() - 1);
        assert!(batch.sqls[batch.ledger - 1]
            .starts_with("CALL landfall.raise_problems('ready/a.json')"));
        assert!(batch.sqls[batch.ledger].contains("CAST('2024-11-14 15:04:09.845' AS TIMESTAMP)"));
        let copy = batch.sqls.iter().find(|s| s.starts_with("COPY")).unwrap();
        assert_eq!(copy, "COPY landfall_stage_0 FROM 's3://processed/processed/dim_date/x.parquet' IAM_ROLE 'arn:aws:iam::1:role/copy' FORMAT AS PARQUET");
        // Only the fact's file is checked against the dimensions.
        let checks = batch
            .sqls
            .iter()
            .filter(|s| s.contains("UNION ALL"))
            .count();
        assert_eq!(checks, 1);
        // The fact's times come as text (Spectrum reads no TIME) and are cast on the way in.
        let facts = &batch.sqls[batch.writes[2].1];
        assert!(
            facts.contains(r#"CAST("created_time" AS TIME) AS "created_time""#),
            "{facts}"
        );
    }

    #[test]
    fn every_manifest_star_transform_writes_fits_one_batch() {
        // The most a source object yields: an address is both dimensions that embed it.
        let m = manifest(&["dim_location", "dim_counterparty"]);
        let batch = Batch::of("ready/a.json", &m, "b", "r", "2024-11-14 15:05:00").unwrap();
        assert!(batch.sqls.len() <= MAX_STATEMENTS, "{}", batch.sqls.len());
        // A manifest of every table could not be one transaction: refused before submitting.
        let all: Vec<&str> = TABLES.iter().map(|t| t.name).collect();
        let err = Batch::of("ready/all.json", &manifest(&all), "b", "r", "t").unwrap_err();
        assert!(err.to_string().contains("at most 40"), "{err}");
    }

    #[test]
    fn a_key_that_cannot_be_sql_text_is_rejected_not_spliced() {
        let mut m = manifest(&["dim_date"]);
        m.outputs[0].key = "processed/dim_date/a\\b.parquet".into();
        let err = Batch::of("ready/a.json", &m, "b", "r", "t").unwrap_err();
        assert!(matches!(err, WarehouseError::Rejected { .. }), "{err}");
    }

    #[test]
    fn problems_raised_by_the_batch_become_waiting_or_rejected() {
        let m = manifest(&["fact_sales_order"]);
        let failed = |error: &str| DataApiError::Failed {
            id: "x".into(),
            status: landfall_redshift_data::Status::Failed,
            sql: Some("CALL landfall.raise_problems('ready/a.json')".into()),
            error: error.into(),
        };
        let waiting = classify("ready/a.json", &m, failed("ERROR: landfall: waiting: fact_sales_order.sales_staff_id refers to dim_staff.staff_id 7, which is not loaded yet"));
        assert!(
            matches!(&waiting, WarehouseError::Waiting { detail, .. } if detail.contains("dim_staff.staff_id 7")),
            "{waiting}"
        );
        let rejected = classify("ready/a.json", &m, failed("ERROR: landfall: rejected: processed/x.parquet: the manifest says 10 rows; the file has 9"));
        assert!(
            matches!(rejected, WarehouseError::Rejected { .. }),
            "{rejected}"
        );
        let data = classify("ready/a.json", &m, failed("ERROR: Spectrum Scan Error"));
        assert!(matches!(data, WarehouseError::Rejected { .. }), "{data}");
        let moment = classify(
            "ready/a.json",
            &m,
            failed("ERROR: 1023 Serializable isolation violation"),
        );
        assert_eq!(moment.disposition(), Disposition::Retryable, "{moment}");
    }
}
