//! Synchronous invocation of another landfall function, with its failure classification
//! carried across: the callee's `Diagnostic` error type ("Retryable"/"Permanent") becomes
//! the caller's disposition.

use landfall_runtime::{Disposition, FunctionError};
use serde_json::Value;

pub async fn invoke_json(
    lambda: &aws_sdk_lambda::Client,
    function: &str,
    payload: &Value,
) -> Result<Value, FunctionError> {
    let out = lambda
        .invoke()
        .function_name(function)
        .payload(aws_sdk_lambda::primitives::Blob::new(payload.to_string()))
        .send()
        .await
        .map_err(|err| {
            let (disposition, message) = crate::describe(&err);
            FunctionError {
                disposition,
                message: format!("invoking {function}: {message}"),
            }
        })?;
    let body: Value = out
        .payload()
        .map(|b| serde_json::from_slice(b.as_ref()).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    if out.function_error().is_some() {
        let disposition = match body.get("errorType").and_then(Value::as_str) {
            Some("Permanent") => Disposition::Permanent,
            // Timeouts, crashes and our own retryable errors may pass next time.
            _ => Disposition::Retryable,
        };
        let message = body
            .get("errorMessage")
            .and_then(Value::as_str)
            .unwrap_or("no message")
            .to_owned();
        return Err(FunctionError {
            disposition,
            message: format!("{function}: {message}"),
        });
    }
    Ok(body)
}
