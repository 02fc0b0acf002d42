//! Each mapping against rows worked out by hand from ../shared/spec/README.md.

use landfall_totesys_star::*;
use time::macros::{date, time};

fn record(table: SourceTable, line: &str) -> Record {
    Record::parse(table, &SourceRow::parse(line).expect("JSON")).expect("a valid row")
}

fn address() -> Address {
    let Record::Address(a) = record(
        SourceTable::Address,
        r#"{"address_id": 7, "address_line_1": "6826 Herzog Via", "address_line_2": null, "district": "Avon",
            "city": "New Patienceburgh", "postal_code": "28441", "country": "Turkey", "phone": "1803 637401",
            "created_at": "2022-11-03T14:20:49.962", "last_updated": "2022-11-03T14:20:49.962"}"#,
    ) else {
        unreachable!()
    };
    a
}

#[test]
fn dim_location_keeps_nulls_as_nulls() {
    let a = address();
    let dim = dim_location(&a);
    assert_eq!(dim.location_id, 7);
    assert_eq!(dim.address_line_2, None, "NULL, not an empty string");
    assert_eq!(dim.district.as_deref(), Some("Avon"));
    assert_eq!(dim.phone, "1803 637401");
}

#[test]
fn dim_counterparty_takes_the_legal_address_renamed() {
    let Record::Counterparty(c) = record(
        SourceTable::Counterparty,
        r#"{"counterparty_id": 1, "counterparty_legal_name": "Fahey and Sons", "legal_address_id": 7,
            "commercial_contact": "Micheal Toy", "delivery_contact": "Mrs. Lucy Runolfsdottir",
            "created_at": "2022-11-03T14:20:51.563", "last_updated": "2022-11-03T14:20:51.563"}"#,
    ) else {
        unreachable!()
    };
    let dim = dim_counterparty(&c, &address());
    assert_eq!(
        dim,
        DimCounterparty {
            counterparty_id: 1,
            counterparty_legal_name: "Fahey and Sons".into(),
            counterparty_legal_address_line_1: "6826 Herzog Via".into(),
            counterparty_legal_address_line_2: None,
            counterparty_legal_district: Some("Avon".into()),
            counterparty_legal_city: "New Patienceburgh".into(),
            counterparty_legal_postal_code: "28441".into(),
            counterparty_legal_country: "Turkey".into(),
            counterparty_legal_phone_number: "1803 637401".into(),
        }
    );
}

#[test]
fn dim_staff_joins_the_department_and_refuses_a_missing_location() {
    let Record::Staff(s) = record(
        SourceTable::Staff,
        r#"{"staff_id": 3, "first_name": "Jeanette", "last_name": "Erdman", "department_id": 4,
            "email_address": "jeanette.erdman@terrifictotes.com",
            "created_at": "2022-11-03T14:20:51.563", "last_updated": "2022-11-03T14:20:51.563"}"#,
    ) else {
        unreachable!()
    };
    let Record::Department(mut d) = record(
        SourceTable::Department,
        r#"{"department_id": 4, "department_name": "Dispatch", "location": "Leds", "manager": "Mark Siegel",
            "created_at": "2022-11-03T14:20:49.962", "last_updated": "2022-11-03T14:20:49.962"}"#,
    ) else {
        unreachable!()
    };
    let dim = dim_staff(&s, &d).unwrap();
    assert_eq!(
        (dim.department_name.as_str(), dim.location.as_str()),
        ("Dispatch", "Leds")
    );
    assert_eq!(dim.email_address, "jeanette.erdman@terrifictotes.com");
    d.location = None;
    assert!(dim_staff(&s, &d)
        .unwrap_err()
        .reason
        .contains("department 4 has no location"));
}

#[test]
fn currency_names_are_iso_4217_and_other_codes_are_refused() {
    let currency = |code: &str| Currency {
        currency_id: 1,
        currency_code: code.into(),
        last_updated: (date!(2022 - 11 - 03), time!(14:20:49.962)),
    };
    assert_eq!(
        dim_currency(&currency("GBP")).unwrap().currency_name,
        "Pound Sterling"
    );
    assert_eq!(
        dim_currency(&currency("USD")).unwrap().currency_name,
        "US Dollar"
    );
    assert_eq!(
        dim_currency(&currency("EUR")).unwrap().currency_name,
        "Euro"
    );
    let err = dim_currency(&currency("XYZ")).unwrap_err();
    assert_eq!(err.column, "currency_code");
    assert!(
        err.reason
            .contains("\"XYZ\" (currency 1) is not an ISO 4217 code"),
        "{err}"
    );
}

#[test]
fn small_dims_copy_their_columns_and_enums_stay_text() {
    let Record::Design(d) = record(
        SourceTable::Design,
        r#"{"design_id": 8, "created_at": "2022-11-03T14:20:49.962", "design_name": "Wooden",
            "file_location": "/usr", "file_name": "wooden-20220717-npgz.json", "last_updated": "2022-11-03T14:20:49.962"}"#,
    ) else {
        unreachable!()
    };
    assert_eq!(dim_design(&d).file_name, "wooden-20220717-npgz.json");
    let Record::PaymentType(p) = record(
        SourceTable::PaymentType,
        r#"{"payment_type_id": 3, "payment_type_name": "PURCHASE_PAYMENT",
            "created_at": "2022-11-03T14:20:49.962", "last_updated": "2022-11-03T14:20:49.962"}"#,
    ) else {
        unreachable!()
    };
    assert_eq!(dim_payment_type(&p).payment_type_name, "PURCHASE_PAYMENT");
    let Record::Transaction(t) = record(
        SourceTable::Transaction,
        r#"{"transaction_id": 2, "transaction_type": "PURCHASE", "sales_order_id": null, "purchase_order_id": 2,
            "created_at": "2022-11-03T14:20:52.186", "last_updated": "2022-11-03T14:20:52.186"}"#,
    ) else {
        unreachable!()
    };
    assert_eq!(
        dim_transaction(&t),
        DimTransaction {
            transaction_id: 2,
            transaction_type: "PURCHASE".into(),
            sales_order_id: None,
            purchase_order_id: Some(2)
        }
    );
}

const ORDER_V1: &str = r#"{"sales_order_id": 2, "created_at": "2022-11-03T14:20:52.186", "last_updated": "2022-11-03T14:20:52.186",
    "design_id": 3, "staff_id": 19, "counterparty_id": 8, "units_sold": 42972, "unit_price": "3.94", "currency_id": 2,
    "agreed_delivery_date": "2022-11-07", "agreed_payment_date": "2022-11-08", "agreed_delivery_location_id": 8}"#;
const ORDER_V2: &str = r#"{"sales_order_id": 2, "created_at": "2022-11-03T14:20:52.186", "last_updated": "2022-11-04T09:01:00.050",
    "design_id": 3, "staff_id": 19, "counterparty_id": 8, "units_sold": 42973, "unit_price": "3.90", "currency_id": 2,
    "agreed_delivery_date": "2022-11-07", "agreed_payment_date": "2022-11-08", "agreed_delivery_location_id": 8}"#;

#[test]
fn fact_sales_order_splits_timestamps_keeps_milliseconds_and_exact_money() {
    let Record::SalesOrder(o) = record(SourceTable::SalesOrder, ORDER_V1) else {
        unreachable!()
    };
    let fact = fact_sales_order(&o);
    assert_eq!(
        (fact.created_date, fact.created_time),
        (date!(2022 - 11 - 03), time!(14:20:52.186))
    );
    assert_eq!(fact.sales_staff_id, 19, "staff_id is renamed");
    assert_eq!(fact.unit_price, Money(394));
    assert_eq!(fact.unit_price.to_string(), "3.94");
    assert_eq!(fact.agreed_payment_date, date!(2022 - 11 - 08));
    assert_eq!(fact.agreed_delivery_date, date!(2022 - 11 - 07));
}

#[test]
fn each_version_of_an_order_is_its_own_fact_and_a_repeat_is_the_same_version() {
    let v1 = record(SourceTable::SalesOrder, ORDER_V1);
    let v2 = record(SourceTable::SalesOrder, ORDER_V2);
    assert_ne!(
        v1.version(),
        v2.version(),
        "an update is a new version: a new fact row"
    );
    assert_eq!(
        v1.version(),
        record(SourceTable::SalesOrder, ORDER_V1).version(),
        "the same version twice"
    );
    let (Record::SalesOrder(a), Record::SalesOrder(b)) = (v1, v2) else {
        unreachable!()
    };
    let (a, b) = (fact_sales_order(&a), fact_sales_order(&b));
    assert_eq!((a.units_sold, b.units_sold), (42972, 42973));
    assert_eq!(b.last_updated_time, time!(09:01:00.050));
}

#[test]
fn fact_purchase_order_and_fact_payment() {
    let Record::PurchaseOrder(o) = record(
        SourceTable::PurchaseOrder,
        r#"{"purchase_order_id": 1, "created_at": "2022-11-03T14:20:52.187", "last_updated": "2022-11-03T14:20:52.187",
            "staff_id": 12, "counterparty_id": 11, "item_code": "ZDOI5EA", "item_quantity": 371, "item_unit_price": "361.39",
            "currency_id": 2, "agreed_delivery_date": "2022-11-09", "agreed_payment_date": "2022-11-07", "agreed_delivery_location_id": 6}"#,
    ) else {
        unreachable!()
    };
    let fact = fact_purchase_order(&o);
    assert_eq!(fact.staff_id, 12, "not renamed here");
    assert_eq!(fact.item_unit_price, Money(36139));
    assert_eq!(
        fact.dates(),
        [
            date!(2022 - 11 - 03),
            date!(2022 - 11 - 03),
            date!(2022 - 11 - 09),
            date!(2022 - 11 - 07)
        ]
    );

    let Record::Payment(p) = record(
        SourceTable::Payment,
        r#"{"payment_id": 2, "created_at": "2022-11-03T14:20:52.187", "last_updated": "2022-11-03T14:20:52.187",
            "transaction_id": 2, "counterparty_id": 15, "payment_amount": "552548.62", "currency_id": 2, "payment_type_id": 3,
            "paid": false, "payment_date": "2022-11-04", "company_ac_number": 67305075, "counterparty_ac_number": 31622269}"#,
    ) else {
        unreachable!()
    };
    let fact = fact_payment(&p);
    assert_eq!(fact.payment_amount.to_string(), "552548.62");
    assert!(!fact.paid);
    assert_eq!(fact.payment_date, date!(2022 - 11 - 04));
}

#[test]
fn dim_date_is_iso_english_and_contiguous() {
    let d = dim_date(date!(2022 - 11 - 03));
    assert_eq!(
        d,
        DimDate {
            date_id: date!(2022 - 11 - 03),
            year: 2022,
            month: 11,
            day: 3,
            day_of_week: 4,
            day_name: "Thursday".into(),
            month_name: "November".into(),
            quarter: 4,
        }
    );
    assert_eq!(
        dim_date(date!(2024 - 11 - 17)).day_of_week,
        7,
        "Sunday is 7"
    );
    assert_eq!(
        dim_date(date!(2024 - 11 - 18)).day_of_week,
        1,
        "Monday is 1"
    );
    assert_eq!(dim_date(date!(2024 - 03 - 31)).quarter, 1);
    let range: Vec<DimDate> = dim_dates(date!(2024 - 02 - 27), date!(2024 - 03 - 02)).collect();
    let days: Vec<u8> = range.iter().map(|d| d.date_id.day()).collect();
    assert_eq!(days, [27, 28, 29, 1, 2], "leap day included, no gap");
}

#[test]
fn bad_rows_name_their_column() {
    let missing =
        SourceRow::parse(r#"{"currency_id": 1, "last_updated": "2022-11-03T14:20:49.962"}"#)
            .unwrap();
    let err = Record::parse(SourceTable::Currency, &missing).unwrap_err();
    assert_eq!(
        (err.column.as_str(), err.reason.as_str()),
        ("currency_code", "missing")
    );
    let bad_date = ORDER_V1.replace("2022-11-07", "2022-11-31");
    let err = Record::parse(
        SourceTable::SalesOrder,
        &SourceRow::parse(&bad_date).unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.column, "agreed_delivery_date");
    let float_money = ORDER_V1.replace("\"3.94\"", "3.94");
    let err = Record::parse(
        SourceTable::SalesOrder,
        &SourceRow::parse(&float_money).unwrap(),
    )
    .unwrap_err();
    assert_eq!(
        err.column, "unit_price",
        "money must arrive as text, never a float"
    );
}

#[test]
fn dim_date_grows_without_gaps() {
    let (rows, span) = extend_dates(None, (date!(2024 - 01 - 10), date!(2024 - 01 - 12)));
    assert_eq!(
        (rows.len(), span),
        (3, (date!(2024 - 01 - 10), date!(2024 - 01 - 12)))
    );
    // Needs inside the span: nothing to add.
    assert!(
        extend_dates(Some(span), (date!(2024 - 01 - 11), date!(2024 - 01 - 11)))
            .0
            .is_empty()
    );
    // A later and an earlier date: the gaps between are filled too.
    let (rows, span) = extend_dates(Some(span), (date!(2024 - 01 - 07), date!(2024 - 01 - 15)));
    let days: Vec<u8> = rows.iter().map(|d| d.date_id.day()).collect();
    assert_eq!(days, [7, 8, 9, 13, 14, 15]);
    assert_eq!(span, (date!(2024 - 01 - 07), date!(2024 - 01 - 15)));
}
