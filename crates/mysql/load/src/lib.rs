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

mod database;
#[cfg(test)]
mod dialect_gate;
mod error;
pub mod export;
pub mod pipeline;
pub mod protocol;
pub mod scripts;

pub use database::{connect_options, Database, Tls};
pub use error::MysqlError;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use landfall_mysql_datasets::{
    BadInput, CsvChecker, Dataset, Ident, LoadDataEncoder, Origin, Promotion, LOAD_DATA_FORMAT,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Pool};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

/// Identifies one object version everywhere: stage rows, ledger, logs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BatchId(String);

impl BatchId {
    /// sha256 of bucket, key and version (or ETag when the bucket is unversioned).
    pub fn for_object(bucket: &str, key: &str, version: &str) -> BatchId {
        let mut digest = Sha256::new();
        for part in [bucket, key, version] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        BatchId(hex::encode(digest.finalize()))
    }

    /// 64 lowercase hex digits, so it is safe inside SQL text (LOAD DATA takes no parameters).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One attempt at loading a split file: the object it loads (the ledger's key) and the
/// batch its parts are staged under, which no other attempt shares — so a part another
/// attempt staged (a failed try, a crashed one, a concurrent duplicate delivery) is never
/// counted or promoted with these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub object: BatchId,
    pub stage: BatchId,
}

impl Attempt {
    /// `token` names the attempt, e.g. the orchestrator's invocation request id.
    pub fn new(object: BatchId, token: &str) -> Attempt {
        let mut digest = Sha256::new();
        for part in [object.as_str(), token] {
            digest.update(part.as_bytes());
            digest.update([0]);
        }
        Attempt {
            stage: BatchId(hex::encode(digest.finalize())),
            object,
        }
    }
}

/// An attempt lives inside one file-orchestrator invocation (15 minutes at most): stage
/// rows of an attempt older than this were abandoned and are removed by the next promotion.
pub const ABANDONED_AFTER_SECONDS: u32 = 3600;

/// The object a batch came from, recorded in the ledger.
#[derive(Debug, Clone)]
pub struct LedgerSource {
    pub dataset: String,
    pub key: String,
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promoted {
    pub rows: u64,
    /// The ledger already had this object: nothing was loaded again.
    pub already_loaded: bool,
}

impl Promoted {
    const ALREADY_LOADED: Promoted = Promoted {
        rows: 0,
        already_loaded: true,
    };
}

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
            if !claim(&mut conn, batch, source, 1, 0).await? {
                return Ok(Promoted::ALREADY_LOADED);
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
            Ok(Promoted {
                rows,
                already_loaded: false,
            })
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

/// Commits a transaction that loaded something; rolls back one that failed or found its
/// file already loaded.
async fn end_transaction(
    conn: &mut Conn,
    result: Result<Promoted, MysqlError>,
) -> Result<Promoted, MysqlError> {
    match result {
        Ok(promoted) if !promoted.already_loaded => {
            conn.query_drop("COMMIT").await?;
            Ok(promoted)
        }
        other => {
            let _ = conn.query_drop("ROLLBACK").await;
            other
        }
    }
}

/// Inside the caller's transaction: the ledger row for `object`. False when it was already
/// there — loaded before, or by a concurrent delivery this insert waited for.
async fn claim(
    conn: &mut Conn,
    object: &BatchId,
    source: &LedgerSource,
    parts: u32,
    rows: u64,
) -> Result<bool, MysqlError> {
    conn.exec_drop(
        "INSERT IGNORE INTO landfall_load_ledger (load_id, dataset, object_key, object_version, parts, rows_loaded) VALUES (?, ?, ?, ?, ?, ?)",
        (object.as_str(), &source.dataset, &source.key, &source.version, parts, rows),
    )
    .await?;
    Ok(conn.affected_rows() == 1)
}

/// Removes the stage rows of every attempt at `object`, and of every attempt in this stage table
/// older than [`ABANDONED_AFTER_SECONDS`]. Best effort: whatever is left is found next time.
async fn sweep(conn: &mut Conn, stage_table: &Ident, object: &BatchId) {
    match remove_attempts(conn, stage_table, object, true).await {
        Ok(0) => {}
        Ok(rows) => tracing::info!(
            stage_table = stage_table.as_str(),
            rows,
            "removed stage rows of earlier or abandoned attempts"
        ),
        Err(err) => tracing::warn!(
            stage_table = stage_table.as_str(),
            error = %err,
            "could not remove stage rows of earlier attempts; the next promotion tries again"
        ),
    }
}

/// The stage rows of every attempt at `object` (and, with `abandoned`, of every attempt in
/// this stage table older than [`ABANDONED_AFTER_SECONDS`]), removed; how many.
async fn remove_attempts(
    conn: &mut Conn,
    stage_table: &Ident,
    object: &BatchId,
    abandoned: bool,
) -> Result<u64, MysqlError> {
    let older = if abandoned {
        format!(" OR started_at < NOW(3) - INTERVAL {ABANDONED_AFTER_SECONDS} SECOND")
    } else {
        String::new()
    };
    let batches: Vec<String> = conn
        .exec(
            format!(
                "SELECT stage_batch FROM landfall_stage_attempts WHERE stage_table = ? \
                 AND (load_id = ?{older})"
            ),
            (stage_table.as_str(), object.as_str()),
        )
        .await?;
    let mut rows = 0;
    for batch in batches {
        rows += discard_batch(conn, stage_table, &BatchId(batch)).await?;
    }
    Ok(rows)
}

async fn discard_batch(
    conn: &mut Conn,
    stage_table: &Ident,
    batch: &BatchId,
) -> Result<u64, MysqlError> {
    conn.exec_drop(
        format!(
            "DELETE FROM {} WHERE landfall_batch = ?",
            stage_table.quoted()
        ),
        (batch.as_str(),),
    )
    .await?;
    let rows = conn.affected_rows();
    conn.exec_drop(
        "DELETE FROM landfall_stage_attempts WHERE stage_batch = ?",
        (batch.as_str(),),
    )
    .await?;
    Ok(rows)
}

/// Inside the caller's transaction: the ledger row for `object`, then the rows staged under
/// `stage` counted and promoted.
#[allow(clippy::too_many_arguments)]
async fn promote_in(
    conn: &mut Conn,
    dataset: &Dataset,
    object: &BatchId,
    stage_batch: &BatchId,
    parts: u32,
    expected_rows: u64,
    source: &LedgerSource,
    clear_stage: bool,
) -> Result<Promoted, MysqlError> {
    let (stage_table, procedure) = staged(dataset)?;
    if !claim(conn, object, source, parts, expected_rows).await? {
        return Ok(Promoted::ALREADY_LOADED);
    }
    let stage = stage_table.quoted();
    let staged: Option<u64> = conn
        .exec_first(
            format!("SELECT COUNT(*) FROM {stage} WHERE landfall_batch = ?"),
            (stage_batch.as_str(),),
        )
        .await?;
    let staged = staged.unwrap_or(0);
    if staged != expected_rows {
        return Err(MysqlError::CountMismatch {
            expected: expected_rows,
            staged,
        });
    }
    conn.exec_drop(
        format!("CALL {}(?)", procedure.quoted()),
        (stage_batch.as_str(),),
    )
    .await?;
    if clear_stage {
        conn.exec_drop(
            format!("DELETE FROM {stage} WHERE landfall_batch = ?"),
            (stage_batch.as_str(),),
        )
        .await?;
    }
    Ok(Promoted {
        rows: staged,
        already_loaded: false,
    })
}

/// Where a `LOAD DATA` writes.
#[derive(Clone, Copy)]
enum Target<'a> {
    /// The dataset's table, rows with an existing key replaced.
    Table(&'a Ident),
    /// A stage table, each row tagged with its batch and part.
    Stage(StagePart<'a>),
}

/// One part of a file in a stage table.
#[derive(Clone, Copy)]
struct StagePart<'a> {
    table: &'a Ident,
    batch: &'a BatchId,
    part: u32,
}

/// Stages one part inside the caller's transaction; returns its rows once the stage table
/// holds exactly the checker's count of them.
async fn stage_checked(
    conn: &mut Conn,
    dataset: &Dataset,
    stage: StagePart<'_>,
    origin: Origin,
    body: BoxStream<'static, std::io::Result<Bytes>>,
) -> Result<u64, MysqlError> {
    let StagePart { table, batch, part } = stage;
    let (load, verdict) = load_statement(conn, dataset, Target::Stage(stage), origin, body);
    let rows = load_checked(conn, &load, &verdict).await?;
    let staged: Option<u64> = conn
        .exec_first(
            format!(
                "SELECT COUNT(*) FROM {} WHERE landfall_batch = ? AND landfall_part = ?",
                table.quoted()
            ),
            (batch.as_str(), part),
        )
        .await?;
    let staged = staged.unwrap_or(0);
    if staged != rows {
        return Err(MysqlError::CountMismatch {
            expected: rows,
            staged,
        });
    }
    Ok(rows)
}

/// Runs `load`; returns the file's rows as the checker counted them, or why nothing of it
/// may be kept: the checker's first bad record, the server's warnings, a stream cut short.
async fn load_checked(
    conn: &mut Conn,
    load: &str,
    verdict: &Mutex<Verdict>,
) -> Result<u64, MysqlError> {
    let loaded = conn.query_drop(load).await;
    let verdict = verdict.lock().expect("not poisoned").clone();
    if let Some(bad) = verdict.bad_input {
        return Err(MysqlError::BadInput(bad));
    }
    loaded?;
    if conn.get_warnings() > 0 {
        let warnings: Vec<(String, u32, String)> = conn.query("SHOW WARNINGS LIMIT 3").await?;
        let text: Vec<String> = warnings
            .iter()
            .map(|(level, code, msg)| format!("{level} {code}: {msg}"))
            .collect();
        // MySQL counts rows from the start of what it was sent: say which file that was.
        let within = match &verdict.origin.part {
            Some((part, first_line)) => {
                format!(" (rows counted in part {part}, which starts at line {first_line})")
            }
            None => String::new(),
        };
        return Err(MysqlError::Warnings(format!(
            "{}{within}: {}",
            verdict.origin.file,
            text.join("; ")
        )));
    }
    verdict.rows.ok_or(MysqlError::Incomplete)
}

/// The server's account of a `LOAD DATA`: "Records: 3  Deleted: 0  Skipped: 0  Warnings: 0".
#[derive(Debug, Default, PartialEq, Eq)]
struct LoadInfo {
    records: u64,
    deleted: u64,
    skipped: u64,
}

impl LoadInfo {
    /// Missing figures read as 0, so an unreadable answer fails the count check.
    fn parse(info: &str) -> LoadInfo {
        let mut read = LoadInfo::default();
        let mut words = info.split_whitespace();
        while let (Some(name), Some(value)) = (words.next(), words.next()) {
            let value = value.parse().unwrap_or(0);
            match name {
                "Records:" => read.records = value,
                "Deleted:" => read.deleted = value,
                "Skipped:" => read.skipped = value,
                _ => {}
            }
        }
        read
    }
}

/// Installs the checked stream as the connection's one LOCAL INFILE source and returns
/// the `LOAD DATA` statement for it, with the verdict the checker will fill in. Set just
/// before the statement runs: a handler left unused would stay on the pooled connection.
fn load_statement(
    conn: &mut Conn,
    dataset: &Dataset,
    into: Target<'_>,
    origin: Origin,
    body: BoxStream<'static, std::io::Result<Bytes>>,
) -> (String, Arc<Mutex<Verdict>>) {
    let verdict = Arc::new(Mutex::new(Verdict {
        origin: origin.clone(),
        rows: None,
        bad_input: None,
    }));
    let checked = checked_stream(body, dataset.checker(origin), verdict.clone());
    // The handler future must be Sync; the stream inside is only Send.
    let cell = Mutex::new(Some(checked));
    conn.set_infile_handler(async move {
        Ok(cell
            .lock()
            .expect("not poisoned")
            .take()
            .expect("used once"))
    });
    let columns: Vec<String> = dataset.columns.iter().map(|c| c.name.quoted()).collect();
    let columns = columns.join(", ");
    let load = match into {
        Target::Table(table) => format!(
            "LOAD DATA LOCAL INFILE 'landfall-stream' REPLACE INTO TABLE {} CHARACTER SET utf8mb4 {LOAD_DATA_FORMAT} ({columns})",
            table.quoted(),
        ),
        Target::Stage(StagePart { table, batch, part }) => format!(
            "LOAD DATA LOCAL INFILE 'landfall-stream' INTO TABLE {} CHARACTER SET utf8mb4 {LOAD_DATA_FORMAT} ({columns}) SET landfall_batch = '{}', landfall_part = {part}",
            table.quoted(),
            batch.as_str(),
        ),
    };
    (load, verdict)
}

/// What the checker concluded about the stream it saw.
#[derive(Debug, Clone)]
struct Verdict {
    origin: Origin,
    /// Data rows, once the whole file passed.
    rows: Option<u64>,
    bad_input: Option<BadInput>,
}

/// Checked chunks waiting for the database: the checker runs ahead on its own task (the
/// other core) by at most this many S3 chunks, so memory stays flat whatever the file.
const CHECKED_CHUNKS_AHEAD: usize = 2;

/// Passes `body` through `checker` on a task of its own, so checking overlaps the server's
/// work instead of adding to it; the first bad record ends the stream with an error and is
/// kept in `verdict`, so the caller reports it rather than the driver's I/O error. When the
/// load ends early (the connection lost), the task stops at its next chunk.
fn checked_stream(
    body: BoxStream<'static, std::io::Result<Bytes>>,
    checker: CsvChecker<LoadDataEncoder>,
    verdict: Arc<Mutex<Verdict>>,
) -> BoxStream<'static, std::io::Result<Bytes>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(CHECKED_CHUNKS_AHEAD);
    let mut checked = stream::unfold(Some((body, checker, verdict)), |state| async move {
        let (mut body, mut checker, verdict) = state?;
        let fail = |verdict: &Mutex<Verdict>, bad: BadInput| {
            let message = bad.to_string();
            verdict.lock().expect("not poisoned").bad_input = Some(bad);
            std::io::Error::new(std::io::ErrorKind::InvalidData, message)
        };
        loop {
            match body.next().await {
                Some(Ok(chunk)) => match checker.feed(&chunk) {
                    Ok(out) if out.is_empty() => continue,
                    Ok(out) => return Some((Ok(Bytes::from(out)), Some((body, checker, verdict)))),
                    Err(bad) => return Some((Err(fail(&verdict, bad)), None)),
                },
                Some(Err(err)) => return Some((Err(err), None)),
                None => {
                    return match checker.finish() {
                        Ok(out) => {
                            verdict.lock().expect("not poisoned").rows = Some(checker.rows());
                            Some((Ok(Bytes::from(out)), None))
                        }
                        Err(bad) => Some((Err(fail(&verdict, bad)), None)),
                    }
                }
            }
        }
    })
    .boxed();
    tokio::spawn(async move {
        while let Some(chunk) = checked.next().await {
            if sender.send(chunk).await.is_err() {
                return;
            }
        }
    });
    stream::unfold(receiver, |mut receiver| async move {
        let chunk = receiver.recv().await?;
        Some((chunk, receiver))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::LoadInfo;

    #[test]
    fn the_servers_account_of_a_load_is_read_and_anything_else_counts_nothing() {
        assert_eq!(
            LoadInfo::parse("Records: 1000  Deleted: 3  Skipped: 0  Warnings: 0"),
            LoadInfo {
                records: 1000,
                deleted: 3,
                skipped: 0
            }
        );
        assert_eq!(LoadInfo::parse(""), LoadInfo::default());
        assert_eq!(LoadInfo::parse("Rows matched: 1"), LoadInfo::default());
    }
}
