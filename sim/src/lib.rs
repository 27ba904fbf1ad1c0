//! logsim: deterministic simulation testing for Kafka-style distributed logs.
//!
//! One `u64` seed drives a madsim runtime (network, time, task order) and the ChaCha streams from
//! which the workload and the faults draw; the same seed replays the same run, event for event.
//!
//! Built without `--cfg madsim`, only `real` is here: the same broker code on real sockets.

/// The simulator's modules: they run on madsim, so a build without `--cfg madsim` leaves them out.
macro_rules! simulated {
    ($($module:ident),* $(,)?) => {
        $(
            #[cfg(madsim)]
            pub mod $module;
        )*
    };
}

simulated!(
    bench,
    checkers,
    clock,
    cluster,
    disk,
    explain,
    faults,
    group_consumer,
    history,
    journal,
    hunt,
    mirror,
    narrate,
    observer,
    replay,
    report,
    run,
    scenario,
    shard,
    shrink,
    sim,
    swarm,
    workload,
);

#[cfg(not(madsim))]
pub mod real;

/// The value of `key` in a map, made with `make` when the key is new. The checks look partitions
/// up by name at every step; `entry` would copy the key each time, where this copies it only for
/// a new key.
pub fn slot<'a, K, Q, V>(
    map: &'a mut std::collections::BTreeMap<K, V>,
    key: &Q,
    make: impl FnOnce() -> V,
) -> &'a mut V
where
    K: std::borrow::Borrow<Q> + Ord,
    Q: ToOwned<Owned = K> + Ord + ?Sized,
{
    if !map.contains_key(key) {
        map.insert(key.to_owned(), make());
    }
    map.get_mut(key).expect("just made")
}

/// Locks a mutex of the harness. A panic inside a run is reported as a failed run, so a lock it
/// poisoned is still good to read. (A run's own state takes `model::sync::Lock`, which needs
/// none of this.)
pub trait Locked<T> {
    fn locked(&self) -> std::sync::MutexGuard<'_, T>;
}

impl<T> Locked<T> for std::sync::Mutex<T> {
    fn locked(&self) -> std::sync::MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|p| p.into_inner())
    }
}
