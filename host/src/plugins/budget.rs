//! A canary's error budget: the share of its calls that may fail (trap or
//! time out) before it is rolled back without waiting for an operator.
//!
//! A canary is judged on its own calls since it started, and only once it
//! has made enough of them for a rate to mean something.

use std::fmt;
use std::sync::Arc;

use super::wasm::Plugin;
use crate::metrics::CallStats;

/// More failed calls than this, over at least this many calls, and the
/// canary is rolled back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Budget {
    /// Failed calls in percent of calls, 0 to 100.
    pub(crate) error_percent: f64,
    /// Calls the canary makes before its rate is judged.
    pub(crate) min_calls: u64,
}

impl Default for Budget {
    /// One failed call in a hundred: a healthy version fails none, and a
    /// hundred calls are a few seconds of a busy room.
    fn default() -> Budget {
        Budget {
            error_percent: 1.0,
            min_calls: 100,
        }
    }
}

impl Budget {
    pub(crate) fn overdrawn(&self, spent: Tally) -> bool {
        spent.calls >= self.min_calls
            && spent.errors as f64 * 100.0 > self.error_percent * spent.calls as f64
    }
}

/// A version's calls and failed calls.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Tally {
    pub(crate) calls: u64,
    pub(crate) errors: u64,
}

impl Tally {
    pub(crate) fn of(stats: &CallStats) -> Tally {
        // Errors after calls: a failing call counts in both, and reading
        // it in errors but not yet in calls would overstate the rate.
        let calls = stats.calls();
        Tally {
            calls,
            errors: stats.errors(),
        }
    }

    /// What was counted after `start`.
    pub(crate) fn since(self, start: Tally) -> Tally {
        Tally {
            calls: self.calls.saturating_sub(start.calls),
            errors: self.errors.saturating_sub(start.errors),
        }
    }
}

/// A canary its budget ended.
#[derive(Clone)]
pub(crate) struct RolledBack {
    pub(crate) canary: Arc<Plugin>,
    pub(crate) spent: Tally,
    pub(crate) budget: Budget,
    /// Unix milliseconds.
    pub(crate) at: u64,
}

impl fmt::Display for RolledBack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Tally { calls, errors } = self.spent;
        write!(
            f,
            "{errors} of its {calls} calls failed ({:.1}%), over its budget of {}% (judged from {} calls)",
            errors as f64 * 100.0 / calls.max(1) as f64,
            self.budget.error_percent,
            self.budget.min_calls,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_is_overdrawn_past_its_rate_once_it_has_enough_calls() {
        let budget = Budget {
            error_percent: 5.0,
            min_calls: 100,
        };
        let spent = |calls, errors| Tally { calls, errors };
        assert!(!budget.overdrawn(spent(99, 99)), "too few calls to judge");
        assert!(!budget.overdrawn(spent(100, 5)), "exactly the budget");
        assert!(budget.overdrawn(spent(100, 6)));
        assert!(!budget.overdrawn(spent(1_000, 50)));
        assert!(budget.overdrawn(spent(1_000, 51)));
        let strict = Budget {
            error_percent: 0.0,
            min_calls: 1,
        };
        assert!(strict.overdrawn(spent(1, 1)) && !strict.overdrawn(spent(7, 0)));
    }

    #[test]
    fn a_tally_since_a_start_counts_only_what_came_after() {
        let start = Tally {
            calls: 10,
            errors: 2,
        };
        let now = Tally {
            calls: 25,
            errors: 3,
        };
        assert_eq!(
            now.since(start),
            Tally {
                calls: 15,
                errors: 1
            }
        );
    }
}
