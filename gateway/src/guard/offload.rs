//! Guard work off the async runtime. Guarding a text is CPU work (linear in its size, but a
//! large prompt still takes milliseconds to seconds in a debug build); run on a runtime worker
//! it would stall every other request that worker serves — on the embedded default, the
//! console's routes too. Every embedded [`Guardrail`](super::Guardrail) and
//! [`StreamGuard`](super::StreamGuard) call, and the Bedrock-compatible ApplyGuardrail route,
//! therefore runs its engine work here: on tokio's blocking threads, at most
//! [`GuardPool::permits`] pieces at once (the rest wait for a slot up to a bounded time), each
//! within a time budget well under the request deadline. Waiting too long for a slot is
//! [`GuardError::Busy`], overrunning the budget [`GuardError::Budget`]: both fail closed (the
//! text is neither passed on nor released) and the API answers 503. Work that overran keeps its
//! slot until it ends, so the bound on concurrent guard work holds.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::GuardError;

/// Longest wait for a free slot before [`GuardError::Busy`].
pub const WAIT: Duration = Duration::from_secs(10);
/// Longest one piece of guard work may take before [`GuardError::Budget`] (the default request
/// deadline is 300 s; the chat path guards each message and each streamed release separately).
pub const BUDGET: Duration = Duration::from_secs(30);

/// A bound on concurrent guard work, and its wait and time budgets.
#[derive(Debug, Clone)]
pub struct GuardPool {
    slots: Arc<Semaphore>,
    permits: usize,
    wait: Duration,
    budget: Duration,
}

impl GuardPool {
    /// A pool running at most `permits` pieces of guard work at once.
    pub fn new(permits: usize, wait: Duration, budget: Duration) -> GuardPool {
        let permits = permits.max(1);
        GuardPool {
            slots: Arc::new(Semaphore::new(permits)),
            permits,
            wait,
            budget,
        }
    }

    /// The process-wide pool every guardrail uses: one slot per CPU (at least two), so guard
    /// work never takes more cores than the machine has, and the runtime's workers stay free.
    pub fn global() -> &'static GuardPool {
        static POOL: OnceLock<GuardPool> = OnceLock::new();
        POOL.get_or_init(|| {
            let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
            GuardPool::new(cpus.max(2), WAIT, BUDGET)
        })
    }

    /// How many pieces of guard work may run at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Run `work` on a blocking thread once a slot is free; its result, or `Busy` / `Budget`.
    pub async fn run<T, F>(&self, work: F) -> Result<T, GuardError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.slots).acquire_owned())
            .await
            .map_err(|_| GuardError::Busy)?
            .map_err(|_| GuardError::Busy)?;
        let handle = tokio::task::spawn_blocking(move || {
            let _slot = permit;
            work()
        });
        within(self.budget, handle).await
    }
}

/// The blocking task's result within `budget` (the task itself runs on to its end).
async fn within<T>(
    budget: Duration,
    handle: impl Future<Output = Result<T, tokio::task::JoinError>>,
) -> Result<T, GuardError> {
    match tokio::time::timeout(budget, handle).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(_)) => Err(GuardError::Backend("guard work failed".into())),
        Err(_) => Err(GuardError::Budget),
    }
}

/// [`GuardPool::run`] on the process-wide pool.
pub async fn run<T, F>(work: F) -> Result<T, GuardError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    GuardPool::global().run(work).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_full_pool_is_busy_and_an_overrun_is_over_budget() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let pool = GuardPool::new(1, Duration::from_millis(50), Duration::from_millis(100));
            let slow = pool.clone();
            let first = tokio::spawn(async move {
                slow.run(|| std::thread::sleep(Duration::from_millis(400)))
                    .await
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(matches!(pool.run(|| 1).await, Err(GuardError::Busy)));
            assert!(matches!(first.await.unwrap(), Err(GuardError::Budget)));
            // The overrun still holds its slot until it ends; then work runs again.
            tokio::time::sleep(Duration::from_millis(400)).await;
            assert_eq!(pool.run(|| 7).await.unwrap(), 7);
        });
    }

    #[test]
    fn the_runtime_stays_responsive_while_guard_work_runs() {
        // One runtime thread: a cheap task must complete promptly while CPU-heavy guard work
        // (here: busy loops standing in for big texts) runs in the pool.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let pool = GuardPool::new(2, WAIT, BUDGET);
            let spin = || {
                let t = Instant::now();
                let mut x = 0u64;
                while t.elapsed() < Duration::from_millis(600) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
                x
            };
            let a = tokio::spawn({
                let p = pool.clone();
                async move { p.run(spin).await }
            });
            let b = tokio::spawn({
                let p = pool.clone();
                async move { p.run(spin).await }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            let t = Instant::now();
            let cheap = tokio::spawn(async { 1 + 1 }).await.unwrap();
            assert_eq!(cheap, 2);
            assert!(
                t.elapsed() < Duration::from_millis(200),
                "{:?}",
                t.elapsed()
            );
            assert!(a.await.unwrap().is_ok() && b.await.unwrap().is_ok());
        });
    }
}
