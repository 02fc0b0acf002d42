//! Plumbing every landfall function shares, so that each `main.rs` stays a few lines:
//! typed configuration read once at init, failures classified as retryable or permanent,
//! JSON logs and CloudWatch EMF metrics, and the runtime loop that flushes metrics per invoke.
#![warn(missing_docs)]

pub mod telemetry;

pub use landfall_env as config;
pub use landfall_env::{ConfigError, Env};
pub use landfall_failure as failure;
pub use landfall_failure::deadline;
pub use landfall_failure::Deadline;
pub use landfall_failure::{Classify, Disposition, FunctionError};
pub use telemetry::{run, serve, serve_with_deadline, Invocation, Telemetry};
