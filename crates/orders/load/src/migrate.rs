//! The orders warehouse's migrations (`sql/redshift/`, embedded), applied through the Data
//! API by the platform (`landfall_redshift_data::migrate`), recorded in
//! `landfall_migrations`.

use landfall_redshift_data::migrate::Migrations;

/// P3's schema: the tables, the ledger and the load procedures.
pub const MIGRATIONS: Migrations = Migrations {
    ledger: "landfall_migrations",
    scripts: &[(
        1,
        "orders",
        include_str!("../../../../sql/redshift/0001_orders.sql"),
    )],
};
