//! P2 end to end: a file under dynamodb/ in the landing bucket → S3 notification → SQS →
//! dynamodb-loader (the real binary) → gzipped DynamoDB JSON → moto's ImportTable → the
//! pointer switched, the old table retired. What a file may hold: `input.rs` here; the
//! import library on its own: `import.rs`.

mod import;
mod input;

use anyhow::Result;
use landfall_tests::file_pipeline;
use landfall_tests::file_pipeline::dynamodb::{
    csv, datasets_file, dynamodb, expected, items, notification, pointer, stack, tables, CHANGED,
    FIRST, FUNCTION, HEADER, P2,
};
use landfall_tests::LocalStack;
use serde_json::json;
use std::time::Duration;

const POINTER: &str = "/landfall/dynamodb/price_index";

/// Messages in P2's DLQ.
async fn dead_letters(stack: &LocalStack) -> Result<usize> {
    stack.queue_depth(&stack.resource("DynamodbFilesDLQ")).await
}

/// `body` landed at `key` and delivered: the table its import made, which the pointer names.
async fn imported(stack: &mut LocalStack, key: &str, body: String) -> Result<String> {
    let version = stack.put("LandingBucket", key, body.into_bytes()).await?;
    let delivery = stack.deliver(FUNCTION).await?;
    assert!(
        delivery.failed.is_empty() && delivery.received == 1,
        "{delivery:?}\n{}",
        stack.function_log(FUNCTION)
    );
    let table = format!("landfall-price_index-{version}");
    assert_eq!(
        pointer(stack).await?.as_deref(),
        Some(table.as_str()),
        "{}",
        stack.function_log(FUNCTION)
    );
    Ok(table)
}

#[tokio::test]
async fn a_file_becomes_the_current_table_and_a_changed_file_replaces_it() -> Result<()> {
    let datasets = datasets_file(2, "versioned");
    let mut stack = stack(&datasets).await?;
    let key = "dynamodb/price_index/prices.csv";
    let first_table = imported(&mut stack, key, csv(FIRST)).await?;
    assert_eq!(items(&stack, &first_table).await?, expected(FIRST));

    // Archived, gone from landing, and the people in charge told.
    let archive = stack.resource("ArchiveBucket");
    let archived = stack.keys(&archive, "dynamodb/price_index/").await?;
    assert!(
        archived.iter().any(|k| k.ends_with("/prices.csv")),
        "{archived:?}"
    );
    assert!(stack
        .keys(&stack.resource("LandingBucket"), "dynamodb/")
        .await?
        .is_empty());
    let emails = stack.sent_emails().await?;
    let (to, subject, body) = emails.last().expect("an email");
    assert_eq!(to, &["data-team@example.com".to_owned()]);
    assert!(subject.contains("3 items imported"), "{subject}");
    assert!(
        body.contains(&format!("Pointer: {POINTER}")) && body.contains("Parts: 1"),
        "{body}"
    );

    // A changed file: a new table, the pointer moves, the old table stays for its grace period.
    let changed = stack
        .put("LandingBucket", key, csv(CHANGED).into_bytes())
        .await?;
    let delivery = stack.deliver(FUNCTION).await?;
    assert!(
        delivery.failed.is_empty(),
        "{}",
        stack.function_log(FUNCTION)
    );
    let second_table = format!("landfall-price_index-{changed}");
    assert_eq!(
        pointer(&stack).await?.as_deref(),
        Some(second_table.as_str())
    );
    assert_eq!(items(&stack, &second_table).await?, expected(CHANGED));
    assert!(
        tables(&stack).await?.contains(&first_table),
        "still in its grace period"
    );
    let (_, _, body) = stack
        .sent_emails()
        .await?
        .last()
        .cloned()
        .expect("an email");
    assert!(
        body.contains(&format!(
            "the pointer moved from {first_table} to {second_table}"
        )),
        "{body}"
    );

    // The hourly schedule deletes it once the grace period has passed; never the current one.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let retired = stack
        .host()
        .invoke(FUNCTION, json!({"retire": {}}).to_string().into())
        .await?;
    assert_eq!(
        retired.json()?,
        json!({"deleted": [first_table]}),
        "{}",
        stack.function_log(FUNCTION)
    );
    assert_eq!(tables(&stack).await?, vec![second_table]);
    Ok(())
}

/// `aws s3 cp` uploads a file of 8 MB or more in parts; its ETag is no MD5 and its archive
/// copy's is. The file imports, is archived and leaves landing, and a later redelivery of
/// its notification finds it done: no dead letter, no failure email.
#[tokio::test]
async fn a_file_the_aws_cli_uploaded_in_parts_imports_archives_and_a_redelivery_is_done(
) -> Result<()> {
    let datasets = datasets_file(2, "versioned");
    let mut stack = stack(&datasets).await?;
    let key = "dynamodb/price_index/uploaded by the cli — prix d'été 価格.csv";
    // Long rows: few items for moto to import, the bytes a multipart upload needs.
    let long = "x".repeat(16 * 1024);
    let mut text = HEADER.to_owned();
    let mut rows = 0;
    while text.len() < 9 * 1024 * 1024 {
        // The long text is no key part: a partition key holds 2,048 bytes.
        text.push_str(&format!("2024-01,Geo {rows},Food,Item {rows},{long},1.5\n"));
        rows += 1;
    }
    let version = stack
        .upload_in_parts("LandingBucket", key, text.as_bytes())
        .await?;
    let queue = stack.resource("DynamodbFilesQueue");
    let notification = notification(&stack, &queue, "uploaded").await?;
    let delivery = stack.deliver(FUNCTION).await?;
    assert!(
        delivery.failed.is_empty(),
        "{delivery:?}\n{}",
        stack.function_log(FUNCTION)
    );
    let table = format!("landfall-price_index-{version}");
    assert_eq!(
        pointer(&stack).await?.as_deref(),
        Some(table.as_str()),
        "{}",
        stack.function_log(FUNCTION)
    );
    let mut counted = 0;
    let mut start = None;
    loop {
        let page = dynamodb(&stack)
            .scan()
            .table_name(&table)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .set_exclusive_start_key(start)
            .send()
            .await?;
        counted += page.count();
        start = page.last_evaluated_key().cloned();
        if start.is_none() {
            break;
        }
    }
    assert_eq!(counted, rows);
    assert!(stack
        .keys(&stack.resource("LandingBucket"), "dynamodb/")
        .await?
        .is_empty());

    // Delivered again after the archive: done, nothing dead-lettered, nothing imported twice.
    stack.send(&queue, &notification).await?;
    let again = stack.deliver(FUNCTION).await?;
    assert!(again.failed.is_empty() && again.received == 1, "{again:?}");
    assert_eq!(dead_letters(&stack).await?, 0);
    assert_eq!(tables(&stack).await?, vec![table]);
    let log = stack.function_log(FUNCTION);
    assert!(
        log.contains("no longer in landing: already imported and archived"),
        "{log}"
    );
    Ok(())
}

/// Found by a user: one file's notification delivered twice at the same time (S3 and SQS
/// deliver at least once) gave one import, but the slower delivery found the landing version
/// already archived by the other and dead-lettered the file as FAILED beside the success
/// email. Both deliveries now end well, and so does one more: one import, one archive copy,
/// one email, no DLQ.
#[tokio::test]
async fn one_file_delivered_twice_at_once_imports_once_and_nothing_is_dead_lettered() -> Result<()>
{
    file_pipeline::delivered_twice_at_once_and_again_later::<P2>().await
}

/// A good file: one import, the current table, archived, its people told.
#[tokio::test]
async fn a_good_file_imports_once() -> Result<()> {
    file_pipeline::a_good_file_loads_once::<P2>().await?;
    Ok(())
}

/// Keys no dataset owns, or that are no data file: refused, operations told.
#[tokio::test]
async fn an_unknown_key_is_refused_and_operations_told() -> Result<()> {
    file_pipeline::an_unknown_key_is_refused_and_operations_told::<P2>().await
}

/// A correction's table stays current when the first upload's notification comes back late.
#[tokio::test]
async fn a_newer_version_wins_over_an_older_one_delivered_late() -> Result<()> {
    file_pipeline::a_newer_version_wins_over_an_older_one_delivered_late::<P2>().await
}

/// Imported and switched by a delivery that died: the redelivery archives and tells, once.
#[tokio::test]
async fn a_redelivery_after_an_import_that_died_completes_it_once() -> Result<()> {
    file_pipeline::a_redelivery_after_a_load_that_died_completes_it_once::<P2>().await?;
    Ok(())
}

/// A bad field: refused before any import, naming its line and column.
#[tokio::test]
async fn a_bad_line_is_dead_lettered_at_once_naming_it() -> Result<()> {
    file_pipeline::a_bad_line_is_dead_lettered_at_once_naming_it::<P2>().await
}

/// An import that outlasts its invocation (moto holds it IN_PROGRESS for 8 s; the function
/// has 27 s, 7 of them usable) is followed, not retried: the message is sent again with a
/// delay, which spends no receive and dead-letters nothing, and the delivery after the import
/// ends switches the pointer to that one import's table.
#[tokio::test]
async fn an_import_outlasting_its_invocation_is_followed_by_a_delayed_message_not_a_receive(
) -> Result<()> {
    let datasets = datasets_file(2, "versioned");
    let mut stack = LocalStack::start_with(&[], &[("LANDFALL_IMPORT_SECONDS", "8")]).await?;
    stack.set_function_env(FUNCTION, "DYNAMODB_DATASETS_FILE", Some(datasets.as_str()));
    stack.set_function_env(FUNCTION, "IMPORT_POLL_MILLISECONDS", Some("100"));
    stack
        .stack
        .functions
        .get_mut(FUNCTION)
        .expect("P2's function")
        .timeout_secs = 27;
    assert!(stack.deliver(FUNCTION).await?.failed.is_empty());
    let key = "dynamodb/price_index/a slow import.csv";
    let version = stack
        .put("LandingBucket", key, csv(FIRST).into_bytes())
        .await?;
    let queue = stack.resource("DynamodbFilesQueue");
    let notification = notification(&stack, &queue, "slow").await?;

    let first = stack.deliver(FUNCTION).await?;
    let log = stack.function_log(FUNCTION);
    assert!(
        first.failed.is_empty() && first.deleted == 1,
        "{first:?}\n{log}"
    );
    assert!(
        log.contains("still running: the message comes back as a new one"),
        "{log}"
    );
    let attributes = stack
        .sqs()
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        .send()
        .await?;
    let delayed = attributes
        .attributes()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesDelayed)
        })
        .cloned();
    assert_eq!(
        delayed.as_deref(),
        Some("1"),
        "the follow-up waits its delay"
    );
    assert_eq!(pointer(&stack).await?, None);

    // The follow-up arrives after its delay (60 s at the least); once the import has ended
    // (its table made), the same notification, sent here, is what it brings.
    let table = format!("landfall-price_index-{version}");
    for _ in 0..300 {
        if tables(&stack).await? == [table.clone()] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stack.send(&queue, &notification).await?;
    let second = stack.deliver(FUNCTION).await?;
    assert!(
        second.failed.is_empty() && second.received == 1,
        "{second:?}\n{}",
        stack.function_log(FUNCTION)
    );
    assert_eq!(pointer(&stack).await?.as_deref(), Some(table.as_str()));
    assert_eq!(items(&stack, &table).await?, expected(FIRST));
    assert_eq!(tables(&stack).await?, [table], "one import");
    assert_eq!(dead_letters(&stack).await?, 0);
    Ok(())
}

/// With the landing bucket's versioning suspended (S3 then names an upload by no version,
/// the loader by its ETag), each upload of a key is a file of its own: it imports into its
/// own table, which the pointer then names, and is archived and gone from landing.
#[tokio::test]
async fn an_unversioned_landing_bucket_imports_each_upload_of_a_key() -> Result<()> {
    let datasets = datasets_file(2, "versioned");
    let mut stack = stack(&datasets).await?;
    stack.suspend_versioning("LandingBucket").await?;
    let key = "dynamodb/price_index/prices of the week.csv";
    let mut current = Vec::new();
    for rows in [FIRST, CHANGED] {
        stack
            .put("LandingBucket", key, csv(rows).into_bytes())
            .await?;
        let delivery = stack.deliver(FUNCTION).await?;
        assert!(
            delivery.failed.is_empty() && delivery.received == 1,
            "{delivery:?}\n{}",
            stack.function_log(FUNCTION)
        );
        let table = pointer(&stack).await?.expect("the pointer names a table");
        assert_eq!(items(&stack, &table).await?, expected(rows));
        assert!(stack
            .keys(&stack.resource("LandingBucket"), "dynamodb/")
            .await?
            .is_empty());
        current.push(table);
    }
    assert_ne!(current[0], current[1], "each upload its own table");
    assert_eq!(dead_letters(&stack).await?, 0);
    Ok(())
}
