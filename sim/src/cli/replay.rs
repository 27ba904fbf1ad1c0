//! `logsim replay`: a seed run again, its trace compared with a recorded one.

use std::io::Write;
use std::path::PathBuf;

use super::args::{load_scenario, Source};
use logsim::tools::replay::{replay, Replay};

pub(super) fn replay_command(
    seed: u64,
    source: &Source,
    trace: Option<PathBuf>,
) -> Result<bool, String> {
    let (scenario, _) = load_scenario(source)?;
    let path = trace.unwrap_or_else(|| PathBuf::from(format!("reports/trace-{seed}.jsonl")));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: cannot read the recorded trace ({e}); record one with `logsim run --seed {seed}`",
            path.display()
        )
    })?;
    let recorded: Vec<String> = text.lines().map(str::to_owned).collect();
    match replay(&scenario, seed, &recorded) {
        Replay::Same { lines, trace_hash } => {
            outln!("seed {seed} replays bit for bit: {lines} trace lines match {}, trace hash {trace_hash}", path.display());
            Ok(true)
        }
        Replay::Differs {
            line,
            recorded,
            replayed,
            trace_hash,
        } => {
            outln!("seed {seed} does not replay: the traces part at line {line} of {} (replay hash {trace_hash})", path.display());
            outln!(
                "recorded: {}",
                recorded.as_deref().unwrap_or("(end of trace)")
            );
            outln!(
                "replayed: {}",
                replayed.as_deref().unwrap_or("(end of trace)")
            );
            Ok(false)
        }
    }
}
