//! The documents P4's functions hand each other through S3 and SSM. Each has one writer and
//! one or more readers in different functions; they live here, beside no code that acts on
//! them, so a reader never has to link its writer.
//!
//! - [`ingestion`]: the ingestion bucket's keys (db-extract writes, star-transform reads);
//! - [`processed`]: the processed bucket's Parquet files and manifests (star-transform
//!   writes, warehouse-loader reads);
//! - [`extract_state`]: a table's extraction state in SSM (db-extract writes,
//!   warehouse-loader reads it to say how fresh the warehouse is).

pub mod extract_state;
pub mod ingestion;
pub mod processed;
