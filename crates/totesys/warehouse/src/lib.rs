//! warehouse-loader's work: one scheduled run moves every ready manifest of the processed
//! bucket (`landfall_totesys_contract::processed`) into the warehouse — PostgreSQL, or
//! Amazon Redshift for a warehouse that outgrew one server (`Engine`, by configuration).
//!
//! 1. Reach the warehouse and apply its pending migrations. PostgreSQL: connect (credentials
//!    from Secrets Manager) and take the loader's advisory lock — an overlapping run steps
//!    aside. Redshift: the Data API, each load under the ledger's table lock (`redshift`).
//! 2. List `ready/`; manifests the load ledger already holds are moved on to `loaded/`.
//! 3. Load the rest — dimension-only manifests first, then facts, each table's objects by
//!    sequence — each in one transaction with its ledger row (`load`, `redshift`). A
//!    manifest whose facts wait for a dimension row stays for the next pass or run; one that
//!    can never load is quarantined under `failed/` with the reason; the others load
//!    regardless.
//! 4. Measure the pipeline lag (`freshness`).

pub mod copy_text;
pub mod freshness;
pub mod load;
pub mod redshift;
pub mod schema;

use bytes::Bytes;
use freshness::Freshness;
use futures::stream::{self, StreamExt, TryStreamExt};
use landfall_aws::parameters::JsonParameters;
use landfall_aws::{AwsError, SdkResultExt};
use landfall_failure::{Classify, Disposition};
use landfall_secrets::postgres::ConnectError;
use landfall_secrets::{CredentialSource, SecretError};
use landfall_totesys_contract::processed::{
    restage, Manifest, DECODING_PREFIX, FAILED_PREFIX, LOADED_PREFIX, READY_PREFIX,
};
pub use load::{Loaded, WarehouseError};
use serde::Serialize;
pub use sqlx::postgres::PgSslMode;
use sqlx::{Connection, PgConnection};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// Where the star schema lives.
pub enum Engine {
    /// PostgreSQL, through a connection (`sql/warehouse/`).
    Postgres {
        credentials: CredentialSource,
        ssl_mode: PgSslMode,
    },
    /// Amazon Redshift, provisioned or serverless, through the Data API
    /// (`sql/warehouse-redshift/`).
    Redshift(redshift::Redshift),
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub processed_bucket: String,
    /// Apply the pending `sql/warehouse` migrations at the start of each run.
    pub migrate: bool,
    /// No manifest starts after this much of a run has passed (the rest waits for the
    /// next run), so a run ends inside the function's timeout.
    pub time_budget: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Load(#[from] WarehouseError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error("warehouse migrations: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("warehouse migrations: {0}")]
    RedshiftMigration(#[from] landfall_redshift_data::migrate::MigrateError),
}

impl Classify for RunError {
    fn disposition(&self) -> Disposition {
        use sqlx::migrate::MigrateError as M;
        match self {
            RunError::Load(e) => e.disposition(),
            RunError::Secret(e) => e.disposition(),
            // An applied migration changed or vanished: a person must decide.
            RunError::Migration(M::VersionMismatch(_) | M::VersionMissing(_)) => {
                Disposition::Permanent
            }
            RunError::Migration(_) => Disposition::Retryable,
            RunError::RedshiftMigration(e) => e.disposition(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// Another run holds the lock; this one did nothing.
    pub busy: bool,
    pub loaded: Vec<LoadedManifest>,
    /// In the ledger already (moved on to `loaded/` now).
    pub already_loaded: usize,
    /// Still waiting for dimension rows after the last pass: (manifest, why).
    pub waiting: Vec<(String, String)>,
    /// Quarantined under `failed/`: (manifest, why).
    pub rejected: Vec<(String, String)>,
    /// Not started because the run's time budget was spent.
    pub deferred: usize,
    pub freshness: Option<Freshness>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadedManifest {
    pub manifest: String,
    pub table: String,
    pub sequence: u64,
    pub rows: Vec<(&'static str, u64)>,
}

/// Runs that may die decoding one manifest before the next quarantines it.
const DEATHS_BEFORE_QUARANTINE: u32 = 2;

pub struct WarehouseLoader {
    s3: aws_sdk_s3::Client,
    engine: Engine,
    extract_state: JsonParameters,
    settings: Settings,
}

type Ready = (String, Manifest);

/// The warehouse as one run reaches it.
pub(crate) enum Session<'a> {
    Postgres(&'a mut PgConnection),
    Redshift(&'a redshift::Redshift),
}

impl Session<'_> {
    /// The manifests of `keys` the ledger holds.
    async fn loaded(&mut self, keys: &[String]) -> Result<HashSet<String>, WarehouseError> {
        match self {
            Session::Postgres(conn) => Ok(sqlx::query_scalar::<_, String>(
                "SELECT manifest FROM landfall.load_ledger WHERE manifest = ANY($1)",
            )
            .bind(keys)
            .fetch_all(&mut **conn)
            .await
            .map_err(load::database("reading the ledger"))?
            .into_iter()
            .collect()),
            Session::Redshift(redshift) => redshift.loaded(keys).await,
        }
    }
}

impl WarehouseLoader {
    pub fn new(
        s3: aws_sdk_s3::Client,
        engine: Engine,
        extract_state: JsonParameters,
        settings: Settings,
    ) -> WarehouseLoader {
        WarehouseLoader {
            s3,
            engine,
            extract_state,
            settings,
        }
    }

    pub async fn run(&self) -> Result<RunReport, RunError> {
        let started = Instant::now();
        let (credentials, ssl_mode) = match &self.engine {
            Engine::Postgres {
                credentials,
                ssl_mode,
            } => (credentials, *ssl_mode),
            Engine::Redshift(redshift) => {
                if self.settings.migrate {
                    redshift.migrate(&redshift::now_text()).await?;
                }
                return self
                    .run_locked(&mut Session::Redshift(redshift), started)
                    .await;
            }
        };
        let mut conn =
            landfall_secrets::postgres::connect(credentials, ssl_mode, "landfall-warehouse-loader")
                .await
                .map_err(|err| match err {
                    ConnectError::Secret(e) => RunError::Secret(e),
                    ConnectError::Database(e) => load::database("connecting")(e).into(),
                })?;
        if self.settings.migrate {
            // Every run (one query when nothing is pending): a restored or recreated
            // database is migrated before anything loads into it.
            schema::migrator().run_direct(&mut conn).await?;
        }
        let locked: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtext('landfall-warehouse-loader'))",
        )
        .fetch_one(&mut conn)
        .await
        .map_err(load::database("taking the loader lock"))?;
        let outcome = if locked {
            self.run_locked(&mut Session::Postgres(&mut conn), started)
                .await
        } else {
            Ok(RunReport {
                busy: true,
                ..RunReport::default()
            })
        };
        // Ending the session releases the lock (as a crashed run's does).
        let _ = conn.close().await;
        outcome
    }

    async fn run_locked(
        &self,
        session: &mut Session<'_>,
        started: Instant,
    ) -> Result<RunReport, RunError> {
        let mut report = RunReport::default();
        let keys = self.list(READY_PREFIX).await?;
        let done = session.loaded(&keys).await?;
        for key in &done {
            self.move_to(key, LOADED_PREFIX, None).await;
        }
        report.already_loaded = done.len();

        let todo: Vec<String> = keys.into_iter().filter(|k| !done.contains(k)).collect();
        let fetched: Vec<(String, Result<Manifest, WarehouseError>)> = stream::iter(todo)
            .map(|key| async move {
                let manifest = self.manifest(&key).await;
                (key, manifest)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        let mut pending: Vec<Ready> = Vec::new();
        for (key, manifest) in fetched {
            match manifest {
                Ok(m) => pending.push((key, m)),
                Err(err) => self.settle(&key, err, &mut report).await?,
            }
        }
        // Dimension-only manifests first; each table's objects in sequence order.
        pending.sort_by(|(ka, a), (kb, b)| {
            (has_facts(a), &a.table, a.sequence, ka).cmp(&(has_facts(b), &b.table, b.sequence, kb))
        });

        // Passes until nothing more loads: a fact that waited may find its dimension row
        // loaded by a later manifest of the same run.
        loop {
            let mut progressed = false;
            let mut waiting = Vec::new();
            let mut last_wait = Vec::new();
            for (key, manifest) in std::mem::take(&mut pending) {
                if started.elapsed() >= self.settings.time_budget {
                    report.deferred += 1;
                    continue;
                }
                match self.load_one(session, &key, &manifest).await {
                    Ok(Loaded::Rows(rows)) => {
                        for (table, count) in &rows {
                            metrics::counter!("RowsLoaded", "table" => *table).increment(*count);
                        }
                        tracing::info!(manifest = key, source_table = manifest.table, sequence = manifest.sequence, rows = ?rows, "loaded");
                        self.move_to(&key, LOADED_PREFIX, None).await;
                        report.loaded.push(LoadedManifest {
                            manifest: key,
                            table: manifest.table,
                            sequence: manifest.sequence,
                            rows,
                        });
                        progressed = true;
                    }
                    Ok(Loaded::Already) => {
                        self.move_to(&key, LOADED_PREFIX, None).await;
                        report.already_loaded += 1;
                    }
                    Err(WarehouseError::Waiting { detail, .. }) => {
                        last_wait.push((key.clone(), detail));
                        waiting.push((key, manifest));
                    }
                    Err(err) => self.settle(&key, err, &mut report).await?,
                }
            }
            pending = waiting;
            if pending.is_empty() || !progressed {
                for (key, why) in &last_wait {
                    tracing::warn!(
                        manifest = key,
                        reason = why,
                        "waiting for dimension rows; retried next run"
                    );
                }
                report.waiting = last_wait;
                break;
            }
        }
        metrics::counter!("ManifestsLoaded").increment(report.loaded.len() as u64);
        metrics::gauge!("ManifestsWaiting").set(report.waiting.len() as f64);
        if !report.rejected.is_empty() {
            metrics::counter!("ManifestsRejected").increment(report.rejected.len() as u64);
        }

        let freshness = freshness::measure(
            session,
            &self.extract_state,
            time::OffsetDateTime::now_utc(),
        )
        .await?;
        if let Some(lag) = freshness.lag_seconds() {
            metrics::gauge!("PipelineLagSeconds").set(lag);
        }
        report.freshness = Some(freshness);
        Ok(report)
    }

    /// A manifest's failure: quarantined when the object can never load, else the run fails
    /// (the database or S3 is unwell: the next run retries everything left).
    async fn settle(
        &self,
        key: &str,
        err: WarehouseError,
        report: &mut RunReport,
    ) -> Result<(), RunError> {
        if matches!(err, WarehouseError::Rejected { .. }) {
            let reason = err.to_string();
            tracing::error!(
                manifest = key,
                reason,
                "rejected; quarantined under failed/"
            );
            self.move_to(key, FAILED_PREFIX, Some(&reason)).await;
            report.rejected.push((key.to_owned(), reason));
            Ok(())
        } else {
            Err(err.into())
        }
    }

    async fn load_one(
        &self,
        session: &mut Session<'_>,
        key: &str,
        manifest: &Manifest,
    ) -> Result<Loaded, WarehouseError> {
        let conn = match session {
            Session::Postgres(conn) => conn,
            // Redshift reads the files itself; nothing is decoded here.
            Session::Redshift(redshift) => {
                return redshift
                    .load_manifest(key, manifest, &redshift::now_text())
                    .await
            }
        };
        let files: Vec<load::File> = stream::iter(&manifest.outputs)
            .map(|output| async move {
                let bytes = self.get(&output.key).await.map_err(|err| {
                    // The manifest lists a file that is not there (or never readable): it
                    // can never load.
                    let reason = match &err {
                        WarehouseError::Missing { .. } => "no such object".to_owned(),
                        WarehouseError::Storage { source, .. }
                            if source.disposition() == Disposition::Permanent =>
                        {
                            source.to_string()
                        }
                        _ => return err,
                    };
                    WarehouseError::Rejected {
                        manifest: key.to_owned(),
                        key: output.key.clone(),
                        reason,
                    }
                })?;
                Ok::<_, WarehouseError>(load::File {
                    table: output.table.clone(),
                    key: output.key.clone(),
                    rows: output.rows,
                    bytes,
                })
            })
            .buffered(4)
            .try_collect()
            .await?;
        // A file that kills the process while decoding (a decoder panic aborts a release
        // build; so does running out of memory) would kill every run after it: the manifest
        // is noted first with the runs that began decoding it, and the third run quarantines
        // it instead. Two, not one: a run killed from outside (a timeout, a redeploy) while
        // decoding a good file must not lose that file to the quarantine.
        let marker = restage(key, READY_PREFIX, DECODING_PREFIX);
        if let Some(marker) = &marker {
            let died = self.runs_that_died(marker).await?;
            if died >= DEATHS_BEFORE_QUARANTINE {
                self.remove(marker).await;
                return Err(WarehouseError::Rejected {
                    manifest: key.to_owned(),
                    key: key.to_owned(),
                    reason: format!("the last {died} runs that decoded it died doing so (a decoder panic or out of memory); quarantined so that it cannot stop every run"),
                });
            }
            self.note(marker, died + 1).await?;
        }
        let loaded = load::load_manifest(conn, key, manifest, &files).await;
        if let Some(marker) = &marker {
            self.remove(marker).await;
        }
        loaded
    }

    /// How many runs began decoding the manifest and never finished (its note's count).
    async fn runs_that_died(&self, marker: &str) -> Result<u32, WarehouseError> {
        match self.get(marker).await {
            Ok(body) => Ok(std::str::from_utf8(&body)
                .ok()
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or(1)),
            Err(WarehouseError::Missing { .. }) => Ok(0),
            Err(err) => Err(err),
        }
    }

    async fn note(&self, key: &str, runs: u32) -> Result<(), WarehouseError> {
        let bucket = &self.settings.processed_bucket;
        self.s3
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(Bytes::from(runs.to_string()).into())
            .send()
            .await
            .map(drop)
            .map_err(|err| WarehouseError::Storage {
                bucket: bucket.clone(),
                key: key.to_owned(),
                source: AwsError::new("S3", "PutObject", err),
            })
    }

    /// Housekeeping: a note left behind only quarantines a manifest already loaded or
    /// rejected, which the next run no longer reads.
    async fn remove(&self, key: &str) {
        let deleted = self
            .s3
            .delete_object()
            .bucket(&self.settings.processed_bucket)
            .key(key)
            .send()
            .await;
        if let Err(err) = deleted {
            tracing::warn!(key, error = %AwsError::new("S3", "DeleteObject", err), "could not remove the decoding note");
        }
    }

    async fn manifest(&self, key: &str) -> Result<Manifest, WarehouseError> {
        let body = self.get(key).await?;
        serde_json::from_slice(&body).map_err(|e| WarehouseError::Rejected {
            manifest: key.to_owned(),
            key: key.to_owned(),
            reason: format!("not a manifest: {e}"),
        })
    }

    async fn get(&self, key: &str) -> Result<Bytes, WarehouseError> {
        let bucket = &self.settings.processed_bucket;
        let out = self
            .s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|err| match err.as_service_error() {
                Some(e) if e.is_no_such_key() => WarehouseError::Missing {
                    bucket: bucket.clone(),
                    key: key.to_owned(),
                },
                _ => WarehouseError::Storage {
                    bucket: bucket.clone(),
                    key: key.to_owned(),
                    source: AwsError::new("S3", "GetObject", err),
                },
            })?;
        let body = out
            .body
            .collect()
            .await
            .map_err(|source| WarehouseError::Body {
                bucket: bucket.clone(),
                key: key.to_owned(),
                source,
            })?;
        Ok(body.into_bytes())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, WarehouseError> {
        let bucket = &self.settings.processed_bucket;
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .into_paginator()
            .send();
        let mut keys = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|err| WarehouseError::Storage {
                bucket: bucket.clone(),
                key: prefix.to_owned(),
                source: AwsError::new("S3", "ListObjectsV2", err),
            })?;
            keys.extend(
                page.contents()
                    .iter()
                    .filter_map(|o| o.key())
                    .filter(|k| k.ends_with(".json"))
                    .map(str::to_owned),
            );
        }
        Ok(keys)
    }

    /// Moves a ready manifest to another stage (housekeeping: the ledger is the truth, so a
    /// failure here only means the next run moves it).
    async fn move_to(&self, key: &str, stage: &str, reason: Option<&str>) {
        let Some(target) = restage(key, READY_PREFIX, stage) else {
            return;
        };
        let bucket = &self.settings.processed_bucket;
        let mut copy = self
            .s3
            .copy_object()
            .bucket(bucket)
            .key(&target)
            // Our keys are URL-safe ([a-z0-9_/.-]), so the copy source needs no encoding.
            .copy_source(format!("{bucket}/{key}"));
        if let Some(reason) = reason {
            // S3 metadata is ASCII and small; the full reason is in the log.
            let ascii: String = reason
                .chars()
                .map(|c| {
                    if c.is_ascii() && !c.is_ascii_control() {
                        c
                    } else {
                        '?'
                    }
                })
                .take(1500)
                .collect();
            copy = copy
                .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
                .content_type("application/json")
                .metadata("reason", ascii);
        }
        let moved = match copy.send().await {
            Ok(_) => self
                .s3
                .delete_object()
                .bucket(bucket)
                .key(key)
                .send()
                .await
                .map(|_| ())
                .or_aws("S3", "DeleteObject"),
            Err(e) => Err(AwsError::new("S3", "CopyObject", e)),
        };
        if let Err(err) = moved {
            tracing::warn!(
                manifest = key,
                stage,
                error = %err,
                "could not move the manifest; the next run will"
            );
        }
    }
}

fn has_facts(manifest: &Manifest) -> bool {
    manifest
        .outputs
        .iter()
        .any(|o| schema::table_named(&o.table).is_some_and(|t| t.is_fact()))
}
