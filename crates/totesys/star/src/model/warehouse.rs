//! The star schema's rows, as the warehouse stores them.

use crate::row::Money;
use time::{Date, Time};

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
