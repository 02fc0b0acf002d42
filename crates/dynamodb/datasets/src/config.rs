use crate::Ident;
use landfall_csv_check::{Dialect, Layout};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("DynamoDB datasets file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// `config/dynamodb.toml`: dataset name → how its files become a table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Datasets {
    pub datasets: BTreeMap<Ident, Dataset>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "RawDataset")]
pub struct Dataset {
    /// The base name: each import creates `<table>-<version>`; the pointer names the current one.
    pub table: Ident,
    /// Attributes in file order.
    pub columns: Vec<Attribute>,
    /// The partition key every item gets, built from `key`.
    pub key_attribute: Ident,
    pub key: KeySource,
    pub billing: Billing,
    pub indexes: Vec<Index>,
    pub replace: Replace,
    /// How long a replaced table stays (for readers still holding its name, and for a
    /// rollback of the pointer) before it is deleted.
    pub retire_after_seconds: u64,
    pub csv: Dialect,
    /// Who hears about each import of this dataset.
    pub notify: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    pub name: Ident,
    #[serde(rename = "type")]
    pub kind: AttributeType,
    /// An empty field becomes `NULL`; otherwise an empty field is refused (a quoted `""`
    /// in a string column is an empty string).
    #[serde(default)]
    pub nullable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributeType {
    String,
    /// A DynamoDB number: at most 38 significant digits, magnitude 1e-130 to 1e126.
    Number,
    /// `true` or `false`, any case.
    Boolean,
}

/// Where the key attribute's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The natural-key columns (indexes into `columns`), joined with `#` (a `#` in a value
    /// is written `%23`, a `%` `%25`): the same row always gets the same key, and two rows
    /// with the same key are refused before anything is imported.
    Natural(Vec<usize>),
    /// The line of the file the row is on (the original design's running number): unique
    /// by construction, but a changed file gives rows new keys.
    RunningNumber,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Billing {
    PayPerRequest,
    Provisioned { read: i64, write: i64 },
}

/// A global secondary index over two configured attributes, projecting everything.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub name: Ident,
    pub partition: Ident,
    #[serde(default)]
    pub sort: Option<Ident>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replace {
    /// Import into a new table, switch the pointer, retire the old table later: readers
    /// never see a missing or half-filled table.
    Versioned,
    /// The original design: delete the current table, import under the base name. Readers
    /// see no table until the import completes, and none if it fails.
    DeleteThenImport,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDataset {
    table: Ident,
    columns: Vec<Attribute>,
    #[serde(default = "default_key_attribute")]
    key_attribute: Ident,
    key: RawKey,
    #[serde(default = "default_billing_mode")]
    billing_mode: String,
    #[serde(default)]
    read_capacity: Option<i64>,
    #[serde(default)]
    write_capacity: Option<i64>,
    #[serde(default)]
    indexes: Vec<Index>,
    #[serde(default = "default_replace")]
    replace: Replace,
    #[serde(default = "default_retire_after")]
    retire_after_seconds: u64,
    #[serde(default)]
    csv: Dialect,
    #[serde(default)]
    notify: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawKey {
    Columns(Vec<Ident>),
    Generated(String),
}

fn default_key_attribute() -> Ident {
    Ident::new("pk").expect("a valid name")
}

fn default_billing_mode() -> String {
    "PAY_PER_REQUEST".into()
}

fn default_replace() -> Replace {
    Replace::Versioned
}

fn default_retire_after() -> u64 {
    3600
}

/// DynamoDB allows at most 20 global secondary indexes per table.
const MAX_INDEXES: usize = 20;

impl TryFrom<RawDataset> for Dataset {
    type Error = String;

    fn try_from(raw: RawDataset) -> Result<Dataset, String> {
        if raw.columns.is_empty() {
            return Err("no columns".into());
        }
        let mut names = BTreeSet::new();
        for column in &raw.columns {
            if !names.insert(column.name.as_str()) {
                return Err(format!("column {} is listed twice", column.name));
            }
        }
        if names.contains(raw.key_attribute.as_str()) {
            return Err(format!(
                "key_attribute {} is also a column: the key would overwrite it",
                raw.key_attribute
            ));
        }
        let column = |name: &Ident, role: &str| -> Result<usize, String> {
            let index = raw
                .columns
                .iter()
                .position(|c| &c.name == name)
                .ok_or_else(|| format!("{role} {name} is not a column"))?;
            if raw.columns[index].nullable {
                return Err(format!(
                    "{role} {name} is nullable: a key attribute must always have a value"
                ));
            }
            Ok(index)
        };
        let key = match raw.key {
            RawKey::Generated(word) if word == "running_number" => KeySource::RunningNumber,
            RawKey::Generated(other) => {
                return Err(format!(
                    "key = {other:?}: a list of natural-key columns, or \"running_number\""
                ))
            }
            RawKey::Columns(columns) if columns.is_empty() => {
                return Err("key names no columns".into())
            }
            RawKey::Columns(columns) => KeySource::Natural(
                columns
                    .iter()
                    .map(|c| column(c, "key column"))
                    .collect::<Result<_, _>>()?,
            ),
        };
        if raw.indexes.len() > MAX_INDEXES {
            return Err(format!("at most {MAX_INDEXES} indexes"));
        }
        let mut index_names = BTreeSet::new();
        for index in &raw.indexes {
            if !index_names.insert(index.name.as_str()) {
                return Err(format!("index {} is listed twice", index.name));
            }
            for attribute in std::iter::once(&index.partition).chain(&index.sort) {
                let at = column(attribute, &format!("index {} key", index.name))?;
                if raw.columns[at].kind == AttributeType::Boolean {
                    return Err(format!(
                        "index {} key {attribute} is a boolean: index keys are strings or numbers",
                        index.name
                    ));
                }
            }
        }
        let billing = match (raw.billing_mode.as_str(), raw.read_capacity, raw.write_capacity) {
            ("PAY_PER_REQUEST", None, None) => Billing::PayPerRequest,
            ("PROVISIONED", Some(read), Some(write)) if read > 0 && write > 0 => {
                Billing::Provisioned { read, write }
            }
            (mode, _, _) => {
                return Err(format!(
                    "billing_mode {mode:?}: PAY_PER_REQUEST without capacities, or PROVISIONED with read_capacity and write_capacity above 0"
                ))
            }
        };
        raw.csv.check()?;
        Ok(Dataset {
            table: raw.table,
            columns: raw.columns,
            key_attribute: raw.key_attribute,
            key,
            billing,
            indexes: raw.indexes,
            replace: raw.replace,
            retire_after_seconds: raw.retire_after_seconds,
            csv: raw.csv,
            notify: raw.notify,
        })
    }
}

impl Dataset {
    /// What the CSV checker needs to know of the file.
    pub fn layout(&self) -> Layout {
        Layout {
            columns: self.columns.iter().map(|c| c.name.to_string()).collect(),
            dialect: self.csv.clone(),
        }
    }

    /// The key attribute's DynamoDB type: `S` for a natural key, `N` for a running number.
    pub fn key_type(&self) -> &'static str {
        match self.key {
            KeySource::Natural(_) => "S",
            KeySource::RunningNumber => "N",
        }
    }

    /// The DynamoDB type of a configured attribute (index keys are never boolean).
    pub fn attribute_type(&self, name: &Ident) -> Option<&'static str> {
        if name == &self.key_attribute {
            return Some(self.key_type());
        }
        self.columns
            .iter()
            .find(|c| &c.name == name)
            .map(|c| match c.kind {
                AttributeType::Number => "N",
                AttributeType::String | AttributeType::Boolean => "S",
            })
    }

    /// The natural-key column names, for messages.
    pub fn key_names(&self) -> Vec<&str> {
        match &self.key {
            KeySource::Natural(columns) => columns
                .iter()
                .map(|&i| self.columns[i].name.as_str())
                .collect(),
            KeySource::RunningNumber => vec!["(line number)"],
        }
    }
}

/// `config/dynamodb.toml`, compiled in so that a deployed function is self-contained.
pub const BUNDLED: &str = include_str!("../../../../config/dynamodb.toml");

impl Datasets {
    /// `DYNAMODB_DATASETS_FILE` when set, else the bundled file. Fails the cold start when invalid.
    pub fn from_env(env: &landfall_env::Env) -> Result<Datasets, landfall_env::ConfigError> {
        env.config_file(
            "DYNAMODB_DATASETS_FILE",
            "config/dynamodb.toml",
            BUNDLED,
            Datasets::parse,
        )
    }

    pub fn parse(path: &str, text: &str) -> Result<Datasets, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: path.to_owned(),
            message: e.to_string(),
        })
    }

    /// The configured dataset names, for routing landing keys.
    pub fn names(&self) -> Vec<&str> {
        self.datasets.keys().map(Ident::as_str).collect()
    }

    pub fn get(&self, name: &str) -> Option<&Dataset> {
        self.datasets.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Datasets, String> {
        Datasets::parse("dynamodb.toml", text).map_err(|e| e.to_string())
    }

    #[test]
    fn the_bundled_file_parses_with_its_defaults() {
        let datasets = parse(BUNDLED).unwrap();
        let d = datasets.get("price_index").unwrap();
        assert_eq!(d.key_attribute.as_str(), "pk");
        assert_eq!(d.key_names(), ["ref_date", "geo", "product"]);
        assert_eq!(d.replace, Replace::Versioned);
        assert_eq!(d.billing, Billing::PayPerRequest);
        assert_eq!(d.attribute_type(&Ident::new("price").unwrap()), Some("N"));
        assert_eq!(d.key_type(), "S");
    }

    const MINIMAL: &str = r#"
[datasets.items]
table = "items"
key = ["id"]
columns = [
  { name = "id", type = "string" },
  { name = "n", type = "number", nullable = true },
  { name = "ok", type = "boolean" },
]
"#;

    #[test]
    fn refuses_what_would_break_at_import_time() {
        assert!(parse(MINIMAL).is_ok());
        for (change, expected) in [
            (
                (r#"table = "items""#, r#"table = "items; drop""#),
                "not an allowed",
            ),
            ((r#"name = "n""#, r#"name = "n\"}""#), "not an allowed"),
            (
                (r#"key = ["id"]"#, r#"key = ["n"]"#),
                "key column n is nullable",
            ),
            (
                (r#"key = ["id"]"#, r#"key = ["sku"]"#),
                "key column sku is not a column",
            ),
            ((r#"key = ["id"]"#, r#"key = "uuid""#), "running_number"),
            (
                (r#"key = ["id"]"#, "key = [\"id\"]\nkey_attribute = \"ok\""),
                "also a column",
            ),
            (
                (
                    r#"key = ["id"]"#,
                    "key = [\"id\"]\nbilling_mode = \"PROVISIONED\"",
                ),
                "read_capacity",
            ),
            (
                (r#"type = "boolean""#, r#"type = "money""#),
                "unknown variant",
            ),
            (
                (
                    r#"key = ["id"]"#,
                    "key = [\"id\"]\nindexes = [{ name = \"by_ok\", partition = \"ok\" }]",
                ),
                "is a boolean",
            ),
            (
                (
                    r#"key = ["id"]"#,
                    "key = [\"id\"]\nindexes = [{ name = \"by_n\", partition = \"n\" }]",
                ),
                "is nullable",
            ),
        ] {
            let text = MINIMAL.replace(change.0, change.1);
            let err = parse(&text).unwrap_err();
            assert!(err.contains(expected), "{change:?}: {err}");
        }
        let running =
            parse(&MINIMAL.replace(r#"key = ["id"]"#, r#"key = "running_number""#)).unwrap();
        assert_eq!(running.get("items").unwrap().key, KeySource::RunningNumber);
    }
}
