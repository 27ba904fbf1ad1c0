//! Replaying a seed: run it again and compare its trace with the one a run recorded, line by line,
//! so that a replay either confirms the hash or shows the first event where the runs part.

use crate::run;
use crate::scenario::Scenario;

/// How a rerun's trace compares with the recorded one.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay {
    /// Every line is the same.
    Same {
        /// Lines in the trace.
        lines: usize,
        /// The rerun's trace hash.
        trace_hash: String,
    },
    /// The first line (1-based) where the traces differ, with both versions (`None`: one ended).
    Differs {
        /// The first line that differs, counted from 1.
        line: usize,
        /// That line as recorded; `None` when the recorded trace ended before it.
        recorded: Option<String>,
        /// That line as rerun; `None` when the rerun's trace ended before it.
        replayed: Option<String>,
        /// The rerun's trace hash.
        trace_hash: String,
    },
}

/// Reruns `seed` and compares with `recorded` (the lines of a recorded trace).
pub fn replay(scenario: &Scenario, seed: u64, recorded: &[String]) -> Replay {
    let output = run::run(scenario, seed, true);
    let trace_hash = output.report.trace_hash.clone();
    let replayed = output.trace;
    let first_difference =
        (0..recorded.len().max(replayed.len())).find(|i| recorded.get(*i) != replayed.get(*i));
    match first_difference {
        None => Replay::Same {
            lines: replayed.len(),
            trace_hash,
        },
        Some(i) => Replay::Differs {
            line: i + 1,
            recorded: recorded.get(i).cloned(),
            replayed: replayed.get(i).cloned(),
            trace_hash,
        },
    }
}
