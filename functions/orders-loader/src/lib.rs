//! orders-loader: P3. A batch of notifications for `transformed/orders/` (S3 → SQS) is
//! audited in DynamoDB, the Glue crawler started once, and each file loaded into Redshift
//! by one transaction (the rules live in `landfall-orders-load`). Bad input goes to the DLQ
//! at once; a load still running when time is up is found again by the redelivery.
//! `{"migrate": {}}` applies the warehouse's migrations (run once after each deploy).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use landfall_aws::Aws;
use landfall_orders_load::audit::{AuditTable, Outcome, Received, Status};
use landfall_orders_load::crawler::Crawler;
use landfall_orders_load::warehouse::{OrdersWarehouse, UnknownCustomers};
use landfall_orders_load::{migrate, timestamp_now, Done, Loader, Settings};
use landfall_redshift_data::Warehouse;
use landfall_runtime::{Classify, ConfigError, Env, FunctionError, Invocation};
use landfall_s3_events::{ChangeKind, ObjectChange};
use landfall_sqs_batch::{receive_count, s3_changes, BatchOutcome, DeadLetters};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// What invokes the function: the orders queue, or a deploy's migration run.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Event {
    Migrate { migrate: Migrate },
    Sqs(SqsEvent),
}

/// `{"migrate": {}}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migrate {}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Response {
    Batch(SqsBatchResponse),
    Migrated { applied: Vec<u32> },
}

pub struct App {
    loader: Loader,
    /// The notified prefix this function owns.
    prefix: String,
    dead_letters: Option<DeadLetters>,
}

impl App {
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let unknown = env.optional("UNKNOWN_CUSTOMERS").unwrap_or("reject");
        let unknown_customers = UnknownCustomers::parse(unknown).ok_or_else(|| {
            ConfigError::invalid("UNKNOWN_CUSTOMERS", unknown, "must be reject or load")
        })?;
        let aws = Aws::load(env).await?;
        let settings = Settings {
            manifest_bucket: env.required("MANIFEST_BUCKET")?.to_owned(),
            manifest_prefix: env
                .optional("MANIFEST_PREFIX")
                .unwrap_or("manifests/orders")
                .to_owned(),
            check_bytes_per_second: env.parse_or("CHECK_BYTES_PER_SECOND", 50 * 1024 * 1024)?,
            warehouse_seconds: env.parse_or("WAREHOUSE_SECONDS", 60)?,
            copy_bytes_per_second: env.parse_or("COPY_BYTES_PER_SECOND", 20 * 1024 * 1024)?,
            audit_budget: Duration::from_secs(env.parse_or("AUDIT_SECONDS", 30)?),
        };
        Ok(App {
            loader: Loader {
                s3: aws.s3(),
                audit: AuditTable {
                    client: aws.dynamodb(),
                    table: env.required("AUDIT_TABLE")?.to_owned(),
                },
                crawler: Crawler {
                    client: aws.glue(),
                    name: env.required("CRAWLER_NAME")?.to_owned(),
                },
                warehouse: OrdersWarehouse {
                    warehouse: Warehouse::from_env(env, aws.redshift_data())?,
                    copy_role_arn: env.required("COPY_ROLE_ARN")?.to_owned(),
                    unknown_customers,
                },
                settings,
            },
            prefix: env
                .optional("ORDERS_PREFIX")
                .unwrap_or("transformed/orders/")
                .to_owned(),
            dead_letters: DeadLetters::from_env(env, aws.sqs())?,
        })
    }

    pub async fn handle(
        &self,
        event: &Event,
        invocation: &Invocation,
    ) -> Result<Response, FunctionError> {
        match event {
            Event::Sqs(event) => Ok(Response::Batch(self.batch(event, invocation).await?)),
            Event::Migrate { .. } => {
                let applied = migrate::migrate(
                    &self.loader.warehouse.warehouse,
                    &timestamp_now(),
                    invocation.deadline.usable(),
                )
                .await
                .map_err(|e| FunctionError::from_error(&e))?;
                tracing::info!(?applied, "warehouse migrations");
                Ok(Response::Migrated { applied })
            }
        }
    }

    /// The batch's files audited and crawled together, then loaded one at a time in the
    /// order they arrived; a record whose file fails is reported alone.
    async fn batch(
        &self,
        event: &SqsEvent,
        invocation: &Invocation,
    ) -> Result<SqsBatchResponse, FunctionError> {
        let mut outcome = BatchOutcome::new(event);
        let mut files: Vec<(usize, Received)> = Vec::new();
        for (index, record) in event.records.iter().enumerate() {
            let changes = match s3_changes(record) {
                Ok(changes) => changes,
                Err(err) => {
                    outcome.fail(index, err);
                    continue;
                }
            };
            let delivery = format!(
                "{}/{}",
                record.message_id.as_deref().unwrap_or_default(),
                receive_count(record)
            );
            for change in changes.iter().filter(|c| c.kind == ChangeKind::Created) {
                if !change.key.starts_with(&self.prefix) {
                    outcome.fail(
                        index,
                        FunctionError::permanent(format!(
                            "{}: not under {}; this function loads orders files only",
                            change.key, self.prefix
                        )),
                    );
                    continue;
                }
                files.push((index, received(change, &delivery)));
            }
        }
        // One file twice in a batch (a redelivered message beside its original, or the
        // same bytes uploaded twice, which moto's version-less notifications name alike):
        // one audit item — BatchWriteItem refuses a key twice in a call — and one load,
        // whose outcome both records share.
        let mut admitted: Vec<Received> = Vec::new();
        for (index, file) in &files {
            if !outcome.failed(*index) && !admitted.iter().any(|a| a.file == file.file) {
                admitted.push(file.clone());
            }
        }
        let already_loaded = match self.loader.receive(&admitted).await {
            Ok(loaded) => loaded,
            Err(err) => {
                let err = FunctionError::from_error(&err);
                for (index, _) in &files {
                    outcome.fail(*index, err.clone());
                }
                return outcome.finish(self.dead_letters.as_ref()).await;
            }
        };
        let mut handled: HashMap<&str, Option<FunctionError>> = HashMap::new();
        for (index, file) in &files {
            if outcome.failed(*index) {
                continue;
            }
            if already_loaded.contains(&file.file) {
                tracing::info!(file = file.file, "already loaded: a duplicate delivery");
                metrics::counter!("DuplicateDeliveries").increment(1);
                continue;
            }
            if let Some(first) = handled.get(file.file.as_str()) {
                tracing::info!(file = file.file, "twice in this batch: handled once");
                metrics::counter!("DuplicateDeliveries").increment(1);
                if let Some(err) = first {
                    outcome.fail(*index, err.clone());
                }
                continue;
            }
            let result = self.file(file, invocation).await.err();
            if let Some(err) = &result {
                outcome.fail(*index, err.clone());
            }
            handled.insert(&file.file, result);
        }
        outcome.finish(self.dead_letters.as_ref()).await
    }

    async fn file(&self, file: &Received, invocation: &Invocation) -> Result<(), FunctionError> {
        match self.loader.load(file, &invocation.deadline).await {
            Ok(done) => {
                match &done {
                    Done::Loaded(loaded) => {
                        tracing::info!(
                            file = file.file,
                            rows = loaded.ledger.rows_loaded,
                            unknown_customers = loaded.ledger.unknown_customers,
                            statement = loaded.statement_id,
                            seconds = loaded.duration.as_secs_f64(),
                            "file loaded"
                        );
                        metrics::counter!("FilesLoaded").increment(1);
                    }
                    Done::Superseded { current_version } => tracing::info!(
                        file = file.file,
                        current_version,
                        "superseded by a newer version; not loaded"
                    ),
                }
                self.loader
                    .record(file, &Outcome::from(&done))
                    .await
                    .map_err(|e| FunctionError::from_error(&e))
            }
            Err(err) => {
                let failure = err.to_function_error(&self.loader.settings, file.size);
                let running = matches!(&err, landfall_orders_load::LoadError::Warehouse(w) if w.still_running().is_some());
                if running {
                    // Not a failure: the transaction goes on in Redshift, and the
                    // redelivery follows it. The item stays RECEIVED.
                    tracing::info!(file = file.file, error = %err, "load still running; the redelivery follows it");
                } else {
                    tracing::error!(file = file.file, error = %err, "file not loaded");
                    let recorded = Outcome::Failed {
                        error: err.to_string(),
                        retryable: err.disposition() == landfall_runtime::Disposition::Retryable,
                    };
                    if let Err(audit) = self.loader.record(file, &recorded).await {
                        tracing::error!(file = file.file, error = %audit, "the failure could not be audited");
                    }
                }
                Err(failure)
            }
        }
    }
}

/// The audit item a notification makes, its version named as `landfall_landing` names it.
fn received(change: &ObjectChange, delivery: &str) -> Received {
    let etag = change
        .etag
        .clone()
        .unwrap_or_default()
        .trim_matches('"')
        .to_owned();
    let version = change
        .version_id
        .clone()
        .filter(|v| !v.is_empty() && v != "null")
        .unwrap_or_else(|| format!("etag:{etag}"));
    Received {
        file: Received::file_id(&change.bucket, &change.key, &version),
        bucket: change.bucket.clone(),
        key: change.key.clone(),
        version,
        size: change.size.unwrap_or(0),
        etag,
        event_time: change.event_time.clone().unwrap_or_default(),
        status: Status::Received,
        delivery: delivery.to_owned(),
        received_at: timestamp_now(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_event_parses() {
        for entry in std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/orders-loader"
        ))
        .unwrap()
        {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let event: Event = serde_json::from_str(&text).unwrap();
            let is_migrate = path.to_string_lossy().contains("migrate");
            assert_eq!(
                matches!(event, Event::Migrate { .. }),
                is_migrate,
                "{path:?}"
            );
        }
    }

    #[test]
    fn a_notification_becomes_a_received_item_named_by_key_and_version() {
        let change = ObjectChange {
            kind: ChangeKind::Created,
            event_name: "ObjectCreated:Put".into(),
            event_time: Some("2026-12-02T08:00:00.000Z".into()),
            bucket: "t".into(),
            key: "transformed/orders/a.csv".into(),
            size: Some(42),
            etag: Some("\"e1\"".into()),
            version_id: Some("v1".into()),
            sequencer: None,
        };
        let item = received(&change, "m1/1");
        assert_eq!(item.file, "s3://t/transformed/orders/a.csv#v1");
        assert_eq!(
            (item.size, item.etag.as_str(), item.status),
            (42, "e1", Status::Received)
        );
        let unversioned = ObjectChange {
            version_id: None,
            ..change
        };
        assert_eq!(received(&unversioned, "m1/1").version, "etag:e1");
    }
}
