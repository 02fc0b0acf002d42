//! The warehouse loader's check of a Parquet file from the processed bucket
//! (`read_checked`: footer, metadata, schema, row count, column chunks inside the file): any
//! bytes are refused with a reason or accepted as the table's file, never a panic.
//!
//! Pages are not decoded here: parquet 59.3 asserts on corrupt page data
//! (`fuzz/known/warehouse_parquet-page-decoding-panic`, "num_bits <= size_of::<T>() * 8"), an
//! open finding README states; with decoding in, this target stops on it within seconds.
#![no_main]

use arrow_array::RecordBatchReader as _;
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
    let accepted = read_checked(bytes::Bytes::copy_from_slice(file), name, schema, rows, 64);
    if let Ok(reader) = accepted {
        let shape = |s: &arrow_schema::Schema| -> Vec<(String, String, bool)> {
            s.fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
                .collect()
        };
        assert_eq!(
            shape(&reader.schema()),
            shape(schema),
            "{name}: accepted another shape"
        );
    }
});
