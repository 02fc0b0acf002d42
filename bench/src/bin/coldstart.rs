//! `make bench-coldstart`, the Rust side: each function's cold start through the devstack's
//! Lambda Runtime API, as Lambda's REPORT line counts it — the process started, its first
//! request for work (the Init Duration), its first answer and its peak RSS — every run a
//! fresh process.
//!
//! ```text
//! bench-coldstart <binaries dir> <runs> <function>...   one JSON line a function
//! ```
//! moto is `AWS_ENDPOINT_URL`; template.yaml is provisioned into it, so each function starts
//! with the environment its deployment gives it. The first invocation is an empty SQS batch:
//! the SQS-fed functions answer it from their own code without a call out; the others refuse
//! it as not their request, except warehouse-loader, whose run starts and is refused by the
//! database. A name the template lacks is a launcher in the binaries directory: the driver's
//! floor (sh + curl) and Python baseline (awslambdaric with the original designs' imports).

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use landfall_devstack::provision::{provision, Target};
use landfall_devstack::{local_aws_env, local_sdk_config, Host, Template};
use std::path::PathBuf;
use std::time::Duration;

const REGION: &str = "eu-west-2";

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [binaries, runs, functions @ ..] = &args[..] else {
        bail!("usage: bench-coldstart <binaries dir> <runs> <function>...");
    };
    let runs: usize = runs.parse().context("runs")?;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").context("AWS_ENDPOINT_URL (moto)")?;
    let sdk = local_sdk_config(&endpoint, REGION).await;
    let template = Template::load(&PathBuf::from("template.yaml"))?;
    // The warehouse's credentials name a database that does not exist: the loader's run is
    // refused at once instead of waiting on a host this machine cannot resolve.
    let target = Target {
        region: REGION.into(),
        secrets: [(
            "WarehouseSecret".to_owned(),
            r#"{"host":"127.0.0.1","port":5432,"username":"postgres","password":"","dbname":"landfall_coldstart_absent"}"#.to_owned(),
        )]
        .into(),
        ..Target::default()
    };
    let mut stack = provision(&template, &target, &sdk).await?;
    // Names the template lacks (the floor, the Python baseline) run with no environment but
    // the host's, in a slot shaped like an SQS-fed function's.
    let shape = stack
        .functions
        .get("cdn-invalidator")
        .context("cdn-invalidator in the template")?
        .clone();
    for name in functions {
        if !stack.functions.contains_key(name) {
            let mut spec = shape.clone();
            spec.binary = name.clone();
            spec.logical_id = name.clone();
            spec.environment.clear();
            stack.functions.insert(name.clone(), spec);
        }
    }

    let logs = std::env::temp_dir().join("landfall-bench-coldstart");
    let host = Host::new(
        &stack,
        PathBuf::from(binaries),
        logs.clone(),
        local_aws_env(&endpoint, REGION),
    );
    let event = Bytes::from_static(br#"{"Records":[]}"#);
    for function in functions {
        let mut init = Vec::with_capacity(runs);
        let mut answered = Vec::with_capacity(runs);
        let mut peak_kb = 0;
        let mut answer = String::new();
        for _ in 0..runs {
            let start = host
                .cold_start(function, event.clone())
                .await
                .with_context(|| {
                    format!(
                        "{function} (its log: {})",
                        logs.join(format!("{function}.log")).display()
                    )
                })?;
            init.push(start.init);
            answered.push(start.answered);
            peak_kb = peak_kb.max(start.peak_rss_kb.unwrap_or(0));
            answer = start
                .answer
                .function_error
                .unwrap_or_else(|| "ok".to_owned());
        }
        println!(
            "{}",
            serde_json::json!({
                "function": function,
                "init_ms": median_ms(&mut init),
                "answered_ms": median_ms(&mut answered),
                "rss_mb": peak_kb as f64 / 1024.0,
                "answer": answer,
                "runs": runs,
            })
        );
    }
    host.shutdown().await;
    Ok(())
}

fn median_ms(samples: &mut [Duration]) -> f64 {
    samples.sort();
    samples
        .get(samples.len() / 2)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}
