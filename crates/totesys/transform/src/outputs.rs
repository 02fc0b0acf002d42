//! One object's warehouse rows as Parquet files (one per warehouse table it touches) and the
//! tag that names each attempt (the layout is `landfall_totesys_contract::processed`).

use landfall_totesys_star::parquet::{write, write_versioned, ParquetError, WarehouseTable};
use landfall_totesys_star::transform::{DimVersion, Emitted};
use landfall_totesys_star::DimDate;

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

/// Names one attempt at one object: unique per attempt, so attempts never overwrite (or, when
/// they lose the commit, delete) each other's files — two deliveries of one object can run at
/// once from the same state — and the manifest of the attempt that committed lists exactly
/// what that attempt wrote.
pub fn attempt_tag() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded from the OS's randomness: 48 random bits without a crate.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    format!("{:012x}", hasher.finish() & 0xffff_ffff_ffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attempt_has_its_own_tag() {
        let tags: std::collections::HashSet<String> = (0..1000).map(|_| attempt_tag()).collect();
        assert_eq!(tags.len(), 1000);
    }

    #[test]
    fn only_touched_tables_are_encoded_dates_first_facts_last() {
        let date = time::macros::date!(2024 - 01 - 01);
        let emitted = Emitted {
            dim_design: vec![(
                ((date, time::Time::MIDNIGHT), None),
                landfall_totesys_star::DimDesign {
                    design_id: 1,
                    design_name: "d".into(),
                    file_location: "/l".into(),
                    file_name: "f".into(),
                },
            )],
            ..Emitted::default()
        };
        let encoded = encode(&emitted, &[landfall_totesys_star::dim_date(date)]).unwrap();
        let tables: Vec<_> = encoded.iter().map(|e| (e.table, e.rows)).collect();
        assert_eq!(tables, [("dim_date", 1), ("dim_design", 1)]);
        assert!(encoded.iter().all(|e| e.bytes.starts_with(b"PAR1")));
    }
}
