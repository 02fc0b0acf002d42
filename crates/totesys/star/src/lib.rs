//! The totesys → warehouse contract (../shared/spec/README.md), as code: typed source
//! versions read from db-extract's JSON lines with errors that name the column, and the
//! mappings to the eleven warehouse tables (dims: latest version; facts: one row per
//! version; dim_date: a contiguous range), and those rows as Parquet with the warehouse's exact
//! types. No I/O of its own, so every rule has a unit test.

mod iso4217;
pub mod model;
pub mod parquet;
pub mod row;
pub mod transform;

pub use model::*;
pub use row::{FieldError, Money, SourceRow};
