//! dynamodb-loader: P2. A CSV file under `dynamodb/<dataset>/` (S3 → SQS) becomes the
//! dataset's current DynamoDB table through ImportTable (the rules live in
//! `landfall-dynamodb-import`); the file is then archived and the outcome emailed. Bad input
//! goes to the DLQ at once with its reason; an import still running comes back when it
//! should be done. A scheduled `{"retire": {}}` deletes replaced tables past their grace
//! period even when no new file lands.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use landfall_aws::Aws;
use landfall_dynamodb_datasets::Datasets;
use landfall_dynamodb_import::pipeline::DynamodbFiles;
use landfall_dynamodb_import::{Importer, Settings};
use landfall_email::Mailer;
use landfall_landing::flow::Landing;
use landfall_runtime::{ConfigError, Env, FunctionError, Invocation};
use landfall_sqs_batch::DeadLetters;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What invokes the function: the landing queue, or the retirement schedule.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Event {
    Retire { retire: Retire },
    Sqs(SqsEvent),
}

/// `{"retire": {}}`: every dataset's retired tables past their grace period are deleted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retire {}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Response {
    Batch(SqsBatchResponse),
    Retired { deleted: Vec<String> },
}

pub struct App {
    files: DynamodbFiles,
    landing: Landing,
}

impl App {
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let mut datasets = Datasets::from_env(env)?;
        // One grace period for every dataset, where replaced tables should go at once (a
        // local stack, a test account) or stay longer than configured (an incident).
        if env.is_set("RETIRE_AFTER_SECONDS") {
            let seconds: u64 = env.parse("RETIRE_AFTER_SECONDS")?;
            for dataset in datasets.datasets.values_mut() {
                dataset.retire_after_seconds = seconds;
            }
        }
        let settings = Settings {
            import_bucket: env.required("IMPORT_BUCKET")?.to_owned(),
            import_prefix: env
                .optional("IMPORT_PREFIX")
                .unwrap_or("imports")
                .to_owned(),
            pointer_prefix: env.required("POINTER_PREFIX")?.to_owned(),
            table_prefix: env.optional("TABLE_PREFIX").unwrap_or_default().to_owned(),
            split_bytes: env.parse_or("SPLIT_BYTES", 128 * 1024 * 1024)?,
            concurrency: env.parse_or("CONVERT_CONCURRENCY", 2)?,
            poll_interval: Duration::from_millis(env.parse_or("IMPORT_POLL_MILLISECONDS", 10_000)?),
            import_bytes_per_second: env.parse_or("IMPORT_BYTES_PER_SECOND", 2 * 1024 * 1024)?,
            claim_stale_after: Duration::from_secs(env.parse_or(
                "IMPORT_CLAIM_STALE_SECONDS",
                landfall_dynamodb_import::CLAIM_STALE_AFTER.as_secs(),
            )?),
        };
        let aws = Aws::load(env).await?;
        Ok(App {
            files: DynamodbFiles {
                importer: Importer {
                    s3: aws.s3(),
                    dynamodb: aws.dynamodb(),
                    ssm: aws.ssm(),
                    settings,
                },
                datasets,
            },
            landing: Landing {
                s3: aws.s3(),
                archive_bucket: env.required("ARCHIVE_BUCKET")?.to_owned(),
                mailer: Mailer::new(aws.ses(), env.required("SENDER_EMAIL")?),
                operations_notify: env.list("OPERATIONS_NOTIFY"),
                max_receive_count: env.parse_or("MAX_RECEIVE_COUNT", 10)?,
                dead_letters: DeadLetters::from_env(env, aws.sqs())?,
            },
        })
    }

    pub async fn handle(
        &self,
        event: &Event,
        invocation: &Invocation,
    ) -> Result<Response, FunctionError> {
        match event {
            Event::Sqs(event) => {
                // One file at a time: a conversion uses every core the function has.
                let response = self
                    .landing
                    .consume(
                        &self.files,
                        event,
                        &invocation.request_id,
                        &invocation.deadline,
                    )
                    .await?;
                Ok(Response::Batch(response))
            }
            Event::Retire { .. } => {
                let mut deleted = Vec::new();
                for (name, dataset) in &self.files.datasets.datasets {
                    let retired = self.files.importer.retire(name.as_str(), dataset).await;
                    deleted.extend(retired.map_err(|e| FunctionError::from_error(&e))?);
                }
                Ok(Response::Retired { deleted })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An injection-shaped name in the datasets file fails the cold start, naming the variable.
    #[tokio::test]
    async fn injection_shaped_names_are_refused_at_cold_start() {
        let dir = std::env::temp_dir().join(format!("dynamodb-loader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, from, to) in [
            (
                "dataset.toml",
                "[datasets.price_index]",
                "[datasets.\"price_index; drop\"]",
            ),
            ("attribute.toml", "name = \"uom\"", "name = \"uom = :x\""),
        ] {
            let path = dir.join(name);
            let text = landfall_dynamodb_datasets::BUNDLED.replace(from, to);
            assert_ne!(text, landfall_dynamodb_datasets::BUNDLED);
            std::fs::write(&path, text).unwrap();
            let env = Env::from_pairs([("DYNAMODB_DATASETS_FILE", path.to_str().unwrap())]);
            let err = App::from_env(&env)
                .await
                .err()
                .expect("refused")
                .to_string();
            assert!(
                err.contains("DYNAMODB_DATASETS_FILE") && err.contains("not an allowed"),
                "{err}"
            );
        }
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn every_sample_event_parses() {
        for entry in std::fs::read_dir(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../events/dynamodb-loader"
        ))
        .unwrap()
        {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let event: Event = serde_json::from_str(&text).unwrap();
            let is_retire = path.to_string_lossy().contains("retire");
            assert_eq!(matches!(event, Event::Retire { .. }), is_retire, "{path:?}");
        }
    }
}
