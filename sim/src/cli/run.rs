//! `logsim run`: one seed, judged, with its summary and its trace and history files.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::args::{load_scenario, Source};
use logsim::run::{self, RunOutput};

/// The command that replays `seed`; `flags` are the fault and knob modes (see `Source::flags`).
pub(super) fn replay_command_line(seed: u64, scenario: &str, flags: &str) -> String {
    let scenario = scenario.trim_end_matches(" (built in)");
    format!("cargo run --release -p logsim -- run --seed {seed} --scenario {scenario}{flags}")
}

pub(super) fn write_files(dir: &Path, output: &RunOutput) -> Result<(PathBuf, PathBuf), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let seed = output.report.seed;
    let trace = dir.join(format!("trace-{seed}.jsonl"));
    let history = dir.join(format!("history-{seed}.jsonl"));
    let mut text = output.trace.join("\n");
    text.push('\n');
    std::fs::write(&trace, text).map_err(|e| format!("{}: {e}", trace.display()))?;
    let mut text = String::new();
    for op in &output.history {
        text.push_str(&serde_json::to_string(op).expect("ops serialize"));
        text.push('\n');
    }
    std::fs::write(&history, text).map_err(|e| format!("{}: {e}", history.display()))?;
    Ok((trace, history))
}

pub(super) fn print_summary(
    out: &mut impl Write,
    name: &str,
    flags: &str,
    output: &RunOutput,
    files: Option<&(PathBuf, PathBuf)>,
) -> std::io::Result<()> {
    let r = &output.report;
    writeln!(out, "seed          {}", r.seed)?;
    writeln!(out, "scenario      {name}")?;
    writeln!(out, "simulated     {:.1} s", r.sim_seconds)?;
    writeln!(
        out,
        "wall          {:.3} s ({:.0}x real time)",
        r.wall_seconds,
        r.sim_seconds / r.wall_seconds.max(1e-9)
    )?;
    writeln!(
        out,
        "records       {} produced, {} acked, {} refused, {} unknown, {} consumed",
        r.produced, r.acked, r.refused, r.unknown, r.consumed
    )?;
    writeln!(
        out,
        "elections     {} partition leaders, {} quorum leaders",
        r.elections, r.quorum_elections
    )?;
    if let Some(t) = &r.transactions {
        writeln!(
            out,
            "transactions  {} committed, {} aborted, {} unknown, {} timed out",
            t.committed, t.aborted, t.unknown, t.timed_out
        )?;
    }
    if r.lost_acks1 > 0 || r.consumer_restarts > 0 {
        writeln!(
            out,
            "allowed       {} acks=1 writes lost to failovers; {} consumer restarts, {} values read again after restarts and rebalances",
            r.lost_acks1, r.consumer_restarts, r.rereads
        )?;
    }
    let injected: Vec<String> = r
        .counters
        .faults
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    writeln!(
        out,
        "faults        {}",
        if injected.is_empty() {
            "none".to_owned()
        } else {
            injected.join(", ")
        }
    )?;
    writeln!(
        out,
        "replication   {} truncations ({} offsets), {} ISR changes, {} fenced",
        r.truncations, r.counters.truncated_offsets, r.counters.isr_changes, r.counters.fenced
    )?;
    writeln!(
        out,
        "checked       {} committed batches compared, {} trace events",
        r.batches_checked, r.counters.events
    )?;
    if let Some(knobs) = &r.knobs {
        writeln!(out, "knobs         {knobs}")?;
    }
    print_marks(out, &r.counters.marks)?;
    writeln!(out, "trace hash    {}", r.trace_hash)?;
    if let Some((trace, history)) = files {
        writeln!(out, "trace         {}", trace.display())?;
        writeln!(out, "history       {}", history.display())?;
    }
    for v in &r.violations {
        writeln!(out, "violation     {v}")?;
    }
    if r.pass {
        writeln!(out, "PASS")
    } else {
        writeln!(
            out,
            "FAIL  replay: {}",
            replay_command_line(r.seed, name, flags)
        )
    }
}

/// The coverage marks the run reached, with their hits, a few to a line.
fn print_marks(
    out: &mut impl Write,
    marks: &std::collections::BTreeMap<&'static str, u64>,
) -> std::io::Result<()> {
    let all = model::coverage::Mark::ALL.len();
    writeln!(out, "coverage      {} of {all} marks reached", marks.len())?;
    let items: Vec<String> = marks.iter().map(|(m, n)| format!("{m} {n}")).collect();
    for line in items.chunks(3) {
        writeln!(out, "              {}", line.join(", "))?;
    }
    Ok(())
}

pub(super) fn run_command(
    seed: Option<u64>,
    source: &Source,
    json: bool,
    reports: PathBuf,
    no_files: bool,
) -> Result<bool, String> {
    let (scenario, name) = load_scenario(source)?;
    let seed = seed.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        (nanos as u64) ^ ((nanos >> 64) as u64)
    });
    let output = run::run(&scenario, seed, !no_files);
    let files = if no_files {
        None
    } else {
        Some(write_files(&reports, &output)?)
    };
    let mut out = std::io::stdout().lock();
    if json {
        let mut value = serde_json::to_value(&output.report).expect("reports serialize");
        if let (Some((trace, history)), Some(map)) = (&files, value.as_object_mut()) {
            map.insert("trace_file".into(), trace.display().to_string().into());
            map.insert("history_file".into(), history.display().to_string().into());
        }
        let _ = writeln!(out, "{value}");
    } else {
        // A closed pipe (`| head`) is not an error worth a panic.
        let _ = print_summary(&mut out, &name, &source.flags(), &output, files.as_ref());
    }
    Ok(output.report.pass)
}
