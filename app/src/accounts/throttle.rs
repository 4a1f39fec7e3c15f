//! Sign-in admission: what may reach a password check, decided before any hashing.
//!
//! - At most [`MAX_FAILURES`] attempts per user name and per client address in any
//!   [`WINDOW_MS`], counting attempts still being checked: an attempt reserves its slot under
//!   one lock *before* the password is verified, so concurrent guesses cannot all pass the check
//!   and then all be verified (check-then-act).
//! - At most [`MAX_IN_FLIGHT_PER_ADDRESS`] checks in flight per address.
//! - At most [`MAX_CONCURRENT_CHECKS`] password checks in the whole process (argon2id takes
//!   19 MiB each); beyond that a sign-in is refused at once, without hashing.
//!
//! An [`Admission`] is the reservation: settled with the check's outcome, or, if it is dropped
//! unsettled (a panic, a runtime shutting down), counted as a failure — deny by default.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Failures allowed per key and window.
pub const MAX_FAILURES: usize = 5;
/// The sliding window, in milliseconds.
pub const WINDOW_MS: i64 = 60_000;
/// Password checks one client address may have in flight at once.
pub const MAX_IN_FLIGHT_PER_ADDRESS: usize = 2;
/// Password checks in flight in the whole process (4 × 19 MiB of argon2id memory at most).
pub const MAX_CONCURRENT_CHECKS: usize = 4;
/// Keys kept before old ones are swept, so a flood of names cannot grow memory without bound.
const MAX_KEYS: usize = 10_000;

/// Why an attempt was refused before its password was looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user name or the address has used up its failures in this window.
    TooManyFailures,
    /// The address already has [`MAX_IN_FLIGHT_PER_ADDRESS`] checks in flight, or the process
    /// [`MAX_CONCURRENT_CHECKS`]: try again in a moment.
    Busy,
}

#[derive(Debug, Default)]
struct KeyState {
    /// When recent failures happened, oldest first.
    failures: VecDeque<i64>,
    /// Attempts admitted and not yet settled.
    in_flight: usize,
}

/// Recent failures and attempts in flight by key (`user:<name>` or `ip:<address>`).
#[derive(Debug)]
pub struct LoginThrottle {
    keys: HashMap<String, KeyState>,
    /// Sweep idle keys when the map reaches this size (doubles while most keys are live, so a
    /// flood costs amortised constant time per attempt).
    sweep_at: usize,
}

impl Default for LoginThrottle {
    fn default() -> LoginThrottle {
        LoginThrottle {
            keys: HashMap::new(),
            sweep_at: MAX_KEYS,
        }
    }
}

impl LoginThrottle {
    /// Reserve one attempt for `user` and `address` at `now_ms`, or say why not. A reserved
    /// attempt counts against both keys' failures until [`LoginThrottle::settle`]d.
    pub fn reserve(&mut self, user: &str, address: &str, now_ms: i64) -> Result<(), Refusal> {
        let mut address_in_flight = 0;
        for key in [user, address] {
            if let Some(state) = self.keys.get_mut(key) {
                prune(&mut state.failures, now_ms);
                if state.failures.len() + state.in_flight >= MAX_FAILURES {
                    return Err(Refusal::TooManyFailures);
                }
                if key == address {
                    address_in_flight = state.in_flight;
                }
            }
        }
        if address_in_flight >= MAX_IN_FLIGHT_PER_ADDRESS {
            return Err(Refusal::Busy);
        }
        self.sweep(now_ms);
        for key in [user, address] {
            self.keys.entry(key.to_string()).or_default().in_flight += 1;
        }
        Ok(())
    }

    /// End a reserved attempt: a failure is counted against both keys; a success forgets the
    /// user's failures.
    pub fn settle(&mut self, user: &str, address: &str, succeeded: bool, now_ms: i64) {
        for key in [user, address] {
            if let Some(state) = self.keys.get_mut(key) {
                state.in_flight = state.in_flight.saturating_sub(1);
                prune(&mut state.failures, now_ms);
                if !succeeded {
                    state.failures.push_back(now_ms);
                }
            }
        }
        if succeeded && let Some(state) = self.keys.get_mut(user) {
            state.failures.clear();
        }
    }

    /// Give back a reserved attempt whose password was never checked.
    pub fn release(&mut self, user: &str, address: &str) {
        for key in [user, address] {
            if let Some(state) = self.keys.get_mut(key) {
                state.in_flight = state.in_flight.saturating_sub(1);
            }
        }
    }

    fn sweep(&mut self, now_ms: i64) {
        if self.keys.len() < self.sweep_at {
            return;
        }
        self.keys.retain(|_, state| {
            prune(&mut state.failures, now_ms);
            state.in_flight > 0 || !state.failures.is_empty()
        });
        self.sweep_at = MAX_KEYS.max(self.keys.len() * 2);
    }
}

fn prune(times: &mut VecDeque<i64>, now_ms: i64) {
    while times.front().is_some_and(|&t| t <= now_ms - WINDOW_MS) {
        times.pop_front();
    }
}

/// Password checks running now and the most ever at once (the global bound's instrument).
#[derive(Debug, Default)]
pub struct CheckGauge {
    now: AtomicUsize,
    peak: AtomicUsize,
    total: AtomicUsize,
}

impl CheckGauge {
    /// Count one password check for as long as the returned guard lives.
    pub fn enter(&self) -> CheckGuard<'_> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.total.fetch_add(1, Ordering::SeqCst);
        CheckGuard(self)
    }

    /// The most password checks that ever ran at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// Password checks run so far.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }
}

/// One running password check (see [`CheckGauge::enter`]).
#[derive(Debug)]
pub struct CheckGuard<'a>(&'a CheckGauge);

impl Drop for CheckGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The sign-in gate an account store holds: the throttle and the global bound.
#[derive(Debug, Clone)]
pub struct SignInGate {
    throttle: Arc<Mutex<LoginThrottle>>,
    checks: Arc<Semaphore>,
    pub gauge: Arc<CheckGauge>,
}

impl Default for SignInGate {
    fn default() -> SignInGate {
        SignInGate::new(MAX_CONCURRENT_CHECKS)
    }
}

impl SignInGate {
    /// A gate allowing `concurrent_checks` password checks at once.
    pub fn new(concurrent_checks: usize) -> SignInGate {
        SignInGate {
            throttle: Arc::new(Mutex::new(LoginThrottle::default())),
            checks: Arc::new(Semaphore::new(concurrent_checks.max(1))),
            gauge: Arc::new(CheckGauge::default()),
        }
    }

    /// Admit one attempt of `name` from `client` at `now_ms`: its throttle slot is reserved
    /// and a global check permit taken, both before any hashing; or the refusal, at once.
    pub fn admit(&self, name: &str, client: &str, now_ms: i64) -> Result<Admission, Refusal> {
        let user = format!("user:{name}");
        let address = format!("ip:{client}");
        // A poisoned lock only means an earlier panic mid-update; the counts are still the
        // best we have, and refusing every sign-in forever would be worse.
        let mut throttle = self.throttle.lock().unwrap_or_else(|p| p.into_inner());
        throttle.reserve(&user, &address, now_ms)?;
        let Ok(permit) = self.checks.clone().try_acquire_owned() else {
            throttle.release(&user, &address);
            return Err(Refusal::Busy);
        };
        drop(throttle);
        Ok(Admission {
            throttle: self.throttle.clone(),
            user,
            address,
            now_ms,
            _permit: permit,
            settled: false,
        })
    }
}

/// An admitted sign-in attempt: holds its throttle slot and a global check permit until
/// settled or dropped. Move it into the blocking task that verifies the password, so the permit
/// lives exactly as long as the hashing does, even if the request is abandoned.
#[derive(Debug)]
pub struct Admission {
    throttle: Arc<Mutex<LoginThrottle>>,
    user: String,
    address: String,
    now_ms: i64,
    _permit: OwnedSemaphorePermit,
    settled: bool,
}

impl Admission {
    /// Record the outcome of the password check.
    pub fn settle(mut self, succeeded: bool) {
        self.finish(succeeded);
    }

    fn finish(&mut self, succeeded: bool) {
        if self.settled {
            return;
        }
        self.settled = true;
        let mut throttle = self.throttle.lock().unwrap_or_else(|p| p.into_inner());
        throttle.settle(&self.user, &self.address, succeeded, self.now_ms);
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.finish(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const USER: &str = "user:admin";
    const IP: &str = "ip:127.0.0.1";

    fn fail(t: &mut LoginThrottle, user: &str, ip: &str, now: i64) {
        t.reserve(user, ip, now).unwrap();
        t.settle(user, ip, false, now);
    }

    #[test]
    fn blocks_after_five_failures_and_recovers_after_the_window() {
        let mut t = LoginThrottle::default();
        for i in 0..MAX_FAILURES as i64 {
            fail(&mut t, USER, IP, 1_000 + i);
        }
        assert_eq!(t.reserve(USER, IP, 2_000), Err(Refusal::TooManyFailures));
        // Another user from the same address is blocked too; another address for a fresh
        // user is not.
        assert_eq!(
            t.reserve("user:bob", IP, 2_000),
            Err(Refusal::TooManyFailures)
        );
        assert_eq!(t.reserve("user:bob", "ip:10.0.0.1", 2_000), Ok(()));
        let later = 1_000 + WINDOW_MS + MAX_FAILURES as i64;
        assert_eq!(t.reserve(USER, IP, later), Ok(()));
    }

    #[test]
    fn a_success_forgets_the_users_failures() {
        let mut t = LoginThrottle::default();
        for i in 0..MAX_FAILURES as i64 - 1 {
            fail(&mut t, USER, &format!("ip:{i}"), i);
        }
        t.reserve(USER, "ip:x", 10).unwrap();
        t.settle(USER, "ip:x", true, 10);
        for i in 0..MAX_FAILURES as i64 - 1 {
            fail(&mut t, USER, &format!("ip:y{i}"), 20 + i);
        }
        assert_eq!(t.reserve(USER, "ip:z", 30), Ok(()));
    }

    /// The check-then-act race, without threads: attempts reserved and not yet settled count,
    /// so no more than the failure budget can be in verification for one key.
    #[test]
    fn attempts_in_flight_use_up_the_budget_before_they_fail() {
        let mut t = LoginThrottle::default();
        let mut admitted = 0;
        for i in 0..48 {
            // Each from its own address: only the user key limits them.
            if t.reserve(USER, &format!("ip:{i}"), 1_000).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, MAX_FAILURES);
        // Giving back an unchecked attempt frees its slot.
        t.release(USER, "ip:0");
        assert_eq!(t.reserve(USER, "ip:new", 1_000), Ok(()));
    }

    #[test]
    fn one_address_has_at_most_two_checks_in_flight() {
        let mut t = LoginThrottle::default();
        for i in 0..MAX_IN_FLIGHT_PER_ADDRESS {
            assert_eq!(t.reserve(&format!("user:{i}"), IP, 0), Ok(()));
        }
        assert_eq!(t.reserve("user:other", IP, 0), Err(Refusal::Busy));
        t.settle("user:0", IP, false, 0);
        assert_eq!(t.reserve("user:other", IP, 0), Ok(()));
    }

    #[test]
    fn idle_keys_are_swept_and_live_ones_kept() {
        let mut t = LoginThrottle::default();
        // Two keys per failure: the map reaches MAX_KEYS with the reservation below.
        for i in 0..(MAX_KEYS / 2 - 1) as i64 {
            fail(&mut t, &format!("user:{i}"), &format!("ip:{i}"), i);
        }
        t.reserve(USER, IP, 0).unwrap();
        assert_eq!(t.keys.len(), MAX_KEYS);
        // A window later every failure is stale; the next reservation sweeps them all but the
        // one in flight.
        t.reserve("user:late", "ip:late", WINDOW_MS * 3).unwrap();
        assert_eq!(t.keys.len(), 4);
        assert_eq!(t.keys[USER].in_flight, 1);
    }

    #[test]
    fn an_unsettled_admission_counts_as_a_failure_and_frees_its_permit() {
        let gate = SignInGate::new(1);
        let a = gate.admit("admin", "127.0.0.1", 0).unwrap();
        assert_eq!(gate.admit("bob", "10.0.0.1", 0).unwrap_err(), Refusal::Busy);
        drop(a);
        let b = gate.admit("bob", "10.0.0.1", 0).unwrap();
        b.settle(true);
        let throttle = gate.throttle.lock().unwrap();
        assert_eq!(throttle.keys["user:admin"].failures.len(), 1);
        assert_eq!(throttle.keys["user:admin"].in_flight, 0);
        assert!(throttle.keys["user:bob"].failures.is_empty());
    }
}
