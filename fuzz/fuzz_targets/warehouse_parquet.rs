//! The warehouse loader's reading of a Parquet file from the processed bucket: any bytes
//! are refused with a reason or read as batches of exactly the table's columns, and a file
//! read to its end holds the rows its metadata (and so the manifest check) promised.
#![no_main]

use arrow_schema::SchemaRef;
use landfall_totesys_star::parquet::{read_checked, versioned_schema, WarehouseTable};
use landfall_totesys_star::*;
use libfuzzer_sys::fuzz_target;

/// Every warehouse table's file schema: dimensions carry the two version columns.
fn tables() -> Vec<(&'static str, SchemaRef)> {
    fn dim<T: WarehouseTable>() -> (&'static str, SchemaRef) {
        (T::NAME, versioned_schema(&T::schema()))
    }
    fn plain<T: WarehouseTable>() -> (&'static str, SchemaRef) {
        (T::NAME, T::schema())
    }
    vec![
        plain::<DimDate>(),
        dim::<DimStaff>(),
        dim::<DimLocation>(),
        dim::<DimCurrency>(),
        dim::<DimDesign>(),
        dim::<DimCounterparty>(),
        dim::<DimPaymentType>(),
        dim::<DimTransaction>(),
        plain::<FactSalesOrder>(),
        plain::<FactPurchaseOrder>(),
        plain::<FactPayment>(),
    ]
}

fuzz_target!(|data: &[u8]| {
    let [which, rows, file @ ..] = data else {
        return;
    };
    let tables = tables();
    let (name, schema) = &tables[usize::from(*which) % tables.len()];
    let rows = usize::from(*rows);
    let Ok(reader) = read_checked(bytes::Bytes::copy_from_slice(file), name, schema, rows, 64)
    else {
        return;
    };
    let mut read = 0;
    for batch in reader {
        let Ok(batch) = batch else {
            return; // refused mid-file: the loader aborts its COPY
        };
        let shape = |s: &arrow_schema::Schema| -> Vec<(String, String, bool)> {
            s.fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
                .collect()
        };
        assert_eq!(shape(&batch.schema()), shape(schema));
        read += batch.num_rows();
    }
    assert_eq!(
        read, rows,
        "{name}: the file read to its end holds other rows than promised"
    );
});
