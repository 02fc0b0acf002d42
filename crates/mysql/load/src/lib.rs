//! Loading a dataset file into MySQL/MariaDB so that it is visible entirely or not at all,
//! and exactly once.
//!
//! A dataset whose promotion is an upsert into its table ([`Promotion::Upsert`]) loads
//! each file with `load` alone: the checked stream goes by `LOAD DATA LOCAL … REPLACE`
//! straight into the table, inside the transaction that writes the ledger row, and is kept
//! only if the server read exactly the checker's rows without a warning — each row written
//! once. A dataset with a load procedure goes through a stage:
//!
//! 1. `stage`: one part of a file streams through the dataset's [`CsvChecker`] into the
//!    stage table with `LOAD DATA LOCAL INFILE`, served from that stream by the
//!    connection's own infile handler (no /tmp copy, no whole-file buffer, no other file
//!    ever served). Inside a transaction: rows counted against the checker's count and no
//!    warnings, or nothing is kept. Parts are staged under their [`Attempt`]'s own batch.
//! 2. `promote`: all parts of one attempt, in one transaction: the ledger row (keyed by the
//!    object's key and version) first — a second delivery waits on it and then finds it —
//!    then the dataset's load procedure over that attempt's rows only, then they are
//!    cleared. Rows other attempts at the same object left behind (a failed try, a crash)
//!    are removed afterwards, and so are any attempt's rows once it is older than an
//!    attempt can live.
//! 3. `load`: a file that was not split, staged and promoted in one transaction.
//! 4. `run_reports`: the dataset's report procedures, in one transaction.
//!
//! The uploads of one key load in the order they landed: beside its ledger row, a load
//! takes its key's row in `landfall_key_order` (locked to the transaction's end, so loads of
//! one key run one at a time), and an upload that landed before one already loaded loads
//! nothing ([`Promoted::superseded_by`]) — a retried older upload never overwrites a
//! correction's rows.

mod batch;
mod database;
#[cfg(test)]
mod dialect_gate;
mod error;
pub mod export;
mod ledger;
mod load_data;
pub mod pipeline;
pub mod protocol;
pub mod scripts;

pub use batch::{Attempt, BatchId, LedgerSource, Promoted, ABANDONED_AFTER_SECONDS};
pub use database::{connect_options, Database, Tls};
pub use error::MysqlError;
use ledger::*;
use load_data::*;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use landfall_mysql_datasets::{
    BadInput, CsvChecker, Dataset, Ident, LoadDataEncoder, Origin, Promotion, LOAD_DATA_FORMAT,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};
use std::sync::{Arc, Mutex};

pub struct MysqlLoader {
    pool: Pool,
}

impl MysqlLoader {
    pub fn new(pool: Pool) -> MysqlLoader {
        MysqlLoader { pool }
    }

    pub async fn conn(&self) -> Result<Conn, MysqlError> {
        Ok(self.pool.get_conn().await?)
    }

    /// Stages one part of a file for `attempt`; returns its data rows. Re-staging a part
    /// within the same attempt replaces it.
    pub async fn stage(
        &self,
        dataset: &Dataset,
        attempt: &Attempt,
        part: u32,
        origin: impl Into<Origin>,
        body: BoxStream<'static, std::io::Result<Bytes>>,
    ) -> Result<u64, MysqlError> {
        let (stage_table, _) = staged(dataset)?;
        let mut conn = self.conn().await?;
        let stage = stage_table.quoted();
        let batch = &attempt.stage;
        // Recorded before any row, outside the part's transaction (parts stage concurrently).
        conn.exec_drop(
            "INSERT IGNORE INTO landfall_stage_attempts (stage_batch, load_id, stage_table) VALUES (?, ?, ?)",
            (batch.as_str(), attempt.object.as_str(), stage_table.as_str()),
        )
        .await?;
        conn.exec_drop(
            format!("DELETE FROM {stage} WHERE landfall_batch = ? AND landfall_part = ?"),
            (batch.as_str(), part),
        )
        .await?;

        conn.query_drop("START TRANSACTION").await?;
        let outcome = stage_checked(
            &mut conn,
            dataset,
            StagePart {
                table: stage_table,
                batch,
                part,
            },
            origin.into(),
            body,
        )
        .await;
        match outcome {
            Ok(rows) => {
                conn.query_drop("COMMIT").await?;
                Ok(rows)
            }
            Err(err) => {
                // A stream that failed midway ends LOAD DATA early: its rows go with the rollback.
                let _ = conn.query_drop("ROLLBACK").await;
                Err(err)
            }
        }
    }

    /// A file that was not split, in one transaction with its ledger row: straight into the
    /// table for an upsert dataset, else through a temporary stage and the load procedure.
    /// A file already in the ledger loads nothing.
    pub async fn load(
        &self,
        dataset: &Dataset,
        batch: &BatchId,
        file: impl Into<Origin>,
        body: BoxStream<'static, std::io::Result<Bytes>>,
        source: &LedgerSource,
    ) -> Result<Promoted, MysqlError> {
        match dataset.promotion() {
            Promotion::Upsert => self.upsert(dataset, batch, file.into(), body, source).await,
            Promotion::Procedure { stage_table, .. } => {
                self.load_through_temporary_stage(
                    dataset,
                    stage_table,
                    batch,
                    file.into(),
                    body,
                    source,
                )
                .await
            }
        }
    }

    /// The ledger row first — a concurrent delivery of the same file waits on it, then
    /// finds it and loads nothing — then the checked stream into the table.
    async fn upsert(
        &self,
        dataset: &Dataset,
        batch: &BatchId,
        file: Origin,
        body: BoxStream<'static, std::io::Result<Bytes>>,
        source: &LedgerSource,
    ) -> Result<Promoted, MysqlError> {
        let mut conn = self.conn().await?;
        conn.query_drop("START TRANSACTION").await?;
        let result = async {
            if let Some(nothing) = claim(&mut conn, batch, source, 1, 0).await? {
                return Ok(nothing);
            }
            let (load, verdict) = load_statement(
                &mut conn,
                dataset,
                Target::Table(&dataset.table),
                file,
                body,
            );
            let rows = load_checked(&mut conn, &load, &verdict).await?;
            let read = LoadInfo::parse(&conn.info());
            if read.records != rows || read.skipped != 0 {
                return Err(MysqlError::CountMismatch {
                    expected: rows,
                    staged: read.records.saturating_sub(read.skipped),
                });
            }
            conn.exec_drop(
                "UPDATE landfall_load_ledger SET rows_loaded = ? WHERE load_id = ?",
                (rows, batch.as_str()),
            )
            .await?;
            tracing::debug!(rows, replaced = read.deleted, "loaded into the table");
            Ok(Promoted::loaded(rows))
        }
        .await;
        end_transaction(&mut conn, result).await
    }

    /// A procedure dataset's file that was not split, in one transaction on one connection:
    /// staged into a session-private temporary table that shadows the stage table for this
    /// connection only (the load procedure reads it unchanged), checked, and promoted with
    /// its ledger row. Nothing is left to clean.
    async fn load_through_temporary_stage(
        &self,
        dataset: &Dataset,
        stage_table: &Ident,
        batch: &BatchId,
        file: Origin,
        body: BoxStream<'static, std::io::Result<Bytes>>,
        source: &LedgerSource,
    ) -> Result<Promoted, MysqlError> {
        let mut conn = self.conn().await?;
        let stage = stage_table.quoted();
        // MariaDB refuses `CREATE TEMPORARY TABLE t LIKE t`: create, then rename over it.
        conn.query_drop(format!(
            "DROP TEMPORARY TABLE IF EXISTS landfall_temporary_stage, {stage}; \
             CREATE TEMPORARY TABLE landfall_temporary_stage LIKE {stage}; \
             ALTER TABLE landfall_temporary_stage RENAME TO {stage}"
        ))
        .await?;
        conn.query_drop("START TRANSACTION").await?;
        let result = async {
            let part = StagePart {
                table: stage_table,
                batch,
                part: 0,
            };
            let rows = stage_checked(&mut conn, dataset, part, file, body).await?;
            promote_in(&mut conn, dataset, batch, batch, 1, rows, source, false).await
        }
        .await;
        let outcome = end_transaction(&mut conn, result).await;
        let _ = conn
            .query_drop(format!("DROP TEMPORARY TABLE IF EXISTS {stage}"))
            .await;
        if outcome.is_ok() {
            sweep(&mut conn, stage_table, batch).await;
        }
        outcome
    }

    /// Promotes every part `attempt` staged, in one transaction with the object's ledger row;
    /// then removes what other attempts at it, and abandoned ones, left in the stage table.
    pub async fn promote(
        &self,
        dataset: &Dataset,
        attempt: &Attempt,
        parts: u32,
        expected_rows: u64,
        source: &LedgerSource,
    ) -> Result<Promoted, MysqlError> {
        let (stage_table, _) = staged(dataset)?;
        let mut conn = self.conn().await?;
        conn.query_drop("START TRANSACTION").await?;
        let result = promote_in(
            &mut conn,
            dataset,
            &attempt.object,
            &attempt.stage,
            parts,
            expected_rows,
            source,
            true,
        )
        .await;
        let outcome = end_transaction(&mut conn, result).await;
        // Loaded now or earlier: no attempt's stage rows for this object are needed any more
        // (a duplicate delivery's included). After a failure they stay for `discard`.
        if outcome.is_ok() {
            sweep(&mut conn, stage_table, &attempt.object).await;
        }
        outcome
    }

    /// Removes what `attempt` staged: it failed and will not be promoted. With
    /// `every_attempt` (the file was refused for good, so no attempt at it will be promoted),
    /// also what earlier attempts at the same object left behind — a crash, a cut connection
    /// — which no later promotion's sweep would otherwise reach before the hourly one.
    pub async fn discard(
        &self,
        dataset: &Dataset,
        attempt: &Attempt,
        every_attempt: bool,
    ) -> Result<u64, MysqlError> {
        let (stage_table, _) = staged(dataset)?;
        let mut conn = self.conn().await?;
        let mut rows = discard_batch(&mut conn, stage_table, &attempt.stage).await?;
        if every_attempt {
            rows += remove_attempts(&mut conn, stage_table, &attempt.object, false).await?;
        }
        Ok(rows)
    }

    /// Runs the dataset's report procedures, all or none.
    pub async fn run_reports(&self, dataset: &Dataset) -> Result<usize, MysqlError> {
        let mut conn = self.conn().await?;
        conn.query_drop("START TRANSACTION").await?;
        for procedure in &dataset.report_procedures {
            if let Err(err) = conn
                .query_drop(format!("CALL {}()", procedure.quoted()))
                .await
            {
                let _ = conn.query_drop("ROLLBACK").await;
                return Err(err.into());
            }
        }
        conn.query_drop("COMMIT").await?;
        Ok(dataset.report_procedures.len())
    }
}

/// The stage table and procedure of a dataset that has them; an upsert dataset is never
/// staged (the orchestrator does not split its files).
fn staged(dataset: &Dataset) -> Result<(&Ident, &Ident), MysqlError> {
    match dataset.promotion() {
        Promotion::Procedure {
            stage_table,
            procedure,
        } => Ok((stage_table, procedure)),
        Promotion::Upsert => Err(MysqlError::NotStaged {
            table: dataset.table.as_str().to_owned(),
        }),
    }
}
