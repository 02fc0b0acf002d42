//! star-transform's reading of an ingestion object (JSON lines, one source table): any
//! bytes are records or a failure naming a line of the object (never a panic); what
//! transforms is written as Parquet and read back through the warehouse loader's check,
//! row for row.
#![no_main]

use landfall_totesys_star::parquet::WarehouseTable;
use landfall_totesys_star::parquet::{read_checked, versioned_schema, write_versioned};
use landfall_totesys_star::transform::{read_lines, transform, MemoryLookup};
use landfall_totesys_star::{DimCurrency, DimDesign, DimLocation, SourceTable};
use libfuzzer_sys::fuzz_target;

fn round_trip<T: WarehouseTable + Clone>(
    rows: &[(landfall_totesys_star::transform::DimVersion, T)],
) {
    let mut file = Vec::new();
    write_versioned(rows, &mut file).expect("transformed rows write as Parquet");
    let reader = read_checked(
        file.into(),
        T::NAME,
        &versioned_schema(&T::schema()),
        rows.len(),
        1024,
    )
    .expect("the loader accepts what the transform wrote");
    let read: usize = reader
        .map(|b| b.expect("a readable batch").num_rows())
        .sum();
    assert_eq!(read, rows.len());
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, object)) = data.split_first() else {
        return;
    };
    let table = SourceTable::ALL[usize::from(which) % SourceTable::ALL.len()];
    let lines = object.split(|b| *b == b'\n').count();
    match read_lines(table, 1, object) {
        Err(failure) => assert!(failure.error.line >= 1 && failure.error.line <= lines),
        Ok(records) => {
            assert!(records.iter().all(|(line, _)| *line >= 1 && *line <= lines));
            if let Ok((emitted, _)) = transform(records, &MemoryLookup::default()) {
                round_trip::<DimLocation>(&emitted.dim_location);
                round_trip::<DimCurrency>(&emitted.dim_currency);
                round_trip::<DimDesign>(&emitted.dim_design);
            }
        }
    }
});
