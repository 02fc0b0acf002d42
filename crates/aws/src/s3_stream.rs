//! An S3 object body as a plain byte stream, so consumers (LOAD DATA, parsers) need not
//! know the SDK's types. Chunks arrive as the network delivers them: memory stays flat.

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};

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
