//! `logsim trace`: a run's trace told for people, one line per event.

use super::args::{load_scenario, Source};
use std::io::Write;
use std::path::PathBuf;

pub(super) fn trace_command(
    seed: u64,
    source: &Source,
    file: Option<PathBuf>,
    partition: Option<String>,
    node: Option<i64>,
    kinds: Vec<String>,
) -> Result<bool, String> {
    use logsim::tools::narrate::{told, Filter, ELECTION_KINDS};
    let lines: Vec<String> = match &file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| format!("{}: {e}", f.display()))?
            .lines()
            .map(str::to_owned)
            .collect(),
        None => {
            let (scenario, _) = load_scenario(source)?;
            logsim::run::run(&scenario, seed, true).trace
        }
    };
    let kinds = kinds
        .into_iter()
        .flat_map(|k| {
            if k == "elections" {
                ELECTION_KINDS.iter().map(|k| k.to_string()).collect()
            } else {
                vec![k]
            }
        })
        .collect();
    let filter = Filter {
        partition,
        node,
        kinds,
    };
    for e in told(&lines, &filter) {
        outln!("{e}");
    }
    Ok(true)
}
