//! S3 event notifications as they arrive in an SQS message body.
//!
//! Parsed leniently on purpose: `aws_lambda_events::s3::S3Event` requires fields
//! (`userIdentity`, `requestParameters`, `sequencer`) that moto omits, and a pipeline must
//! accept both. Only what landfall uses is read; everything else may be absent.
#![warn(missing_docs)]

use landfall_failure::{Classify, Disposition};
use percent_encoding::percent_decode_str;
use serde::Deserialize;

mod version;
pub use version::{ObjectVersion, Version};

/// What one SQS message carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    /// `s3:TestEvent`, sent once when a bucket notification is configured: nothing to do.
    Test {
        /// The bucket the notification was configured on, when it says.
        bucket: Option<String>,
    },
    /// The objects changed.
    Changes(Vec<ObjectChange>),
}

/// Whether an object came or went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// `ObjectCreated:*` — a put, post, copy or completed multipart upload.
    Created,
    /// `ObjectRemoved:*` and lifecycle expirations.
    Removed,
}

/// One changed object, with its key already decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectChange {
    /// Created or removed.
    pub kind: ChangeKind,
    /// S3's event name, e.g. `ObjectCreated:Put`.
    pub event_name: String,
    /// When it happened (ISO 8601).
    pub event_time: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// The key, decoded.
    pub key: String,
    /// The object's size in bytes (not in removals).
    pub size: Option<u64>,
    /// The object's ETag, unquoted (not in removals).
    pub etag: Option<String>,
    /// The version id, on a versioned bucket.
    pub version_id: Option<String>,
    /// Orders the events of one key (S3 User Guide, "Event message structure").
    pub sequencer: Option<String>,
}

impl ObjectChange {
    /// The object version this change is about.
    pub fn version(&self) -> ObjectVersion {
        ObjectVersion {
            bucket: self.bucket.clone(),
            key: self.key.clone(),
            version: Version::from_s3(self.version_id.as_deref(), self.etag.as_deref()),
        }
    }
}

/// Why a message is not an S3 notification landfall can act on.
#[derive(Debug, thiserror::Error)]
pub enum NotificationError {
    /// The body is not JSON.
    #[error("message body is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    /// The body is JSON of another shape.
    #[error("message is not an S3 event notification: {0}")]
    NotS3(String),
    /// An event other than a creation or a removal.
    #[error("unexpected S3 event {name:?} for s3://{bucket}/{key}: only ObjectCreated, ObjectRemoved and LifecycleExpiration events are handled")]
    UnexpectedEvent {
        /// S3's event name.
        name: String,
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
    },
    /// A key whose percent-decoding is not UTF-8.
    #[error("object key {raw:?} does not decode to UTF-8")]
    KeyNotUtf8 {
        /// The key as the notification spells it.
        raw: String,
    },
}

impl Classify for NotificationError {
    /// A malformed message stays malformed: no retry can help.
    fn disposition(&self) -> Disposition {
        Disposition::Permanent
    }
}

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "Records")]
    records: Option<Vec<Record>>,
    #[serde(rename = "Event")]
    event: Option<String>,
    #[serde(rename = "Bucket")]
    bucket: Option<String>,
    // S3 → SNS → SQS wraps the notification in an SNS envelope.
    #[serde(rename = "Type")]
    envelope_type: Option<String>,
    #[serde(rename = "Message")]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    event_source: Option<String>,
    event_name: Option<String>,
    event_time: Option<String>,
    s3: Option<Entity>,
}

#[derive(Deserialize)]
struct Entity {
    bucket: Option<BucketRef>,
    object: Option<ObjectRef>,
}

#[derive(Deserialize)]
struct BucketRef {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ObjectRef {
    key: Option<String>,
    size: Option<u64>,
    e_tag: Option<String>,
    version_id: Option<String>,
    sequencer: Option<String>,
}

/// Parses an SQS message body holding an S3 notification (direct or SNS-wrapped).
pub fn parse(body: &str) -> Result<Notification, NotificationError> {
    let parsed: Body = serde_json::from_str(body).map_err(NotificationError::NotJson)?;
    if parsed.envelope_type.as_deref() == Some("Notification") {
        if let Some(inner) = &parsed.message {
            return parse(inner);
        }
    }
    if parsed.event.as_deref() == Some("s3:TestEvent") {
        return Ok(Notification::Test {
            bucket: parsed.bucket,
        });
    }
    let records = parsed
        .records
        .ok_or_else(|| NotificationError::NotS3("no Records array".into()))?;
    if records.is_empty() {
        return Err(NotificationError::NotS3("empty Records array".into()));
    }
    records
        .into_iter()
        .enumerate()
        .map(|(i, record)| change(i, record))
        .collect::<Result<_, _>>()
        .map(Notification::Changes)
}

fn change(index: usize, record: Record) -> Result<ObjectChange, NotificationError> {
    let missing = |what: &str| NotificationError::NotS3(format!("record {index} has no {what}"));
    match record.event_source.as_deref() {
        Some("aws:s3") => {}
        other => {
            return Err(NotificationError::NotS3(format!(
                "record {index} has eventSource {other:?}, expected \"aws:s3\""
            )))
        }
    }
    let event_name = record.event_name.ok_or_else(|| missing("eventName"))?;
    let entity = record.s3.ok_or_else(|| missing("s3 entity"))?;
    let bucket = entity
        .bucket
        .and_then(|b| b.name)
        .ok_or_else(|| missing("bucket name"))?;
    let object = entity.object.ok_or_else(|| missing("object"))?;
    let key = decode_key(&object.key.ok_or_else(|| missing("object key"))?)?;
    let kind = kind_of(&event_name).ok_or_else(|| NotificationError::UnexpectedEvent {
        name: event_name.clone(),
        bucket: bucket.clone(),
        key: key.clone(),
    })?;
    Ok(ObjectChange {
        kind,
        event_name,
        event_time: record.event_time,
        bucket,
        key,
        size: object.size,
        etag: object.e_tag.map(|t| t.trim_matches('"').to_owned()),
        version_id: object.version_id.filter(|v| !v.is_empty()),
        sequencer: object.sequencer,
    })
}

fn kind_of(event_name: &str) -> Option<ChangeKind> {
    let name = event_name.strip_prefix("s3:").unwrap_or(event_name);
    if name.starts_with("ObjectCreated:") {
        Some(ChangeKind::Created)
    } else if name.starts_with("ObjectRemoved:") || name.starts_with("LifecycleExpiration:") {
        Some(ChangeKind::Removed)
    } else {
        None
    }
}

/// Keys in notifications are URL-encoded with `+` for space (as in a form). Turning `+`
/// into a space first and then percent-decoding is right for AWS (which leaves `/` alone)
/// and for moto (which encodes it as `%2F`); a literal `+` arrives as `%2B`.
pub fn decode_key(raw: &str) -> Result<String, NotificationError> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|_| NotificationError::KeyNotUtf8 {
            raw: raw.to_owned(),
        })
}

#[cfg(test)]
mod tests;
