//! `make bench-warehouse`, the Rust side, against the local PostgreSQL (trust auth):
//!
//! - `bench-warehouse prepare <database> [<version>]`: the database dropped, created and
//!   migrated (through `version` only, when given: `2` is the schema before references were
//!   checked by set, with PostgreSQL's per-row foreign key triggers);
//! - `bench-warehouse sql`: the stage, COPY and merge statements of every table, as JSON, so
//!   the floor and the Python baselines run exactly the loader's SQL;
//! - `bench-warehouse load <parquet dir> <database> [<tag>]`: star-transform's files
//!   (`<warehouse table>-<source table>.parquet`, from bench-transform) loaded one manifest per
//!   source table (`ready/<source>[-<tag>].json`: a tag loads another object of the same
//!   tables), each in one transaction with its ledger row, by warehouse-loader's path — read,
//!   COPY, merge. Prints one JSON line: seconds, rows per table, peak RSS.

use anyhow::{Context, Result};
use landfall_totesys_contract::processed::{Manifest, Output};
use landfall_totesys_warehouse::load::{load_manifest, File, Loaded, Statements};
use landfall_totesys_warehouse::schema::{migrator_through, TABLES};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

fn server() -> PgConnectOptions {
    PgConnectOptions::new()
        .host("127.0.0.1")
        .port(5432)
        .username("postgres")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[1..] {
        ["prepare", database] => prepare(database, i64::MAX).await,
        ["prepare", database, version] => prepare(database, version.parse()?).await,
        ["sql"] => {
            let all: BTreeMap<&str, serde_json::Value> = TABLES
                .iter()
                .map(|t| {
                    let s = Statements::of(t);
                    let json = serde_json::json!({"create_stage": s.create_stage, "copy": s.copy,
                        "merge": s.merge, "drop_stage": s.drop_stage, "direct_copy": s.direct_copy});
                    (t.name, json)
                })
                .collect();
            println!("{}", serde_json::to_string(&all)?);
            Ok(())
        }
        ["load", dir, database] => load(Path::new(dir), database, None).await,
        ["load", dir, database, tag] => load(Path::new(dir), database, Some(tag)).await,
        _ => {
            anyhow::bail!(
                "usage: bench-warehouse prepare <db> [<version>] | sql | load <dir> <db> [<tag>]"
            )
        }
    }
}

async fn prepare(database: &str, version: i64) -> Result<()> {
    landfall_totesys_seed::recreate_database(&server(), database).await?;
    let mut conn = PgConnection::connect_with(&server().database(database)).await?;
    migrator_through(version).run_direct(&mut conn).await?;
    Ok(())
}

async fn load(dir: &Path, database: &str, tag: Option<&str>) -> Result<()> {
    let mut conn = PgConnection::connect_with(&server().database(database)).await?;
    let started = Instant::now();
    let mut rows: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (sequence, source) in landfall_bench::SOURCES_IN_LOAD_ORDER.iter().enumerate() {
        let mut files = Vec::new();
        for table in TABLES {
            let path = dir.join(format!("{}-{source}.parquet", table.name));
            if !path.exists() {
                continue;
            }
            let bytes = bytes::Bytes::from(
                std::fs::read(&path).with_context(|| path.display().to_string())?,
            );
            let count = parquet::arrow::arrow_reader::ArrowReaderMetadata::load(
                &bytes,
                Default::default(),
            )?
            .metadata()
            .file_metadata()
            .num_rows() as usize;
            files.push(File {
                table: table.name.to_owned(),
                key: path.display().to_string(),
                rows: count,
                bytes,
            });
        }
        if files.is_empty() {
            continue;
        }
        let manifest = Manifest {
            source: format!("bench://{source}"),
            source_version: "1".into(),
            table: (*source).to_owned(),
            sequence: sequence as u64 + 1,
            upper: None,
            outputs: files
                .iter()
                .map(|f| Output {
                    table: f.table.clone(),
                    key: f.key.clone(),
                    rows: f.rows,
                })
                .collect(),
        };
        let key = match tag {
            Some(tag) => format!("ready/{source}-{tag}.json"),
            None => format!("ready/{source}.json"),
        };
        match load_manifest(&mut conn, &key, &manifest, &files).await? {
            Loaded::Rows(written) => {
                for (table, n) in written {
                    *rows.entry(table).or_default() += n;
                }
            }
            Loaded::Already => anyhow::bail!("{key} was loaded before: prepare the database"),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"seconds": seconds, "rows": rows, "peak_rss_mb": landfall_bench::peak_rss_mb()})
    );
    Ok(())
}
