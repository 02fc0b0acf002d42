//! The import record: one small JSON object per (dataset, file version) beside the import's
//! data, saying the file is converted (rows, parts) and which import was started for it.
//! It is what a redelivery resumes from — moto does not deduplicate ImportTable by
//! ClientToken, and AWS does so only for eight hours — and its conditional writes make one
//! delivery of two concurrent ones the one that starts the import.

use landfall_aws::{AwsError, SdkResultExt};
use landfall_landing::ObjectVersion;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportRecord {
    pub source: ObjectVersion,
    /// When the file landed (the notification's event time): a file that landed earlier than
    /// the current table's never replaces it.
    pub landed: String,
    /// The table the import creates.
    pub table: String,
    pub rows: u64,
    pub parts: u32,
    /// Compressed bytes under the import prefix.
    pub bytes: u64,
    /// The delivery that is starting the import, and since when (unix seconds); a claim
    /// that never got an import ARN goes stale and another delivery takes over.
    pub claim: Option<Claim>,
    pub import_arn: Option<String>,
    /// The delivery that switches the pointer to this table, and since when: of two
    /// deliveries that followed the import to its end, one switches.
    pub switch: Option<Claim>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub by: String,
    pub at: i64,
}

/// Where the stored record is and which of its versions was read (its ETag).
pub struct Stored {
    pub record: ImportRecord,
    pub etag: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("import record s3://{bucket}/{key}")]
    Aws {
        bucket: String,
        key: String,
        #[source]
        source: AwsError,
    },
    /// The connection broke while the body streamed.
    #[error("reading import record s3://{bucket}/{key}")]
    Read {
        bucket: String,
        key: String,
        #[source]
        source: aws_sdk_s3::primitives::ByteStreamError,
    },
    #[error("import record s3://{bucket}/{key} is not an import record")]
    Malformed {
        bucket: String,
        key: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The write lost a race: another delivery wrote the record first.
pub struct Conflict;

pub struct Records<'a> {
    pub s3: &'a aws_sdk_s3::Client,
    pub bucket: &'a str,
    pub key: &'a str,
}

impl Records<'_> {
    fn aws(&self, source: AwsError) -> RecordError {
        RecordError::Aws {
            bucket: self.bucket.to_owned(),
            key: self.key.to_owned(),
            source,
        }
    }

    pub async fn load(&self) -> Result<Option<Stored>, RecordError> {
        let got = self
            .s3
            .get_object()
            .bucket(self.bucket)
            .key(self.key)
            .send()
            .await;
        let got = match got {
            Ok(got) => got,
            Err(err) if err.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None)
            }
            Err(err) => return Err(self.aws(AwsError::new("S3", "GetObject", err))),
        };
        let etag = got.e_tag().unwrap_or_default().to_owned();
        let body = got
            .body
            .collect()
            .await
            .map_err(|e| RecordError::Malformed {
                bucket: self.bucket.to_owned(),
                key: self.key.to_owned(),
                source: serde_json::Error::io(std::io::Error::other(e)),
            })?
            .into_bytes();
        let record = serde_json::from_slice(&body).map_err(|source| RecordError::Malformed {
            bucket: self.bucket.to_owned(),
            key: self.key.to_owned(),
            source,
        })?;
        Ok(Some(Stored { record, etag }))
    }

    /// Writes `record` if the stored one is still `expected` (its ETag), or if there is none
    /// when `expected` is None.
    pub async fn store(
        &self,
        record: &ImportRecord,
        expected: Option<&str>,
    ) -> Result<Result<Stored, Conflict>, RecordError> {
        let body = serde_json::to_vec_pretty(record).map_err(|source| RecordError::Malformed {
            bucket: self.bucket.to_owned(),
            key: self.key.to_owned(),
            source,
        })?;
        let mut put = self
            .s3
            .put_object()
            .bucket(self.bucket)
            .key(self.key)
            .content_type("application/json")
            .body(body.into());
        put = match expected {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.send().await.or_aws("S3", "PutObject") {
            Ok(out) => Ok(Ok(Stored {
                record: record.clone(),
                etag: out.e_tag().unwrap_or_default().to_owned(),
            })),
            Err(err)
                if matches!(
                    err.code(),
                    Some("PreconditionFailed" | "ConditionalRequestConflict")
                ) =>
            {
                Ok(Err(Conflict))
            }
            Err(err) => Err(self.aws(err)),
        }
    }
}
