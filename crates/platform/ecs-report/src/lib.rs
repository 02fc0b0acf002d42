//! What an ECS task leaves for its parent, and where: the protocol between
//! `landfall-ecs-task` (the task side, which links the Lambda runtime: the same binary serves
//! Lambda) and `landfall-ecs-run` (the parent side, a library of the function that starts
//! the task), in a crate of its own so that neither side links the other's dependencies.
#![warn(missing_docs)]

use landfall_failure::{Disposition, FunctionError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The event a task handles, as JSON.
pub const TASK_VAR: &str = "LANDFALL_TASK";
/// Where a task writes its [`Report`]: `s3://bucket/key`.
pub const RESULT_VAR: &str = "LANDFALL_RESULT_URI";

/// What a task leaves for its parent.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Report {
    /// The work ended well.
    Succeeded {
        /// What the work answered.
        outcome: Value,
    },
    /// The work failed.
    Failed {
        /// `Retryable` or `Permanent`.
        error_type: String,
        /// The error, with its chain.
        message: String,
    },
}

impl Report {
    /// The report of a run that ended with `result`.
    pub fn from_result(result: Result<Value, FunctionError>) -> Report {
        match result {
            Ok(outcome) => Report::Succeeded { outcome },
            Err(err) => Report::Failed {
                error_type: err.disposition.as_str().to_owned(),
                message: err.message,
            },
        }
    }

    /// The run's result, as the parent takes it back.
    pub fn into_result(self) -> Result<Value, FunctionError> {
        match self {
            Report::Succeeded { outcome } => Ok(outcome),
            Report::Failed {
                error_type,
                message,
            } => Err(FunctionError {
                disposition: if error_type == Disposition::Permanent.as_str() {
                    Disposition::Permanent
                } else {
                    Disposition::Retryable
                },
                message,
                retry_after: None,
                still_running: false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_carry_the_disposition_across() {
        let permanent = Report::from_result(Err(FunctionError::permanent("bad line 3")));
        let text = serde_json::to_string(&permanent).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        let err = back.into_result().unwrap_err();
        assert_eq!(err.disposition, Disposition::Permanent);
        assert_eq!(err.message, "bad line 3");

        let retryable = Report::from_result(Err(FunctionError::retryable("db down")));
        assert_eq!(
            retryable.into_result().unwrap_err().disposition,
            Disposition::Retryable
        );
        let ok = Report::from_result(Ok(json!({"rows": 3})));
        assert_eq!(ok.into_result().unwrap(), json!({"rows": 3}));
    }
}
