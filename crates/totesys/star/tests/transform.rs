//! The transform's cascades and its promise: any delivery order, with duplicates and
//! retries, each table's objects against its own part of the state, ends in the same
//! warehouse as the in-order one.

use landfall_totesys_star::transform::{transform, DimVersion, Emitted, MemoryLookup, RecordError};

/// Transforms one object and, when it succeeds, applies its state changes.
fn run(object: Vec<(usize, Record)>, state: &mut MemoryLookup) -> Result<Emitted, RecordError> {
    let (emitted, changes) = transform(object, &*state)?;
    state.apply(&changes);
    Ok(emitted)
}
use landfall_totesys_star::*;
use std::collections::{BTreeMap, BTreeSet};
use time::Date;

fn rec(table: SourceTable, line: &str) -> Record {
    Record::parse(table, &SourceRow::parse(line).expect("a JSON row")).expect("a valid row")
}

fn address(id: i32, phone: &str, stamp: &str) -> Record {
    rec(
        SourceTable::Address,
        &format!(
            r#"{{"address_id": {id}, "address_line_1": "{id} Herzog Via", "address_line_2": null, "district": null,
                "city": "Leeds", "postal_code": "28441", "country": "Turkey", "phone": "{phone}",
                "created_at": "2022-11-03T14:20:49.962", "last_updated": "{stamp}"}}"#
        ),
    )
}

fn counterparty(id: i32, address: i32, stamp: &str) -> Record {
    rec(
        SourceTable::Counterparty,
        &format!(
            r#"{{"counterparty_id": {id}, "counterparty_legal_name": "Fahey and Sons", "legal_address_id": {address},
                "commercial_contact": null, "delivery_contact": null,
                "created_at": "2022-11-03T14:20:51.563", "last_updated": "{stamp}"}}"#
        ),
    )
}

fn department(id: i32, name: &str, stamp: &str) -> Record {
    rec(
        SourceTable::Department,
        &format!(
            r#"{{"department_id": {id}, "department_name": "{name}", "location": "Leeds", "manager": null,
                "created_at": "2022-11-03T14:20:49.962", "last_updated": "{stamp}"}}"#
        ),
    )
}

fn staff(id: i32, department: i32, stamp: &str) -> Record {
    rec(
        SourceTable::Staff,
        &format!(
            r#"{{"staff_id": {id}, "first_name": "Ana", "last_name": "Glover", "department_id": {department},
                "email_address": "ana.glover@terrifictotes.com",
                "created_at": "2022-11-03T14:20:51.563", "last_updated": "{stamp}"}}"#
        ),
    )
}

fn currency(id: i32, code: &str) -> Record {
    rec(
        SourceTable::Currency,
        &format!(
            r#"{{"currency_id": {id}, "currency_code": "{code}", "created_at": "2022-11-03T14:20:49.962",
                "last_updated": "2022-11-03T14:20:49.962"}}"#
        ),
    )
}

fn design(id: i32) -> Record {
    rec(
        SourceTable::Design,
        &format!(
            r#"{{"design_id": {id}, "created_at": "2022-11-03T14:20:49.962", "design_name": "Wooden", "file_location": "/usr",
                "file_name": "wooden.json", "last_updated": "2022-11-03T14:20:49.962"}}"#
        ),
    )
}

fn order(id: i32, units: i32, stamp: &str) -> Record {
    rec(
        SourceTable::SalesOrder,
        &format!(
            r#"{{"sales_order_id": {id}, "created_at": "2022-11-03T14:20:52.186", "last_updated": "{stamp}",
                "design_id": 3, "staff_id": 19, "counterparty_id": 8, "units_sold": {units}, "unit_price": "3.94",
                "currency_id": 1, "agreed_delivery_date": "2022-11-07", "agreed_payment_date": "2022-11-09",
                "agreed_delivery_location_id": 7}}"#
        ),
    )
}

fn object(records: Vec<Record>) -> Vec<(usize, Record)> {
    records
        .into_iter()
        .enumerate()
        .map(|(i, r)| (i + 1, r))
        .collect()
}

/// The warehouse the loader keeps: dims upserted newest-version-wins, facts once per
/// version (the fact table's unique key: a version emitted again is skipped).
#[derive(Debug, Default, PartialEq)]
struct Warehouse {
    dims: BTreeMap<(&'static str, i32), (DimVersion, String)>,
    facts: BTreeSet<String>,
    dates: Option<(Date, Date)>,
}

impl Warehouse {
    fn upsert(&mut self, table: &'static str, id: i32, version: DimVersion, row: String) {
        let slot = self
            .dims
            .entry((table, id))
            .or_insert((version, row.clone()));
        if version > slot.0 {
            *slot = (version, row);
        }
    }

    fn load(&mut self, e: Emitted) {
        for (v, r) in e.dim_location {
            self.upsert("dim_location", r.location_id, v, format!("{r:?}"));
        }
        for (v, r) in e.dim_counterparty {
            self.upsert("dim_counterparty", r.counterparty_id, v, format!("{r:?}"));
        }
        for (v, r) in e.dim_staff {
            self.upsert("dim_staff", r.staff_id, v, format!("{r:?}"));
        }
        for (v, r) in e.dim_currency {
            self.upsert("dim_currency", r.currency_id, v, format!("{r:?}"));
        }
        for (v, r) in e.dim_design {
            self.upsert("dim_design", r.design_id, v, format!("{r:?}"));
        }
        self.facts
            .extend(e.fact_sales_order.iter().map(|f| format!("{f:?}")));
        if let Some((first, last)) = e.dates {
            self.dates = Some(match self.dates {
                None => (first, last),
                Some((a, b)) => (a.min(first), b.max(last)),
            });
        }
    }
}

/// Delivers `objects` in `order`, each against its table's part of the state (as
/// star-transform keeps it); an object that fails as retryable goes to the back of the
/// queue, as SQS would bring it back.
fn deliver(objects: &[Vec<(usize, Record)>], order: &[usize]) -> Warehouse {
    let mut states: BTreeMap<&str, MemoryLookup> = BTreeMap::new();
    let mut warehouse = Warehouse::default();
    let mut queue: std::collections::VecDeque<usize> = order.iter().copied().collect();
    let mut attempts = 0;
    while let Some(next) = queue.pop_front() {
        attempts += 1;
        assert!(attempts < 1000, "never converges");
        let group = objects[next][0].1.version().0.state_group();
        match run(objects[next].clone(), states.entry(group).or_default()) {
            Ok(emitted) => warehouse.load(emitted),
            Err(RecordError {
                retryable: true, ..
            }) => queue.push_back(next),
            Err(other) => panic!("{other}"),
        }
    }
    warehouse
}

fn totesys_objects() -> Vec<Vec<(usize, Record)>> {
    vec![
        object(vec![
            address(7, "0000 111111", "2022-11-03T14:20:49.962"),
            address(9, "0000 999999", "2022-11-03T14:20:49.962"),
        ]),
        object(vec![counterparty(8, 7, "2022-11-03T14:20:51.563")]),
        object(vec![department(4, "Dispatch", "2022-11-03T14:20:49.962")]),
        object(vec![staff(19, 4, "2022-11-03T14:20:51.563")]),
        object(vec![currency(1, "GBP")]),
        object(vec![design(3)]),
        object(vec![order(2, 100, "2022-11-03T14:20:52.186")]),
        // the address changes; the order is updated twice (an overlapping extract repeats one)
        object(vec![address(7, "0000 222222", "2022-11-05T10:00:00.000")]),
        object(vec![
            order(2, 101, "2022-11-06T08:00:00.001"),
            order(2, 100, "2022-11-03T14:20:52.186"),
        ]),
        object(vec![department(4, "Shipping", "2022-11-06T09:00:00.000")]),
        object(vec![counterparty(8, 9, "2022-11-07T12:00:00.000")]),
        // an overlapping extract brings order 2's newest version again
        object(vec![order(2, 101, "2022-11-06T08:00:00.001")]),
    ]
}

#[test]
fn any_delivery_order_gives_the_in_order_warehouse() {
    let objects = totesys_objects();
    let in_order: Vec<usize> = (0..objects.len()).collect();
    let expected = deliver(&objects, &in_order);
    assert_eq!(
        expected.facts.len(),
        2,
        "two versions of order 2, once each"
    );
    let counterparty = &expected.dims[&("dim_counterparty", 8)].1;
    assert!(
        counterparty.contains("0000 999999"),
        "moved to address 9: {counterparty}"
    );
    assert!(expected.dims[&("dim_staff", 19)].1.contains("Shipping"));

    // Reversed, and many pseudo-random orders (a fixed LCG: the test is repeatable).
    let mut orders = vec![in_order.iter().rev().copied().collect::<Vec<_>>()];
    let mut seed: u64 = 42;
    for _ in 0..300 {
        let mut order = in_order.clone();
        for i in (1..order.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            order.swap(i, (seed >> 33) as usize % (i + 1));
        }
        orders.push(order);
    }
    for order in orders {
        assert_eq!(deliver(&objects, &order), expected, "order {order:?}");
    }
}

#[test]
fn a_changed_address_re_emits_its_location_and_counterparties() {
    let mut state = MemoryLookup::default();
    run(
        object(vec![address(7, "0000 111111", "2022-11-03T14:20:49.962")]),
        &mut state,
    )
    .unwrap();
    run(
        object(vec![counterparty(8, 7, "2022-11-03T14:20:51.563")]),
        &mut state,
    )
    .unwrap();
    let changed = run(
        object(vec![address(7, "0000 222222", "2022-11-05T10:00:00.000")]),
        &mut state,
    )
    .unwrap();
    assert_eq!(changed.dim_location.len(), 1);
    assert_eq!(changed.dim_counterparty.len(), 1);
    assert_eq!(
        changed.dim_counterparty[0]
            .1
            .counterparty_legal_phone_number,
        "0000 222222"
    );
    // An older version arriving late changes nothing.
    let late = run(
        object(vec![address(7, "0000 000000", "2022-11-04T00:00:00.000")]),
        &mut state,
    )
    .unwrap();
    assert_eq!(late, Emitted::default());
}

#[test]
fn a_changed_department_re_emits_its_staff() {
    let mut state = MemoryLookup::default();
    run(
        object(vec![department(4, "Dispatch", "2022-11-03T14:20:49.962")]),
        &mut state,
    )
    .unwrap();
    run(
        object(vec![
            staff(19, 4, "2022-11-03T14:20:51.563"),
            staff(20, 4, "2022-11-03T14:20:51.563"),
        ]),
        &mut state,
    )
    .unwrap();
    let changed = run(
        object(vec![department(4, "Shipping", "2022-11-06T09:00:00.000")]),
        &mut state,
    )
    .unwrap();
    let names: Vec<(i32, &str)> = changed
        .dim_staff
        .iter()
        .map(|(_, s)| (s.staff_id, s.department_name.as_str()))
        .collect();
    assert_eq!(names, [(19, "Shipping"), (20, "Shipping")]);
}

#[test]
fn unknown_references_wait_and_bad_codes_fail_for_good() {
    let mut state = MemoryLookup::default();
    let err = run(
        object(vec![
            address(9, "0000 999999", "2022-11-03T14:20:49.962"),
            counterparty(8, 7, "2022-11-03T14:20:51.563"),
        ]),
        &mut state,
    )
    .unwrap_err();
    assert_eq!(
        (err.line, err.column.as_str(), err.retryable),
        (2, "legal_address_id", true)
    );
    assert!(
        err.reason.contains("address 7, which has not arrived yet"),
        "{err}"
    );
    assert!(state.is_empty(), "a failed object changes no state");

    let err = run(
        object(vec![currency(1, "GBP"), currency(2, "XXQ")]),
        &mut state,
    )
    .unwrap_err();
    assert_eq!(
        (err.line, err.column.as_str(), err.retryable),
        (2, "currency_code", false)
    );
}

/// A fact's cost does not grow with the facts before it: it needs no state, so one that
/// arrives before its dimension rows is emitted (the warehouse loader holds it until they
/// are there), and one delivered again is emitted again (the warehouse keeps one). The
/// state keeps joined rows only: nothing of a currency, a design or an order.
#[test]
fn facts_and_unjoined_rows_leave_no_state_and_are_emitted_whenever_delivered() {
    let mut state = MemoryLookup::default();
    let facts = object(vec![order(2, 100, "2022-11-03T14:20:52.186")]);
    for _ in 0..2 {
        let emitted = run(facts.clone(), &mut state).unwrap();
        assert_eq!(emitted.fact_sales_order.len(), 1);
    }
    let emitted = run(object(vec![currency(1, "GBP"), design(3)]), &mut state).unwrap();
    assert_eq!(
        (emitted.dim_currency.len(), emitted.dim_design.len()),
        (1, 1)
    );
    assert!(state.is_empty(), "{state:?}");
    run(
        object(vec![address(7, "0000 111111", "2022-11-03T14:20:49.962")]),
        &mut state,
    )
    .unwrap();
    assert_eq!(state.len(), 1);
}

#[test]
fn facts_cover_their_dates() {
    let mut state = MemoryLookup::default();
    for o in totesys_objects().into_iter().take(5) {
        run(o, &mut state).unwrap();
    }
    let emitted = run(
        object(vec![order(2, 100, "2022-11-03T14:20:52.186")]),
        &mut state,
    )
    .unwrap();
    assert_eq!(
        emitted.dates,
        Some((
            time::macros::date!(2022 - 11 - 03),
            time::macros::date!(2022 - 11 - 09)
        ))
    );
}

#[test]
fn objects_are_read_with_errors_naming_table_sequence_line_and_column() {
    use landfall_totesys_star::transform::{missing_sequences, read_lines};
    let text = format!(
        "{}\n{}\n",
        r#"{"currency_id": 1, "currency_code": "GBP", "created_at": "2022-11-03T14:20:49.962", "last_updated": "2022-11-03T14:20:49.962"}"#,
        r#"{"currency_id": 2, "created_at": "2022-11-03T14:20:49.962", "last_updated": "2022-11-03T14:20:49.962"}"#
    );
    let err = read_lines(SourceTable::Currency, 12, text.as_bytes()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "currency sequence 12, line 2, column currency_code: missing"
    );
    let good = read_lines(
        SourceTable::Currency,
        12,
        text.lines().next().unwrap().as_bytes(),
    )
    .unwrap();
    assert_eq!(good.len(), 1);
    assert_eq!(good[0].0, 1);

    assert_eq!(missing_sequences(Some(3), 4), Vec::<u64>::new());
    assert_eq!(missing_sequences(Some(3), 7), vec![4, 5, 6]);
    assert_eq!(
        missing_sequences(Some(7), 5),
        Vec::<u64>::new(),
        "a late object fills a gap"
    );
    assert_eq!(missing_sequences(None, 1), Vec::<u64>::new());
}

#[test]
fn big_objects_keep_line_numbers_and_report_their_first_bad_line() {
    use landfall_totesys_star::transform::read_lines;
    let line = |id: usize| {
        format!(
            r#"{{"design_id": {id}, "design_name": "Wooden \"oak\"", "file_location": "/d", "file_name": "d.json", "created_at": "2022-11-03T14:20:49.962", "last_updated": "2022-11-03T14:20:49.962"}}"#
        )
    };
    // Past several parsing batches, with blank lines that still count as lines.
    let mut text = String::new();
    for id in 1..=20_000 {
        text.push_str(&if id % 5000 == 0 {
            String::new()
        } else {
            line(id)
        });
        text.push('\n');
    }
    let records = read_lines(SourceTable::Design, 3, text.as_bytes()).unwrap();
    assert_eq!(records.len(), 20_000 - 4);
    assert!(records.windows(2).all(|w| w[0].0 < w[1].0));
    match &records[9_000] {
        (9_002, Record::Design(d)) => {
            assert_eq!(d.design_id, 9_002);
            assert_eq!(d.design_name, "Wooden \"oak\"", "escaped text is decoded");
        }
        other => panic!("{other:?}"),
    }

    let mut broken: Vec<String> = text.lines().map(str::to_owned).collect();
    broken[17_999] = broken[17_999].replace("\"design_name\"", "\"name\"");
    broken[12_344] = broken[12_344].replace("2022-11-03T", "2022-13-03T");
    let err = read_lines(SourceTable::Design, 3, broken.join("\n").as_bytes()).unwrap_err();
    assert_eq!(
        err.error.line, 12_345,
        "the first bad line, not the first batch to fail"
    );
    assert_eq!(err.error.column, "last_updated");
}

#[test]
fn a_consumer_that_stops_early_stops_the_reading() {
    use landfall_totesys_star::transform::with_lines;
    let line = r#"{"currency_id": 1, "currency_code": "GBP", "created_at": "2022-11-03T14:20:49.962", "last_updated": "2022-11-03T14:20:49.962"}"#;
    let text = format!("{line}\n").repeat(50_000);
    let taken = with_lines(SourceTable::Currency, 1, text.as_bytes(), |records| {
        records
            .take(10)
            .map(|(number, _)| number)
            .collect::<Vec<_>>()
    })
    .unwrap();
    assert_eq!(taken, (1..=10).collect::<Vec<_>>());
}
