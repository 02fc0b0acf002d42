//! `make bench-transform`, the Rust side: the ingestion objects in a directory
//! (`<table>.jsonl.gz`, db-extract's format) through star-transform's path — read and check
//! every line while transforming against the state, encode the warehouse tables as Parquet — into
//! an output directory, one file per warehouse table and object. The state stays in memory
//! here (the function commits it to S3 once per object; that is I/O, not the transform).
//! Prints one JSON line: seconds, rows per warehouse table, peak RSS.

use anyhow::{Context, Result};
use landfall_totesys_star::transform::{transform, with_lines, MemoryLookup};
use landfall_totesys_star::{extend_dates, SourceTable};
use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (input, output) = match (args.next(), args.next()) {
        (Some(i), Some(o)) => (PathBuf::from(i), PathBuf::from(o)),
        _ => anyhow::bail!("usage: bench-transform <input dir> <output dir>"),
    };
    std::fs::create_dir_all(&output)?;

    let started = Instant::now();
    let mut state = MemoryLookup::default();
    let mut covered = None;
    let mut rows: BTreeMap<&'static str, usize> = BTreeMap::new();
    for name in landfall_bench::SOURCES_IN_LOAD_ORDER {
        let path = input.join(format!("{name}.jsonl.gz"));
        if !path.exists() {
            continue;
        }
        let table = SourceTable::from_name(name).expect("a source table");
        let file = std::fs::File::open(&path).with_context(|| path.display().to_string())?;
        let lines = BufReader::with_capacity(
            1 << 20,
            flate2::read::GzDecoder::new(BufReader::with_capacity(1 << 20, file)),
        );
        let (emitted, changes) =
            with_lines(table, 1, lines, |records| transform(records, &state))??;
        let date_rows = match emitted.dates {
            Some(needed) => {
                let (new_rows, span) = extend_dates(covered, needed);
                covered = Some(span);
                new_rows
            }
            None => Vec::new(),
        };
        let encoded = landfall_totesys_transform::outputs::encode(&emitted, &date_rows)
            .map_err(|(table, e)| anyhow::anyhow!("{table}: {e}"))?;
        for file in encoded {
            *rows.entry(file.table).or_default() += file.rows;
            std::fs::write(
                output.join(format!("{}-{name}.parquet", file.table)),
                file.bytes,
            )?;
        }
        state.apply(&changes);
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({"seconds": seconds, "rows": rows, "peak_rss_mb": landfall_bench::peak_rss_mb()})
    );
    Ok(())
}
