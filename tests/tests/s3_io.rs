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

/// Found by the soak: an archiver killed after its copy and before deleting the landing file
/// archived the file again on the redelivery (two versions of one archive key). The copy now
/// records the landing version it came from, and the redelivery only deletes.
#[tokio::test]
async fn a_file_archived_before_a_crash_is_not_archived_again() -> Result<()> {
    use landfall_landing::{archive, ObjectRef, ARCHIVED_FROM};
    let stack = LocalStack::start().await?;
    let s3 = stack.s3();
    let (landing, archive_bucket) = (
        stack.resource("LandingBucket"),
        stack.resource("ArchiveBucket"),
    );
    let key = "mysql/price_index/crash.csv";
    let version = stack
        .put("LandingBucket", key, b"a,b\n1,2\n".to_vec())
        .await?;
    let object = ObjectRef {
        bucket: landing.clone(),
        key: key.to_owned(),
        version: version.clone(),
    };
    let target = ObjectRef {
        bucket: archive_bucket.clone(),
        key: "price_index/2026/12/03/crash.csv".to_owned(),
        version: String::new(),
    };
    // What the crashed attempt left: its copy, recording where it came from.
    s3.copy_object()
        .bucket(&archive_bucket)
        .key(&target.key)
        .copy_source(format!("{landing}/{key}?versionId={version}"))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .metadata(ARCHIVED_FROM, format!("{landing}/{key}#{version}"))
        .send()
        .await?;
    archive(&s3, &object, &target).await?;
    let versions = s3
        .list_object_versions()
        .bucket(&archive_bucket)
        .send()
        .await?;
    assert_eq!(versions.versions().len(), 1, "archived once: {versions:?}");
    assert!(
        stack.keys(&landing, "mysql/").await?.is_empty(),
        "gone from landing"
    );

    // A different version of the same key is its own file: archived beside it.
    let second = stack
        .put("LandingBucket", key, b"a,b\n3,4\n".to_vec())
        .await?;
    let object = ObjectRef {
        version: second,
        ..object
    };
    archive(&s3, &object, &target).await?;
    let versions = s3
        .list_object_versions()
        .bucket(&archive_bucket)
        .send()
        .await?;
    assert_eq!(versions.versions().len(), 2);
    Ok(())
}
