//! Streaming S3 writes against moto: large objects go up in parts, small ones in one put.

use anyhow::Result;
use landfall_aws::s3_stream::{MultipartWriter, MIN_PART_SIZE};
use landfall_tests::LocalStack;

#[tokio::test]
async fn large_and_small_objects_arrive_intact() -> Result<()> {
    let stack = LocalStack::start().await?;
    let s3 = stack.s3();
    let bucket = stack.resource("ReportsBucket");

    // 12 MiB in 64 KiB writes: three parts of at least 5 MiB, the last smaller.
    let chunk: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let mut writer = MultipartWriter::start(&s3, &bucket, "big.bin", MIN_PART_SIZE).await?;
    for _ in 0..192 {
        writer.write(&chunk).await?;
    }
    writer.finish().await?;
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("big.bin")
        .send()
        .await?;
    assert!(
        got.e_tag().unwrap_or_default().contains('-'),
        "a multipart upload: {:?}",
        got.e_tag()
    );
    let bytes = got.body.collect().await?.into_bytes();
    assert_eq!(bytes.len(), 192 * 65_536);
    assert!(bytes.chunks(65_536).all(|c| c == chunk.as_slice()));

    let mut small = MultipartWriter::start(&s3, &bucket, "small.csv", MIN_PART_SIZE).await?;
    small.write(b"a,b\n1,2\n").await?;
    small.finish().await?;
    let got = s3
        .get_object()
        .bucket(&bucket)
        .key("small.csv")
        .send()
        .await?;
    assert_eq!(
        got.body.collect().await?.into_bytes().as_ref(),
        b"a,b\n1,2\n"
    );
    Ok(())
}
