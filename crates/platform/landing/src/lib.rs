//! What the file pipelines do with a landing object before and after loading it: decide
//! what it is from its key, cut a big file into parts on record boundaries (streamed,
//! under a prefix that does not trigger the pipeline), and archive it once loaded.
#![warn(missing_docs)]

use futures::StreamExt;
use landfall_aws::s3_stream::{body_stream, MultipartWriter};
use landfall_aws::{AwsError, SdkResultExt};
use landfall_failure::{Classify, Disposition};
use serde::{Deserialize, Serialize};
use split::{Piece, Splitter};

/// CSV-aware splitting lives with the CSV check (pure, so it can be fuzzed alone).
pub use landfall_csv_check::split;

pub mod flow;

/// A landing object is known by its version, spelled in one place.
pub use landfall_s3_events::{ObjectVersion, Version};

/// Why a landing file could not be read, routed or archived.
#[derive(Debug, thiserror::Error)]
pub enum LandingError {
    /// A key the pipeline refuses.
    #[error("{key}: {reason}")]
    UnknownKey {
        /// The landing key.
        key: String,
        /// Why no dataset takes it.
        reason: String,
    },
    /// An S3 call about an object failed.
    #[error("s3://{bucket}/{key}")]
    S3 {
        /// The object's bucket.
        bucket: String,
        /// The object's key.
        key: String,
        /// The S3 error.
        #[source]
        source: AwsError,
    },
    /// The connection broke while the body streamed.
    #[error("reading s3://{bucket}/{key}")]
    Read {
        /// The object's bucket.
        bucket: String,
        /// The object's key.
        key: String,
        /// The broken read.
        #[source]
        source: std::io::Error,
    },
    /// The archive copy does not match the landing file.
    #[error("archiving {key}: the copy does not match the original ({detail}); the original stays in landing")]
    ArchiveMismatch {
        /// The landing key.
        key: String,
        /// How the copy differs.
        detail: String,
    },
}

impl Classify for LandingError {
    fn disposition(&self) -> Disposition {
        match self {
            LandingError::S3 { source, .. } => source.disposition(),
            LandingError::Read { .. } => Disposition::Retryable,
            LandingError::UnknownKey { .. } => Disposition::Permanent,
            // S3 copies are consistent: a mismatch is worth one more look.
            LandingError::ArchiveMismatch { .. } => Disposition::Retryable,
        }
    }
}

/// Names the object a failed S3 call was about.
fn at<'a>(bucket: &'a str, key: &'a str) -> impl FnOnce(AwsError) -> LandingError + 'a {
    move |source| LandingError::S3 {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        source,
    }
}

impl LandingError {
    /// A key the pipeline refuses, and why.
    pub fn unknown_key(key: &str, reason: impl Into<String>) -> LandingError {
        LandingError::UnknownKey {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }
}

/// A landing key `<prefix>/<folder>/<file>`, in its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LandingKey<'k> {
    /// The whole key.
    pub key: &'k str,
    /// The folder under the prefix (a dataset's name, or another kind of file).
    pub folder: &'k str,
    /// The file's name.
    pub file: &'k str,
}

impl<'k> LandingKey<'k> {
    /// Reads `key` as `<prefix>/<folder>/<file>`; `shapes` names the keys the pipeline takes,
    /// for the refusal (e.g. `mysql/<dataset>/<file>.csv`).
    pub fn parse(prefix: &str, key: &'k str, shapes: &str) -> Result<LandingKey<'k>, LandingError> {
        if let Some(segment) = key
            .split('/')
            .find(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return Err(LandingError::unknown_key(
                key,
                format!(
                    "the key has a {segment:?} path segment: S3 keeps it literally, but the \
                     archive and any tool that treats keys as paths would resolve it to another \
                     folder, so such keys are refused; rename the file without empty, '.' or \
                     '..' segments"
                ),
            ));
        }
        let rest = key
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| LandingError::unknown_key(key, format!("not under {prefix}/")))?;
        match rest.split_once('/') {
            Some((folder, file)) if !file.is_empty() && !file.contains('/') => {
                Ok(LandingKey { key, folder, file })
            }
            _ => Err(LandingError::unknown_key(key, format!("expected {shapes}"))),
        }
    }

    /// The dataset a data file `<prefix>/<dataset>/<file>.csv` belongs to, one of the
    /// `datasets` the pipeline has configured.
    pub fn dataset(&self, datasets: &[&str]) -> Result<String, LandingError> {
        if !datasets.contains(&self.folder) {
            return Err(LandingError::unknown_key(
                self.key,
                format!(
                    "no dataset {:?} is configured (known: {})",
                    self.folder,
                    datasets.join(", ")
                ),
            ));
        }
        if !self.file.to_ascii_lowercase().ends_with(".csv") {
            return Err(LandingError::unknown_key(
                self.key,
                "data files end in .csv",
            ));
        }
        Ok(self.folder.to_owned())
    }
}

/// What a key holds now, against the version a notification named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Current {
    /// The named version, still the key's current one (named by its version id when the
    /// bucket gives one, even where the notification named it by ETag), and its size.
    This {
        /// The version, named by its version id when it has one.
        object: ObjectVersion,
        /// Its size in bytes.
        size: u64,
    },
    /// Another version has been uploaded over it.
    Newer {
        /// The newer version.
        object: ObjectVersion,
        /// Its size in bytes.
        size: u64,
    },
    /// The key holds nothing (deleted, or already archived by an earlier delivery).
    Gone,
}

/// Where `named`'s key stands now: this version, a newer one, or gone. A notification names
/// a version by its id, or — where it carries none, as moto's do — by ETag; either matches.
pub async fn current(
    s3: &aws_sdk_s3::Client,
    named: &ObjectVersion,
) -> Result<Current, LandingError> {
    let Some((object, size, etag)) = head(s3, &named.bucket, &named.key, None).await? else {
        return Ok(Current::Gone);
    };
    let same = object.version == named.version || named.version.etag() == Some(etag.as_str());
    Ok(if same {
        Current::This { object, size }
    } else {
        Current::Newer { object, size }
    })
}

/// The version a file pipeline loads for a notification, and its size: the named version
/// while it is there, where the bucket is versioned; else whatever the key holds, the only
/// version S3 can read. None when it is gone (already loaded and archived).
pub async fn to_load(
    s3: &aws_sdk_s3::Client,
    named: &ObjectVersion,
) -> Result<Option<(ObjectVersion, u64)>, LandingError> {
    Ok(match named.version.id() {
        Some(id) => head(s3, &named.bucket, &named.key, Some(id))
            .await?
            .map(|(object, size, _)| (object, size)),
        None => match current(s3, named).await? {
            Current::This { object, size } | Current::Newer { object, size } => {
                Some((object, size))
            }
            Current::Gone => None,
        },
    })
}

/// HeadObject of `key` (the exact `version_id`, or the current object): its version, size
/// and unquoted ETag; None when S3 says there is no such object or version.
async fn head(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<(ObjectVersion, u64, String)>, LandingError> {
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await;
    match head {
        Ok(out) => {
            let object = ObjectVersion {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version: Version::from_s3(out.version_id(), out.e_tag()),
            };
            let etag = out.e_tag().unwrap_or_default().trim_matches('"').to_owned();
            Ok(Some((
                object,
                out.content_length().unwrap_or(0).max(0) as u64,
                etag,
            )))
        }
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
        Err(err) => Err(at(bucket, key)(AwsError::new("S3", "HeadObject", err))),
    }
}

/// The object's body as a byte stream (its exact version when it has one).
pub async fn open(
    s3: &aws_sdk_s3::Client,
    object: &ObjectVersion,
) -> Result<futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>, LandingError> {
    let got = s3
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version.id().map(str::to_owned))
        .send()
        .await
        .or_aws("S3", "GetObject")
        .map_err(at(&object.bucket, &object.key))?;
    Ok(body_stream(got.body))
}

/// One part of a split file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Part {
    /// The part, an object landfall wrote.
    pub object: ObjectVersion,
    /// The line of the whole file its first data record is on, so that errors name it.
    pub first_line: u64,
}

/// Streams `object` into parts of about `part_bytes` under `parts/<batch>/`, each with the
/// header; returns the parts in order. Memory: one multipart buffer.
pub async fn split_into_parts(
    s3: &aws_sdk_s3::Client,
    object: &ObjectVersion,
    batch: &str,
    quote: u8,
    has_header: bool,
    part_bytes: u64,
) -> Result<Vec<Part>, LandingError> {
    let mut body = open(s3, object).await?;
    let mut splitter = Splitter::new(quote, has_header, part_bytes);
    let part_key = |index: usize| format!("parts/{batch}/{index:05}.csv");
    let mut parts = vec![part_key(0)];
    let mut first_lines = vec![];
    let mut writer = start(s3, &object.bucket, &parts[0]).await?;
    let mut part_has_data = false;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|source| LandingError::Read {
            bucket: object.bucket.clone(),
            key: object.key.clone(),
            source,
        })?;
        for piece in splitter.feed(&chunk) {
            match piece {
                Piece::Data(bytes) => {
                    part_has_data = true;
                    write(&mut writer, &object.bucket, &parts, bytes).await?;
                }
                Piece::NextPart { first_line } => {
                    if first_lines.is_empty() {
                        first_lines.push(splitter.first_data_line());
                    }
                    first_lines.push(first_line);
                    finish(writer, &object.bucket, &parts).await?;
                    parts.push(part_key(parts.len()));
                    writer = start(s3, &object.bucket, parts.last().expect("pushed")).await?;
                    let header = splitter.header().to_vec();
                    write(&mut writer, &object.bucket, &parts, &header).await?;
                    part_has_data = false;
                }
            }
        }
    }
    if part_has_data || parts.len() == 1 {
        finish(writer, &object.bucket, &parts).await?;
    } else {
        // The file ended right at a boundary: the last part would hold only the header.
        writer.abort().await;
        parts.pop();
    }
    if first_lines.is_empty() {
        first_lines.push(splitter.first_data_line());
    }
    tracing::info!(key = object.key, parts = parts.len(), "split into parts");
    Ok(parts
        .into_iter()
        .zip(first_lines)
        .map(|(key, first_line)| Part {
            object: ObjectVersion {
                bucket: object.bucket.clone(),
                key,
                version: Version::Derived,
            },
            first_line,
        })
        .collect())
}

async fn start(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<MultipartWriter, LandingError> {
    MultipartWriter::start(s3, bucket, key, 8 * 1024 * 1024)
        .await
        .map_err(at(bucket, key))
}

async fn write(
    writer: &mut MultipartWriter,
    bucket: &str,
    parts: &[String],
    bytes: &[u8],
) -> Result<(), LandingError> {
    writer
        .write(bytes)
        .await
        .map_err(at(bucket, parts.last().expect("a part")))
}

async fn finish(
    writer: MultipartWriter,
    bucket: &str,
    parts: &[String],
) -> Result<(), LandingError> {
    writer
        .finish()
        .await
        .map_err(at(bucket, parts.last().expect("a part")))
}

/// `<dataset>/<yyyy>/<mm>/<dd>/<file>`, partitioned by the day the file was loaded.
pub fn archive_key(dataset: &str, key: &str, (year, month, day): (i32, u32, u32)) -> String {
    let file = key.rsplit('/').next().unwrap_or(key);
    format!("{dataset}/{year:04}/{month:02}/{day:02}/{file}")
}

/// Backs `object` up under `<folder>/<today>/` in `archive_bucket` (see [`archive`]);
/// gives the archive location as `s3://bucket/key`.
pub async fn archive_today(
    s3: &aws_sdk_s3::Client,
    object: &ObjectVersion,
    archive_bucket: &str,
    folder: &str,
) -> Result<String, LandingError> {
    let today = time::OffsetDateTime::now_utc().date();
    let archived = ObjectVersion {
        bucket: archive_bucket.to_owned(),
        key: archive_key(
            folder,
            &object.key,
            (today.year(), today.month() as u32, today.day() as u32),
        ),
        version: Version::Derived,
    };
    archive(s3, object, &archived).await?;
    Ok(format!("s3://{}/{}", archived.bucket, archived.key))
}

/// Whether this delivery is the first to tell the people in charge about `object` (the
/// version it loaded): S3 and SQS deliver at least once, sometimes twice at the same time,
/// and both deliveries end well — one email, not two. The claim is an empty object under
/// `notices/<folder>/` in the archive bucket, written with `If-None-Match: *`, which S3 lets
/// one writer win (S3 User Guide, "conditional writes": 412 to a later writer, 409 to a
/// concurrent one). If the claim itself fails, the answer is yes: twice beats never.
pub async fn first_notice(
    s3: &aws_sdk_s3::Client,
    archive_bucket: &str,
    folder: &str,
    object: &ObjectVersion,
) -> bool {
    use sha2::{Digest, Sha256};
    let origin = object.to_string();
    let key = format!("notices/{folder}/{}", hex::encode(Sha256::digest(&origin)));
    let claimed = s3
        .put_object()
        .bucket(archive_bucket)
        .key(&key)
        .if_none_match("*")
        .send()
        .await
        .or_aws("S3", "PutObject");
    match claimed {
        Ok(_) => true,
        Err(err)
            if matches!(
                err.code(),
                Some("PreconditionFailed" | "ConditionalRequestConflict")
            ) =>
        {
            tracing::info!(
                key = object.key,
                "another delivery of this file tells the people in charge"
            );
            false
        }
        Err(err) => {
            tracing::warn!(key = object.key, error = %err, "could not claim the notice; sending it anyway");
            true
        }
    }
}

/// CopyObject copies at most 5 GB in one request; a bigger source is copied in parts with
/// UploadPartCopy (S3 API reference, CopyObject and UploadPartCopy).
pub const COPY_OBJECT_LIMIT: u64 = 5 * 1024 * 1024 * 1024;

/// How an archive copy is made: one CopyObject up to `single_copy_bytes`, else UploadPartCopy
/// in parts of `part_bytes` (S3 allows 10,000 parts, each 5 MiB to 5 GiB).
#[derive(Debug, Clone, Copy)]
pub struct CopyLimits {
    /// Sources up to this size are copied by one CopyObject.
    pub single_copy_bytes: u64,
    /// The size of each UploadPartCopy range above it.
    pub part_bytes: u64,
}

impl Default for CopyLimits {
    fn default() -> Self {
        CopyLimits {
            single_copy_bytes: COPY_OBJECT_LIMIT,
            part_bytes: 512 * 1024 * 1024,
        }
    }
}

/// Copies `object` to `archive`, checks the copy, then deletes the landing version. A crash
/// in between leaves the file in landing, to be archived again.
pub async fn archive(
    s3: &aws_sdk_s3::Client,
    object: &ObjectVersion,
    archive: &ObjectVersion,
) -> Result<(), LandingError> {
    archive_with(s3, object, archive, CopyLimits::default()).await
}

/// [`archive`] with explicit copy limits (tests use small ones to copy in parts).
///
/// The check is by content, never by ETag: a multipart upload's ETag is not an MD5 (the AWS
/// CLI uploads in parts from 8 MB, the console from 16 MB) and a copy's is, so the two never
/// match (S3 API reference, Object: ETag). S3 copies server-side from the exact source
/// version (or, unversioned, only while the source still has the ETag we read), so a copy
/// that records that source in `ARCHIVED_FROM` and has its size holds its bytes.
pub async fn archive_with(
    s3: &aws_sdk_s3::Client,
    object: &ObjectVersion,
    archive: &ObjectVersion,
    limits: CopyLimits,
) -> Result<(), LandingError> {
    // A crash after the copy and before the delete leaves the file in landing; its
    // redelivery finds its copy here (by the source version it records) and does not archive
    // it a second time (the soak found the second copy).
    let origin = object.to_string();
    let recorded = |head: &aws_sdk_s3::operation::head_object::HeadObjectOutput| {
        head.metadata()
            .and_then(|m| m.get(ARCHIVED_FROM))
            .is_some_and(|from| *from == origin)
    };
    let archived = s3
        .head_object()
        .bucket(&archive.bucket)
        .key(&archive.key)
        .send()
        .await;
    let source = match s3
        .head_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version.id().map(str::to_owned))
        .set_if_match(object.if_match())
        .send()
        .await
    {
        Ok(source) => source,
        // Two deliveries of one notification at once: the other one archived and deleted
        // this version between our load and our archive. Its copy says so; that is done.
        // Unversioned, the key may hold a newer upload instead (412 to If-Match): ours is
        // archived, and the newer one is a file of its own.
        Err(err)
            if (err.as_service_error().is_some_and(|e| e.is_not_found())
                || err
                    .raw_response()
                    .is_some_and(|r| r.status().as_u16() == 412))
                && archived.as_ref().is_ok_and(recorded) =>
        {
            tracing::info!(key = object.key, "already archived by another delivery");
            return Ok(());
        }
        Err(err) => {
            return Err(at(&object.bucket, &object.key)(AwsError::new(
                "S3",
                "HeadObject",
                err,
            )))
        }
    };
    if !archived.as_ref().is_ok_and(recorded) {
        if let Err(err) = copy_recording(s3, object, archive, &source, &origin, limits).await {
            // The same race a step later: the other delivery copied and deleted this version
            // between our HeadObject and our copy, whose source is now gone.
            if source_gone(&err) && archive_records(s3, archive, &origin).await {
                tracing::info!(key = object.key, "already archived by another delivery");
                return Ok(());
            }
            return Err(err);
        }
    }
    let copy = s3
        .head_object()
        .bucket(&archive.bucket)
        .key(&archive.key)
        .send()
        .await
        .or_aws("S3", "HeadObject")
        .map_err(at(&archive.bucket, &archive.key))?;
    if copy.content_length() != source.content_length() || !recorded(&copy) {
        return Err(LandingError::ArchiveMismatch {
            key: object.key.clone(),
            detail: format!(
                "size {:?} vs {:?}, copied from {:?}, expected {origin}",
                copy.content_length(),
                source.content_length(),
                copy.metadata().and_then(|m| m.get(ARCHIVED_FROM)),
            ),
        });
    }
    // Versioned: exactly the version archived. Unversioned (or versioning suspended), only while the key still holds the bytes archived — a file
    // uploaded over it since is another file, with a notification of its own (S3 User Guide,
    // "conditional deletes": If-Match with the ETag, which needs s3:DeleteObject and
    // s3:GetObject).
    let deleted = s3
        .delete_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version.id().map(str::to_owned))
        .set_if_match(object.if_match())
        .send()
        .await
        .or_aws("S3", "DeleteObject")
        .map_err(at(&object.bucket, &object.key));
    match deleted {
        Err(err) if object.version.etag().is_some() && source_gone(&err) => {
            tracing::info!(
                key = object.key,
                "archived; the key holds a newer upload now, left for its own notification"
            );
            Ok(())
        }
        other => other.map(drop),
    }
}

/// A copy refused because its source version is no longer there (deleted, or, unversioned,
/// replaced: the `x-amz-copy-source-if-match` precondition).
fn source_gone(err: &LandingError) -> bool {
    matches!(err, LandingError::S3 { source, .. }
        if matches!(source.code(), Some("NoSuchVersion" | "NoSuchKey" | "PreconditionFailed")))
}

/// Whether the archive holds a copy recording `origin` as its source.
async fn archive_records(s3: &aws_sdk_s3::Client, archive: &ObjectVersion, origin: &str) -> bool {
    s3.head_object()
        .bucket(&archive.bucket)
        .key(&archive.key)
        .send()
        .await
        .is_ok_and(|head| {
            head.metadata()
                .and_then(|m| m.get(ARCHIVED_FROM))
                .is_some_and(|from| from == origin)
        })
}

/// User metadata of an archive copy: `bucket/key#version` of the landing file it copies.
pub const ARCHIVED_FROM: &str = "landfall-archived-from";

/// The copy of `object` with the source's content type and metadata, plus `ARCHIVED_FROM`:
/// one CopyObject, or UploadPartCopy in parts above `limits.single_copy_bytes`.
async fn copy_recording(
    s3: &aws_sdk_s3::Client,
    object: &ObjectVersion,
    archive: &ObjectVersion,
    source: &aws_sdk_s3::operation::head_object::HeadObjectOutput,
    origin: &str,
    limits: CopyLimits,
) -> Result<(), LandingError> {
    let mut metadata = source.metadata().cloned().unwrap_or_default();
    metadata.insert(ARCHIVED_FROM.to_owned(), origin.to_owned());
    let copy_source = match object.version.id() {
        Some(version) => format!(
            "{}/{}?versionId={version}",
            object.bucket,
            encode_key(&object.key)
        ),
        None => format!("{}/{}", object.bucket, encode_key(&object.key)),
    };
    // Unversioned, the key may be overwritten between our HeadObject and the copy: copy
    // only the bytes we read.
    let if_match = match object.version.id() {
        Some(_) => None,
        None => source.e_tag().map(str::to_owned),
    };
    let size = source.content_length().unwrap_or(0).max(0) as u64;
    if size <= limits.single_copy_bytes {
        s3.copy_object()
            .bucket(&archive.bucket)
            .key(&archive.key)
            .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
            .set_metadata(Some(metadata))
            .set_content_type(source.content_type().map(str::to_owned))
            .copy_source(copy_source)
            .set_copy_source_if_match(if_match)
            .send()
            .await
            .or_aws("S3", "CopyObject")
            .map_err(at(&archive.bucket, &archive.key))?;
        return Ok(());
    }
    let upload = s3
        .create_multipart_upload()
        .bucket(&archive.bucket)
        .key(&archive.key)
        .set_metadata(Some(metadata))
        .set_content_type(source.content_type().map(str::to_owned))
        .send()
        .await
        .or_aws("S3", "CreateMultipartUpload")
        .map_err(at(&archive.bucket, &archive.key))?;
    let upload_id = upload.upload_id().unwrap_or_default().to_owned();
    let copied = copy_parts(
        s3,
        archive,
        &upload_id,
        &copy_source,
        if_match.as_deref(),
        size,
        limits.part_bytes,
    )
    .await;
    let completed = match copied {
        Ok(parts) => s3
            .complete_multipart_upload()
            .bucket(&archive.bucket)
            .key(&archive.key)
            .upload_id(&upload_id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .or_aws("S3", "CompleteMultipartUpload")
            .map(drop),
        Err(err) => Err(err),
    };
    if let Err(err) = completed {
        // An upload left open is billed until a lifecycle rule aborts it.
        let _ = s3
            .abort_multipart_upload()
            .bucket(&archive.bucket)
            .key(&archive.key)
            .upload_id(&upload_id)
            .send()
            .await;
        return Err(at(&archive.bucket, &archive.key)(err));
    }
    Ok(())
}

/// UploadPartCopy of `size` bytes in ranges of `part_bytes` (raised so that at most 10,000
/// parts are needed), four at a time.
async fn copy_parts(
    s3: &aws_sdk_s3::Client,
    archive: &ObjectVersion,
    upload_id: &str,
    copy_source: &str,
    if_match: Option<&str>,
    size: u64,
    part_bytes: u64,
) -> Result<Vec<aws_sdk_s3::types::CompletedPart>, AwsError> {
    let part_bytes = part_bytes.max(size.div_ceil(10_000)).max(1);
    let ranges: Vec<(i32, u64, u64)> = (0..size.div_ceil(part_bytes))
        .map(|index| {
            let start = index * part_bytes;
            (index as i32 + 1, start, (start + part_bytes).min(size) - 1)
        })
        .collect();
    let mut parts: Vec<_> = futures::stream::iter(ranges)
        .map(|(number, first, last)| async move {
            let out = s3
                .upload_part_copy()
                .bucket(&archive.bucket)
                .key(&archive.key)
                .upload_id(upload_id)
                .part_number(number)
                .copy_source(copy_source)
                .copy_source_range(format!("bytes={first}-{last}"))
                .set_copy_source_if_match(if_match.map(str::to_owned))
                .send()
                .await
                .or_aws("S3", "UploadPartCopy")?;
            Ok::<_, AwsError>(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(
                        out.copy_part_result()
                            .and_then(|r| r.e_tag())
                            .map(str::to_owned),
                    )
                    .build(),
            )
        })
        .buffer_unordered(4)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    parts.sort_by_key(|part| part.part_number());
    Ok(parts)
}

/// CopySource is `bucket/key` URL-encoded, `/` kept.
fn encode_key(key: &str) -> String {
    key.split('/')
        .map(|segment| {
            segment
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        (b as char).to_string()
                    }
                    other => format!("%{other:02X}"),
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_file_is_a_csv_of_a_configured_dataset_under_the_prefix() {
        let dataset = |key| {
            LandingKey::parse("mysql", key, "mysql/<dataset>/<file>.csv")
                .and_then(|k| k.dataset(&["price_index"]))
        };
        assert_eq!(
            dataset("mysql/price_index/2024 01.CSV").unwrap(),
            "price_index"
        );
        for (key, reason) in [
            ("mysql/unknown/x.csv", "no dataset \"unknown\""),
            ("mysql/price_index/x.txt", "end in .csv"),
            ("mysql/price_index/sub/x.csv", "expected mysql/<dataset>"),
            ("mysql/x.csv", "expected mysql/<dataset>"),
            ("dynamodb/price_index/x.csv", "not under mysql/"),
            ("mysql/price_index/../init/x.sql", "a \"..\" path segment"),
            ("mysql/./price_index/x.csv", "a \".\" path segment"),
            ("mysql//price_index/x.csv", "a \"\" path segment"),
        ] {
            let err = dataset(key).unwrap_err().to_string();
            assert!(err.contains(reason) && err.contains(key), "{key}: {err}");
        }
    }

    // Two deliveries at once, the other one copying and deleting the landing version between
    // this one's HeadObject and its CopyObject: a window moto cannot be made to hit on
    // purpose, so S3 is mocked here (the end-to-end tests deliver twice at once for real).
    #[tokio::test]
    async fn a_copy_whose_source_another_delivery_just_archived_is_done() {
        use aws_sdk_s3::operation::copy_object::CopyObjectError;
        use aws_sdk_s3::operation::head_object::{HeadObjectError, HeadObjectOutput};
        use aws_smithy_mocks::{mock, mock_client, RuleMode};
        let origin = "landing/mysql/price_index/f.csv#v1";
        let not_there =
            || HeadObjectError::NotFound(aws_sdk_s3::types::error::NotFound::builder().build());
        let archive_head = mock!(aws_sdk_s3::Client::head_object)
            .match_requests(|r| r.bucket() == Some("archive"))
            .sequence()
            .error(not_there)
            .output(move || {
                HeadObjectOutput::builder()
                    .content_length(10)
                    .metadata(ARCHIVED_FROM, origin)
                    .build()
            })
            .build();
        let landing_head = mock!(aws_sdk_s3::Client::head_object)
            .match_requests(|r| r.bucket() == Some("landing"))
            .then_output(|| HeadObjectOutput::builder().content_length(10).build());
        let copy = mock!(aws_sdk_s3::Client::copy_object).then_error(|| {
            CopyObjectError::generic(
                aws_sdk_s3::error::ErrorMetadata::builder()
                    .code("NoSuchVersion")
                    .message("The specified version does not exist.")
                    .build(),
            )
        });
        let delete = mock!(aws_sdk_s3::Client::delete_object).then_output(|| {
            aws_sdk_s3::operation::delete_object::DeleteObjectOutput::builder().build()
        });
        let s3 = mock_client!(
            aws_sdk_s3,
            RuleMode::MatchAny,
            [&archive_head, &landing_head, &copy, &delete]
        );
        let object = ObjectVersion {
            bucket: "landing".into(),
            key: "mysql/price_index/f.csv".into(),
            version: Version::Id("v1".into()),
        };
        let archived = ObjectVersion {
            bucket: "archive".into(),
            key: "price_index/2026/12/04/f.csv".into(),
            version: Version::Derived,
        };
        archive(&s3, &object, &archived).await.unwrap();
        assert_eq!(copy.num_calls(), 1);
        assert_eq!(delete.num_calls(), 0, "the other delivery deletes it");

        // The source gone and no copy of it: still an error.
        let archive_head = mock!(aws_sdk_s3::Client::head_object)
            .match_requests(|r| r.bucket() == Some("archive"))
            .then_error(not_there);
        let s3 = mock_client!(
            aws_sdk_s3,
            RuleMode::MatchAny,
            [&archive_head, &landing_head, &copy, &delete]
        );
        let err = archive(&s3, &object, &archived).await.unwrap_err();
        assert!(format!("{err:?}").contains("NoSuchVersion"), "{err:?}");
    }

    #[test]
    fn archive_keys_are_partitioned_by_day() {
        assert_eq!(
            archive_key("price_index", "mysql/price_index/f.csv", (2026, 1, 5)),
            "price_index/2026/01/05/f.csv"
        );
    }

    #[test]
    fn copy_source_keys_are_encoded() {
        assert_eq!(
            encode_key("mysql/price index/café+1.csv"),
            "mysql/price%20index/caf%C3%A9%2B1.csv"
        );
    }
}
