//! logsim: deterministic simulation testing for Kafka-style distributed logs.
//!
//! One `u64` seed drives a madsim runtime (network, time, task order) and the ChaCha streams from
//! which the workload and the faults draw; the same seed replays the same run, event for event.
//!
//! # Write your own simulation test
//!
//! Build a scenario in Rust (or load one from TOML: [`scenario::Scenario::load`]), schedule faults
//! with [`scenario::Fault`], add invariants of your own ([`checkers::Invariant`]) and hooks, and
//! run it with a seed through [`sim::Sim`]. The output holds the verdict ([`run::RunReport`]), the
//! trace (typed through [`record::trace::TraceLine`], told in words by [`tools::narrate::told`]) and the client
//! history. Here the leader of `events-0` crashes at 8 s, a check of the test's own asks that a
//! partition always has a leader somewhere among the live brokers once it had one, and the
//! elections are snapshotted with insta:
//!
//! ```
//! # #[cfg(madsim)] {
//! use std::time::Duration;
//! use logsim::checkers::{Invariant, Step, Violation};
//! use logsim::tools::narrate::{told, Filter};
//! use logsim::scenario::{Dur, Fault, Scenario, Target};
//! use logsim::sim::Sim;
//! use model::TopicPartition;
//!
//! /// After the first election, some live broker leads every partition, except for the few
//! /// seconds a failover takes.
//! #[derive(Default)]
//! struct NeverLeaderlessForLong {
//!     leaderless_since: std::collections::BTreeMap<String, u64>,
//! }
//!
//! impl Invariant for NeverLeaderlessForLong {
//!     fn name(&self) -> &'static str {
//!         "never-leaderless-for-long"
//!     }
//!
//!     fn check(&mut self, step: &Step<'_>) -> Option<Vec<Violation>> {
//!         let mut found = Vec::new();
//!         for partition in step.controller.keys() {
//!             let led = step.nodes.iter().any(|n| {
//!                 n.replicas.iter().any(|r| r.is_leader && r.partition == *partition)
//!             });
//!             let since = self.leaderless_since.entry(partition.to_string());
//!             let since = since.or_insert(step.time_ms);
//!             if led {
//!                 *since = step.time_ms;
//!             } else if step.time_ms - *since > 10_000 {
//!                 let message = format!("no leader for {} ms", step.time_ms - *since);
//!                 let v = Violation::new("never-leaderless-for-long", step.time_ms, message);
//!                 found.push(v.partition(&**partition));
//!                 *since = step.time_ms;
//!             }
//!         }
//!         Some(found)
//!     }
//! }
//!
//! let mut scenario = Scenario::default(); // three brokers, `events` with three partitions
//! scenario.faults.profile = None; // no random crashes: only the one below
//! scenario.run.duration = Dur(Duration::from_secs(20));
//! scenario.run.quiet_period = Dur(Duration::from_secs(10));
//! let leader = Target::Leader(Some(TopicPartition::new("events", 0)));
//! let out = Sim::new(scenario)
//!     .seed(3)
//!     .fault(Fault::Crash(leader).at(Duration::from_secs(8)).lasting(Duration::from_secs(4)))
//!     .invariant(NeverLeaderlessForLong::default())
//!     .run()
//!     .expect("a valid scenario");
//! assert!(out.report.pass, "{:?}", out.report.violations);
//!
//! let filter = Filter { partition: Some("events-0".into()), ..Filter::elections() };
//! let story: Vec<String> = told(&out.trace, &filter).iter().map(|e| e.to_string()).collect();
//! insta::assert_snapshot!(story[4..9].join("\n"), @r"
//!     8.000s n1  fault             broker 1 crashes, losing what it had not synced
//!     8.000s n1  fault             broker 1's disk drops what was not synced (361 unsynced bytes lost)
//!    10.701s n3  broker_fenced     fences broker 1 (session expired)
//!    10.701s n3  partition_changed events-0: leader 2 in epoch 1, ISR [2,3]
//!    11.228s n2  became_leader     leads events-0 in epoch 1: log end 1889, high watermark 1881
//! ");
//! # }
//! ```
//!
//! `tests/worked_example.rs` is the same kind of test at full length: typed trace events, a hook
//! that plants what an invariant must catch, and a named snapshot.
//!
//! Everything runs on madsim: build with `--cfg madsim` (this workspace's `.cargo/config.toml`
//! sets it). Built without it, only `real` is here: the same broker code on real sockets, and
//! `logging`, which either build uses to print the model's own log.
#![warn(missing_docs)]

/// The simulator's modules: they run on madsim, so a build without `--cfg madsim` leaves them out.
macro_rules! simulated {
    ($($module:ident),* $(,)?) => {
        $(
            #[cfg(madsim)]
            pub mod $module;
        )*
    };
}

simulated!(checkers, faults, observer, record, run, scenario, sim, tools, world,);

pub mod logging;

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
    /// The guard, whether or not a panicking holder poisoned the mutex.
    fn locked(&self) -> std::sync::MutexGuard<'_, T>;
}

impl<T> Locked<T> for std::sync::Mutex<T> {
    fn locked(&self) -> std::sync::MutexGuard<'_, T> {
        self.lock().unwrap_or_else(|p| p.into_inner())
    }
}
