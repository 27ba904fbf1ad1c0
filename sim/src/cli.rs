//! The `logsim` command line: parse, run, report. The work lives in the library.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` that ignores a closed pipe (`logsim ... | head`) instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
use logsim::checkers::client_history::{self, Gates};
use logsim::replay::{replay, Replay};
use logsim::run::{self, RunOutput};
use logsim::scenario::Scenario;
use logsim::swarm::{SeedResult, SwarmSummary};
use logsim::Locked;

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

/// Which scenario, with which faults.
#[derive(clap::Args)]
struct Source {
    /// Scenario file (TOML); scenarios/default.toml when absent.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// `scenario` (the file's faults), `swarm` (a fault mix drawn from the seed) or `none`.
    #[arg(long, default_value = "scenario")]
    faults: String,
}

/// A swarm's share when it is split across machines (see `logsim::shard`).
#[derive(clap::Args)]
struct ShardArgs {
    /// Run only shard K of N (K counts from 0): the seeds START+K, START+K+N, ...
    #[arg(long, value_parser = logsim::shard::Shard::parse, conflicts_with = "shard_from_env")]
    shard: Option<logsim::shard::Shard>,
    /// Read K from this environment variable (JOB_COMPLETION_INDEX for a Kubernetes Indexed Job,
    /// SLURM_ARRAY_TASK_ID for a Slurm array); needs --shards.
    #[arg(long, requires = "shards")]
    shard_from_env: Option<String>,
    /// N, the number of shards, with --shard-from-env.
    #[arg(long)]
    shards: Option<u64>,
    /// What the variable counts from: 0 (Kubernetes) or 1 (many CI matrices and Slurm arrays).
    #[arg(long, default_value_t = 0)]
    shard_index_base: u64,
    /// Write each seed's result as a JSON line to FILE, as it finishes (input for `merge`).
    #[arg(long)]
    out: Option<PathBuf>,
}

impl ShardArgs {
    fn shard(&self) -> Result<logsim::shard::Shard, String> {
        match (&self.shard, &self.shard_from_env, self.shards) {
            (Some(s), _, _) => Ok(*s),
            (None, Some(var), Some(n)) => {
                logsim::shard::Shard::from_env(var, n, self.shard_index_base)
            }
            _ => logsim::shard::Shard::new(0, 1),
        }
    }
}

/// A seed of a scenario, and a file to write about it.
#[derive(clap::Args)]
struct SeedToFile {
    #[arg(long)]
    seed: u64,
    #[command(flatten)]
    source: Source,
    /// Where to write; a file under reports/ named for the seed when absent.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Run one seed of a scenario and judge it.
    Run {
        /// The seed that decides everything; drawn at random when absent.
        #[arg(long)]
        seed: Option<u64>,
        #[command(flatten)]
        source: Source,
        /// Print one JSON object instead of the summary.
        #[arg(long)]
        json: bool,
        /// Directory for the trace and history files.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// Write no trace or history files.
        #[arg(long)]
        no_files: bool,
        /// Turn on the system under test's own log, to stderr, stamped with simulated time and
        /// node: a level (`debug`) or tracing directives (`model::controller=debug,model=info`).
        /// `RUST_LOG` does the same for every command.
        #[arg(long, value_name = "FILTER")]
        log: Option<String>,
    },
    /// Run a range of seeds on all cores and summarise; exits non-zero if any seed fails.
    Swarm {
        /// Seeds as START..END (END excluded).
        #[arg(long, default_value = "0..100", value_parser = parse_seed_range)]
        seeds: (u64, u64),
        #[command(flatten)]
        source: Source,
        /// Parallel runs; the number of cores when absent.
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        json: bool,
        /// Also write an HTML summary: reports/swarm-START-END.html.
        #[arg(long)]
        report: bool,
        #[command(flatten)]
        shard: ShardArgs,
    },
    /// Join shard files (`swarm --shard K/N --out FILE`) into the summary one unsharded swarm
    /// prints. A missing, doubled or unfinished shard is reported and nothing is merged (exit 2).
    Merge {
        /// The shards' files, one per shard, in any order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Shrink a failing seed: remove and shorten faults while the same check still fails, and
    /// write the smallest scenario found.
    /// The shrunk scenario goes to reports/shrunk-SEED.toml unless --out says where.
    Shrink(SeedToFile),
    /// Switch a wrong rule on and run seeds until a check catches it; shrink the failing seed.
    /// Exits 0 when the bug was found.
    Hunt {
        /// The bug switch (see `model/src/bugs.rs`).
        #[arg(long, required_unless_present = "all")]
        bug: Option<String>,
        /// Hunt every bug switch and print a table.
        #[arg(long)]
        all: bool,
        /// Scenario file; its faults are replaced by a swarm mix unless --faults says otherwise.
        #[arg(long)]
        scenario: Option<PathBuf>,
        #[arg(long, default_value = "swarm")]
        faults: String,
        #[arg(long, default_value = "0..1000", value_parser = parse_seed_range)]
        seeds: (u64, u64),
        #[arg(long)]
        jobs: Option<usize>,
        #[arg(long)]
        json: bool,
    },
    /// Play a bug's scripted scenario (scenarios/bugs/NAME.toml) with its switch on and tell what
    /// happens, step by step; then play it with the switch off. Exits 0 when the switch is caught
    /// and the correct system passes.
    Explain {
        #[arg(long)]
        bug: String,
        #[arg(long, default_value_t = logsim::explain::SEED)]
        seed: u64,
    },
    /// Check a client history (one JSON object per line) for anomalies; exits non-zero if any.
    CheckHistory {
        file: PathBuf,
        #[arg(long)]
        json: bool,
        /// Fewer acknowledged sends than this fails the history.
        #[arg(long, default_value_t = 1)]
        min_acked: u64,
        /// Fewer values read than this fails the history.
        #[arg(long, default_value_t = 1)]
        min_polled: u64,
    },
    /// Run a seed and write one self-contained HTML report of it (reports/report-SEED.html
    /// unless --out says where).
    Report(SeedToFile),
    /// Measure how fast logsim explores: fixed workloads (one run at a time, and a swarm on every
    /// core) against the bare madsim floor. Prints figures; asserts nothing.
    Bench {
        #[arg(long)]
        json: bool,
        /// Run one seed of one workload (or `floor`) and print its figures as JSON: what the
        /// bench runs in each child process, and what to hand to a profiler.
        #[arg(long, value_name = "WORKLOAD")]
        single: Option<String>,
        /// The seed for --single.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Serve a real cluster on 127.0.0.1: only in the real-mode build, which this says how to get.
    #[command(disable_help_flag = true)]
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
        args: Vec<String>,
    },
    /// Print a run's trace for people, one line per event; runs the seed unless --file is given.
    Trace {
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        source: Source,
        /// A recorded trace (JSON lines) to print instead of running the seed.
        #[arg(long)]
        file: Option<PathBuf>,
        /// Only events about this partition (and faults), like `events-0`.
        #[arg(long)]
        partition: Option<String>,
        /// Only events on this broker (and network faults).
        #[arg(long)]
        node: Option<i64>,
        /// Only these trace kinds, comma-separated (`became_leader,truncated`); `elections` for
        /// the ones the election snapshots keep.
        #[arg(long, value_delimiter = ',')]
        kind: Vec<String>,
    },
    /// Run a seed again and check that its trace matches the one recorded by an earlier run.
    Replay {
        #[arg(long)]
        seed: u64,
        #[command(flatten)]
        source: Source,
        /// The recorded trace; reports/trace-SEED.jsonl when absent.
        #[arg(long)]
        trace: Option<PathBuf>,
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

fn load_scenario(source: &Source) -> Result<(Scenario, String), String> {
    let (path, faults) = (source.scenario.as_deref(), source.faults.as_str());
    let default = Path::new("scenarios/default.toml");
    let (scenario, name) = match path {
        Some(p) => (
            Scenario::load(p).map_err(|e| e.to_string())?,
            p.display().to_string(),
        ),
        None if default.exists() => (
            Scenario::load(default).map_err(|e| e.to_string())?,
            default.display().to_string(),
        ),
        None => (
            Scenario::builtin_default(),
            "scenarios/default.toml (built in)".into(),
        ),
    };
    Ok((scenario.with_faults(faults)?, name))
}

fn bench_command(json: bool, single: Option<String>, seed: u64) -> Result<bool, String> {
    use logsim::bench;
    if let Some(name) = single {
        let figures = bench::single(&name, seed)?;
        outln!(
            "{}",
            serde_json::to_string(&figures).expect("figures serialize")
        );
        return Ok(true);
    }
    let exe = std::env::current_exe().map_err(|e| format!("this program's path: {e}"))?;
    let spawn = |name: &str, seed: u64| -> Result<bench::Single, String> {
        let out = std::process::Command::new(&exe)
            .args(["bench", "--single", name, "--seed", &seed.to_string()])
            .output()
            .map_err(|e| format!("{}: {e}", exe.display()))?;
        serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "bench run `{name}` seed {seed}: {e}: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let progress = |name: &str| eprintln!("bench: {name}");
    let b = bench::bench(cores, &spawn, &progress)?;
    if json {
        outln!("{}", serde_json::to_string(&b).expect("bench serializes"));
        return Ok(true);
    }
    outln!(
        "{:<24} {:>9} {:>10} {:>11} {:>10} {:>10} {:>8}",
        "workload",
        "s/run",
        "sim/wall",
        "events/s",
        "acked/s",
        "seeds/min",
        "peak MB"
    );
    for w in &b.workloads {
        outln!(
            "{:<24} {:>9.3} {:>10.0} {:>11.0} {:>10.0} {:>10.0} {:>8.1}{}",
            w.name,
            w.wall_seconds_per_run,
            w.sim_seconds_per_wall_second,
            w.events_per_second,
            w.acked_per_second,
            w.seeds_per_minute,
            w.peak_rss_bytes as f64 / 1e6,
            if w.all_passed { "" } else { "  (a run failed)" }
        );
    }
    outln!(
        "floor (bare madsim, {} producers): {:.0} replicated writes/s, {:.0} sim s per wall s, {:.1} messages per write, {:.0} small runtimes/s per core",
        b.floor.producers,
        b.floor.writes_per_wall_second,
        b.floor.sim_seconds_per_wall_second,
        b.floor.messages_per_write,
        b.floor.runtimes_per_second_per_core
    );
    if let Some(r) = b.workloads.iter().find(|w| w.name == "replication") {
        outln!(
            "replication: {:.0} acked records/s, {:.1} messages per acked record",
            r.acked_per_second,
            r.messages_per_acked
        );
    }
    outln!(
        "floor ratio: {:.2}x (logsim's wall time per acked record in `replication` over the floor's per write)",
        b.floor_ratio
    );
    outln!(
        "slopes: {:.2} (wall per sim second, minutes 5-10 over 1-5; whole runs, 10 minutes over 1: {:.2}), {:.2} (per partition, 30 over 3); 1 is linear",
        b.slope_sim_time,
        b.slope_sim_time_whole_runs,
        b.slope_partitions
    );
    outln!("cores: {}", b.cores);
    Ok(true)
}

fn report_command(seed: u64, source: &Source, out: Option<PathBuf>) -> Result<bool, String> {
    let (scenario, name) = load_scenario(source)?;
    let output = logsim::run::run(&scenario, seed, true);
    let replay = replay_command_line(seed, &name, &source.faults);
    let page = logsim::report::Page {
        title: &name,
        seed,
        brokers: scenario.cluster.brokers as i64,
        replay: &replay,
    };
    let html = logsim::report::render(&page, &output);
    let out = out.unwrap_or_else(|| PathBuf::from(format!("reports/report-{seed}.html")));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&out, html).map_err(|e| format!("{}: {e}", out.display()))?;
    outln!(
        "{} {} ({} violations)",
        if output.report.pass { "PASS" } else { "FAIL" },
        out.display(),
        output.report.violations.len()
    );
    Ok(output.report.pass)
}

fn trace_command(
    seed: u64,
    source: &Source,
    file: Option<PathBuf>,
    partition: Option<String>,
    node: Option<i64>,
    kinds: Vec<String>,
) -> Result<bool, String> {
    use logsim::narrate::{told, Filter, ELECTION_KINDS};
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

fn explain_command(bug: &str, seed: u64) -> Result<bool, String> {
    let switch: model::bugs::Switch = bug.parse()?;
    let e = logsim::explain::explain(switch.bug(), seed)?;
    outln!("{}", e.text.trim_end());
    Ok(e.caught && e.correct_passes)
}

fn replay_command_line(seed: u64, scenario: &str, faults: &str) -> String {
    let scenario = scenario.trim_end_matches(" (built in)");
    let faults = if faults == "scenario" {
        String::new()
    } else {
        format!(" --faults {faults}")
    };
    format!("cargo run --release -p logsim -- run --seed {seed} --scenario {scenario}{faults}")
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

fn print_summary(
    out: &mut impl Write,
    name: &str,
    faults: &str,
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
    if r.lost_acks1 > 0 || r.consumer_restarts > 0 {
        writeln!(
            out,
            "allowed       {} acks=1 writes lost to failovers; {} consumer restarts, {} values read again",
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
            replay_command_line(r.seed, name, faults)
        )
    }
}

fn run_command(
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
        let _ = print_summary(&mut out, &name, &source.faults, &output, files.as_ref());
    }
    Ok(output.report.pass)
}

fn print_swarm(summary: &SwarmSummary, faults: &str) {
    outln!("scenario      {}", summary.scenario);
    outln!(
        "runs          {} ({} passed, {} failed), seeds {}",
        summary.runs,
        summary.passed,
        summary.failures.len(),
        summary.seeds
    );
    outln!(
        "speed         {:.1} s wall, {:.1} runs/s, {:.0} runs/minute",
        summary.wall_seconds,
        summary.runs_per_second,
        summary.runs_per_minute
    );
    outln!("acked         {}", summary.acked);
    outln!(
        "elections     {}, truncations {}",
        summary.elections,
        summary.truncations
    );
    if summary.lost_acks1 > 0 || summary.rereads > 0 {
        outln!(
            "allowed       {} acks=1 writes lost to failovers, {} values read again after consumer restarts",
            summary.lost_acks1,
            summary.rereads
        );
    }
    outln!("faults        kind            count");
    for (kind, n) in &summary.faults {
        outln!("              {kind:<15} {n:>6}");
    }
    outln!("invariants    name                                        evaluated");
    for (name, n) in &summary.invariants {
        outln!("              {name:<43} {n:>9}");
    }
    let slowest: Vec<String> = summary
        .slowest
        .iter()
        .map(|(s, w)| format!("{s} ({w:.2}s)"))
        .collect();
    outln!("slowest       {}", slowest.join(", "));
    for f in &summary.failures {
        outln!(
            "FAIL          {}",
            replay_command_line(f.seed, &summary.scenario, faults)
        );
    }
}

fn swarm_command(
    seeds: (u64, u64),
    source: &Source,
    jobs: Option<usize>,
    (json, report): (bool, bool),
    shard_args: &ShardArgs,
) -> Result<bool, String> {
    let (scenario, name) = load_scenario(source)?;
    let shard = shard_args.shard()?;
    let mine = shard.seeds(seeds.0, seeds.1);
    let writer = match &shard_args.out {
        Some(path) => Some(std::sync::Mutex::new(logsim::shard::ShardWriter::create(
            path,
            logsim::shard::ShardHeader {
                scenario: name.clone(),
                faults: source.faults.clone(),
                start: seeds.0,
                end: seeds.1,
                shard,
                logsim: env!("CARGO_PKG_VERSION").to_owned(),
            },
        )?)),
        None => None,
    };
    let write_failed = std::sync::atomic::AtomicBool::new(false);
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = indicatif::ProgressBar::new(mine.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds, {per_sec}, eta {eta} {msg}",
        )
        .expect("a valid template"),
    );
    let failed = std::sync::atomic::AtomicU64::new(0);
    let done = |r: &run::RunReport| {
        if !r.pass {
            let n = failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            bar.set_message(format!("{n} failed"));
            let first = r
                .violations
                .first()
                .map(|v| v.to_string())
                .unwrap_or_default();
            bar.println(format!(
                "FAIL seed {}: {first}\n  {}",
                r.seed,
                replay_command_line(r.seed, &name, &source.faults)
            ));
        }
        if let Some(w) = &writer {
            if w.locked().result(&SeedResult::from(r)).is_err() {
                write_failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        bar.inc(1);
    };
    let wall = std::time::Instant::now();
    let results = logsim::swarm::run_seeds(&scenario, &mine, jobs, &done);
    let wall = wall.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let label = if shard.count == 1 {
        format!("{}..{}", seeds.0, seeds.1)
    } else {
        format!(
            "{}..{} shard {}/{}",
            seeds.0, seeds.1, shard.index, shard.count
        )
    };
    let summary = logsim::swarm::summarize(&name, &label, &results, wall);
    if let (Some(w), Some(path)) = (&writer, &shard_args.out) {
        if write_failed.into_inner() || w.locked().done(results.len(), wall).is_err() {
            return Err(format!("{}: could not write every result", path.display()));
        }
    }
    if report {
        let replay = |seed| replay_command_line(seed, &name, &source.faults);
        let html = logsim::report::swarm::render(&summary, seeds.0, &replay);
        let out = PathBuf::from(format!("reports/swarm-{}-{}.html", seeds.0, seeds.1));
        std::fs::create_dir_all("reports").map_err(|e| format!("reports: {e}"))?;
        std::fs::write(&out, html).map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!("report: {}", out.display());
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string(&summary).expect("summaries serialize")
        );
    } else {
        print_swarm(&summary, &source.faults);
    }
    Ok(summary.failures.is_empty())
}

fn merge_command(files: &[PathBuf], json: bool) -> Result<bool, String> {
    let shards = files
        .iter()
        .map(|f| logsim::shard::read(f))
        .collect::<Result<Vec<_>, _>>()?;
    let summary = logsim::shard::merge(&shards).map_err(|problems| {
        format!(
            "the shards do not make one whole swarm, so nothing was merged:\n  {}",
            problems.join("\n  ")
        )
    })?;
    if json {
        outln!(
            "{}",
            serde_json::to_string(&summary).expect("summaries serialize")
        );
    } else {
        print_swarm(&summary, &shards[0].header.faults);
    }
    Ok(summary.failures.is_empty())
}

fn check_history_command(file: &Path, json: bool, gates: Gates) -> Result<bool, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let (ops, lines) =
        client_history::parse(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let analysis = client_history::check(&ops, Some(&lines), gates);
    if json {
        outln!(
            "{}",
            serde_json::to_string(&analysis).expect("analyses serialize")
        );
        return Ok(analysis.valid);
    }
    outln!(
        "{}: {} operations, {} sends acknowledged, {} values read",
        file.display(),
        analysis.ops,
        analysis.acked,
        analysis.polled
    );
    for (kind, cases) in &analysis.anomalies {
        outln!("{kind}: {} cases", cases.len());
        for case in cases.iter().take(10) {
            outln!(
                "  {} offsets {:?} values {:?} lines {:?}: {}",
                case.key,
                case.offsets,
                case.values,
                case.lines,
                case.detail
            );
        }
    }
    for gate in &analysis.gates {
        outln!("gate: {gate}");
    }
    outln!("{}", if analysis.valid { "valid" } else { "INVALID" });
    Ok(analysis.valid)
}

fn shrink_command(seed: u64, source: &Source, out: Option<PathBuf>) -> Result<bool, String> {
    let (scenario, _) = load_scenario(source)?;
    let progress = |runs: usize, faults: usize| eprint!("\rrun {runs}: trying {faults} faults   ");
    let shrunk = logsim::shrink::shrink(&scenario, seed, &progress)?;
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

fn hunt_command(
    bugs: Vec<String>,
    source: &Source,
    seeds: (u64, u64),
    jobs: Option<usize>,
    json: bool,
) -> Result<bool, String> {
    let (scenario, _) = load_scenario(source)?;
    let swarm_default = source.scenario.is_none() && source.faults == "swarm";
    let bugs = bugs
        .iter()
        .map(|b| b.parse())
        .collect::<Result<Vec<model::bugs::Switch>, String>>()?;
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut all_found = true;
    let mut rows = Vec::new();
    for &bug in &bugs {
        let (result, replay) = if swarm_default {
            let grounds = logsim::hunt::default_grounds(&scenario, bug)?;
            logsim::hunt::hunt_grounds(&grounds, bug, seeds.0..seeds.1, jobs)
        } else {
            logsim::hunt::hunt(&scenario, bug, seeds.0..seeds.1, jobs)
        };
        all_found &= result.found;
        if let (Some(replay), Some(seed), Some(check)) = (&replay, result.seed, &result.caught_by) {
            let out = PathBuf::from(format!("reports/hunt-{bug}-{seed}.toml"));
            std::fs::create_dir_all("reports").map_err(|e| format!("reports: {e}"))?;
            let header =
                format!("# {bug}: seed {seed}, caught by {check}; replay with --seed {seed}\n");
            let text = header + &toml::to_string(replay).map_err(|e| e.to_string())?;
            std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
        }
        rows.push(result);
    }
    if json {
        let value = if rows.len() == 1 {
            serde_json::to_value(&rows[0])
        } else {
            serde_json::to_value(&rows)
        };
        outln!("{}", value.expect("hunts serialize"));
        return Ok(all_found);
    }
    outln!(
        "{:<24} {:<6} {:<26} {:<42} {:>6} {:>8} {:>9}",
        "bug",
        "found",
        "where",
        "caught by",
        "seeds",
        "wall s",
        "shrunk"
    );
    for r in &rows {
        let shrunk = match (r.faults_before_shrink, r.shrunk_faults) {
            (Some(a), Some(b)) => format!("{a} -> {b}"),
            _ => "-".into(),
        };
        outln!(
            "{:<24} {:<6} {:<26} {:<42} {:>6} {:>8.1} {:>9}",
            r.bug,
            if r.found { "yes" } else { "NO" },
            r.ground,
            r.caught_by.as_deref().unwrap_or("-"),
            r.seeds_tried,
            r.wall_seconds,
            shrunk
        );
        if let (Some(seed), Some(message)) = (r.seed, &r.message) {
            outln!("    seed {seed}: {message}");
            outln!("    replay: cargo run --release -p logsim -- run --seed {seed} --scenario reports/hunt-{}-{seed}.toml", r.bug);
        }
    }
    Ok(all_found)
}

fn replay_command(seed: u64, source: &Source, trace: Option<PathBuf>) -> Result<bool, String> {
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

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = start_log(&cli.command).and_then(|()| dispatch(cli.command));
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// The model's log: `run --log FILTER`, else `RUST_LOG`, else off.
fn start_log(command: &Command) -> Result<(), String> {
    match command {
        Command::Run { log: Some(f), .. } => logsim::logging::init(f),
        _ => logsim::logging::init_from_env(),
    }
}

/// Does what the command says: `Ok(true)` passed, `Ok(false)` found a failure.
fn dispatch(command: Command) -> Result<bool, String> {
    match command {
        Command::Run {
            seed,
            source,
            json,
            reports,
            no_files,
            log: _,
        } => run_command(seed, &source, json, reports, no_files),
        Command::Swarm {
            seeds,
            source,
            jobs,
            json,
            report,
            shard,
        } => swarm_command(seeds, &source, jobs, (json, report), &shard),
        Command::Merge { files, json } => merge_command(&files, json),
        Command::Replay {
            seed,
            source,
            trace,
        } => replay_command(seed, &source, trace),
        Command::Shrink(SeedToFile { seed, source, out }) => shrink_command(seed, &source, out),
        Command::Hunt {
            bug,
            all,
            scenario,
            faults,
            seeds,
            jobs,
            json,
        } => {
            let bugs = if all {
                model::bugs::names()
                    .into_iter()
                    .map(str::to_owned)
                    .collect()
            } else {
                bug.into_iter().collect()
            };
            hunt_command(bugs, &Source { scenario, faults }, seeds, jobs, json)
        }
        Command::Explain { bug, seed } => explain_command(&bug, seed),
        Command::Bench { json, single, seed } => bench_command(json, single, seed),
        Command::Serve { args } => Err(format!(
            "this build simulates; `serve` needs the real-mode build, made without the simulation \
             cfg into its own target directory:\n  \
             RUSTFLAGS= cargo run --release --target-dir target/real -p logsim -- serve {}\n\
             or: just serve",
            args.join(" ")
        )),
        Command::Report(SeedToFile { seed, source, out }) => report_command(seed, &source, out),
        Command::Trace {
            seed,
            source,
            file,
            partition,
            node,
            kind,
        } => trace_command(seed, &source, file, partition, node, kind),
        Command::CheckHistory {
            file,
            json,
            min_acked,
            min_polled,
        } => check_history_command(
            &file,
            json,
            Gates {
                min_acked,
                min_polled,
            },
        ),
    }
}
