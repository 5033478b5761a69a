//! A circuit breaker around a sink that talks to a server.
//!
//! Closed, every failure is retried after the retry schedule's next delay. After `threshold`
//! consecutive failures it opens: the sink stops sending, says so once, and probes with one
//! message at a time, the interval between probes doubling up to the schedule's longest delay.
//! The first success closes it. Independently, the breaker knows since when the sink has been
//! failing, so the sink can give up once that exceeds its timeout.

use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff};

use crate::config::RetryPolicy;

/// The breaker's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Sending normally (perhaps retrying after a few failures).
    Closed,
    /// Too many failures in a row: one probe at a time.
    Open {
        /// When it opened.
        since: Instant,
    },
}

/// Consecutive failures, the state they lead to, and the delay before the next attempt.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    policy: RetryPolicy,
    /// The delays before the next attempts: the retry schedule, without its limit on retries
    /// (the sink's timeout is the limit), started afresh by every success.
    delays: ExponentialBackoff,
    /// Failures since the last success.
    failures: u32,
    /// When the first of those failures happened.
    failing_since: Option<Instant>,
    state: State,
    /// How many times it has opened in this run.
    openings: u64,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` consecutive failures; delays follow `policy`.
    pub fn new(threshold: u32, policy: RetryPolicy) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            policy,
            delays: endless(&policy),
            failures: 0,
            failing_since: None,
            state: State::Closed,
            openings: 0,
        }
    }

    /// Counts a failure at `now`; returns how long to wait before the next attempt, and whether
    /// this failure opened the breaker.
    pub fn failure(&mut self, now: Instant) -> (Duration, bool) {
        self.failures = self.failures.saturating_add(1);
        self.failing_since.get_or_insert(now);
        let opened = self.state == State::Closed && self.failures >= self.threshold;
        if opened {
            self.state = State::Open { since: now };
            self.openings += 1;
        }
        // The same schedule as a failing write, jitter included; it never runs out.
        (self.delays.next().unwrap_or(self.policy.max), opened)
    }

    /// Counts a failure as [`Breaker::failure`] does, unless the sink has been failing for
    /// `timeout` by then: `Err` with how long it has.
    pub fn failure_within(&mut self, now: Instant, timeout: Duration) -> Result<(Duration, bool), Duration> {
        let counted = self.failure(now);
        let failing = self.failing_for(now);
        if failing >= timeout {
            Err(failing)
        } else {
            Ok(counted)
        }
    }

    /// Counts a success: the breaker closes and the failures are forgotten. Returns true when
    /// it was open.
    pub fn success(&mut self) -> bool {
        let was_open = matches!(self.state, State::Open { .. });
        self.failures = 0;
        self.failing_since = None;
        self.delays = endless(&self.policy);
        self.state = State::Closed;
        was_open
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// How many times the breaker has opened.
    pub fn openings(&self) -> u64 {
        self.openings
    }

    /// How long the sink has been failing without a success in between (zero if it is not).
    pub fn failing_for(&self, now: Instant) -> Duration {
        self.failing_since.map_or(Duration::ZERO, |since| now - since)
    }
}

/// `policy`'s delays, without its limit on how many.
fn endless(policy: &RetryPolicy) -> ExponentialBackoff {
    policy.backoff().without_max_times().build()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        retries: 3,
        initial: Duration::from_millis(100),
        max: Duration::from_millis(1000),
    };

    #[test]
    fn it_opens_after_the_threshold_and_closes_on_the_first_success() {
        let mut breaker = Breaker::new(3, POLICY);
        let start = Instant::now();
        assert!(!breaker.failure(start).1);
        assert!(!breaker.failure(start).1);
        assert_eq!(breaker.state(), State::Closed);
        assert!(breaker.failure(start).1, "the third failure opens it");
        assert!(!breaker.failure(start).1, "it opens once");
        assert_eq!(breaker.state(), State::Open { since: start });
        assert_eq!(breaker.openings(), 1);
        assert!(breaker.success());
        assert_eq!(breaker.state(), State::Closed);
        assert_eq!(breaker.failing_for(Instant::now()), Duration::ZERO);
        assert!(!breaker.success());
    }

    #[test]
    fn delays_double_up_to_the_longest_with_at_most_as_much_jitter() {
        let mut breaker = Breaker::new(2, POLICY);
        let now = Instant::now();
        let bounds = [
            (100, 200),
            (200, 400),
            (400, 800),
            (800, 1600),
            (1000, 2000),
            (1000, 2000),
        ];
        for (low, high) in bounds {
            let (delay, _) = breaker.failure(now);
            assert!(
                delay >= Duration::from_millis(low) && delay < Duration::from_millis(high),
                "{delay:?} not in {low}..{high} ms"
            );
        }
    }

    #[test]
    fn it_knows_since_when_the_sink_has_been_failing() {
        let mut breaker = Breaker::new(5, POLICY);
        let first = Instant::now();
        breaker.failure(first);
        breaker.failure(first + Duration::from_secs(3));
        assert_eq!(
            breaker.failing_for(first + Duration::from_secs(10)),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn a_failure_past_the_timeout_says_for_how_long_instead_of_when_to_retry() {
        let mut breaker = Breaker::new(5, POLICY);
        let first = Instant::now();
        let timeout = Duration::from_secs(5);
        assert!(breaker.failure_within(first, timeout).is_ok());
        assert!(
            breaker
                .failure_within(first + Duration::from_secs(4), timeout)
                .is_ok()
        );
        assert_eq!(
            breaker.failure_within(first + Duration::from_secs(6), timeout),
            Err(Duration::from_secs(6))
        );
        breaker.success();
        assert!(
            breaker
                .failure_within(first + Duration::from_secs(7), timeout)
                .is_ok()
        );
    }
}
