//! The audit trail: one DynamoDB item per orders file (object key and version), written
//! RECEIVED for a batch's files with `BatchWriteItem`, then moved to LOADED, FAILED or
//! SUPERSEDED by a conditional update that only the delivery which wrote RECEIVED can make.
//! A stale delivery — one whose item a later delivery has since rewritten, or a file that
//! is already LOADED — changes nothing.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use landfall_aws::dynamodb_batch::{get_all, put_all, BatchError, Item};
use landfall_aws::{AwsError, SdkResultExt};
use landfall_landing::Version;
use landfall_s3_events::ObjectChange;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Received,
    Loaded,
    Failed,
    /// A newer version of the key landed before this one was loaded; its own notification
    /// loads it.
    Superseded,
}

/// What a notification says of the file, as the audit item keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Received {
    /// `s3://<bucket>/<key>#<version>`: the item's key.
    pub file: String,
    pub bucket: String,
    pub key: String,
    pub version: Version,
    pub size: u64,
    pub etag: String,
    pub event_time: String,
    pub status: Status,
    /// Which delivery wrote this item (`<message id>/<receive count>`): only it may move the
    /// status on.
    pub delivery: String,
    pub received_at: String,
}

/// The outcome recorded on the item.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Loaded {
        rows_staged: u64,
        rows_loaded: u64,
        unknown_customers: u64,
        statement_id: Option<String>,
        duration: Duration,
    },
    Failed {
        error: String,
        retryable: bool,
    },
    Superseded {
        current_version: String,
    },
}

#[derive(Debug, Clone)]
pub struct AuditTable {
    pub client: Client,
    pub table: String,
}

impl Received {
    /// The audit item a notification makes, its version named as every pipeline names it.
    pub fn of(change: &ObjectChange, delivery: &str) -> Received {
        let version = change.version().version;
        Received {
            file: Received::file_id(&change.bucket, &change.key, &version),
            bucket: change.bucket.clone(),
            key: change.key.clone(),
            version,
            size: change.size.unwrap_or(0),
            etag: change
                .etag
                .as_deref()
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned(),
            event_time: change.event_time.clone().unwrap_or_default(),
            status: Status::Received,
            delivery: delivery.to_owned(),
            received_at: crate::timestamp_now(),
        }
    }

    pub fn file_id(bucket: &str, key: &str, version: &Version) -> String {
        format!("s3://{bucket}/{key}#{version}")
    }
}

fn key_of(file: &str) -> Item {
    HashMap::from([("file".to_owned(), AttributeValue::S(file.to_owned()))])
}

impl AuditTable {
    /// Of these files, those whose audit item already says LOADED (their delivery is a
    /// duplicate); every other one is written RECEIVED by this delivery.
    pub async fn receive(
        &self,
        files: &[Received],
        budget: Duration,
    ) -> Result<Vec<String>, BatchError> {
        if files.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<Item> = files.iter().map(|f| key_of(&f.file)).collect();
        let existing = get_all(&self.client, &self.table, keys, budget).await?;
        let loaded: Vec<String> = existing
            .iter()
            .filter(
                |item| matches!(item.get("status"), Some(AttributeValue::S(s)) if s == "LOADED"),
            )
            .filter_map(|item| match item.get("file") {
                Some(AttributeValue::S(file)) => Some(file.clone()),
                _ => None,
            })
            .collect();
        let items = files
            .iter()
            .filter(|f| !loaded.contains(&f.file))
            .map(|f| {
                serde_dynamo::to_item(f)
                    .map_err(|e| AwsError::invalid_request("DynamoDB", "BatchWriteItem", e).into())
            })
            .collect::<Result<Vec<Item>, BatchError>>()?;
        put_all(&self.client, &self.table, items, budget).await?;
        Ok(loaded)
    }

    /// Moves `file` from RECEIVED to the outcome, if `delivery` still owns it. False when a
    /// later delivery does (the stale one leaves the item alone).
    pub async fn record(
        &self,
        file: &str,
        delivery: &str,
        outcome: &Outcome,
        now: &str,
    ) -> Result<bool, AwsError> {
        let mut values: Vec<(&str, AttributeValue)> = vec![
            (":received", AttributeValue::S("RECEIVED".into())),
            (":delivery", AttributeValue::S(delivery.to_owned())),
            (":now", AttributeValue::S(now.to_owned())),
        ];
        let n = |v: u64| AttributeValue::N(v.to_string());
        let set = match outcome {
            Outcome::Loaded {
                rows_staged,
                rows_loaded,
                unknown_customers,
                statement_id,
                duration,
            } => {
                values.extend([
                    (":status", AttributeValue::S("LOADED".into())),
                    (":staged", n(*rows_staged)),
                    (":loaded", n(*rows_loaded)),
                    (":unknown", n(*unknown_customers)),
                    (":ms", n(duration.as_millis() as u64)),
                    (
                        ":statement",
                        statement_id
                            .clone()
                            .map_or(AttributeValue::Null(true), AttributeValue::S),
                    ),
                ]);
                "rows_staged = :staged, rows_loaded = :loaded, unknown_customers = :unknown, duration_ms = :ms, statement_id = :statement"
            }
            Outcome::Failed { error, retryable } => {
                values.extend([
                    (":status", AttributeValue::S("FAILED".into())),
                    (":error", AttributeValue::S(error.clone())),
                    (":retryable", AttributeValue::Bool(*retryable)),
                ]);
                "error_message = :error, retryable = :retryable"
            }
            Outcome::Superseded { current_version } => {
                values.extend([
                    (":status", AttributeValue::S("SUPERSEDED".into())),
                    (":current", AttributeValue::S(current_version.clone())),
                ]);
                "current_version = :current"
            }
        };
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(file)))
            .update_expression(format!("SET #status = :status, updated_at = :now, {set}"))
            .condition_expression("#status = :received AND delivery = :delivery")
            .expression_attribute_names("#status", "status")
            .set_expression_attribute_values(Some(
                values.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            ))
            .send()
            .await;
        match updated {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(err) => Err(err).or_aws("DynamoDB", "UpdateItem"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_becomes_a_received_item_named_by_key_and_version() {
        let change = ObjectChange {
            kind: landfall_s3_events::ChangeKind::Created,
            event_name: "ObjectCreated:Put".into(),
            event_time: Some("2026-12-02T08:00:00.000Z".into()),
            bucket: "t".into(),
            key: "transformed/orders/a.csv".into(),
            size: Some(42),
            etag: Some("\"e1\"".into()),
            version_id: Some("v1".into()),
            sequencer: None,
        };
        let item = Received::of(&change, "m1/1");
        assert_eq!(item.file, "s3://t/transformed/orders/a.csv#v1");
        assert_eq!(
            (item.size, item.etag.as_str(), item.status),
            (42, "e1", Status::Received)
        );
        let unversioned = ObjectChange {
            version_id: None,
            ..change
        };
        assert_eq!(
            Received::of(&unversioned, "m1/1").version,
            Version::ETag("e1".into())
        );
    }
}
