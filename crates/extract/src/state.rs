//! A table's extraction state in SSM Parameter Store: the watermark (the last extracted
//! `last_updated`, exclusive lower bound of the next run), the last sequence id written, and
//! the run in progress. The run is recorded before its object is written, so a crash between
//! the object and the state update is retried with the same key and bounds: the object is
//! overwritten, never written under a second sequence id, and nothing is skipped.

use landfall_runtime::Disposition;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TableState {
    /// `YYYY-MM-DDTHH:MM:SS.mmm`, in the source's own clock; None before the first run.
    pub watermark: Option<String>,
    /// The sequence id of the last object written (0: none yet).
    pub sequence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingRun>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingRun {
    pub sequence: u64,
    pub key: String,
    /// Inclusive upper bound of the rows this run extracts.
    pub upper: String,
}

#[derive(Debug, thiserror::Error)]
#[error("extraction state {parameter}: {message}")]
pub struct StateError {
    pub parameter: String,
    pub disposition: Disposition,
    pub message: String,
}

pub struct StateStore {
    ssm: aws_sdk_ssm::Client,
    prefix: String,
}

impl StateStore {
    /// `prefix`: a parameter path such as `/landfall/db-extract`.
    pub fn new(ssm: aws_sdk_ssm::Client, prefix: &str) -> StateStore {
        StateStore {
            ssm,
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    pub fn parameter(&self, table: &str) -> String {
        format!("{}/{table}", self.prefix)
    }

    pub async fn load(&self, table: &str) -> Result<TableState, StateError> {
        let parameter = self.parameter(table);
        let fail = |disposition, message| StateError {
            parameter: parameter.clone(),
            disposition,
            message,
        };
        match self.ssm.get_parameter().name(&parameter).send().await {
            Ok(out) => {
                let value = out.parameter().and_then(|p| p.value()).unwrap_or_default();
                serde_json::from_str(value)
                    .map_err(|e| fail(Disposition::Permanent, format!("not a table state ({e})")))
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                Ok(TableState::default())
            }
            Err(err) => {
                let (disposition, message) = landfall_aws::describe(&err);
                Err(fail(disposition, message))
            }
        }
    }

    pub async fn save(&self, table: &str, state: &TableState) -> Result<(), StateError> {
        let parameter = self.parameter(table);
        let value = serde_json::to_string(state).expect("the state serialises");
        self.ssm
            .put_parameter()
            .name(&parameter)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|err| {
                let (disposition, message) = landfall_aws::describe(&err);
                StateError {
                    parameter,
                    disposition,
                    message,
                }
            })?;
        Ok(())
    }
}
