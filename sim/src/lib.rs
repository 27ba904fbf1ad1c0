//! logsim: deterministic simulation testing for Kafka-style distributed logs.
//!
//! One `u64` seed drives a madsim runtime (network, time, task order) and the ChaCha streams from
//! which the workload and the faults draw; the same seed replays the same run, event for event.

pub mod bench;
pub mod checkers;
pub mod clock;
pub mod cluster;
pub mod disk;
pub mod explain;
pub mod faults;
pub mod history;
pub mod hunt;
pub mod narrate;
pub mod observer;
pub mod replay;
pub mod report;
pub mod run;
pub mod scenario;
pub mod shrink;
pub mod swarm;
pub mod workload;

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
