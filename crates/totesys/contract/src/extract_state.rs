//! A table's extraction state, one JSON parameter per table in SSM Parameter Store
//! (`landfall_aws::parameters`): the watermark (the last extracted
//! `last_updated`, exclusive lower bound of the next run), the last sequence id written, and
//! the run in progress. The run is recorded before its object is written, so a crash between
//! the object and the state update is retried with the same key and bounds: the object is
//! overwritten, never written under a second sequence id, and nothing is skipped.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableState {
    /// `YYYY-MM-DDTHH:MM:SS.mmm`, in the source's own clock; None before the first run.
    pub watermark: Option<String>,
    /// The sequence id of the last object written (0: none yet).
    pub sequence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingRun>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingRun {
    /// The sequence id and key of the object this run writes next.
    pub sequence: u64,
    pub key: String,
    /// Inclusive upper bound of the rows this run extracts.
    pub upper: String,
    /// A run too big for one object writes several, in (cursor, key) order: the last row the
    /// objects written so far hold; the next starts after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Position>,
}

/// A row's place in a run's (cursor, key) order, both as text.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Position {
    pub cursor: String,
    pub key: String,
}
