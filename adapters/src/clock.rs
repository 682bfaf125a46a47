//! Clocks: [`SystemClock`] for real time, [`ManualClock`] for tests that move time by hand.

use lendkit_core::ids::Timestamp;
use lendkit_core::ports::Clock;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The future type [`Clock::sleep`] returns.
type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// `duration` in whole milliseconds, rounded up so a sleep never ends early; saturating.
fn millis(duration: Duration) -> i64 {
    let whole = duration.as_millis();
    let ms = if duration.subsec_nanos().is_multiple_of(1_000_000) {
        whole
    } else {
        whole.saturating_add(1)
    };
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// The operating system's wall clock; `sleep` is a real timer (`futures-timer`, no runtime needed).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// The system clock.
    pub fn new() -> Self {
        SystemClock
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        };
        Timestamp(ms)
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(futures_timer::Delay::new(duration))
    }
}

/// A clock that stands still until told to move: [`set`](ManualClock::set),
/// [`advance`](ManualClock::advance), [`advance_days`](ManualClock::advance_days).
///
/// Clones share one time, so a test can hand a clone to the library and keep one to move time.
/// [`sleep`](Clock::sleep)`(d)` completes once the time has been moved to at least
/// `now + d` (rounded up to whole milliseconds); until then it stays pending and is woken by every
/// move that reaches its deadline. Without moving it, this is a fixed clock.
#[derive(Debug, Clone)]
pub struct ManualClock {
    state: Arc<Mutex<ManualState>>,
}

#[derive(Debug)]
struct ManualState {
    now: Timestamp,
    next_sleeper: u64,
    /// Pending sleeps: id → (deadline, waker of the task that last polled it).
    sleepers: HashMap<u64, (Timestamp, Waker)>,
}

fn lock(state: &Mutex<ManualState>) -> MutexGuard<'_, ManualState> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock {
            state: Arc::new(Mutex::new(ManualState {
                now: start,
                next_sleeper: 0,
                sleepers: HashMap::new(),
            })),
        }
    }

    /// Sets the time to `now` (it may go backwards) and wakes the sleeps whose deadline it reaches.
    pub fn set(&self, now: Timestamp) {
        self.update(|_| now);
    }

    /// Moves the time forward by `by` (rounded up to whole milliseconds).
    pub fn advance(&self, by: Duration) {
        let ms = millis(by);
        self.update(|now| now.plus_ms(ms));
    }

    /// Moves the time forward by `days` whole days.
    pub fn advance_days(&self, days: u32) {
        self.update(|now| now.plus_days(days));
    }

    fn update(&self, f: impl FnOnce(Timestamp) -> Timestamp) {
        let woken: Vec<Waker> = {
            let mut state = lock(&self.state);
            state.now = f(state.now);
            let now = state.now;
            let due: Vec<u64> = state
                .sleepers
                .iter()
                .filter(|(_, (deadline, _))| *deadline <= now)
                .map(|(id, _)| *id)
                .collect();
            due.iter()
                .filter_map(|id| state.sleepers.remove(id))
                .map(|(_, waker)| waker)
                .collect()
        };
        // Wake outside the lock: a waker may poll the sleep right away.
        for waker in woken {
            waker.wake();
        }
    }
}

impl Default for ManualClock {
    /// A manual clock at the Unix epoch.
    fn default() -> Self {
        ManualClock::new(Timestamp(0))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        lock(&self.state).now
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        let mut state = lock(&self.state);
        let id = state.next_sleeper;
        state.next_sleeper = state.next_sleeper.wrapping_add(1);
        let deadline = state.now.plus_ms(millis(duration));
        Box::pin(ManualSleep {
            state: Arc::clone(&self.state),
            deadline,
            id,
        })
    }
}

/// The future of [`ManualClock::sleep`].
struct ManualSleep {
    state: Arc<Mutex<ManualState>>,
    deadline: Timestamp,
    id: u64,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.state);
        if state.now >= self.deadline {
            state.sleepers.remove(&self.id);
            Poll::Ready(())
        } else {
            state
                .sleepers
                .insert(self.id, (self.deadline, cx.waker().clone()));
            Poll::Pending
        }
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        lock(&self.state).sleepers.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use lendkit_core::ids::DAY_MS;

    #[test]
    fn manual_time_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp(1_000));
        assert_eq!(clock.now(), Timestamp(1_000));
        clock.advance(Duration::from_millis(500));
        assert_eq!(clock.now(), Timestamp(1_500));
        clock.advance_days(2);
        assert_eq!(clock.now(), Timestamp(1_500 + 2 * DAY_MS));
        clock.set(Timestamp(7));
        assert_eq!(clock.now(), Timestamp(7));
        let shared = clock.clone();
        shared.advance(Duration::from_micros(1));
        assert_eq!(
            clock.now(),
            Timestamp(8),
            "clones share the time; sub-ms rounds up"
        );
        assert_eq!(ManualClock::default().now(), Timestamp(0));
    }

    #[test]
    fn manual_sleep_completes_only_after_advance() {
        let clock = ManualClock::new(Timestamp(0));
        let mut sleep = clock.sleep(Duration::from_secs(10));
        assert!((&mut sleep).now_or_never().is_none());
        clock.advance(Duration::from_secs(9));
        assert!((&mut sleep).now_or_never().is_none());
        clock.advance(Duration::from_secs(1));
        assert!(sleep.now_or_never().is_some());

        assert!(clock.sleep(Duration::ZERO).now_or_never().is_some());
    }

    #[test]
    fn manual_sleep_is_woken_by_advance() {
        let clock = ManualClock::new(Timestamp(0));
        let sleep = clock.sleep(Duration::from_millis(100));
        let mover = clock.clone();
        let handle = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            mover.advance(Duration::from_millis(100));
        });
        futures::executor::block_on(sleep);
        assert!(handle.join().is_ok());
        assert!(lock(&clock.state).sleepers.is_empty());
    }

    #[test]
    fn dropped_sleeps_are_forgotten() {
        let clock = ManualClock::new(Timestamp(0));
        let mut sleep = clock.sleep(Duration::from_secs(1));
        assert!((&mut sleep).now_or_never().is_none());
        assert_eq!(lock(&clock.state).sleepers.len(), 1);
        drop(sleep);
        assert!(lock(&clock.state).sleepers.is_empty());
    }

    #[test]
    fn system_clock_is_after_2020_and_sleeps() {
        let clock = SystemClock::new();
        assert!(clock.now() > Timestamp(1_577_836_800_000));
        futures::executor::block_on(clock.sleep(Duration::from_millis(5)));
    }
}
