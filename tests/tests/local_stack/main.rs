//! The local stack itself behaves like AWS where the pipelines depend on it. Its IAM: `iam.rs`
//! here.

mod iam;

use anyhow::Result;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_sqs::types::QueueAttributeName;
use landfall_devstack::{host::serve_invoke_api, local_sdk_config, provision, Target, Template};
use landfall_tests::{workspace_root, LocalStack, REGION};
use std::time::Duration;

#[tokio::test]
async fn provisioning_twice_changes_nothing() -> Result<()> {
    let stack = LocalStack::start().await?;
    let template = Template::load(&workspace_root().join("template.yaml"))?;
    let target = Target {
        region: REGION.into(),
        ..Target::default()
    };
    let again = provision(&template, &target, &stack.sdk).await?;
    for (logical_id, resource) in &stack.stack.resources {
        assert_eq!(
            again.reference(logical_id),
            Some(resource.reference.as_str()),
            "{logical_id}"
        );
    }
    let distributions = stack.cloudfront().list_distributions().send().await?;
    let count = distributions
        .distribution_list()
        .map(|l| l.items().len())
        .unwrap_or(0);
    assert_eq!(count, 1, "no second distribution");
    // The redrive policy from the template is on the queue.
    let attributes = stack
        .sqs()
        .get_queue_attributes()
        .queue_url(stack.resource("WebsiteChangesQueue"))
        .attribute_names(QueueAttributeName::All)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    let redrive = &attributes[&QueueAttributeName::RedrivePolicy];
    assert!(
        redrive.contains("landfall-website-changes-dlq") && redrive.contains('5'),
        "{redrive}"
    );
    assert_eq!(attributes[&QueueAttributeName::VisibilityTimeout], "180");
    Ok(())
}

/// A retryable failure is handed back to SQS, comes back after the visibility timeout,
/// and lands in the DLQ only after maxReceiveCount receives.
#[tokio::test]
async fn retryable_failures_reach_the_dlq_after_max_receives() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    let queue = stack.resource("WebsiteChangesQueue");
    let dlq = stack.resource("WebsiteChangesDLQ");
    let dlq_arn = format!("arn:aws:sqs:{REGION}:123456789012:landfall-website-changes-dlq");
    // Short timings so the test does not wait minutes; the mechanism is the template's.
    stack
        .sqs()
        .set_queue_attributes()
        .queue_url(&queue)
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"2"}}"#),
        )
        .send()
        .await?;
    // CloudFront unreachable: every attempt fails with a retryable dispatch error.
    stack.set_function_env(
        "cdn-invalidator",
        "AWS_ENDPOINT_URL_CLOUDFRONT",
        Some("http://127.0.0.1:9"),
    );
    stack.set_function_env("cdn-invalidator", "AWS_MAX_ATTEMPTS", Some("1"));
    // Its retry back-off as short as the queue's visibility here.
    stack.set_function_env("cdn-invalidator", "RETRY_FIRST_SECONDS", Some("1"));
    stack.set_function_env("cdn-invalidator", "RETRY_MAX_SECONDS", Some("1"));
    stack
        .put("WebsiteBucket", "page.html", ByteStream::from_static(b"x"))
        .await?;

    let first = stack.deliver("cdn-invalidator").await?;
    assert_eq!(
        first.failed.len(),
        1,
        "the change is reported failed: {first:?}"
    );
    assert_eq!(
        stack.peek(&dlq).await?.len(),
        0,
        "a retryable failure is not dead-lettered at once"
    );
    let log = stack.function_log("cdn-invalidator");
    assert!(log.contains("\"error_type\":\"Retryable\""), "{log}");

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = stack.deliver("cdn-invalidator").await?;
    assert_eq!(
        second.received, 1,
        "it came back after the visibility timeout"
    );
    assert!(
        second.function_error.is_some(),
        "the only record failed, so the invocation fails"
    );

    tokio::time::sleep(Duration::from_millis(1200)).await;
    let third = stack.deliver("cdn-invalidator").await?;
    assert_eq!(
        third.received, 0,
        "after maxReceiveCount it is no longer delivered"
    );
    let dead = stack.peek(&dlq).await?;
    assert_eq!(dead.len(), 1);
    assert!(dead[0].body().unwrap_or_default().contains("page.html"));
    assert_eq!(stack.queue_depth(&queue).await?, 0);
    Ok(())
}

/// The SDK's Lambda client works against the local Invoke API, which reports a function
/// error the way AWS does (200 + X-Amz-Function-Error), not as an HTTP 500.
#[tokio::test]
async fn invoke_api_answers_like_aws() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(serve_invoke_api(stack.host(), listener));
    let sdk = local_sdk_config(&format!("http://{address}"), REGION).await;
    let config = aws_sdk_lambda::config::Builder::from(&sdk)
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::standard().with_max_attempts(1))
        .build();
    let lambda = aws_sdk_lambda::Client::from_conf(config);

    let ok = lambda
        .invoke()
        .function_name("cdn-invalidator")
        .payload(aws_sdk_lambda::primitives::Blob::new(r#"{"Records":[]}"#))
        .send()
        .await?;
    assert_eq!(ok.status_code(), 200);
    assert_eq!(ok.function_error(), None);
    let body: serde_json::Value = serde_json::from_slice(ok.payload().expect("payload").as_ref())?;
    assert_eq!(body["batchItemFailures"], serde_json::json!([]));

    let bad = lambda
        .invoke()
        .function_name("cdn-invalidator")
        .payload(aws_sdk_lambda::primitives::Blob::new(
            r#"{"not":"an SQS event"}"#,
        ))
        .send()
        .await?;
    assert_eq!(bad.status_code(), 200);
    assert_eq!(bad.function_error(), Some("Unhandled"));

    let missing = lambda
        .invoke()
        .function_name("no-such-function")
        .send()
        .await;
    assert!(missing.is_err());
    Ok(())
}

/// A cold start through the local Runtime API is measured on a fresh process each time: its
/// init ends when it first asks for work, before its answer, and its peak RSS is read.
#[tokio::test]
async fn a_cold_start_is_measured_on_a_fresh_process() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    let host = stack.host();
    let event = bytes::Bytes::from_static(br#"{"Records":[]}"#);
    let first = host.cold_start("cdn-invalidator", event.clone()).await?;
    assert_eq!(first.answer.function_error, None);
    assert_eq!(
        first.answer.json()?["batchItemFailures"],
        serde_json::json!([])
    );
    assert!(
        first.init > Duration::ZERO && first.init <= first.answered,
        "{first:?}"
    );
    assert!(first.peak_rss_kb.is_some_and(|kb| kb > 1024), "{first:?}");

    let again = host.cold_start("cdn-invalidator", event).await?;
    assert!(again.init > Duration::ZERO && again.init <= again.answered);
    assert!(
        first.pid.is_some() && again.pid != first.pid,
        "{first:?} {again:?}"
    );
    let refused = host
        .cold_start("cdn-invalidator", bytes::Bytes::from_static(b"{}"))
        .await?;
    assert!(refused.answer.function_error.is_some(), "{refused:?}");
    assert!(
        refused.answer.json()?["errorMessage"].is_string(),
        "{refused:?}"
    );
    Ok(())
}

/// A new account's SES is in the sandbox: it sends only to verified recipients, and the local
/// SES refuses the others as SES does (moto checks the sender only). The stack's own
/// recipients are verified by provisioning, as a user verifies them before a first deploy.
#[tokio::test]
async fn an_unverified_recipient_is_refused_as_in_the_ses_sandbox() -> Result<()> {
    let stack = LocalStack::start().await?;
    let ses = aws_sdk_sesv2::Client::new(&stack.sdk);
    let send = |to: &'static str| {
        ses.send_email()
            .from_email_address("landfall@example.com")
            .destination(
                aws_sdk_sesv2::types::Destination::builder()
                    .to_addresses(to)
                    .build(),
            )
            .content(
                aws_sdk_sesv2::types::EmailContent::builder()
                    .simple(
                        aws_sdk_sesv2::types::Message::builder()
                            .subject(
                                aws_sdk_sesv2::types::Content::builder()
                                    .data("s")
                                    .build()
                                    .unwrap(),
                            )
                            .body(
                                aws_sdk_sesv2::types::Body::builder()
                                    .text(
                                        aws_sdk_sesv2::types::Content::builder()
                                            .data("b")
                                            .build()
                                            .unwrap(),
                                    )
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .send()
    };
    send("ops@example.com").await?;
    // The mailbox simulator takes mail unverified, in the sandbox too (make smoke mails it).
    send("success@simulator.amazonses.com").await?;
    let refused = send("someone.else@example.com")
        .await
        .expect_err("an unverified recipient");
    assert_eq!(
        aws_sdk_sesv2::error::ProvideErrorMetadata::code(&refused),
        Some("MessageRejected")
    );
    assert!(
        aws_sdk_sesv2::error::ProvideErrorMetadata::message(&refused)
            .is_some_and(|m| m.contains("someone.else@example.com")),
        "{refused:?}"
    );
    Ok(())
}

/// make smoke's path for a deployed stack (`STACK=… REGION=…`), taken against the local
/// stack: the outputs from CloudFormation's DescribeStacks, the endpoint from
/// AWS_ENDPOINT_URL, an admin's credentials, the functions driven by their event source
/// mappings and logging to CloudWatch Logs — nothing told that it is local. It passes, and
/// leaves nothing of its own behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn make_smoke_passes_against_the_stack_as_aws_describes_it() -> Result<()> {
    let db = landfall_tests::mysql::TestDatabase::create_with_scripts().await?;
    let redshift = landfall_tests::postgres::WarehouseDatabase::empty_named("redshift").await?;
    // P4's source, a small totesys, and its warehouse.
    let totesys =
        landfall_tests::postgres::TotesysDatabase::seeded(landfall_totesys_seed::Volumes {
            sales_orders: 40,
            purchase_orders: 10,
        })
        .await?;
    let warehouse = landfall_tests::postgres::WarehouseDatabase::empty().await?;
    let mut stack = LocalStack::start_with_secrets(&[
        ("MysqlSecret", db.secret(3306).await?),
        ("TotesysSecret", totesys.secret()),
        ("WarehouseSecret", warehouse.secret()),
    ])
    .await?;
    // A fact that meets its dimension before the dimension is loaded retries in a second
    // (the template: a minute).
    landfall_tests::pipeline::fast_retries(&mut stack);
    stack.serve_redshift(landfall_tests::postgres::server().database(&redshift.name));
    // The website queue gathers changes for 60 s in the template; the smoke waits for the
    // invalidation whatever the window, so the test's is short.
    for mapping in &mut stack
        .stack
        .functions
        .get_mut("cdn-invalidator")
        .expect("P5")
        .sqs
    {
        mapping.batching_window_secs = 2;
    }
    let host = stack.host();
    // P3's tables, as after a deploy (README, "First deploy": the orders-loader's migrate).
    let migrated = host
        .invoke(
            "orders-loader",
            serde_json::json!({"migrate": {}}).to_string().into(),
        )
        .await?;
    assert_eq!(migrated.function_error, None, "{:?}", migrated.json());
    let pollers = landfall_devstack::pump::poll_event_sources(&host, &stack.sqs(), &stack.stack);
    let logs = tokio::spawn(landfall_devstack::logs::ship(
        stack.endpoint.clone(),
        stack.stack.clone(),
        stack.logs_dir().to_owned(),
    ));
    let smoke = tokio::process::Command::new(workspace_root().join(".venv/bin/python"))
        .arg(workspace_root().join("scripts/smoke.py"))
        .args(["--stack", "landfall", "--region", REGION])
        .env("AWS_ENDPOINT_URL", &stack.endpoint)
        .envs(landfall_devstack::host::served_endpoints(
            stack.served_url().trim_start_matches("http://"),
        ))
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .output()
        .await?;
    for poller in pollers {
        poller.abort();
    }
    logs.abort();
    let printed = String::from_utf8_lossy(&smoke.stdout);
    assert!(
        smoke.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&smoke.stderr)
    );
    for pipeline in [
        "P1 mysql",
        "P2 dynamodb",
        "P3 orders",
        "P4 totesys",
        "P5 website",
    ] {
        let line = printed
            .lines()
            .find(|line| line.starts_with(&format!("smoke: {pipeline} ")))
            .unwrap_or_else(|| panic!("no line for {pipeline}:\n{printed}"));
        assert!(line.contains(" ok "), "{line}");
    }
    // P4 adds no rows of its own: what it waited for is the source's, every sales order a
    // fact in the warehouse.
    let sources: i64 = sqlx::query_scalar("SELECT count(*) FROM sales_order")
        .fetch_one(&mut totesys.conn().await?)
        .await?;
    let facts: i64 = sqlx::query_scalar("SELECT count(*) FROM fact_sales_order")
        .fetch_one(&mut warehouse.conn().await?)
        .await?;
    assert_eq!((sources, facts), (40, 40));
    // Nothing of the run is left: no object in any bucket, no table, no pointer.
    for bucket in [
        "LandingBucket",
        "ArchiveBucket",
        "ReportsBucket",
        "WebsiteBucket",
    ] {
        // (the transformed bucket keeps the Glue crawler's and manifests' objects: only the
        // smoke's orders file is its own, checked below)
        let left = stack
            .s3()
            .list_object_versions()
            .bucket(stack.resource(bucket))
            .send()
            .await?;
        let keys: Vec<_> = left
            .versions()
            .iter()
            .filter_map(|v| v.key())
            .chain(left.delete_markers().iter().filter_map(|m| m.key()))
            .collect();
        assert!(keys.is_empty(), "{bucket} keeps {keys:?}");
    }
    let orders_left = stack
        .s3()
        .list_object_versions()
        .bucket(stack.resource("TransformedBucket"))
        .prefix("transformed/orders/")
        .send()
        .await?;
    assert!(orders_left.versions().is_empty(), "{orders_left:?}");
    // Its rows, its ledger row and its customer are gone from Redshift, its audit item too.
    use sqlx::Connection;
    let mut sql = sqlx::PgConnection::connect_with(
        &landfall_tests::postgres::server().database(&redshift.name),
    )
    .await?;
    let rows: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM orders_enriched) + (SELECT COUNT(*) FROM orders_ledger) \
         + (SELECT COUNT(*) FROM customers)",
    )
    .fetch_one(&mut sql)
    .await?;
    assert_eq!(rows, 0);
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.sdk);
    let audited = dynamodb
        .scan()
        .table_name(stack.resource("OrdersAuditTable"))
        .send()
        .await?;
    assert_eq!(audited.count(), 0, "{audited:?}");
    let tables = dynamodb.list_tables().send().await?;
    assert!(
        !tables
            .table_names()
            .iter()
            .any(|t| t.contains("landfall_smoke")),
        "{:?}",
        tables.table_names()
    );
    Ok(())
}

/// S3's notification of an object in a versioned bucket names its version (S3 user guide,
/// "Event message structure"), and the pipelines read that exact version; moto's left it out,
/// and the local stack adds it (scripts/moto_server.py). With versioning suspended there is
/// none.
#[tokio::test]
async fn a_versioned_buckets_notification_names_the_version() -> Result<()> {
    let stack = LocalStack::start().await?;
    let queue = stack.resource("MysqlFilesQueue");
    let version_in = |messages: &[aws_sdk_sqs::types::Message], key: &str| {
        messages
            .iter()
            .filter_map(|m| serde_json::from_str::<serde_json::Value>(m.body()?).ok())
            .flat_map(|body| body["Records"].as_array().cloned().unwrap_or_default())
            // (moto encodes `/` as %2F in keys, where S3 leaves it)
            .find(|record| {
                record["s3"]["object"]["key"]
                    .as_str()
                    .is_some_and(|k| k.replace("%2F", "/") == key)
            })
            .map(|record| record["s3"]["object"]["versionId"].clone())
    };
    let version = stack
        .put("LandingBucket", "mysql/price_index/v.csv", b"x".to_vec())
        .await?;
    assert!(!version.is_empty());
    let seen = version_in(&stack.peek(&queue).await?, "mysql/price_index/v.csv");
    assert_eq!(seen, Some(serde_json::Value::String(version)));

    stack.suspend_versioning("LandingBucket").await?;
    stack
        .put("LandingBucket", "mysql/price_index/n.csv", b"x".to_vec())
        .await?;
    let seen = version_in(&stack.peek(&queue).await?, "mysql/price_index/n.csv");
    assert_eq!(seen, Some(serde_json::Value::Null));
    Ok(())
}
