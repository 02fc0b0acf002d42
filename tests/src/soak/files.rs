//! The file pipelines the soak runs, one [`SoakedPipeline`] impl each: what its landing files
//! look like, when its target shows one complete, and how its target is checked against the
//! ledger afterwards. A file pipeline joins the soak by one impl here and its place in
//! [`FILE_PIPELINES`]; the workload, the drain and the checker name no pipeline.

use crate::soak::reconcile::{compare, expected_rows, found_total, numbered, Report};
use crate::soak::rig::{Rig, CUSTOMERS, P2_DATASETS};
use crate::soak::workload::{archived_versions, Input};
use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use futures::future::BoxFuture;
use landfall_devstack::sample::{orders_csv, price_index_csv};
use mysql_async::prelude::Queryable;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::ops::Range;
use std::time::Duration;

/// Every file pipeline the soak runs.
pub static FILE_PIPELINES: [&dyn SoakedPipeline; 3] = [&Mysql, &Dynamodb, &Orders];

/// A file pipeline as the soak drives and checks it.
pub trait SoakedPipeline: Send + Sync + fmt::Debug {
    /// Its name in the report ("P1 MySQL").
    fn name(&self) -> &'static str;
    /// The start of its file names ("p1"), which tells its inputs apart in the run.
    fn tag(&self) -> &'static str;
    /// How often its files land, their sizes, how many are bad or uploaded twice.
    fn shape(&self) -> Shape;
    /// The bucket its files land in (a template logical id).
    fn bucket(&self) -> &'static str;
    /// The folder the `n`-th file lands in and the dataset it is for; None when the
    /// pipeline takes no more files.
    fn place(&self, n: u32) -> Option<(String, String)>;
    /// A file of rows numbered `rows`; a bad one ends with a well-formed line of the wrong
    /// type, so nothing of it may load.
    fn body(&self, rows: Range<u32>, bad: bool) -> String;
    /// Whether its good files leave landing for the archive bucket, one copy per upload.
    fn archives(&self) -> bool;
    /// The names of the `pending` inputs (its own) that its target now shows complete.
    fn completed<'a>(
        &'a self,
        rig: &'a Rig,
        pending: &'a [&'a Input],
    ) -> BoxFuture<'a, Result<BTreeSet<String>>>;
    /// Its target read back against its `inputs`: a line for the report, and what was
    /// lost, duplicated or stray tallied.
    fn reconcile<'a>(
        &'a self,
        rig: &'a Rig,
        inputs: &'a [&'a Input],
        report: &'a mut Report,
    ) -> BoxFuture<'a, Result<()>>;
}

/// The shape of one pipeline's landing files.
pub struct Shape {
    pub every: Duration,
    pub sizes: &'static [u32],
    /// Every n-th file is bad, every m-th good one is uploaded twice.
    pub bad_every: u32,
    pub twice_every: u32,
}

/// "12 (2 bad)"
fn count_files(inputs: &[&Input]) -> String {
    let bad = inputs.iter().filter(|i| i.bad).count();
    format!("{} ({bad} bad)", inputs.len())
}

/// The pending inputs archived once per upload.
async fn archived_per_upload(rig: &Rig, pending: &[&Input]) -> Result<BTreeSet<String>> {
    let archived = archived_versions(rig).await?;
    Ok(pending
        .iter()
        .filter(|i| archived.get(&i.name).copied().unwrap_or(0) >= i.uploads)
        .map(|i| i.name.clone())
        .collect())
}

/// A bad price_index line: a price that is no number.
const BAD_PRICE: &str = "2024-01,\"Region 0, North\",Food,\"Item bad\",kg,not-a-price\n";

/// P1: price_index files of mixed sizes (the big ones split into parts).
#[derive(Debug)]
pub struct Mysql;

impl SoakedPipeline for Mysql {
    fn name(&self) -> &'static str {
        "P1 MySQL"
    }

    fn tag(&self) -> &'static str {
        "p1"
    }

    fn shape(&self) -> Shape {
        Shape {
            every: Duration::from_millis(1500),
            sizes: &[20, 150, 600, 2500],
            bad_every: 9,
            twice_every: 7,
        }
    }

    fn bucket(&self) -> &'static str {
        "LandingBucket"
    }

    fn place(&self, _n: u32) -> Option<(String, String)> {
        Some(("mysql/price_index".into(), "price_index".into()))
    }

    fn body(&self, rows: Range<u32>, bad: bool) -> String {
        let mut body = price_index_csv(rows);
        if bad {
            body.push_str(BAD_PRICE);
        }
        body
    }

    fn archives(&self) -> bool {
        true
    }

    fn completed<'a>(
        &'a self,
        rig: &'a Rig,
        pending: &'a [&'a Input],
    ) -> BoxFuture<'a, Result<BTreeSet<String>>> {
        Box::pin(archived_per_upload(rig, pending))
    }

    fn reconcile<'a>(
        &'a self,
        rig: &'a Rig,
        inputs: &'a [&'a Input],
        report: &'a mut Report,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
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
                self.name(),
                count_files(inputs),
                want.len(),
                found_total(&found),
                staged.len() as u64 - awaiting_sweep
            ));
            report.tally("P1 price_index", lost, duplicated, stray);
            Ok(())
        })
    }
}

/// P2: one file per `soak_<n>` dataset, each imported into its own table.
#[derive(Debug)]
pub struct Dynamodb;

impl SoakedPipeline for Dynamodb {
    fn name(&self) -> &'static str {
        "P2 DynamoDB"
    }

    fn tag(&self) -> &'static str {
        "p2"
    }

    fn shape(&self) -> Shape {
        Shape {
            every: Duration::from_secs(5),
            sizes: &[30, 120, 300],
            bad_every: 5,
            twice_every: 4,
        }
    }

    fn bucket(&self) -> &'static str {
        "LandingBucket"
    }

    fn place(&self, n: u32) -> Option<(String, String)> {
        (n < P2_DATASETS).then(|| (format!("dynamodb/soak_{n}"), format!("soak_{n}")))
    }

    fn body(&self, rows: Range<u32>, bad: bool) -> String {
        Mysql.body(rows, bad)
    }

    fn archives(&self) -> bool {
        true
    }

    fn completed<'a>(
        &'a self,
        rig: &'a Rig,
        pending: &'a [&'a Input],
    ) -> BoxFuture<'a, Result<BTreeSet<String>>> {
        Box::pin(archived_per_upload(rig, pending))
    }

    fn reconcile<'a>(
        &'a self,
        rig: &'a Rig,
        inputs: &'a [&'a Input],
        report: &'a mut Report,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let ssm = aws_sdk_ssm::Client::new(&rig.stack.sdk);
            let dynamodb = aws_sdk_dynamodb::Client::new(&rig.stack.sdk);
            let prefix =
                &rig.stack.stack.functions["dynamodb-loader"].environment["POINTER_PREFIX"];
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
                self.name(),
                count_files(inputs)
            ));
            report.tally("P2 current tables", lost, duplicated, stray);
            Ok(())
        })
    }
}

/// P3: orders files with disjoint order ids.
#[derive(Debug)]
pub struct Orders;

impl SoakedPipeline for Orders {
    fn name(&self) -> &'static str {
        "P3 orders"
    }

    fn tag(&self) -> &'static str {
        "p3"
    }

    fn shape(&self) -> Shape {
        Shape {
            every: Duration::from_secs(2),
            sizes: &[10, 80, 400],
            bad_every: 8,
            twice_every: 6,
        }
    }

    fn bucket(&self) -> &'static str {
        "TransformedBucket"
    }

    fn place(&self, _n: u32) -> Option<(String, String)> {
        Some(("transformed/orders".into(), "orders".into()))
    }

    fn body(&self, rows: Range<u32>, bad: bool) -> String {
        let mut body = orders_csv(rows, CUSTOMERS, 0);
        if bad {
            body.push_str("O9999999,C0001,2026-11-01 00:00:00,paid,not-an-amount,GBP\n");
        }
        body
    }

    fn archives(&self) -> bool {
        false
    }

    /// Every audit item LOADED, or SUPERSEDED by a later version; one item per version
    /// (moto names both uploads of the same bytes by their ETag: one).
    fn completed<'a>(
        &'a self,
        rig: &'a Rig,
        pending: &'a [&'a Input],
    ) -> BoxFuture<'a, Result<BTreeSet<String>>> {
        Box::pin(async move {
            let audited = audit_statuses(rig).await?;
            Ok(pending
                .iter()
                .filter(|i| {
                    audited.get(&i.name).is_some_and(|statuses| {
                        statuses.iter().any(|s| s == "LOADED")
                            && statuses.iter().all(|s| s == "LOADED" || s == "SUPERSEDED")
                    })
                })
                .map(|i| i.name.clone())
                .collect())
        })
    }

    fn reconcile<'a>(
        &'a self,
        rig: &'a Rig,
        inputs: &'a [&'a Input],
        report: &'a mut Report,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let want = expected_rows(inputs.iter().copied());
            let mut conn = rig.redshift.conn().await?;
            let rows: Vec<(String, i64)> =
                sqlx::query_as("SELECT order_id, COUNT(*) FROM orders_enriched GROUP BY order_id")
                    .fetch_all(&mut conn)
                    .await?;
            let found = rows
                .into_iter()
                .map(|(id, n)| (numbered(&id, "O"), n as u64))
                .collect();
            let (lost, duplicated, mut stray) = compare(&want, &found);
            let staged: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders_staging")
                .fetch_one(&mut conn)
                .await?;
            stray += staged as u64;
            report.rows += want.len() as u64;
            report.lines.push(format!(
                "{:<14}files {:>4}  rows {:>7}  in orders_enriched {:>7}  left staged {staged}",
                self.name(),
                count_files(inputs),
                want.len(),
                found_total(&found)
            ));
            report.tally("P3 orders_enriched", lost, duplicated, stray);
            Ok(())
        })
    }
}

/// File name → the status of each of its audit items (one per version).
async fn audit_statuses(rig: &Rig) -> Result<HashMap<String, Vec<String>>> {
    let mut statuses: HashMap<String, Vec<String>> = HashMap::new();
    let mut pages = aws_sdk_dynamodb::Client::new(&rig.stack.sdk)
        .scan()
        .table_name(rig.stack.resource("OrdersAuditTable"))
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item?;
        let text = |name: &str| match item.get(name) {
            Some(AttributeValue::S(s)) => s.clone(),
            _ => String::new(),
        };
        let key = text("key");
        let name = key.rsplit('/').next().unwrap_or_default().to_owned();
        statuses.entry(name).or_default().push(text("status"));
    }
    Ok(statuses)
}
