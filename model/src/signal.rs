//! A change signal: waiters learn that the state moved since they last looked.
//!
//! Not tokio's `watch`: its receivers pick one of several internal queues at random, from a
//! per-thread generator seeded by a process-wide counter, so the order in which waiters wake
//! would differ between two runs of one seed in the same process.
//!
//! Changes are either to everything or to one key (a partition). A waiter that named its keys
//! sleeps through other keys' changes: a long-polling fetch of one partition need not wake, scan
//! and sleep again for every write to every other partition.

use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::sync::{Lock, LockGuard};

/// The keys a listener names. Nearly always one (a produce waits on its partition's high
/// watermark), held inline; more are shared between the listener and its waiter, so that waiting
/// again copies none.
#[derive(Clone)]
pub enum Keys<K> {
    One(K),
    Many(Arc<[K]>),
}

impl<K> Keys<K> {
    fn as_slice(&self) -> &[K] {
        match self {
            Keys::One(key) => std::slice::from_ref(key),
            Keys::Many(keys) => keys,
        }
    }
}

impl<K> From<[K; 1]> for Keys<K> {
    fn from([key]: [K; 1]) -> Self {
        Keys::One(key)
    }
}

impl<K> From<Vec<K>> for Keys<K> {
    fn from(keys: Vec<K>) -> Self {
        Keys::Many(keys.into())
    }
}

impl<K> From<Arc<[K]>> for Keys<K> {
    fn from(keys: Arc<[K]>) -> Self {
        Keys::Many(keys)
    }
}

struct Waiter<K> {
    /// `None`: woken only by changes to everything.
    keys: Option<Keys<K>>,
    /// A keyed change reporting a value below this passes the waiter by (see `notify_key_at`).
    at_least: i64,
    waker: Waker,
}

struct Inner<K> {
    /// Counts changes to everything.
    version: u64,
    /// Counts changes to each key that has changed alone: a leader's partitions, looked up for
    /// each key of each fetch. Hashed: only ever looked up, never walked in order.
    keyed: rustc_hash::FxHashMap<K, u64>,
    /// Woken in the order they started to wait.
    waiters: Vec<Waiter<K>>,
    /// Room for the waiters one keyed change wakes, kept between changes: a partition's high
    /// watermark moves about once per record.
    woken: Vec<Waiter<K>>,
}

impl<K: Hash + Eq> Inner<K> {
    fn key_version(&self, key: &K) -> u64 {
        self.keyed.get(key).copied().unwrap_or(0)
    }

    fn keys_version(&self, keys: &[K]) -> u64 {
        keys.iter()
            .fold(0u64, |sum, k| sum.wrapping_add(self.key_version(k)))
    }
}

pub struct Signal<K> {
    inner: Arc<Lock<Inner<K>>>,
}

impl<K> Clone for Signal<K> {
    fn clone(&self) -> Self {
        Signal {
            inner: self.inner.clone(),
        }
    }
}

impl<K> Default for Signal<K> {
    fn default() -> Self {
        Signal {
            inner: Arc::new(Lock::new(Inner {
                version: 0,
                keyed: Default::default(),
                waiters: Vec::new(),
                woken: Vec::new(),
            })),
        }
    }
}

impl<K: Hash + Eq + Clone> Signal<K> {
    fn lock(&self) -> LockGuard<'_, Inner<K>> {
        self.inner.lock()
    }

    /// Everything may have changed: wakes every waiter.
    pub fn notify(&self) {
        let waiters = {
            let mut inner = self.lock();
            inner.version = inner.version.wrapping_add(1);
            std::mem::take(&mut inner.waiters)
        };
        for w in waiters {
            w.waker.wake();
        }
    }

    /// Only `key` changed: wakes the waiters that named it.
    pub fn notify_key(&self, key: &K) {
        self.notify_key_at(key, i64::MAX);
    }

    /// Only `key` changed, to `value`: wakes the waiters that named it and wait for at least that
    /// much. A waiter passed by still sees the change at its next look; it is only not woken for
    /// a value it has said cannot satisfy it.
    pub fn notify_key_at(&self, key: &K, value: i64) {
        let mut woken = {
            let mut inner = self.lock();
            match inner.keyed.get_mut(key) {
                Some(v) => *v = v.wrapping_add(1),
                None => drop(inner.keyed.insert(key.clone(), 1)),
            }
            let mut woken = std::mem::take(&mut inner.woken);
            woken.extend(inner.waiters.extract_if(.., |w| {
                value >= w.at_least
                    && w.keys
                        .as_ref()
                        .is_some_and(|keys| keys.as_slice().contains(key))
            }));
            if woken.is_empty() {
                inner.woken = woken;
                return;
            }
            woken
        };
        // Woken with the lock released: a waker may be anything, even one that looks again.
        for w in woken.drain(..) {
            w.waker.wake();
        }
        self.lock().woken = woken;
    }

    /// A listener to changes to everything, that has seen everything up to now.
    pub fn subscribe(&self) -> Listener<K> {
        Listener {
            seen: self.lock().version,
            keys: None,
            at_least: i64::MIN,
            signal: self.clone(),
        }
    }

    /// A listener to changes to everything and to `keys`, that has seen everything up to now.
    pub fn subscribe_to(&self, keys: impl Into<Keys<K>>) -> Listener<K> {
        let keys = keys.into();
        let inner = self.lock();
        let seen_keys = inner.keys_version(keys.as_slice());
        Listener {
            seen: inner.version,
            keys: Some((keys, seen_keys)),
            at_least: i64::MIN,
            signal: self.clone(),
        }
    }
}

pub struct Listener<K> {
    signal: Signal<K>,
    seen: u64,
    /// The keys listened to, and the sum of their versions last seen: versions only grow, so the
    /// sum moves exactly when one of them does, and one number stands for them all.
    keys: Option<(Keys<K>, u64)>,
    /// The least value of a keyed change worth waking for (`i64::MIN`: any).
    at_least: i64,
}

impl<K: Hash + Eq + Clone> Listener<K> {
    /// From now on, a keyed change to a value below `at_least` does not wake this listener: an
    /// acks=all produce waits for the high watermark to pass its own offset, not for each move.
    pub fn wake_at_least(&mut self, at_least: i64) {
        self.at_least = at_least;
    }

    /// Resolves once the signal has fired, for everything or for one of this listener's keys,
    /// since this listener last looked.
    pub fn changed(&mut self) -> Changed<'_, K> {
        Changed { listener: self }
    }
}

pub struct Changed<'a, K> {
    listener: &'a mut Listener<K>,
}

impl<K: Hash + Eq + Clone> Future for Changed<'_, K> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let listener = &mut *self.listener;
        let mut inner = listener.signal.lock();
        let mut fired = inner.version != listener.seen;
        listener.seen = inner.version;
        if let Some((keys, seen)) = &mut listener.keys {
            let now = inner.keys_version(keys.as_slice());
            fired |= now != *seen;
            *seen = now;
        }
        if fired {
            return Poll::Ready(());
        }
        // The same task may have left a waiter behind for other keys (a listener that returned
        // on its deadline, or on a change to everything): only a waiter for these keys is this
        // listener's, or a move of its own keys would pass it by.
        let keys = listener.keys.as_ref().map(|(keys, _)| keys.as_slice());
        match (inner.waiters.iter_mut())
            .find(|w| w.waker.will_wake(cx.waker()) && w.keys.as_ref().map(Keys::as_slice) == keys)
        {
            Some(waiter) => waiter.at_least = listener.at_least,
            None => inner.waiters.push(Waiter {
                keys: listener.keys.as_ref().map(|(keys, _)| keys.clone()),
                at_least: listener.at_least,
                waker: cx.waker().clone(),
            }),
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Polls `listener` once with a counting waker; true if it was ready.
    fn ready(listener: &mut Listener<u32>, count: &Arc<Count>) -> bool {
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut changed = listener.changed();
        Pin::new(&mut changed).poll(&mut cx).is_ready()
    }

    #[test]
    fn a_keyed_waiter_sleeps_through_other_keys_and_wakes_for_its_own_or_for_all() {
        let signal = Signal::<u32>::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let mut one = signal.subscribe_to(vec![1]);
        assert!(!ready(&mut one, &count));
        signal.notify_key(&2);
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert!(!ready(&mut one, &count));
        signal.notify_key(&1);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(ready(&mut one, &count));
        assert!(!ready(&mut one, &count));
        signal.notify();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert!(ready(&mut one, &count));
    }

    #[test]
    fn an_unkeyed_waiter_wakes_only_for_changes_to_everything() {
        let signal = Signal::<u32>::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let mut all = signal.subscribe();
        assert!(!ready(&mut all, &count));
        signal.notify_key(&7);
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        assert!(!ready(&mut all, &count));
        signal.notify();
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(ready(&mut all, &count));
    }

    #[test]
    fn a_waiter_for_at_least_a_value_sleeps_through_smaller_ones_but_still_sees_them() {
        let signal = Signal::<u32>::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let mut one = signal.subscribe_to(vec![1]);
        one.wake_at_least(10);
        assert!(!ready(&mut one, &count));
        signal.notify_key_at(&1, 9);
        assert_eq!(count.0.load(Ordering::SeqCst), 0, "9 cannot satisfy it");
        signal.notify_key_at(&1, 10);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(ready(&mut one, &count));
        // Passed by, but not blind: the next look sees the change.
        assert!(!ready(&mut one, &count));
        signal.notify_key_at(&1, 3);
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert!(ready(&mut one, &count));
        // A change to everything wakes it whatever it waits for.
        assert!(!ready(&mut one, &count));
        signal.notify();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_task_that_left_a_waiter_for_other_keys_still_wakes_for_its_new_ones() {
        let signal = Signal::<u32>::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        // A listener of key 1 that gave up (its deadline passed): its waiter stays behind.
        let mut first = signal.subscribe_to(vec![1]);
        assert!(!ready(&mut first, &count));
        drop(first);
        // The same task now waits for key 2, as the coordinator's next write does.
        let mut second = signal.subscribe_to(vec![2]);
        assert!(!ready(&mut second, &count));
        signal.notify_key(&2);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "a move of key 2 wakes it"
        );
        assert!(ready(&mut second, &count));
    }
}
