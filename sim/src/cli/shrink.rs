//! `logsim shrink`: a failing seed reduced to the fewest, shortest faults that still fail.

use super::args::{load_scenario, Source};
use std::io::Write;
use std::path::PathBuf;

pub(super) fn shrink_command(
    seed: u64,
    source: &Source,
    out: Option<PathBuf>,
) -> Result<bool, String> {
    let (scenario, _) = load_scenario(source)?;
    let progress = |runs: usize, faults: usize| eprint!("\rrun {runs}: trying {faults} faults   ");
    let shrunk = logsim::tools::shrink::shrink(&scenario, seed, &progress)?;
    eprintln!();
    let out = out.unwrap_or_else(|| PathBuf::from(format!("reports/shrunk-{seed}.toml")));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut text = format!(
        "# Shrunk from seed {seed}: {} faults down to {}, still failing {} ({} runs).\n# Replay: cargo run --release -p logsim -- run --seed {seed} --scenario {}\n",
        shrunk.faults_before,
        shrunk.faults_after,
        shrunk.check,
        shrunk.runs,
        out.display()
    );
    text.push_str(&toml::to_string(&shrunk.scenario).map_err(|e| e.to_string())?);
    std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
    outln!(
        "seed {seed} fails {}: {} faults shrunk to {} in {} runs",
        shrunk.check,
        shrunk.faults_before,
        shrunk.faults_after,
        shrunk.runs
    );
    outln!("wrote {}", out.display());
    outln!(
        "replay: cargo run --release -p logsim -- run --seed {seed} --scenario {}",
        out.display()
    );
    Ok(true)
}
