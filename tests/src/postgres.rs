//! Private databases per test — totesys (the spec's schema, generated rows) and an empty
//! warehouse — dropped afterwards.

use anyhow::Result;
use landfall_totesys_seed::Volumes;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The local PostgreSQL (trust auth), or the libpq variables when set.
pub fn server() -> PgConnectOptions {
    let options = PgConnectOptions::new();
    if std::env::var_os("PGHOST").is_some() {
        options
    } else {
        options.host("127.0.0.1").port(5432).username("postgres")
    }
}

pub struct TotesysDatabase {
    pub name: String,
}

impl TotesysDatabase {
    pub async fn seeded(volumes: Volumes) -> Result<TotesysDatabase> {
        let name = unique_name("totesys");
        landfall_totesys_seed::seed(&server(), &name, volumes, 42).await?;
        Ok(TotesysDatabase { name })
    }

    pub async fn conn(&self) -> Result<PgConnection> {
        Ok(PgConnection::connect_with(&server().database(&self.name)).await?)
    }

    /// The RDS-shaped secret db-extract reads.
    pub fn secret(&self) -> String {
        local_secret(&self.name)
    }
}

fn unique_name(kind: &str) -> String {
    format!(
        "{kind}_t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The RDS-shaped secret the functions read, for a local database. The local server trusts
/// 127.0.0.1 and never asks for the password; it is set all the same, so that every test's
/// logs and payloads can be searched for it (`LocalStack::leaked_secrets`).
fn local_secret(database: &str) -> String {
    local_secret_at(database, 5432)
}

/// As the secret above, reaching the server at `port` (a fault proxy's, say).
pub fn local_secret_at(database: &str, port: u16) -> String {
    serde_json::json!({"host": "127.0.0.1", "port": port, "username": "postgres",
                       "password": format!("pw-{database}"), "dbname": database})
    .to_string()
}

fn drop_database(name: String) {
    crate::clean_up_detached(move || async move {
        landfall_totesys_seed::drop_database(&server(), &name)
            .await
            .ok()
    });
}

impl Drop for TotesysDatabase {
    fn drop(&mut self) {
        drop_database(self.name.clone());
    }
}

/// A private, empty warehouse database per test (the loader applies the migrations),
/// dropped afterwards.
pub struct WarehouseDatabase {
    pub name: String,
}

impl WarehouseDatabase {
    pub async fn empty() -> Result<WarehouseDatabase> {
        WarehouseDatabase::empty_named("warehouse").await
    }

    /// An empty database named after what it stands in for (`redshift`).
    pub async fn empty_named(kind: &str) -> Result<WarehouseDatabase> {
        let name = unique_name(kind);
        landfall_totesys_seed::recreate_database(&server(), &name).await?;
        Ok(WarehouseDatabase { name })
    }

    pub async fn conn(&self) -> Result<PgConnection> {
        Ok(PgConnection::connect_with(&server().database(&self.name)).await?)
    }

    pub fn secret(&self) -> String {
        local_secret(&self.name)
    }
}

impl Drop for WarehouseDatabase {
    fn drop(&mut self) {
        drop_database(self.name.clone());
    }
}

/// The `customers` reference rows of the orders sample (`sample::customers`), into P3's
/// local Redshift.
pub async fn seed_customers(conn: &mut PgConnection, count: u32) -> Result<()> {
    for [id, name, segment, country] in landfall_devstack::sample::customers(count) {
        sqlx::query("INSERT INTO customers VALUES ($1, $2, $3, $4)")
            .bind(id)
            .bind(name)
            .bind(segment)
            .bind(country)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}
