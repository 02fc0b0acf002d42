//! P5 end to end: website bucket → S3 notification → SQS → cdn-invalidator (the real
//! binary) → CloudFront invalidation, all against moto.

use anyhow::Result;
use landfall_devstack::pump::sqs_event;
use landfall_tests::{LocalStack, REGION};
use std::collections::BTreeSet;

const FUNCTION: &str = "cdn-invalidator";

/// Every invalidation of the stack's distribution: (caller reference, sorted paths).
async fn invalidations(stack: &LocalStack) -> Result<Vec<(String, BTreeSet<String>)>> {
    let cloudfront = stack.cloudfront();
    let distribution = stack.resource("WebsiteDistribution");
    let listed = cloudfront
        .list_invalidations()
        .distribution_id(&distribution)
        .send()
        .await?;
    let mut found = Vec::new();
    for summary in listed
        .invalidation_list()
        .map(|l| l.items())
        .unwrap_or_default()
    {
        let got = cloudfront
            .get_invalidation()
            .distribution_id(&distribution)
            .id(summary.id())
            .send()
            .await?;
        let batch = got
            .invalidation()
            .and_then(|i| i.invalidation_batch())
            .expect("batch");
        let paths = batch
            .paths()
            .map(|p| p.items().iter().cloned().collect())
            .unwrap_or_default();
        found.push((batch.caller_reference().to_owned(), paths));
    }
    Ok(found)
}

async fn put(stack: &LocalStack, key: &str, body: &str) -> Result<()> {
    stack
        .put("WebsiteBucket", key, body.as_bytes().to_vec())
        .await?;
    Ok(())
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

#[tokio::test]
async fn uploads_and_overwrites_become_one_invalidation_per_batch() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    put(&stack, "index.html", "v1").await?;
    put(&stack, "docs/a b/café~*.html", "v1").await?;
    put(&stack, "index.html", "v2").await?;

    let delivery = stack.deliver(FUNCTION).await?;
    assert!(
        delivery.failed.is_empty(),
        "{delivery:?}\n{}",
        stack.function_log(FUNCTION)
    );
    assert_eq!(delivery.deleted, delivery.received);

    let found = invalidations(&stack).await?;
    assert_eq!(
        found.len(),
        1,
        "one invalidation for the whole batch: {found:?}"
    );
    assert_eq!(
        found[0].1,
        set(&["/index.html", "/docs/a%20b/caf%C3%A9%7E%2A.html"])
    );
    assert_eq!(
        stack
            .queue_depth(&stack.resource("WebsiteChangesQueue"))
            .await?,
        0
    );
    assert_eq!(
        stack
            .queue_depth(&stack.resource("WebsiteChangesDLQ"))
            .await?,
        0
    );
    Ok(())
}

#[tokio::test]
async fn a_redelivered_batch_adds_no_invalidation() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    let queue = stack.resource("WebsiteChangesQueue");
    put(&stack, "about.html", "v1").await?;
    put(&stack, "about.html", "v2").await?;

    // First delivery: the function succeeds, but the delete is lost (a poller crash):
    // the messages become visible again and SQS delivers them a second time.
    let first = stack.peek(&queue).await?;
    assert!(!first.is_empty());
    let event = sqs_event(
        &first,
        &stack.stack.functions[FUNCTION].sqs[0].queue_arn,
        REGION,
    );
    let answer = stack
        .host()
        .invoke(FUNCTION, event.to_string().into())
        .await?;
    assert_eq!(
        answer.function_error,
        None,
        "{}",
        String::from_utf8_lossy(&answer.payload)
    );
    assert_eq!(invalidations(&stack).await?.len(), 1);

    let again = stack.deliver(FUNCTION).await?;
    assert_eq!(again.received, first.len(), "the same messages come back");
    assert!(again.failed.is_empty(), "{again:?}");
    let found = invalidations(&stack).await?;
    assert_eq!(
        found.len(),
        1,
        "redelivery must not create a second invalidation: {found:?}"
    );
    assert!(stack
        .function_log(FUNCTION)
        .contains("\"already_existed\":true"));
    assert_eq!(stack.queue_depth(&queue).await?, 0);
    Ok(())
}

#[tokio::test]
async fn bad_messages_are_dead_lettered_without_failing_the_batch() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    let queue = stack.resource("WebsiteChangesQueue");
    let dlq = stack.resource("WebsiteChangesDLQ");
    let sqs = stack.sqs();
    let unknown_bucket = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"someone-elses-bucket"},"object":{"key":"x.html"}}}]}"#;
    let restore_event = r#"{"Records":[{"eventSource":"aws:s3","eventName":"ObjectRestore:Completed","s3":{"bucket":{"name":"b"},"object":{"key":"y"}}}]}"#;
    let test_event = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"b"}"#;
    for body in [
        "this is not JSON",
        r#"{"orderId": 42}"#,
        unknown_bucket,
        restore_event,
        test_event,
    ] {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(body)
            .send()
            .await?;
    }
    put(&stack, "good.html", "v1").await?;

    let delivery = stack.deliver(FUNCTION).await?;
    assert!(delivery.function_error.is_none(), "{delivery:?}");
    assert!(
        delivery.failed.is_empty(),
        "permanent failures go to the DLQ, not back to the queue: {delivery:?}"
    );
    assert_eq!(stack.queue_depth(&queue).await?, 0);

    let found = invalidations(&stack).await?;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, set(&["/good.html"]));

    let dead = stack.peek(&dlq).await?;
    let mut reasons: Vec<(String, String)> = dead
        .iter()
        .map(|m| {
            let reason = m
                .message_attributes()
                .and_then(|a| a.get("landfall-error"))
                .and_then(|v| v.string_value())
                .unwrap_or_default();
            (m.body().unwrap_or_default().to_owned(), reason.to_owned())
        })
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    let reason_for = |body: &str| {
        reasons
            .iter()
            .find(|(b, _)| b == body)
            .map(|(_, r)| r.clone())
            .unwrap_or_default()
    };
    assert!(reason_for("this is not JSON").contains("not JSON"));
    assert!(reason_for(r#"{"orderId": 42}"#).contains("not an S3 event notification"));
    assert!(reason_for(unknown_bucket).contains("someone-elses-bucket"));
    assert!(reason_for(restore_event).contains("ObjectRestore:Completed"));
    for message in &dead {
        let kind = message
            .message_attributes()
            .and_then(|a| a.get("landfall-error-type"))
            .and_then(|v| v.string_value());
        assert_eq!(kind, Some("Permanent"));
    }
    Ok(())
}

#[tokio::test]
async fn overwrites_and_deletes_policy_skips_first_uploads() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    stack.set_function_env(
        FUNCTION,
        "INVALIDATION_POLICY",
        Some("overwrites-and-deletes"),
    );
    let bucket = stack.resource("WebsiteBucket");

    put(&stack, "new-page.html", "v1").await?;
    stack.deliver(FUNCTION).await?;
    assert!(
        invalidations(&stack).await?.is_empty(),
        "a first upload has nothing cached"
    );

    put(&stack, "new-page.html", "v2").await?;
    stack.deliver(FUNCTION).await?;
    let found = invalidations(&stack).await?;
    assert_eq!(
        found.len(),
        1,
        "an overwrite is invalidated\n{}",
        stack.function_log(FUNCTION)
    );
    assert_eq!(found[0].1, set(&["/new-page.html"]));

    // moto notifies no ObjectRemoved:DeleteMarkerCreated, only the removal of the last
    // version; delete the versions one by one, as a permanent delete does.
    let versions = stack
        .s3()
        .list_object_versions()
        .bucket(&bucket)
        .prefix("new-page.html")
        .send()
        .await?;
    for version in versions.versions() {
        stack
            .s3()
            .delete_object()
            .bucket(&bucket)
            .key("new-page.html")
            .set_version_id(version.version_id().map(str::to_owned))
            .send()
            .await?;
    }
    let delivery = stack.deliver(FUNCTION).await?;
    assert!(delivery.failed.is_empty(), "{delivery:?}");
    let found = invalidations(&stack).await?;
    assert_eq!(found.len(), 2, "a delete is invalidated: {found:?}");
    Ok(())
}

#[tokio::test]
async fn distribution_is_found_by_the_buckets_origin_domain() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    stack.set_function_env(FUNCTION, "DISTRIBUTIONS", None);
    // Finding the distribution needs what the template's role (with DISTRIBUTIONS set) does
    // not grant; ListDistributions takes no resource ARN (Service Authorization Reference).
    stack
        .grant(
            FUNCTION,
            serde_json::json!({"Effect": "Allow", "Action": "cloudfront:ListDistributions", "Resource": "*"}),
        )
        .await?;
    put(&stack, "found.html", "v1").await?;
    let delivery = stack.deliver(FUNCTION).await?;
    assert!(
        delivery.failed.is_empty(),
        "{delivery:?}\n{}",
        stack.function_log(FUNCTION)
    );
    assert_eq!(invalidations(&stack).await?[0].1, set(&["/found.html"]));
    Ok(())
}

#[tokio::test]
async fn many_changes_collapse_to_wildcards_under_the_threshold() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    stack.set_function_env(FUNCTION, "WILDCARD_THRESHOLD", Some("3"));
    for i in 0..5 {
        put(&stack, &format!("img/{i}.png"), "x").await?;
        put(&stack, &format!("css/{i}.css"), "x").await?;
    }
    put(&stack, "index.html", "x").await?;
    stack.deliver(FUNCTION).await?;
    let found = invalidations(&stack).await?;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, set(&["/img/*", "/css/*", "/index.html"]));
    Ok(())
}

#[tokio::test]
async fn a_malformed_setting_fails_the_cold_start_naming_the_variable() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    stack.set_function_env(FUNCTION, "WILDCARD_THRESHOLD", Some("lots"));
    put(&stack, "x.html", "v1").await?;
    let delivery = stack.deliver(FUNCTION).await?;
    assert!(delivery.function_error.is_some(), "{delivery:?}");
    assert_eq!(
        delivery.deleted, 0,
        "nothing is lost when the function cannot start"
    );
    let log = stack.function_log(FUNCTION);
    assert!(
        log.contains("WILDCARD_THRESHOLD=\\\"lots\\\" is invalid"),
        "{log}"
    );
    Ok(())
}

/// The local IAM bites: the same delivery as the first test, with the role's `Invalidate`
/// statement deleted, invalidates nothing — the change is dead-lettered as a permanent
/// failure naming AccessDenied — and the denial names the function, CreateInvalidation and
/// the distribution.
#[tokio::test]
async fn without_its_invalidate_statement_the_function_is_refused() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    stack.revoke(FUNCTION, "Invalidate").await?;
    put(&stack, "index.html", "v1").await?;
    stack.deliver(FUNCTION).await?;
    assert!(invalidations(&stack).await?.is_empty());
    let reasons = stack.dead_letter_reasons("WebsiteChangesDLQ").await?;
    assert!(
        !reasons.is_empty() && reasons.iter().all(|r| r.contains("AccessDenied")),
        "{reasons:?}"
    );
    let denials = stack.take_denials().await?;
    let distribution = stack.resource("WebsiteDistribution");
    assert!(
        !denials.is_empty()
            && denials.iter().all(|d| d.contains("cdn-invalidator")
                && d.contains("cloudfront:CreateInvalidation")
                && d.contains(&format!("distribution/{distribution}"))),
        "{denials:#?}"
    );
    Ok(())
}

/// CloudFront takes 3,000 file paths and, apart, 15 wildcard paths in invalidations in
/// progress on a distribution, and refuses more with TooManyInvalidationsInProgress (the local
/// stack too: moto_server.py). With both taken, a change fails as retryable, its whole-site
/// fallback too — never dead-lettered — and its redelivery, once the earlier invalidations
/// completed, invalidates it.
#[tokio::test]
async fn the_in_progress_limit_waits_and_the_change_is_invalidated_after() -> Result<()> {
    let mut stack = LocalStack::start().await?;
    let cloudfront = stack.cloudfront();
    let distribution = stack.resource("WebsiteDistribution");
    let queue = stack.resource("WebsiteChangesQueue");
    // Someone else's invalidations of 3,000 files and 15 wildcards, in progress for 10 s.
    let busy_since = std::time::Instant::now();
    let files: Vec<String> = (0..3000).map(|n| format!("/old/page-{n}.html")).collect();
    cloudfront
        .create_invalidation()
        .distribution_id(&distribution)
        .invalidation_batch(
            aws_sdk_cloudfront::types::InvalidationBatch::builder()
                .caller_reference("someone-else-files")
                .paths(
                    aws_sdk_cloudfront::types::Paths::builder()
                        .quantity(files.len() as i32)
                        .set_items(Some(files))
                        .build()?,
                )
                .build()?,
        )
        .send()
        .await?;
    for n in 0..15 {
        cloudfront
            .create_invalidation()
            .distribution_id(&distribution)
            .invalidation_batch(
                aws_sdk_cloudfront::types::InvalidationBatch::builder()
                    .caller_reference(format!("someone-else-{n}"))
                    .paths(
                        aws_sdk_cloudfront::types::Paths::builder()
                            .quantity(1)
                            .items(format!("/section-{n}/*"))
                            .build()?,
                    )
                    .build()?,
            )
            .send()
            .await?;
    }
    put(&stack, "pricing.html", "v1").await?;
    let messages = stack.peek(&queue).await?;
    let event = sqs_event(
        &messages,
        &stack.stack.functions[FUNCTION].sqs[0].queue_arn,
        REGION,
    )
    .to_string();
    let batch_failures = |payload: &[u8]| -> usize {
        serde_json::from_slice::<serde_json::Value>(payload)
            .ok()
            .and_then(|v| v["batchItemFailures"].as_array().map(Vec::len))
            .unwrap_or(0)
    };

    let host = stack.host();
    let refused = host.invoke(FUNCTION, event.clone().into()).await?;
    assert!(
        refused.function_error.is_some() || batch_failures(&refused.payload) > 0,
        "{}",
        stack.function_log(FUNCTION)
    );
    let log = stack.function_log(FUNCTION);
    assert!(log.contains("TooManyInvalidationsInProgress"), "{log}");
    assert!(log.contains("invalidating the whole site"), "{log}");
    assert!(stack
        .dead_letter_reasons("WebsiteChangesDLQ")
        .await?
        .is_empty());
    let invalidated = |found: &[(String, BTreeSet<String>)]| {
        found
            .iter()
            .any(|(_, paths)| paths.contains("/pricing.html"))
    };
    assert!(!invalidated(&invalidations(&stack).await?));

    // The earlier ones complete; the redelivery gets through.
    tokio::time::sleep(std::time::Duration::from_secs(11).saturating_sub(busy_since.elapsed()))
        .await;
    let again = host.invoke(FUNCTION, event.into()).await?;
    assert!(
        again.function_error.is_none() && batch_failures(&again.payload) == 0,
        "{}",
        stack.function_log(FUNCTION)
    );
    assert!(invalidated(&invalidations(&stack).await?));
    Ok(())
}
