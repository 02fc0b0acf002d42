//! What a landing file must look like and where it goes: the datasets file
//! (`config/datasets.toml`) parsed into typed, allowlisted configuration, and the MySQL
//! half of the streaming check (types, `LOAD DATA` CSV) for `landfall-csv-check`.

mod config;
mod load_data;

pub use config::{Column, ColumnType, ConfigError, Dataset, Datasets, Promotion, BUNDLED};
pub use landfall_csv_check::{BadInput, CsvChecker, Dialect, Origin};
pub use landfall_sql_ident::Ident;
pub use load_data::{LoadDataEncoder, LOAD_DATA_FORMAT};
