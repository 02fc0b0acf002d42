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
const MIGRATIONS: [(i64, &str, &str); 3] = [
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
    (
        3,
        "references checked by set",
        include_str!("../../../../sql/warehouse/0003_references_checked_by_set.sql"),
    ),
];

pub fn migrator() -> Migrator {
    migrator_through(i64::MAX)
}

/// The migrations up to `version` only: the warehouse as an earlier release left it (the
/// benchmark's "today" path, and upgrade tests).
pub fn migrator_through(version: i64) -> Migrator {
    Migrator {
        migrations: MIGRATIONS
            .iter()
            .filter(|(v, _, _)| *v <= version)
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
    /// One row per source version (`id`, the source's key); the warehouse assigns the
    /// `record` id.
    Fact {
        id: &'static str,
        record: &'static str,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct Table {
    pub name: &'static str,
    pub kind: Kind,
    /// The warehouse columns, as star-transform writes them (without version columns).
    pub schema: fn() -> SchemaRef,
    /// The dimension rows each of a fact's rows refers to: declared in the schema (see
    /// `0003_references_checked_by_set.sql`), checked by the loader once per file by set.
    pub references: &'static [Reference],
}

/// `column` holds a `key` of `table` (the `REFERENCES` of 0001_star_schema.sql).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reference {
    pub column: &'static str,
    pub table: &'static str,
    pub key: &'static str,
}

const fn refers(column: &'static str, table: &'static str, key: &'static str) -> Reference {
    Reference { column, table, key }
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
        references: &[],
    }
}

const fn fact<T: WarehouseTable>(
    (record, id): (&'static str, &'static str),
    references: &'static [Reference],
) -> Table {
    Table {
        name: T::NAME,
        kind: Kind::Fact { id, record },
        schema: T::schema,
        references,
    }
}

const DATE: (&str, &str) = ("dim_date", "date_id");

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
    fact::<FactSalesOrder>(
        ("sales_record_id", "sales_order_id"),
        &[
            refers("created_date", DATE.0, DATE.1),
            refers("last_updated_date", DATE.0, DATE.1),
            refers("sales_staff_id", "dim_staff", "staff_id"),
            refers("counterparty_id", "dim_counterparty", "counterparty_id"),
            refers("currency_id", "dim_currency", "currency_id"),
            refers("design_id", "dim_design", "design_id"),
            refers("agreed_payment_date", DATE.0, DATE.1),
            refers("agreed_delivery_date", DATE.0, DATE.1),
            refers("agreed_delivery_location_id", "dim_location", "location_id"),
        ],
    ),
    fact::<FactPurchaseOrder>(
        ("purchase_record_id", "purchase_order_id"),
        &[
            refers("created_date", DATE.0, DATE.1),
            refers("last_updated_date", DATE.0, DATE.1),
            refers("staff_id", "dim_staff", "staff_id"),
            refers("counterparty_id", "dim_counterparty", "counterparty_id"),
            refers("currency_id", "dim_currency", "currency_id"),
            refers("agreed_delivery_date", DATE.0, DATE.1),
            refers("agreed_payment_date", DATE.0, DATE.1),
            refers("agreed_delivery_location_id", "dim_location", "location_id"),
        ],
    ),
    fact::<FactPayment>(
        ("payment_record_id", "payment_id"),
        &[
            refers("created_date", DATE.0, DATE.1),
            refers("last_updated_date", DATE.0, DATE.1),
            refers("transaction_id", "dim_transaction", "transaction_id"),
            refers("counterparty_id", "dim_counterparty", "counterparty_id"),
            refers("currency_id", "dim_currency", "currency_id"),
            refers("payment_type_id", "dim_payment_type", "payment_type_id"),
            refers("payment_date", DATE.0, DATE.1),
        ],
    ),
];

pub fn table_named(name: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.name == name)
}

/// A manifest's files with their tables, referenced rows first whatever order the manifest
/// lists them in; `Err` names the first file of a table that is not the warehouse's:
/// `(its key, the reason)`.
pub fn in_load_order<F>(
    files: &[F],
    table_and_key: impl Fn(&F) -> (&str, &str),
) -> Result<Vec<(&'static Table, &F)>, (String, String)> {
    let mut plan = Vec::with_capacity(files.len());
    for file in files {
        let (table, key) = table_and_key(file);
        let found = table_named(table).ok_or_else(|| {
            (
                key.to_owned(),
                format!("{table:?} is not a warehouse table"),
            )
        })?;
        plan.push((found, file));
    }
    plan.sort_by_key(|(table, _)| TABLES.iter().position(|t| t.name == table.name));
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_columns_of_their_tables() {
        for table in TABLES {
            let (Kind::Calendar { key } | Kind::Dimension { key } | Kind::Fact { id: key, .. }) =
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
        assert_eq!(versions, [1, 2, 3]);
    }

    /// The references the loader checks are exactly those the star schema declares.
    #[test]
    fn references_are_the_declared_foreign_keys() {
        let ddl = MIGRATIONS[0].2;
        for table in TABLES {
            let start = ddl.find(&format!("CREATE TABLE {} (", table.name)).unwrap();
            let body = &ddl[start..start + ddl[start..].find(");").unwrap()];
            let declared: Vec<Reference> = body
                .lines()
                .filter_map(|line| {
                    let (column, rest) = line.trim().split_once(' ')?;
                    let target = rest.split("REFERENCES ").nth(1)?;
                    let (dim, key) = target.trim_end_matches(',').split_once('(')?;
                    let find = |name: &str| -> &'static str {
                        TABLES
                            .iter()
                            .flat_map(|t| t.references)
                            .flat_map(|r| [r.column, r.table, r.key])
                            .find(|n| *n == name)
                            .unwrap_or_else(|| panic!("{name} is not in TABLES"))
                    };
                    Some(refers(
                        find(column),
                        find(dim),
                        find(key.trim_end_matches(')')),
                    ))
                })
                .collect();
            assert_eq!(declared, table.references, "{}", table.name);
        }
    }
}
