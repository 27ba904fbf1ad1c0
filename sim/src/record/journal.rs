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
        fault: FaultKind,
        target: String,
        detail: String,
    },
    /// A fault with a duration ended.
    Heal {
        fault: FaultKind,
        target: String,
    },
    FaultsStopped,
    QuietPeriodEnded,
    /// A check found a rule broken.
    Violation { check: String, message: String },
}

impl HarnessEvent {
    pub fn fault(fault: FaultKind, target: impl ToString, detail: String) -> Self {
        HarnessEvent::Fault {
            fault,
            target: target.to_string(),
            detail,
        }
    }
    pub fn heal(fault: FaultKind, target: impl ToString) -> Self {
        HarnessEvent::Heal {
            fault,
            target: target.to_string(),
        }
    }
}
