//! db-init: `.sql` scripts applied in name order, each once per content. A script that
//! failed midway runs again from its start next time, so scripts are written to be
//! re-runnable (`IF NOT EXISTS`, `DROP PROCEDURE IF EXISTS` before `CREATE PROCEDURE`); MySQL
//! cannot roll DDL back.

use crate::MysqlError;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    Ran { statements: usize },
    AlreadyApplied,
}

pub async fn ensure_ledger(conn: &mut Conn) -> Result<(), MysqlError> {
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS landfall_applied_scripts (
           name VARCHAR(255) NOT NULL PRIMARY KEY,
           sha256 CHAR(64) NOT NULL,
           statements INT NOT NULL,
           applied_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
         ) ENGINE=InnoDB",
    )
    .await?;
    Ok(())
}

/// Applies `text` unless a script of that name with the same checksum already ran.
pub async fn apply(conn: &mut Conn, name: &str, text: &str) -> Result<Applied, MysqlError> {
    ensure_ledger(conn).await?;
    let checksum = hex::encode(Sha256::digest(text.as_bytes()));
    let recorded: Option<String> = conn
        .exec_first(
            "SELECT sha256 FROM landfall_applied_scripts WHERE name = ?",
            (name,),
        )
        .await?;
    match recorded {
        Some(recorded) if recorded == checksum => return Ok(Applied::AlreadyApplied),
        Some(recorded) => {
            return Err(MysqlError::ScriptChanged {
                name: name.to_owned(),
                recorded,
                now: checksum,
            })
        }
        None => {}
    }
    let statements = landfall_sql_script::split(text)?;
    for statement in &statements {
        conn.query_drop(statement.sql.as_str())
            .await
            .map_err(|source| MysqlError::Script {
                name: name.to_owned(),
                line: statement.line,
                source,
            })?;
    }
    conn.exec_drop(
        "INSERT INTO landfall_applied_scripts (name, sha256, statements) VALUES (?, ?, ?)",
        (name, &checksum, statements.len()),
    )
    .await?;
    Ok(Applied::Ran {
        statements: statements.len(),
    })
}
