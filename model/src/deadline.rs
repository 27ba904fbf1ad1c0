//! A deadline that many waits can share. madsim's `Sleep` adds a timer to the runtime's heap on
//! every poll, so `timeout` around a future that wakes often, or a fresh `timeout` per turn of a
//! wait loop, fills the heap with timers that all fire later for nothing; that was the largest
//! single cost of a simulated run. A `Deadline` arms its timer once and then only compares clocks.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::Poll;
use std::time::Duration;

use madsim::time::Instant;

/// The deadline passed before the future completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

pub struct Deadline {
    at: Instant,
    sleep: Pin<Box<dyn Future<Output = ()> + Send>>,
    armed: bool,
}

impl Deadline {
    pub fn after(duration: Duration) -> Self {
        Self::at(Instant::now() + duration)
    }

    pub fn at(instant: Instant) -> Self {
        Deadline {
            at: instant,
            sleep: Box::pin(madsim::time::sleep_until(instant)),
            armed: false,
        }
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Runs `future` until it completes or the deadline passes, whichever is first. The task that
    /// calls this is the one the timer wakes: a deadline is used by one task.
    pub async fn run<F: Future>(&mut self, future: F) -> Result<F::Output, Elapsed> {
        let mut future = pin!(future);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = future.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            if self.passed() {
                return Poll::Ready(Err(Elapsed));
            }
            // Under madsim one armed timer wakes this task; tokio wants each poll's waker.
            if !self.armed || cfg!(not(madsim)) {
                self.armed = true;
                if self.sleep.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(Err(Elapsed));
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// `future`, or `Elapsed` once `limit` has passed.
pub async fn within<F: Future>(limit: Duration, future: F) -> Result<F::Output, Elapsed> {
    Deadline::after(limit).run(future).await
}
