//! The processed bucket's layout. star-transform writes one Parquet file per warehouse table
//! an ingestion object touches, `<warehouse table>/<source stem>-<tag>.parquet`, and a
//! manifest listing them, which moves through stages as prefixes:
//!
//! `pending/` (written, state not committed yet) → `ready/` (committed: the loader's input)
//! → `loaded/` (in the warehouse; the load ledger is the truth, the move is housekeeping so
//! `ready/` stays short) or `failed/` (could never load; see the runbook). `decoding/` marks
//! the manifest a loader is decoding, so one that kills the loader is quarantined, not retried.
//!
//! The tag names one transform attempt, so attempts never overwrite each other's files.

use serde::{Deserialize, Serialize};

pub const PENDING_PREFIX: &str = "pending/";
pub const READY_PREFIX: &str = "ready/";
pub const LOADED_PREFIX: &str = "loaded/";
pub const FAILED_PREFIX: &str = "failed/";
/// A manifest being decoded: written before its Parquet files are decoded and removed after.
/// One still there when a run starts on the manifest means the last run died decoding it.
pub const DECODING_PREFIX: &str = "decoding/";

/// `<warehouse table>/<source key without .jsonl.gz>-<tag>.parquet`.
pub fn output_key(table: &str, stem: &str, tag: &str) -> String {
    format!("{table}/{stem}-{tag}.parquet")
}

/// `<stage prefix><source stem>-<tag>.json`.
pub fn manifest_key(prefix: &str, stem: &str, tag: &str) -> String {
    format!("{prefix}{stem}-{tag}.json")
}

/// The same manifest's key in another stage (None: `key` is not under `from`).
pub fn restage(key: &str, from: &str, to: &str) -> Option<String> {
    key.strip_prefix(from).map(|rest| format!("{to}{rest}"))
}

/// One ingestion object's warehouse rows: written after the transform's state commit, so
/// everything it lists is final.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// The ingestion object (`s3://bucket/key`) and its version.
    pub source: String,
    pub source_version: String,
    /// The source table and the object's sequence id.
    pub table: String,
    pub sequence: u64,
    /// The extract run's upper bound, when the object carries it: once this manifest is
    /// loaded, the table is complete in the warehouse up to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upper: Option<String>,
    /// In the order they must load: dim_date, the other dims, then the facts.
    pub outputs: Vec<Output>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Output {
    /// The warehouse table.
    pub table: String,
    /// The Parquet object's key in the processed bucket.
    pub key: String,
    pub rows: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_the_table_the_source_object_and_the_stage() {
        let stem = "sales_order/2024-01-02/sales_order-0000000003";
        assert_eq!(
            output_key("fact_sales_order", stem, "00ab"),
            "fact_sales_order/sales_order/2024-01-02/sales_order-0000000003-00ab.parquet"
        );
        let ready = manifest_key(READY_PREFIX, stem, "00ab");
        assert_eq!(
            ready,
            "ready/sales_order/2024-01-02/sales_order-0000000003-00ab.json"
        );
        assert_eq!(
            restage(&ready, READY_PREFIX, LOADED_PREFIX).as_deref(),
            Some("loaded/sales_order/2024-01-02/sales_order-0000000003-00ab.json")
        );
        assert_eq!(restage(&ready, PENDING_PREFIX, READY_PREFIX), None);
    }

    #[test]
    fn manifests_without_an_upper_bound_still_read() {
        let json = r#"{"source":"s3://b/k","source_version":"v","table":"staff","sequence":1,
            "outputs":[{"table":"dim_staff","key":"dim_staff/k-1.parquet","rows":2}]}"#;
        let manifest: Manifest = serde_json::from_str(json).unwrap();
        assert_eq!(manifest.upper, None);
    }
}
