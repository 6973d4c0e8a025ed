//! [`Disposition`]: what happens to one message after its tasks ran.

use std::time::Duration;

/// What should happen to one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Finished; SQS may delete it.
    Done,
    /// Try again later; `delay` sets the visibility timeout first.
    Retry {
        kind: String,
        reason: String,
        delay: Option<Duration>,
    },
    /// Never retry: dead-letter it with the reason.
    Permanent { kind: String, reason: String },
}

impl Disposition {
    /// The disposition of a message with two tasks: retry beats dead-letter beats done.
    pub(crate) fn and(self, other: Self) -> Self {
        use Disposition::{Done, Permanent, Retry};
        match (self, other) {
            (Done, d) | (d, Done) => d,
            (
                Retry {
                    kind,
                    reason,
                    delay,
                },
                Retry {
                    reason: r2,
                    delay: d2,
                    ..
                },
            ) => Retry {
                kind,
                reason: format!("{reason}; {r2}"),
                delay: delay.max(d2),
            },
            (r @ Retry { .. }, Permanent { .. }) | (Permanent { .. }, r @ Retry { .. }) => r,
            (Permanent { kind, reason }, Permanent { reason: r2, .. }) => Permanent {
                kind,
                reason: format!("{reason}; {r2}"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(reason: &str, delay: Option<u64>) -> Disposition {
        Disposition::Retry {
            kind: "K".into(),
            reason: reason.into(),
            delay: delay.map(Duration::from_secs),
        }
    }

    fn permanent(reason: &str) -> Disposition {
        Disposition::Permanent {
            kind: "P".into(),
            reason: reason.into(),
        }
    }

    #[test]
    fn retry_beats_permanent_beats_done() {
        assert_eq!(Disposition::Done.and(Disposition::Done), Disposition::Done);
        assert_eq!(Disposition::Done.and(permanent("a")), permanent("a"));
        assert_eq!(permanent("a").and(retry("b", None)), retry("b", None));
        assert_eq!(permanent("a").and(permanent("b")), permanent("a; b"));
        assert_eq!(
            retry("a", Some(5)).and(retry("b", Some(60))),
            retry("a; b", Some(60))
        );
    }
}
