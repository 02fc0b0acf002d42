//! The ledger and the stage table inside a promotion's transaction: claim the object's
//! ledger row first, promote one attempt's rows, clear what other attempts left.

use super::*;
use sha2::{Digest, Sha256};

/// Commits a transaction that loaded something; rolls back one that failed, found its file
/// already loaded, or found a later upload of its key loaded.
pub(crate) async fn end_transaction(
    conn: &mut Conn,
    result: Result<Promoted, MysqlError>,
) -> Result<Promoted, MysqlError> {
    match result {
        Ok(promoted) if promoted.wrote() => {
            conn.query_drop("COMMIT").await?;
            Ok(promoted)
        }
        other => {
            let _ = conn.query_drop("ROLLBACK").await;
            other
        }
    }
}

/// Inside the caller's transaction, before any row is written: the ledger row for `object`,
/// then its key's place in the order of uploads. Some answer (nothing is to be loaded) when
/// the ledger row was already there — loaded before, or by a concurrent delivery this insert
/// waited for — or when an upload of the key that landed later is already loaded.
pub(crate) async fn claim(
    conn: &mut Conn,
    object: &BatchId,
    source: &LedgerSource,
    parts: u32,
    rows: u64,
) -> Result<Option<Promoted>, MysqlError> {
    conn.exec_drop(
        "INSERT IGNORE INTO landfall_load_ledger (load_id, dataset, object_key, object_version, parts, rows_loaded) VALUES (?, ?, ?, ?, ?, ?)",
        (object.as_str(), &source.dataset, &source.key, &source.version, parts, rows),
    )
    .await?;
    if conn.affected_rows() != 1 {
        return Ok(Some(Promoted::ALREADY_LOADED));
    }
    let Some(landed) = &source.landed else {
        return Ok(None);
    };
    // The key's row, locked to this transaction's end (ON DUPLICATE KEY UPDATE takes an
    // exclusive lock where INSERT IGNORE would take a shared one, which two loads of the key
    // could both hold and then deadlock upgrading): loads of one key run one at a time.
    let key_id = hex::encode(Sha256::digest(source.key.as_bytes()));
    conn.exec_drop(
        "INSERT INTO landfall_key_order (key_id, landed, object_version) VALUES (?, ?, ?) \
         ON DUPLICATE KEY UPDATE key_id = key_id",
        (&key_id, landed, &source.version),
    )
    .await?;
    let latest: Option<(String, String)> = conn
        .exec_first(
            "SELECT landed, object_version FROM landfall_key_order WHERE key_id = ? FOR UPDATE",
            (&key_id,),
        )
        .await?;
    match latest {
        Some((latest, version)) if latest.as_str() > landed.as_str() => Ok(Some(Promoted {
            rows: 0,
            already_loaded: false,
            superseded_by: Some(version),
        })),
        _ => {
            conn.exec_drop(
                "UPDATE landfall_key_order SET landed = ?, object_version = ? WHERE key_id = ?",
                (landed, &source.version, &key_id),
            )
            .await?;
            Ok(None)
        }
    }
}

/// Removes the stage rows of every attempt at `object`, and of every attempt in this stage table
/// older than [`ABANDONED_AFTER_SECONDS`]. Best effort: whatever is left is found next time.
pub(crate) async fn sweep(conn: &mut Conn, stage_table: &Ident, object: &BatchId) {
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
pub(crate) async fn remove_attempts(
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

pub(crate) async fn discard_batch(
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
pub(crate) async fn promote_in(
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
    if let Some(nothing) = claim(conn, object, source, parts, expected_rows).await? {
        return Ok(nothing);
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
    Ok(Promoted::loaded(staged))
}
