//! The warehouse step: one `BatchExecuteStatement`, which Redshift runs serially as one
//! transaction — lock, COPY into staging, the load procedure, empty staging, the cleanup.
//!
//! Staging is shared by every load, so the batch first takes `LOCK` on the tables it
//! writes: a second load (another file, or the same file delivered twice) waits for the
//! first to commit and then finds staging empty again. The lock is also what Redshift
//! advises against its serializable-isolation aborts between concurrent writers. Emptying
//! staging uses `DELETE`: `TRUNCATE` would commit the transaction half-way.
//!
//! Duplicates are kept out by the ledger (one row per object version, written by the
//! procedure in the same transaction, checked before anything is inserted) and by
//! `orders_dedupe` (one row per order, the latest `order_ts` winning); Redshift enforces no
//! key. A statement still running when an invocation ends is found again on redelivery by
//! its statement name (ListStatements), not started twice.

use crate::check::Format;
use crate::COLUMNS;
use landfall_failure::{Classify, Disposition};
use landfall_redshift_data::{
    client_token, literal, DataApiError, Status, UnsafeLiteral, Warehouse,
};
use std::time::Duration;

/// What to do with orders whose customer is not in `customers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownCustomers {
    /// Fail the file: nothing of it is loaded.
    Reject,
    /// Load them with NULL customer columns; the audit item counts them.
    Load,
}

impl UnknownCustomers {
    pub fn parse(text: &str) -> Option<UnknownCustomers> {
        match text {
            "reject" => Some(UnknownCustomers::Reject),
            "load" => Some(UnknownCustomers::Load),
            _ => None,
        }
    }

    fn as_sql(self) -> &'static str {
        match self {
            UnknownCustomers::Reject => "reject",
            UnknownCustomers::Load => "load",
        }
    }
}

/// The file's load as the ledger recorded it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ledger {
    pub rows_staged: u64,
    pub rows_loaded: u64,
    pub unknown_customers: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum WarehouseError {
    #[error(transparent)]
    DataApi(#[from] DataApiError),
    #[error(transparent)]
    Unsafe(#[from] UnsafeLiteral),
    #[error("the load procedure refused the file: {0}")]
    Refused(String),
    #[error("the ledger row of {key} ({version}) is unreadable: {reason}")]
    Ledger {
        key: String,
        version: String,
        reason: String,
    },
}

/// The procedure's own refusal (`RAISE EXCEPTION` in `orders_load`): the file, not the
/// moment, is wrong, so retrying cannot help.
const REFUSAL: &str = "unknown customers:";

impl WarehouseError {
    fn from_data_api(err: DataApiError) -> WarehouseError {
        match &err {
            DataApiError::Failed { error, .. } if error.contains(REFUSAL) => {
                WarehouseError::Refused(error.clone())
            }
            _ => WarehouseError::DataApi(err),
        }
    }

    /// When the statement is still running: its id, to say so and come back later.
    pub fn still_running(&self) -> Option<&str> {
        match self {
            WarehouseError::DataApi(DataApiError::StillRunning { id, .. }) => Some(id),
            _ => None,
        }
    }
}

impl Classify for WarehouseError {
    fn disposition(&self) -> Disposition {
        match self {
            WarehouseError::DataApi(err) => err.disposition(),
            WarehouseError::Unsafe(_) | WarehouseError::Refused(_) => Disposition::Permanent,
            WarehouseError::Ledger { .. } => Disposition::Retryable,
        }
    }
}

/// One object version to load.
#[derive(Debug, Clone)]
pub struct Load<'a> {
    pub bucket: &'a str,
    pub key: &'a str,
    pub version: &'a str,
    pub format: Format,
    /// `s3://…` of the manifest naming exactly this object (COPY FROM a plain path would
    /// load every object whose key starts with it).
    pub manifest: &'a str,
    /// `YYYY-MM-DD HH:MM:SS.ffffff`, UTC.
    pub loaded_at: &'a str,
}

#[derive(Debug, Clone)]
pub struct OrdersWarehouse {
    pub warehouse: Warehouse,
    /// The role Redshift assumes to read the bucket (COPY's IAM_ROLE).
    pub copy_role_arn: String,
    pub unknown_customers: UnknownCustomers,
}

impl OrdersWarehouse {
    /// The ledger's row for this object version, if it was loaded.
    pub async fn ledger(
        &self,
        key: &str,
        version: &str,
        budget: Duration,
    ) -> Result<Option<Ledger>, WarehouseError> {
        let rows = self
            .warehouse
            .query(
                "SELECT rows_staged, rows_loaded, unknown_customers FROM orders_ledger \
                 WHERE source_key = :key AND source_version = :version",
                &[("key", key), ("version", version)],
                budget,
            )
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let number = |i: usize| -> Result<u64, WarehouseError> {
            row.get(i)
                .and_then(|v| v.as_deref())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| WarehouseError::Ledger {
                    key: key.to_owned(),
                    version: version.to_owned(),
                    reason: format!("column {i} is {:?}", row.get(i)),
                })
        };
        Ok(Some(Ledger {
            rows_staged: number(0)?,
            rows_loaded: number(1)?,
            unknown_customers: number(2)?,
        }))
    }

    /// The batch's statements, values written as literals (the batch takes no
    /// parameters), each from the allowlist [`literal`] keeps.
    pub fn statements(&self, load: &Load<'_>) -> Result<Vec<String>, WarehouseError> {
        let (key, version) = (literal(load.key)?, literal(load.version)?);
        let format = match load.format {
            Format::Csv => "FORMAT AS CSV IGNOREHEADER 1 TIMEFORMAT 'auto'",
            Format::Parquet => "FORMAT AS PARQUET",
        };
        Ok(vec![
            "LOCK orders_staging, orders_ledger, orders_enriched".into(),
            // Staging starts empty whatever a person may have left in it.
            "DELETE FROM orders_staging".into(),
            format!(
                "COPY orders_staging ({}) FROM {} IAM_ROLE {} MANIFEST {format}",
                COLUMNS.join(", "),
                literal(load.manifest)?,
                literal(&self.copy_role_arn)?,
            ),
            format!(
                "CALL orders_load({key}, {version}, {}, '{}')",
                literal(load.loaded_at)?,
                self.unknown_customers.as_sql()
            ),
            "DELETE FROM orders_staging".into(),
            format!("CALL orders_dedupe({key}, {version})"),
        ])
    }

    /// The statement name that finds this object version's batch again.
    pub fn statement_name(key: &str, version: &str) -> String {
        format!("landfall-orders-{}", &client_token(&[key, version])[..32])
    }

    /// Submits the load — or adopts the one already running or finished for this object
    /// version — and follows it within `budget`. The statement id.
    pub async fn run(&self, load: &Load<'_>, budget: Duration) -> Result<String, WarehouseError> {
        let name = OrdersWarehouse::statement_name(load.key, load.version);
        let earlier = self
            .warehouse
            .list(&name)
            .await
            .map_err(DataApiError::from)?;
        let id = match earlier
            .iter()
            .find(|s| s.status != Status::Failed && s.status != Status::Aborted)
        {
            Some(active) => {
                tracing::info!(statement = active.id, status = ?active.status, "adopting the load already submitted");
                active.id.clone()
            }
            None => {
                // A failed batch left nothing; the next try is new work with its own token.
                let attempt = earlier.len().to_string();
                let token = client_token(&[load.key, load.version, &attempt]);
                self.warehouse
                    .submit_batch(&self.statements(load)?, &token, &name)
                    .await
                    .map_err(DataApiError::from)?
            }
        };
        self.warehouse
            .follow(&id, budget)
            .await
            .map_err(WarehouseError::from_data_api)?;
        Ok(id)
    }
}
