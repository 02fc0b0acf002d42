//! The loader path on one local file, for `make bench-mysql`: the same stream → checker →
//! LOAD DATA LOCAL → checks that mysql-loader runs on an S3 body, for either kind of
//! dataset — `upsert` (price_index as bundled: straight into the table) or `procedure`
//! (price_index with its load procedure: a temporary stage, then `load_price_index`).
//! Reading the file instead of S3 keeps moto's speed out of the measurement.
//!
//! usage: bench-mysql-load <file.csv> <mysql-url-with-database> <upsert|procedure>

use anyhow::{Context, Result};
use bytes::{Bytes, BytesMut};
use futures::stream::{self, StreamExt};
use landfall_mysql_datasets::{Datasets, Ident};
use landfall_mysql_load::{BatchId, LedgerSource, MysqlLoader};
use tokio::io::AsyncReadExt;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (path, url, kind) = match args.as_slice() {
        [_, path, url, kind] => (path.clone(), url.clone(), kind.as_str()),
        _ => anyhow::bail!(
            "usage: bench-mysql-load <file.csv> <mysql-url-with-database> <upsert|procedure>"
        ),
    };
    let datasets = Datasets::parse(
        "config/datasets.toml (bundled)",
        landfall_mysql_datasets::BUNDLED,
    )?;
    let mut dataset = datasets
        .get("price_index")
        .context("price_index dataset")?
        .clone();
    match kind {
        "upsert" => {}
        // Both are in sql/mysql/010_price_index.sql.
        "procedure" => {
            dataset.stage_table =
                Some(Ident::new("price_index_stage").map_err(anyhow::Error::msg)?);
            dataset.load_procedure =
                Some(Ident::new("load_price_index").map_err(anyhow::Error::msg)?);
        }
        other => anyhow::bail!("{other}: upsert or procedure"),
    }
    let dataset = &dataset;
    let pool = mysql_async::Pool::new(mysql_async::Opts::from_url(&url)?);
    let loader = MysqlLoader::new(pool.clone());

    let file = tokio::fs::File::open(&path)
        .await
        .with_context(|| format!("opening {path}"))?;
    let body = stream::unfold(file, |mut file| async move {
        let mut buffer = BytesMut::with_capacity(1 << 20);
        match file.read_buf(&mut buffer).await {
            Ok(0) => None,
            Ok(_) => Some((Ok::<Bytes, std::io::Error>(buffer.freeze()), file)),
            Err(err) => Some((Err(err), file)),
        }
    })
    .boxed();

    let started = std::time::Instant::now();
    let batch = BatchId::for_object(
        "bench",
        &path,
        &format!("{:?}", std::time::SystemTime::now()),
    );
    let source = LedgerSource {
        dataset: "price_index".into(),
        key: path.clone(),
        version: batch.as_str().to_owned(),
        // As a notification names it: the load takes its key's place in the upload order.
        landed: Some("2026-12-05T00:00:00.000Z".into()),
    };
    // The path mysql-loader takes for a file that was not split (an upsert's never is).
    let promoted = loader.load(dataset, &batch, &path, body, &source).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!("rows={} seconds={seconds:.3}", promoted.rows);
    pool.disconnect().await?;
    Ok(())
}
