//! What P1's functions send each other: one request and one response type per callee,
//! used by the callee's handler and by its caller (file-orchestrator), so both sides name
//! the same fields. No field has a default: an answer without one fails to decode, naming
//! it, instead of reading as zero (an `Option` too: it must be there, as null). `events/` holds a sample of every request.

/// mysql-loader (Lambda, and the same binary as an ECS task for very big files).
pub mod loader {
    use landfall_landing::{ObjectVersion, Part};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    #[serde(tag = "mode", rename_all = "snake_case")]
    pub enum Request {
        /// A file that was not split: stage and promote in one transaction.
        Load {
            dataset: String,
            source: ObjectVersion,
            /// Its notification's eventTime (null when unknown): see `LedgerSource::landed`.
            #[serde(deserialize_with = "Option::deserialize")]
            landed: Option<String>,
        },
        /// Stage `part` of a split `source` for one attempt at loading it (the
        /// orchestrator's invocation): each attempt stages under a batch of its own.
        Stage {
            dataset: String,
            source: ObjectVersion,
            attempt: String,
            part_index: u32,
            part: Part,
        },
        /// Promote every part the attempt staged, in one transaction.
        Promote {
            dataset: String,
            source: ObjectVersion,
            #[serde(deserialize_with = "Option::deserialize")]
            landed: Option<String>,
            attempt: String,
            parts: u32,
            rows: u64,
        },
        /// Remove what a failed attempt staged; with `every_attempt` (the file was refused
        /// for good), what every earlier attempt at the same object left too.
        Discard {
            dataset: String,
            source: ObjectVersion,
            attempt: String,
            every_attempt: bool,
        },
        /// Rebuild the dataset's report tables.
        Report { dataset: String },
    }

    impl Request {
        pub fn dataset(&self) -> &str {
            match self {
                Request::Load { dataset, .. }
                | Request::Stage { dataset, .. }
                | Request::Promote { dataset, .. }
                | Request::Discard { dataset, .. }
                | Request::Report { dataset } => dataset,
            }
        }
    }

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    pub struct Response {
        /// Rows loaded, staged or discarded (0 for reports).
        pub rows: u64,
        /// The ledger already had this object version: nothing changed.
        pub already_loaded: bool,
        /// An upload of the key that landed later was loaded first (its version): nothing
        /// changed.
        #[serde(deserialize_with = "Option::deserialize")]
        pub superseded_by: Option<String>,
        /// Report procedures run.
        pub procedures: u64,
    }
}

/// mysql-reporter: every report table of a dataset exported as CSV to S3.
pub mod reporter {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    pub struct Request {
        pub dataset: String,
        /// Names the export (e.g. the loaded file's version), so a rerun overwrites it.
        pub run: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    pub struct Export {
        pub table: String,
        /// `s3://bucket/key`
        pub object: String,
        pub rows: u64,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    pub struct Response {
        pub exports: Vec<Export>,
    }
}

/// db-init (an ECS task): one landed `.sql` script applied once.
pub mod db_init {
    use landfall_landing::ObjectVersion;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    pub struct Request {
        pub script: ObjectVersion,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    pub struct Script {
        pub name: String,
        /// "applied (N statements)" or "already applied earlier".
        pub outcome: String,
    }

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
    pub struct Response {
        pub scripts: Vec<Script>,
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn samples(function: &str) -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../events")
            .join(function);
        let mut texts: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        texts.sort();
        texts
    }

    /// The sample events are the requests file-orchestrator sends (mysql-loader's own test
    /// covers its five modes).
    #[test]
    fn sample_events_are_requests() {
        for text in samples("mysql-reporter") {
            let request: super::reporter::Request = serde_json::from_str(&text).unwrap();
            assert_eq!(request.dataset, "price_index");
        }
        for text in samples("db-init") {
            let request: super::db_init::Request = serde_json::from_str(&text).unwrap();
            assert!(request.script.key.starts_with("mysql/init/"));
        }
    }

    #[test]
    fn an_answer_missing_a_nullable_field_does_not_decode() {
        let err = serde_json::from_str::<super::loader::Response>(
            r#"{"rows": 3, "already_loaded": false, "procedures": 0}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("missing field `superseded_by`"),
            "{err}"
        );
    }

    #[test]
    fn an_answer_missing_a_field_does_not_decode() {
        let err = serde_json::from_str::<super::loader::Response>(r#"{"rows": 3}"#).unwrap_err();
        assert!(
            err.to_string().contains("missing field `already_loaded`"),
            "{err}"
        );
    }
}
