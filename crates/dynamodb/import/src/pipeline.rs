//! P2 as a file pipeline: `landfall_landing::flow` runs the loop (route, version, archive,
//! email); this says what a `dynamodb/` key is, what importing it means, and what the email
//! tells.

use crate::{ImportError, Imported, Importer, Job, Outcome};
use landfall_dynamodb_datasets::{Dataset, Datasets};
use landfall_failure::FunctionError;
use landfall_landing::flow::{About, Delivery, FilePipeline, Summary};
use landfall_landing::{LandingError, LandingKey, ObjectVersion};

/// Landing keys P2 owns.
pub const PREFIX: &str = "dynamodb";

/// Landing files into DynamoDB tables.
pub struct DynamodbFiles {
    pub importer: Importer,
    pub datasets: Datasets,
}

/// A data file of one configured dataset.
pub struct DatasetFile<'a> {
    pub name: &'a str,
    pub dataset: &'a Dataset,
}

/// An imported file, as its email tells it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportDone {
    pub dataset: String,
    pub imported: Imported,
    pub archived_to: String,
}

impl FilePipeline for DynamodbFiles {
    type File<'a> = DatasetFile<'a>;
    type Loaded = Imported;
    type Done = ImportDone;

    const DONE_METRIC: &'static str = "FilesImported";

    fn route(&self, key: &str) -> Result<DatasetFile<'_>, LandingError> {
        let key = LandingKey::parse(PREFIX, key, "dynamodb/<dataset>/<file>.csv")?;
        if key.folder == "init" {
            return Err(LandingError::unknown_key(
                key.key,
                "dynamodb/init/ holds no scripts: DynamoDB tables are created by their imports",
            ));
        }
        let name = key.dataset(&self.datasets.names())?;
        let (name, dataset) = self
            .datasets
            .datasets
            .get_key_value(name.as_str())
            .ok_or_else(|| LandingError::unknown_key(key.key, "no such dataset"))?;
        Ok(DatasetFile {
            name: name.as_str(),
            dataset,
        })
    }

    fn about<'a>(&'a self, file: &DatasetFile<'a>) -> About<'a> {
        About {
            name: file.name.to_owned(),
            heading: format!("Dataset: {}", file.name),
            notify: &file.dataset.notify,
            folder: format!("{PREFIX}/{}", file.name),
            not_done: "not imported; the current table is unchanged",
            done: "imported",
        }
    }

    async fn load(
        &self,
        file: &Self::File<'_>,
        object: &ObjectVersion,
        _size: u64,
        delivery: &Delivery<'_>,
    ) -> Result<Imported, FunctionError> {
        let job = Job {
            dataset_name: file.name,
            dataset: file.dataset,
            source: object,
            landed: delivery.event_time.unwrap_or_default(),
            attempt: delivery.request_id,
        };
        self.importer
            .run(&job, delivery.deadline)
            .await
            .map_err(|err| import_failure(&err))
    }

    async fn finish(
        &self,
        file: &Self::File<'_>,
        _object: &ObjectVersion,
        imported: Imported,
        archived_to: String,
        _delivery: &Delivery<'_>,
    ) -> ImportDone {
        ImportDone {
            dataset: file.name.to_owned(),
            imported,
            archived_to,
        }
    }
}

/// The import's error as the record's failure, with when to come back for a running import.
fn import_failure(err: &ImportError) -> FunctionError {
    let failure = FunctionError::from_error(err);
    match (err, err.retry_after()) {
        // An import runs for hours in DynamoDB: following it is sent again, not a receive.
        (ImportError::Running { .. }, Some(delay)) => {
            FunctionError::still_running(failure.message, delay)
        }
        (_, Some(delay)) => failure.retry_after(delay),
        (_, None) => failure,
    }
}

impl Summary for ImportDone {
    fn subject(&self, object: &ObjectVersion) -> String {
        format!(
            "{}: {} items imported into {} from {}",
            self.dataset, self.imported.rows, self.imported.table, object.key
        )
    }

    fn result(&self) -> String {
        let table = &self.imported.table;
        match &self.imported.outcome {
            Outcome::Switched {
                previous: Some(previous),
            } => format!("imported; the pointer moved from {previous} to {table}"),
            Outcome::Switched { previous: None } => {
                format!("imported; the pointer now names {table}")
            }
            Outcome::AlreadyCurrent => {
                "imported earlier; the pointer already names this table".into()
            }
            Outcome::Superseded { current } => format!(
                "imported, but {current} comes from a file that landed later: the pointer \
                 stays, and {table} is retired"
            ),
        }
    }

    fn details(&self) -> String {
        let imported = &self.imported;
        let deleted = if imported.deleted.is_empty() {
            "none".to_owned()
        } else {
            imported.deleted.join(", ")
        };
        format!(
            "Items: {}\nParts: {}\nTable: {}\nPointer: {}\nImport: {}\nRetired tables deleted: {deleted}\nArchived to: {}\n",
            imported.rows,
            imported.parts,
            imported.table,
            imported.pointer,
            imported.import_arn,
            self.archived_to
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use landfall_landing::Version;

    fn done(outcome: Outcome, deleted: &[&str]) -> ImportDone {
        ImportDone {
            dataset: "price_index".into(),
            imported: Imported {
                table: "landfall-price_index-v2".into(),
                rows: 3,
                parts: 1,
                import_arn: "arn:aws:dynamodb:eu-west-2:123456789012:table/t/import/1".into(),
                pointer: "/landfall/dynamodb/price_index".into(),
                outcome,
                deleted: deleted.iter().map(|t| t.to_string()).collect(),
            },
            archived_to: "s3://archive/dynamodb/price_index/2026/12/05/a.csv".into(),
        }
    }

    #[test]
    fn the_import_email_says_where_the_pointer_went_and_what_was_retired() {
        let object = ObjectVersion {
            bucket: "landing".into(),
            key: "dynamodb/price_index/a.csv".into(),
            version: Version::Id("v2".into()),
        };
        let switched = done(
            Outcome::Switched {
                previous: Some("landfall-price_index-v1".into()),
            },
            &[],
        );
        assert_eq!(
            switched.subject(&object),
            "price_index: 3 items imported into landfall-price_index-v2 from dynamodb/price_index/a.csv"
        );
        assert_eq!(
            switched.result(),
            "imported; the pointer moved from landfall-price_index-v1 to landfall-price_index-v2"
        );
        assert!(switched
            .details()
            .contains("Retired tables deleted: none\n"));
        let later = done(
            Outcome::Superseded {
                current: "landfall-price_index-v3".into(),
            },
            &["landfall-price_index-v0"],
        );
        assert!(later
            .result()
            .contains("landfall-price_index-v3 comes from a file that landed later"));
        assert!(later.details().contains(
            "Retired tables deleted: landfall-price_index-v0\nArchived to: s3://archive/"
        ));
    }

    #[test]
    fn a_running_import_is_followed_not_received() {
        let running = ImportError::Running {
            table: "t".into(),
            arn: "arn".into(),
            processed_bytes: 0,
            retry_after: std::time::Duration::from_secs(60),
        };
        let failure = import_failure(&running);
        assert!(failure.still_running, "{failure:?}");
    }
}
