use crate::{Dialect, Ident};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::str::FromStr;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("datasets file {path}: {message}")]
    Invalid { path: String, message: String },
}

/// `config/datasets.toml`: dataset name → how its files load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Datasets {
    pub datasets: BTreeMap<Ident, Dataset>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dataset {
    /// The permanent table.
    pub table: Ident,
    /// Columns in file order.
    pub columns: Vec<Column>,
    /// The natural key: the table's primary key, which the upsert replaces rows by.
    pub key: Vec<Ident>,
    /// `CALL <load_procedure>(batch_id)` promotes a staged batch into `table`, for a dataset
    /// whose promotion is more than an upsert into one table. Without it, see [`Promotion`].
    #[serde(default)]
    pub load_procedure: Option<Ident>,
    /// With `load_procedure`: where files are staged for it, the dataset's columns plus
    /// `landfall_batch CHAR(64)` and `landfall_part INT` (created by db-init).
    #[serde(default)]
    pub stage_table: Option<Ident>,
    /// Procedures that rebuild the report tables after a load, in order.
    #[serde(default)]
    pub report_procedures: Vec<Ident>,
    /// Tables the reporter exports to CSV after the report procedures ran.
    #[serde(default)]
    pub report_tables: Vec<Ident>,
    #[serde(default)]
    pub csv: Dialect,
    /// Who hears about each load of this dataset.
    #[serde(default)]
    pub notify: Vec<String>,
}

/// How a checked file reaches its dataset's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Promotion<'a> {
    /// `LOAD DATA … REPLACE` straight into the table, in the transaction that writes the
    /// ledger row: each row written once. A row whose key is already there is replaced
    /// whole (deleted, then inserted), so a table with columns the file does not carry, or
    /// referenced by foreign keys with `ON DELETE` actions, names a procedure instead.
    Upsert,
    /// Staged into `stage_table`, then `CALL procedure(batch)`.
    Procedure {
        stage_table: &'a Ident,
        procedure: &'a Ident,
    },
}

impl Dataset {
    pub fn promotion(&self) -> Promotion<'_> {
        match (&self.stage_table, &self.load_procedure) {
            (Some(stage_table), Some(procedure)) => Promotion::Procedure {
                stage_table,
                procedure,
            },
            // `Datasets::parse` refuses one without the other.
            _ => Promotion::Upsert,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Column {
    pub name: Ident,
    #[serde(rename = "type")]
    pub kind: ColumnType,
    #[serde(default)]
    pub nullable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub enum ColumnType {
    /// UTF-8 text of at most this many characters.
    Text {
        max_chars: usize,
    },
    Integer,
    /// Exact decimal: at most `precision` digits, `scale` of them after the point.
    Decimal {
        precision: u32,
        scale: u32,
    },
    /// `YYYY-MM-DD`.
    Date,
    /// `YYYY-MM`.
    YearMonth,
}

impl FromStr for ColumnType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        let args = |inner: &str| -> Result<Vec<u32>, String> {
            inner
                .split(',')
                .map(|n| n.trim().parse::<u32>().map_err(|e| format!("{s:?}: {e}")))
                .collect()
        };
        let parsed = if let Some(inner) =
            s.strip_prefix("varchar(").and_then(|r| r.strip_suffix(')'))
        {
            match args(inner)?.as_slice() {
                [n] if *n > 0 => ColumnType::Text {
                    max_chars: *n as usize,
                },
                _ => return Err(format!("{s:?}: varchar needs a length")),
            }
        } else if let Some(inner) = s.strip_prefix("decimal(").and_then(|r| r.strip_suffix(')')) {
            match args(inner)?.as_slice() {
                [p, sc] if *p > 0 && sc <= p && *p <= 65 => ColumnType::Decimal {
                    precision: *p,
                    scale: *sc,
                },
                _ => {
                    return Err(format!(
                        "{s:?}: decimal needs (precision, scale) with scale <= precision <= 65"
                    ))
                }
            }
        } else {
            match s.as_str() {
                "integer" | "int" | "bigint" => ColumnType::Integer,
                "date" => ColumnType::Date,
                "year_month" => ColumnType::YearMonth,
                other => return Err(format!("unknown column type {other:?} (varchar(n), integer, decimal(p,s), date, year_month)")),
            }
        };
        Ok(parsed)
    }
}

impl TryFrom<String> for ColumnType {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

/// `config/datasets.toml`, compiled in so that a deployed function is self-contained.
pub const BUNDLED: &str = include_str!("../../../../config/datasets.toml");

impl Datasets {
    /// `DATASETS_FILE` when set, else the bundled file. Fails the cold start when invalid.
    pub fn from_env(env: &landfall_env::Env) -> Result<Datasets, landfall_env::ConfigError> {
        env.config_file(
            "DATASETS_FILE",
            "config/datasets.toml",
            BUNDLED,
            Datasets::parse,
        )
    }

    pub fn parse(path: &str, text: &str) -> Result<Datasets, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_owned(),
            message,
        };
        let datasets: Datasets = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        for (name, dataset) in &datasets.datasets {
            if dataset.columns.is_empty() {
                return Err(invalid(format!("dataset {name} has no columns")));
            }
            for key in &dataset.key {
                if !dataset.columns.iter().any(|c| &c.name == key) {
                    return Err(invalid(format!(
                        "dataset {name}: key column {key} is not a column"
                    )));
                }
            }
            match (&dataset.stage_table, &dataset.load_procedure) {
                (Some(_), None) | (None, Some(_)) => {
                    return Err(invalid(format!(
                        "dataset {name}: stage_table and load_procedure go together"
                    )))
                }
                (None, None) if dataset.key.is_empty() => {
                    return Err(invalid(format!(
                        "dataset {name}: an upsert (no load_procedure) needs the key"
                    )))
                }
                _ => {}
            }
            dataset
                .csv
                .check()
                .map_err(|e| invalid(format!("dataset {name}: {e}")))?;
        }
        Ok(datasets)
    }

    pub fn load(path: &std::path::Path) -> Result<Datasets, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Invalid {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Datasets::parse(&path.display().to_string(), &text)
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

    const PRICE_INDEX: &str = r#"
[datasets.price_index]
table = "price_index"
stage_table = "price_index_stage"
key = ["ref_date", "geo", "product"]
load_procedure = "load_price_index"
report_procedures = ["report_price_index"]
report_tables = ["price_index_report"]
notify = ["data-team@example.com"]
columns = [
  { name = "ref_date", type = "year_month" },
  { name = "geo", type = "varchar(64)" },
  { name = "category", type = "varchar(64)" },
  { name = "product", type = "varchar(128)" },
  { name = "uom", type = "varchar(32)", nullable = true },
  { name = "price", type = "decimal(12,2)" },
]
"#;

    #[test]
    fn parses_a_dataset() {
        let datasets = Datasets::parse("datasets.toml", PRICE_INDEX).unwrap();
        let d = datasets.get("price_index").unwrap();
        assert_eq!(d.table.as_str(), "price_index");
        assert_eq!(
            d.columns[5].kind,
            ColumnType::Decimal {
                precision: 12,
                scale: 2
            }
        );
        assert_eq!(d.columns[1].kind, ColumnType::Text { max_chars: 64 });
        assert!(d.columns[4].nullable);
        assert_eq!(d.csv.delimiter, ',');
        assert!(d.csv.header);
    }

    #[test]
    fn refuses_injection_shaped_identifiers_and_bad_types() {
        let bad_table = PRICE_INDEX.replace(
            r#"table = "price_index""#,
            r#"table = "price_index; DROP TABLE x""#,
        );
        let err = Datasets::parse("d.toml", &bad_table)
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an allowed SQL identifier"), "{err}");
        let bad_type = PRICE_INDEX.replace("decimal(12,2)", "money");
        assert!(Datasets::parse("d.toml", &bad_type)
            .unwrap_err()
            .to_string()
            .contains("unknown column type"));
        let bad_key = PRICE_INDEX.replace(r#""product"]"#, r#""sku"]"#);
        assert!(Datasets::parse("d.toml", &bad_key)
            .unwrap_err()
            .to_string()
            .contains("key column sku"));
    }

    #[test]
    fn a_dataset_is_an_upsert_unless_it_names_a_procedure_and_its_stage() {
        let procedure = Datasets::parse("d.toml", PRICE_INDEX).unwrap();
        let d = procedure.get("price_index").unwrap();
        assert_eq!(
            d.promotion(),
            Promotion::Procedure {
                stage_table: d.stage_table.as_ref().unwrap(),
                procedure: d.load_procedure.as_ref().unwrap()
            }
        );
        let upsert = PRICE_INDEX
            .replace("stage_table = \"price_index_stage\"\n", "")
            .replace("load_procedure = \"load_price_index\"\n", "");
        let upsert = Datasets::parse("d.toml", &upsert).unwrap();
        assert_eq!(
            upsert.get("price_index").unwrap().promotion(),
            Promotion::Upsert
        );

        let half = PRICE_INDEX.replace("load_procedure = \"load_price_index\"\n", "");
        let err = Datasets::parse("d.toml", &half).unwrap_err().to_string();
        assert!(
            err.contains("stage_table and load_procedure go together"),
            "{err}"
        );
        let keyless = PRICE_INDEX
            .replace("stage_table = \"price_index_stage\"\n", "")
            .replace("load_procedure = \"load_price_index\"\n", "")
            .replace("key = [\"ref_date\", \"geo\", \"product\"]", "key = []");
        let err = Datasets::parse("d.toml", &keyless).unwrap_err().to_string();
        assert!(err.contains("needs the key"), "{err}");
    }
}
