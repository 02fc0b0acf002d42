//! What a landing file must look like and where it goes: the datasets file
//! (`config/datasets.toml`) parsed into typed, allowlisted configuration, and a streaming
//! checker that validates CSV records as they pass and re-encodes them for `LOAD DATA`.

mod check;
mod config;

pub use check::{BadInput, CsvChecker, Origin, LOAD_DATA_FORMAT};
pub use config::{Column, ColumnType, ConfigError, Dataset, Datasets, Dialect, BUNDLED};
pub use landfall_sql_ident::Ident;
