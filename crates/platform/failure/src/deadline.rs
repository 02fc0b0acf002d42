//! An invocation's own time: Lambda stops a function at its deadline wherever it is, so
//! work made of long steps checks the time left before each one and hands over (a retryable
//! failure, which its redelivery resumes) instead of being cut off mid-step.

use crate::FunctionError;
use std::time::{Duration, SystemTime};

/// Kept back from every step for what follows a failure: answering, cleaning up, emailing.
pub const RESERVE: Duration = Duration::from_secs(20);

/// When the invocation ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(SystemTime);

impl Deadline {
    /// A deadline at `when`.
    pub fn at(when: SystemTime) -> Deadline {
        Deadline(when)
    }

    /// Time left until the deadline (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.0
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }

    /// Time a step may use and still leave the [`RESERVE`].
    pub fn usable(&self) -> Duration {
        self.remaining().saturating_sub(RESERVE)
    }

    /// A step expected to take `needed` starts only if that and the reserve are left.
    pub fn ensure(&self, step: &str, needed: Duration) -> Result<(), FunctionError> {
        let usable = self.usable();
        if needed > usable {
            return Err(FunctionError::retryable(format!(
                "not starting {step}: it needs about {} s and this invocation has {} s left \
                 (keeping {} s to report); the retry resumes",
                needed.as_secs(),
                usable.as_secs(),
                RESERVE.as_secs()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Disposition;

    #[test]
    fn a_step_that_cannot_finish_is_not_started() {
        let deadline = Deadline::at(SystemTime::now() + Duration::from_secs(100));
        assert!(deadline
            .ensure("promoting", Duration::from_secs(60))
            .is_ok());
        let err = deadline
            .ensure("promoting", Duration::from_secs(90))
            .unwrap_err();
        assert_eq!(err.disposition, Disposition::Retryable);
        assert!(
            err.message.starts_with(
                "not starting promoting: it needs about 90 s and this invocation has 79 s left"
            ),
            "{}",
            err.message
        );
        let past = Deadline::at(SystemTime::now() - Duration::from_secs(1));
        assert_eq!(past.remaining(), Duration::ZERO);
        assert!(past.ensure("anything", Duration::ZERO).is_ok());
        assert!(past.ensure("anything", Duration::from_millis(1)).is_err());
    }
}
