//! A lock for state that tasks share. Under madsim a runtime runs all its tasks, and calls all
//! their wakers, on one thread: there a lock needs only a borrow flag, where a mutex costs two
//! atomic operations per lock, and the broker's state, its signals and its streams are locked
//! many times per replicated record. In real mode tokio may run tasks on several threads, and a
//! `Lock` is a mutex. Either way it is never held across an await.

#[cfg(not(madsim))]
pub use self::real::{Lock, LockGuard};
#[cfg(madsim)]
pub use self::simulated::{Lock, LockGuard};

#[cfg(madsim)]
mod simulated {
    use std::cell::{RefCell, RefMut};
    use std::sync::atomic::{AtomicU64, Ordering};

    thread_local! {
        /// This thread, by a number no other thread of the process gets.
        static THREAD: u64 = {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            NEXT.fetch_add(1, Ordering::Relaxed)
        };
    }

    /// Bound to the thread that made it: a lock from any other thread panics, as does locking it
    /// twice at once (where a mutex would deadlock).
    pub struct Lock<T> {
        thread: u64,
        value: RefCell<T>,
    }

    pub type LockGuard<'a, T> = RefMut<'a, T>;

    // SAFETY: the value is only reached through `lock`, which panics on any thread but the one
    // that made the lock, so no two threads ever touch the `RefCell`. Dropping it from another
    // thread needs it whole, with no guard alive.
    unsafe impl<T: Send> Sync for Lock<T> {}

    impl<T: Default> Default for Lock<T> {
        fn default() -> Self {
            Lock::new(T::default())
        }
    }

    impl<T> Lock<T> {
        pub fn new(value: T) -> Self {
            Lock {
                thread: THREAD.with(|t| *t),
                value: RefCell::new(value),
            }
        }

        pub fn lock(&self) -> RefMut<'_, T> {
            assert_eq!(
                THREAD.with(|t| *t),
                self.thread,
                "simulated state locked off its runtime's thread"
            );
            self.value.borrow_mut()
        }
    }
}

#[cfg(not(madsim))]
mod real {
    use std::sync::{Mutex, MutexGuard, PoisonError};

    #[derive(Default)]
    pub struct Lock<T>(Mutex<T>);

    pub type LockGuard<'a, T> = MutexGuard<'a, T>;

    impl<T> Lock<T> {
        pub fn new(value: T) -> Self {
            Lock(Mutex::new(value))
        }

        /// A panic while the lock was held does not spoil it: the model's own assertions name
        /// what broke, and a broker that panicked is restarted from its disk.
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(PoisonError::into_inner)
        }
    }
}

#[cfg(all(test, madsim))]
mod tests {
    use super::Lock;

    #[test]
    fn a_lock_is_bound_to_the_thread_that_made_it() {
        let lock = std::sync::Arc::new(Lock::new(1));
        *lock.lock() += 1;
        assert_eq!(*lock.lock(), 2);
        let elsewhere = lock.clone();
        let touched = std::thread::spawn(move || *elsewhere.lock()).join();
        assert!(touched.is_err(), "another thread must not reach the value");
    }
}
