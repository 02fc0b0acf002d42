//! `make bench-dynamodb`, the Rust side: a landing CSV file through dynamodb-loader's
//! conversion path (`landfall_dynamodb_import::convert`: split on record boundaries, check,
//! encode DynamoDB JSON with the key, gzip, parts side by side, and the duplicate-key check)
//! into part files in a directory instead of S3 objects. Prints one JSON line:
//! seconds, rows, parts, peak RSS.

use anyhow::{Context, Result};
use bytes::Bytes;
use landfall_aws::s3_stream::ByteSink;
use landfall_dynamodb_datasets::Datasets;
use landfall_dynamodb_import::convert::{convert, Output};
use landfall_runtime::{Classify, Disposition};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

/// A part file that could not be written.
#[derive(Debug, thiserror::Error)]
#[error("writing a part file")]
struct WriteFailed(#[source] std::io::Error);

impl Classify for WriteFailed {
    fn disposition(&self) -> Disposition {
        Disposition::Permanent
    }
}

#[derive(Clone)]
struct Files(PathBuf);

struct File(std::fs::File);

impl Output for Files {
    type Part = File;
    type Error = WriteFailed;

    async fn create(&self, part: u32) -> Result<File, WriteFailed> {
        let path = self.0.join(format!("part-{part:05}.json.gz"));
        std::fs::File::create(path).map(File).map_err(WriteFailed)
    }
}

impl ByteSink for File {
    type Error = WriteFailed;

    async fn write(&mut self, bytes: &[u8]) -> Result<(), WriteFailed> {
        self.0.write_all(bytes).map_err(WriteFailed)
    }

    async fn finish(self) -> Result<(), WriteFailed> {
        Ok(())
    }

    async fn abort(self) {}
}

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (input, output, split_bytes) = match (args.next(), args.next(), args.next()) {
        (Some(i), Some(o), s) => (
            PathBuf::from(i),
            PathBuf::from(o),
            s.map_or(Ok(32 << 20), |s| s.parse())?,
        ),
        _ => anyhow::bail!("usage: bench-dynamodb <input.csv> <output dir> [split bytes]"),
    };
    std::fs::create_dir_all(&output)?;
    let datasets = Datasets::parse("config/dynamodb.toml", landfall_dynamodb_datasets::BUNDLED)?;
    let dataset = datasets.get("price_index").context("price_index")?;

    let started = Instant::now();
    let mut file = std::fs::File::open(&input).with_context(|| input.display().to_string())?;
    // The file in 64 KiB chunks, as S3's body stream hands it over.
    let body = futures::stream::poll_fn(move |_| {
        let mut chunk = vec![0; 64 << 10];
        std::task::Poll::Ready(match file.read(&mut chunk) {
            Ok(0) => None,
            Ok(n) => {
                chunk.truncate(n);
                Some(Ok(Bytes::from(chunk)))
            }
            Err(e) => Some(Err(e)),
        })
    });
    let name = input.display().to_string();
    let converted = convert(body, dataset, &name, &Files(output), split_bytes, 2).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "seconds": seconds,
            "rows": converted.rows,
            "parts": converted.parts,
            "bytes": converted.bytes,
            "peak_rss_mb": landfall_bench::peak_rss_mb(),
        })
    );
    Ok(())
}
