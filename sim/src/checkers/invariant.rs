//! An invariant: a rule the live brokers keep at every check step (every 50 ms of simulated time),
//! judged on a plain copy of their replication state ([`NodeView`]), of each cluster's controller
//! image and of the acknowledged writes; or a rule each event a broker emits must keep, judged as
//! the event happens. The built-in ones and a test's own are registered the same way and judged in
//! order; each judgment counts once in the run's `invariants` counters.
//!
//! An invariant of one's own, given to [`Sim::invariant`](crate::sim::Sim::invariant):
//!
//! ```
//! # #[cfg(madsim)] {
//! use logsim::checkers::{Invariant, Step, Violation};
//!
//! /// No partition ever has two replicas that both think they lead the same epoch.
//! struct OneLeaderAStep;
//!
//! impl Invariant for OneLeaderAStep {
//!     fn name(&self) -> &'static str {
//!         "one-leader-a-step"
//!     }
//!
//!     fn check(&mut self, step: &Step<'_>) -> Option<Vec<Violation>> {
//!         let mut seen = std::collections::BTreeSet::new();
//!         let mut found = Vec::new();
//!         for node in step.nodes {
//!             for r in node.replicas.iter().filter(|r| r.is_leader) {
//!                 if !seen.insert((r.partition.clone(), r.leader_epoch)) {
//!                     let message = format!("a second leader of epoch {}", r.leader_epoch);
//!                     let v = Violation::new(self.name(), step.time_ms, message);
//!                     found.push(v.on(node.node));
//!                 }
//!             }
//!         }
//!         Some(found)
//!     }
//! }
//! # }
//! ```

use std::sync::Arc;

use model::env::Event;
use model::sync::Lock;
use model::BrokerId;

use super::epochs::MonotonicEpochs;
use super::high_watermark::{LeaderHighWatermark, NoTruncationBelowShown};
use super::last_stable_offset::LastStableOffset;
use super::leader_completeness::LeaderCompleteness;
use super::leader_epoch::LeaderPerEpoch;
use super::view::{ControllerView, NodeView};
use super::{isr, isr_holds_high_watermark, Violation};
use crate::record::history::AckedSend;

/// What an invariant sees at one check step.
pub struct Step<'a> {
    /// Simulated milliseconds since the run started.
    pub time_ms: u64,
    /// Every live broker.
    pub nodes: &'a [NodeView],
    /// The committed metadata of each cluster's freshest controller, by partition.
    pub controller: &'a ControllerView,
    /// Every record acknowledged with acks=all so far, in the order of simulated time.
    pub acked: &'a [AckedSend],
}

/// One event a broker emitted, as an invariant hears it.
pub struct Heard<'a> {
    /// Simulated milliseconds since the run started.
    pub time_ms: u64,
    /// The broker that emitted it.
    pub node: BrokerId,
    /// What happened.
    pub event: &'a Event,
}

/// What one judgment found. `None`: there was nothing to judge this time, and the invariant is not
/// counted as evaluated; `Some(found)` counts once, with `found` empty when all is well.
pub type Judgment = Option<Vec<Violation>>;

/// A rule judged at every check step, on every event a broker emits, or both.
pub trait Invariant: Send {
    /// The check's name, as violations, reports and the `invariants` counters give it.
    fn name(&self) -> &'static str;

    /// Judges the brokers as they are now. Default: nothing to judge at steps.
    fn check(&mut self, _step: &Step<'_>) -> Judgment {
        None
    }

    /// Whether a step may show it only the partitions where something changed since the last
    /// step (see `changes`): true when its judgment of a partition depends only on that
    /// partition's replicas and controller record as they are now, and on what it already
    /// remembers. Default: no, every step shows it every live replica.
    fn incremental(&self) -> bool {
        false
    }

    /// Hears each event a broker emits, as it happens (after it is traced, before the next
    /// step): to judge the event at once, or to note what a later step judges (invariants whose
    /// memory a restart or an election changes). Default: nothing to judge or note.
    fn observe(&mut self, _heard: &Heard<'_>) -> Judgment {
        None
    }
}

/// The built-in invariants, in the order each step and each event judges them. `shown` is the
/// highest high watermark each partition showed a consumer, which the workload keeps.
pub fn built_in(shown: Arc<Lock<std::collections::BTreeMap<String, i64>>>) -> Vec<Box<dyn Invariant>> {
    vec![
        Box::new(MonotonicEpochs::default()),
        Box::new(LeaderHighWatermark::default()),
        Box::new(Isr),
        Box::new(IsrHoldsHighWatermark),
        Box::new(NoTruncationBelowShown::new(shown)),
        Box::new(LeaderPerEpoch::default()),
        Box::new(LeaderCompleteness::default()),
        Box::new(LastStableOffset::default()),
    ]
}

impl Invariant for LastStableOffset {
    fn incremental(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        super::Check::LastStableOffset.name()
    }

    fn check(&mut self, step: &Step<'_>) -> Judgment {
        Some(LastStableOffset::check(self, step.time_ms, step.nodes))
    }
}

impl Invariant for MonotonicEpochs {
    fn incremental(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        super::Check::MonotonicEpoch.name()
    }

    fn check(&mut self, step: &Step<'_>) -> Judgment {
        Some(MonotonicEpochs::check(self, step.time_ms, step.nodes))
    }

    fn observe(&mut self, heard: &Heard<'_>) -> Judgment {
        if let Event::BrokerStarted { .. } = heard.event {
            self.forget_partitions(heard.node);
        }
        None
    }
}

impl Invariant for LeaderHighWatermark {
    fn incremental(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        super::Check::MonotonicLeaderHighWatermark.name()
    }

    fn check(&mut self, step: &Step<'_>) -> Judgment {
        Some(LeaderHighWatermark::check(self, step.time_ms, step.nodes))
    }
}

/// The ISR rules of `isr`.
struct Isr;

impl Invariant for Isr {
    fn incremental(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        super::Check::Isr.name()
    }

    fn check(&mut self, step: &Step<'_>) -> Judgment {
        Some(isr::check(step.time_ms, step.nodes, step.controller))
    }
}

/// The rule of `isr_holds_high_watermark`.
struct IsrHoldsHighWatermark;

impl Invariant for IsrHoldsHighWatermark {
    fn incremental(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        super::Check::IsrHoldsHighWatermark.name()
    }

    fn check(&mut self, step: &Step<'_>) -> Judgment {
        Some(isr_holds_high_watermark::check(
            step.time_ms,
            step.nodes,
            step.controller,
        ))
    }
}
