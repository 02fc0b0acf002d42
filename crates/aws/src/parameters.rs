//! Small JSON documents kept in SSM Parameter Store under one path prefix, one parameter per
//! name (a table's extraction state, the last sequence id a consumer processed). A missing
//! parameter reads as the type's default, so the first run needs no set-up.

use landfall_runtime::{Classify, Disposition};
use serde::{de::DeserializeOwned, Serialize};

#[derive(Debug, thiserror::Error)]
#[error("parameter {parameter}: {message}")]
pub struct ParameterError {
    pub parameter: String,
    pub disposition: Disposition,
    pub message: String,
}

impl Classify for ParameterError {
    fn disposition(&self) -> Disposition {
        self.disposition
    }
}

#[derive(Clone, Debug)]
pub struct JsonParameters {
    ssm: aws_sdk_ssm::Client,
    prefix: String,
}

impl JsonParameters {
    /// `prefix`: a parameter path such as `/landfall/db-extract`.
    pub fn new(ssm: aws_sdk_ssm::Client, prefix: &str) -> JsonParameters {
        JsonParameters {
            ssm,
            prefix: prefix.trim_end_matches('/').to_owned(),
        }
    }

    pub fn parameter(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    pub async fn load<T: DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, ParameterError> {
        let parameter = self.parameter(name);
        let fail = |disposition, message| ParameterError {
            parameter: parameter.clone(),
            disposition,
            message,
        };
        match self.ssm.get_parameter().name(&parameter).send().await {
            Ok(out) => {
                let value = out.parameter().and_then(|p| p.value()).unwrap_or_default();
                serde_json::from_str(value).map_err(|e| {
                    fail(
                        Disposition::Permanent,
                        format!("not a {} ({e})", std::any::type_name::<T>()),
                    )
                })
            }
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_parameter_not_found()) =>
            {
                Ok(T::default())
            }
            Err(err) => {
                let (disposition, message) = crate::describe(&err);
                Err(fail(disposition, message))
            }
        }
    }

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
            .map_err(|err| {
                let (disposition, message) = crate::describe(&err);
                ParameterError {
                    parameter,
                    disposition,
                    message,
                }
            })?;
        Ok(())
    }
}
