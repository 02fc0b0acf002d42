//! orders-loader: P3. A batch of notifications for `transformed/orders/` (S3 → SQS) is
//! audited in DynamoDB, the Glue crawler started once, and each file loaded into Redshift
//! by one transaction (the rules live in `landfall-orders-load`). Bad input goes to the DLQ
//! at once; a load still running when time is up is found again by the redelivery.
//! `{"migrate": {}}` applies the warehouse's migrations (run once after each deploy).

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use landfall_aws::Aws;
use landfall_orders_load::audit::{AuditTable, Received};
use landfall_orders_load::crawler::Crawler;
use landfall_orders_load::warehouse::{OrdersWarehouse, UnknownCustomers};
use landfall_orders_load::{migrate, timestamp_now, Loader, Settings};
use landfall_redshift_data::Warehouse;
use landfall_runtime::{ConfigError, Env, FunctionError, Invocation};
use landfall_s3_events::ChangeKind;
use landfall_sqs_batch::{receive_count, s3_changes, BatchOutcome, DeadLetters};
use serde::{Deserialize, Serialize};
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
                let applied = migrate::MIGRATIONS
                    .apply(
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

    /// The batch's files (`Loader::load_batch`: audited and crawled together, then loaded one
    /// at a time in the order they arrived); a record whose file fails is reported alone.
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
                files.push((index, Received::of(change, &delivery)));
            }
        }
        files.retain(|(index, _)| !outcome.failed(*index));
        for (index, err) in self.loader.load_batch(&files, &invocation.deadline).await {
            outcome.fail(index, err);
        }
        outcome.finish(self.dead_letters.as_ref()).await
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
}
