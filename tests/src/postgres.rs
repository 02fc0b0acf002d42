//! A private totesys database per test (the spec's schema, generated rows), dropped afterwards.

use anyhow::Result;
use landfall_totesys::Volumes;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};
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
        let name = format!(
            "totesys_t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        landfall_totesys::seed(&server(), &name, volumes, 42).await?;
        Ok(TotesysDatabase { name })
    }

    pub async fn conn(&self) -> Result<PgConnection> {
        Ok(PgConnection::connect_with(&server().database(&self.name)).await?)
    }

    /// The RDS-shaped secret db-extract reads.
    pub fn secret(&self) -> String {
        serde_json::json!({"host": "127.0.0.1", "port": 5432, "username": "postgres", "password": "", "dbname": self.name}).to_string()
    }
}

impl Drop for TotesysDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        crate::clean_up_detached(move || async move {
            let mut admin = PgConnection::connect_with(&server().database("postgres"))
                .await
                .ok()?;
            admin
                .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
                .await
                .ok()?;
            admin.close().await.ok()
        });
    }
}
