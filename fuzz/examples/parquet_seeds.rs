//! Writes warehouse_parquet's seed inputs (seeds/warehouse_parquet/): real Parquet files as
//! star-transform writes them, from star_json_lines's seed objects, each behind the two
//! bytes the target reads first (the table's index in its list, the row count). Rerun it
//! when the Parquet writer changes: `cargo run --manifest-path fuzz/Cargo.toml --example
//! parquet_seeds`.

use landfall_totesys_star::parquet::{write_versioned, WarehouseTable};
use landfall_totesys_star::transform::{read_lines, transform, DimVersion, MemoryLookup};
use landfall_totesys_star::SourceTable;
use std::path::Path;

fn seed<T: WarehouseTable + Clone>(index: u8, rows: &[(DimVersion, T)], out: &Path) {
    if rows.is_empty() {
        return;
    }
    let mut file = vec![index, u8::try_from(rows.len()).expect("a few rows")];
    write_versioned(rows, &mut file).expect("Parquet");
    std::fs::write(out.join(T::NAME), file).expect("writing a seed");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let out = root.join("warehouse_parquet");
    std::fs::create_dir_all(&out).expect("the seeds folder");
    for (name, table) in [
        ("address", SourceTable::Address),
        ("currency", SourceTable::Currency),
        ("design", SourceTable::Design),
    ] {
        let object = std::fs::read(root.join("star_json_lines").join(name)).expect("a seed");
        let records = read_lines(table, 1, &object[1..]).expect("the seed object reads");
        let (emitted, _) = transform(records, &MemoryLookup::default()).expect("it transforms");
        // Indices of warehouse_parquet's table list.
        seed(2, &emitted.dim_location, &out);
        seed(3, &emitted.dim_currency, &out);
        seed(4, &emitted.dim_design, &out);
    }
}
