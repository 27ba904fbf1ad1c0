//! The `logsim` command line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use logsim::run::{self, RunOutput};
use logsim::scenario::Scenario;

#[derive(Parser)]
#[command(
    name = "logsim",
    version,
    about = "Deterministic simulation testing for Kafka-style distributed logs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed of a scenario and judge it.
    Run {
        /// The seed that decides everything; drawn at random when absent.
        #[arg(long)]
        seed: Option<u64>,
        /// Scenario file (TOML); scenarios/default.toml when absent.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Print one JSON object instead of the summary.
        #[arg(long)]
        json: bool,
        /// Directory for the trace and history files.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// Write no trace or history files.
        #[arg(long)]
        no_files: bool,
    },
    /// Run a range of seeds, in parallel, and summarise.
    Swarm {
        /// Seeds as START..END (END excluded).
        #[arg(long, default_value = "0..100", value_parser = parse_seed_range)]
        seeds: (u64, u64),
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Parallel runs; the number of cores when absent.
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        json: bool,
    },
}

fn parse_seed_range(text: &str) -> Result<(u64, u64), String> {
    let (a, b) = text
        .split_once("..")
        .ok_or_else(|| format!("`{text}` is not a seed range: expected START..END, like 0..100"))?;
    let start: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("`{a}` is not a seed (an unsigned 64-bit number)"))?;
    let end: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("`{b}` is not a seed (an unsigned 64-bit number)"))?;
    if end <= start {
        return Err(format!("seed range {start}..{end} is empty"));
    }
    Ok((start, end))
}

fn load_scenario(path: Option<&Path>) -> Result<(Scenario, String), String> {
    match path {
        Some(p) => Scenario::load(p)
            .map(|s| (s, p.display().to_string()))
            .map_err(|e| e.to_string()),
        None => {
            let default = Path::new("scenarios/default.toml");
            if default.exists() {
                Scenario::load(default)
                    .map(|s| (s, default.display().to_string()))
                    .map_err(|e| e.to_string())
            } else {
                Ok((
                    Scenario::builtin_default(),
                    "scenarios/default.toml (built in)".into(),
                ))
            }
        }
    }
}

fn write_files(dir: &Path, output: &RunOutput) -> Result<(PathBuf, PathBuf), String> {
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

fn print_summary(scenario_name: &str, output: &RunOutput, files: Option<&(PathBuf, PathBuf)>) {
    let r = &output.report;
    println!("seed          {}", r.seed);
    println!("scenario      {scenario_name}");
    println!("simulated     {:.1} s", r.sim_seconds);
    println!(
        "wall          {:.3} s ({:.0}x real time)",
        r.wall_seconds,
        r.sim_seconds / r.wall_seconds.max(1e-9)
    );
    println!(
        "records       {} produced, {} acked, {} refused, {} unknown, {} consumed",
        r.produced, r.acked, r.refused, r.unknown, r.consumed
    );
    println!(
        "elections     {} partition leaders, {} quorum leaders",
        r.elections, r.quorum_elections
    );
    let faults: Vec<String> = r
        .counters
        .faults
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    println!(
        "faults        {}",
        if faults.is_empty() {
            "none".to_owned()
        } else {
            faults.join(", ")
        }
    );
    println!(
        "replication   {} truncations ({} offsets), {} ISR changes, {} fenced",
        r.truncations, r.counters.truncated_offsets, r.counters.isr_changes, r.counters.fenced
    );
    println!(
        "checked       {} committed batches compared, {} trace events",
        r.batches_checked, r.counters.events
    );
    println!("trace hash    {}", r.trace_hash);
    if let Some((trace, history)) = files {
        println!("trace         {}", trace.display());
        println!("history       {}", history.display());
    }
    for v in &r.violations {
        println!("violation     {v}");
    }
    if r.pass {
        println!("PASS");
    } else {
        println!(
            "FAIL  replay: cargo run --release -p logsim -- run --seed {}",
            r.seed
        );
    }
}

fn run_command(
    seed: Option<u64>,
    scenario: Option<PathBuf>,
    json: bool,
    reports: PathBuf,
    no_files: bool,
) -> Result<bool, String> {
    let (scenario, name) = load_scenario(scenario.as_deref())?;
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
    if json {
        let mut value = serde_json::to_value(&output.report).expect("reports serialize");
        if let (Some((trace, history)), Some(map)) = (&files, value.as_object_mut()) {
            map.insert("trace_file".into(), trace.display().to_string().into());
            map.insert("history_file".into(), history.display().to_string().into());
        }
        println!("{value}");
    } else {
        print_summary(&name, &output, files.as_ref());
    }
    Ok(output.report.pass)
}

fn swarm_command(
    seeds: (u64, u64),
    scenario: Option<PathBuf>,
    jobs: Option<usize>,
    json: bool,
) -> Result<bool, String> {
    let (scenario, name) = load_scenario(scenario.as_deref())?;
    let jobs = jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let wall = std::time::Instant::now();
    let next = std::sync::atomic::AtomicU64::new(seeds.0);
    let reports = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seed >= seeds.1 {
                    return;
                }
                let report = run::run(&scenario, seed, false).report;
                if !json {
                    let mark = if report.pass { "pass" } else { "FAIL" };
                    let first = report
                        .violations
                        .first()
                        .map(|v| v.to_string())
                        .unwrap_or_default();
                    let _ = writeln!(
                        std::io::stdout(),
                        "seed {seed:>8} {mark} {:.2}s {first}",
                        report.wall_seconds
                    );
                }
                reports
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(report);
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|p| p.into_inner());
    reports.sort_by_key(|r| r.seed);
    let failed: Vec<u64> = reports.iter().filter(|r| !r.pass).map(|r| r.seed).collect();
    let wall = wall.elapsed().as_secs_f64();
    let total = |f: fn(&run::RunReport) -> u64| reports.iter().map(f).sum::<u64>();
    let summary = serde_json::json!({
        "scenario": name,
        "seeds": reports.len(),
        "passed": reports.len() - failed.len(),
        "failed_seeds": failed,
        "wall_seconds": wall,
        "seeds_per_minute": reports.len() as f64 * 60.0 / wall.max(1e-9),
        "acked": total(|r| r.acked),
        "elections": total(|r| r.elections),
        "truncations": total(|r| r.truncations),
        "crashes": total(|r| r.crashes),
    });
    if json {
        println!("{summary}");
    } else {
        println!(
            "{} seeds, {} passed, {} failed, {:.1} s wall, {:.0} seeds/minute",
            reports.len(),
            reports.len() - failed.len(),
            failed.len(),
            wall,
            reports.len() as f64 * 60.0 / wall.max(1e-9)
        );
        println!(
            "acked {}, elections {}, truncations {}, crashes {}",
            total(|r| r.acked),
            total(|r| r.elections),
            total(|r| r.truncations),
            total(|r| r.crashes)
        );
        if !failed.is_empty() {
            println!("failed seeds: {failed:?}");
        }
    }
    Ok(failed.is_empty())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run {
            seed,
            scenario,
            json,
            reports,
            no_files,
        } => run_command(seed, scenario, json, reports, no_files),
        Command::Swarm {
            seeds,
            scenario,
            jobs,
            json,
        } => swarm_command(seeds, scenario, jobs, json),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
