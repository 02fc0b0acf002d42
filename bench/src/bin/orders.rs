//! `make bench-orders`, the Rust side: an orders CSV through orders-loader's path on the
//! local stack — audit item written (moto DynamoDB), crawler started (moto Glue), the file
//! checked as it streams from moto S3, its manifest written, one Data API batch (the
//! devstack's, on PostgreSQL: COPY streamed from S3, `orders_load`, staging emptied,
//! `orders_dedupe`) followed to the end, the ledger read, the audit item LOADED.
//!
//! ```text
//! bench-orders generate <rows> <path>       sample orders (customers C0000…C0099)
//! bench-orders statements <key> <version>   the batch's SQL, as JSON (for the floor)
//! bench-orders prepare <database>           migrations through the Data API, customers seeded
//! bench-orders load <csv> <database>        the timed load; one JSON line
//! ```
//! moto is `AWS_ENDPOINT_URL`; the Data API is served in this process.

use anyhow::{bail, Context, Result};
use landfall_aws::Aws;
use landfall_devstack::host::{serve_invoke_api, Host};
use landfall_devstack::iam::RoleSession;
use landfall_devstack::provision::Stack;
use landfall_devstack::sample;
use landfall_env::Env;
use landfall_orders_load::audit::{AuditTable, Outcome, Received, Status};
use landfall_orders_load::check::Format;
use landfall_orders_load::crawler::Crawler;
use landfall_orders_load::warehouse::{Load, OrdersWarehouse, UnknownCustomers};
use landfall_orders_load::{migrate, timestamp_now, Done, Loader, Settings};
use landfall_redshift_data::{Target, Warehouse};
use landfall_redshift_local::{ensure_database, DataApi};
use landfall_runtime::Deadline;
use std::time::{Duration, Instant, SystemTime};

const CUSTOMERS: u32 = 100;
const BUCKET: &str = "bench-orders";
const AUDIT_TABLE: &str = "bench-orders-audit";
const CRAWLER: &str = "bench-orders";
const COPY_ROLE: &str = "arn:aws:iam::123456789012:role/bench-orders-copy";

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["generate", rows, path] => {
            let rows: u32 = rows.parse().context("rows")?;
            std::fs::write(path, sample::orders_csv(0..rows, CUSTOMERS, 0))?;
        }
        ["statements", key, version] => {
            let load = Load {
                bucket: BUCKET,
                key,
                version,
                format: Format::Csv,
                manifest: "s3://bench-orders/manifest",
                loaded_at: &timestamp_now(),
            };
            let warehouse = orders_warehouse(&Aws::load(&Env::from_process()).await?, "unused");
            println!("{}", serde_json::to_string(&warehouse.statements(&load)?)?);
        }
        ["prepare", database] => prepare(database).await?,
        ["load", path, database] => load(path, database).await?,
        _ => bail!("usage: bench-orders generate <rows> <path> | statements <key> <version> | prepare <database> | load <csv> <database>"),
    }
    Ok(())
}

/// The role COPY reads S3 as: here the caller's own moto credentials under the bench's role
/// ARN (no template, so no local IAM role; the bench times the load, not the policy).
fn copy_role() -> landfall_redshift_local::RoleCredentials {
    let session = RoleSession {
        role_arn: COPY_ROLE.into(),
        access_key_id: std::env::var("AWS_ACCESS_KEY_ID").unwrap_or_else(|_| "testing".into()),
        secret_access_key: std::env::var("AWS_SECRET_ACCESS_KEY")
            .unwrap_or_else(|_| "testing".into()),
        session_token: String::new(),
    };
    [(COPY_ROLE.to_owned(), session.credentials())].into()
}

/// The Data API on `database` at a free local port; the warehouse client pointed at it.
async fn data_api(aws: &Aws, database: &str) -> Result<OrdersWarehouse> {
    let options = sqlx::postgres::PgConnectOptions::new()
        .host("127.0.0.1")
        .username("postgres")
        .database(database);
    ensure_database(&options).await?;
    let host = Host::new(
        &Stack::default(),
        Default::default(),
        std::env::temp_dir(),
        Default::default(),
    )
    .with_redshift(DataApi::new(options, aws.s3(), copy_role()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(serve_invoke_api(host, listener));
    Ok(orders_warehouse(aws, &format!("http://{address}")))
}

fn orders_warehouse(aws: &Aws, endpoint: &str) -> OrdersWarehouse {
    let config = aws_sdk_redshiftdata::config::Builder::from(aws.sdk_config())
        .endpoint_url(endpoint)
        .build();
    let mut warehouse = Warehouse::new(
        aws_sdk_redshiftdata::Client::from_conf(config),
        Target::Workgroup {
            name: "bench".into(),
            secret_arn: None,
        },
        "dev",
    );
    // The function's default is 2 s (a Redshift batch takes seconds); polling finer here
    // keeps the poll's granularity out of the measurement.
    warehouse.poll = Duration::from_millis(100);
    OrdersWarehouse {
        warehouse,
        copy_role_arn: COPY_ROLE.into(),
        unknown_customers: UnknownCustomers::Reject,
    }
}

async fn prepare(database: &str) -> Result<()> {
    let aws = Aws::load(&Env::from_process()).await?;
    let orders = data_api(&aws, database).await?;
    let budget = Duration::from_secs(120);
    migrate::MIGRATIONS
        .apply(&orders.warehouse, &timestamp_now(), budget)
        .await?;
    let customers = sample::customers(CUSTOMERS);
    let names: Vec<[String; 4]> = (0..customers.len())
        .map(|i| ["id", "name", "segment", "country"].map(|c| format!("{c}{i}")))
        .collect();
    let values: Vec<String> = names
        .iter()
        .map(|n| format!("(:{}, :{}, :{}, :{})", n[0], n[1], n[2], n[3]))
        .collect();
    let parameters: Vec<(&str, &str)> = names
        .iter()
        .zip(&customers)
        .flat_map(|(n, row)| {
            n.iter()
                .map(String::as_str)
                .zip(row.iter().map(String::as_str))
        })
        .collect();
    let insert = format!(
        "INSERT INTO customers (customer_id, name, segment, country) VALUES {}",
        values.join(", ")
    );
    for (sql, parameters) in [("DELETE FROM customers", &[][..]), (&insert, &parameters)] {
        let id = orders.warehouse.submit(sql, parameters).await?;
        orders.warehouse.follow(&id, budget).await?;
    }
    Ok(())
}

async fn load(path: &str, database: &str) -> Result<()> {
    let aws = Aws::load(&Env::from_process()).await?;
    let s3 = aws.s3();
    let dynamodb = aws_sdk_dynamodb::Client::new(aws.sdk_config());
    let glue = aws_sdk_glue::Client::new(aws.sdk_config());
    setup(&s3, &dynamodb, &glue).await?;
    let key = format!("transformed/orders/bench-{}.csv", std::process::id());
    let put = s3
        .put_object()
        .bucket(BUCKET)
        .key(&key)
        .body(aws_sdk_s3::primitives::ByteStream::from_path(path).await?)
        .send()
        .await?;
    let version = landfall_landing::Version::Id(
        put.version_id()
            .context("the bench bucket is versioned")?
            .to_owned(),
    );
    let size = std::fs::metadata(path)?.len();
    let loader = Loader {
        s3: s3.clone(),
        audit: AuditTable {
            client: dynamodb,
            table: AUDIT_TABLE.into(),
        },
        crawler: Crawler {
            client: glue,
            name: CRAWLER.into(),
        },
        warehouse: data_api(&aws, database).await?,
        settings: Settings {
            manifest_bucket: BUCKET.into(),
            manifest_prefix: "manifests/orders".into(),
            check_bytes_per_second: 50 * 1024 * 1024,
            warehouse_seconds: 60,
            copy_bytes_per_second: 20 * 1024 * 1024,
            audit_budget: Duration::from_secs(30),
        },
    };
    let file = Received {
        file: Received::file_id(BUCKET, &key, &version),
        bucket: BUCKET.into(),
        key: key.clone(),
        version: version.clone(),
        size,
        etag: put.e_tag().unwrap_or_default().trim_matches('"').into(),
        event_time: timestamp_now(),
        status: Status::Received,
        delivery: "bench/1".into(),
        received_at: timestamp_now(),
    };
    let deadline = Deadline::at(SystemTime::now() + Duration::from_secs(900));
    // The check alone, once before the timed run, to show where the time goes.
    let object = landfall_landing::ObjectVersion {
        bucket: BUCKET.into(),
        key: key.clone(),
        version: version.clone(),
    };
    let check_started = Instant::now();
    landfall_orders_load::check::check(&s3, &object, Format::Csv, size).await?;
    let check_seconds = check_started.elapsed().as_secs_f64();

    let started = Instant::now();
    loader.receive(std::slice::from_ref(&file)).await?;
    let done = loader.load(&file, &deadline).await?;
    loader.record(&file, &Outcome::from(&done)).await?;
    let seconds = started.elapsed().as_secs_f64();

    let Done::Loaded(loaded) = done else {
        bail!("{key}: superseded, not loaded")
    };
    println!(
        "{}",
        serde_json::json!({
            "seconds": seconds,
            "check_seconds": check_seconds,
            "rows": loaded.ledger.rows_loaded,
            "key": key,
            "version": version,
            "peak_rss_mb": landfall_bench::peak_rss_mb(),
        })
    );
    Ok(())
}

/// The bucket (versioned, as the template's), the audit table and the crawler, in moto.
async fn setup(
    s3: &aws_sdk_s3::Client,
    dynamodb: &aws_sdk_dynamodb::Client,
    glue: &aws_sdk_glue::Client,
) -> Result<()> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    };
    if s3.head_bucket().bucket(BUCKET).send().await.is_ok() {
        return Ok(());
    }
    landfall_bench::create_bucket(s3, BUCKET, true).await?;
    dynamodb
        .create_table()
        .table_name(AUDIT_TABLE)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("file")
                .attribute_type(ScalarAttributeType::S)
                .build()?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("file")
                .key_type(KeyType::Hash)
                .build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    glue.create_crawler()
        .name(CRAWLER)
        .role("arn:aws:iam::123456789012:role/bench-orders-crawler")
        .targets(
            aws_sdk_glue::types::CrawlerTargets::builder()
                .s3_targets(
                    aws_sdk_glue::types::S3Target::builder()
                        .path(format!("s3://{BUCKET}/transformed/orders/"))
                        .build(),
                )
                .build(),
        )
        .send()
        .await?;
    Ok(())
}
