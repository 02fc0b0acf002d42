//! The transform's state in memory, and as star-transform stores it.

use super::*;

/// The state in memory: the latest version of every joined row. Serialisable: star-transform
/// keeps each `state_group`'s part as one S3 object that it replaces atomically (see
/// `landfall_totesys_transform::state`).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(from = "StoredLookup", into = "StoredLookup")]
pub struct MemoryLookup {
    latest: HashMap<(SourceTable, i32), Record>,
}

/// `MemoryLookup` as stored: a list in a stable order (JSON object keys must be strings).
/// A state stored before the state was split by table carries `facts` too; they are no
/// longer needed (the warehouse's unique key skips a fact version it holds), so ignored.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredLookup {
    rows: Vec<Record>,
}

impl From<MemoryLookup> for StoredLookup {
    fn from(state: MemoryLookup) -> StoredLookup {
        let mut rows: Vec<_> = state.latest.into_iter().collect();
        rows.sort_by_key(|(key, _)| *key);
        StoredLookup {
            rows: rows.into_iter().map(|(_, record)| record).collect(),
        }
    }
}

impl From<StoredLookup> for MemoryLookup {
    fn from(stored: StoredLookup) -> MemoryLookup {
        let mut state = MemoryLookup::default();
        state.apply(&Changes {
            records: stored.rows,
        });
        state
    }
}

impl MemoryLookup {
    /// How many joined rows it holds.
    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    /// Applies an object's changes (after its output was stored). Rows of tables that are not
    /// joined are not kept: nothing reads them.
    pub fn apply(&mut self, changes: &Changes) {
        for record in &changes.records {
            let (table, id, stamp) = record.version();
            let newer = table.joined()
                && self
                    .latest
                    .get(&(table, id))
                    .is_none_or(|known| known.version().2 < stamp);
            if newer {
                self.latest.insert((table, id), record.clone());
            }
        }
    }

    /// Only the rows of the tables in `group` (a `SourceTable::state_group`).
    pub fn only(mut self, group: &str) -> MemoryLookup {
        self.latest
            .retain(|(table, _), _| table.state_group() == group);
        self
    }
}

impl Lookup for MemoryLookup {
    fn latest(&self, table: SourceTable, id: i32) -> Option<Record> {
        self.latest.get(&(table, id)).cloned()
    }

    fn counterparties_at(&self, address_id: i32) -> Vec<Counterparty> {
        self.latest
            .values()
            .filter_map(|r| match r {
                Record::Counterparty(c) if c.legal_address_id == address_id => Some(c.clone()),
                _ => None,
            })
            .collect()
    }

    fn staff_in(&self, department_id: i32) -> Vec<Staff> {
        self.latest
            .values()
            .filter_map(|r| match r {
                Record::Staff(s) if s.department_id == department_id => Some(s.clone()),
                _ => None,
            })
            .collect()
    }
}
