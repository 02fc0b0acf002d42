//! Small JSON documents kept in SSM Parameter Store under one path prefix, one parameter per
//! name (a table's extraction state, the last sequence id a consumer processed). A missing
//! parameter reads as the type's default, so the first run needs no set-up.

use crate::AwsError;
use landfall_failure::{Classify, Disposition};
use serde::{de::DeserializeOwned, Serialize};

/// Why a JSON parameter could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ParameterError {
    /// The SSM call failed.
    #[error("parameter {parameter}")]
    Aws {
        /// The parameter's name.
        parameter: String,
        /// The SSM error.
        #[source]
        source: AwsError,
    },
    /// The stored document is not the type it should be: someone edited it by hand, or
    /// two versions disagree. Retrying reads the same text.
    #[error("parameter {parameter}: not a {expected}")]
    Malformed {
        /// The parameter's name.
        parameter: String,
        /// The Rust type it should hold.
        expected: &'static str,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
}

impl Classify for ParameterError {
    fn disposition(&self) -> Disposition {
        match self {
            ParameterError::Aws { source, .. } => source.disposition(),
            ParameterError::Malformed { .. } => Disposition::Permanent,
        }
    }
}

/// JSON documents kept as SSM parameters under one path.
#[derive(Clone, Debug)]
pub struct JsonParameters {
    ssm: aws_sdk_ssm::Client,
    prefix: String,
}

impl JsonParameters {
    /// `prefix`: a parameter path such as `/landfall/<function>`.
    pub fn new(ssm: aws_sdk_ssm::Client, prefix: &str) -> JsonParameters {
        JsonParameters {
            ssm,
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    /// The full name of the parameter `name` under the prefix.
    pub fn parameter(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// The document `name` holds, or `T::default()` when there is none yet.
    pub async fn load<T: DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, ParameterError> {
        let parameter = self.parameter(name);
        match self.ssm.get_parameter().name(&parameter).send().await {
            Ok(out) => {
                let value = out.parameter().and_then(|p| p.value()).unwrap_or_default();
                serde_json::from_str(value).map_err(|source| ParameterError::Malformed {
                    parameter,
                    expected: std::any::type_name::<T>(),
                    source,
                })
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                Ok(T::default())
            }
            Err(err) => Err(ParameterError::Aws {
                parameter,
                source: AwsError::new("SSM", "GetParameter", err),
            }),
        }
    }

    /// Writes `value` as the document `name` holds.
    pub async fn save<T: Serialize>(&self, name: &str, value: &T) -> Result<(), ParameterError> {
        let parameter = self.parameter(name);
        let value = serde_json::to_string(value).expect("plain data serialises");
        self.ssm
            .put_parameter()
            .name(&parameter)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|err| ParameterError::Aws {
                parameter,
                source: AwsError::new("SSM", "PutParameter", err),
            })?;
        Ok(())
    }
}
