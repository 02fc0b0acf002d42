//! `totesys seed` / `totesys churn`: the local source database for P4 (see the library).
//! The server comes from the usual libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD).

use anyhow::Result;
use clap::{Parser, Subcommand};
use landfall_totesys_seed::{churn, seed, Volumes};
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

#[derive(Parser)]
#[command(about = "A local totesys: seed it, or churn it like the live database")]
struct Cli {
    #[arg(long, default_value = "totesys", global = true)]
    database: String,
    #[arg(long, default_value_t = 42, global = true)]
    seed: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// (Re)create the database with the schema and generated rows.
    Seed {
        #[arg(long, default_value_t = Volumes::default().sales_orders)]
        sales_orders: u32,
        #[arg(long, default_value_t = Volumes::default().purchase_orders)]
        purchase_orders: u32,
    },
    /// Insert new sales orders (with transactions and payments) and update existing rows.
    Churn {
        #[arg(long, default_value_t = 25)]
        new_orders: u32,
        #[arg(long, default_value_t = 6)]
        updates: u32,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let server = PgConnectOptions::new();
    match cli.command {
        Command::Seed {
            sales_orders,
            purchase_orders,
        } => {
            let volumes = Volumes {
                sales_orders,
                purchase_orders,
            };
            seed(&server, &cli.database, volumes, cli.seed).await?;
            println!(
                "seeded {}: {sales_orders} sales orders, {purchase_orders} purchase orders",
                cli.database
            );
        }
        Command::Churn {
            new_orders,
            updates,
        } => {
            let mut conn = PgConnection::connect_with(&server.database(&cli.database)).await?;
            churn(&mut conn, cli.seed, new_orders, updates).await?;
            println!(
                "churned {}: {new_orders} new sales orders, {updates} updates",
                cli.database
            );
        }
    }
    Ok(())
}
