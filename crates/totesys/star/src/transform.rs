//! One ingestion object's records → the warehouse rows they change, given what the
//! transform remembers (`Lookup`): the latest version of every row of the joined pairs
//! (address and counterparty, department and staff), and nothing else.
//!
//! Why the state holds so little: an object's cost must follow the object, not the history
//! behind it. So what the warehouse already decides is left to it: a fact version emitted
//! again is skipped by the fact table's unique key (id, last_updated), a dimension version
//! older than the one held loses to it (`dim_version`), and a fact whose dimension row has
//! not arrived waits in the warehouse loader's reference check. Only a join needs memory:
//! a counterparty's row shows its legal address, so a new address re-emits the counterparties
//! there and a new counterparty needs its address (the same for departments and staff).
//!
//! Why the order of deliveries does not matter: the state keeps, per joined row, only the
//! version with the greatest `last_updated` (a max-register: merging is commutative,
//! associative and idempotent), a joined record changes the output only when it becomes that
//! latest version, and every emitted dimension row carries a `DimVersion` made of the
//! `last_updated` values it was built from. Each component only grows, so the loader's
//! "newer version wins" upsert ends in the same row whatever order the objects came in.
//! State changes are returned, not made: the caller applies them after the object's output
//! is stored, so a failed object leaves no trace (a property test delivering 300 shuffled
//! orders with retries found exactly that bug in a first version, where an object failing
//! halfway had already advanced the state and lost a dimension row). A counterparty whose
//! address (a staff member whose department) the state has never seen fails the object as
//! retryable: the other object is on its way (S3 notifications are unordered), and the
//! redelivery finds it.

mod lines;
mod state;

pub use lines::{read_lines, with_lines, ObjectError};
pub use state::MemoryLookup;

use crate::model::*;
// Keys are small integers and timestamps of our own data, so a fast non-keyed hash is right.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use time::Date;

/// Orders emitted versions of one dimension row: the row's own `last_updated`, then that of
/// the row it joins (the legal address, the department), if any.
pub type DimVersion = (Stamp, Option<Stamp>);

/// What the transform remembers between objects (read side): the rows of the joined tables
/// (`SourceTable::joined`). An object needs only its own table's `state_group` of it.
/// `transform` never writes it: it returns the `Changes`, which the caller applies only
/// after the object's output is stored — so an object that fails changes nothing, and its
/// retry starts from the same state.
pub trait Lookup {
    /// The latest version of a joined row.
    fn latest(&self, table: SourceTable, id: i32) -> Option<Record>;
    fn counterparties_at(&self, address_id: i32) -> Vec<Counterparty>;
    fn staff_in(&self, department_id: i32) -> Vec<Staff>;
}

/// What one object adds to the state: newer versions of joined rows, each applied only if
/// still newer (a max-register, so concurrent and repeated applications agree).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Changes {
    pub records: Vec<Record>,
}

/// The base state with this object's rows on top: the joined rows it changes, and the
/// versions of every other row and fact it emitted (an overlapping extract repeats some).
struct Overlay<'a, L> {
    base: &'a L,
    records: HashMap<(SourceTable, i32), Record>,
    facts: HashSet<(SourceTable, i32, Stamp)>,
}

impl<L: Lookup> Overlay<'_, L> {
    fn latest(&self, table: SourceTable, id: i32) -> Option<Record> {
        self.records
            .get(&(table, id))
            .cloned()
            .or_else(|| self.base.latest(table, id))
    }

    /// Keeps `record` when it is newer than the latest known version; true when kept. Rows
    /// of tables that are not joined are known only within this object (the base holds none):
    /// an older version than the warehouse's is emitted, and loses there.
    fn remember(&mut self, record: &Record) -> bool {
        let (table, id, stamp) = record.version();
        if self
            .latest(table, id)
            .is_some_and(|known| known.version().2 >= stamp)
        {
            return false;
        }
        self.records.insert((table, id), record.clone());
        true
    }

    /// True the first time this object brings a fact version; the warehouse's unique key
    /// skips one that an earlier object brought.
    fn first_time(&mut self, version: (SourceTable, i32, Stamp)) -> bool {
        self.facts.insert(version)
    }

    fn address(&self, id: i32) -> Option<Address> {
        match self.latest(SourceTable::Address, id) {
            Some(Record::Address(a)) => Some(a),
            _ => None,
        }
    }

    fn department(&self, id: i32) -> Option<Department> {
        match self.latest(SourceTable::Department, id) {
            Some(Record::Department(d)) => Some(d),
            _ => None,
        }
    }

    fn counterparties_at(&self, address_id: i32) -> Vec<Counterparty> {
        let mut found: Vec<Counterparty> = self
            .base
            .counterparties_at(address_id)
            .into_iter()
            .filter(|c| {
                !self
                    .records
                    .contains_key(&(SourceTable::Counterparty, c.counterparty_id))
            })
            .chain(self.records.values().filter_map(|r| match r {
                Record::Counterparty(c) if c.legal_address_id == address_id => Some(c.clone()),
                _ => None,
            }))
            .collect();
        found.sort_by_key(|c| c.counterparty_id);
        found
    }

    fn staff_in(&self, department_id: i32) -> Vec<Staff> {
        let mut found: Vec<Staff> = self
            .base
            .staff_in(department_id)
            .into_iter()
            .filter(|s| !self.records.contains_key(&(SourceTable::Staff, s.staff_id)))
            .chain(self.records.values().filter_map(|r| match r {
                Record::Staff(s) if s.department_id == department_id => Some(s.clone()),
                _ => None,
            }))
            .collect();
        found.sort_by_key(|s| s.staff_id);
        found
    }
}

/// The warehouse rows one object produces.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Emitted {
    pub dim_location: Vec<(DimVersion, DimLocation)>,
    pub dim_counterparty: Vec<(DimVersion, DimCounterparty)>,
    pub dim_staff: Vec<(DimVersion, DimStaff)>,
    pub dim_currency: Vec<(DimVersion, DimCurrency)>,
    pub dim_design: Vec<(DimVersion, DimDesign)>,
    pub dim_payment_type: Vec<(DimVersion, DimPaymentType)>,
    pub dim_transaction: Vec<(DimVersion, DimTransaction)>,
    pub fact_sales_order: Vec<FactSalesOrder>,
    pub fact_purchase_orders: Vec<FactPurchaseOrder>,
    pub fact_payment: Vec<FactPayment>,
    /// The earliest and latest date the facts reference (dim_date covers them).
    pub dates: Option<(Date, Date)>,
}

impl Emitted {
    fn cover(&mut self, dates: &[Date]) {
        for &d in dates {
            self.dates = Some(match self.dates {
                None => (d, d),
                Some((first, last)) => (first.min(d), last.max(d)),
            });
        }
    }
}

/// A record that cannot be transformed, by its 1-based line in the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {reason}")]
pub struct RecordError {
    pub line: usize,
    pub column: String,
    pub reason: String,
    /// True when the record may pass later (a row it refers to has not arrived yet).
    pub retryable: bool,
}

/// Transforms one object's records (with their line numbers), in order: the rows to write
/// and the state changes to apply once they are written.
pub fn transform(
    records: impl IntoIterator<Item = (usize, Record)>,
    state: &impl Lookup,
) -> Result<(Emitted, Changes), RecordError> {
    let records = records.into_iter();
    let mut out = Emitted::default();
    let mut overlay = Overlay {
        base: state,
        records: HashMap::default(),
        // Sized up front: an object of facts records one version per line.
        facts: HashSet::with_capacity_and_hasher(records.size_hint().0, Default::default()),
    };
    // An overlapping extract repeats versions; the same version twice in one object is one:
    // a repeated dim version is not newer than itself (`remember`), a repeated fact version
    // is not new (`first_time`).
    for (line, record) in records {
        apply(line, &record, &mut overlay, &mut out)?;
    }
    let changes = Changes {
        records: overlay
            .records
            .into_values()
            .filter(|r| r.version().0.joined())
            .collect(),
    };
    Ok((out, changes))
}

fn missing(line: usize, column: &str, table: SourceTable, id: i32) -> RecordError {
    RecordError {
        line,
        column: column.to_owned(),
        reason: format!("refers to {} {id}, which has not arrived yet", table.name()),
        retryable: true,
    }
}

fn bad(line: usize, err: crate::row::FieldError) -> RecordError {
    RecordError {
        line,
        column: err.column,
        reason: err.reason,
        retryable: false,
    }
}

fn apply<L: Lookup>(
    line: usize,
    record: &Record,
    state: &mut Overlay<'_, L>,
    out: &mut Emitted,
) -> Result<(), RecordError> {
    match record {
        Record::Address(a) => {
            if state.remember(record) {
                out.dim_location
                    .push(((a.last_updated, None), dim_location(a)));
                // Every counterparty whose legal address this is shows the new address.
                for c in state.counterparties_at(a.address_id) {
                    out.dim_counterparty.push((
                        (c.last_updated, Some(a.last_updated)),
                        dim_counterparty(&c, a),
                    ));
                }
            }
        }
        Record::Counterparty(c) => {
            let address = state.address(c.legal_address_id).ok_or_else(|| {
                missing(
                    line,
                    "legal_address_id",
                    SourceTable::Address,
                    c.legal_address_id,
                )
            })?;
            if state.remember(record) {
                out.dim_counterparty.push((
                    (c.last_updated, Some(address.last_updated)),
                    dim_counterparty(c, &address),
                ));
            }
        }
        Record::Department(d) => {
            if state.remember(record) {
                for s in state.staff_in(d.department_id) {
                    let row = dim_staff(&s, d).map_err(|e| bad(line, e))?;
                    out.dim_staff
                        .push(((s.last_updated, Some(d.last_updated)), row));
                }
            }
        }
        Record::Staff(s) => {
            let department = state.department(s.department_id).ok_or_else(|| {
                missing(
                    line,
                    "department_id",
                    SourceTable::Department,
                    s.department_id,
                )
            })?;
            let row = dim_staff(s, &department).map_err(|e| bad(line, e))?;
            if state.remember(record) {
                out.dim_staff
                    .push(((s.last_updated, Some(department.last_updated)), row));
            }
        }
        Record::Currency(c) => {
            let row = dim_currency(c).map_err(|e| bad(line, e))?;
            if state.remember(record) {
                out.dim_currency.push(((c.last_updated, None), row));
            }
        }
        Record::Design(d) => {
            if state.remember(record) {
                out.dim_design.push(((d.last_updated, None), dim_design(d)));
            }
        }
        Record::PaymentType(p) => {
            if state.remember(record) {
                out.dim_payment_type
                    .push(((p.last_updated, None), dim_payment_type(p)));
            }
        }
        Record::Transaction(t) => {
            if state.remember(record) {
                out.dim_transaction
                    .push(((t.last_updated, None), dim_transaction(t)));
            }
        }
        Record::SalesOrder(o) => {
            if state.first_time(record.version()) {
                let fact = fact_sales_order(o);
                out.cover(&fact.dates());
                out.fact_sales_order.push(fact);
            }
        }
        Record::PurchaseOrder(o) => {
            if state.first_time(record.version()) {
                let fact = fact_purchase_order(o);
                out.cover(&fact.dates());
                out.fact_purchase_orders.push(fact);
            }
        }
        Record::Payment(p) => {
            if state.first_time(record.version()) {
                let fact = fact_payment(p);
                out.cover(&fact.dates());
                out.fact_payment.push(fact);
            }
        }
    }
    Ok(())
}

/// The sequence ids skipped between the last one processed and this one (the extract never
/// skips one, so a gap means a lost or not yet delivered object; out-of-order delivery shows
/// as a gap that the late object then fills).
pub fn missing_sequences(last_processed: Option<u64>, sequence: u64) -> Vec<u64> {
    match last_processed {
        Some(last) if sequence > last + 1 => (last + 1..sequence).collect(),
        _ => Vec::new(),
    }
}
