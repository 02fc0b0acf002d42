//! P3: transformed orders files into the warehouse, strictly in order and exactly once.
//!
//! For a batch of notifications: every file is written RECEIVED to the audit table
//! ([`audit`]), the Glue crawler is started once ([`crawler`]), then each file in turn is
//! checked ([`check`]) and loaded by one Redshift transaction ([`warehouse`]): COPY into
//! staging, the procedure into `orders_enriched`, staging emptied, the cleanup. Before
//! each step the time left is compared with what the step may take; a step that cannot
//! finish is not started, and one still running when time is up is found again by the
//! redelivery. The audit item then says LOADED (with the ledger's counts), FAILED (with
//! the error) or SUPERSEDED.

pub mod audit;
mod batch;
pub mod check;
pub mod crawler;
pub mod migrate;
pub mod warehouse;

use audit::{AuditTable, Outcome, Received};
use check::{CheckError, Format};
use crawler::Crawler;
use landfall_aws::dynamodb_batch::BatchError;
use landfall_aws::{AwsError, SdkResultExt};
use landfall_failure::{Classify, Deadline, Disposition, FunctionError};
use landfall_landing::{Current, LandingError, ObjectVersion};
use std::time::{Duration, Instant};
use warehouse::{Ledger, Load, OrdersWarehouse, WarehouseError};

/// An orders file's columns, in file (and staging table) order.
pub const COLUMNS: [&str; 6] = [
    "order_id",
    "customer_id",
    "order_ts",
    "status",
    "amount",
    "currency",
];

/// What the steps may take, for the checks against the time left.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where COPY manifests go (`<bucket>`, `<prefix>/…`): outside the notified and crawled
    /// prefix.
    pub manifest_bucket: String,
    pub manifest_prefix: String,
    /// Reading and checking a file.
    pub check_bytes_per_second: u64,
    /// The warehouse transaction: a fixed part (lock, procedure, cleanup) and COPY's rate.
    pub warehouse_seconds: u64,
    pub copy_bytes_per_second: u64,
    /// The audit writes of one batch.
    pub audit_budget: Duration,
}

impl Settings {
    fn check_time(&self, size: u64) -> Duration {
        Duration::from_secs(1 + size / self.check_bytes_per_second.max(1))
    }

    pub fn warehouse_time(&self, size: u64) -> Duration {
        Duration::from_secs(self.warehouse_seconds + size / self.copy_bytes_per_second.max(1))
    }
}

#[derive(Debug, Clone)]
pub struct Loader {
    pub s3: aws_sdk_s3::Client,
    pub audit: AuditTable,
    pub crawler: Crawler,
    pub warehouse: OrdersWarehouse,
    pub settings: Settings,
}

/// A file loaded (now or by an earlier delivery), as the ledger counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    pub ledger: Ledger,
    /// None when an earlier delivery loaded it.
    pub statement_id: Option<String>,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Done {
    Loaded(Loaded),
    /// A newer version of the key is current (or the key is gone): its own notification
    /// loads it, and loading this one now would load the newer bytes under this version.
    Superseded {
        current_version: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{key}: not an orders file (.csv or .parquet)")]
    NotOrders { key: String },
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Landing(#[from] LandingError),
    #[error(transparent)]
    Warehouse(#[from] WarehouseError),
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(transparent)]
    Audit(#[from] BatchError),
    #[error(transparent)]
    Time(#[from] FunctionError),
}

impl Classify for LoadError {
    fn disposition(&self) -> Disposition {
        match self {
            LoadError::NotOrders { .. } => Disposition::Permanent,
            LoadError::Check(err) => err.disposition(),
            LoadError::Landing(err) => err.disposition(),
            LoadError::Warehouse(err) => err.disposition(),
            LoadError::Aws(err) => err.disposition(),
            LoadError::Audit(err) => err.disposition(),
            LoadError::Time(err) => err.disposition,
        }
    }
}

impl LoadError {
    /// The failure an SQS record gets: a load still running comes back when it should
    /// be done, not after the usual backoff.
    pub fn to_function_error(&self, settings: &Settings, size: u64) -> FunctionError {
        let failure = FunctionError::from_error(self);
        match self {
            LoadError::Warehouse(err) if err.still_running().is_some() => {
                failure.retry_after(settings.warehouse_time(size).min(Duration::from_secs(900)))
            }
            _ => failure,
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff` in UTC: how the warehouse and the audit items write time.
pub fn timestamp_now() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:06}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.microsecond()
    )
}

impl Loader {
    /// Steps 1 and 2 for a batch's files: the audit items written RECEIVED (the files
    /// returned are already LOADED: their delivery is a duplicate and nothing more is
    /// done), and the crawler started. A crawler that cannot start is logged and counted
    /// but does not stop the load: it only makes the files visible to Athena, any later
    /// run catches the partitions up, and the warehouse is what the pipeline is for.
    pub async fn receive(&self, files: &[Received]) -> Result<Vec<String>, LoadError> {
        let loaded = self
            .audit
            .receive(files, self.settings.audit_budget)
            .await?;
        if files.len() > loaded.len() {
            match self.crawler.start().await {
                Ok(started) => tracing::info!(crawler = self.crawler.name, ?started, "crawler"),
                Err(err) => {
                    tracing::error!(crawler = self.crawler.name, error = %err, "crawler did not start; loading anyway");
                    metrics::counter!("CrawlerStartFailed").increment(1);
                }
            }
        }
        Ok(loaded)
    }

    /// Step 3 for one file, within the invocation's time.
    pub async fn load(&self, file: &Received, deadline: &Deadline) -> Result<Done, LoadError> {
        let started = Instant::now();
        let format = Format::of(&file.key).ok_or_else(|| LoadError::NotOrders {
            key: file.key.clone(),
        })?;
        // COPY reads the object's current version: load only if that is this one.
        let object = match self.current(file).await? {
            Ok(object) => object,
            Err(current_version) => return Ok(Done::Superseded { current_version }),
        };
        // The warehouse ledger stores the version as text.
        let version = object.version.to_string();
        deadline.ensure("checking the file", self.settings.check_time(file.size))?;
        let rows = check::check(&self.s3, &object, format, file.size).await?;
        let budget = deadline.usable();
        if let Some(ledger) = self.warehouse.ledger(&object.key, &version, budget).await? {
            return Ok(Done::Loaded(Loaded {
                ledger,
                statement_id: None,
                duration: started.elapsed(),
            }));
        }
        let manifest = self.manifest(&object, file.size).await?;
        deadline.ensure(
            "the warehouse load",
            self.settings.warehouse_time(file.size),
        )?;
        let loaded_at = timestamp_now();
        let load = Load {
            bucket: &object.bucket,
            key: &object.key,
            version: &version,
            format,
            manifest: &manifest,
            loaded_at: &loaded_at,
        };
        let id = self.warehouse.run(&load, deadline.usable()).await?;
        let ledger = self
            .warehouse
            .ledger(&object.key, &version, deadline.usable())
            .await?
            .ok_or_else(|| {
                LoadError::Warehouse(WarehouseError::Ledger {
                    key: object.key.clone(),
                    version: version.clone(),
                    reason: format!("statement {id} finished without writing it"),
                })
            })?;
        if ledger.rows_staged != rows {
            tracing::warn!(
                key = object.key,
                checked = rows,
                staged = ledger.rows_staged,
                "COPY staged another number of rows than the check counted"
            );
        }
        Ok(Done::Loaded(Loaded {
            ledger,
            statement_id: Some(id),
            duration: started.elapsed(),
        }))
    }

    /// The object's current version when it is the one the notification names; else the
    /// current version's name.
    async fn current(&self, file: &Received) -> Result<Result<ObjectVersion, String>, LoadError> {
        let named = ObjectVersion {
            bucket: file.bucket.clone(),
            key: file.key.clone(),
            version: file.version.clone(),
        };
        Ok(match landfall_landing::current(&self.s3, &named).await? {
            Current::This { object, .. } => Ok(object),
            Current::Newer { object, .. } => Err(object.version.to_string()),
            Current::Gone => Err("(deleted)".into()),
        })
    }

    /// A COPY manifest naming exactly this object (`mandatory`: COPY fails if it is gone).
    async fn manifest(&self, object: &ObjectVersion, size: u64) -> Result<String, LoadError> {
        let name =
            warehouse::OrdersWarehouse::statement_name(&object.key, &object.version.to_string());
        let key = format!(
            "{}/{name}.manifest",
            self.settings.manifest_prefix.trim_end_matches('/')
        );
        let body = serde_json::json!({
            "entries": [{
                "url": format!("s3://{}/{}", object.bucket, object.key),
                "mandatory": true,
                "meta": { "content_length": size },
            }]
        });
        self.s3
            .put_object()
            .bucket(&self.settings.manifest_bucket)
            .key(&key)
            .content_type("application/json")
            .body(body.to_string().into_bytes().into())
            .send()
            .await
            .or_aws("S3", "PutObject")?;
        Ok(format!("s3://{}/{key}", self.settings.manifest_bucket))
    }

    /// The audit item's last word on the file. A failure to write it fails the record
    /// (retryable): the redelivery finds the file in the ledger and records it then.
    pub async fn record(&self, file: &Received, outcome: &Outcome) -> Result<(), AwsError> {
        let recorded = self
            .audit
            .record(&file.file, &file.delivery, outcome, &timestamp_now())
            .await?;
        if !recorded {
            tracing::info!(
                file = file.file,
                "a later delivery owns the audit item; this one's outcome is not recorded"
            );
        }
        Ok(())
    }
}

impl From<&Done> for Outcome {
    fn from(done: &Done) -> Outcome {
        match done {
            Done::Loaded(loaded) => Outcome::Loaded {
                rows_staged: loaded.ledger.rows_staged,
                rows_loaded: loaded.ledger.rows_loaded,
                unknown_customers: loaded.ledger.unknown_customers,
                statement_id: loaded.statement_id.clone(),
                duration: loaded.duration,
            },
            Done::Superseded { current_version } => Outcome::Superseded {
                current_version: current_version.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_redshift_data::{DataApiError, Status};

    const MIB: u64 = 1024 * 1024;

    fn settings() -> Settings {
        Settings {
            manifest_bucket: "b".into(),
            manifest_prefix: "manifests/orders".into(),
            check_bytes_per_second: 50 * MIB,
            warehouse_seconds: 60,
            copy_bytes_per_second: 20 * MIB,
            audit_budget: Duration::from_secs(30),
        }
    }

    #[test]
    fn a_running_load_comes_back_when_it_should_be_done_and_within_the_visibility_limit() {
        let running = LoadError::Warehouse(WarehouseError::DataApi(DataApiError::StillRunning {
            id: "s-1".into(),
            status: Status::Started,
            waited: Duration::from_secs(800),
        }));
        // 60 s fixed + 100 MiB at 20 MiB/s.
        let small = running.to_function_error(&settings(), 100 * MIB);
        assert_eq!(small.disposition, Disposition::Retryable);
        assert_eq!(small.retry_after, Some(Duration::from_secs(65)));
        // A 100 GiB file would take 85 minutes: the message comes back after 15 at most,
        // and that delivery follows the statement again.
        let huge = running.to_function_error(&settings(), 100 * 1024 * MIB);
        assert_eq!(huge.retry_after, Some(Duration::from_secs(900)));
        // Anything else takes the usual path: a permanent error is not delayed.
        let refused = LoadError::NotOrders {
            key: "x.txt".into(),
        }
        .to_function_error(&settings(), 1);
        assert_eq!(refused.disposition, Disposition::Permanent);
        assert_eq!(refused.retry_after, None);
    }
}
