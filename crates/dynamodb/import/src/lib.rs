//! One landing file → one DynamoDB table, replaced without a gap for readers:
//!
//! 1. **convert** the file into gzipped DynamoDB JSON parts under its import prefix
//!    (`<prefix>/<dataset>/<table>/data/`), refusing it whole on the first bad line or the
//!    first duplicate key; an [`ImportRecord`] beside the data says it is converted;
//! 2. **start** one ImportTable for it (ClientToken from the object version; the record's
//!    conditional writes let one of two concurrent deliveries start it), into a new table
//!    `<base>-<version>`;
//! 3. **follow** the import; when it outlasts this invocation, fail retryable with the time it
//!    still needs, so the redelivery follows the same import;
//! 4. **verify** it imported exactly the file's rows without errors, else delete the new table;
//! 5. **switch** the dataset's pointer (an SSM parameter readers resolve) to the new table,
//!    mark the old one retired, and delete retired tables past their grace period.
//!
//! `replace = "delete_then_import"` keeps the original design: the base table is deleted,
//! then imported anew under its own name.

pub mod convert;
pub mod pipeline;
pub mod record;
pub mod table;

use convert::{convert, ConvertError, Converted, Output};
use landfall_aws::s3_stream::MultipartWriter;
use landfall_aws::{AwsError, SdkResultExt};
use landfall_dynamodb_datasets::{Dataset, Replace};
use landfall_failure::{Classify, Deadline, Disposition};
use landfall_landing::{LandingError, ObjectVersion, Version};
use record::{Claim, ImportRecord, RecordError, Records, Stored};
use std::time::Duration;
use table::Status;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Where converted files are imported from (`imports/` of the landing bucket: no
    /// notification watches it, and a lifecycle rule expires it).
    pub import_bucket: String,
    pub import_prefix: String,
    /// Put before every table name (the stack's name and a `-`), so that IAM can grant this
    /// function its own tables only.
    pub table_prefix: String,
    /// The pointer of dataset `d` is the SSM parameter `<pointer_prefix>/d`.
    pub pointer_prefix: String,
    /// A file larger than this is converted as parts of about this size, concurrently.
    pub split_bytes: u64,
    pub concurrency: usize,
    /// How often the import's progress is read.
    pub poll_interval: Duration,
    /// A slow import's rate over the compressed data, to size the wait when the import
    /// outlasts an invocation.
    pub import_bytes_per_second: u64,
    /// A claim (to start a file's import, or to switch its pointer) that has done nothing
    /// for this long belongs to a delivery that died, and another may take over. Taking
    /// over a live one early is safe (the import's ClientToken and the pointer's
    /// conditional write make a second start or switch a no-op), only wasteful.
    pub claim_stale_after: Duration,
}

/// How long a claim holds in production: far longer than a start or a switch takes.
pub const CLAIM_STALE_AFTER: Duration = Duration::from_secs(120);

/// What a file import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub table: String,
    pub rows: u64,
    pub parts: u32,
    pub import_arn: String,
    /// The SSM parameter that names the current table.
    pub pointer: String,
    pub outcome: Outcome,
    /// Tables deleted because their grace period had passed.
    pub deleted: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The pointer now names the new table (and named `previous` before).
    Switched { previous: Option<String> },
    /// An earlier delivery already switched it: nothing changed.
    AlreadyCurrent,
    /// The current table comes from a file that landed later than this one: the pointer
    /// stays, and the new table is retired at once.
    Superseded { current: String },
}

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Convert(#[from] ConvertError),
    #[error(transparent)]
    Landing(#[from] LandingError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("{what}")]
    Aws {
        what: String,
        #[source]
        source: AwsError,
    },
    #[error("import {arn} into {table} ended {status} ({code}: {message}); the new table was deleted and the pointer is unchanged")]
    Failed {
        table: String,
        arn: String,
        status: &'static str,
        code: String,
        message: String,
    },
    #[error("import {arn} into {table} completed with {imported} items imported and {errors} errors, but the file has {rows} rows; the new table was deleted and the pointer is unchanged")]
    Incomplete {
        table: String,
        arn: String,
        imported: i64,
        errors: i64,
        rows: u64,
    },
    /// Not an error of the data: the import runs on, and the redelivery follows it.
    #[error("import {arn} into {table} is still running ({processed_bytes} bytes processed); the message comes back in {} s to follow it", .retry_after.as_secs())]
    Running {
        table: String,
        arn: String,
        processed_bytes: i64,
        retry_after: Duration,
    },
    #[error("another delivery of this file is starting its import; the message comes back in {} s to follow it", .retry_after.as_secs())]
    Claimed { retry_after: Duration },
}

impl Classify for ImportError {
    fn disposition(&self) -> Disposition {
        match self {
            ImportError::Convert(e) => e.disposition(),
            ImportError::Landing(e) => e.disposition(),
            ImportError::Record(RecordError::Aws { source, .. }) => source.disposition(),
            ImportError::Record(RecordError::Read { .. }) => Disposition::Retryable,
            ImportError::Record(RecordError::Malformed { .. }) => Disposition::Permanent,
            ImportError::Aws { source, .. } => source.disposition(),
            ImportError::Failed { .. } | ImportError::Incomplete { .. } => Disposition::Permanent,
            ImportError::Running { .. } | ImportError::Claimed { .. } => Disposition::Retryable,
        }
    }
}

impl ImportError {
    /// When trying again can help, if this error knows.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ImportError::Running { retry_after, .. } | ImportError::Claimed { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }
}

fn aws(what: impl Into<String>) -> impl FnOnce(AwsError) -> ImportError {
    let what = what.into();
    move |source| ImportError::Aws { what, source }
}

/// Time kept back from the invocation's end for reporting, on top of the runtime's reserve.
const FOLLOW_MARGIN: Duration = Duration::from_secs(5);
/// SQS visibility timeouts end at 12 hours.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(12 * 3600);

/// Another delivery holds the claim: come back when it should have written what it claimed.
fn claimed() -> ImportError {
    ImportError::Claimed {
        retry_after: Duration::from_secs(30),
    }
}

/// The record as stored now, after a write lost a race.
async fn reload(records: &Records<'_>) -> Result<Stored, ImportError> {
    records.load().await?.ok_or_else(claimed)
}

/// One dataset file to import.
pub struct Job<'a> {
    pub dataset_name: &'a str,
    pub dataset: &'a Dataset,
    pub source: &'a ObjectVersion,
    /// The notification's event time (RFC 3339), to order files of one dataset.
    pub landed: &'a str,
    /// This invocation, to tell its claim from another delivery's.
    pub attempt: &'a str,
}

pub struct Importer {
    pub s3: aws_sdk_s3::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub settings: Settings,
}

/// `<base>-<version>`: the table one file version imports into (a DynamoDB table name is
/// `[A-Za-z0-9_.-]{3,255}`; other characters of the version become `_`).
pub fn version_table(base: &str, version: &Version) -> String {
    let version: String = version
        .bare()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut name = format!("{base}-{version}");
    name.truncate(255);
    name
}

/// The ClientToken of one file version's import: the same for every delivery of it.
fn client_token(source: &ObjectVersion, table: &str) -> String {
    let id = format!(
        "s3://{}/{}#{}>{table}",
        source.bucket, source.key, source.version
    );
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(id.as_bytes()))
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Importer {
    /// The SSM parameter naming dataset `name`'s current table.
    pub fn pointer_name(&self, name: &str) -> String {
        format!(
            "{}/{name}",
            self.settings.pointer_prefix.trim_end_matches('/')
        )
    }

    /// The table the pointer names now, if any.
    pub async fn current_table(&self, name: &str) -> Result<Option<String>, ImportError> {
        let parameter = self.pointer_name(name);
        match self.ssm.get_parameter().name(&parameter).send().await {
            Ok(out) => Ok(out.parameter().and_then(|p| p.value()).map(str::to_owned)),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                Ok(None)
            }
            Err(err) => Err(aws(format!("reading the pointer {parameter}"))(
                AwsError::new("SSM", "GetParameter", err),
            )),
        }
    }

    /// The dataset's table name before any version: `<table_prefix><table>`.
    pub fn base_table(&self, dataset: &Dataset) -> String {
        format!("{}{}", self.settings.table_prefix, dataset.table)
    }

    fn record_key(&self, name: &str, id: &str) -> String {
        format!(
            "{}/{name}/{id}/import.json",
            self.settings.import_prefix.trim_end_matches('/')
        )
    }

    fn data_prefix(&self, name: &str, id: &str) -> String {
        format!(
            "{}/{name}/{id}/data/",
            self.settings.import_prefix.trim_end_matches('/')
        )
    }

    pub async fn run(&self, job: &Job<'_>, deadline: &Deadline) -> Result<Imported, ImportError> {
        let name = job.dataset_name;
        let id = version_table(&self.base_table(job.dataset), &job.source.version);
        let table = match job.dataset.replace {
            Replace::Versioned => id.clone(),
            Replace::DeleteThenImport => self.base_table(job.dataset),
        };
        let record_key = self.record_key(name, &id);
        let data_prefix = self.data_prefix(name, &id);
        let records = Records {
            s3: &self.s3,
            bucket: &self.settings.import_bucket,
            key: &record_key,
        };
        let mut stored = match records.load().await? {
            Some(stored) => stored,
            None => self.convert(job, &table, &data_prefix, &records).await?,
        };
        let arn = self
            .claim_and_start(job, &records, &mut stored, &data_prefix, deadline)
            .await?;
        self.follow(&table, &arn, &stored.record, deadline).await?;
        let outcome = self.switch(job, &records, &mut stored, deadline).await?;
        let deleted = self.retire(name, job.dataset).await?;
        Ok(Imported {
            table,
            rows: stored.record.rows,
            parts: stored.record.parts,
            import_arn: arn,
            pointer: self.pointer_name(name),
            outcome,
            deleted,
        })
    }

    /// Step 1: the file → parts under the import prefix, and the record saying so.
    async fn convert(
        &self,
        job: &Job<'_>,
        table: &str,
        data_prefix: &str,
        records: &Records<'_>,
    ) -> Result<Stored, ImportError> {
        let body = landfall_landing::open(&self.s3, job.source).await?;
        let output = S3Parts {
            s3: self.s3.clone(),
            bucket: self.settings.import_bucket.clone(),
            prefix: data_prefix.to_owned(),
        };
        let converted = convert(
            body,
            job.dataset,
            &job.source.key,
            &output,
            self.settings.split_bytes,
            self.settings.concurrency,
        )
        .await?;
        let Converted { rows, parts, bytes } = converted;
        tracing::info!(key = job.source.key, rows, parts, bytes, "converted");
        let record = ImportRecord {
            source: job.source.clone(),
            landed: job.landed.to_owned(),
            table: table.to_owned(),
            rows,
            parts,
            bytes,
            claim: None,
            import_arn: None,
            switch: None,
        };
        match records.store(&record, None).await? {
            Ok(stored) => Ok(stored),
            // A concurrent delivery converted the same file into the same parts first.
            Err(_) => reload(records).await,
        }
    }

    /// Step 2: the import ARN, starting the import when no delivery has.
    async fn claim_and_start(
        &self,
        job: &Job<'_>,
        records: &Records<'_>,
        stored: &mut Stored,
        data_prefix: &str,
        deadline: &Deadline,
    ) -> Result<String, ImportError> {
        loop {
            if let Some(arn) = &stored.record.import_arn {
                return Ok(arn.clone());
            }
            let claimed_by_other = stored
                .record
                .claim
                .as_ref()
                .is_some_and(|claim| claim.by != job.attempt && !self.stale(claim));
            if claimed_by_other {
                if deadline.usable() < self.settings.poll_interval + FOLLOW_MARGIN {
                    return Err(claimed());
                }
                tokio::time::sleep(self.settings.poll_interval).await;
                *stored = reload(records).await?;
                continue;
            }
            let mut claiming = stored.record.clone();
            claiming.claim = Some(Claim {
                by: job.attempt.to_owned(),
                at: now(),
            });
            match records.store(&claiming, Some(&stored.etag)).await? {
                Err(_) => {
                    *stored = reload(records).await?;
                    continue;
                }
                Ok(ours) => *stored = ours,
            }
            let record = &stored.record;
            if job.dataset.replace == Replace::DeleteThenImport {
                table::delete_table(&self.dynamodb, &record.table, deadline.usable())
                    .await
                    .map_err(aws(format!("deleting {} before the import", record.table)))?;
            }
            let arn = table::start_import(
                &self.dynamodb,
                job.dataset,
                &record.table,
                &self.settings.import_bucket,
                data_prefix,
                &client_token(job.source, &record.table),
            )
            .await;
            let arn = match arn {
                Ok(arn) => arn,
                Err(err) => {
                    // Let the next delivery start it at once instead of waiting for the
                    // claim to go stale (best effort: it goes stale either way).
                    let mut released = record.clone();
                    released.claim = None;
                    let _ = records.store(&released, Some(&stored.etag)).await;
                    return Err(aws(format!(
                        "importing s3://{}/{} into {}",
                        job.source.bucket, job.source.key, record.table
                    ))(err));
                }
            };
            tracing::info!(table = record.table, arn, "import started");
            let mut started = record.clone();
            started.import_arn = Some(arn.clone());
            // Only this delivery holds the claim: nobody else writes the record now.
            if let Ok(ours) = records.store(&started, Some(&stored.etag)).await? {
                *stored = ours;
            }
            return Ok(arn);
        }
    }

    /// Steps 3 and 4: waits for the import to end and checks what it imported.
    async fn follow(
        &self,
        table: &str,
        arn: &str,
        record: &ImportRecord,
        deadline: &Deadline,
    ) -> Result<(), ImportError> {
        let mut polls = 0u32;
        loop {
            let progress = table::describe_import(&self.dynamodb, arn)
                .await
                .map_err(aws(format!("following import {arn}")))?;
            match progress.status {
                Status::Completed => {
                    if progress.imported == record.rows as i64 && progress.errors == 0 {
                        tracing::info!(table, rows = record.rows, "import completed");
                        return Ok(());
                    }
                    self.discard(table, deadline).await;
                    return Err(ImportError::Incomplete {
                        table: table.to_owned(),
                        arn: arn.to_owned(),
                        imported: progress.imported,
                        errors: progress.errors,
                        rows: record.rows,
                    });
                }
                Status::Ended(status) => {
                    self.discard(table, deadline).await;
                    return Err(ImportError::Failed {
                        table: table.to_owned(),
                        arn: arn.to_owned(),
                        status,
                        code: progress
                            .failure_code
                            .unwrap_or_else(|| "no failure code".into()),
                        message: progress.failure_message.unwrap_or_default(),
                    });
                }
                Status::Running => {
                    // A second, then doubling up to the configured interval: a small import
                    // is seen done soon, a big one is not asked about needlessly.
                    let wait =
                        Duration::from_secs(1 << polls.min(16)).min(self.settings.poll_interval);
                    polls += 1;
                    if deadline.usable() < wait + FOLLOW_MARGIN {
                        return Err(ImportError::Running {
                            table: table.to_owned(),
                            arn: arn.to_owned(),
                            processed_bytes: progress.processed_bytes,
                            retry_after: self.time_still_needed(record, progress.started),
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// How long the import should still run, at the configured slow rate; at least a minute.
    /// Whether `claim` has outlived `claim_stale_after`: its delivery died.
    fn stale(&self, claim: &Claim) -> bool {
        now() - claim.at >= self.settings.claim_stale_after.as_secs() as i64
    }

    fn time_still_needed(&self, record: &ImportRecord, started: Option<i64>) -> Duration {
        let total = record.bytes / self.settings.import_bytes_per_second.max(1);
        let elapsed = started.map_or(0, |s| (now() - s).max(0) as u64);
        Duration::from_secs(total.saturating_sub(elapsed).max(60)).min(MAX_RETRY_AFTER)
    }

    /// A failed import's table holds a part of the file at most: it goes. The pointer never
    /// named it (versioned), or the table was already gone (delete-then-import).
    async fn discard(&self, table: &str, deadline: &Deadline) {
        if let Err(err) = table::delete_table(&self.dynamodb, table, deadline.usable()).await {
            // Marked retired long ago, the next retirement run deletes it.
            let marked = table::mark_retired(&self.dynamodb, table, 0).await.is_ok();
            tracing::error!(table, error = %err, marked, "could not delete the failed import's table");
        }
    }

    /// Step 5: the pointer names the new table, unless a later file's table is current. Of
    /// two deliveries here at once, the one whose switch claim lands switches; the other
    /// waits to see it done.
    async fn switch(
        &self,
        job: &Job<'_>,
        records: &Records<'_>,
        stored: &mut Stored,
        deadline: &Deadline,
    ) -> Result<Outcome, ImportError> {
        let name = job.dataset_name;
        loop {
            let table = stored.record.table.clone();
            let current = self.current_table(name).await?;
            if current.as_deref() == Some(table.as_str()) {
                return Ok(Outcome::AlreadyCurrent);
            }
            if let Some(current) = &current {
                if self
                    .landed_after(name, job.dataset, current, &stored.record.landed)
                    .await?
                {
                    table::mark_retired(&self.dynamodb, &table, now())
                        .await
                        .map_err(aws(format!("retiring {table}")))?;
                    return Ok(Outcome::Superseded {
                        current: current.clone(),
                    });
                }
            }
            let switching_elsewhere = stored
                .record
                .switch
                .as_ref()
                .is_some_and(|claim| claim.by != job.attempt && !self.stale(claim));
            if switching_elsewhere {
                if deadline.usable() < self.settings.poll_interval + FOLLOW_MARGIN {
                    return Err(claimed());
                }
                tokio::time::sleep(self.settings.poll_interval).await;
                continue;
            }
            let mut claiming = stored.record.clone();
            claiming.switch = Some(Claim {
                by: job.attempt.to_owned(),
                at: now(),
            });
            match records.store(&claiming, Some(&stored.etag)).await? {
                Ok(ours) => *stored = ours,
                Err(_) => {
                    *stored = reload(records).await?;
                    continue;
                }
            }
            self.put_pointer(name, &stored.record).await?;
            if let Some(previous) = current.as_ref() {
                table::mark_retired(&self.dynamodb, previous, now())
                    .await
                    .map_err(aws(format!("retiring {previous}")))?;
            }
            return Ok(Outcome::Switched { previous: current });
        }
    }

    async fn put_pointer(&self, name: &str, record: &ImportRecord) -> Result<(), ImportError> {
        let parameter = self.pointer_name(name);
        self.ssm
            .put_parameter()
            .name(&parameter)
            .value(&record.table)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .description(format!(
                "The current table of dataset {name} (landfall P2), from s3://{}/{}",
                record.source.bucket, record.source.key
            ))
            .send()
            .await
            .or_aws("SSM", "PutParameter")
            .map_err(aws(format!("switching the pointer {parameter}")))?;
        tracing::info!(parameter, table = record.table, "pointer switched");
        Ok(())
    }

    /// Whether `current` (a table of this dataset) was imported from a file that landed
    /// after `landed`. A table without a record (made by hand) is not.
    async fn landed_after(
        &self,
        name: &str,
        dataset: &Dataset,
        current: &str,
        landed: &str,
    ) -> Result<bool, ImportError> {
        if !current.starts_with(&format!("{}-", self.base_table(dataset))) {
            return Ok(false);
        }
        let key = self.record_key(name, current);
        let records = Records {
            s3: &self.s3,
            bucket: &self.settings.import_bucket,
            key: &key,
        };
        Ok(records
            .load()
            .await?
            .is_some_and(|stored| stored.record.landed.as_str() > landed))
    }

    /// Deletes this dataset's retired tables whose grace period has passed; never the one the
    /// pointer names (a rolled-back pointer keeps its table). Gives the tables deleted.
    pub async fn retire(&self, name: &str, dataset: &Dataset) -> Result<Vec<String>, ImportError> {
        let current = self.current_table(name).await?;
        let prefix = format!("{}-", self.base_table(dataset));
        let tables = table::tables_named(&self.dynamodb, &prefix)
            .await
            .map_err(aws(format!("listing the tables of {name}")))?;
        let mut deleted = Vec::new();
        for table in tables {
            if current.as_deref() == Some(table.as_str()) {
                continue;
            }
            let retired = table::retired_at(&self.dynamodb, &table)
                .await
                .map_err(aws(format!("reading the tags of {table}")))?;
            let due = retired.is_some_and(|at| now() >= at + dataset.retire_after_seconds as i64);
            if due {
                table::delete_table(&self.dynamodb, &table, Duration::ZERO)
                    .await
                    .map_err(aws(format!("deleting the retired table {table}")))?;
                tracing::info!(table, "retired table deleted");
                deleted.push(table);
            }
        }
        Ok(deleted)
    }
}

/// Parts as S3 objects `<prefix>part-00000.json.gz`, …
#[derive(Clone)]
pub struct S3Parts {
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub prefix: String,
}

impl Output for S3Parts {
    type Part = MultipartWriter;
    type Error = AwsError;

    async fn create(&self, part: u32) -> Result<MultipartWriter, AwsError> {
        let key = format!("{}part-{part:05}.json.gz", self.prefix);
        MultipartWriter::start(&self.s3, &self.bucket, &key, 8 * 1024 * 1024).await
    }
}

#[cfg(test)]
mod tests;
