//! How each source version becomes its warehouse row (the spec's mapping rules), and
//! the dates dim_date must hold.

use super::*;
use crate::row::FieldError;
use time::Date;

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
