//! A per-step invariant: a rule the live brokers keep at every check step (every 50 ms of
//! simulated time), judged on a plain copy of their replication state ([`NodeView`]) and of each
//! cluster's controller image. The built-in ones and a test's own are registered the same way and
//! judged in order, each step; each judgment counts once in the run's `invariants` counters.
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
//!     fn check(&mut self, step: &Step<'_>) -> Vec<Violation> {
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
//!         found
//!     }
//! }
//! # }
//! ```

use model::env::Event;
use model::BrokerId;

use super::epochs::MonotonicEpochs;
use super::high_watermark::LeaderHighWatermark;
use super::view::{ControllerView, NodeView};
use super::{isr, isr_holds_high_watermark, Violation};

/// What an invariant sees at one check step.
pub struct Step<'a> {
    /// Simulated milliseconds since the run started.
    pub time_ms: u64,
    /// Every live broker.
    pub nodes: &'a [NodeView],
    /// The committed metadata of each cluster's freshest controller, by partition.
    pub controller: &'a ControllerView,
}

/// A rule judged at every check step.
pub trait Invariant: Send {
    /// The check's name, as violations, reports and the `invariants` counters give it.
    fn name(&self) -> &'static str;

    /// Judges the brokers as they are now: what is broken, if anything.
    fn check(&mut self, step: &Step<'_>) -> Vec<Violation>;

    /// Hears each event a broker emits, as it happens (before the next step): for invariants
    /// whose memory a restart or an election changes. Default: nothing to note.
    fn observe(&mut self, _node: BrokerId, _event: &Event) {}
}

/// The built-in per-step invariants, in the order each step judges them.
pub fn built_in() -> Vec<Box<dyn Invariant>> {
    vec![
        Box::new(MonotonicEpochs::default()),
        Box::new(LeaderHighWatermark::default()),
        Box::new(Isr),
        Box::new(IsrHoldsHighWatermark),
    ]
}

impl Invariant for MonotonicEpochs {
    fn name(&self) -> &'static str {
        "monotonic-epoch"
    }

    fn check(&mut self, step: &Step<'_>) -> Vec<Violation> {
        MonotonicEpochs::check(self, step.time_ms, step.nodes)
    }

    fn observe(&mut self, node: BrokerId, event: &Event) {
        if let Event::BrokerStarted { .. } = event {
            self.forget_partitions(node);
        }
    }
}

impl Invariant for LeaderHighWatermark {
    fn name(&self) -> &'static str {
        "monotonic-leader-high-watermark"
    }

    fn check(&mut self, step: &Step<'_>) -> Vec<Violation> {
        LeaderHighWatermark::check(self, step.time_ms, step.nodes)
    }
}

/// The ISR rules of `isr`.
struct Isr;

impl Invariant for Isr {
    fn name(&self) -> &'static str {
        "isr"
    }

    fn check(&mut self, step: &Step<'_>) -> Vec<Violation> {
        isr::check(step.time_ms, step.nodes, step.controller)
    }
}

/// The rule of `isr_holds_high_watermark`.
struct IsrHoldsHighWatermark;

impl Invariant for IsrHoldsHighWatermark {
    fn name(&self) -> &'static str {
        isr_holds_high_watermark::NAME
    }

    fn check(&mut self, step: &Step<'_>) -> Vec<Violation> {
        isr_holds_high_watermark::check(step.time_ms, step.nodes, step.controller)
    }
}
