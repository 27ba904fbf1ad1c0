//! Where the simulated world writes what happens: the brokers' own events (`model::env::Event`)
//! and the harness's (a fault struck or healed, a phase ended). The world knows only this trait;
//! the run hands it the observer, which traces, hashes and judges each event as it comes.

use model::env::EventSink;
use model::BrokerId;
use serde::{Deserialize, Serialize};

use crate::scenario::FaultKind;

/// The record of a run, as the world and the fault injectors write to it.
pub trait Journal: EventSink {
    /// Records an event of the harness, on `node` (-1 for none).
    fn harness(&self, node: BrokerId, event: HarnessEvent);
}

/// Events of the harness itself, traced beside the brokers' own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HarnessEvent {
    /// A fault struck: its kind (as the swarm summary counts it), its target, and what it did.
    Fault {
        /// Its kind, as the swarm summary counts it.
        fault: FaultKind,
        /// What it struck: a broker, a link list (`1->2 2->1`), the network.
        target: String,
        /// What it did, in words (empty when the kind says it all).
        detail: String,
    },
    /// A fault with a duration ended.
    Heal {
        /// The kind of fault that ended.
        fault: FaultKind,
        /// What it had struck.
        target: String,
    },
    /// Every fault was healed: the quiet period starts.
    FaultsStopped,
    /// The quiet period ended: the final checks follow.
    QuietPeriodEnded,
    /// A check found a rule broken.
    Violation {
        /// The check's name.
        check: String,
        /// What was broken.
        message: String,
    },
}

impl HarnessEvent {
    /// A fault of `fault` on `target`, doing `detail`.
    pub fn fault(fault: FaultKind, target: impl ToString, detail: String) -> Self {
        HarnessEvent::Fault {
            fault,
            target: target.to_string(),
            detail,
        }
    }
    /// The end of a fault of `fault` on `target`.
    pub fn heal(fault: FaultKind, target: impl ToString) -> Self {
        HarnessEvent::Heal {
            fault,
            target: target.to_string(),
        }
    }
}
