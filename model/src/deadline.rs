//! A deadline that many waits can share. madsim's `Sleep` adds a timer to the runtime's heap on
//! every poll, so `timeout` around a future that wakes often, or a fresh `timeout` per turn of a
//! wait loop, fills the heap with timers that all fire later for nothing. A `Deadline` compares
//! clocks instead, and under madsim it does not arm a timer of its own at all: every deadline of
//! the runtime waits in one wheel (`wheel`), which keeps a single timer armed at the earliest one.
//! Nearly every request is answered long before its deadline; its deadline then leaves the wheel
//! when it is dropped, where a timer of its own would have stayed in madsim's heap until it fired,
//! and woken its task, by then waiting on something else, for nothing.

use std::future::Future;
use std::pin::pin;
#[cfg(not(madsim))]
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use madsim::time::Instant;

/// The deadline passed before the future completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Elapsed;

pub struct Deadline {
    at: Instant,
    /// Its place in the wheel, once a wait on it has had to sleep.
    #[cfg(madsim)]
    entry: Option<wheel::Entry>,
    #[cfg(not(madsim))]
    sleep: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Deadline {
    pub fn after(duration: Duration) -> Self {
        Self::at(Instant::now() + duration)
    }

    pub fn at(instant: Instant) -> Self {
        Deadline {
            at: instant,
            #[cfg(madsim)]
            entry: None,
            #[cfg(not(madsim))]
            sleep: Box::pin(madsim::time::sleep_until(instant)),
        }
    }

    pub fn passed(&self) -> bool {
        Instant::now() >= self.at
    }

    /// Runs `future` until it completes or the deadline passes, whichever is first. The task that
    /// calls this is the one the deadline wakes: a deadline is used by one task.
    pub async fn run<F: Future>(&mut self, future: F) -> Result<F::Output, Elapsed> {
        let mut future = pin!(future);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(v) = future.as_mut().poll(cx) {
                return Poll::Ready(Ok(v));
            }
            if self.passed() {
                return Poll::Ready(Err(Elapsed));
            }
            #[cfg(madsim)]
            wheel::wait(&mut self.entry, self.at, cx.waker());
            #[cfg(not(madsim))]
            if self.sleep.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(Elapsed));
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(madsim)]
impl Drop for Deadline {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            wheel::leave(entry);
        }
    }
}

/// `future`, or `Elapsed` once `limit` has passed.
pub async fn within<F: Future>(limit: Duration, future: F) -> Result<F::Output, Elapsed> {
    Deadline::after(limit).run(future).await
}

/// The runtime's deadlines, by instant, and the one madsim timer that serves them.
///
/// madsim runs a runtime on one thread, and logsim runs each seed on a fresh thread, so the wheel
/// is per thread. A runtime is told apart from an earlier one on the same thread by its network
/// simulator, which every runtime has: a timer armed in a runtime that has since been dropped
/// will never fire, so it is not counted on.
///
/// madsim calls a timer's waker with its timer heap locked, so a timer cannot be armed from there:
/// when the armed timer fires, the wheel wakes what is due and also the task of the earliest
/// deadline still waiting, whose next poll arms the next timer. If that task finishes instead,
/// dropping its deadline arms it.
#[cfg(madsim)]
mod wheel {
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::{Arc, Weak};
    use std::task::{Context, Wake, Waker};

    use madsim::net::NetSim;
    use madsim::time::Instant;

    /// A deadline's key in the wheel: its instant, then the order it arrived in.
    pub type Entry = (Instant, u64);

    #[derive(Default)]
    struct Wheel {
        waiting: BTreeMap<Entry, Waker>,
        arrivals: u64,
        /// The instant of the timer armed for the earliest deadline, and the runtime it is in.
        armed: Option<(Instant, Weak<NetSim>)>,
    }

    thread_local! {
        static WHEEL: RefCell<Wheel> = RefCell::default();
    }

    impl Wheel {
        /// Whether the earliest deadline, at `at`, needs a timer armed for it.
        fn needs_timer(&self, at: Instant) -> bool {
            match &self.armed {
                None => true,
                Some((armed, runtime)) => at < *armed || runtime.strong_count() == 0,
            }
        }
    }

    /// The waker of the timer armed at an instant: it fires the deadlines due by then.
    struct Fire(Instant);

    impl Wake for Fire {
        fn wake(self: Arc<Self>) {
            fire(self.0);
        }
    }

    /// Waits for `at` with `waker`, joining the wheel if `entry` is not in it yet.
    pub fn wait(entry: &mut Option<Entry>, at: Instant, waker: &Waker) {
        let arm = WHEEL.with(|w| {
            let mut w = w.borrow_mut();
            let key = *entry.get_or_insert_with(|| {
                w.arrivals += 1;
                (at, w.arrivals)
            });
            match w.waiting.get_mut(&key) {
                Some(known) if known.will_wake(waker) => {}
                Some(known) => known.clone_from(waker),
                None => {
                    w.waiting.insert(key, waker.clone());
                }
            }
            let first = w.waiting.first_key_value().map(|((first, _), _)| *first);
            first.filter(|first| w.needs_timer(*first))
        });
        if let Some(first) = arm {
            arm_timer(first);
        }
    }

    /// A deadline that is done with waiting leaves the wheel.
    pub fn leave(entry: Entry) {
        let arm = WHEEL
            .try_with(|w| {
                let mut w = w.borrow_mut();
                w.waiting.remove(&entry);
                let first = w.waiting.first_key_value().map(|((first, _), _)| *first);
                first.filter(|first| w.needs_timer(*first))
            })
            .ok()
            .flatten();
        // A deadline can be dropped with its runtime, which then has no clock to arm a timer on.
        if let Some(first) = arm.filter(|_| madsim::time::TimeHandle::try_current().is_some()) {
            arm_timer(first);
        }
    }

    fn arm_timer(at: Instant) {
        let waker = Waker::from(Arc::new(Fire(at)));
        let sleep = pin!(madsim::time::sleep_until(at));
        // Polling arms madsim's timer with `waker`; the sleep itself is not needed after that.
        let armed_now = sleep.poll(&mut Context::from_waker(&waker)).is_pending();
        WHEEL.with(|w| {
            let mut w = w.borrow_mut();
            w.armed = armed_now.then(|| (at, Arc::downgrade(&NetSim::current())));
        });
        if !armed_now {
            fire(at);
        }
    }

    /// The timer armed for `at` fired: wakes every deadline due by then, and the earliest one
    /// left, whose task will arm the next timer.
    fn fire(at: Instant) {
        let wake: Vec<Waker> = WHEEL.with(|w| {
            let mut w = w.borrow_mut();
            if w.armed.as_ref().is_some_and(|(armed, _)| *armed == at) {
                w.armed = None;
            }
            let unarmed = w.armed.is_none();
            let mut wake = Vec::new();
            while let Some(entry) = w.waiting.first_entry() {
                if entry.key().0 > at {
                    if unarmed {
                        wake.push(entry.get().clone());
                    }
                    break;
                }
                wake.push(entry.remove());
            }
            wake
        });
        for waker in wake {
            waker.wake();
        }
    }
}
