use super::*;
use aws_sdk_cloudfront::operation::create_invalidation::CreateInvalidationError;
use aws_sdk_cloudfront::types::error::TooManyInvalidationsInProgress;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use landfall_runtime::Classify;

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

// moto never answers TooManyInvalidationsInProgress, so this one failure is mocked.
#[tokio::test]
async fn too_many_invalidations_in_progress_is_retryable() {
    let busy = mock!(aws_sdk_cloudfront::Client::create_invalidation).then_error(|| {
        CreateInvalidationError::TooManyInvalidationsInProgress(
            TooManyInvalidationsInProgress::builder()
                .message("Processing your request will cause you to exceed the maximum number of in-progress invalidations")
                .build(),
        )
    });
    let client = mock_client!(aws_sdk_cloudfront, RuleMode::Sequential, [&busy]);
    let invalidator = Invalidator::new(client);
    let err = invalidator
        .submit(&plan("E1", ["index.html"], ["m1"], 100), None)
        .await
        .unwrap_err();
    assert_eq!(err.disposition(), Disposition::Retryable, "{err}");
    assert!(err.to_string().contains("E1"), "{err}");
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
