//! `logsim explain`: a bug switch's scripted scenario told step by step.

use std::io::Write;

pub(super) fn explain_command(bug: &str, seed: u64) -> Result<bool, String> {
    let switch: model::bugs::Switch = bug.parse()?;
    let e = logsim::tools::explain::explain(switch.bug(), seed)?;
    outln!("{}", e.text.trim_end());
    Ok(e.caught && e.correct_passes)
}
