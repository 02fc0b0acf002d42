use super::*;
use aws_sdk_cloudfront::operation::create_invalidation::CreateInvalidationError;
use aws_sdk_cloudfront::types::error::TooManyInvalidationsInProgress;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use landfall_failure::{Classify, Disposition};

#[test]
fn plan_encodes_dedupes_and_sorts_paths() {
    let plan = plan("E1", ["b.html", "a b.html", "b.html"], ["m2", "m1"], 100);
    assert_eq!(plan.distribution, "E1");
    assert_eq!(plan.paths, ["/a%20b.html", "/b.html"]);
    assert!(plan.caller_reference.starts_with("landfall-"));
    assert!(plan.caller_reference.len() <= 128);
}

#[test]
fn caller_reference_depends_on_messages_not_on_their_order() {
    let first = plan("E1", ["a", "b"], ["m1", "m2"], 100);
    let redelivered = plan("E1", ["b", "a"], ["m2", "m1"], 100);
    assert_eq!(first.caller_reference, redelivered.caller_reference);
    let later_change = plan("E1", ["a", "b"], ["m3", "m4"], 100);
    assert_ne!(first.caller_reference, later_change.caller_reference);
    let other_distribution = plan("E2", ["a", "b"], ["m1", "m2"], 100);
    assert_ne!(first.caller_reference, other_distribution.caller_reference);
}

#[test]
fn plan_collapses_above_threshold() {
    let keys: Vec<String> = (0..50).map(|i| format!("img/{i}.png")).collect();
    let plan = plan(
        "E1",
        keys.iter().map(String::as_str).chain(["index.html"]),
        ["m"],
        10,
    );
    assert_eq!(plan.paths, ["/img/*", "/index.html"]);
}

// The plan's answer to TooManyInvalidationsInProgress, unit by unit (the local stack gives it
// end to end: tests/tests/cdn_invalidator.rs).
#[tokio::test]
async fn too_many_invalidations_in_progress_is_retryable() {
    let busy = mock!(aws_sdk_cloudfront::Client::create_invalidation).then_error(|| {
        CreateInvalidationError::TooManyInvalidationsInProgress(
            TooManyInvalidationsInProgress::builder()
                .message("Processing your request will cause you to exceed the maximum number of in-progress invalidations")
                .build(),
        )
    });
    // Refused as asked, and refused again as `/*`.
    let client = mock_client!(aws_sdk_cloudfront, RuleMode::MatchAny, [&busy]);
    let invalidator = Invalidator::new(client);
    let err = invalidator
        .submit(&plan("E1", ["index.html"], ["m1"], 100), None)
        .await
        .unwrap_err();
    assert_eq!(err.disposition(), Disposition::Retryable, "{err}");
    assert!(err.limited(), "{err}");
    assert!(err.to_string().contains("E1"), "{err}");
}

/// CloudFront as its limits are: at most 3,000 file paths and 15 wildcard paths in progress
/// per distribution ("Concurrent invalidation request maximum"); `complete` finishes them.
#[derive(Default)]
struct Limits {
    files: usize,
    wildcards: usize,
    created: usize,
}

fn limited_cloudfront(
    limits: std::sync::Arc<std::sync::Mutex<Limits>>,
) -> aws_sdk_cloudfront::Client {
    use aws_sdk_cloudfront::operation::create_invalidation::CreateInvalidationOutput;
    use aws_sdk_cloudfront::types::Invalidation as Created;
    use aws_smithy_mocks::MockResponse;
    // A computed response repeats for every call.
    let create = mock!(aws_sdk_cloudfront::Client::create_invalidation).then_compute_response(
        move |request| {
            let paths = request
                .invalidation_batch()
                .and_then(|b| b.paths())
                .map(|p| p.items().to_vec())
                .unwrap_or_default();
            let wildcards = paths.iter().filter(|p| p.ends_with('*')).count();
            let files = paths.len() - wildcards;
            let mut limits = limits.lock().unwrap();
            if limits.files + files > 3000 || limits.wildcards + wildcards > 15 {
                return MockResponse::Error(
                    CreateInvalidationError::TooManyInvalidationsInProgress(
                        TooManyInvalidationsInProgress::builder()
                            .message("limit")
                            .build(),
                    ),
                );
            }
            limits.files += files;
            limits.wildcards += wildcards;
            limits.created += 1;
            MockResponse::Output(
                CreateInvalidationOutput::builder()
                    .invalidation(
                        Created::builder()
                            .id(format!("I{}", limits.created))
                            .status("InProgress")
                            .create_time(DateTime::from_secs(0))
                            .build()
                            .unwrap(),
                    )
                    .build(),
            )
        },
    );
    mock_client!(aws_sdk_cloudfront, RuleMode::MatchAny, [&create])
}

#[tokio::test]
async fn a_batch_past_cloudfronts_in_progress_limit_invalidates_the_whole_site() {
    let limits = std::sync::Arc::new(std::sync::Mutex::new(Limits {
        files: 2950,
        ..Limits::default()
    }));
    let invalidator = Invalidator::new(limited_cloudfront(limits.clone()));
    let keys: Vec<String> = (0..100).map(|i| format!("assets/{i}.js")).collect();
    let submitted = invalidator
        .submit(
            &plan("E1", keys.iter().map(String::as_str), ["m1"], 200),
            None,
        )
        .await
        .unwrap();
    assert!(submitted.whole_site);
    let limits = limits.lock().unwrap();
    assert_eq!((limits.files, limits.wildcards), (2950, 1));
}

/// A 20,000-file site deploy: 200 batches of 100 new paths. Between two receives of a
/// refused batch (LIMITED_RETRY_AFTER, 5 minutes) CloudFront completes what is in progress
/// (minutes, "Invalidating files"). Every batch is invalidated within the queue's
/// maxReceiveCount (8, template.yaml's WebsiteChangesQueue), so none is dead-lettered.
#[tokio::test]
async fn a_20000_file_deploy_is_invalidated_within_the_queues_receives() {
    const MAX_RECEIVE_COUNT: usize = 8;
    let limits = std::sync::Arc::new(std::sync::Mutex::new(Limits::default()));
    let invalidator = Invalidator::new(limited_cloudfront(limits.clone()));
    let batches: Vec<Vec<String>> = (0..200)
        .map(|b| (0..100).map(|f| format!("release/{b}/{f}.html")).collect())
        .collect();
    let mut pending: Vec<usize> = (0..batches.len()).collect();
    let mut receives = 0;
    while !pending.is_empty() {
        receives += 1;
        assert!(
            receives <= MAX_RECEIVE_COUNT,
            "{} batches still refused after {MAX_RECEIVE_COUNT} receives",
            pending.len()
        );
        let mut refused = vec![];
        for &batch in &pending {
            let id = format!("m{batch}");
            let asked = plan(
                "E1",
                batches[batch].iter().map(String::as_str),
                [id.as_str()],
                200,
            );
            match invalidator.submit(&asked, None).await {
                Ok(_) => {}
                Err(err) if err.limited() => refused.push(batch),
                Err(err) => panic!("{err}"),
            }
        }
        pending = refused;
        // Five minutes later, what was in progress is done.
        let mut done = limits.lock().unwrap();
        done.files = 0;
        done.wildcards = 0;
    }
    assert!(receives >= 2, "the limit was reached: {receives}");
}

// Throttling that outlasts the SDK's own retries comes back as a retryable failure.
#[tokio::test]
async fn throttling_is_retryable() {
    let throttled = mock!(aws_sdk_cloudfront::Client::create_invalidation).then_error(|| {
        CreateInvalidationError::generic(
            aws_sdk_cloudfront::error::ErrorMetadata::builder()
                .code("Throttling")
                .message("Rate exceeded")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_cloudfront, RuleMode::MatchAny, [&throttled]);
    let err = Invalidator::new(client)
        .submit(&plan("E1", ["index.html"], ["m1"], 100), None)
        .await
        .unwrap_err();
    assert_eq!(err.disposition(), Disposition::Retryable, "{err}");
}

#[tokio::test]
async fn missing_distribution_is_permanent() {
    let missing = mock!(aws_sdk_cloudfront::Client::create_invalidation).then_error(|| {
        CreateInvalidationError::NoSuchDistribution(
            aws_sdk_cloudfront::types::error::NoSuchDistribution::builder()
                .message("The specified distribution does not exist.")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_cloudfront, RuleMode::MatchAny, [&missing]);
    let err = Invalidator::new(client)
        .submit(&plan("E404", ["index.html"], ["m1"], 100), None)
        .await
        .unwrap_err();
    assert_eq!(err.disposition(), Disposition::Permanent, "{err}");
}
