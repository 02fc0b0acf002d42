//! bench-extract's Rust path: the real `landfall_totesys_extract::Extractor` (advisory lock, SSM state,
//! one REPEATABLE READ snapshot, server-rendered JSON, gzip, S3 upload) against moto, for one
//! table whose watermark is set so only the changed rows qualify. Prints the timed extract and
//! what the object holds (rows, sum of ids), read back outside the timed part.
//!
//! Usage: bench-extract <database> <table> <id column> <watermark>; AWS_ENDPOINT_URL → moto.

use anyhow::{Context, Result};
use flate2::read::GzDecoder;
use landfall_aws::Aws;
use landfall_runtime::Env;
use landfall_secrets::CredentialSource;
use landfall_totesys_extract::{ExtractConfig, Extracted, Extractor, Settings, StateStore};
use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, database, table, id_column, watermark] = &args[..] else {
        anyhow::bail!("usage: bench-extract <database> <table> <id column> <watermark>");
    };
    let env = Env::from_process();
    let aws = Aws::load(&env).await?;
    let bucket = "bench-ingestion";
    let region = aws_sdk_s3::types::BucketLocationConstraint::from(
        aws.sdk_config()
            .region()
            .map(|r| r.as_ref())
            .unwrap_or("eu-west-2"),
    );
    let created = aws
        .s3()
        .create_bucket()
        .bucket(bucket)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(region)
                .build(),
        )
        .send()
        .await;
    if let Err(err) = created {
        if !err
            .as_service_error()
            .is_some_and(|e| e.is_bucket_already_owned_by_you())
        {
            return Err(err.into());
        }
    }
    let secret = serde_json::json!({"host": "127.0.0.1", "port": 5432, "username": "postgres", "password": "", "dbname": database});
    let secrets = aws.secrets();
    if secrets
        .create_secret()
        .name("bench/totesys")
        .secret_string(secret.to_string())
        .send()
        .await
        .is_err()
    {
        secrets
            .put_secret_value()
            .secret_id("bench/totesys")
            .secret_string(secret.to_string())
            .send()
            .await?;
    }
    let state = serde_json::json!({"watermark": watermark, "sequence": 0});
    aws.ssm()
        .put_parameter()
        .name(format!("/bench/db-extract/{table}"))
        .value(state.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await?;
    let config = ExtractConfig::parse(&format!("[[tables]]\nname = \"{table}\"\n"), "bench")
        .map_err(anyhow::Error::msg)?;
    let extractor = Extractor::new(
        aws.s3(),
        StateStore::new(aws.ssm(), "/bench/db-extract"),
        CredentialSource::new(aws.secrets(), "bench/totesys"),
        Settings {
            bucket: bucket.into(),
            settle: Duration::ZERO,
            gzip_level: std::env::var("GZIP_LEVEL")
                .ok()
                .and_then(|l| l.parse().ok())
                .unwrap_or(landfall_totesys_extract::DEFAULT_GZIP_LEVEL),
            ssl_mode: sqlx::postgres::PgSslMode::Disable,
            rows_per_object: landfall_totesys_extract::DEFAULT_ROWS_PER_OBJECT,
            time_budget: Duration::MAX,
        },
    );

    // An earlier run's objects (one moto serves every run) are not this run's.
    for key in keys_under(&aws.s3(), bucket, table).await? {
        aws.s3()
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await?;
    }

    let started = Instant::now();
    let extracted = extractor.extract(&config.tables[0]).await?;
    let seconds = started.elapsed().as_secs_f64();
    // Peak memory of the extract itself, before the check below reads the object back whole.
    let peak_rss_mb = landfall_bench::peak_rss_mb();

    let Extracted::Done {
        rows, more: false, ..
    } = extracted
    else {
        anyhow::bail!("the run did not end: {extracted:?}");
    };
    // A run of more than a million rows is several objects: every object of the table.
    let (mut lines, mut id_sum, mut gzip_bytes) = (0u64, 0i64, 0usize);
    for key in keys_under(&aws.s3(), bucket, table).await? {
        let object = aws.s3().get_object().bucket(bucket).key(key).send().await?;
        let bytes = object.body.collect().await?.into_bytes();
        gzip_bytes += bytes.len();
        for line in BufReader::new(GzDecoder::new(&bytes[..])).lines() {
            let row: serde_json::Value = serde_json::from_str(&line?)?;
            lines += 1;
            id_sum += row[id_column.as_str()].as_i64().context("an integer id")?;
        }
    }
    anyhow::ensure!(
        lines == rows,
        "the objects have {lines} lines, extractor said {rows}"
    );
    println!(
        "{{\"seconds\": {seconds}, \"rows\": {rows}, \"id_sum\": {id_sum}, \"gzip_bytes\": {gzip_bytes}, \"peak_rss_mb\": {peak_rss_mb}}}"
    );
    Ok(())
}

/// The keys of `table`'s objects in the bucket.
async fn keys_under(s3: &aws_sdk_s3::Client, bucket: &str, table: &str) -> Result<Vec<String>> {
    let listed = s3
        .list_objects_v2()
        .bucket(bucket)
        .prefix(format!("{table}/"))
        .send()
        .await?;
    Ok(listed
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect())
}
