//! A local totesys (the P4 source database): the spec's schema, filled by a deterministic
//! generator at the live database's volumes, and churn — new rows and updates with a new
//! `last_updated` — as the live database sees several times a day. Tests, benchmarks and
//! `make demo` use it; rows go in through COPY.

use anyhow::{Context as _, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, Executor, PgConnection};
use time::macros::{datetime, format_description};
use time::{Duration, PrimitiveDateTime};

pub const SCHEMA: &str = include_str!("../../../sql/totesys/schema.sql");

/// How many orders to generate; the small tables have the live database's sizes.
#[derive(Debug, Clone, Copy)]
pub struct Volumes {
    pub sales_orders: u32,
    pub purchase_orders: u32,
}

impl Default for Volumes {
    /// The live database: 11,175 sales and 4,640 purchase orders.
    fn default() -> Self {
        Volumes {
            sales_orders: 11_175,
            purchase_orders: 4_640,
        }
    }
}

pub const ADDRESSES: u32 = 30;
pub const COUNTERPARTIES: u32 = 20;
pub const DEPARTMENTS: u32 = 8;
pub const DESIGNS: u32 = 472;
pub const STAFF: u32 = 20;

const FIRST: PrimitiveDateTime = datetime!(2022-11-03 14:20:52.186);
const LAST: PrimitiveDateTime = datetime!(2024-11-14 15:34:09.845);

/// Drops `database` if it exists (ending its sessions) and creates it empty: the fresh
/// database a seed, a test or a benchmark starts from.
pub async fn recreate_database(server: &PgConnectOptions, database: &str) -> Result<()> {
    administer(
        server,
        database,
        &[
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            "CREATE DATABASE \"{}\"",
        ],
    )
    .await
}

/// Drops `database` if it exists, ending its sessions.
pub async fn drop_database(server: &PgConnectOptions, database: &str) -> Result<()> {
    administer(
        server,
        database,
        &["DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)"],
    )
    .await
}

/// Runs `statements` (each naming the database as `{}`) from the `postgres` database.
async fn administer(server: &PgConnectOptions, database: &str, statements: &[&str]) -> Result<()> {
    // The name is interpolated into DDL: our own generated names only.
    anyhow::ensure!(
        database
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        "database name {database:?}: letters, digits and _ only"
    );
    let mut admin = PgConnection::connect_with(&server.clone().database("postgres")).await?;
    for statement in statements {
        admin
            .execute(statement.replace("{}", database).as_str())
            .await?;
    }
    admin.close().await?;
    Ok(())
}

/// Creates (or re-creates) `database` with the schema and generated rows.
pub async fn seed(
    server: &PgConnectOptions,
    database: &str,
    volumes: Volumes,
    seed: u64,
) -> Result<()> {
    recreate_database(server, database).await?;

    let mut conn = PgConnection::connect_with(&server.clone().database(database)).await?;
    sqlx::raw_sql(SCHEMA)
        .execute(&mut conn)
        .await
        .context("applying the totesys schema")?;
    let mut g = Generator::new(seed);
    g.fill(&mut conn, volumes).await?;
    conn.close().await?;
    Ok(())
}

/// New sales orders (with their transactions and payments) and updates to existing rows,
/// stamped with the database's clock.
pub async fn churn(
    conn: &mut PgConnection,
    seed: u64,
    new_orders: u32,
    updates: u32,
) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tx = conn.begin().await?;
    for _ in 0..new_orders {
        let units: i32 = rng.random_range(1000..=100_000);
        let cents: i32 = rng.random_range(200..=400);
        let design: i32 = rng.random_range(1..=DESIGNS as i32);
        let staff: i32 = rng.random_range(1..=STAFF as i32);
        let counterparty: i32 = rng.random_range(1..=COUNTERPARTIES as i32);
        let currency: i32 = rng.random_range(1..=3);
        let location: i32 = rng.random_range(1..=ADDRESSES as i32);
        sqlx::query(
            "WITH so AS (
               INSERT INTO sales_order (sales_order_id, created_at, last_updated, design_id, staff_id,
                 counterparty_id, units_sold, unit_price, currency_id, agreed_delivery_date,
                 agreed_payment_date, agreed_delivery_location_id)
               SELECT COALESCE(MAX(sales_order_id), 0) + 1, LOCALTIMESTAMP(3), LOCALTIMESTAMP(3), $1, $2, $3, $4,
                 $5::numeric / 100, $6, to_char(CURRENT_DATE + 5, 'YYYY-MM-DD'),
                 to_char(CURRENT_DATE + 9, 'YYYY-MM-DD'), $7
               FROM sales_order
               RETURNING sales_order_id, counterparty_id, units_sold * unit_price AS amount, currency_id),
             tr AS (
               INSERT INTO \"transaction\" (transaction_id, transaction_type, sales_order_id, created_at, last_updated)
               SELECT (SELECT COALESCE(MAX(transaction_id), 0) + 1 FROM \"transaction\"), 'SALE',
                 so.sales_order_id, LOCALTIMESTAMP(3), LOCALTIMESTAMP(3) FROM so
               RETURNING transaction_id)
             INSERT INTO payment (payment_id, created_at, last_updated, transaction_id, counterparty_id,
               payment_amount, currency_id, payment_type_id, paid, payment_date, company_ac_number,
               counterparty_ac_number)
             SELECT (SELECT COALESCE(MAX(payment_id), 0) + 1 FROM payment), LOCALTIMESTAMP(3), LOCALTIMESTAMP(3),
               tr.transaction_id, so.counterparty_id, so.amount, so.currency_id, 1, false,
               to_char(CURRENT_DATE + 9, 'YYYY-MM-DD'), 12345678, 87654321
             FROM so, tr",
        )
        .bind(design)
        .bind(staff)
        .bind(counterparty)
        .bind(units)
        .bind(cents)
        .bind(currency)
        .bind(location)
        .execute(&mut *tx)
        .await
        .context("inserting a new sales order")?;
    }
    for i in 0..updates {
        match i % 3 {
            0 => {
                let id: i32 = rng.random_range(1..=ADDRESSES as i32);
                sqlx::query("UPDATE address SET phone = $2, last_updated = LOCALTIMESTAMP(3) WHERE address_id = $1")
                    .bind(id)
                    .bind(format!("0{:010}", rng.random_range(0..10_000_000_000u64)))
                    .execute(&mut *tx)
                    .await?;
            }
            1 => {
                let id: i32 = rng.random_range(1..=STAFF as i32);
                sqlx::query("UPDATE staff SET department_id = $2, last_updated = LOCALTIMESTAMP(3) WHERE staff_id = $1")
                    .bind(id)
                    .bind(rng.random_range(1..=DEPARTMENTS as i32))
                    .execute(&mut *tx)
                    .await?;
            }
            _ => {
                sqlx::query(
                    "UPDATE sales_order SET units_sold = units_sold + 1, last_updated = LOCALTIMESTAMP(3)
                     WHERE sales_order_id = (SELECT MIN(sales_order_id) + $1 FROM sales_order)",
                )
                .bind(rng.random_range(0..100i32))
                .execute(&mut *tx)
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

struct Generator {
    rng: ChaCha8Rng,
}

/// One COPY text-format row: tab-separated, `\N` for NULL.
struct Row(String);

impl Row {
    fn new() -> Row {
        Row(String::new())
    }
    fn field(mut self, value: impl std::fmt::Display) -> Row {
        if !self.0.is_empty() {
            self.0.push('\t');
        }
        let text = value.to_string();
        for c in text.chars() {
            match c {
                '\\' => self.0.push_str("\\\\"),
                '\t' => self.0.push_str("\\t"),
                '\n' => self.0.push_str("\\n"),
                '\r' => self.0.push_str("\\r"),
                c => self.0.push(c),
            }
        }
        self
    }
    fn nullable(mut self, value: Option<impl std::fmt::Display>) -> Row {
        match value {
            Some(v) => self.field(v),
            None => {
                if !self.0.is_empty() {
                    self.0.push('\t');
                }
                self.0.push_str("\\N");
                self
            }
        }
    }
}

fn stamp(t: PrimitiveDateTime) -> String {
    t.format(format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:3]"
    ))
    .expect("formats")
}

fn day(t: PrimitiveDateTime) -> String {
    t.date()
        .format(format_description!("[year]-[month]-[day]"))
        .expect("formats")
}

const CITIES: [&str; 10] = [
    "Leeds",
    "Manchester",
    "New Patienceburgh",
    "Aliso Viejo",
    "Lake Charles",
    "Utica",
    "Pricetown",
    "Fresno",
    "Sayreville",
    "Olsonside",
];
const COUNTRIES: [&str; 6] = [
    "United Kingdom",
    "Austria",
    "Turkey",
    "Democratic People's Republic of Korea",
    "Peru",
    "San Marino",
];
const DEPARTMENT_NAMES: [(&str, &str); 8] = [
    ("Sales", "Manchester"),
    ("Purchasing", "Manchester"),
    ("Production", "Leeds"),
    ("Dispatch", "Leds"),
    ("Finance", "Manchester"),
    ("Facilities", "Manchester"),
    ("Communications", "Leeds"),
    ("HR", "Leeds"),
];
const NAMES: [&str; 12] = [
    "Jeremie",
    "Deron",
    "Jeanette",
    "Ana",
    "Magdalena",
    "Korey",
    "Raphael",
    "Oswaldo",
    "Brody",
    "Jazmyn",
    "Meda",
    "Imani",
];
const SURNAMES: [&str; 10] = [
    "Franey", "Beier", "Erdman", "Glover", "Zieme", "Kreiger", "Rippin", "Bergnaum", "Ratke",
    "Cremin",
];
const WORDS: [&str; 10] = [
    "Wooden", "Steel", "Granite", "Bronze", "Soft", "Frozen", "Fresh", "Concrete", "Rubber",
    "Plastic",
];

impl Generator {
    fn new(seed: u64) -> Generator {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.rng.random_range(0..from.len())]
    }

    /// A moment in the live database's range; most rows are never updated.
    fn moment(&mut self) -> (PrimitiveDateTime, PrimitiveDateTime) {
        let span = (LAST - FIRST).whole_milliseconds() as i64;
        let created = FIRST + Duration::milliseconds(self.rng.random_range(0..span));
        let updated = if self.rng.random_range(0..20) == 0 {
            (created + Duration::milliseconds(self.rng.random_range(1..86_400_000))).min(LAST)
        } else {
            created
        };
        (created, updated)
    }

    async fn fill(&mut self, conn: &mut PgConnection, volumes: Volumes) -> Result<()> {
        let base = datetime!(2022-11-03 14:20:49.962);
        let fixed = stamp(base);

        let currency = ["GBP", "USD", "EUR"]
            .iter()
            .enumerate()
            .map(|(i, code)| {
                Row::new()
                    .field(i + 1)
                    .field(code)
                    .field(&fixed)
                    .field(&fixed)
            })
            .collect();
        copy(
            conn,
            "currency (currency_id, currency_code, created_at, last_updated)",
            currency,
        )
        .await?;

        let payment_types = [
            "SALES_RECEIPT",
            "SALES_REFUND",
            "PURCHASE_PAYMENT",
            "PURCHASE_REFUND",
        ]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            Row::new()
                .field(i + 1)
                .field(name)
                .field(&fixed)
                .field(&fixed)
        })
        .collect();
        copy(
            conn,
            "payment_type (payment_type_id, payment_type_name, created_at, last_updated)",
            payment_types,
        )
        .await?;

        let departments = DEPARTMENT_NAMES
            .iter()
            .enumerate()
            .map(|(i, (name, location))| {
                let manager = format!("{} {}", self.pick(&NAMES), self.pick(&SURNAMES));
                Row::new()
                    .field(i + 1)
                    .field(name)
                    .field(location)
                    .field(manager)
                    .field(&fixed)
                    .field(&fixed)
            })
            .collect();
        copy(conn, "department (department_id, department_name, location, manager, created_at, last_updated)", departments).await?;

        let mut addresses = Vec::new();
        for id in 1..=ADDRESSES {
            let line_2 = (self.rng.random_range(0..2) == 0)
                .then(|| format!("{} Court", self.pick(&SURNAMES)));
            let district =
                (self.rng.random_range(0..3) == 0).then(|| format!("{}shire", self.pick(&WORDS)));
            addresses.push(
                Row::new()
                    .field(id)
                    .field(format!(
                        "{} {} Street",
                        self.rng.random_range(1..999),
                        self.pick(&SURNAMES)
                    ))
                    .nullable(line_2)
                    .nullable(district)
                    .field(self.pick(&CITIES))
                    .field(format!(
                        "{:05}-{:04}",
                        self.rng.random_range(0..99_999),
                        self.rng.random_range(0..9_999)
                    ))
                    .field(self.pick(&COUNTRIES))
                    .field(format!(
                        "{:04} {:06}",
                        self.rng.random_range(1000..9999),
                        self.rng.random_range(0..999_999)
                    ))
                    .field(&fixed)
                    .field(&fixed),
            );
        }
        copy(conn, "address (address_id, address_line_1, address_line_2, district, city, postal_code, country, phone, created_at, last_updated)", addresses).await?;

        let mut counterparties = Vec::new();
        for id in 1..=COUNTERPARTIES {
            counterparties.push(
                Row::new()
                    .field(id)
                    .field(format!(
                        "{}, {} and {}",
                        self.pick(&SURNAMES),
                        self.pick(&SURNAMES),
                        self.pick(&SURNAMES)
                    ))
                    .field(self.rng.random_range(1..=ADDRESSES))
                    .field(format!("{} {}", self.pick(&NAMES), self.pick(&SURNAMES)))
                    .field(format!("{} {}", self.pick(&NAMES), self.pick(&SURNAMES)))
                    .field(&fixed)
                    .field(&fixed),
            );
        }
        copy(conn, "counterparty (counterparty_id, counterparty_legal_name, legal_address_id, commercial_contact, delivery_contact, created_at, last_updated)", counterparties).await?;

        let mut designs = Vec::new();
        for id in 1..=DESIGNS {
            let (created, updated) = self.moment();
            let name = self.pick(&WORDS);
            designs.push(
                Row::new()
                    .field(id)
                    .field(stamp(created))
                    .field(name)
                    .field(format!("/usr/share/{}", name.to_lowercase()))
                    .field(format!(
                        "{}-{:08x}.json",
                        name.to_lowercase(),
                        self.rng.random::<u32>()
                    ))
                    .field(stamp(updated)),
            );
        }
        copy(
            conn,
            "design (design_id, created_at, design_name, file_location, file_name, last_updated)",
            designs,
        )
        .await?;

        let mut staff = Vec::new();
        for id in 1..=STAFF {
            let (first, last) = (self.pick(&NAMES), self.pick(&SURNAMES));
            staff.push(
                Row::new()
                    .field(id)
                    .field(first)
                    .field(last)
                    .field(self.rng.random_range(1..=DEPARTMENTS))
                    .field(format!(
                        "{}.{}@terrifictotes.com",
                        first.to_lowercase(),
                        last.to_lowercase()
                    ))
                    .field(&fixed)
                    .field(&fixed),
            );
        }
        copy(conn, "staff (staff_id, first_name, last_name, department_id, email_address, created_at, last_updated)", staff).await?;

        // Orders, their transactions and payments, streamed in batches.
        let mut transaction_id = 0u32;
        let (mut orders, mut transactions, mut payments) = (Vec::new(), Vec::new(), Vec::new());
        for kind in ["SALE", "PURCHASE"] {
            let count = if kind == "SALE" {
                volumes.sales_orders
            } else {
                volumes.purchase_orders
            };
            for id in 1..=count {
                let (created, updated) = self.moment();
                let delivery = day(created + Duration::days(self.rng.random_range(1..10)));
                let payment_day = day(created + Duration::days(self.rng.random_range(1..10)));
                let counterparty = self.rng.random_range(1..=COUNTERPARTIES);
                let currency = self.rng.random_range(1..=3u32);
                let staff = self.rng.random_range(1..=STAFF);
                let location = self.rng.random_range(1..=ADDRESSES);
                let (quantity, cents) = if kind == "SALE" {
                    (
                        self.rng.random_range(1000..=100_000u64),
                        self.rng.random_range(200..=400u64),
                    )
                } else {
                    (
                        self.rng.random_range(1..=1000u64),
                        self.rng.random_range(100..=100_000u64),
                    )
                };
                let price = format!("{}.{:02}", cents / 100, cents % 100);
                let amount_cents = quantity * cents;
                let amount = format!("{}.{:02}", amount_cents / 100, amount_cents % 100);
                let order = if kind == "SALE" {
                    Row::new()
                        .field(id)
                        .field(stamp(created))
                        .field(stamp(updated))
                        .field(self.rng.random_range(1..=DESIGNS))
                        .field(staff)
                        .field(counterparty)
                        .field(quantity)
                        .field(price)
                        .field(currency)
                        .field(delivery)
                        .field(&payment_day)
                        .field(location)
                } else {
                    Row::new()
                        .field(id)
                        .field(stamp(created))
                        .field(stamp(updated))
                        .field(staff)
                        .field(counterparty)
                        .field(format!("{:07X}", self.rng.random_range(0..0xFFF_FFFFu32)))
                        .field(quantity)
                        .field(price)
                        .field(currency)
                        .field(delivery)
                        .field(&payment_day)
                        .field(location)
                };
                orders.push(order);
                transaction_id += 1;
                let (sale, purchase) = if kind == "SALE" {
                    (Some(id), None)
                } else {
                    (None, Some(id))
                };
                transactions.push(
                    Row::new()
                        .field(transaction_id)
                        .field(kind)
                        .nullable(sale)
                        .nullable(purchase)
                        .field(stamp(created))
                        .field(stamp(created)),
                );
                payments.push(
                    Row::new()
                        .field(transaction_id)
                        .field(stamp(created))
                        .field(stamp(created))
                        .field(transaction_id)
                        .field(counterparty)
                        .field(amount)
                        .field(currency)
                        .field(if kind == "SALE" { 1 } else { 3 })
                        .field(self.rng.random_range(0..2) == 0)
                        .field(payment_day)
                        .field(self.rng.random_range(10_000_000..99_999_999u32))
                        .field(self.rng.random_range(10_000_000..99_999_999u32)),
                );
                if orders.len() == 50_000 || id == count {
                    let table = if kind == "SALE" {
                        "sales_order (sales_order_id, created_at, last_updated, design_id, staff_id, counterparty_id, units_sold, unit_price, currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)"
                    } else {
                        "purchase_order (purchase_order_id, created_at, last_updated, staff_id, counterparty_id, item_code, item_quantity, item_unit_price, currency_id, agreed_delivery_date, agreed_payment_date, agreed_delivery_location_id)"
                    };
                    copy(conn, table, std::mem::take(&mut orders)).await?;
                    copy(conn, "\"transaction\" (transaction_id, transaction_type, sales_order_id, purchase_order_id, created_at, last_updated)", std::mem::take(&mut transactions)).await?;
                    copy(conn, "payment (payment_id, created_at, last_updated, transaction_id, counterparty_id, payment_amount, currency_id, payment_type_id, paid, payment_date, company_ac_number, counterparty_ac_number)", std::mem::take(&mut payments)).await?;
                }
            }
        }
        Ok(())
    }
}

async fn copy(conn: &mut PgConnection, table: &str, rows: Vec<Row>) -> Result<()> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&row.0);
        text.push('\n');
    }
    let mut copy = conn
        .copy_in_raw(&format!("COPY {table} FROM STDIN"))
        .await
        .with_context(|| format!("COPY {table}"))?;
    copy.send(text.into_bytes()).await?;
    copy.finish()
        .await
        .with_context(|| format!("COPY {table}"))?;
    Ok(())
}
