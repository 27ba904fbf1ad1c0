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
        Self::at(crate::env::now() + duration)
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
        crate::env::now() >= self.at
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
///
/// Nearly every deadline leaves long before it is due, so leaving must be cheap: a deadline's
/// waker sits in a slot of its own, and its place in the queue is left behind when it leaves, to
/// be dropped once it comes to the front. The front of the queue is always a deadline still
/// waiting.
#[cfg(madsim)]
mod wheel {
    use std::cell::RefCell;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    use std::future::Future;
    use std::pin::pin;
    use std::sync::{Arc, Weak};
    use std::task::{Context, Wake, Waker};

    use madsim::net::NetSim;
    use madsim::time::Instant;

    /// A deadline's place in the wheel: its instant, the order it arrived in (which breaks ties
    /// between equal instants), and the slot that holds its waker.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
    pub struct Entry {
        at: Instant,
        arrival: u64,
        slot: usize,
    }

    /// A waiting deadline's waker, and which arrival it belongs to: a slot is used again once its
    /// deadline has left or fired.
    struct Slot {
        arrival: u64,
        waker: Option<Waker>,
    }

    #[derive(Default)]
    struct Wheel {
        queue: BinaryHeap<Reverse<Entry>>,
        slots: Vec<Slot>,
        free: Vec<usize>,
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

        fn is_waiting(&self, entry: &Entry) -> bool {
            self.slots
                .get(entry.slot)
                .is_some_and(|s| s.arrival == entry.arrival && s.waker.is_some())
        }

        /// Puts `entry` in the queue with `waker` in a free slot, which it records.
        fn join(&mut self, entry: &mut Entry, waker: &Waker) {
            let slot = Slot {
                arrival: entry.arrival,
                waker: Some(waker.clone()),
            };
            entry.slot = match self.free.pop() {
                Some(free) => {
                    self.slots[free] = slot;
                    free
                }
                None => {
                    self.slots.push(slot);
                    self.slots.len() - 1
                }
            };
            self.queue.push(Reverse(*entry));
        }

        /// Takes a waiting deadline's waker and frees its slot.
        fn take(&mut self, entry: &Entry) -> Option<Waker> {
            if !self.is_waiting(entry) {
                return None;
            }
            self.free.push(entry.slot);
            self.slots[entry.slot].waker.take()
        }

        /// Drops deadlines that left from the front of the queue; returns the earliest waiting.
        fn front(&mut self) -> Option<Entry> {
            while let Some(Reverse(first)) = self.queue.peek().copied() {
                if self.is_waiting(&first) {
                    return Some(first);
                }
                self.queue.pop();
            }
            None
        }

        /// The instant to arm a timer for, if the earliest deadline needs one.
        fn timer_wanted(&mut self) -> Option<Instant> {
            let first = self.front()?.at;
            self.needs_timer(first).then_some(first)
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
            match entry {
                Some(e) if w.is_waiting(e) => {
                    let known = w.slots[e.slot].waker.as_mut().expect("waiting");
                    if !known.will_wake(waker) {
                        known.clone_from(waker);
                    }
                }
                // Fired already, yet waited on again: it joins once more, in its old place.
                Some(e) => w.join(e, waker),
                None => {
                    w.arrivals += 1;
                    let mut e = Entry {
                        at,
                        arrival: w.arrivals,
                        slot: 0,
                    };
                    w.join(&mut e, waker);
                    *entry = Some(e);
                }
            }
            w.timer_wanted()
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
                // One that fired already is gone, but the timer may still want arming.
                w.take(&entry);
                w.timer_wanted()
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
            while let Some(first) = w.front() {
                if first.at > at {
                    if unarmed {
                        wake.extend(w.slots[first.slot].waker.clone());
                    }
                    break;
                }
                w.queue.pop();
                wake.extend(w.take(&first));
            }
            wake
        });
        for waker in wake {
            waker.wake();
        }
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn each_deadline_fires_at_its_instant_however_others_come_and_go() {
        madsim::runtime::Runtime::new().block_on(async {
            let start = Instant::now();
            let fired = Arc::new(Mutex::new(Vec::new()));
            for ms in [30, 10, 20, 10, 5] {
                let fired = fired.clone();
                madsim::task::spawn(async move {
                    let due = Instant::now() + Duration::from_millis(ms);
                    let mut deadline = Deadline::at(due);
                    let waited = deadline.run(std::future::pending::<()>()).await;
                    assert_eq!(waited, Err(Elapsed));
                    // madsim's timers fire on a whole millisecond.
                    let late = Instant::now() - due;
                    assert!(late <= Duration::from_millis(1), "fired {late:?} late");
                    fired.lock().expect("not poisoned").push(ms);
                });
            }
            // Done before its deadline, which leaves the wheel before any other is due.
            let early = within(
                Duration::from_millis(3),
                madsim::time::sleep(Duration::from_millis(2)),
            );
            assert_eq!(early.await, Ok(()));
            // Waited on again and again by a task that other wake-ups keep polling.
            let made = Instant::now();
            let mut shared = Deadline::after(Duration::from_millis(25));
            for _ in 0..3 {
                let turn = shared.run(madsim::time::sleep(Duration::from_millis(1)));
                assert_eq!(turn.await, Ok(()));
            }
            assert_eq!(shared.run(std::future::pending::<()>()).await, Err(Elapsed));
            assert_eq!(made.elapsed().as_millis(), 25);
            madsim::time::sleep(Duration::from_millis(50)).await;
            let mut fired = fired.lock().expect("not poisoned").clone();
            assert_eq!(fired.len(), 5, "every deadline fired");
            fired.sort_unstable();
            assert_eq!(fired, [5, 10, 10, 20, 30]);
            assert!(start.elapsed() >= Duration::from_millis(75));
        });
    }
}
