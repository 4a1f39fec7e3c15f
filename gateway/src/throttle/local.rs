//! In-process throttle counters: one token bucket and two token windows per feature, behind a
//! mutex held for a few arithmetic operations.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Denied, Throttle};
use crate::config::ThrottleLimits;

const DAY_MS: i64 = 86_400_000;

/// Token usage in the last 60 one-second slots.
#[derive(Debug)]
struct MinuteWindow {
    slots: [u64; 60],
    /// The second each slot holds (so stale slots read as empty).
    seconds: [i64; 60],
}

impl Default for MinuteWindow {
    fn default() -> MinuteWindow {
        MinuteWindow {
            slots: [0; 60],
            seconds: [i64::MIN / 2; 60],
        }
    }
}

impl MinuteWindow {
    fn total(&self, now_ms: i64) -> u64 {
        let now_s = now_ms.div_euclid(1000);
        (0..60)
            .filter(|&i| now_s - self.seconds[i] < 60)
            .map(|i| self.slots[i])
            .sum()
    }

    fn add(&mut self, tokens: u64, now_ms: i64) {
        let now_s = now_ms.div_euclid(1000);
        let i = now_s.rem_euclid(60) as usize;
        if self.seconds[i] != now_s {
            self.seconds[i] = now_s;
            self.slots[i] = 0;
        }
        self.slots[i] += tokens;
    }

    /// Seconds until usage falls to `target` or below as old slots expire.
    fn seconds_until_at_most(&self, target: u64, now_ms: i64) -> u64 {
        let now_s = now_ms.div_euclid(1000);
        let mut live: Vec<(i64, u64)> = (0..60)
            .filter(|&i| now_s - self.seconds[i] < 60)
            .map(|i| (self.seconds[i], self.slots[i]))
            .collect();
        live.sort_unstable();
        let mut total: u64 = live.iter().map(|(_, t)| t).sum();
        for (second, tokens) in live {
            if total <= target {
                break;
            }
            total -= tokens;
            if total <= target {
                return (second + 60 - now_s).max(1) as u64;
            }
        }
        1
    }
}

#[derive(Debug)]
struct FeatureState {
    bucket: f64,
    refilled_ms: i64,
    minute: MinuteWindow,
    day: i64,
    day_tokens: u64,
}

#[derive(Default)]
pub struct LocalThrottle {
    features: Mutex<HashMap<String, FeatureState>>,
}

impl LocalThrottle {
    pub fn new() -> LocalThrottle {
        LocalThrottle::default()
    }

    fn with_state<R>(
        &self,
        feature: &str,
        now_ms: i64,
        burst: f64,
        f: impl FnOnce(&mut FeatureState) -> R,
    ) -> R {
        let mut map = match self.features.lock() {
            Ok(m) => m,
            Err(poisoned) => poisoned.into_inner(),
        };
        let state = map
            .entry(feature.to_string())
            .or_insert_with(|| FeatureState {
                bucket: burst,
                refilled_ms: now_ms,
                minute: MinuteWindow::default(),
                day: now_ms.div_euclid(DAY_MS),
                day_tokens: 0,
            });
        if state.day != now_ms.div_euclid(DAY_MS) {
            state.day = now_ms.div_euclid(DAY_MS);
            state.day_tokens = 0;
        }
        f(state)
    }
}

#[async_trait]
impl Throttle for LocalThrottle {
    async fn admit(
        &self,
        feature: &str,
        limits: &ThrottleLimits,
        estimated_tokens: u64,
        now_ms: i64,
    ) -> Result<(), Denied> {
        let burst = f64::from(limits.burst.max(1));
        let per_ms = f64::from(limits.requests_per_minute.max(1)) / 60_000.0;
        self.with_state(feature, now_ms, burst, |s| {
            let elapsed = (now_ms - s.refilled_ms).max(0) as f64;
            s.bucket = (s.bucket + elapsed * per_ms).min(burst);
            s.refilled_ms = now_ms;
            if s.bucket < 1.0 {
                let wait_ms = (1.0 - s.bucket) / per_ms;
                return Err(Denied {
                    limit: "requests_per_minute",
                    retry_after_secs: (wait_ms / 1000.0).ceil().max(1.0) as u64,
                });
            }
            let minute_used = s.minute.total(now_ms);
            if minute_used > 0
                && minute_used.saturating_add(estimated_tokens) > limits.tokens_per_minute
            {
                let target = limits.tokens_per_minute.saturating_sub(estimated_tokens);
                return Err(Denied {
                    limit: "tokens_per_minute",
                    retry_after_secs: s.minute.seconds_until_at_most(target, now_ms),
                });
            }
            if s.day_tokens > 0
                && s.day_tokens.saturating_add(estimated_tokens) > limits.tokens_per_day
            {
                let next_day_ms = (s.day + 1) * DAY_MS;
                return Err(Denied {
                    limit: "tokens_per_day",
                    retry_after_secs: ((next_day_ms - now_ms) / 1000).max(1) as u64,
                });
            }
            s.bucket -= 1.0;
            Ok(())
        })
    }

    async fn charge(&self, feature: &str, tokens: u64, now_ms: i64) {
        self.with_state(feature, now_ms, 1.0, |s| {
            s.minute.add(tokens, now_ms);
            s.day_tokens = s.day_tokens.saturating_add(tokens);
        });
    }

    async fn usage(&self, feature: &str, now_ms: i64) -> (u64, u64) {
        self.with_state(feature, now_ms, 1.0, |s| {
            (s.minute.total(now_ms), s.day_tokens)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ThrottleLimits = ThrottleLimits {
        requests_per_minute: 60,
        burst: 3,
        tokens_per_minute: 100,
        tokens_per_day: 250,
    };

    #[tokio::test]
    async fn burst_then_refill_at_the_sustained_rate() {
        let t = LocalThrottle::new();
        let t0 = 1_000_000;
        for _ in 0..3 {
            t.admit("f", &LIMITS, 1, t0).await.unwrap();
        }
        let denied = t.admit("f", &LIMITS, 1, t0).await.unwrap_err();
        assert_eq!(denied.limit, "requests_per_minute");
        assert_eq!(denied.retry_after_secs, 1);
        // 60/min = one per second.
        t.admit("f", &LIMITS, 1, t0 + 1000).await.unwrap();
        assert!(t.admit("f", &LIMITS, 1, t0 + 1000).await.is_err());
        // Other features are independent.
        t.admit("g", &LIMITS, 1, t0).await.unwrap();
    }

    #[tokio::test]
    async fn tokens_per_minute_roll_off_and_say_when() {
        let t = LocalThrottle::new();
        let t0 = 10_000_000;
        t.admit("f", &LIMITS, 10, t0).await.unwrap();
        t.charge("f", 95, t0).await;
        let denied = t.admit("f", &LIMITS, 10, t0 + 5_000).await.unwrap_err();
        assert_eq!(denied.limit, "tokens_per_minute");
        assert_eq!(denied.retry_after_secs, 55);
        t.admit("f", &LIMITS, 10, t0 + 60_000).await.unwrap();
        assert_eq!(t.usage("f", t0 + 60_000).await.0, 0);
    }

    #[tokio::test]
    async fn tokens_per_day_reset_at_utc_midnight() {
        let t = LocalThrottle::new();
        let day = 20_000 * DAY_MS;
        t.charge("f", 240, day + 1000).await;
        let denied = t
            .admit("f", &LIMITS, 20, day + 3_600_000)
            .await
            .unwrap_err();
        assert_eq!(denied.limit, "tokens_per_day");
        assert_eq!(denied.retry_after_secs, 23 * 3600);
        t.admit("f", &LIMITS, 20, day + DAY_MS).await.unwrap();
    }

    #[tokio::test]
    async fn a_single_large_request_is_not_refused_forever() {
        let t = LocalThrottle::new();
        t.admit("f", &LIMITS, 1_000, 5_000).await.unwrap();
    }
}
