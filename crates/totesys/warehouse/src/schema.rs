//! The warehouse the loader writes: its migrations (`sql/warehouse/`, embedded) and the
//! tables it may load — the allowlist every table and column name in generated SQL comes
//! from, with the Parquet schema star-transform writes for each.

use arrow_schema::SchemaRef;
use landfall_totesys_star::parquet::{versioned_schema, WarehouseTable};
use landfall_totesys_star::*;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use std::borrow::Cow;

/// `sql/warehouse/<version>_<description>.sql`, applied in order, each in a transaction,
/// under sqlx's advisory lock (two loaders starting at once apply them once); an applied
/// migration whose text changed is refused.
const MIGRATIONS: [(i64, &str, &str); 2] = [
    (
        1,
        "star schema",
        include_str!("../../../../sql/warehouse/0001_star_schema.sql"),
    ),
    (
        2,
        "load bookkeeping",
        include_str!("../../../../sql/warehouse/0002_load_bookkeeping.sql"),
    ),
];

pub fn migrator() -> Migrator {
    Migrator {
        migrations: MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    Cow::Borrowed(*sql),
                    false,
                )
            })
            .collect(),
        ..Migrator::DEFAULT
    }
}

/// How a table's rows merge into what is already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// dim_date: a day's row never changes; present days are left alone.
    Calendar { key: &'static str },
    /// Latest version wins by natural key (the file carries the version columns).
    Dimension { key: &'static str },
    /// One row per source version; the warehouse assigns the record id.
    Fact { id: &'static str },
}

#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub kind: Kind,
    /// The warehouse columns, as star-transform writes them (without version columns).
    pub schema: fn() -> SchemaRef,
}

impl Table {
    /// The schema a file of this table must have.
    pub fn file_schema(&self) -> SchemaRef {
        match self.kind {
            Kind::Dimension { .. } => versioned_schema(&(self.schema)()),
            _ => (self.schema)(),
        }
    }

    pub fn is_fact(&self) -> bool {
        matches!(self.kind, Kind::Fact { .. })
    }
}

const fn table<T: WarehouseTable>(kind: Kind) -> Table {
    Table {
        name: T::NAME,
        kind,
        schema: T::schema,
    }
}

/// Every table, in an order that loads referenced rows first.
pub const TABLES: [Table; 11] = [
    table::<DimDate>(Kind::Calendar { key: "date_id" }),
    table::<DimLocation>(Kind::Dimension { key: "location_id" }),
    table::<DimCounterparty>(Kind::Dimension {
        key: "counterparty_id",
    }),
    table::<DimStaff>(Kind::Dimension { key: "staff_id" }),
    table::<DimCurrency>(Kind::Dimension { key: "currency_id" }),
    table::<DimDesign>(Kind::Dimension { key: "design_id" }),
    table::<DimPaymentType>(Kind::Dimension {
        key: "payment_type_id",
    }),
    table::<DimTransaction>(Kind::Dimension {
        key: "transaction_id",
    }),
    table::<FactSalesOrder>(Kind::Fact {
        id: "sales_order_id",
    }),
    table::<FactPurchaseOrder>(Kind::Fact {
        id: "purchase_order_id",
    }),
    table::<FactPayment>(Kind::Fact { id: "payment_id" }),
];

pub fn table_named(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_columns_of_their_tables() {
        for table in TABLES {
            let (Kind::Calendar { key } | Kind::Dimension { key } | Kind::Fact { id: key }) =
                table.kind;
            assert!(
                (table.schema)().field_with_name(key).is_ok(),
                "{}.{key}",
                table.name
            );
        }
        assert_eq!(table_named("fact_payment").map(|t| t.is_fact()), Some(true));
        assert!(table_named("pg_authid").is_none());
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        let migrator = migrator();
        let versions: Vec<i64> = migrator.iter().map(|m| m.version).collect();
        assert_eq!(versions, [1, 2]);
    }
}
