//! The local stack's IAM: each function runs as its own role and is refused what its
//! policies do not allow, with S3's 403/404 rule for a missing key and the devstack's own APIs
//! authorising the caller's role as AWS would.

use anyhow::Result;
use aws_sdk_s3::primitives::ByteStream;
use landfall_tests::LocalStack;

/// Each function runs as its own role, and the local stack refuses what the role's policies
/// do not allow, as IAM does: the SDK sees AccessDenied, and the denial (which would fail any
/// end-to-end test) names the function, the action and the resource.
#[tokio::test]
async fn a_role_is_refused_what_its_policies_do_not_allow() -> Result<()> {
    let stack = LocalStack::start().await?;
    let as_invalidator = stack.sdk_as("cdn-invalidator", &stack.endpoint).await;
    let s3 = LocalStack::s3_with(&as_invalidator);
    let landing = stack.resource("LandingBucket");
    let refused = s3
        .put_object()
        .bucket(&landing)
        .key("mysql/not mine.csv")
        .body(ByteStream::from_static(b"a\n"))
        .send()
        .await
        .expect_err("the CDN invalidator may not write landing files");
    assert_eq!(
        aws_sdk_s3::error::ProvideErrorMetadata::code(&refused),
        Some("AccessDenied")
    );
    let denials = stack.take_denials().await?;
    assert_eq!(denials.len(), 1, "{denials:?}");
    assert!(
        denials[0].contains("cdn-invalidator")
            && denials[0].contains("s3:PutObject")
            && denials[0].contains(&format!("arn:aws:s3:::{landing}/mysql/not mine.csv")),
        "{}",
        denials[0]
    );
    // What the role allows passes: a dead letter to its own DLQ, not to another's.
    let sqs = aws_sdk_sqs::Client::new(&as_invalidator);
    sqs.send_message()
        .queue_url(stack.resource("WebsiteChangesDLQ"))
        .message_body("allowed")
        .send()
        .await?;
    let other = sqs
        .send_message()
        .queue_url(stack.resource("MysqlFilesDLQ"))
        .message_body("not allowed")
        .send()
        .await;
    assert!(other.is_err(), "another pipeline's DLQ is refused");
    let denials = stack.take_denials().await?;
    assert!(
        denials.len() == 1 && denials[0].contains("sqs:SendMessage"),
        "{denials:?}"
    );
    Ok(())
}

/// S3 answers a read of a missing key 404 only to a caller that may s3:ListBucket it, and
/// 403 to any other (S3 API reference, HeadObject, "Permissions"): a pipeline that tells
/// "gone" from "forbidden" needs the listing permission, and the local stack says so.
#[tokio::test]
async fn a_missing_key_is_403_to_a_role_that_may_not_list_it() -> Result<()> {
    let stack = LocalStack::start().await?;
    let bucket = stack.resource("ArchiveBucket");
    let read = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": format!("arn:aws:s3:::{bucket}/*")}]});
    let list = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": format!("arn:aws:s3:::{bucket}"),
         "Condition": {"StringLike": {"s3:prefix": "mine/*"}}}]});
    let reader = landfall_devstack::iam::create_role(
        &stack.endpoint,
        "test-reader",
        "reader",
        &[("read".to_owned(), read.clone())].into(),
        &[],
    )
    .await?;
    let lister = landfall_devstack::iam::create_role(
        &stack.endpoint,
        "test-lister",
        "lister",
        &[("read".to_owned(), read), ("list".to_owned(), list)].into(),
        &[],
    )
    .await?;
    let status_of = |session: landfall_devstack::iam::RoleSession, key: &'static str| {
        let endpoint = stack.endpoint.clone();
        let bucket = bucket.clone();
        async move {
            let sdk = LocalStack::sdk_for(&session, &endpoint).await;
            let s3 = LocalStack::s3_with(&sdk);
            match s3.head_object().bucket(bucket).key(key).send().await {
                Ok(_) => 200,
                Err(err) => err.raw_response().map_or(0, |r| r.status().as_u16()),
            }
        }
    };
    stack
        .s3()
        .put_object()
        .bucket(&bucket)
        .key("mine/here.csv")
        .body(ByteStream::from_static(b"a\n"))
        .send()
        .await?;
    assert_eq!(status_of(reader.clone(), "mine/here.csv").await, 200);
    assert_eq!(
        status_of(reader, "mine/gone.csv").await,
        403,
        "no ListBucket"
    );
    assert_eq!(status_of(lister.clone(), "mine/gone.csv").await, 404);
    assert_eq!(
        status_of(lister, "theirs/gone.csv").await,
        403,
        "ListBucket only under mine/"
    );
    assert_eq!(stack.take_denials().await?, Vec::<String>::new());
    Ok(())
}

/// The APIs the devstack serves itself (Lambda Invoke, ECS) authorise their caller's role
/// the same way: the orchestrator may invoke its loader, not the CDN invalidator.
#[tokio::test]
async fn the_devstacks_own_apis_authorise_the_callers_role() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    let served = stack.served_url();
    let as_orchestrator = stack.sdk_as("file-orchestrator", &served).await;
    let lambda = aws_sdk_lambda::Client::new(&as_orchestrator);
    let refused = lambda
        .invoke()
        .function_name("cdn-invalidator")
        .payload(aws_sdk_lambda::primitives::Blob::new(r#"{"Records":[]}"#))
        .send()
        .await
        .expect_err("the orchestrator may not invoke the CDN invalidator");
    assert_eq!(
        aws_sdk_lambda::error::ProvideErrorMetadata::code(&refused),
        Some("AccessDeniedException")
    );
    let as_loader = stack.sdk_as("mysql-loader", &served).await;
    let ecs = aws_sdk_ecs::Client::new(&as_loader);
    let refused = ecs
        .list_tasks()
        .cluster(stack.resource("TaskCluster"))
        .send()
        .await
        .expect_err("the loader may not watch tasks");
    assert_eq!(
        aws_sdk_ecs::error::ProvideErrorMetadata::code(&refused),
        Some("AccessDeniedException")
    );
    let denials = stack.take_denials().await?;
    assert_eq!(denials.len(), 2, "{denials:?}");
    assert!(
        denials[0].contains("file-orchestrator")
            && denials[0].contains("lambda:InvokeFunction")
            && denials[0].contains("function:cdn-invalidator"),
        "{}",
        denials[0]
    );
    assert!(
        denials[1].contains("mysql-loader") && denials[1].contains("ecs:ListTasks"),
        "{}",
        denials[1]
    );
    Ok(())
}

/// Every role that reads keys another delivery may already have removed (a landing file
/// archived, a split part cleaned up, an ingestion object, a copy manifest) is told "gone"
/// (404), not "forbidden" (403), for a missing key under what it reads: its `s3:ListBucket`
/// statement is what makes the difference in AWS (S3 API reference, HeadObject,
/// "Permissions"), and deleting one fails this test.
#[tokio::test]
async fn every_reader_of_keys_that_may_be_gone_is_told_404() -> Result<()> {
    let stack = LocalStack::start().await?;
    let cases = [
        ("orders-loader", "TransformedBucket", "transformed/orders/"),
        ("mysql-loader", "LandingBucket", "mysql/price_index/"),
        ("mysql-loader", "LandingBucket", "parts/price_index/"),
        (
            "landfall-mysql-loader",
            "LandingBucket",
            "mysql/price_index/",
        ),
        ("landfall-db-init", "LandingBucket", "mysql/init/"),
        (
            "star-transform",
            "IngestionBucket",
            "ingestion/sales_order/",
        ),
        ("db-extract", "IngestionBucket", "ingestion/sales_order/"),
    ];
    let mut wrong = Vec::new();
    for (reader, bucket, prefix) in cases {
        let sdk = stack.sdk_as(reader, &stack.endpoint).await;
        let s3 = LocalStack::s3_with(&sdk);
        let key = format!("{prefix}gone already.csv");
        let status = match s3
            .head_object()
            .bucket(stack.resource(bucket))
            .key(&key)
            .send()
            .await
        {
            Ok(_) => 200,
            Err(err) => err.raw_response().map_or(0, |r| r.status().as_u16()),
        };
        if status != 404 {
            wrong.push(format!("{reader}: {bucket}/{key} answered {status}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    Ok(())
}
