//! logsim: deterministic simulation testing for Kafka-style distributed logs.
//!
//! One `u64` seed drives a madsim runtime (network, time, task order) and the ChaCha streams from
//! which the workload and the faults draw; the same seed replays the same run, event for event.
//!
//! Built without `--cfg madsim`, only `real` is here: the same broker code on real sockets.

#[cfg(madsim)]
pub mod bench;
#[cfg(madsim)]
pub mod checkers;
#[cfg(madsim)]
pub mod clock;
#[cfg(madsim)]
pub mod cluster;
#[cfg(madsim)]
pub mod disk;
#[cfg(madsim)]
pub mod explain;
#[cfg(madsim)]
pub mod faults;
#[cfg(madsim)]
pub mod group_consumer;
#[cfg(madsim)]
pub mod history;
#[cfg(madsim)]
pub mod hunt;
#[cfg(madsim)]
pub mod narrate;
#[cfg(madsim)]
pub mod observer;
#[cfg(madsim)]
pub mod replay;
#[cfg(madsim)]
pub mod report;
#[cfg(madsim)]
pub mod run;
#[cfg(madsim)]
pub mod scenario;
#[cfg(madsim)]
pub mod shard;
#[cfg(madsim)]
pub mod shrink;
#[cfg(madsim)]
pub mod swarm;
#[cfg(madsim)]
pub mod workload;

#[cfg(not(madsim))]
pub mod real;

/// Locks a mutex of the harness. A panic inside a run is reported as a failed run, so a lock it
/// poisoned is still good to read.
pub trait Locked<T> {
    fn locked(&self) -> std::sync::MutexGuard<'_, T>;
}

impl<T> Locked<T> for std::sync::Mutex<T> {
    fn locked(&self) -> std::sync::MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|p| p.into_inner())
    }
}
