//! A change signal: waiters learn that the state moved since they last looked.
//!
//! Not tokio's `watch`: its receivers pick one of several internal queues at random, from a
//! per-thread generator seeded by a process-wide counter, so the order in which waiters wake
//! would differ between two runs of one seed in the same process.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

#[derive(Default)]
struct Inner {
    version: u64,
    /// Woken in the order they started to wait.
    waiters: Vec<Waker>,
}

#[derive(Clone, Default)]
pub struct Signal {
    inner: Arc<Mutex<Inner>>,
}

impl Signal {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn notify(&self) {
        let waiters = {
            let mut inner = self.lock();
            inner.version = inner.version.wrapping_add(1);
            std::mem::take(&mut inner.waiters)
        };
        for w in waiters {
            w.wake();
        }
    }

    /// A listener that has seen everything up to now.
    pub fn subscribe(&self) -> Listener {
        Listener {
            signal: self.clone(),
            seen: self.lock().version,
        }
    }
}

pub struct Listener {
    signal: Signal,
    seen: u64,
}

impl Listener {
    /// Resolves once the signal has fired since this listener last looked.
    pub fn changed(&mut self) -> Changed<'_> {
        Changed { listener: self }
    }
}

pub struct Changed<'a> {
    listener: &'a mut Listener,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let listener = &mut *self.listener;
        let mut inner = listener.signal.lock();
        if inner.version != listener.seen {
            listener.seen = inner.version;
            return Poll::Ready(());
        }
        if !inner.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            inner.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
