//! A run's trace read back: each line of `RunOutput::trace` (and of `reports/trace-SEED.jsonl`) as
//! a typed event, so a test asserts on fields instead of matching substrings:
//!
//! ```
//! # #[cfg(madsim)] {
//! use logsim::record::trace::{Traced, TraceLine};
//! use model::env::Event;
//!
//! let line = r#"{"t":8601,"node":2,"kind":"became_leader","partition":{"topic":"events","partition":1},"leader_epoch":0,"log_end_offset":0,"high_watermark":0}"#;
//! let read = TraceLine::parse(line).expect("a trace line");
//! assert_eq!((read.t, read.node), (8601, 2));
//! assert!(matches!(read.event, Traced::Model(Event::BecameLeader { leader_epoch: 0, .. })));
//! # }
//! ```

use model::env::Event;
use model::BrokerId;
use serde::Deserialize;

use crate::record::journal::HarnessEvent;

/// One line of a trace.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct TraceLine {
    /// Simulated milliseconds since the run started.
    pub t: u64,
    /// The broker it happened on; -1 for the network or the harness as a whole.
    pub node: BrokerId,
    #[serde(flatten)]
    /// What happened.
    pub event: Traced,
}

/// What a trace line tells: a broker's own event, or the harness's (a fault, a heal, a phase, a
/// violation).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Traced {
    /// An event a broker emitted.
    Model(Event),
    /// An event of the harness.
    Harness(HarnessEvent),
}

impl TraceLine {
    /// Reads one line; the error names what did not fit.
    pub fn parse(line: &str) -> Result<TraceLine, String> {
        serde_json::from_str(line).map_err(|e| format!("not a trace line ({e}): {line}"))
    }

    /// Reads every line of a trace, in order.
    pub fn parse_all(lines: &[String]) -> Result<Vec<TraceLine>, String> {
        lines.iter().map(|l| TraceLine::parse(l)).collect()
    }
}
