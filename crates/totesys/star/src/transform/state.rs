//! The transform's state in memory, and as star-transform stores it.

use super::*;

/// The state in memory. Serialisable: star-transform keeps it as one S3 object that it
/// replaces atomically (see `landfall_totesys_transform::state`).
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
#[serde(from = "StoredLookup", into = "StoredLookup")]
pub struct MemoryLookup {
    latest: HashMap<(SourceTable, i32), Record>,
    facts: HashSet<(SourceTable, i32, Stamp)>,
}

/// `MemoryLookup` as stored: lists in a stable order (JSON object keys must be strings).
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredLookup {
    rows: Vec<Record>,
    facts: Vec<(SourceTable, i32, Stamp)>,
}

impl From<MemoryLookup> for StoredLookup {
    fn from(state: MemoryLookup) -> StoredLookup {
        let mut rows: Vec<_> = state.latest.into_iter().collect();
        rows.sort_by_key(|(key, _)| *key);
        let mut facts: Vec<_> = state.facts.into_iter().collect();
        facts.sort();
        StoredLookup {
            rows: rows.into_iter().map(|(_, record)| record).collect(),
            facts,
        }
    }
}

impl From<StoredLookup> for MemoryLookup {
    fn from(stored: StoredLookup) -> MemoryLookup {
        let mut state = MemoryLookup::default();
        state.apply(&Changes {
            records: stored.rows,
            facts: stored.facts,
        });
        state
    }
}

impl MemoryLookup {
    /// How many row versions and fact versions it holds.
    pub fn sizes(&self) -> (usize, usize) {
        (self.latest.len(), self.facts.len())
    }

    /// Applies an object's changes (after its output was stored).
    pub fn apply(&mut self, changes: &Changes) {
        for record in &changes.records {
            let (table, id, stamp) = record.version();
            let newer = self
                .latest
                .get(&(table, id))
                .is_none_or(|known| known.version().2 < stamp);
            if newer {
                self.latest.insert((table, id), record.clone());
            }
        }
        self.facts.extend(changes.facts.iter().copied());
    }
}

impl Lookup for MemoryLookup {
    fn latest(&self, table: SourceTable, id: i32) -> Option<Record> {
        self.latest.get(&(table, id)).cloned()
    }

    fn knows(&self, table: SourceTable, id: i32) -> bool {
        self.latest.contains_key(&(table, id))
    }

    fn fact_seen(&self, version: (SourceTable, i32, Stamp)) -> bool {
        self.facts.contains(&version)
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
