//! What moto never answers — failed and cancelled imports, imports that outlast an
//! invocation, LimitExceededException, throttling — with aws-smithy-mocks. Every test
//! leaves SSM without a rule: a call to it (a pointer switch) would fail the test.

use super::*;
use aws_sdk_dynamodb::operation::describe_import::DescribeImportOutput;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::operation::import_table::ImportTableError;
use aws_sdk_dynamodb::types::error::{LimitExceededException, ResourceNotFoundException};
use aws_sdk_dynamodb::types::{ImportStatus, ImportTableDescription};
use aws_sdk_s3::operation::get_object::GetObjectOutput;
use aws_sdk_s3::operation::put_object::PutObjectOutput;
use aws_smithy_mocks::{mock, mock_client, Rule, RuleMode};
use landfall_dynamodb_datasets::Datasets;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

const TABLE: &str = "landfall-price_index-v1";
const ARN: &str = "arn:aws:dynamodb:eu-west-2:1:table/landfall-price_index-v1/import/01";

fn record(import_arn: Option<&str>) -> ImportRecord {
    ImportRecord {
        source: ObjectVersion {
            bucket: "landing".into(),
            key: "dynamodb/price_index/f.csv".into(),
            version: Version::Id("v1".into()),
        },
        landed: "2026-12-02T00:00:00Z".into(),
        table: TABLE.into(),
        rows: 1000,
        parts: 2,
        bytes: 600 * 1024 * 1024,
        claim: None,
        import_arn: import_arn.map(str::to_owned),
        switch: None,
    }
}

/// S3 holding `stored` as the import record; every PutObject is kept in `puts`.
fn s3(stored: ImportRecord, puts: Arc<Mutex<Vec<ImportRecord>>>) -> aws_sdk_s3::Client {
    let get = mock!(aws_sdk_s3::Client::get_object).then_output(move || {
        GetObjectOutput::builder()
            .e_tag("\"e1\"")
            .body(serde_json::to_vec(&stored).unwrap().into())
            .build()
    });
    let put = mock!(aws_sdk_s3::Client::put_object)
        .match_requests(move |request| {
            let body = request.body().bytes().unwrap_or_default();
            puts.lock()
                .unwrap()
                .push(serde_json::from_slice(body).unwrap());
            true
        })
        .then_output(|| PutObjectOutput::builder().e_tag("\"e2\"").build());
    mock_client!(aws_sdk_s3, RuleMode::MatchAny, [&get, &put])
}

fn describe(status: ImportStatus, imported: i64, errors: i64) -> Rule {
    mock!(aws_sdk_dynamodb::Client::describe_import).then_output(move || {
        DescribeImportOutput::builder()
            .import_table_description(
                ImportTableDescription::builder()
                    .import_arn(ARN)
                    .import_status(status.clone())
                    .imported_item_count(imported)
                    .error_count(errors)
                    .processed_size_bytes(1234)
                    .failure_code("ItemValidationError")
                    .failure_message("One or more parameter values were invalid")
                    .build(),
            )
            .build()
    })
}

/// DeleteTable succeeds and the table is then gone; `deleted` counts the deletes.
fn deletes(deleted: Arc<Mutex<Vec<String>>>) -> [Rule; 2] {
    let delete = mock!(aws_sdk_dynamodb::Client::delete_table)
        .match_requests(move |r| {
            deleted
                .lock()
                .unwrap()
                .push(r.table_name().unwrap_or_default().to_owned());
            true
        })
        .then_output(|| {
            aws_sdk_dynamodb::operation::delete_table::DeleteTableOutput::builder().build()
        });
    let gone = mock!(aws_sdk_dynamodb::Client::describe_table).then_error(|| {
        DescribeTableError::ResourceNotFoundException(ResourceNotFoundException::builder().build())
    });
    [delete, gone]
}

fn importer(s3: aws_sdk_s3::Client, dynamodb: aws_sdk_dynamodb::Client) -> Importer {
    Importer {
        s3,
        dynamodb,
        ssm: mock_client!(aws_sdk_ssm, RuleMode::MatchAny, []),
        settings: Settings {
            import_bucket: "landing".into(),
            import_prefix: "imports".into(),
            table_prefix: "landfall-".into(),
            pointer_prefix: "/landfall/dynamodb".into(),
            split_bytes: 1 << 20,
            concurrency: 2,
            poll_interval: Duration::from_millis(10),
            import_bytes_per_second: 1024 * 1024,
            claim_stale_after: CLAIM_STALE_AFTER,
        },
    }
}

async fn run(importer: &Importer, seconds_left: u64) -> Result<Imported, ImportError> {
    let datasets = Datasets::parse("dynamodb.toml", landfall_dynamodb_datasets::BUNDLED).unwrap();
    let source = record(None).source;
    let job = Job {
        dataset_name: "price_index",
        dataset: datasets.get("price_index").unwrap(),
        source: &source,
        landed: "2026-12-02T00:00:00Z",
        attempt: "attempt-1",
    };
    let deadline = Deadline::at(SystemTime::now() + Duration::from_secs(seconds_left));
    importer.run(&job, &deadline).await
}

#[tokio::test]
async fn a_failed_import_removes_its_table_and_names_the_failure() {
    for status in [ImportStatus::Failed, ImportStatus::Cancelled] {
        let deleted = Arc::new(Mutex::new(Vec::new()));
        let [delete, gone] = deletes(deleted.clone());
        let dynamodb = mock_client!(
            aws_sdk_dynamodb,
            RuleMode::MatchAny,
            [&describe(status.clone(), 10, 3), &delete, &gone]
        );
        let s3 = s3(record(Some(ARN)), Default::default());
        let err = run(&importer(s3, dynamodb), 300).await.unwrap_err();
        assert_eq!(err.disposition(), Disposition::Permanent, "{err}");
        let text = err.to_string();
        assert!(
            text.contains(ARN)
                && text.contains("ItemValidationError: One or more parameter values were invalid")
                && text.contains("the pointer is unchanged"),
            "{text}"
        );
        assert_eq!(*deleted.lock().unwrap(), [TABLE]);
    }
}

#[tokio::test]
async fn an_import_short_of_the_files_rows_removes_its_table() {
    let deleted = Arc::new(Mutex::new(Vec::new()));
    let [delete, gone] = deletes(deleted.clone());
    let dynamodb = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        [&describe(ImportStatus::Completed, 999, 0), &delete, &gone]
    );
    let err = run(
        &importer(s3(record(Some(ARN)), Default::default()), dynamodb),
        300,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(
            err,
            ImportError::Incomplete {
                imported: 999,
                rows: 1000,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(*deleted.lock().unwrap(), [TABLE]);
}

#[tokio::test]
async fn an_import_outlasting_the_invocation_comes_back_when_it_should_be_done() {
    let dynamodb = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        [&describe(ImportStatus::InProgress, 0, 0)]
    );
    // 22 s left: the runtime's 20 s reserve and the follow margin leave no time to poll.
    let err = run(
        &importer(s3(record(Some(ARN)), Default::default()), dynamodb),
        22,
    )
    .await
    .unwrap_err();
    assert_eq!(err.disposition(), Disposition::Retryable, "{err}");
    // 600 MiB at 1 MiB/s, the import's start time unknown: 600 s.
    assert_eq!(err.retry_after(), Some(Duration::from_secs(600)), "{err}");
    assert!(err.to_string().contains("still running"), "{err}");
}

#[tokio::test]
async fn too_many_imports_at_once_is_retryable_and_releases_the_claim() {
    let limited = mock!(aws_sdk_dynamodb::Client::import_table).then_error(|| {
        ImportTableError::LimitExceededException(
            LimitExceededException::builder()
                .message("Too many concurrent imports")
                .build(),
        )
    });
    let throttled = mock!(aws_sdk_dynamodb::Client::import_table).then_error(|| {
        ImportTableError::generic(
            aws_sdk_dynamodb::error::ErrorMetadata::builder()
                .code("ThrottlingException")
                .message("Rate exceeded")
                .build(),
        )
    });
    for rule in [limited, throttled] {
        let puts = Arc::new(Mutex::new(Vec::new()));
        let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]);
        let err = run(&importer(s3(record(None), puts.clone()), dynamodb), 300)
            .await
            .unwrap_err();
        assert_eq!(err.disposition(), Disposition::Retryable, "{err}");
        let puts = puts.lock().unwrap();
        assert_eq!(puts.len(), 2, "the claim, then its release");
        assert_eq!(
            puts[0].claim.as_ref().map(|c| c.by.as_str()),
            Some("attempt-1")
        );
        assert_eq!(puts[1].claim, None);
        assert_eq!(puts[1].import_arn, None);
    }
}

#[test]
fn table_names_and_client_tokens_are_stable_and_valid() {
    assert_eq!(
        version_table("landfall-price_index", &Version::Id("3/Lg+v.x_Y".into())),
        "landfall-price_index-3_Lg_v.x_Y"
    );
    assert_eq!(version_table("t", &Version::ETag("abc".into())), "t-abc");
    assert!(version_table("t", &Version::Id("v".repeat(300))).len() == 255);
    let source = record(None).source;
    let token = client_token(&source, TABLE);
    assert_eq!(token, client_token(&source, TABLE));
    assert_eq!(token.len(), 32);
    let other = ObjectVersion {
        version: Version::Id("v2".into()),
        ..source
    };
    assert_ne!(token, client_token(&other, TABLE));
}

#[tokio::test]
async fn a_failed_imports_table_that_cannot_be_deleted_is_left_for_retirement() {
    let denied = mock!(aws_sdk_dynamodb::Client::delete_table).then_error(|| {
        aws_sdk_dynamodb::operation::delete_table::DeleteTableError::generic(
            aws_sdk_dynamodb::error::ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("not allowed")
                .build(),
        )
    });
    let described = mock!(aws_sdk_dynamodb::Client::describe_table).then_output(|| {
        aws_sdk_dynamodb::operation::describe_table::DescribeTableOutput::builder()
            .table(
                aws_sdk_dynamodb::types::TableDescription::builder()
                    .table_arn("arn:aws:dynamodb:eu-west-2:1:table/landfall-price_index-v1")
                    .build(),
            )
            .build()
    });
    let tags = Arc::new(Mutex::new(Vec::new()));
    let seen = tags.clone();
    let tagged = mock!(aws_sdk_dynamodb::Client::tag_resource)
        .match_requests(move |r| {
            for tag in r.tags() {
                seen.lock()
                    .unwrap()
                    .push((tag.key().to_owned(), tag.value().to_owned()));
            }
            true
        })
        .then_output(|| {
            aws_sdk_dynamodb::operation::tag_resource::TagResourceOutput::builder().build()
        });
    let dynamodb = mock_client!(
        aws_sdk_dynamodb,
        RuleMode::MatchAny,
        [
            &describe(ImportStatus::Failed, 0, 1),
            &denied,
            &described,
            &tagged
        ]
    );
    let err = run(
        &importer(s3(record(Some(ARN)), Default::default()), dynamodb),
        300,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ImportError::Failed { .. }), "{err}");
    assert_eq!(
        *tags.lock().unwrap(),
        [(table::RETIRED_TAG.to_owned(), "0".to_owned())]
    );
}

/// A claim with no import ARN: fresh, another delivery is starting the import and this one
/// waits for it; older than STALE_CLAIM_SECONDS, its delivery died and this one takes over.
#[tokio::test]
async fn a_claim_is_waited_for_until_it_goes_stale_then_taken_over() {
    let claim_at = |age: i64| {
        let mut claimed = record(None);
        claimed.claim = Some(Claim {
            by: "attempt-0".into(),
            at: now() - age,
        });
        claimed
    };
    let limited = mock!(aws_sdk_dynamodb::Client::import_table).then_error(|| {
        ImportTableError::LimitExceededException(LimitExceededException::builder().build())
    });

    // Fresh (just inside the limit), with no time to wait: come back later, write nothing.
    let puts = Arc::new(Mutex::new(Vec::new()));
    let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&limited]);
    let fresh = claim_at(CLAIM_STALE_AFTER.as_secs() as i64 - 5);
    let err = run(&importer(s3(fresh, puts.clone()), dynamodb), 22)
        .await
        .unwrap_err();
    assert!(matches!(err, ImportError::Claimed { .. }), "{err}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert!(puts.lock().unwrap().is_empty());

    // Stale (just past it): this delivery claims the import and starts it.
    let puts = Arc::new(Mutex::new(Vec::new()));
    let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&limited]);
    let stale = claim_at(CLAIM_STALE_AFTER.as_secs() as i64 + 1);
    let err = run(&importer(s3(stale, puts.clone()), dynamodb), 300)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ImportError::Aws { .. }) && err.to_string().starts_with("importing"),
        "the import was started: {err}"
    );
    let puts = puts.lock().unwrap();
    assert_eq!(
        puts[0].claim.as_ref().map(|c| c.by.as_str()),
        Some("attempt-1")
    );
}

/// SQS cannot hide a message for more than 12 hours: a huge import is followed again then.
#[test]
fn the_wait_for_an_import_is_at_least_a_minute_and_at_most_twelve_hours() {
    let dynamodb = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, []);
    let importer = importer(s3(record(None), Default::default()), dynamodb);
    let mut huge = record(None);
    huge.bytes = 1 << 50;
    assert_eq!(importer.time_still_needed(&huge, None), MAX_RETRY_AFTER);
    let mut tiny = record(None);
    tiny.bytes = 10;
    assert_eq!(
        importer.time_still_needed(&tiny, Some(now())),
        Duration::from_secs(60)
    );
}
