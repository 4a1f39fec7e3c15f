//! Sign-in throttle: at most [`MAX_FAILURES`] failed sign-ins per user name and per client
//! address in any [`WINDOW_MS`]; beyond that sign-in is refused without checking the password.

use std::collections::{HashMap, VecDeque};

/// Failures allowed per key and window.
pub const MAX_FAILURES: usize = 5;
/// The sliding window, in milliseconds.
pub const WINDOW_MS: i64 = 60_000;
/// Keys kept before old ones are swept, so a flood of names cannot grow memory without bound.
const MAX_KEYS: usize = 10_000;

/// Recent failures by key (`user:<name>` or `ip:<address>`).
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: HashMap<String, VecDeque<i64>>,
}

impl LoginThrottle {
    /// Whether any of `keys` has used up its failures at `now_ms`.
    pub fn is_blocked(&mut self, keys: &[String], now_ms: i64) -> bool {
        keys.iter().any(|key| {
            self.failures.get_mut(key).is_some_and(|times| {
                prune(times, now_ms);
                times.len() >= MAX_FAILURES
            })
        })
    }

    /// Count one failure against each of `keys`.
    pub fn record_failure(&mut self, keys: &[String], now_ms: i64) {
        if self.failures.len() >= MAX_KEYS {
            self.failures.retain(|_, times| {
                prune(times, now_ms);
                !times.is_empty()
            });
        }
        for key in keys {
            let times = self.failures.entry(key.clone()).or_default();
            prune(times, now_ms);
            times.push_back(now_ms);
        }
    }

    /// Forget the failures of `key` (after a successful sign-in).
    pub fn clear(&mut self, key: &str) {
        self.failures.remove(key);
    }
}

fn prune(times: &mut VecDeque<i64>, now_ms: i64) {
    while times.front().is_some_and(|&t| t <= now_ms - WINDOW_MS) {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_five_failures_and_recovers_after_the_window() {
        let mut t = LoginThrottle::default();
        let keys = vec!["user:admin".to_string(), "ip:127.0.0.1".to_string()];
        for i in 0..MAX_FAILURES as i64 {
            assert!(!t.is_blocked(&keys, 1_000 + i));
            t.record_failure(&keys, 1_000 + i);
        }
        assert!(t.is_blocked(&keys, 2_000));
        // Another user from the same address is blocked too; another address for a fresh
        // user is not.
        assert!(t.is_blocked(&["user:bob".into(), "ip:127.0.0.1".into()], 2_000));
        assert!(!t.is_blocked(&["user:bob".into(), "ip:10.0.0.1".into()], 2_000));
        assert!(!t.is_blocked(&keys, 1_000 + WINDOW_MS + MAX_FAILURES as i64));
    }

    #[test]
    fn clear_forgets_a_key() {
        let mut t = LoginThrottle::default();
        let keys = vec!["user:admin".to_string()];
        for i in 0..MAX_FAILURES as i64 {
            t.record_failure(&keys, i);
        }
        assert!(t.is_blocked(&keys, 10));
        t.clear("user:admin");
        assert!(!t.is_blocked(&keys, 10));
    }
}
