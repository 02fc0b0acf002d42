//! One local stack for every pipeline, with a fault proxy in front of each thing the
//! functions talk to: moto (HTTP), MariaDB and PostgreSQL (TCP). The devstack's own side —
//! the SQS pumps, the Redshift Data API, the test's reads — talks to them directly, as AWS's
//! side would not be behind the function's faults.

use crate::aws_fault_proxy::AwsFaultProxy;
use crate::fault_proxy::FaultProxy;
use crate::mysql::{procedure_datasets_file, TestDatabase};
use crate::pipeline::EXTRACT;
use crate::postgres::{
    local_secret_at, seed_customers, server, TotesysDatabase, WarehouseDatabase,
};
use crate::soak::workload::Ledger;
use crate::{LocalStack, REGION};
use anyhow::{anyhow, Result};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName, QueueAttributeName};
use landfall_devstack::{deliver_keeping, Host};
use landfall_totesys_seed::Volumes;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Queues whose functions the soak drives, by template logical id.
pub const QUEUES: [&str; 5] = [
    "MysqlFilesQueue",
    "DynamodbFilesQueue",
    "OrdersFilesQueue",
    "IngestionQueue",
    "WebsiteChangesQueue",
];
pub const DEAD_LETTER_QUEUES: [&str; 5] = [
    "MysqlFilesDLQ",
    "DynamodbFilesDLQ",
    "OrdersFilesDLQ",
    "IngestionDLQ",
    "WebsiteChangesDLQ",
];

/// Receives per message before SQS dead-letters it. The template's are 3–10; the soak's
/// faults come far denser than production's, so every queue gets the highest, and the
/// functions that count attempts are told so. Permanent failures still go at once.
const MAX_RECEIVE_COUNT: u32 = 10;
/// A message not answered comes back after this long (the template's are minutes).
const VISIBILITY_SECONDS: u32 = 15;
/// The P2 datasets the soak's config declares (`soak_0` …), one per imported file.
pub const P2_DATASETS: u32 = 400;
/// Customers C0000… in the local Redshift (the orders name them).
pub const CUSTOMERS: u32 = 100;

pub struct Rig {
    pub stack: LocalStack,
    pub host: Host,
    pub mysql: TestDatabase,
    pub totesys: TotesysDatabase,
    pub warehouse: WarehouseDatabase,
    pub redshift: WarehouseDatabase,
    pub mysql_proxy: FaultProxy,
    pub pg_proxy: FaultProxy,
    pub aws: AwsFaultProxy,
}

impl Rig {
    pub async fn start() -> Result<Rig> {
        let mysql = TestDatabase::create_with_scripts().await?;
        let totesys = TotesysDatabase::seeded(Volumes {
            sales_orders: 300,
            purchase_orders: 100,
        })
        .await?;
        let warehouse = WarehouseDatabase::empty().await?;
        let redshift = WarehouseDatabase::empty_named("redshift").await?;
        let mysql_proxy = FaultProxy::start("127.0.0.1:3306").await?;
        let pg_proxy = FaultProxy::start("127.0.0.1:5432").await?;
        let mut stack = LocalStack::start_with_secrets(&[
            ("MysqlSecret", mysql.secret(mysql_proxy.port).await?),
            (
                "TotesysSecret",
                local_secret_at(&totesys.name, pg_proxy.port),
            ),
            (
                "WarehouseSecret",
                local_secret_at(&warehouse.name, pg_proxy.port),
            ),
        ])
        .await?;
        let aws = AwsFaultProxy::start(&stack.endpoint).await?;
        stack.serve_redshift(server().database(&redshift.name));
        configure(&mut stack, &aws.endpoint)?;
        for queue in QUEUES {
            patiently_redelivered(&stack, &stack.resource(queue)).await?;
        }
        let host = stack.host();
        let rig = Rig {
            stack,
            host,
            mysql,
            totesys,
            warehouse,
            redshift,
            mysql_proxy,
            pg_proxy,
            aws,
        };
        rig.orders_warehouse().await?;
        Ok(rig)
    }

    /// P3's local Redshift migrated through orders-loader and its customers seeded.
    async fn orders_warehouse(&self) -> Result<()> {
        let answer = self
            .host
            .invoke("orders-loader", json!({"migrate": {}}).to_string().into())
            .await?;
        if answer.function_error.is_some() {
            return Err(anyhow!("migrating Redshift: {:?}", answer.json()));
        }
        seed_customers(&mut self.redshift.conn().await?, CUSTOMERS).await?;
        Ok(())
    }

    /// Every fault off.
    pub fn heal(&self) {
        self.mysql_proxy.heal();
        self.pg_proxy.heal();
        self.aws.heal();
    }

    /// One task per SQS event source mapping, delivering until `pumping` turns false; about
    /// one succeeded message in sixteen is left on its queue to come back (the redelivery
    /// at-least-once allows), counted in the ledger.
    pub fn pump_all(
        self: &Arc<Self>,
        pumping: Arc<AtomicBool>,
        ledger: Arc<Ledger>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut pumps = Vec::new();
        for spec in self.stack.stack.functions.values() {
            for mapping in &spec.sqs {
                let (rig, spec, mapping) = (self.clone(), spec.clone(), mapping.clone());
                let (pumping, ledger) = (pumping.clone(), ledger.clone());
                pumps.push(tokio::spawn(async move {
                    let sqs = rig.stack.sqs();
                    // The template's window (up to 10 s) only batches more; 1 s keeps a
                    // short soak short.
                    let window = Duration::from_secs(mapping.batching_window_secs.min(1));
                    while pumping.load(Ordering::SeqCst) {
                        match deliver_keeping(
                            &rig.host, &sqs, REGION, &spec, &mapping, 1, window, &redeliver,
                        )
                        .await
                        {
                            Ok(delivery) => ledger.delivered(&delivery),
                            Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                        }
                    }
                }));
            }
        }
        pumps
    }

    /// The driven queues holding messages, visible or in flight: `Queue n`.
    pub async fn queued_by_queue(&self) -> Result<Vec<String>> {
        let mut queued = Vec::new();
        for queue in QUEUES {
            let depth = self.stack.queue_depth(&self.stack.resource(queue)).await?;
            if depth > 0 {
                queued.push(format!("{queue} {depth}"));
            }
        }
        Ok(queued)
    }
}

/// One message in sixteen, on its first receive, by its id (so the choice is the same
/// whichever pump sees it).
fn redeliver(message: &Message) -> bool {
    let first = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .is_some_and(|count| count == "1");
    let id = message.message_id().unwrap_or_default();
    first
        && id
            .bytes()
            .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(b.into()))
            .is_multiple_of(16)
}

/// Every function reaches moto through the fault proxy; the soak's settings on top.
fn configure(stack: &mut LocalStack, aws_endpoint: &str) -> Result<()> {
    let functions: Vec<String> = stack.stack.functions.keys().cloned().collect();
    for function in &functions {
        stack.set_function_env(function, "AWS_ENDPOINT_URL", Some(aws_endpoint));
    }
    let procedure = procedure_datasets_file();
    let count = MAX_RECEIVE_COUNT.to_string();
    for function in ["file-orchestrator", "mysql-loader"] {
        stack.set_function_env(function, "DATASETS_FILE", procedure.to_str());
    }
    // Files over 32 KiB are split into parts (the big ones of the mix).
    stack.set_function_env("file-orchestrator", "SPLIT_BYTES", Some("32768"));
    stack.set_function_env("file-orchestrator", "MAX_RECEIVE_COUNT", Some(&count));
    let p2 = p2_datasets_file()?;
    stack.set_function_env("dynamodb-loader", "DYNAMODB_DATASETS_FILE", p2.to_str());
    stack.set_function_env("dynamodb-loader", "IMPORT_POLL_MILLISECONDS", Some("100"));
    stack.set_function_env("dynamodb-loader", "RETRY_FIRST_SECONDS", Some("1"));
    stack.set_function_env("dynamodb-loader", "MAX_RECEIVE_COUNT", Some(&count));
    // A loader killed between claiming a file's import and starting it holds the claim for
    // two minutes in production, which alone could double the soak's drain; ten seconds is
    // far longer than a local start takes.
    stack.set_function_env("dynamodb-loader", "IMPORT_CLAIM_STALE_SECONDS", Some("10"));
    // A P3 load found still running (its Data API batch outlived a cut connection or a
    // killed loader) comes back when it should be done: the template's 60 s for the
    // warehouse's fixed part, where the local one takes well under a second.
    stack.set_function_env("orders-loader", "WAREHOUSE_SECONDS", Some("10"));
    // Churn commits in milliseconds; two seconds of settling is ample locally.
    stack.set_function_env(EXTRACT, "SETTLE_SECONDS", Some("2"));
    // A fact whose dimension has not arrived waits 2 s, then longer each time, up to 20 s:
    // ten receives then span minutes, enough for the next extract (the tests' flat 1 s
    // would dead-letter it in twenty seconds).
    stack.set_function_env("star-transform", "RETRY_FIRST_SECONDS", Some("2"));
    stack.set_function_env("star-transform", "RETRY_MAX_SECONDS", Some("20"));
    Ok(())
}

/// The bundled P2 dataset repeated as `soak_0` … `soak_<P2_DATASETS - 1>`, each its own
/// table and pointer.
fn p2_datasets_file() -> Result<PathBuf> {
    let bundled = landfall_dynamodb_datasets::BUNDLED;
    let section = bundled
        .find("[datasets.price_index]")
        .map(|at| &bundled[at..])
        .ok_or_else(|| anyhow!("the bundled P2 config has no price_index"))?;
    // Up to the next dataset (make smoke's), comments and all.
    let section = section[1..]
        .find("\n[datasets.")
        .map_or(section, |end| &section[..=end]);
    let mut text = String::new();
    for n in 0..P2_DATASETS {
        text.push_str(
            &section
                .replace("[datasets.price_index]", &format!("[datasets.soak_{n}]"))
                .replace("table = \"price_index\"", &format!("table = \"soak_{n}\"")),
        );
        text.push('\n');
    }
    let dir = crate::workspace_root().join("target/test-config");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("soak-dynamodb-{}.toml", std::process::id()));
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The queue's visibility shortened and its redrive raised to `MAX_RECEIVE_COUNT`, to the
/// dead-letter queue the template gave it.
async fn patiently_redelivered(stack: &LocalStack, queue: &str) -> Result<()> {
    let sqs = stack.sqs();
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(queue)
        .attribute_names(QueueAttributeName::RedrivePolicy)
        .send()
        .await?;
    let policy = attributes
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::RedrivePolicy))
        .ok_or_else(|| anyhow!("{queue} has no redrive policy"))?;
    let mut policy: serde_json::Value = serde_json::from_str(policy)?;
    policy["maxReceiveCount"] = json!(MAX_RECEIVE_COUNT);
    sqs.set_queue_attributes()
        .queue_url(queue)
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .attributes(
            QueueAttributeName::VisibilityTimeout,
            VISIBILITY_SECONDS.to_string(),
        )
        .send()
        .await?;
    Ok(())
}
