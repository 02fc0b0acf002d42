//! What a `dynamodb/<dataset>/*.csv` file must look like and what it becomes: the datasets
//! file (`config/dynamodb.toml`) parsed into typed, allowlisted configuration, and the
//! DynamoDB half of the streaming CSV check — each row as one line of DynamoDB JSON (the
//! format ImportTable reads), with the key attribute added.

mod config;
mod encode;
mod keys;

pub use config::{
    Attribute, AttributeType, Billing, ConfigError, Dataset, Datasets, Index, KeySource, Replace,
    BUNDLED,
};
pub use encode::{number_size, DynamoJsonEncoder, MAX_ITEM_BYTES};
pub use keys::{first_duplicate, DuplicateKey, KeyIndex, Run, MEMORY_ROWS};
pub use landfall_csv_check::{BadInput, CsvChecker, Origin};
pub use landfall_sql_ident::Ident;
