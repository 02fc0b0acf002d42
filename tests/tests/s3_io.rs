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
    use landfall_landing::{archive, ObjectVersion, Version, ARCHIVED_FROM};
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
    let object = ObjectVersion {
        bucket: landing.clone(),
        key: key.to_owned(),
        version: Version::Id(version.clone()),
    };
    let target = ObjectVersion {
        bucket: archive_bucket.clone(),
        key: "price_index/2026/12/03/crash.csv".to_owned(),
        version: Version::Derived,
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
    let object = ObjectVersion {
        version: Version::Id(second),
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

/// The landing version `version` of `key`, and where its archive copy goes.
fn landing_and_archive(
    stack: &LocalStack,
    key: &str,
    version: String,
    archive_key: &str,
) -> (
    landfall_landing::ObjectVersion,
    landfall_landing::ObjectVersion,
) {
    use landfall_landing::{ObjectVersion, Version};
    (
        ObjectVersion {
            bucket: stack.resource("LandingBucket"),
            key: key.to_owned(),
            version: Version::Id(version),
        },
        ObjectVersion {
            bucket: stack.resource("ArchiveBucket"),
            key: archive_key.to_owned(),
            version: Version::Derived,
        },
    )
}

/// The archive copy's ETag and bytes.
async fn archived(
    stack: &LocalStack,
    target: &landfall_landing::ObjectVersion,
) -> Result<(String, Vec<u8>)> {
    let copy = stack
        .s3()
        .get_object()
        .bucket(&target.bucket)
        .key(&target.key)
        .send()
        .await?;
    let etag = copy.e_tag().unwrap_or_default().to_owned();
    Ok((etag, copy.body.collect().await?.into_bytes().to_vec()))
}

fn pattern(bytes: usize) -> Vec<u8> {
    (0..bytes).map(|i| (i % 253) as u8).collect()
}

#[tokio::test]
async fn a_multipart_uploaded_file_is_archived_and_leaves_landing() -> Result<()> {
    use landfall_landing::archive;
    let stack = LocalStack::start().await?;
    let s3 = stack.s3();
    let key = "mysql/price_index/uploaded by the cli.csv";
    let body = pattern(20 * 1024 * 1024);
    let version = stack.upload_in_parts("LandingBucket", key, &body).await?;
    let (object, target) = landing_and_archive(
        &stack,
        key,
        version,
        "price_index/2026/12/04/uploaded by the cli.csv",
    );
    let uploaded = s3
        .head_object()
        .bucket(&object.bucket)
        .key(key)
        .send()
        .await?;
    assert!(
        uploaded.e_tag().unwrap_or_default().ends_with("-3\""),
        "{uploaded:?}"
    );
    archive(&s3, &object, &target).await?;
    assert!(archived(&stack, &target).await?.1 == body, "same bytes");
    assert!(stack.keys(&object.bucket, "mysql/").await?.is_empty());
    Ok(())
}

/// CopyObject refuses a source over 5 GB; above the limit the archive copies in parts
/// (UploadPartCopy). Shown with a 12 MiB file and a 5 MiB limit.
#[tokio::test]
async fn a_file_past_the_single_copy_limit_is_archived_in_parts() -> Result<()> {
    use landfall_landing::{archive_with, CopyLimits};
    let stack = LocalStack::start().await?;
    let key = "dynamodb/customers/big.csv";
    let body = pattern(12 * 1024 * 1024 + 7);
    let version = stack.put("LandingBucket", key, body.clone()).await?;
    let (object, target) =
        landing_and_archive(&stack, key, version, "customers/2026/12/04/big.csv");
    let limits = CopyLimits {
        single_copy_bytes: 5 * 1024 * 1024,
        part_bytes: 5 * 1024 * 1024,
    };
    archive_with(&stack.s3(), &object, &target, limits).await?;
    let (etag, bytes) = archived(&stack, &target).await?;
    assert!(etag.ends_with("-3\""), "three copied parts: {etag}");
    assert!(bytes == body, "same bytes");
    assert!(stack.keys(&object.bucket, "dynamodb/").await?.is_empty());
    Ok(())
}

/// Two deliveries of one notification at once: the first archives and deletes the landing
/// version while the second is still loading (its ledger says "already loaded"). The
/// second's archive finds the version gone and the copy recording it: done, not a failure.
#[tokio::test]
async fn archiving_a_version_another_delivery_already_archived_is_done() -> Result<()> {
    use landfall_landing::{archive, ObjectVersion};
    let stack = LocalStack::start().await?;
    let s3 = stack.s3();
    let key = "dynamodb/customers/twice.csv";
    let version = stack
        .put("LandingBucket", key, b"id,name\n1,a\n".to_vec())
        .await?;
    let (object, target) =
        landing_and_archive(&stack, key, version, "customers/2026/12/04/twice.csv");
    archive(&s3, &object, &target).await?;
    archive(&s3, &object, &target).await?;
    // Gone and never archived is still an error.
    let other = ObjectVersion {
        key: "dynamodb/customers/never.csv".to_owned(),
        ..object.clone()
    };
    let elsewhere = ObjectVersion {
        key: "customers/2026/12/04/never.csv".to_owned(),
        ..target.clone()
    };
    assert!(archive(&s3, &other, &elsewhere).await.is_err());
    Ok(())
}

/// One email per landed version however often it is delivered: the first delivery to claim
/// the notice (a conditional PUT) sends it; every later or concurrent one does not; another
/// version of the same key is news again.
#[tokio::test]
async fn only_the_first_delivery_of_a_version_claims_its_notice() -> Result<()> {
    use landfall_landing::first_notice;
    let stack = LocalStack::start().await?;
    let s3 = stack.s3();
    let archive = stack.resource("ArchiveBucket");
    let key = "mysql/price_index/notice.csv";
    let first = stack.put("LandingBucket", key, b"a\n".to_vec()).await?;
    let (object, _) = landing_and_archive(&stack, key, first, "unused");
    let (a, b) = tokio::join!(
        first_notice(&s3, &archive, "price_index", &object),
        first_notice(&s3, &archive, "price_index", &object)
    );
    assert!(a != b, "exactly one of two at once: {a} {b}");
    assert!(!first_notice(&s3, &archive, "price_index", &object).await);
    let second = stack.put("LandingBucket", key, b"b\n".to_vec()).await?;
    let (newer, _) = landing_and_archive(&stack, key, second, "unused");
    assert!(first_notice(&s3, &archive, "price_index", &newer).await);
    assert_eq!(stack.keys(&archive, "notices/price_index/").await?.len(), 2);
    Ok(())
}

/// A landing bucket without versioning (suspended here): a file is known by the ETag it was
/// read with. Archived, then the process dies before the delete; meanwhile someone uploads a
/// new file of the same size under the same key. The redelivery finds its copy, and its
/// delete — conditional on the ETag — leaves the new file for its own notification.
#[tokio::test]
async fn an_unversioned_file_replaced_after_its_archive_is_left_for_its_own_load() -> Result<()> {
    use landfall_landing::{archive, to_load, ObjectVersion, Version, ARCHIVED_FROM};
    let stack = LocalStack::start().await?;
    let s3 = stack.s3();
    let (landing, archive_bucket) = (
        stack.resource("LandingBucket"),
        stack.resource("ArchiveBucket"),
    );
    stack.suspend_versioning("LandingBucket").await?;
    let key = "mysql/price_index/replaced.csv";
    let put = s3
        .put_object()
        .bucket(&landing)
        .key(key)
        .body(b"a,b\n1,2\n".to_vec().into())
        .send()
        .await?;
    // As a notification names it: S3's version id "null", or none, and the ETag.
    let named = ObjectVersion {
        bucket: landing.clone(),
        key: key.to_owned(),
        version: Version::from_s3(put.version_id(), put.e_tag()),
    };
    let (object, _) = to_load(&s3, &named).await?.expect("there");
    assert!(object.version.etag().is_some(), "{object:?}");
    let target = ObjectVersion {
        bucket: archive_bucket.clone(),
        key: "price_index/2026/12/05/replaced.csv".to_owned(),
        version: Version::Derived,
    };
    // The copy the dead process made, recording its source.
    s3.put_object()
        .bucket(&archive_bucket)
        .key(&target.key)
        .metadata(
            ARCHIVED_FROM,
            format!("{}/{}#{}", object.bucket, object.key, object.version),
        )
        .body(b"a,b\n1,2\n".to_vec().into())
        .send()
        .await?;
    stack
        .put("LandingBucket", key, b"a,b\n3,4\n".to_vec())
        .await?;

    archive(&s3, &object, &target).await?;
    let left = s3.get_object().bucket(&landing).key(key).send().await?;
    assert_eq!(&left.body.collect().await?.into_bytes()[..], b"a,b\n3,4\n");
    Ok(())
}
