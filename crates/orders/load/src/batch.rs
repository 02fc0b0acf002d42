//! One SQS batch of orders files: audited and crawled together, then each file loaded once,
//! in the order the files arrived, its outcome recorded on its audit item.

use crate::audit::{Outcome, Received};
use crate::{Done, LoadError, Loader};
use landfall_failure::{Classify, Deadline, Disposition, FunctionError};
use std::collections::{BTreeMap, HashMap};

impl Loader {
    /// Loads the files of one batch, each given with the index of the record that named it;
    /// answers the failure of each record that failed. A record whose file fails has its
    /// other files skipped. One file twice in a batch (a redelivered message beside its
    /// original, or the same bytes uploaded twice, which moto's version-less notifications
    /// name alike) gets one audit item — BatchWriteItem refuses a key twice in a call — and
    /// one load, whose outcome both records share.
    pub async fn load_batch(
        &self,
        files: &[(usize, Received)],
        deadline: &Deadline,
    ) -> BTreeMap<usize, FunctionError> {
        let mut failed = BTreeMap::new();
        let mut admitted: Vec<Received> = Vec::new();
        for (_, file) in files {
            if !admitted.iter().any(|a| a.file == file.file) {
                admitted.push(file.clone());
            }
        }
        let already_loaded = match self.receive(&admitted).await {
            Ok(loaded) => loaded,
            Err(err) => {
                let err = FunctionError::from_error(&err);
                return files
                    .iter()
                    .map(|(index, _)| (*index, err.clone()))
                    .collect();
            }
        };
        let mut handled: HashMap<&str, Option<FunctionError>> = HashMap::new();
        for (index, file) in files {
            if failed.contains_key(index) {
                continue;
            }
            if already_loaded.contains(&file.file) {
                tracing::info!(file = file.file, "already loaded: a duplicate delivery");
                metrics::counter!("DuplicateDeliveries").increment(1);
                continue;
            }
            if let Some(first) = handled.get(file.file.as_str()) {
                tracing::info!(file = file.file, "twice in this batch: handled once");
                metrics::counter!("DuplicateDeliveries").increment(1);
                if let Some(err) = first {
                    failed.insert(*index, err.clone());
                }
                continue;
            }
            let result = self.load_and_record(file, deadline).await.err();
            if let Some(err) = &result {
                failed.insert(*index, err.clone());
            }
            handled.insert(&file.file, result);
        }
        failed
    }

    /// One file loaded (or found superseded), and the outcome on its audit item.
    async fn load_and_record(
        &self,
        file: &Received,
        deadline: &Deadline,
    ) -> Result<(), FunctionError> {
        match self.load(file, deadline).await {
            Ok(done) => {
                match &done {
                    Done::Loaded(loaded) => {
                        tracing::info!(
                            file = file.file,
                            rows = loaded.ledger.rows_loaded,
                            unknown_customers = loaded.ledger.unknown_customers,
                            statement = loaded.statement_id,
                            seconds = loaded.duration.as_secs_f64(),
                            "file loaded"
                        );
                        metrics::counter!("FilesLoaded").increment(1);
                    }
                    Done::Superseded { current_version } => tracing::info!(
                        file = file.file,
                        current_version,
                        "superseded by a newer version; not loaded"
                    ),
                }
                self.record(file, &Outcome::from(&done))
                    .await
                    .map_err(|e| FunctionError::from_error(&e))
            }
            Err(err) => {
                let failure = err.to_function_error(&self.settings, file.size);
                let running =
                    matches!(&err, LoadError::Warehouse(w) if w.still_running().is_some());
                if running {
                    // Not a failure: the transaction goes on in Redshift, and the
                    // redelivery follows it. The item stays RECEIVED.
                    tracing::info!(file = file.file, error = %err, "load still running; the redelivery follows it");
                } else {
                    tracing::error!(file = file.file, error = %err, "file not loaded");
                    let recorded = Outcome::Failed {
                        error: err.to_string(),
                        retryable: err.disposition() == Disposition::Retryable,
                    };
                    if let Err(audit) = self.record(file, &recorded).await {
                        tracing::error!(file = file.file, error = %audit, "the failure could not be audited");
                    }
                }
                Err(failure)
            }
        }
    }
}
