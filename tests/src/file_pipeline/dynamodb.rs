//! P2 under test: dynamodb-loader on a local stack, importing into moto's DynamoDB.

use crate::file_pipeline::{price_index, FilePipelineUnderTest, Soak};
use crate::soak::files::{archived_per_upload, count_files};
use crate::soak::reconcile::{compare, expected_rows, found_total, numbered};
use crate::soak::rig::P2_DATASETS;
use crate::soak::{Input, Report, Rig};
use crate::LocalStack;
use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use landfall_dynamodb_datasets::Datasets;
use landfall_dynamodb_import::{Importer, Job, Outcome, Settings};
use landfall_landing::{ObjectVersion, Version};
use landfall_runtime::Deadline;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::{Duration, SystemTime};

/// The function consuming P2's queue.
pub const FUNCTION: &str = "dynamodb-loader";

/// The bundled datasets with a short grace period, as a file the function reads.
pub fn datasets_file(retire_after: u64, replace: &str) -> tempfile_path::Path {
    let text = landfall_dynamodb_datasets::BUNDLED.replace(
        "retire_after_seconds = 3600",
        &format!("retire_after_seconds = {retire_after}\nreplace = \"{replace}\""),
    );
    tempfile_path::Path::write("dynamodb.toml", &text)
}

/// A uniquely named file that is removed when dropped.
pub mod tempfile_path {
    pub struct Path(pub std::path::PathBuf);
    impl Path {
        pub fn write(name: &str, text: &str) -> Path {
            let dir = std::env::temp_dir().join(format!(
                "landfall-dynamodb-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("after 1970")
                    .as_nanos()
            ));
            std::fs::create_dir_all(&dir).expect("a temporary folder");
            let path = dir.join(name);
            std::fs::write(&path, text).expect("a temporary file");
            Path(path)
        }
        pub fn as_str(&self) -> &str {
            self.0.to_str().expect("a UTF-8 temporary path")
        }
    }
    impl Drop for Path {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

pub async fn stack(datasets: &tempfile_path::Path) -> Result<LocalStack> {
    let mut stack = LocalStack::start().await?;
    stack.set_function_env(FUNCTION, "DYNAMODB_DATASETS_FILE", Some(datasets.as_str()));
    stack.set_function_env(FUNCTION, "IMPORT_POLL_MILLISECONDS", Some("100"));
    stack.set_function_env(FUNCTION, "RETRY_FIRST_SECONDS", Some("0"));
    // The s3:TestEvent S3 sends when the notification is configured.
    let test_event = stack.deliver(FUNCTION).await?;
    assert!(test_event.failed.is_empty(), "{test_event:?}");
    Ok(stack)
}

pub fn dynamodb(stack: &LocalStack) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&stack.sdk)
}

pub async fn pointer(stack: &LocalStack) -> Result<Option<String>> {
    Ok(importer(stack).current_table("price_index").await?)
}

/// The tables the imports made, leaving out those the template provisions for other pipelines.
pub async fn tables(stack: &LocalStack) -> Result<Vec<String>> {
    let listed = dynamodb(stack).list_tables().send().await?;
    Ok(listed
        .table_names()
        .iter()
        .filter(|name| name.starts_with("landfall-price_index"))
        .cloned()
        .collect())
}

/// The import library against moto, as two deliveries of one message would run it.
pub fn importer(stack: &LocalStack) -> Importer {
    Importer {
        s3: stack.s3(),
        dynamodb: dynamodb(stack),
        ssm: aws_sdk_ssm::Client::new(&stack.sdk),
        settings: Settings {
            import_bucket: stack.resource("LandingBucket"),
            import_prefix: "imports".into(),
            table_prefix: "landfall-".into(),
            pointer_prefix: "/landfall/dynamodb".into(),
            split_bytes: 2048,
            concurrency: 2,
            poll_interval: Duration::from_millis(100),
            import_bytes_per_second: 1 << 20,
            claim_stale_after: landfall_dynamodb_import::CLAIM_STALE_AFTER,
        },
    }
}

pub fn deadline() -> Deadline {
    Deadline::at(SystemTime::now() + Duration::from_secs(300))
}

/// The body of the notification on `queue` whose text holds `part` (of its key).
pub async fn notification(stack: &LocalStack, queue: &str, part: &str) -> Result<String> {
    Ok(stack
        .peek(queue)
        .await?
        .iter()
        .filter_map(|m| m.body())
        .find(|body| body.contains(part))
        .map(str::to_owned)
        .expect("the upload's notification"))
}

/// A price_index file's header.
pub const HEADER: &str = "ref_date,geo,category,product,uom,price\n";

/// Every item of `table`: key attribute → attribute → "S:…", "N:…", "NULL", "BOOL:…".
pub async fn items(
    stack: &LocalStack,
    table: &str,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    let scanned = dynamodb(stack).scan().table_name(table).send().await?;
    let show = |value: &AttributeValue| match value {
        AttributeValue::S(s) => format!("S:{s}"),
        AttributeValue::N(n) => format!("N:{n}"),
        AttributeValue::Null(_) => "NULL".to_owned(),
        AttributeValue::Bool(b) => format!("BOOL:{b}"),
        other => format!("{other:?}"),
    };
    Ok(scanned
        .items()
        .iter()
        .map(|item| {
            let key = item.get("pk").map(show).unwrap_or_default();
            let attributes = item
                .iter()
                .filter(|(name, _)| *name != "pk")
                .map(|(name, value)| (name.clone(), show(value)))
                .collect();
            (key, attributes)
        })
        .collect())
}

/// The items a price_index file of `rows` must become.
pub fn expected(rows: &[[&str; 6]]) -> BTreeMap<String, BTreeMap<String, String>> {
    let names = ["ref_date", "geo", "category", "product", "uom", "price"];
    rows.iter()
        .map(|row| {
            let key = format!(
                "S:{}#{}#{}",
                row[0],
                row[1],
                row[3].replace('%', "%25").replace('#', "%23")
            );
            let attributes = names
                .iter()
                .zip(row)
                .map(|(name, value)| {
                    let shown = match (*name, *value) {
                        ("uom", "") => "NULL".to_owned(),
                        ("price", v) => format!("N:{v}"),
                        (_, v) => format!("S:{v}"),
                    };
                    (name.to_string(), shown)
                })
                .collect();
            (key, attributes)
        })
        .collect()
}

pub fn csv(rows: &[[&str; 6]]) -> String {
    let quote = |v: &str| {
        if v.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", v.replace('"', "\"\""))
        } else {
            v.to_owned()
        }
    };
    let mut text = HEADER.to_owned();
    for row in rows {
        text.push_str(&row.iter().map(|v| quote(v)).collect::<Vec<_>>().join(","));
        text.push('\n');
    }
    text
}

pub const FIRST: &[[&str; 6]] = &[
    ["2024-01", "Canada", "Food", "Bread #1", "675 g", "3.49"],
    ["2024-01", "Québec", "Food", "Milk, 2%", "", "1.99"],
    ["2024-02", "Canada", "Fuel", "Gas", "L", "1.6"],
];

pub const CHANGED: &[[&str; 6]] = &[
    ["2024-01", "Canada", "Food", "Bread #1", "675 g", "3.59"],
    ["2024-03", "Canada", "Fuel", "Gas", "L", "1.7"],
];

/// P2 under test: a local stack whose dynamodb-loader reads the bundled datasets with a
/// grace period of two seconds.
pub struct P2 {
    pub stack: LocalStack,
    datasets: tempfile_path::Path,
}

impl FilePipelineUnderTest for P2 {
    const FUNCTION: &'static str = FUNCTION;
    const QUEUE: &'static str = "DynamodbFilesQueue";
    const DLQ: &'static str = "DynamodbFilesDLQ";
    const BUCKET: &'static str = "LandingBucket";
    const BAD_LINE: &'static str = price_index::BAD_LINE;
    const SOAK: Soak = Soak {
        name: "P2 DynamoDB",
        tag: "p2",
        every: Duration::from_secs(5),
        sizes: &[30, 120, 300],
        bad_every: 5,
        twice_every: 4,
        archives: true,
    };

    async fn start() -> Result<P2> {
        let datasets = datasets_file(2, "versioned");
        let stack = stack(&datasets).await?;
        Ok(P2 { stack, datasets })
    }

    fn stack(&mut self) -> &mut LocalStack {
        &mut self.stack
    }

    fn key(name: &str) -> String {
        format!("dynamodb/price_index/{name}")
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
                "dynamodb/prices/x.csv".into(),
                "no dataset \"prices\" is configured",
            ),
            (
                "dynamodb/price_index/notes.txt".into(),
                "data files end in .csv",
            ),
        ]
    }

    /// The import library run as the function runs it for that notification: imported and
    /// switched, not archived.
    async fn loaded_by_a_delivery_that_died(&mut self, key: &str, version: &str) -> Result<()> {
        let text = std::fs::read_to_string(&self.datasets.0)?;
        let datasets = Datasets::parse("dynamodb.toml", &text)?;
        let queue = self.stack.resource("DynamodbFilesQueue");
        // (S3 writes the key URL-encoded into the notification.)
        let name = key.rsplit('/').next().unwrap_or_default();
        let notification: serde_json::Value =
            serde_json::from_str(&notification(&self.stack, &queue, name).await?)?;
        let source = ObjectVersion {
            bucket: self.stack.resource("LandingBucket"),
            key: key.into(),
            version: Version::Id(version.into()),
        };
        let job = Job {
            dataset_name: "price_index",
            dataset: datasets.get("price_index").expect("configured"),
            source: &source,
            landed: notification["Records"][0]["eventTime"]
                .as_str()
                .unwrap_or_default(),
            attempt: "a delivery that died",
        };
        let imported = importer(&self.stack).run(&job, &deadline()).await?;
        assert_eq!(imported.outcome, Outcome::Switched { previous: None });
        Ok(())
    }

    /// The pointer names the version's table, which holds the rows at the corrected prices.
    async fn assert_serves(&mut self, _key: &str, version: &str, rows: u32) -> Result<()> {
        let table = format!("landfall-price_index-{version}");
        assert_eq!(pointer(&self.stack).await?.as_deref(), Some(table.as_str()));
        let items = dynamodb(&self.stack)
            .scan()
            .table_name(&table)
            .send()
            .await?;
        assert_eq!(items.count(), rows as i32);
        for item in items.items() {
            let price: f64 = item["price"].as_n().map_or(Ok(0.0), |n| n.parse())?;
            assert!(price >= 1000.0, "the correction's prices: {item:?}");
        }
        Ok(())
    }

    /// No import, no table, the pointer unset; the dataset's people told, naming the line.
    async fn assert_nothing_loaded(&mut self, _key: &str, words: &str) -> Result<()> {
        assert_eq!(pointer(&self.stack).await?, None);
        assert_eq!(tables(&self.stack).await?, Vec::<String>::new());
        let emails = self.stack.sent_emails().await?;
        assert!(
            emails
                .iter()
                .any(|(_, subject, body)| subject.contains("FAILED price_index")
                    && body.contains(words)),
            "{emails:?}"
        );
        Ok(())
    }

    /// One table, the current one, holding the rows; one archive copy, one email.
    async fn assert_loaded_once(&mut self, _key: &str, version: &str, rows: u32) -> Result<()> {
        let table = format!("landfall-price_index-{version}");
        assert_eq!(pointer(&self.stack).await?.as_deref(), Some(table.as_str()));
        assert_eq!(tables(&self.stack).await?, vec![table.clone()]);
        let items = dynamodb(&self.stack)
            .scan()
            .table_name(&table)
            .select(aws_sdk_dynamodb::types::Select::Count)
            .send()
            .await?;
        assert_eq!(items.count(), rows as i32);
        let archived = self
            .stack
            .keys(
                &self.stack.resource("ArchiveBucket"),
                "dynamodb/price_index/",
            )
            .await?;
        assert_eq!(archived.len(), 1, "{archived:?}");
        self.stack.the_only_email().await?;
        Ok(())
    }

    /// A dataset of its own (`soak_<n>`) for each file, as many as the soak's config has.
    fn soak_place(n: u32) -> Option<(String, String)> {
        (n < P2_DATASETS).then(|| (format!("dynamodb/soak_{n}"), format!("soak_{n}")))
    }

    async fn soak_completed(rig: &Rig, pending: &[&Input]) -> Result<BTreeSet<String>> {
        archived_per_upload(rig, pending).await
    }

    async fn soak_reconcile(rig: &Rig, inputs: &[&Input], report: &mut Report) -> Result<()> {
        let ssm = aws_sdk_ssm::Client::new(&rig.stack.sdk);
        let dynamodb = aws_sdk_dynamodb::Client::new(&rig.stack.sdk);
        let prefix = &rig.stack.stack.functions["dynamodb-loader"].environment["POINTER_PREFIX"];
        let (mut lost, mut duplicated, mut stray, mut rows, mut items) = (0, 0, 0, 0, 0);
        for input in inputs {
            let pointer = ssm
                .get_parameter()
                .name(format!("{prefix}/{}", input.dataset))
                .send()
                .await
                .ok()
                .and_then(|p| p.parameter.and_then(|p| p.value));
            let want = expected_rows(std::iter::once(*input));
            rows += want.len() as u64;
            let Some(table) = pointer else {
                // A bad file's dataset has no table; a good one's must.
                lost += want.len() as u64;
                continue;
            };
            let mut found: BTreeMap<Result<u32, String>, u64> = BTreeMap::new();
            let mut pages = dynamodb
                .scan()
                .table_name(&table)
                .into_paginator()
                .items()
                .send();
            while let Some(item) = pages.next().await {
                let product = match item?.get("product") {
                    Some(AttributeValue::S(s)) => s.clone(),
                    other => format!("{other:?}"),
                };
                *found.entry(numbered(&product, "Item ")).or_insert(0) += 1;
            }
            items += found_total(&found);
            let (l, d, s) = compare(&want, &found);
            (lost, duplicated, stray) = (lost + l, duplicated + d, stray + s);
        }
        report.rows += rows;
        report.lines.push(format!(
            "{:<14}files {:>4}  rows {rows:>7}  in the current tables {items:>7}",
            Self::SOAK.name,
            count_files(inputs)
        ));
        report.tally("P2 current tables", lost, duplicated, stray);
        Ok(())
    }
}
