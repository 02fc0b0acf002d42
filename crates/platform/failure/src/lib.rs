//! Every failure is either worth retrying (the world may change: throttling, a restart)
//! or not (the input is wrong: retrying only burns attempts). The disposition decides
//! where an SQS message goes and becomes the Lambda `Diagnostic` error type (in
//! `landfall-runtime`: this crate links nothing, so pure crates can classify their errors).
//! An invocation's [`Deadline`] lives here too: library crates budget their steps with it
//! without linking the Lambda runtime.
#![warn(missing_docs)]

pub mod deadline;

pub use deadline::Deadline;

use std::fmt;

/// Whether trying again can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Disposition {
    /// Transient: hand the work back so it is tried again.
    Retryable,
    /// The input or configuration is wrong: report it at once, do not retry.
    Permanent,
}

impl Disposition {
    /// `Retryable` or `Permanent`.
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Retryable => "Retryable",
            Disposition::Permanent => "Permanent",
        }
    }
}

impl fmt::Display for Disposition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Implemented by library errors so callers can route them without matching on variants.
pub trait Classify {
    /// How this error should be handled.
    fn disposition(&self) -> Disposition;
}

/// The error a handler returns to the runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    /// Whether trying again can help.
    pub disposition: Disposition,
    /// The error with its chain, as logged and dead-lettered.
    pub message: String,
    /// For a retryable failure whose caller knows when trying again can help (work that
    /// keeps running elsewhere and will be done by then): the SQS record comes back after
    /// this long instead of after the usual backoff.
    pub retry_after: Option<std::time::Duration>,
    /// Work that runs on elsewhere and is only being followed (an import): its message is
    /// sent again with a delay instead of coming back as a receive, so following it never
    /// spends the queue's `maxReceiveCount` (landfall-sqs-batch).
    pub still_running: bool,
}

impl FunctionError {
    /// A failure worth trying again.
    pub fn retryable(message: impl Into<String>) -> Self {
        FunctionError {
            disposition: Disposition::Retryable,
            message: message.into(),
            retry_after: None,
            still_running: false,
        }
    }

    /// A failure no retry can help.
    pub fn permanent(message: impl Into<String>) -> Self {
        FunctionError {
            disposition: Disposition::Permanent,
            message: message.into(),
            retry_after: None,
            still_running: false,
        }
    }

    /// Keeps the error's own classification and its full `source()` chain in the message.
    pub fn from_error<E: Classify + std::error::Error>(err: &E) -> Self {
        FunctionError {
            disposition: err.disposition(),
            message: error_chain(err),
            retry_after: None,
            still_running: false,
        }
    }

    /// Work still running elsewhere, to be looked at again after `delay`.
    pub fn still_running(message: impl Into<String>, delay: std::time::Duration) -> Self {
        FunctionError {
            still_running: true,
            ..FunctionError::retryable(message).retry_after(delay)
        }
    }

    /// The same failure, to be tried again after `delay` (see `retry_after`).
    pub fn retry_after(mut self, delay: std::time::Duration) -> Self {
        self.retry_after = Some(delay);
        self
    }
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.disposition, self.message)
    }
}

impl std::error::Error for FunctionError {}

impl Classify for FunctionError {
    fn disposition(&self) -> Disposition {
        self.disposition
    }
}

/// "outer: inner: root" — SDK errors hide the useful part in their sources.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner cause")]
    struct Inner;

    impl Classify for Outer {
        fn disposition(&self) -> Disposition {
            Disposition::Permanent
        }
    }

    #[test]
    fn from_error_keeps_classification_and_source_chain() {
        let err = FunctionError::from_error(&Outer(Inner));
        assert_eq!(err.disposition, Disposition::Permanent);
        assert_eq!(err.message, "outer: inner cause");
    }
}
