//! One object's warehouse rows as Parquet files (one per warehouse table it touches) and the
//! ready marker (manifest) that lists them for the warehouse loader.

use landfall_star::parquet::{write, write_versioned, ParquetError, WarehouseTable};
use landfall_star::transform::{DimVersion, Emitted};
use landfall_star::DimDate;
use serde::{Deserialize, Serialize};

/// One Parquet file of one warehouse table.
pub struct Encoded {
    pub table: &'static str,
    pub rows: usize,
    pub bytes: Vec<u8>,
}

/// A table that could not be encoded, and why.
pub type EncodeError = (&'static str, ParquetError);

fn dims<T: WarehouseTable + Clone>(
    rows: &[(DimVersion, T)],
    out: &mut Vec<Encoded>,
) -> Result<(), EncodeError> {
    if !rows.is_empty() {
        let mut bytes = Vec::new();
        write_versioned(rows, &mut bytes).map_err(|e| (T::NAME, e))?;
        out.push(Encoded {
            table: T::NAME,
            rows: rows.len(),
            bytes,
        });
    }
    Ok(())
}

fn plain<T: WarehouseTable>(rows: &[T], out: &mut Vec<Encoded>) -> Result<(), EncodeError> {
    if !rows.is_empty() {
        let mut bytes = Vec::new();
        write(rows, &mut bytes).map_err(|e| (T::NAME, e))?;
        out.push(Encoded {
            table: T::NAME,
            rows: rows.len(),
            bytes,
        });
    }
    Ok(())
}

/// Every non-empty warehouse table of `emitted` (and the new dim_date rows) as Parquet.
pub fn encode(emitted: &Emitted, dates: &[DimDate]) -> Result<Vec<Encoded>, EncodeError> {
    let mut out = Vec::new();
    plain(dates, &mut out)?;
    dims(&emitted.dim_location, &mut out)?;
    dims(&emitted.dim_counterparty, &mut out)?;
    dims(&emitted.dim_staff, &mut out)?;
    dims(&emitted.dim_currency, &mut out)?;
    dims(&emitted.dim_design, &mut out)?;
    dims(&emitted.dim_payment_type, &mut out)?;
    dims(&emitted.dim_transaction, &mut out)?;
    plain(&emitted.fact_sales_order, &mut out)?;
    plain(&emitted.fact_purchase_orders, &mut out)?;
    plain(&emitted.fact_payment, &mut out)?;
    Ok(out)
}

/// Names one attempt at one source object version: a digest of the version and of the state
/// it was transformed against. Attempts never overwrite each other's files, so the manifest of
/// the attempt that committed lists exactly what that attempt wrote.
pub fn attempt_tag(version: &str, state_etag: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(version)
        .chain_update([0])
        .chain_update(state_etag.unwrap_or("-"))
        .finalize();
    hex::encode(&digest[..6])
}

/// `<warehouse table>/<source key without .jsonl.gz>-<tag>.parquet`: the table and the source
/// object it came from.
pub fn output_key(table: &str, stem: &str, tag: &str) -> String {
    format!("{table}/{stem}-{tag}.parquet")
}

/// Ready markers: the loader lists this prefix. Written only after the state commit.
pub const READY_PREFIX: &str = "ready/";
/// The same manifest before its attempt commits.
pub const PENDING_PREFIX: &str = "pending/";

pub fn manifest_key(prefix: &str, stem: &str, tag: &str) -> String {
    format!("{prefix}{stem}-{tag}.json")
}

/// A ready marker: written after the state commit, so everything it lists is final.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    /// The ingestion object (`s3://bucket/key`) and its version.
    pub source: String,
    pub source_version: String,
    pub table: String,
    pub sequence: u64,
    /// In the order the loader must load them: dim_date, the other dims, then the facts.
    pub outputs: Vec<Output>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Output {
    pub table: String,
    pub key: String,
    pub rows: usize,
}
