//! Schema migrations applied through the Data API: each pending script as one batch — its
//! statements and its row in the ledger table — so a migration is applied wholly or not at
//! all. An applied migration whose text changed is refused: a person must decide.
//!
//! Each set of migrations has a ledger table of its own, so several schemas can share one
//! database without their version numbers meeting.

use crate::{client_token, literal, DataApiError, UnsafeLiteral, Warehouse};
use landfall_failure::{Classify, Disposition};
use std::time::Duration;

/// One schema's migrations and the table that records which were applied.
#[derive(Debug, Clone, Copy)]
pub struct Migrations {
    /// The ledger table (created when missing): a plain identifier, optionally
    /// schema-qualified, written by the caller, never taken from input.
    pub ledger: &'static str,
    /// `(version, name, script)`, in order; a script is statements separated by `;`.
    pub scripts: &'static [(u32, &'static str, &'static str)],
}

/// Why the migrations were not applied.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A statement failed, or the Data API did.
    #[error(transparent)]
    DataApi(#[from] DataApiError),
    /// A value that cannot be written as SQL text.
    #[error(transparent)]
    Unsafe(#[from] UnsafeLiteral),
    /// A script that cannot be split into statements.
    #[error("migration {version}: {source}")]
    Script {
        /// The migration's version.
        version: u32,
        /// Why it cannot be split.
        #[source]
        source: landfall_sql_script::ScriptError,
    },
    /// An applied migration's text changed since.
    #[error("migration {version} ({name}) was applied with other text (checksum {applied}); the embedded one is {embedded}")]
    Changed {
        /// The migration's version.
        version: u32,
        /// Its name.
        name: &'static str,
        /// The checksum its ledger row holds.
        applied: String,
        /// The checksum of the text embedded now.
        embedded: String,
    },
}

impl Classify for MigrateError {
    fn disposition(&self) -> Disposition {
        match self {
            MigrateError::DataApi(err) => err.disposition(),
            MigrateError::Unsafe(_)
            | MigrateError::Script { .. }
            | MigrateError::Changed { .. } => Disposition::Permanent,
        }
    }
}

impl Migrations {
    async fn run(
        &self,
        warehouse: &Warehouse,
        sql: &str,
        budget: Duration,
    ) -> Result<(), MigrateError> {
        let id = warehouse
            .submit(sql, &[])
            .await
            .map_err(DataApiError::from)?;
        warehouse.follow(&id, budget).await?;
        Ok(())
    }

    /// Applies the pending migrations; the versions applied now.
    pub async fn apply(
        &self,
        warehouse: &Warehouse,
        applied_at: &str,
        budget: Duration,
    ) -> Result<Vec<u32>, MigrateError> {
        let ledger = self.ledger;
        let select = format!("SELECT version, checksum FROM {ledger}");
        // Once the ledger exists (every run after the first), one statement when nothing is
        // pending: the schema and the ledger are created only when reading it failed.
        let applied = match warehouse.query(&select, &[], budget).await {
            Ok(rows) => rows,
            Err(DataApiError::Failed { .. }) => {
                if let Some((schema, _)) = ledger.split_once('.') {
                    self.run(
                        warehouse,
                        &format!("CREATE SCHEMA IF NOT EXISTS {schema}"),
                        budget,
                    )
                    .await?;
                }
                let create = format!("CREATE TABLE IF NOT EXISTS {ledger} (version INTEGER NOT NULL, name VARCHAR(128) NOT NULL, checksum CHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL)");
                self.run(warehouse, &create, budget).await?;
                warehouse.query(&select, &[], budget).await?
            }
            Err(other) => return Err(other.into()),
        };
        let mut done = Vec::new();
        for &(version, name, script) in self.scripts {
            let checksum = client_token(&[script]);
            let earlier = applied.iter().find(|row| {
                row.first().and_then(|v| v.as_deref()) == Some(version.to_string().as_str())
            });
            if let Some(row) = earlier {
                let recorded = row.get(1).and_then(|v| v.clone()).unwrap_or_default();
                if recorded.trim() != checksum {
                    return Err(MigrateError::Changed {
                        version,
                        name,
                        applied: recorded,
                        embedded: checksum,
                    });
                }
                continue;
            }
            let mut statements: Vec<String> = landfall_sql_script::split(script)
                .map_err(|source| MigrateError::Script { version, source })?
                .into_iter()
                .map(|s| s.sql)
                .collect();
            statements.push(format!(
                "INSERT INTO {ledger} (version, name, checksum, applied_at) VALUES ({version}, {}, '{checksum}', {})",
                literal(name)?,
                literal(applied_at)?
            ));
            // Two migrators at once run one after the other; the second applies the version
            // again, which changes nothing (IF NOT EXISTS, OR REPLACE) but a second ledger row.
            statements.insert(0, format!("LOCK {ledger}"));
            let token = client_token(&[ledger, &version.to_string(), &checksum, applied_at]);
            let id = warehouse
                .submit_batch(
                    &statements,
                    &token,
                    &format!("landfall-migration-{version}"),
                )
                .await
                .map_err(DataApiError::from)?;
            warehouse.follow(&id, budget).await?;
            done.push(version);
        }
        Ok(done)
    }
}
