//! Checks that judge a run. Each is a read-only function of what it is shown, and never draws from
//! the seed's random streams, so turning one on cannot change the run it judges.
//!
//! Per-step invariants run as the run goes: `leader_epoch` on every election event, and
//! `committed_data` on every check step (every 50 ms of simulated time) over every live replica.
//! The end-of-run oracle (`oracle`: leaders after the heal, `acked_durability`, `liveness`,
//! `mirror`, `client_history`) runs after the quiet period, once faults have healed. Both kinds
//! are traits, [`Invariant`] and [`Oracle`], through which a test adds its own.

pub mod acked_durability;
pub mod changes;
pub mod check;
pub mod client_history;
pub mod committed_data;
pub mod epochs;
pub mod high_watermark;
pub mod invariant;
pub mod isr;
pub mod isr_holds_high_watermark;
pub mod last_stable_offset;
pub mod leader_completeness;
pub mod leader_epoch;
pub mod liveness;
pub mod mirror;
pub mod oracle;
pub mod transactions;
pub mod view;

use serde::{Deserialize, Serialize};

pub use check::Check;
pub use invariant::{Heard, Invariant, Judgment, Step};
pub use oracle::{End, MirrorEnd, Oracle};

/// A broken rule, with everything needed to find it in the trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Which check it breaks.
    pub check: Check,
    /// When, in simulated milliseconds since the run started.
    pub time_ms: u64,
    /// The broker it happened on, if one.
    pub node: Option<i32>,
    /// The partition it concerns (`events-2`), if one.
    pub partition: Option<String>,
    /// The offsets involved: one offset, or a range `[from, to]`.
    pub offsets: Vec<i64>,
    /// What was broken, in a sentence.
    pub message: String,
}

impl Violation {
    /// A violation of `check` at `time_ms` (simulated milliseconds since the start), on no broker,
    /// partition or offset in particular until said.
    pub fn new(check: impl Into<Check>, time_ms: u64, message: impl Into<String>) -> Violation {
        Violation {
            check: check.into(),
            time_ms,
            node: None,
            partition: None,
            offsets: Vec::new(),
            message: message.into(),
        }
    }

    /// The broker it happened on.
    pub fn on(mut self, node: model::BrokerId) -> Violation {
        self.node = Some(node);
        self
    }

    /// The partition it concerns, as reports name it (`events-2`).
    pub fn partition(mut self, partition: impl Into<String>) -> Violation {
        self.partition = Some(partition.into());
        self
    }

    /// The offsets involved: one offset, or a range `[from, to]`.
    pub fn offsets(mut self, offsets: Vec<i64>) -> Violation {
        self.offsets = offsets;
        self
    }
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}ms", self.check, self.time_ms)?;
        if let Some(n) = self.node {
            write!(f, " on broker {n}")?;
        }
        if let Some(p) = &self.partition {
            write!(f, " partition {p}")?;
        }
        if !self.offsets.is_empty() {
            write!(f, " offsets {:?}", self.offsets)?;
        }
        write!(f, ": {}", self.message)
    }
}
