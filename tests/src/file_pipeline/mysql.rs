//! P1 under test: file-orchestrator and mysql-loader on a local stack, loading into a MariaDB
//! database of the test's own.

use crate::file_pipeline::{price_index, FilePipelineUnderTest, Soak};
use crate::mysql::TestDatabase;
use crate::soak::files::{archived_per_upload, count_files};
use crate::soak::reconcile::{compare, expected_rows, found_total, numbered};
use crate::soak::{Input, Report, Rig};
use crate::LocalStack;
use anyhow::Result;
use mysql_async::prelude::Queryable;
use serde_json::json;
use std::collections::BTreeSet;
use std::ops::Range;
use std::time::Duration;

/// The function consuming P1's queue.
pub const ORCHESTRATOR: &str = "file-orchestrator";

/// A database with P1's scripts and a stack whose functions reach it.
pub async fn pipeline() -> Result<(TestDatabase, LocalStack)> {
    pipeline_on_port(3306).await
}

/// The stack's functions reach MariaDB at `port` (a fault proxy's, say).
pub async fn pipeline_on_port(port: u16) -> Result<(TestDatabase, LocalStack)> {
    let db = TestDatabase::create_with_scripts().await?;
    let secret = db.secret(port).await?;
    let stack = LocalStack::start_with_secrets(&[("MysqlSecret", secret)]).await?;
    Ok((db, stack))
}

/// The notification of `key`, kept to be delivered again (as SQS redelivers it).
pub async fn notification_of(stack: &LocalStack, key: &str) -> Result<String> {
    let queue = stack.resource("MysqlFilesQueue");
    let messages = stack.peek(&queue).await?;
    messages
        .iter()
        .filter_map(|m| m.body())
        .find(|body| body.contains(key))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no notification of {key}"))
}

/// price_index with its load procedure, for both functions: files over SPLIT_BYTES are then
/// split, their parts staged side by side and promoted together.
pub fn with_load_procedure(stack: &mut LocalStack) {
    let file = crate::mysql::procedure_datasets_file();
    for function in [ORCHESTRATOR, "mysql-loader"] {
        stack.set_function_env(function, "DATASETS_FILE", file.to_str());
    }
}

pub async fn redeliver(
    stack: &mut LocalStack,
    notification: &str,
) -> Result<Vec<landfall_devstack::Delivery>> {
    stack
        .send(&stack.resource("MysqlFilesQueue"), notification)
        .await?;
    deliver_all(stack).await
}

pub async fn drop_file(stack: &LocalStack, key: &str, body: &str) -> Result<()> {
    stack
        .put("LandingBucket", key, body.as_bytes().to_vec())
        .await?;
    Ok(())
}

/// Delivers until the queue is empty (the first batch holds the TestEvent).
pub async fn deliver_all(stack: &mut LocalStack) -> Result<Vec<landfall_devstack::Delivery>> {
    let mut deliveries = Vec::new();
    loop {
        let delivery = stack.deliver(ORCHESTRATOR).await?;
        if delivery.received == 0 {
            return Ok(deliveries);
        }
        deliveries.push(delivery);
    }
}

/// The email whose subject contains `subject`.
pub async fn email_about(
    stack: &LocalStack,
    subject: &str,
) -> Result<(Vec<String>, String, String)> {
    let emails = stack.sent_emails().await?;
    emails
        .iter()
        .find(|(_, s, _)| s.contains(subject))
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no email about {subject:?} in {emails:?}"))
}

/// P1 under test: a local stack whose functions reach a MariaDB database of its own.
pub struct P1 {
    pub db: TestDatabase,
    pub stack: LocalStack,
}

impl FilePipelineUnderTest for P1 {
    const FUNCTION: &'static str = ORCHESTRATOR;
    const QUEUE: &'static str = "MysqlFilesQueue";
    const DLQ: &'static str = "MysqlFilesDLQ";
    const BUCKET: &'static str = "LandingBucket";
    const BAD_LINE: &'static str = price_index::BAD_LINE;
    const SOAK: Soak = Soak {
        name: "P1 MySQL",
        tag: "p1",
        every: Duration::from_millis(1500),
        sizes: &[20, 150, 600, 2500],
        bad_every: 9,
        twice_every: 7,
        archives: true,
    };

    async fn start() -> Result<P1> {
        let (db, mut stack) = pipeline().await?;
        // The s3:TestEvent S3 sends when the notification is configured.
        assert!(stack.deliver(ORCHESTRATOR).await?.failed.is_empty());
        Ok(P1 { db, stack })
    }

    fn stack(&mut self) -> &mut LocalStack {
        &mut self.stack
    }

    fn key(name: &str) -> String {
        format!("mysql/price_index/{name}")
    }

    fn rows(rows: Range<u32>) -> String {
        price_index::rows(rows)
    }

    fn bad_words(line: u32) -> String {
        price_index::bad_words(line)
    }

    fn changed_file(rows: u32) -> Vec<u8> {
        price_index::changed(rows)
    }

    fn unknown_keys() -> Vec<(String, &'static str)> {
        vec![
            (
                "mysql/no_such_dataset/x.csv".into(),
                "no dataset \"no_such_dataset\" is configured",
            ),
            (
                "mysql/price_index/../init/x.sql".into(),
                "the key has a \"..\" path segment",
            ),
        ]
    }

    /// mysql-loader's load, invoked as the orchestrator does: staged, checked, promoted.
    async fn loaded_by_a_delivery_that_died(&mut self, key: &str, version: &str) -> Result<()> {
        let name = key.rsplit('/').next().unwrap_or_default();
        let notification: serde_json::Value =
            serde_json::from_str(&notification_of(&self.stack, name).await?)?;
        let landed = &notification["Records"][0]["eventTime"];
        let source =
            json!({"bucket": self.stack.resource("LandingBucket"), "key": key, "version": version});
        let load =
            json!({"mode": "load", "dataset": "price_index", "source": source, "landed": landed});
        let answer = self
            .stack
            .host()
            .invoke("mysql-loader", load.to_string().into())
            .await?;
        assert!(answer.function_error.is_none(), "{answer:?}");
        assert_eq!(self.db.rows("landfall_load_ledger").await?, 1);
        Ok(())
    }

    /// The rows at the corrected prices; the version's ledger row.
    async fn assert_serves(&mut self, _key: &str, version: &str, rows: u32) -> Result<()> {
        assert_eq!(self.db.rows("price_index").await?, u64::from(rows));
        assert_eq!(
            self.db
                .count("SELECT count(*) FROM price_index WHERE price >= 1000")
                .await?,
            u64::from(rows),
            "the correction's prices"
        );
        let ledger =
            format!("SELECT count(*) FROM landfall_load_ledger WHERE object_version = '{version}'");
        assert_eq!(self.db.count(&ledger).await?, 1);
        Ok(())
    }

    /// Nothing promoted; one email, FAILED, naming the line.
    async fn assert_nothing_loaded(&mut self, _key: &str, words: &str) -> Result<()> {
        assert_eq!(self.db.rows("price_index").await?, 0, "nothing promoted");
        let emails = self.stack.sent_emails().await?;
        assert_eq!(emails.len(), 1);
        assert!(
            emails[0].1.contains("FAILED price_index"),
            "{:?}",
            emails[0]
        );
        assert!(emails[0].2.contains(words), "{}", emails[0].2);
        Ok(())
    }

    /// The rows once, one ledger row, the file moved from landing to one archive copy, one
    /// email.
    async fn assert_loaded_once(&mut self, key: &str, _version: &str, rows: u32) -> Result<()> {
        assert_eq!(self.db.rows("price_index").await?, u64::from(rows));
        assert_eq!(self.db.rows("landfall_load_ledger").await?, 1);
        let archive = self.stack.resource("ArchiveBucket");
        let archived = self.stack.keys(&archive, "price_index/").await?;
        let name = key.rsplit('/').next().unwrap_or_default();
        assert!(
            archived.len() == 1 && archived[0].ends_with(&format!("/{name}")),
            "{archived:?}"
        );
        let landing = self.stack.resource("LandingBucket");
        assert!(
            self.stack.keys(&landing, key).await?.is_empty(),
            "left landing"
        );
        self.stack.the_only_email().await?;
        Ok(())
    }

    fn soak_place(_n: u32) -> Option<(String, String)> {
        Some(("mysql/price_index".into(), "price_index".into()))
    }

    async fn soak_completed(rig: &Rig, pending: &[&Input]) -> Result<BTreeSet<String>> {
        archived_per_upload(rig, pending).await
    }

    async fn soak_reconcile(rig: &Rig, inputs: &[&Input], report: &mut Report) -> Result<()> {
        let want = expected_rows(inputs.iter().copied());
        let mut conn = rig.mysql.conn().await?;
        let rows: Vec<(String, u64)> = conn
            .query("SELECT product, COUNT(*) FROM price_index GROUP BY product")
            .await?;
        let found = rows
            .into_iter()
            .map(|(product, n)| (numbered(&product, "Item "), n))
            .collect();
        let (lost, duplicated, mut stray) = compare(&want, &found);
        // A bad file split into parts may have staged its good parts before its bad one
        // failed: those rows wait in the stage, invisible, for the sweep of the next
        // promotion after ABANDONED_AFTER_SECONDS. Any other staged row is one too many.
        let bad_rows: BTreeSet<u32> = inputs
            .iter()
            .filter(|i| i.bad)
            .flat_map(|i| i.rows.clone())
            .collect();
        let staged: Vec<String> = conn.query("SELECT product FROM price_index_stage").await?;
        let awaiting_sweep = staged
            .iter()
            .filter(|p| numbered(p, "Item ").is_ok_and(|n| bad_rows.contains(&n)))
            .count() as u64;
        stray += staged.len() as u64 - awaiting_sweep;
        report.rows += want.len() as u64;
        report.lines.push(format!(
            "{:<14}files {:>4}  rows {:>7}  in price_index {:>7}  staged rows of bad files awaiting the sweep {awaiting_sweep}, of others {}",
            Self::SOAK.name,
            count_files(inputs),
            want.len(),
            found_total(&found),
            staged.len() as u64 - awaiting_sweep
        ));
        report.tally("P1 price_index", lost, duplicated, stray);
        Ok(())
    }
}
