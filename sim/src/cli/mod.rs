//! The `logsim` command line: parse, run, report. The work lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `println!` that ignores a closed pipe (`logsim ... | head`) instead of panicking.
macro_rules! outln {
    ($($t:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
use args::{parse_seed_range, SeedToFile, ShardArgs, Source};
use bench::bench_command;
use check_history::check_history_command;
use explain::explain_command;
use explore::explore_command;
use hunt::hunt_command;
use logsim::checkers::client_history::{Gates, ProducerPromises};
use marks::marks_command;
use merge::merge_command;
use replay::replay_command;
use report::report_command;
use run::run_command;
use shrink::shrink_command;
use swarm::swarm_command;
use trace::trace_command;

mod args;
mod bench;
mod check_history;
mod explain;
mod explore;
mod hunt;
mod marks;
mod merge;
mod replay;
mod report;
mod run;
mod shrink;
mod swarm;
mod trace;

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
        /// `swarm`: each seed also draws the timing settings (see `run --knobs`).
        #[arg(long, default_value = "scenario")]
        knobs: String,
        /// Hunt by guided exploration (see `explore`) of the scenario, as many runs as --seeds
        /// holds, instead of by seeds. Without --scenario, each switch is explored on its own
        /// unscripted ground: consumer-groups, mirror-maker, or else dedicated-controller.
        #[arg(long)]
        guided: bool,
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
        #[arg(long, default_value_t = logsim::tools::explain::SEED)]
        seed: u64,
    },
    /// Explore a scenario guided by coverage: keep a corpus of fault schedules that reached new
    /// marks or pairs of marks, make new schedules from them, stop at the first violation and
    /// shrink it into reports/explore-SEED.toml. The corpus is kept on disk and continued.
    Explore {
        #[command(flatten)]
        source: Source,
        /// A number of runs, or wall-clock time like `10m`.
        #[arg(long, default_value = "200", value_parser = explore::parse_budget)]
        budget: logsim::tools::explore::Budget,
        #[arg(long)]
        jobs: Option<usize>,
        /// The explorer's own seed: which schedules it makes.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// The corpus file (JSON lines); reports/corpus-SCENARIO.jsonl when absent.
        #[arg(long)]
        corpus: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List the coverage marks of the system under test: the names `run` and `swarm` count and a
    /// scenario's `sometimes` may require.
    Marks {
        #[arg(long)]
        json: bool,
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
        /// The producers were idempotent (enable.idempotence=true): a value written twice
        /// (`duplicate`) or one producer's acknowledged sends to a partition landing out of the
        /// order they were invoked (`nonmonotonic-send`, `key-order`) is a violation, whatever
        /// `--retries` says.
        #[arg(long)]
        idempotent: bool,
        /// The producers retried failed sends. Without `--idempotent`, duplicates and reorderings
        /// are then allowed: counted, not reported. Without either flag the producer is taken to
        /// send each value once, and both are violations.
        #[arg(long)]
        retries: bool,
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
            knobs,
            guided,
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
            let source = Source {
                scenario,
                faults,
                knobs,
            };
            hunt_command(bugs, &source, seeds, (jobs, guided), json)
        }
        Command::Explain { bug, seed } => explain_command(&bug, seed),
        Command::Marks { json } => marks_command(json),
        Command::Explore {
            source,
            budget,
            jobs,
            seed,
            corpus,
            json,
        } => explore_command(&source, budget, (jobs, seed), corpus, json),
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
            idempotent,
            retries,
        } => check_history_command(
            &file,
            json,
            Gates {
                min_acked,
                min_polled,
            },
            ProducerPromises {
                idempotent,
                retries,
            },
        ),
    }
}
