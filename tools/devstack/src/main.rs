//! `devstack`: the local stack's command line (see `make dev-up`, `make tick`).

use anyhow::{anyhow, Context, Result};
use clap::{Parser, Subcommand};
use landfall_devstack::{
    host, local_aws_env, local_sdk_config, provision, pump, Host, Stack, Target, Template,
};

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

#[derive(Parser)]
#[command(
    about = "landfall's local stack: moto provisioned from template.yaml, the real function binaries, and the event wiring moto lacks"
)]
struct Cli {
    /// Where the stack's state (stack.json, env, logs) lives.
    #[arg(long, global = true, default_value = ".devstack")]
    state: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create every resource template.yaml declares in moto; write stack.json and env.
    Provision {
        #[arg(long, default_value = "template.yaml")]
        template: PathBuf,
        #[arg(long, env = "MOTO_ENDPOINT", default_value = "http://127.0.0.1:5000")]
        endpoint: String,
        #[arg(long, default_value = "eu-west-2")]
        region: String,
        /// Lambda Invoke API address `serve` will listen on (written to env).
        #[arg(long, default_value = "127.0.0.1:9000")]
        invoke_address: String,
        /// Template parameter overrides, Name=Value.
        #[arg(long = "parameter", value_parser = parse_pair)]
        parameters: Vec<(String, String)>,
        /// Local value of a secret the template declares, LogicalId=SecretString.
        #[arg(long = "secret", value_parser = parse_pair)]
        secrets: Vec<(String, String)>,
        /// Extra lines for the env file, NAME=VALUE (database URLs and the like).
        #[arg(long = "extra-env", value_parser = parse_pair)]
        extra_env: Vec<(String, String)>,
    },
    /// Run the functions behind a Lambda Invoke API and poll every SQS event source mapping.
    Serve {
        /// Directory with the built function binaries.
        #[arg(long, default_value = "target/debug")]
        binaries: PathBuf,
        /// The local PostgreSQL database the Redshift Data API runs statements on (created
        /// when missing).
        #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/redshift")]
        redshift_url: String,
    },
    /// Fire a function's schedule once (EventBridge never fires in moto).
    Tick { function: String },
    /// Print a sample file: `sample price-index <rows>`, `sample orders <rows>` (naming
    /// customers C0000…C0099), `sample customers <rows>` (no header).
    Sample {
        dataset: String,
        rows: u32,
        /// Orders only: the first order's number (a later file can overlap an earlier one).
        #[arg(long, default_value_t = 0)]
        first: u32,
        /// Orders only: seconds added to every order_ts, so a later revision of the same
        /// orders is newer and wins.
        #[arg(long, default_value_t = 0)]
        revision: u32,
    },
    /// Invoke a function synchronously with a JSON payload from a file.
    Invoke {
        function: String,
        #[arg(long)]
        data_file: PathBuf,
    },
}

/// How many customers the orders sample names (`sample customers 100` lists them).
const SAMPLE_CUSTOMERS: u32 = 100;

fn parse_pair(raw: &str) -> Result<(String, String), String> {
    raw.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{raw:?} is not NAME=VALUE"))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct State {
    endpoint: String,
    invoke_address: String,
    stack: Stack,
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_target(false)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Provision {
            template,
            endpoint,
            region,
            invoke_address,
            parameters,
            secrets,
            extra_env,
        } => {
            let template = Template::load(&template)?;
            let target = Target {
                region: region.clone(),
                parameters: landfall_devstack::provision::local_parameters()
                    .into_iter()
                    .chain(parameters)
                    .collect(),
                secrets: secrets.into_iter().collect(),
                ..Target::default()
            };
            let sdk = local_sdk_config(&endpoint, &region).await;
            let stack = provision(&template, &target, &sdk).await?;
            std::fs::create_dir_all(&cli.state)?;
            let state = State {
                endpoint: endpoint.clone(),
                invoke_address: invoke_address.clone(),
                stack,
            };
            std::fs::write(
                cli.state.join("stack.json"),
                serde_json::to_string_pretty(&state)?,
            )?;
            std::fs::write(cli.state.join("env"), env_file(&state, &extra_env))?;
            let emulated = state
                .stack
                .resources
                .values()
                .filter(|r| r.emulated)
                .count();
            println!(
                "provisioned {emulated} resources and {} functions into {endpoint}; env in {}",
                state.stack.functions.len(),
                cli.state.join("env").display()
            );
        }
        Command::Serve {
            binaries,
            redshift_url,
        } => {
            let state = load_state(&cli.state)?;
            let redshift: sqlx::postgres::PgConnectOptions = redshift_url
                .parse()
                .with_context(|| format!("--redshift-url {redshift_url:?}"))?;
            landfall_redshift_local::ensure_database(&redshift).await?;
            serve(state, binaries, cli.state.join("logs"), redshift).await?;
        }
        Command::Sample {
            dataset,
            rows,
            first,
            revision,
        } => match dataset.as_str() {
            "price-index" => print!("{}", landfall_devstack::sample::price_index_csv(0..rows)),
            "orders" => print!(
                "{}",
                landfall_devstack::sample::orders_csv(
                    first..first.saturating_add(rows),
                    SAMPLE_CUSTOMERS,
                    revision
                )
            ),
            "customers" => {
                for row in landfall_devstack::sample::customers(rows) {
                    println!("{}", row.join(","));
                }
            }
            other => anyhow::bail!("no sample for {other:?} (price-index, orders, customers)"),
        },
        Command::Tick { function } => {
            let state = load_state(&cli.state)?;
            let spec = state
                .stack
                .function(&function)
                .ok_or_else(|| anyhow!("no function {function} in the template"))?;
            let schedule = spec
                .schedules
                .first()
                .ok_or_else(|| anyhow!("{function} has no schedule in the template"))?;
            let payload = schedule
                .input
                .clone()
                .unwrap_or_else(|| pump::scheduled_event(&schedule.name, &state.stack.region));
            invoke_remote(&state, &spec.binary, payload.to_string()).await?;
        }
        Command::Invoke {
            function,
            data_file,
        } => {
            let state = load_state(&cli.state)?;
            let payload = std::fs::read_to_string(&data_file)
                .with_context(|| format!("reading {}", data_file.display()))?;
            invoke_remote(&state, &function, payload).await?;
        }
    }
    Ok(())
}

fn load_state(dir: &Path) -> Result<State> {
    let path = dir.join("stack.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("reading {} (run make dev-up first)", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn env_file(state: &State, extra: &[(String, String)]) -> String {
    let mut out = String::from(
        "# Written by `devstack provision` (make dev-up). Source it: . .devstack/env\n",
    );
    for (k, v) in local_aws_env(&state.endpoint, &state.stack.region) {
        let _ = writeln!(out, "export {k}={v}");
    }
    let _ = writeln!(
        out,
        "export LANDFALL_LAMBDA_ENDPOINT=http://{}",
        state.invoke_address
    );
    // The APIs the devstack serves itself, where any AWS tool looks for a service's endpoint.
    for (k, v) in host::served_endpoints(&state.invoke_address) {
        let _ = writeln!(out, "export {k}={v}");
    }
    for (k, v) in extra {
        let _ = writeln!(out, "export {k}={v}");
    }
    for (logical_id, resource) in &state.stack.resources {
        if resource.emulated {
            let _ = writeln!(
                out,
                "export {}={}",
                provision::env_name(logical_id),
                resource.reference
            );
        }
    }
    out
}

async fn serve(
    state: State,
    binaries: PathBuf,
    logs: PathBuf,
    redshift: sqlx::postgres::PgConnectOptions,
) -> Result<()> {
    let mut base_env = local_aws_env(&state.endpoint, &state.stack.region);
    base_env.extend(host::served_endpoints(&state.invoke_address));
    let sdk = local_sdk_config(&state.endpoint, &state.stack.region).await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let host = Host::new(&state.stack, binaries, logs, base_env).with_redshift(
        landfall_redshift_local::DataApi::new(redshift, s3, state.stack.role_credentials()),
    );
    let listener = tokio::net::TcpListener::bind(&state.invoke_address)
        .await
        .with_context(|| format!("binding the Invoke API to {}", state.invoke_address))?;
    tokio::spawn(host::serve_invoke_api(host.clone(), listener));
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let _pollers = pump::poll_event_sources(&host, &sqs, &state.stack);
    let _logs = tokio::spawn(landfall_devstack::logs::ship(
        state.endpoint.clone(),
        state.stack.clone(),
        host.log_dir().to_owned(),
    ));
    println!(
        "devstack serving {} functions; Invoke API on http://{}",
        state.stack.functions.len(),
        state.invoke_address
    );
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    host.shutdown().await;
    Ok(())
}

/// Through the running `serve`'s Invoke API with the real SDK client, so the function
/// process that handles SQS deliveries handles this invocation too.
async fn invoke_remote(state: &State, function: &str, payload: String) -> Result<()> {
    let sdk = local_sdk_config(
        &format!("http://{}", state.invoke_address),
        &state.stack.region,
    )
    .await;
    // A local function error is final: retrying would run the function again.
    let config = aws_sdk_lambda::config::Builder::from(&sdk)
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::standard().with_max_attempts(1))
        .timeout_config(aws_sdk_lambda::config::timeout::TimeoutConfig::disabled())
        .build();
    let lambda = aws_sdk_lambda::Client::from_conf(config);
    let out = lambda
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload))
        .send()
        .await
        .context("invoking through the local Invoke API (is `make dev-up` running?)")?;
    let body = out
        .payload()
        .map(|b| String::from_utf8_lossy(b.as_ref()).into_owned())
        .unwrap_or_default();
    println!("{body}");
    if let Some(error) = out.function_error() {
        return Err(anyhow!("{function} failed ({error})"));
    }
    Ok(())
}
