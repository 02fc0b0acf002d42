//! The totesys tables, as typed versions of their rows.

use super::Stamp;
use crate::row::{FieldError, Money, SourceRow};
use time::Date;

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

    /// The tables whose transform reads the other's rows share one state (`transform`'s
    /// `Lookup`): a counterparty shows its legal address and a staff member their
    /// department, so an object of either table of a pair must see the rows the other
    /// table's objects committed. Every other table transforms from its own object alone.
    pub fn state_group(self) -> &'static str {
        match self {
            SourceTable::Address | SourceTable::Counterparty => "address-counterparty",
            SourceTable::Department | SourceTable::Staff => "department-staff",
            other => other.name(),
        }
    }

    /// Whether the transform keeps this table's rows (the joined pairs of `state_group`).
    pub fn joined(self) -> bool {
        matches!(
            self,
            SourceTable::Address
                | SourceTable::Counterparty
                | SourceTable::Department
                | SourceTable::Staff
        )
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
