//! The warehouse's migrations (`sql/redshift/`, embedded), applied through the Data API:
//! each pending one as a single batch — its statements and its row in
//! `landfall_migrations` — so a migration is applied wholly or not at all. An applied
//! migration whose text changed is refused: a person must decide.

use landfall_failure::{Classify, Disposition};
use landfall_redshift_data::{client_token, literal, DataApiError, Warehouse};
use std::time::Duration;

/// `(version, name, script)`, in order.
pub const MIGRATIONS: [(u32, &str, &str); 1] = [(
    1,
    "orders",
    include_str!("../../../../sql/redshift/0001_orders.sql"),
)];

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    DataApi(#[from] DataApiError),
    #[error(transparent)]
    Unsafe(#[from] landfall_redshift_data::UnsafeLiteral),
    #[error("migration {version}: {source}")]
    Script {
        version: u32,
        #[source]
        source: landfall_sql_script::ScriptError,
    },
    #[error("migration {version} ({name}) was applied with other text (checksum {applied}); the embedded one is {embedded}")]
    Changed {
        version: u32,
        name: &'static str,
        applied: String,
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

/// Applies the pending migrations; the versions applied now.
pub async fn migrate(
    warehouse: &Warehouse,
    applied_at: &str,
    budget: Duration,
) -> Result<Vec<u32>, MigrateError> {
    let ledger = "CREATE TABLE IF NOT EXISTS landfall_migrations (version INTEGER NOT NULL, name VARCHAR(128) NOT NULL, checksum CHAR(64) NOT NULL, applied_at TIMESTAMP NOT NULL)";
    let id = warehouse
        .submit(ledger, &[])
        .await
        .map_err(DataApiError::from)?;
    warehouse.follow(&id, budget).await?;
    let applied = warehouse
        .query(
            "SELECT version, checksum FROM landfall_migrations",
            &[],
            budget,
        )
        .await?;
    let mut done = Vec::new();
    for (version, name, script) in MIGRATIONS {
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
            "INSERT INTO landfall_migrations (version, name, checksum, applied_at) VALUES ({version}, '{name}', '{checksum}', {})",
            literal(applied_at)?
        ));
        // Two migrators at once run one after the other; the second applies the version
        // again, which changes nothing (IF NOT EXISTS, OR REPLACE) but a second ledger row.
        statements.insert(0, "LOCK landfall_migrations".into());
        let token = client_token(&["migration", &version.to_string(), &checksum, applied_at]);
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
