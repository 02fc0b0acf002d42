//! Plumbing every landfall function shares, so that each `main.rs` stays a few lines:
//! typed configuration read once at init, failures classified as retryable or permanent,
//! JSON logs and CloudWatch EMF metrics, and the runtime loop that flushes metrics per invoke.

pub mod config;
pub mod deadline;
pub mod failure;
pub mod telemetry;

pub use config::{ConfigError, Env};
pub use deadline::Deadline;
pub use failure::{Classify, Disposition, FunctionError};
pub use telemetry::{run, serve, serve_with_deadline, Invocation, Telemetry};
