//! An S3 object body as a plain byte stream, so consumers (LOAD DATA, parsers) need not
//! know the SDK's types. Chunks arrive as the network delivers them: memory stays flat.

use crate::{AwsError, SdkResultExt};
use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use landfall_failure::Classify;
use std::future::Future;

/// Where streamed bytes go, written as they are made so memory holds one part: an S3
/// multipart upload ([`MultipartWriter`]) in the functions, a file in the benchmarks. Every
/// streamed writer of the workspace (reports, converted import parts) is one of these.
pub trait ByteSink: Send {
    /// What a write or finish fails with.
    type Error: std::error::Error + Classify + Send + Sync + 'static;
    /// Appends `bytes` to the output.
    fn write(&mut self, bytes: &[u8]) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Everything written becomes the object (or file).
    fn finish(self) -> impl Future<Output = Result<(), Self::Error>> + Send;
    /// Nothing written is kept.
    fn abort(self) -> impl Future<Output = ()> + Send;
}

impl ByteSink for MultipartWriter {
    type Error = AwsError;

    async fn write(&mut self, bytes: &[u8]) -> Result<(), AwsError> {
        MultipartWriter::write(self, bytes).await
    }

    async fn finish(self) -> Result<(), AwsError> {
        MultipartWriter::finish(self).await
    }

    async fn abort(self) {
        MultipartWriter::abort(self).await
    }
}

/// An S3 body as a stream of byte chunks.
pub fn body_stream(
    body: aws_sdk_s3::primitives::ByteStream,
) -> BoxStream<'static, std::io::Result<Bytes>> {
    stream::unfold(body, |mut body| async move {
        match body.next().await? {
            Ok(chunk) => Some((Ok(chunk), body)),
            Err(err) => Some((Err(std::io::Error::other(err)), body)),
        }
    })
    .boxed()
}

/// Writes an object of unknown length in parts as bytes arrive, so memory holds one part
/// at most. S3 requires every part but the last to be at least 5 MiB. The multipart
/// upload starts only when a first part is full: a small object is one PutObject.
pub struct MultipartWriter {
    s3: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: Option<String>,
    completed: Vec<aws_sdk_s3::types::CompletedPart>,
    buffer: Vec<u8>,
    part_size: usize,
    metadata: Option<std::collections::HashMap<String, String>>,
}

/// S3's smallest part, except the last (S3 API reference, UploadPart).
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

impl MultipartWriter {
    /// Starts a multipart upload of `key`, in parts of at least `part_size` bytes.
    pub async fn start(
        s3: &aws_sdk_s3::Client,
        bucket: &str,
        key: &str,
        part_size: usize,
    ) -> Result<Self, AwsError> {
        Ok(MultipartWriter {
            s3: s3.clone(),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: None,
            completed: Vec::new(),
            buffer: Vec::new(),
            part_size: part_size.max(MIN_PART_SIZE),
            metadata: None,
        })
    }

    /// User metadata (`x-amz-meta-<name>`) the finished object carries.
    pub fn with_metadata(mut self, name: &str, value: &str) -> Self {
        self.metadata
            .get_or_insert_with(Default::default)
            .insert(name.to_owned(), value.to_owned());
        self
    }

    /// Appends `bytes`, uploading a part whenever one is full.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), AwsError> {
        self.buffer.extend_from_slice(bytes);
        if self.buffer.len() >= self.part_size {
            self.flush().await?;
        }
        Ok(())
    }

    async fn upload_id(&mut self) -> Result<String, AwsError> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        let created = self
            .s3
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .set_metadata(self.metadata.clone())
            .send()
            .await
            .or_aws("S3", "CreateMultipartUpload")?;
        let id = created.upload_id().unwrap_or_default().to_owned();
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    async fn flush(&mut self) -> Result<(), AwsError> {
        let upload_id = self.upload_id().await?;
        let number = self.completed.len() as i32 + 1;
        let body = std::mem::take(&mut self.buffer);
        let uploaded = self
            .s3
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(number)
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await
            .or_aws("S3", "UploadPart")?;
        self.completed.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(number)
                .set_e_tag(uploaded.e_tag().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    /// Uploads what is buffered and completes the object.
    pub async fn finish(mut self) -> Result<(), AwsError> {
        let Some(upload_id) = self.upload_id.clone() else {
            self.s3
                .put_object()
                .bucket(&self.bucket)
                .key(&self.key)
                .set_metadata(self.metadata.take())
                .body(aws_sdk_s3::primitives::ByteStream::from(std::mem::take(
                    &mut self.buffer,
                )))
                .send()
                .await
                .or_aws("S3", "PutObject")?;
            return Ok(());
        };
        if !self.buffer.is_empty() {
            self.flush().await?;
        }
        self.s3
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .multipart_upload(
                aws_sdk_s3::types::CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.completed)))
                    .build(),
            )
            .send()
            .await
            .or_aws("S3", "CompleteMultipartUpload")?;
        Ok(())
    }

    /// Gives up: S3 discards the parts uploaded so far.
    pub async fn abort(self) {
        if let Some(upload_id) = &self.upload_id {
            let _ = self
                .s3
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(&self.key)
                .upload_id(upload_id)
                .send()
                .await;
        }
    }
}
