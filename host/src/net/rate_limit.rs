//! The per-connection rate limit of PROTOCOL.md: a token bucket that every
//! inbound data message draws from, and the abuse rule (more than 100
//! limited messages within any 10 s closes with 4008).

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Limited messages tolerated within [`ABUSE_WINDOW`].
const ABUSE_LIMIT: usize = 100;
const ABUSE_WINDOW: Duration = Duration::from_secs(10);

pub(crate) struct RateLimit {
    tokens: f64,
    refilled: Instant,
    per_sec: f64,
    burst: f64,
    /// When recent messages were limited, oldest first; empty (and
    /// unallocated) for a well-behaved client.
    limited: VecDeque<Instant>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admit {
    Yes,
    /// Answer `RATE_LIMITED` and drop the message.
    Limited,
    /// Close with 4008.
    Abuse,
}

impl RateLimit {
    /// The bucket starts full.
    pub(crate) fn new(per_sec: f64, burst: f64, now: Instant) -> RateLimit {
        RateLimit {
            tokens: burst,
            refilled: now,
            per_sec,
            burst,
            limited: VecDeque::new(),
        }
    }

    pub(crate) fn admit(&mut self, now: Instant) -> Admit {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_sec).min(self.burst);
        self.refilled = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admit::Yes;
        }
        while self
            .limited
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= ABUSE_WINDOW)
        {
            self.limited.pop_front();
        }
        self.limited.push_back(now);
        if self.limited.len() > ABUSE_LIMIT {
            Admit::Abuse
        } else {
            Admit::Limited
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let start = Instant::now();
        let mut limit = RateLimit::new(1.0, 3.0, start);
        assert_eq!(
            (0..3)
                .map(|_| limit.admit(start))
                .filter(|a| *a == Admit::Yes)
                .count(),
            3
        );
        assert_eq!(limit.admit(start), Admit::Limited);
        assert_eq!(limit.admit(start + Duration::from_millis(1001)), Admit::Yes);
    }

    #[test]
    fn the_hundred_and_first_limited_message_within_ten_seconds_is_abuse() {
        let start = Instant::now();
        let mut limit = RateLimit::new(0.0, 0.0, start);
        for _ in 0..ABUSE_LIMIT {
            assert_eq!(limit.admit(start), Admit::Limited);
        }
        assert_eq!(limit.admit(start + Duration::from_secs(9)), Admit::Abuse);
    }

    #[test]
    fn the_window_slides() {
        let start = Instant::now();
        let mut limit = RateLimit::new(0.0, 0.0, start);
        for _ in 0..ABUSE_LIMIT {
            assert_eq!(limit.admit(start), Admit::Limited);
        }
        assert_eq!(limit.admit(start + ABUSE_WINDOW), Admit::Limited);
    }
}
