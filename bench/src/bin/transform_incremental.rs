//! `make bench-transform-incremental`, the Rust side: what one extract run's increment costs
//! star-transform when a history is already absorbed, against moto (`AWS_ENDPOINT_URL`).
//!
//! - `history <rows>`: a history of `<rows>` source rows (totesys's proportions: the joined
//!   dimensions grow with it, sales orders are the rest, in objects of 50,000) put in the
//!   ingestion bucket and absorbed by the real `Transformer`; and the one state object the
//!   old design would hold after it (every dimension row, every fact version), as it stored it.
//! - `increment <rows> <run>`: one run's increment — 990 sales orders (half new versions of
//!   old orders) and 10 changed addresses (re-emitting their counterparties) — through
//!   star-transform's whole path, state read and committed included. A fresh process, so its
//!   peak RSS is the increment's.
//! - `old-increment <rows> <run>`: the same, plus the old design's round trip of its one
//!   state object (read, decode, apply the increment, encode, conditional write), as every
//!   object paid it before the state was split.
//!
//! Each prints one JSON line.

use anyhow::{Context, Result};
use aws_sdk_s3::primitives::ByteStream;
use landfall_aws::parameters::JsonParameters;
use landfall_aws::Aws;
use landfall_env::Env;
use landfall_totesys_star::{Record, SourceRow, SourceTable, Stamp};
use landfall_totesys_transform::{ObjectVersion, Outcome, Settings, Transformer, Version};
use rustc_hash::{FxHashMap, FxHashSet};
use std::io::{Read, Write};
use std::time::Instant;

const INGESTION: &str = "bench-ingestion";
const PROCESSED: &str = "bench-processed";
const OLD_STATE: &str = "old-state/transform.json.gz";
const DAY: &str = "2026-12-05";
const OBJECT_ROWS: usize = 50_000;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize| -> Result<usize> {
        args.get(i)
            .context("usage: history <rows> | increment <rows> <run> | old-increment <rows> <run>")?
            .parse::<usize>()
            .context("a number")
    };
    let aws = Aws::load(&Env::from_process()).await?;
    let bench = Bench {
        s3: aws.s3(),
        transformer: Transformer::new(
            aws.s3(),
            JsonParameters::new(aws.ssm(), "/bench/star-transform"),
            Settings {
                processed_bucket: PROCESSED.into(),
                state_prefix: "state/".into(),
                commit_attempts: 8,
            },
        ),
        history: History::of(number(1)?),
    };
    let answer = match args.first().map(String::as_str) {
        Some("history") => bench.absorb_history().await?,
        Some("increment") => bench.increment(number(2)?, false).await?,
        Some("old-increment") => bench.increment(number(2)?, true).await?,
        _ => anyhow::bail!("usage: history | increment | old-increment"),
    };
    println!("{answer}");
    Ok(())
}

/// How many rows of each table a history of `rows` source rows holds: totesys's proportions
/// (per 48,000 rows about 30 addresses, 20 counterparties and staff, 8 departments), at
/// least totesys's own counts; sales orders are the rest.
struct History {
    addresses: usize,
    counterparties: usize,
    departments: usize,
    staff: usize,
    designs: usize,
    orders: usize,
}

impl History {
    fn of(rows: usize) -> History {
        let (addresses, counterparties, departments, staff, designs) = (
            (rows / 1600).max(30),
            (rows / 2400).max(20),
            (rows / 6000).max(8),
            (rows / 2400).max(20),
            (rows / 100).max(100),
        );
        let dims = addresses + counterparties + departments + staff + designs + 3;
        History {
            addresses,
            counterparties,
            departments,
            staff,
            designs,
            orders: rows.saturating_sub(dims).max(1000),
        }
    }

    /// The history as ingestion objects in load order: (table, sequence, lines).
    fn objects(&self) -> Vec<(SourceTable, u64, Vec<String>)> {
        let at = "2022-11-03T14:20:49.962";
        let mut objects = vec![
            (
                SourceTable::Address,
                1,
                (1..=self.addresses).map(|i| address(i, at, "0")).collect(),
            ),
            (
                SourceTable::Department,
                1,
                (1..=self.departments)
                    .map(|i| {
                        format!(
                            r#"{{"department_id": {i}, "department_name": "Department {i}", "location": "Site {i}", "manager": "M", "created_at": "{at}", "last_updated": "{at}"}}"#
                        )
                    })
                    .collect(),
            ),
            (
                SourceTable::Currency,
                1,
                ["GBP", "USD", "EUR"]
                    .iter()
                    .enumerate()
                    .map(|(i, code)| {
                        format!(
                            r#"{{"currency_id": {}, "currency_code": "{code}", "created_at": "{at}", "last_updated": "{at}"}}"#,
                            i + 1
                        )
                    })
                    .collect(),
            ),
            (
                SourceTable::Design,
                1,
                (1..=self.designs)
                    .map(|i| {
                        format!(
                            r#"{{"design_id": {i}, "created_at": "{at}", "design_name": "Design {i}", "file_location": "/usr/share/d", "file_name": "d-{i}.json", "last_updated": "{at}"}}"#
                        )
                    })
                    .collect(),
            ),
            (
                SourceTable::Counterparty,
                1,
                (1..=self.counterparties)
                    .map(|i| {
                        format!(
                            r#"{{"counterparty_id": {i}, "counterparty_legal_name": "Counterparty {i}", "legal_address_id": {}, "commercial_contact": "C", "delivery_contact": "D", "created_at": "{at}", "last_updated": "{at}"}}"#,
                            1 + i % self.addresses
                        )
                    })
                    .collect(),
            ),
            (
                SourceTable::Staff,
                1,
                (1..=self.staff)
                    .map(|i| {
                        format!(
                            r#"{{"staff_id": {i}, "first_name": "First{i}", "last_name": "Last{i}", "department_id": {}, "email_address": "s{i}@terrifictotes.com", "created_at": "{at}", "last_updated": "{at}"}}"#,
                            1 + i % self.departments
                        )
                    })
                    .collect(),
            ),
        ];
        let ids: Vec<usize> = (1..=self.orders).collect();
        for (n, chunk) in ids.chunks(OBJECT_ROWS).enumerate() {
            let lines = chunk.iter().map(|&i| self.order(i, 0)).collect();
            objects.push((SourceTable::SalesOrder, n as u64 + 1, lines));
        }
        objects
    }

    /// Sales order `id`, version `version` (0: as first extracted).
    fn order(&self, id: usize, version: usize) -> String {
        let minute = id % 1_000_000;
        let (day, hour, min) = (3 + minute / 1440 % 25, minute / 60 % 24, minute % 60);
        let created = format!("2022-11-{day:02}T{hour:02}:{min:02}:00.000");
        let updated = format!("2022-11-{day:02}T{hour:02}:{min:02}:{version:02}.000");
        format!(
            r#"{{"sales_order_id": {id}, "created_at": "{created}", "last_updated": "{updated}", "design_id": {}, "staff_id": {}, "counterparty_id": {}, "units_sold": {}, "unit_price": "2.{:02}", "currency_id": {}, "agreed_delivery_date": "2022-12-{:02}", "agreed_payment_date": "2022-12-{:02}", "agreed_delivery_location_id": {}}}"#,
            1 + id % self.designs,
            1 + id % self.staff,
            1 + id % self.counterparties,
            1000 + id % 99_000,
            id % 100,
            1 + id % 3,
            1 + id % 28,
            1 + (id / 7) % 28,
            1 + id % self.addresses,
        )
    }

    /// Run `run`'s increment: 990 sales orders (495 new versions of old orders, 495 new) and
    /// 10 changed addresses, as the objects after the history's.
    fn increment(&self, run: usize) -> Vec<(SourceTable, u64, Vec<String>)> {
        let orders = (0..990)
            .map(|i| {
                if i % 2 == 0 {
                    self.order(1 + (i * 7919 + run) % self.orders, 1 + run % 50)
                } else {
                    self.order(self.orders + run * 1000 + i, 0)
                }
            })
            .collect();
        let changed = format!("2026-12-05T10:{:02}:00.000", run % 60);
        let addresses = (0..10)
            .map(|i| {
                address(
                    1 + (i * 31 + run) % self.addresses,
                    &changed,
                    &run.to_string(),
                )
            })
            .collect();
        let next = self.orders.div_ceil(OBJECT_ROWS) as u64 + 1 + run as u64;
        vec![
            (SourceTable::SalesOrder, next, orders),
            (SourceTable::Address, 2 + run as u64, addresses),
        ]
    }
}

fn address(id: usize, at: &str, phone: &str) -> String {
    format!(
        r#"{{"address_id": {id}, "address_line_1": "{id} Erdman Street", "address_line_2": null, "district": null, "city": "City {id}", "postal_code": "{}", "country": "San Marino", "phone": "6265 {phone}", "created_at": "2022-11-03T14:20:49.962", "last_updated": "{at}"}}"#,
        10000 + id
    )
}

struct Bench {
    s3: aws_sdk_s3::Client,
    transformer: Transformer,
    history: History,
}

impl Bench {
    async fn put(
        &self,
        table: SourceTable,
        sequence: u64,
        lines: &[String],
    ) -> Result<ObjectVersion> {
        let name = table.name();
        let key = format!("{name}/{DAY}/{name}-{sequence:010}.jsonl.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        for line in lines {
            writeln!(gz, "{line}")?;
        }
        let put = self
            .s3
            .put_object()
            .bucket(INGESTION)
            .key(&key)
            .body(ByteStream::from(gz.finish()?))
            .send()
            .await?;
        Ok(ObjectVersion {
            bucket: INGESTION.into(),
            key,
            version: Version::from_s3(put.version_id(), put.e_tag()),
        })
    }

    /// Transforms `objects` one after another, as an invocation does; seconds per object.
    async fn transform(&self, objects: &[ObjectVersion]) -> Result<Vec<f64>> {
        let mut seconds = Vec::new();
        for object in objects {
            let started = Instant::now();
            match self.transformer.process(object).await? {
                Outcome::Transformed { .. } => seconds.push(started.elapsed().as_secs_f64()),
                other => anyhow::bail!("{}: {other:?}", object.key),
            }
        }
        Ok(seconds)
    }

    /// The floor: the increment's objects read and written back through moto, nothing else
    /// (no transform, no state); seconds.
    async fn copy(&self, objects: &[ObjectVersion]) -> Result<f64> {
        let started = Instant::now();
        for object in objects {
            let body = self
                .s3
                .get_object()
                .bucket(INGESTION)
                .key(&object.key)
                .send()
                .await?
                .body
                .collect()
                .await?
                .into_bytes();
            self.s3
                .put_object()
                .bucket(PROCESSED)
                .key(format!("floor/{}", object.key))
                .body(ByteStream::from(body))
                .send()
                .await?;
        }
        Ok(started.elapsed().as_secs_f64())
    }

    async fn absorb_history(&self) -> Result<serde_json::Value> {
        // Versioned, as the template's ingestion bucket is: notifications name a version.
        landfall_bench::create_bucket(&self.s3, INGESTION, true).await?;
        landfall_bench::create_bucket(&self.s3, PROCESSED, false).await?;
        let started = Instant::now();
        let mut old = OldState::default();
        let mut rows = 0;
        for (table, sequence, lines) in self.history.objects() {
            let object = self.put(table, sequence, &lines).await?;
            self.transform(std::slice::from_ref(&object)).await?;
            old.absorb(table, &lines, &object)?;
            rows += lines.len();
        }
        let old_bytes = old.store(&self.s3, None).await?;
        let states = self
            .s3
            .list_objects_v2()
            .bucket(PROCESSED)
            .prefix("state/")
            .send()
            .await?;
        let state_bytes: i64 = states.contents().iter().filter_map(|o| o.size()).sum();
        Ok(serde_json::json!({
            "rows": rows,
            "seconds": started.elapsed().as_secs_f64(),
            "state_bytes": state_bytes,
            "old_state_bytes": old_bytes,
        }))
    }

    async fn increment(&self, run: usize, old_design: bool) -> Result<serde_json::Value> {
        let increment = self.history.increment(run);
        let mut objects = Vec::new();
        for (table, sequence, lines) in &increment {
            objects.push(self.put(*table, *sequence, lines).await?);
        }
        let floor = self.copy(&objects).await?;
        let started = Instant::now();
        let each = self.transform(&objects).await?;
        let mut round_trip = 0.0;
        if old_design {
            // Every object paid it: read the one state, decode, apply, encode, write.
            for ((table, _, lines), object) in increment.iter().zip(&objects) {
                let trip = Instant::now();
                let (mut old, etag) = OldState::load(&self.s3).await?;
                old.absorb(*table, lines, object)?;
                old.store(&self.s3, Some(&etag)).await?;
                round_trip += trip.elapsed().as_secs_f64();
            }
        }
        Ok(serde_json::json!({
            "rows": increment.iter().map(|(_, _, lines)| lines.len()).sum::<usize>(),
            "seconds": started.elapsed().as_secs_f64(),
            "sales_order_seconds": each[0],
            "address_seconds": each[1],
            "old_state_round_trip_seconds": round_trip,
            "floor_seconds": floor,
            "peak_rss_mb": landfall_bench::peak_rss_mb(),
        }))
    }
}

/// The state as the old design kept it — one object: the latest version of every row of every
/// dimension table, every fact version ever emitted, the dates and the objects absorbed — in
/// memory as its `MemoryLookup` held it (hash maps), stored as it stored it (sorted lists,
/// gzip JSON). Rebuilt here for the record: the code that used it is gone.
#[derive(Default)]
struct OldState {
    latest: FxHashMap<(SourceTable, i32), Record>,
    facts: FxHashSet<(SourceTable, i32, Stamp)>,
    absorbed: std::collections::BTreeMap<String, (String, u64)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct OldStored {
    lookup: OldLookup,
    dates: Option<(time::Date, time::Date)>,
    absorbed: std::collections::BTreeMap<String, (String, u64)>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct OldLookup {
    rows: Vec<Record>,
    facts: Vec<(SourceTable, i32, Stamp)>,
}

impl OldState {
    fn absorb(
        &mut self,
        table: SourceTable,
        lines: &[String],
        object: &ObjectVersion,
    ) -> Result<()> {
        let fact = matches!(
            table,
            SourceTable::SalesOrder | SourceTable::PurchaseOrder | SourceTable::Payment
        );
        for line in lines {
            let record = Record::parse(table, &SourceRow::parse(line)?)?;
            let (table, id, stamp) = record.version();
            if fact {
                self.facts.insert((table, id, stamp));
            } else if self
                .latest
                .get(&(table, id))
                .is_none_or(|known| known.version().2 < stamp)
            {
                self.latest.insert((table, id), record);
            }
        }
        self.absorbed.insert(
            format!("{}@{}", object.key, object.version),
            ("tag".into(), 0),
        );
        Ok(())
    }

    async fn load(s3: &aws_sdk_s3::Client) -> Result<(OldState, String)> {
        let out = s3
            .get_object()
            .bucket(PROCESSED)
            .key(OLD_STATE)
            .send()
            .await?;
        let etag = out.e_tag().context("an ETag")?.to_owned();
        let body = out.body.collect().await?.into_bytes();
        let mut json = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut json)?;
        let stored: OldStored = serde_json::from_slice(&json)?;
        let mut state = OldState {
            absorbed: stored.absorbed,
            ..OldState::default()
        };
        for record in stored.lookup.rows {
            let (table, id, _) = record.version();
            state.latest.insert((table, id), record);
        }
        state.facts.extend(stored.lookup.facts);
        Ok((state, etag))
    }

    /// Stores it (conditionally on `etag`, as the old commit did); its size in bytes.
    async fn store(self, s3: &aws_sdk_s3::Client, etag: Option<&str>) -> Result<usize> {
        let mut rows: Vec<_> = self.latest.into_iter().collect();
        rows.sort_by_key(|(key, _)| *key);
        let mut facts: Vec<_> = self.facts.into_iter().collect();
        facts.sort();
        let stored = OldStored {
            lookup: OldLookup {
                rows: rows.into_iter().map(|(_, r)| r).collect(),
                facts,
            },
            dates: None,
            absorbed: self.absorbed,
        };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        serde_json::to_writer(&mut gz, &stored)?;
        let bytes = gz.finish()?;
        let size = bytes.len();
        let mut put = s3
            .put_object()
            .bucket(PROCESSED)
            .key(OLD_STATE)
            .body(ByteStream::from(bytes));
        if let Some(etag) = etag {
            put = put.if_match(etag);
        }
        put.send().await?;
        Ok(size)
    }
}
