//! What the file pipelines do with a landing object before and after loading it: decide
//! what it is from its key, cut a big file into parts on record boundaries (streamed,
//! under a prefix that does not trigger the pipeline), and archive it once loaded.

use futures::StreamExt;
use landfall_aws::s3_stream::{body_stream, MultipartWriter};
use landfall_aws::{AwsError, SdkResultExt};
use landfall_failure::{Classify, Disposition};
use serde::{Deserialize, Serialize};
use split::{Piece, Splitter};

/// CSV-aware splitting lives with the CSV check (pure, so it can be fuzzed alone).
pub use landfall_csv_check::split;

/// One version of one object.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    /// The version id; on an unversioned bucket `etag:<ETag>`; empty for derived objects
    /// (split parts) that are never overwritten.
    pub version: String,
}

impl ObjectRef {
    /// The S3 version id to read, if the object has one.
    pub fn version_id(&self) -> Option<&str> {
        Some(self.version.as_str()).filter(|v| !v.is_empty() && !v.starts_with("etag:"))
    }

    /// The ETag an object without a version id was read with (its identity then), unquoted.
    pub fn etag(&self) -> Option<&str> {
        self.version.strip_prefix("etag:")
    }

    /// `If-Match` for a request about exactly this object when it has no version id: its
    /// ETag, quoted as S3 gives it.
    fn if_match(&self) -> Option<String> {
        self.etag().map(|etag| format!("\"{etag}\""))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `mysql/<dataset>/<file>.csv`
    Data { dataset: String },
    /// `mysql/init/<file>.sql`
    Init { script: String },
}

#[derive(Debug, thiserror::Error)]
pub enum LandingError {
    #[error("{key}: {reason}")]
    UnknownKey { key: String, reason: String },
    #[error("s3://{bucket}/{key}")]
    S3 {
        bucket: String,
        key: String,
        #[source]
        source: AwsError,
    },
    /// The connection broke while the body streamed.
    #[error("reading s3://{bucket}/{key}")]
    Read {
        bucket: String,
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("archiving {key}: the copy does not match the original ({detail}); the original stays in landing")]
    ArchiveMismatch { key: String, detail: String },
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

/// Reads a key under `prefix/` (e.g. `mysql/`): the CSV of one of the `datasets` the
/// pipeline has configured, or an init script.
pub fn route(prefix: &str, key: &str, datasets: &[&str]) -> Result<Route, LandingError> {
    let unknown = |reason: String| LandingError::UnknownKey {
        key: key.to_owned(),
        reason,
    };
    if let Some(segment) = key
        .split('/')
        .find(|s| s.is_empty() || *s == "." || *s == "..")
    {
        return Err(unknown(format!(
            "the key has a {segment:?} path segment: S3 keeps it literally, but the archive and \
             any tool that treats keys as paths would resolve it to another folder, so such \
             keys are refused; rename the file without empty, '.' or '..' segments"
        )));
    }
    let rest = key
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(|| unknown(format!("not under {prefix}/")))?;
    let (folder, file) = rest.split_once('/').ok_or_else(|| {
        unknown(format!(
            "expected {prefix}/<dataset>/<file>.csv or {prefix}/init/<file>.sql"
        ))
    })?;
    if file.is_empty() || file.contains('/') {
        return Err(unknown(format!(
            "expected {prefix}/<dataset>/<file>.csv or {prefix}/init/<file>.sql"
        )));
    }
    if folder == "init" {
        return if file.ends_with(".sql") {
            Ok(Route::Init {
                script: file.to_owned(),
            })
        } else {
            Err(unknown("init scripts end in .sql".into()))
        };
    }
    if !datasets.contains(&folder) {
        return Err(unknown(format!(
            "no dataset {folder:?} is configured (known: {})",
            datasets.join(", ")
        )));
    }
    if !file.to_ascii_lowercase().ends_with(".csv") {
        return Err(unknown("data files end in .csv".into()));
    }
    Ok(Route::Data {
        dataset: folder.to_owned(),
    })
}

/// The email to operations about a landing file no dataset knows (subject, body): `not_done`
/// says what did not happen to it ("not loaded", "not imported").
pub fn refusal_notice(bucket: &str, key: &str, reason: &str, not_done: &str) -> (String, String) {
    (
        format!("[landfall] REFUSED {key}"),
        format!(
            "File: s3://{bucket}/{key}\nResult: refused by its key, {not_done}; it stays in landing\nReason: {reason}\nThe message is in the dead-letter queue; see the runbook in README.md.\n"
        ),
    )
}

/// The version of `key` a notification is about (`version_id`, or the current one), and
/// its size; None when it is gone (already loaded and archived by an earlier delivery).
pub async fn current_version(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<(ObjectRef, u64)>, LandingError> {
    let head = s3
        .head_object()
        .bucket(bucket)
        .key(key)
        .set_version_id(version_id.map(str::to_owned))
        .send()
        .await;
    match head {
        Ok(out) => {
            let version = out
                .version_id()
                .filter(|v| *v != "null")
                .map(str::to_owned)
                .or_else(|| out.e_tag().map(|t| format!("etag:{}", t.trim_matches('"'))))
                .unwrap_or_default();
            let object = ObjectRef {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
                version,
            };
            Ok(Some((
                object,
                out.content_length().unwrap_or(0).max(0) as u64,
            )))
        }
        Err(err) if err.as_service_error().is_some_and(|e| e.is_not_found()) => Ok(None),
        Err(err) => Err(at(bucket, key)(AwsError::new("S3", "HeadObject", err))),
    }
}

/// The object's body as a byte stream (its exact version when it has one).
pub async fn open(
    s3: &aws_sdk_s3::Client,
    object: &ObjectRef,
) -> Result<futures::stream::BoxStream<'static, std::io::Result<bytes::Bytes>>, LandingError> {
    let got = s3
        .get_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id().map(str::to_owned))
        .send()
        .await
        .or_aws("S3", "GetObject")
        .map_err(at(&object.bucket, &object.key))?;
    Ok(body_stream(got.body))
}

/// One part of a split file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Part {
    pub object: ObjectRef,
    /// The line of the whole file its first data record is on, so that errors name it.
    pub first_line: u64,
}

/// Streams `object` into parts of about `part_bytes` under `parts/<batch>/`, each with the
/// header; returns the parts in order. Memory: one multipart buffer.
pub async fn split_into_parts(
    s3: &aws_sdk_s3::Client,
    object: &ObjectRef,
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
            object: ObjectRef {
                bucket: object.bucket.clone(),
                key,
                version: String::new(),
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
    object: &ObjectRef,
    archive_bucket: &str,
    folder: &str,
) -> Result<String, LandingError> {
    let today = time::OffsetDateTime::now_utc().date();
    let archived = ObjectRef {
        bucket: archive_bucket.to_owned(),
        key: archive_key(
            folder,
            &object.key,
            (today.year(), today.month() as u32, today.day() as u32),
        ),
        version: String::new(),
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
    object: &ObjectRef,
) -> bool {
    use sha2::{Digest, Sha256};
    let origin = format!("{}/{}#{}", object.bucket, object.key, object.version);
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
    pub single_copy_bytes: u64,
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
    object: &ObjectRef,
    archive: &ObjectRef,
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
    object: &ObjectRef,
    archive: &ObjectRef,
    limits: CopyLimits,
) -> Result<(), LandingError> {
    // A crash after the copy and before the delete leaves the file in landing; its
    // redelivery finds its copy here (by the source version it records) and does not archive
    // it a second time (the soak found the second copy).
    let origin = format!("{}/{}#{}", object.bucket, object.key, object.version);
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
        .set_version_id(object.version_id().map(str::to_owned))
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
    // Versioned: exactly the version archived. Unversioned (or versioning suspended: every
    // upload is version "null"), only while the key still holds the bytes archived — a file
    // uploaded over it since is another file, with a notification of its own (S3 User Guide,
    // "conditional deletes": If-Match with the ETag, which needs s3:DeleteObject and
    // s3:GetObject).
    let deleted = s3
        .delete_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .set_version_id(object.version_id().map(str::to_owned))
        .set_if_match(object.if_match())
        .send()
        .await
        .or_aws("S3", "DeleteObject")
        .map_err(at(&object.bucket, &object.key));
    match deleted {
        Err(err) if object.etag().is_some() && source_gone(&err) => {
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
async fn archive_records(s3: &aws_sdk_s3::Client, archive: &ObjectRef, origin: &str) -> bool {
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
    object: &ObjectRef,
    archive: &ObjectRef,
    source: &aws_sdk_s3::operation::head_object::HeadObjectOutput,
    origin: &str,
    limits: CopyLimits,
) -> Result<(), LandingError> {
    let mut metadata = source.metadata().cloned().unwrap_or_default();
    metadata.insert(ARCHIVED_FROM.to_owned(), origin.to_owned());
    let copy_source = match object.version_id() {
        Some(version) => format!(
            "{}/{}?versionId={version}",
            object.bucket,
            encode_key(&object.key)
        ),
        None => format!("{}/{}", object.bucket, encode_key(&object.key)),
    };
    // Unversioned, the key may be overwritten between our HeadObject and the copy: copy
    // only the bytes we read.
    let if_match = match object.version_id() {
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
    archive: &ObjectRef,
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

    const DATASETS: &[&str] = &["price_index"];

    #[test]
    fn routes_data_files_and_init_scripts() {
        let d = DATASETS;
        assert_eq!(
            route("mysql", "mysql/price_index/2024 01.CSV", d).unwrap(),
            Route::Data {
                dataset: "price_index".into()
            }
        );
        assert_eq!(
            route("mysql", "mysql/init/001_schema.sql", d).unwrap(),
            Route::Init {
                script: "001_schema.sql".into()
            }
        );
        for (key, reason) in [
            ("mysql/unknown/x.csv", "no dataset \"unknown\""),
            ("mysql/price_index/x.txt", "end in .csv"),
            ("mysql/price_index/sub/x.csv", "expected mysql/<dataset>"),
            ("mysql/x.csv", "expected mysql/<dataset>"),
            ("mysql/init/x.csv", "end in .sql"),
            ("dynamodb/price_index/x.csv", "not under mysql/"),
            ("mysql/price_index/../init/x.sql", "a \"..\" path segment"),
            ("mysql/./price_index/x.csv", "a \".\" path segment"),
            ("mysql//price_index/x.csv", "a \"\" path segment"),
        ] {
            let err = route("mysql", key, d).unwrap_err().to_string();
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
        let object = ObjectRef {
            bucket: "landing".into(),
            key: "mysql/price_index/f.csv".into(),
            version: "v1".into(),
        };
        let archived = ObjectRef {
            bucket: "archive".into(),
            key: "price_index/2026/12/04/f.csv".into(),
            version: String::new(),
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
