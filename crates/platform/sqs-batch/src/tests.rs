use super::*;
use std::sync::Mutex;

fn event(ids: &[&str], source_arn: &str) -> SqsEvent {
    let records: Vec<_> = ids
        .iter()
        .map(|id| {
            serde_json::json!({
                "messageId": id, "receiptHandle": format!("rh-{id}"), "body": format!("body-{id}"),
                "attributes": {}, "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": source_arn, "awsRegion": "eu-west-2"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

const STANDARD: &str = "arn:aws:sqs:eu-west-2:123456789012:website-changes";
const FIFO: &str = "arn:aws:sqs:eu-west-2:123456789012:orders.fifo";

fn failed_ids(response: &SqsBatchResponse) -> Vec<&str> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect()
}

#[tokio::test]
async fn only_failed_records_are_reported() {
    let event = event(&["a", "b", "c"], STANDARD);
    let response = process_each(&event, None, 4, |_, record| {
        let bad = record.message_id.as_deref() == Some("b");
        async move {
            if bad {
                Err(FunctionError::retryable("database restarting"))
            } else {
                Ok(())
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(failed_ids(&response), ["b"]);
}

#[tokio::test]
async fn invocation_fails_when_every_record_failed() {
    let event = event(&["a", "b"], STANDARD);
    let err = process_each(&event, None, 2, |_, _| async {
        Err(FunctionError::retryable("throttled"))
    })
    .await
    .unwrap_err();
    assert_eq!(err.disposition, Disposition::Retryable);
    assert!(
        err.message.starts_with("all 2 records of the batch failed"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn empty_batch_succeeds() {
    let event = event(&[], STANDARD);
    let response = process_each(&event, None, 2, |_, _| async { Ok(()) })
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
}

#[tokio::test]
async fn fifo_stops_at_first_failure_and_reports_the_rest() {
    let event = event(&["a", "b", "c", "d"], FIFO);
    let seen = Mutex::new(Vec::new());
    let response = process_each(&event, None, 4, |_, record| {
        let id = record.message_id.clone().unwrap();
        seen.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(id.clone());
        async move {
            if id == "b" {
                Err(FunctionError::retryable("boom"))
            } else {
                Ok(())
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(
        *seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        ["a", "b"],
        "c and d must not be processed"
    );
    assert_eq!(failed_ids(&response), ["b", "c", "d"]);
}

#[tokio::test]
async fn permanent_failure_without_dead_letter_queue_is_reported_for_redrive() {
    let event = event(&["a", "b"], STANDARD);
    let mut outcome = BatchOutcome::new(&event);
    outcome.fail(0, FunctionError::permanent("not JSON"));
    outcome.fail(
        0,
        FunctionError::retryable("second failure of the same record is ignored"),
    );
    let response = outcome.finish(None).await.unwrap();
    assert_eq!(failed_ids(&response), ["a"]);
}

#[test]
fn retry_delays_double_per_receive_up_to_the_cap() {
    use std::time::Duration;
    let delays: Vec<u64> = (1..=6)
        .map(|n| retry_delay(Duration::from_secs(60), Duration::from_secs(900), n).as_secs())
        .collect();
    assert_eq!(delays, [60, 120, 240, 480, 900, 900]);
    assert_eq!(
        retry_delay(Duration::from_secs(60), Duration::from_secs(900), 0).as_secs(),
        60
    );
}

// What SQS is asked can only be seen by the client, so the client is a mock.
#[tokio::test]
async fn a_failure_that_knows_when_to_retry_comes_back_then() {
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    let asked = std::sync::Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    let change = mock!(aws_sdk_sqs::Client::change_message_visibility)
        .match_requests(move |r| {
            seen.lock()
                .unwrap()
                .push((r.receipt_handle().unwrap_or_default().to_owned(), r.visibility_timeout()));
            true
        })
        .then_output(|| {
            aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityOutput::builder().build()
        });
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&change]);
    let dead_letters = DeadLetters::new(client, "dlq").with_retry_backoff(
        "source",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(900),
    );
    let event = event(&["running", "flaky"], STANDARD);
    let response = process_each(&event, Some(&dead_letters), 1, |_, record| {
        let running = record.message_id.as_deref() == Some("running");
        async move {
            let failure = FunctionError::retryable("still running");
            Err(if running {
                failure.retry_after(std::time::Duration::from_secs(1800))
            } else {
                failure
            })
        }
    })
    .await;
    assert!(response.is_err(), "every record failed");
    let asked = asked.lock().unwrap();
    assert_eq!(
        *asked,
        [
            ("rh-running".to_owned(), Some(1800)),
            ("rh-flaky".to_owned(), Some(60))
        ]
    );
}

#[tokio::test]
async fn file_pipelines_see_the_created_objects_of_each_record_in_order() {
    let change = |name: &str, key: &str| {
        format!(
            r#"{{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"eu-west-2","eventTime":"2026-12-02T00:00:00.000Z","eventName":"{name}","s3":{{"s3SchemaVersion":"1.0","bucket":{{"name":"landing","arn":"arn:aws:s3:::landing"}},"object":{{"key":"{key}","size":1,"eTag":"e"}}}}}}"#
        )
    };
    let body = format!(
        r#"{{"Records":[{},{},{}]}}"#,
        change("ObjectCreated:Put", "a.csv"),
        change("ObjectRemoved:Delete", "b.csv"),
        change("ObjectCreated:Copy", "c.csv")
    );
    let mut event = event(&["m1"], STANDARD);
    event.records[0].body = Some(body);
    let seen = Mutex::new(Vec::new());
    let response = process_created_objects(&event, None, |change, attempt| {
        seen.lock().unwrap().push((change.key, attempt));
        async { Ok(()) }
    })
    .await
    .unwrap();
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        *seen.lock().unwrap(),
        [("a.csv".to_owned(), 1), ("c.csv".to_owned(), 1)]
    );
}

/// A DynamoDB import of three hours, looked at every 15 minutes: past the queue's
/// maxReceiveCount (10) times the look's delay, yet each look is a new message, so its
/// receive count never grows and nothing is dead-lettered; the look that finds it done
/// completes the message.
#[tokio::test]
async fn following_running_work_spends_no_receive() {
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    const MAX_RECEIVE_COUNT: u32 = 10;
    let sent = std::sync::Arc::new(Mutex::new(Vec::new()));
    let seen = sent.clone();
    let resend = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(move |r| {
            seen.lock().unwrap().push((
                r.queue_url().unwrap_or_default().to_owned(),
                r.delay_seconds(),
                r.message_body().unwrap_or_default().to_owned(),
                r.message_attributes()
                    .and_then(|a| a.get(FOLLOW_UPS))
                    .and_then(|v| v.string_value())
                    .unwrap_or_default()
                    .to_owned(),
            ));
            true
        })
        .then_output(|| aws_sdk_sqs::operation::send_message::SendMessageOutput::builder().build());
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&resend]);
    let dead_letters = DeadLetters::new(client, "dlq").with_retry_backoff(
        "source",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(900),
    );
    let look = std::time::Duration::from_secs(900);
    let import_takes = std::time::Duration::from_secs(3 * 3600);
    let mut elapsed = std::time::Duration::ZERO;
    let mut follow_ups = 0u32;
    let mut looks = 0;
    loop {
        looks += 1;
        let mut delivered = event(&["import"], STANDARD);
        let record = &mut delivered.records[0];
        record.body = Some("the S3 notification".into());
        record
            .attributes
            .insert("ApproximateReceiveCount".into(), "1".into());
        if follow_ups > 0 {
            let mut attribute = aws_lambda_events::sqs::SqsMessageAttribute::default();
            attribute.string_value = Some(follow_ups.to_string());
            attribute.data_type = Some("Number".into());
            record
                .message_attributes
                .insert(FOLLOW_UPS.into(), attribute);
        }
        assert!(receive_count(record) <= MAX_RECEIVE_COUNT);
        let done = elapsed >= import_takes;
        let response = process_each(&delivered, Some(&dead_letters), 1, |_, _| async move {
            if done {
                Ok(())
            } else {
                Err(FunctionError::still_running("import still running", look))
            }
        })
        .await
        .unwrap();
        assert!(
            failed_ids(&response).is_empty(),
            "look {looks} was a failure"
        );
        if done {
            break;
        }
        let (queue, delay, body, count) = sent.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            (queue.as_str(), delay, body.as_str()),
            ("source", Some(900), "the S3 notification")
        );
        follow_ups = count.parse().unwrap();
        elapsed += look;
    }
    assert!(looks as u32 > MAX_RECEIVE_COUNT, "{looks} looks");
    assert_eq!(follow_ups, 12);
}

/// At `MAX_FOLLOW_UPS` the message is not sent again: it fails as usual and comes back as a
/// receive, so work that never ends still reaches the DLQ through `maxReceiveCount`.
#[tokio::test]
async fn a_message_followed_as_often_as_allowed_fails_as_usual() {
    use aws_smithy_mocks::{mock, mock_client, RuleMode};
    let sends = std::sync::Arc::new(Mutex::new(0));
    let counted = sends.clone();
    let resend = mock!(aws_sdk_sqs::Client::send_message)
        .match_requests(move |_| {
            *counted.lock().unwrap() += 1;
            true
        })
        .then_output(|| aws_sdk_sqs::operation::send_message::SendMessageOutput::builder().build());
    let back_off = mock!(aws_sdk_sqs::Client::change_message_visibility).then_output(|| {
        aws_sdk_sqs::operation::change_message_visibility::ChangeMessageVisibilityOutput::builder()
            .build()
    });
    let client = mock_client!(aws_sdk_sqs, RuleMode::MatchAny, [&resend, &back_off]);
    let dead_letters = DeadLetters::new(client, "dlq").with_retry_backoff(
        "source",
        std::time::Duration::from_secs(60),
        std::time::Duration::from_secs(900),
    );
    let mut delivered = event(&["import", "other"], STANDARD);
    for (record, count) in delivered
        .records
        .iter_mut()
        .zip([MAX_FOLLOW_UPS, MAX_FOLLOW_UPS - 1])
    {
        let mut attribute = aws_lambda_events::sqs::SqsMessageAttribute::default();
        attribute.string_value = Some(count.to_string());
        attribute.data_type = Some("Number".into());
        record
            .message_attributes
            .insert(FOLLOW_UPS.into(), attribute);
    }
    let look = std::time::Duration::from_secs(900);
    let response = process_each(&delivered, Some(&dead_letters), 1, |_, _| async move {
        Err(FunctionError::still_running("import still running", look))
    })
    .await
    .unwrap();
    // The one at the limit fails; the one below it is followed once more.
    assert_eq!(failed_ids(&response), ["import"]);
    assert_eq!(*sends.lock().unwrap(), 1);
}
