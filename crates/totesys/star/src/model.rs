//! The source tables as typed versions, and the warehouse rows they become
//! (../shared/spec/README.md is the contract; the comments cite its rules).

use crate::row::{FieldError, Money, SourceRow};
use time::{Date, Time};

/// `last_updated` (or `created_at`) split as the warehouse stores it.
pub type Stamp = (Date, Time);

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum SourceTable {
    Address,
    Counterparty,
    Currency,
    Department,
    Design,
    Staff,
    SalesOrder,
    PurchaseOrder,
    PaymentType,
    Transaction,
    Payment,
}

impl SourceTable {
    pub const ALL: [SourceTable; 11] = [
        SourceTable::Address,
        SourceTable::Counterparty,
        SourceTable::Currency,
        SourceTable::Department,
        SourceTable::Design,
        SourceTable::Staff,
        SourceTable::SalesOrder,
        SourceTable::PurchaseOrder,
        SourceTable::PaymentType,
        SourceTable::Transaction,
        SourceTable::Payment,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SourceTable::Address => "address",
            SourceTable::Counterparty => "counterparty",
            SourceTable::Currency => "currency",
            SourceTable::Department => "department",
            SourceTable::Design => "design",
            SourceTable::Staff => "staff",
            SourceTable::SalesOrder => "sales_order",
            SourceTable::PurchaseOrder => "purchase_order",
            SourceTable::PaymentType => "payment_type",
            SourceTable::Transaction => "transaction",
            SourceTable::Payment => "payment",
        }
    }

    pub fn from_name(name: &str) -> Option<SourceTable> {
        SourceTable::ALL.into_iter().find(|t| t.name() == name)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Address {
    pub address_id: i32,
    pub address_line_1: String,
    pub address_line_2: Option<String>,
    pub district: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    pub phone: String,
    pub last_updated: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Counterparty {
    pub counterparty_id: i32,
    pub counterparty_legal_name: String,
    pub legal_address_id: i32,
    pub last_updated: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Currency {
    pub currency_id: i32,
    pub currency_code: String,
    pub last_updated: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Department {
    pub department_id: i32,
    pub department_name: String,
    pub location: Option<String>,
    pub last_updated: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Design {
    pub design_id: i32,
    pub design_name: String,
    pub file_location: String,
    pub file_name: String,
    pub last_updated: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Staff {
    pub staff_id: i32,
    pub first_name: String,
    pub last_name: String,
    pub department_id: i32,
    pub email_address: String,
    pub last_updated: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PaymentType {
    pub payment_type_id: i32,
    pub payment_type_name: String,
    pub last_updated: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Transaction {
    pub transaction_id: i32,
    pub transaction_type: String,
    pub sales_order_id: Option<i32>,
    pub purchase_order_id: Option<i32>,
    pub last_updated: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SalesOrder {
    pub sales_order_id: i32,
    pub created_at: Stamp,
    pub last_updated: Stamp,
    pub design_id: i32,
    pub staff_id: i32,
    pub counterparty_id: i32,
    pub units_sold: i32,
    pub unit_price: Money,
    pub currency_id: i32,
    pub agreed_delivery_date: Date,
    pub agreed_payment_date: Date,
    pub agreed_delivery_location_id: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PurchaseOrder {
    pub purchase_order_id: i32,
    pub created_at: Stamp,
    pub last_updated: Stamp,
    pub staff_id: i32,
    pub counterparty_id: i32,
    pub item_code: String,
    pub item_quantity: i32,
    pub item_unit_price: Money,
    pub currency_id: i32,
    pub agreed_delivery_date: Date,
    pub agreed_payment_date: Date,
    pub agreed_delivery_location_id: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Payment {
    pub payment_id: i32,
    pub created_at: Stamp,
    pub last_updated: Stamp,
    pub transaction_id: i32,
    pub counterparty_id: i32,
    pub payment_amount: Money,
    pub currency_id: i32,
    pub payment_type_id: i32,
    pub paid: bool,
    pub payment_date: Date,
}

/// One version of one source row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "table", rename_all = "snake_case")]
pub enum Record {
    Address(Address),
    Counterparty(Counterparty),
    Currency(Currency),
    Department(Department),
    Design(Design),
    Staff(Staff),
    SalesOrder(SalesOrder),
    PurchaseOrder(PurchaseOrder),
    PaymentType(PaymentType),
    Transaction(Transaction),
    Payment(Payment),
}

impl Record {
    /// Reads one row of `table`; every column the mapping needs must be there.
    pub fn parse(table: SourceTable, row: &SourceRow) -> Result<Record, FieldError> {
        Ok(match table {
            SourceTable::Address => Record::Address(Address {
                address_id: row.int("address_id")?,
                address_line_1: row.text("address_line_1")?,
                address_line_2: row.text_opt("address_line_2")?,
                district: row.text_opt("district")?,
                city: row.text("city")?,
                postal_code: row.text("postal_code")?,
                country: row.text("country")?,
                phone: row.text("phone")?,
                last_updated: row.timestamp("last_updated")?,
            }),
            SourceTable::Counterparty => Record::Counterparty(Counterparty {
                counterparty_id: row.int("counterparty_id")?,
                counterparty_legal_name: row.text("counterparty_legal_name")?,
                legal_address_id: row.int("legal_address_id")?,
                last_updated: row.timestamp("last_updated")?,
            }),
            SourceTable::Currency => Record::Currency(Currency {
                currency_id: row.int("currency_id")?,
                currency_code: row.text("currency_code")?,
                last_updated: row.timestamp("last_updated")?,
            }),
            SourceTable::Department => Record::Department(Department {
                department_id: row.int("department_id")?,
                department_name: row.text("department_name")?,
                location: row.text_opt("location")?,
                last_updated: row.timestamp("last_updated")?,
            }),
            SourceTable::Design => Record::Design(Design {
                design_id: row.int("design_id")?,
                design_name: row.text("design_name")?,
                file_location: row.text("file_location")?,
                file_name: row.text("file_name")?,
                last_updated: row.timestamp("last_updated")?,
            }),
            SourceTable::Staff => Record::Staff(Staff {
                staff_id: row.int("staff_id")?,
                first_name: row.text("first_name")?,
                last_name: row.text("last_name")?,
                department_id: row.int("department_id")?,
                email_address: row.text("email_address")?,
                last_updated: row.timestamp("last_updated")?,
            }),
            SourceTable::PaymentType => Record::PaymentType(PaymentType {
                payment_type_id: row.int("payment_type_id")?,
                payment_type_name: row.text("payment_type_name")?,
                last_updated: row.timestamp("last_updated")?,
            }),
            SourceTable::Transaction => Record::Transaction(Transaction {
                transaction_id: row.int("transaction_id")?,
                transaction_type: row.text("transaction_type")?,
                sales_order_id: row.int_opt("sales_order_id")?,
                purchase_order_id: row.int_opt("purchase_order_id")?,
                last_updated: row.timestamp("last_updated")?,
            }),
            SourceTable::SalesOrder => Record::SalesOrder(SalesOrder {
                sales_order_id: row.int("sales_order_id")?,
                created_at: row.timestamp("created_at")?,
                last_updated: row.timestamp("last_updated")?,
                design_id: row.int("design_id")?,
                staff_id: row.int("staff_id")?,
                counterparty_id: row.int("counterparty_id")?,
                units_sold: row.int("units_sold")?,
                unit_price: row.money("unit_price")?,
                currency_id: row.int("currency_id")?,
                agreed_delivery_date: row.date("agreed_delivery_date")?,
                agreed_payment_date: row.date("agreed_payment_date")?,
                agreed_delivery_location_id: row.int("agreed_delivery_location_id")?,
            }),
            SourceTable::PurchaseOrder => Record::PurchaseOrder(PurchaseOrder {
                purchase_order_id: row.int("purchase_order_id")?,
                created_at: row.timestamp("created_at")?,
                last_updated: row.timestamp("last_updated")?,
                staff_id: row.int("staff_id")?,
                counterparty_id: row.int("counterparty_id")?,
                item_code: row.text("item_code")?,
                item_quantity: row.int("item_quantity")?,
                item_unit_price: row.money("item_unit_price")?,
                currency_id: row.int("currency_id")?,
                agreed_delivery_date: row.date("agreed_delivery_date")?,
                agreed_payment_date: row.date("agreed_payment_date")?,
                agreed_delivery_location_id: row.int("agreed_delivery_location_id")?,
            }),
            SourceTable::Payment => Record::Payment(Payment {
                payment_id: row.int("payment_id")?,
                created_at: row.timestamp("created_at")?,
                last_updated: row.timestamp("last_updated")?,
                transaction_id: row.int("transaction_id")?,
                counterparty_id: row.int("counterparty_id")?,
                payment_amount: row.money("payment_amount")?,
                currency_id: row.int("currency_id")?,
                payment_type_id: row.int("payment_type_id")?,
                paid: row.boolean("paid")?,
                payment_date: row.date("payment_date")?,
            }),
        })
    }

    /// A fact's foreign keys (column, table, id): every one must name a row the transform
    /// has seen, or the fact would dangle in the warehouse. Dimensions resolve their own joins.
    pub fn references(&self) -> Vec<(&'static str, SourceTable, i32)> {
        match self {
            Record::SalesOrder(o) => vec![
                ("staff_id", SourceTable::Staff, o.staff_id),
                (
                    "counterparty_id",
                    SourceTable::Counterparty,
                    o.counterparty_id,
                ),
                ("currency_id", SourceTable::Currency, o.currency_id),
                ("design_id", SourceTable::Design, o.design_id),
                (
                    "agreed_delivery_location_id",
                    SourceTable::Address,
                    o.agreed_delivery_location_id,
                ),
            ],
            Record::PurchaseOrder(o) => vec![
                ("staff_id", SourceTable::Staff, o.staff_id),
                (
                    "counterparty_id",
                    SourceTable::Counterparty,
                    o.counterparty_id,
                ),
                ("currency_id", SourceTable::Currency, o.currency_id),
                (
                    "agreed_delivery_location_id",
                    SourceTable::Address,
                    o.agreed_delivery_location_id,
                ),
            ],
            Record::Payment(p) => vec![
                ("transaction_id", SourceTable::Transaction, p.transaction_id),
                (
                    "counterparty_id",
                    SourceTable::Counterparty,
                    p.counterparty_id,
                ),
                ("currency_id", SourceTable::Currency, p.currency_id),
                (
                    "payment_type_id",
                    SourceTable::PaymentType,
                    p.payment_type_id,
                ),
            ],
            _ => Vec::new(),
        }
    }

    /// The natural key and version: two records with the same are exact duplicates.
    pub fn version(&self) -> (SourceTable, i32, Stamp) {
        match self {
            Record::Address(r) => (SourceTable::Address, r.address_id, r.last_updated),
            Record::Counterparty(r) => {
                (SourceTable::Counterparty, r.counterparty_id, r.last_updated)
            }
            Record::Currency(r) => (SourceTable::Currency, r.currency_id, r.last_updated),
            Record::Department(r) => (SourceTable::Department, r.department_id, r.last_updated),
            Record::Design(r) => (SourceTable::Design, r.design_id, r.last_updated),
            Record::Staff(r) => (SourceTable::Staff, r.staff_id, r.last_updated),
            Record::SalesOrder(r) => (SourceTable::SalesOrder, r.sales_order_id, r.last_updated),
            Record::PurchaseOrder(r) => (
                SourceTable::PurchaseOrder,
                r.purchase_order_id,
                r.last_updated,
            ),
            Record::PaymentType(r) => (SourceTable::PaymentType, r.payment_type_id, r.last_updated),
            Record::Transaction(r) => (SourceTable::Transaction, r.transaction_id, r.last_updated),
            Record::Payment(r) => (SourceTable::Payment, r.payment_id, r.last_updated),
        }
    }
}

// ------------------------------------------------------------------ warehouse rows

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimLocation {
    pub location_id: i32,
    pub address_line_1: String,
    pub address_line_2: Option<String>,
    pub district: Option<String>,
    pub city: String,
    pub postal_code: String,
    pub country: String,
    pub phone: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimCounterparty {
    pub counterparty_id: i32,
    pub counterparty_legal_name: String,
    pub counterparty_legal_address_line_1: String,
    pub counterparty_legal_address_line_2: Option<String>,
    pub counterparty_legal_district: Option<String>,
    pub counterparty_legal_city: String,
    pub counterparty_legal_postal_code: String,
    pub counterparty_legal_country: String,
    pub counterparty_legal_phone_number: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimStaff {
    pub staff_id: i32,
    pub first_name: String,
    pub last_name: String,
    pub department_name: String,
    pub location: String,
    pub email_address: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimCurrency {
    pub currency_id: i32,
    pub currency_code: String,
    pub currency_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimDesign {
    pub design_id: i32,
    pub design_name: String,
    pub file_location: String,
    pub file_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimPaymentType {
    pub payment_type_id: i32,
    pub payment_type_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimTransaction {
    pub transaction_id: i32,
    pub transaction_type: String,
    pub sales_order_id: Option<i32>,
    pub purchase_order_id: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimDate {
    pub date_id: Date,
    pub year: i32,
    pub month: i32,
    pub day: i32,
    /// ISO: 1 = Monday … 7 = Sunday.
    pub day_of_week: i32,
    pub day_name: String,
    pub month_name: String,
    pub quarter: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactSalesOrder {
    pub sales_order_id: i32,
    pub created_date: Date,
    pub created_time: Time,
    pub last_updated_date: Date,
    pub last_updated_time: Time,
    pub sales_staff_id: i32,
    pub counterparty_id: i32,
    pub units_sold: i32,
    pub unit_price: Money,
    pub currency_id: i32,
    pub design_id: i32,
    pub agreed_payment_date: Date,
    pub agreed_delivery_date: Date,
    pub agreed_delivery_location_id: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactPurchaseOrder {
    pub purchase_order_id: i32,
    pub created_date: Date,
    pub created_time: Time,
    pub last_updated_date: Date,
    pub last_updated_time: Time,
    pub staff_id: i32,
    pub counterparty_id: i32,
    pub item_code: String,
    pub item_quantity: i32,
    pub item_unit_price: Money,
    pub currency_id: i32,
    pub agreed_delivery_date: Date,
    pub agreed_payment_date: Date,
    pub agreed_delivery_location_id: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactPayment {
    pub payment_id: i32,
    pub created_date: Date,
    pub created_time: Time,
    pub last_updated_date: Date,
    pub last_updated_time: Time,
    pub transaction_id: i32,
    pub counterparty_id: i32,
    pub payment_amount: Money,
    pub currency_id: i32,
    pub payment_type_id: i32,
    pub paid: bool,
    pub payment_date: Date,
}

// ------------------------------------------------------------------ mappings

pub fn dim_location(a: &Address) -> DimLocation {
    DimLocation {
        location_id: a.address_id,
        address_line_1: a.address_line_1.clone(),
        address_line_2: a.address_line_2.clone(),
        district: a.district.clone(),
        city: a.city.clone(),
        postal_code: a.postal_code.clone(),
        country: a.country.clone(),
        phone: a.phone.clone(),
    }
}

/// counterparty ⟕ address on legal_address_id = address_id.
pub fn dim_counterparty(c: &Counterparty, legal_address: &Address) -> DimCounterparty {
    DimCounterparty {
        counterparty_id: c.counterparty_id,
        counterparty_legal_name: c.counterparty_legal_name.clone(),
        counterparty_legal_address_line_1: legal_address.address_line_1.clone(),
        counterparty_legal_address_line_2: legal_address.address_line_2.clone(),
        counterparty_legal_district: legal_address.district.clone(),
        counterparty_legal_city: legal_address.city.clone(),
        counterparty_legal_postal_code: legal_address.postal_code.clone(),
        counterparty_legal_country: legal_address.country.clone(),
        counterparty_legal_phone_number: legal_address.phone.clone(),
    }
}

/// staff ⟕ department using department_id. dim_staff.location is NOT NULL: a department
/// without a location is bad input, named, never an invented value.
pub fn dim_staff(s: &Staff, department: &Department) -> Result<DimStaff, FieldError> {
    let location = department.location.clone().ok_or_else(|| FieldError {
        column: "location".into(),
        reason: format!(
            "department {} has no location, which dim_staff requires (staff {})",
            department.department_id, s.staff_id
        ),
    })?;
    Ok(DimStaff {
        staff_id: s.staff_id,
        first_name: s.first_name.clone(),
        last_name: s.last_name.clone(),
        department_name: department.department_name.clone(),
        location,
        email_address: s.email_address.clone(),
    })
}

/// The ISO 4217 English name of the code; any other code is bad input.
pub fn dim_currency(c: &Currency) -> Result<DimCurrency, FieldError> {
    let name = crate::iso4217::currency_name(&c.currency_code).ok_or_else(|| FieldError {
        column: "currency_code".into(),
        reason: format!(
            "{:?} (currency {}) is not an ISO 4217 code",
            c.currency_code, c.currency_id
        ),
    })?;
    Ok(DimCurrency {
        currency_id: c.currency_id,
        currency_code: c.currency_code.clone(),
        currency_name: name.to_owned(),
    })
}

pub fn dim_design(d: &Design) -> DimDesign {
    DimDesign {
        design_id: d.design_id,
        design_name: d.design_name.clone(),
        file_location: d.file_location.clone(),
        file_name: d.file_name.clone(),
    }
}

pub fn dim_payment_type(p: &PaymentType) -> DimPaymentType {
    DimPaymentType {
        payment_type_id: p.payment_type_id,
        payment_type_name: p.payment_type_name.clone(),
    }
}

pub fn dim_transaction(t: &Transaction) -> DimTransaction {
    DimTransaction {
        transaction_id: t.transaction_id,
        transaction_type: t.transaction_type.clone(),
        sales_order_id: t.sales_order_id,
        purchase_order_id: t.purchase_order_id,
    }
}

pub fn fact_sales_order(o: &SalesOrder) -> FactSalesOrder {
    FactSalesOrder {
        sales_order_id: o.sales_order_id,
        created_date: o.created_at.0,
        created_time: o.created_at.1,
        last_updated_date: o.last_updated.0,
        last_updated_time: o.last_updated.1,
        sales_staff_id: o.staff_id,
        counterparty_id: o.counterparty_id,
        units_sold: o.units_sold,
        unit_price: o.unit_price,
        currency_id: o.currency_id,
        design_id: o.design_id,
        agreed_payment_date: o.agreed_payment_date,
        agreed_delivery_date: o.agreed_delivery_date,
        agreed_delivery_location_id: o.agreed_delivery_location_id,
    }
}

pub fn fact_purchase_order(o: &PurchaseOrder) -> FactPurchaseOrder {
    FactPurchaseOrder {
        purchase_order_id: o.purchase_order_id,
        created_date: o.created_at.0,
        created_time: o.created_at.1,
        last_updated_date: o.last_updated.0,
        last_updated_time: o.last_updated.1,
        staff_id: o.staff_id,
        counterparty_id: o.counterparty_id,
        item_code: o.item_code.clone(),
        item_quantity: o.item_quantity,
        item_unit_price: o.item_unit_price,
        currency_id: o.currency_id,
        agreed_delivery_date: o.agreed_delivery_date,
        agreed_payment_date: o.agreed_payment_date,
        agreed_delivery_location_id: o.agreed_delivery_location_id,
    }
}

/// company_ac_number and counterparty_ac_number are dropped by the warehouse model.
pub fn fact_payment(p: &Payment) -> FactPayment {
    FactPayment {
        payment_id: p.payment_id,
        created_date: p.created_at.0,
        created_time: p.created_at.1,
        last_updated_date: p.last_updated.0,
        last_updated_time: p.last_updated.1,
        transaction_id: p.transaction_id,
        counterparty_id: p.counterparty_id,
        payment_amount: p.payment_amount,
        currency_id: p.currency_id,
        payment_type_id: p.payment_type_id,
        paid: p.paid,
        payment_date: p.payment_date,
    }
}

impl FactSalesOrder {
    pub fn dates(&self) -> [Date; 4] {
        [
            self.created_date,
            self.last_updated_date,
            self.agreed_payment_date,
            self.agreed_delivery_date,
        ]
    }
}

impl FactPurchaseOrder {
    pub fn dates(&self) -> [Date; 4] {
        [
            self.created_date,
            self.last_updated_date,
            self.agreed_delivery_date,
            self.agreed_payment_date,
        ]
    }
}

impl FactPayment {
    pub fn dates(&self) -> [Date; 3] {
        [self.created_date, self.last_updated_date, self.payment_date]
    }
}

pub fn dim_date(date: Date) -> DimDate {
    DimDate {
        date_id: date,
        year: date.year(),
        month: date.month() as i32,
        day: date.day() as i32,
        day_of_week: date.weekday().number_from_monday() as i32,
        day_name: date.weekday().to_string(),
        month_name: date.month().to_string(),
        quarter: (date.month() as i32 - 1) / 3 + 1,
    }
}

/// Every day from `first` to `last`, inclusive: dim_date has no gaps.
pub fn dim_dates(first: Date, last: Date) -> impl Iterator<Item = DimDate> {
    std::iter::successors(Some(first), move |d| d.next_day().filter(|n| *n <= last))
        .filter(move |d| *d <= last)
        .map(dim_date)
}

/// The dim_date rows to add when the facts need `needed` and `covered` is already in the
/// warehouse: the range only grows, to one contiguous span, so dim_date never has a gap.
/// Gives the rows and the new covered span.
pub fn extend_dates(
    covered: Option<(Date, Date)>,
    needed: (Date, Date),
) -> (Vec<DimDate>, (Date, Date)) {
    let Some((first, last)) = covered else {
        return (dim_dates(needed.0, needed.1).collect(), needed);
    };
    let mut rows = Vec::new();
    if needed.0 < first {
        rows.extend(dim_dates(
            needed.0,
            first.previous_day().expect("after the minimum date"),
        ));
    }
    if needed.1 > last {
        rows.extend(dim_dates(
            last.next_day().expect("before the maximum date"),
            needed.1,
        ));
    }
    (rows, (first.min(needed.0), last.max(needed.1)))
}
