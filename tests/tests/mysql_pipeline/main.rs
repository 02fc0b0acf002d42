//! P1 end to end: a file dropped into the landing bucket → S3 notification → SQS →
//! file-orchestrator → mysql-loader (stage, promote, report) → rows in MariaDB, the file
//! archived, the outcome emailed; bad files in the DLQ with their reason. Big files:
//! `split.rs`; the ECS tasks: `tasks.rs`.

mod split;
mod tasks;

use anyhow::Result;
use landfall_devstack::sample::{price_index_csv, PRICE_INDEX_HEADER as HEADER};
use landfall_tests::file_pipeline;
use landfall_tests::file_pipeline::mysql::{
    deliver_all, drop_file, email_about, notification_of, pipeline, redeliver, ORCHESTRATOR, P1,
};

/// A good file, loaded once (the shared scenario), then reported: the report table exported
/// as CSV, and the email naming it.
#[tokio::test]
async fn a_landing_file_is_loaded_archived_reported_and_emailed() -> Result<()> {
    let P1 { db, stack } = file_pipeline::a_good_file_loads_once::<P1>().await?;
    assert_eq!(db.rows("price_index_stage").await?, 0);
    assert!(db.rows("price_index_report").await? > 0);

    // The report table, exported as CSV: a header and one line per report row.
    let reports = stack
        .keys(
            &stack.resource("ReportsBucket"),
            "price_index/price_index_report/",
        )
        .await?;
    assert_eq!(reports.len(), 1, "{reports:?}");
    let csv = stack
        .s3()
        .get_object()
        .bucket(stack.resource("ReportsBucket"))
        .key(&reports[0])
        .send()
        .await?;
    let csv = String::from_utf8(csv.body.collect().await?.into_bytes().to_vec())?;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("year,month,geo,category,avg_price,observations")
    );
    assert_eq!(lines.count() as u64, db.rows("price_index_report").await?);
    assert!(
        csv.contains(",\"Region 1, North\",Food,"),
        "quoted geo: {csv}"
    );

    let (to, subject, body) = stack.the_only_email().await?;
    assert!(
        body.contains(&reports[0]),
        "the email names the report: {body}"
    );
    assert_eq!(to, ["data-team@example.com".to_owned()]);
    assert!(subject.contains("price_index: 20 rows loaded"), "{subject}");
    assert!(
        body.contains("Rows loaded: 20") && body.contains("Archived to: s3://"),
        "{body}"
    );
    Ok(())
}

/// A bad field: refused with its file, line and column, dead-lettered at once, nothing
/// promoted, the file left in landing, the dataset's people told.
#[tokio::test]
async fn a_bad_file_is_rejected_with_its_line_and_column_and_dead_lettered() -> Result<()> {
    file_pipeline::a_bad_line_is_dead_lettered_at_once_naming_it::<P1>().await
}

#[tokio::test]
async fn keys_no_dataset_owns_go_to_the_dlq_and_operations_with_the_reason() -> Result<()> {
    file_pipeline::an_unknown_key_is_refused_and_operations_told::<P1>().await
}

/// A landing bucket without versioning (suspended: every upload is version "null", as in a
/// bucket never versioned): a second upload of the same key with other rows is a new file,
/// told apart by its ETag, and loads; the same bytes again would be the same file.
#[tokio::test]
async fn an_unversioned_landing_bucket_loads_each_upload_of_a_key() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    stack.suspend_versioning("LandingBucket").await?;
    let key = "mysql/price_index/monthly.csv";
    for (round, rows) in [(1, 0..100), (2, 100..250)] {
        drop_file(&stack, key, &price_index_csv(rows.clone())).await?;
        let deliveries = deliver_all(&mut stack).await?;
        assert!(
            deliveries.iter().all(|d| d.failed.is_empty()),
            "{deliveries:?}\n{}",
            stack.function_log(ORCHESTRATOR)
        );
        assert_eq!(db.rows("price_index").await?, u64::from(rows.end));
        assert_eq!(db.rows("landfall_load_ledger").await?, round);
        let left = stack
            .keys(&stack.resource("LandingBucket"), "mysql/")
            .await?;
        assert!(
            left.is_empty(),
            "round {round}: {left:?}\n{}",
            stack.function_log(ORCHESTRATOR)
        );
    }
    let archived = stack
        .s3()
        .list_object_versions()
        .bucket(stack.resource("ArchiveBucket"))
        .prefix("price_index/")
        .send()
        .await?;
    assert_eq!(archived.versions().len(), 2, "{archived:?}");
    assert!(stack.dead_letter_reasons("MysqlFilesDLQ").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn a_redelivered_notification_loads_nothing_twice() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    drop_file(
        &stack,
        "mysql/price_index/once.csv",
        &price_index_csv(0..50),
    )
    .await?;
    // Keep a copy of the notification to deliver again after the file was processed.
    let notification = notification_of(&stack, "once.csv").await?;
    deliver_all(&mut stack).await?;
    assert_eq!(db.rows("price_index").await?, 50);

    let again = redeliver(&mut stack, &notification).await?;
    assert!(again.iter().all(|d| d.failed.is_empty()), "{again:?}");
    assert_eq!(db.rows("price_index").await?, 50);
    assert_eq!(db.rows("landfall_load_ledger").await?, 1);
    assert!(stack
        .function_log(ORCHESTRATOR)
        .contains("already loaded and archived"));
    Ok(())
}

/// A first attempt promoted the file and died before archiving it; the message comes back:
/// the retry finds the ledger row, archives, reports and emails, saying so.
#[tokio::test]
async fn a_crash_after_promote_before_archive_is_finished_by_the_retry() -> Result<()> {
    let p = file_pipeline::a_redelivery_after_a_load_that_died_completes_it_once::<P1>().await?;
    let (_, _, body) = p.stack.the_only_email().await?;
    assert!(body.contains("already loaded earlier"), "{body}");
    Ok(())
}

/// Files arrive as people send them, each loaded once, archived and gone from landing: the AWS
/// CLI's multipart upload from 8 MB (its ETag is no MD5, and its archive copy's is), with its
/// CRC32 checksums and without; a browser's single PUT to a presigned URL; and a copy from
/// another bucket, which the CLI makes in parts too (S3's notification says `Copy`). Keys
/// with spaces and non-ASCII text, as people name files.
#[tokio::test]
async fn files_arrive_as_people_send_them_and_each_loads_once() -> Result<()> {
    let (db, mut stack) = pipeline().await?;
    let dir = std::env::temp_dir().join(format!("landfall-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let landing = stack.resource("LandingBucket");
    // A file of at least 9 MB (two parts of the CLI's 8 MB) with rows from `first` on, wide
    // ones (long product names): the bytes the CLI needs, a third of the rows to load.
    let file = |name: &str, first: u32| -> Result<(std::path::PathBuf, u32)> {
        let mut csv = String::from(HEADER);
        let mut next = first;
        while csv.len() < 9 * 1024 * 1024 {
            csv.push_str(&format!(
                "2024-{:02},\"Region {}, North\",Food,\"Item {next} {}\",kg,{}.{:02}\n",
                next % 12 + 1,
                next % 5,
                "of a long product name ".repeat(4),
                next % 50,
                next % 100
            ));
            next += 1;
        }
        let path = dir.join(name);
        std::fs::write(&path, csv)?;
        Ok((path, next - first))
    };
    let mut rows = 0;

    let (with_checksums, n) = file("a.csv", 0)?;
    rows += n;
    let to = format!("s3://{landing}/mysql/price_index/uploaded by the cli ü.csv");
    stack
        .aws_cli(&["s3", "cp", with_checksums.to_str().unwrap(), &to], &[])
        .await?;

    let (without, n) = file("b.csv", 1_000_000)?;
    rows += n;
    let to = format!("s3://{landing}/mysql/price_index/no checksums.csv");
    stack
        .aws_cli(
            &["s3", "cp", without.to_str().unwrap(), &to],
            &[("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")],
        )
        .await?;

    let (copied, n) = file("c.csv", 2_000_000)?;
    rows += n;
    let elsewhere = format!("s3://{}/incoming/c.csv", stack.resource("ReportsBucket"));
    let to = format!("s3://{landing}/mysql/price_index/copied from elsewhere.csv");
    stack
        .aws_cli(&["s3", "cp", copied.to_str().unwrap(), &elsewhere], &[])
        .await?;
    stack.aws_cli(&["s3", "cp", &elsewhere, &to], &[]).await?;

    // A browser: one PUT of the file's bytes to a URL the page was handed.
    let small = price_index_csv(3_000_000..3_000_500);
    rows += 500;
    let presigned = stack
        .s3()
        .put_object()
        .bucket(&landing)
        .key("mysql/price_index/从浏览器上传.csv")
        .content_type("text/csv")
        .presigned(aws_sdk_s3::presigning::PresigningConfig::expires_in(
            std::time::Duration::from_secs(300),
        )?)
        .await?;
    let mut put = axum::http::Request::builder()
        .method("PUT")
        .uri(presigned.uri());
    for (name, value) in presigned.headers() {
        put = put.header(name, value);
    }
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let answer = client
        .request(put.body(axum::body::Body::from(small))?)
        .await?;
    assert!(answer.status().is_success(), "{answer:?}");
    std::fs::remove_dir_all(&dir)?;
    // They arrived as claimed: in parts (an ETag of `-<parts>`), with and without checksums
    // (a copy's is S3's business: AWS gives new objects one of its own, moto none).
    for (key, parts, checksum) in [
        ("uploaded by the cli ü.csv", true, Some(true)),
        ("no checksums.csv", true, Some(false)),
        ("copied from elsewhere.csv", true, None),
        ("从浏览器上传.csv", false, Some(false)),
    ] {
        let head = stack
            .s3()
            .head_object()
            .bucket(&landing)
            .key(format!("mysql/price_index/{key}"))
            .checksum_mode(aws_sdk_s3::types::ChecksumMode::Enabled)
            .send()
            .await?;
        let etag = head.e_tag().unwrap_or_default();
        assert_eq!(etag.contains('-'), parts, "{key}: {etag}");
        if let Some(checksum) = checksum {
            assert_eq!(head.checksum_crc32().is_some(), checksum, "{key}: {head:?}");
        }
    }

    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().all(|d| d.failed.is_empty()),
        "{deliveries:?}\n{}",
        stack.function_log(ORCHESTRATOR)
    );
    assert_eq!(db.rows("price_index").await?, u64::from(rows));
    assert_eq!(db.rows("landfall_load_ledger").await?, 4);
    assert!(stack.keys(&landing, "mysql/").await?.is_empty());
    let mut archived = stack
        .keys(&stack.resource("ArchiveBucket"), "price_index/")
        .await?
        .into_iter()
        .map(|key| key.rsplit('/').next().unwrap_or_default().to_owned())
        .collect::<Vec<_>>();
    archived.sort();
    assert_eq!(
        archived,
        [
            "copied from elsewhere.csv",
            "no checksums.csv",
            "uploaded by the cli ü.csv",
            "从浏览器上传.csv"
        ]
    );
    assert_eq!(
        stack.queue_depth(&stack.resource("MysqlFilesDLQ")).await?,
        0
    );
    // The outcome as logged: moto's state dump, where tests read sent emails, fails once a
    // multipart upload has completed (moto 5.2's multipart status looks its bucket up in
    // the wrong backend), so this test reads the orchestrator's log instead.
    let log = stack.function_log(ORCHESTRATOR);
    assert_eq!(log.matches("\"file loaded\"").count(), 4, "{log}");
    Ok(())
}

/// After the rows are promoted and the file archived, a report that fails leaves a loaded
/// file: told as "loaded; report failed", not dead-lettered as "not loaded".
#[tokio::test]
async fn a_report_failing_after_the_load_is_told_as_loaded_not_as_failed() -> Result<()> {
    use mysql_async::prelude::Queryable;
    let (db, mut stack) = pipeline().await?;
    db.conn()
        .await?
        .query_drop("DROP PROCEDURE report_price_index")
        .await?;
    drop_file(
        &stack,
        "mysql/price_index/no-report.csv",
        &price_index_csv(0..40),
    )
    .await?;
    let deliveries = deliver_all(&mut stack).await?;
    assert!(
        deliveries.iter().all(|d| d.failed.is_empty()),
        "{deliveries:?}"
    );
    assert_eq!(db.rows("price_index").await?, 40);
    assert_eq!(
        stack.queue_depth(&stack.resource("MysqlFilesDLQ")).await?,
        0
    );
    let (_, subject, body) = email_about(&stack, "40 rows loaded").await?;
    assert!(subject.ends_with("(reports failed)"), "{subject}");
    assert!(body.contains("Result: loaded; report failed ("), "{body}");
    assert!(!body.contains("not loaded"), "{body}");
    Ok(())
}

/// One notification delivered twice at once, then again: loaded once, nothing dead-lettered.
#[tokio::test]
async fn one_file_delivered_twice_at_once_loads_once_and_nothing_is_dead_lettered() -> Result<()> {
    file_pipeline::delivered_twice_at_once_and_again_later::<P1>().await
}

/// Found by this scenario: P1 loaded every upload of a key in the order its notifications
/// arrived, so an older upload whose notification came back late (a retry) was promoted after
/// the correction, and its rows replaced the correction's. The ledger now keeps each key's
/// latest loaded upload (`landfall_key_order`), and an older one loads nothing.
#[tokio::test]
async fn a_newer_version_wins_over_an_older_one_delivered_late() -> Result<()> {
    file_pipeline::a_newer_version_wins_over_an_older_one_delivered_late::<P1>().await
}
