//! star-transform: each ingestion object named by an S3 notification (via SQS) becomes the
//! star schema's rows as Parquet in the processed bucket (`landfall_totesys_transform`). Records
//! are processed one after another, so an invocation's memory holds one object at a time
//! (invocations run side by side, each object committing only its table's state group), and
//! each fails alone (partial batch response):
//! a retryable failure (a foreign key whose row has not arrived yet, S3 unavailable) returns
//! to the queue, a permanent one (a bad line) goes to the DLQ at once with its reason.

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use landfall_aws::{parameters::JsonParameters, Aws};
use landfall_runtime::{ConfigError, Env, FunctionError};
use landfall_s3_events::ChangeKind;
use landfall_sqs_batch::{process_s3_changes, DeadLetters, Delivery};
use landfall_totesys_transform::{Outcome, Settings, Transformer};

pub struct App {
    transformer: Transformer,
    dead_letters: Option<DeadLetters>,
}

impl App {
    pub async fn from_env(env: &Env) -> Result<App, ConfigError> {
        let aws = Aws::load(env).await?;
        let settings = Settings {
            processed_bucket: env.required("PROCESSED_BUCKET")?.to_owned(),
            state_prefix: env.optional("STATE_PREFIX").unwrap_or("state/").to_owned(),
            commit_attempts: env.parse_or(
                "COMMIT_ATTEMPTS",
                landfall_totesys_transform::DEFAULT_COMMIT_ATTEMPTS,
            )?,
        };
        let sequences = JsonParameters::new(aws.ssm(), env.required("SEQUENCE_PARAMETER_PREFIX")?);
        Ok(App {
            transformer: Transformer::new(aws.s3(), sequences, settings),
            // With SOURCE_QUEUE_URL (template.yaml), an object waiting for a sibling (a fact
            // before its new dimension row, extracted in the same run) is retried within a
            // minute, not after the queue's 30-minute visibility timeout.
            dead_letters: DeadLetters::from_env(env, aws.sqs())?,
        })
    }

    pub async fn handle(&self, event: &SqsEvent) -> Result<SqsBatchResponse, FunctionError> {
        process_s3_changes(event, self.dead_letters.as_ref(), 1, |delivery| {
            self.record(delivery)
        })
        .await
    }

    async fn record(&self, delivery: Delivery<'_>) -> Result<(), FunctionError> {
        // Expired ingestion objects were transformed long ago.
        for change in delivery
            .changes
            .iter()
            .filter(|c| c.kind == ChangeKind::Created)
        {
            let source = change.version();
            match self.transformer.process(&source).await {
                Ok(Outcome::Transformed {
                    table,
                    sequence,
                    versions,
                    manifest,
                    outputs,
                    missing,
                    conflicts,
                }) => {
                    let rows: usize = outputs.iter().map(|o| o.rows).sum();
                    tracing::info!(
                        key = source.key,
                        table,
                        sequence,
                        versions,
                        rows,
                        tables = ?outputs.iter().map(|o| o.table.as_str()).collect::<Vec<_>>(),
                        manifest,
                        missing_sequences = ?missing,
                        conflicts,
                        "object transformed"
                    );
                    metrics::counter!("VersionsRead", "table" => table).increment(versions as u64);
                    for output in &outputs {
                        metrics::counter!("RowsWritten", "table" => output.table.clone())
                            .increment(output.rows as u64);
                    }
                }
                Ok(Outcome::AlreadyDone { manifest }) => {
                    tracing::info!(
                        key = source.key,
                        manifest,
                        "redelivery of a transformed object"
                    );
                }
                Err(err) => {
                    let failure = FunctionError::from_error(&err);
                    tracing::error!(
                        key = source.key,
                        error_type = failure.disposition.as_str(),
                        error = failure.message,
                        "object not transformed"
                    );
                    metrics::counter!("TransformFailures").increment(1);
                    return Err(failure);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use aws_lambda_events::sqs::SqsEvent;
    use landfall_s3_events::ChangeKind;

    /// events/star-transform/ holds what the ingestion queue delivers: an object the
    /// transform takes (a created ingestion key).
    #[test]
    fn sample_events_name_ingestion_objects() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/star-transform");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let event: SqsEvent = serde_json::from_str(&text).unwrap();
            let changes = landfall_sqs_batch::s3_changes(&event.records[0]).unwrap();
            assert_eq!(changes[0].kind, ChangeKind::Created);
            let name =
                landfall_totesys_contract::ingestion::parse_object_key(&changes[0].key).unwrap();
            assert_eq!((name.table, name.sequence), ("sales_order", 42));
        }
    }
}
