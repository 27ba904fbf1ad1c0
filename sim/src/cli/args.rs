//! Arguments several commands share: where the scenario comes from, seed ranges, shards.

use std::path::{Path, PathBuf};

use logsim::scenario::Scenario;

/// Which scenario, with which faults.
#[derive(clap::Args)]
pub(super) struct Source {
    /// Scenario file (TOML); scenarios/default.toml when absent.
    #[arg(long)]
    pub(super) scenario: Option<PathBuf>,
    /// `scenario` (the file's faults), `swarm` (a fault mix drawn from the seed) or `none`.
    #[arg(long, default_value = "scenario")]
    pub(super) faults: String,
    /// `scenario` (the file's timing settings) or `swarm` (drawn from each seed: lag time, session
    /// and request timeouts, fetch wait and size, segment size, fsync latency, linger, batch size).
    #[arg(long, default_value = "scenario")]
    pub(super) knobs: String,
}

impl Source {
    /// The options that make a seed's run what it was, for a replay command line.
    pub(super) fn flags(&self) -> String {
        mode_flags(&self.faults, &self.knobs)
    }
}

/// ` --faults MODE --knobs MODE`, each left out when it is `scenario`, the default.
pub(super) fn mode_flags(faults: &str, knobs: &str) -> String {
    let mut flags = String::new();
    if faults != "scenario" {
        flags += &format!(" --faults {faults}");
    }
    if knobs != "scenario" {
        flags += &format!(" --knobs {knobs}");
    }
    flags
}

/// A swarm's share when it is split across machines (see `logsim::tools::shard`).
#[derive(clap::Args)]
pub(super) struct ShardArgs {
    /// Run only shard K of N (K counts from 0): the seeds START+K, START+K+N, ...
    #[arg(long, value_parser = logsim::tools::shard::Shard::parse, conflicts_with = "shard_from_env")]
    pub(super) shard: Option<logsim::tools::shard::Shard>,
    /// Read K from this environment variable (JOB_COMPLETION_INDEX for a Kubernetes Indexed Job,
    /// SLURM_ARRAY_TASK_ID for a Slurm array); needs --shards.
    #[arg(long, requires = "shards")]
    pub(super) shard_from_env: Option<String>,
    /// N, the number of shards, with --shard-from-env.
    #[arg(long)]
    pub(super) shards: Option<u64>,
    /// What the variable counts from: 0 (Kubernetes) or 1 (many CI matrices and Slurm arrays).
    #[arg(long, default_value_t = 0)]
    pub(super) shard_index_base: u64,
    /// Write each seed's result as a JSON line to FILE, as it finishes (input for `merge`).
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
}

impl ShardArgs {
    pub(super) fn shard(&self) -> Result<logsim::tools::shard::Shard, String> {
        match (&self.shard, &self.shard_from_env, self.shards) {
            (Some(s), _, _) => Ok(*s),
            (None, Some(var), Some(n)) => {
                logsim::tools::shard::Shard::from_env(var, n, self.shard_index_base)
            }
            _ => logsim::tools::shard::Shard::new(0, 1),
        }
    }
}

/// A seed of a scenario, and a file to write about it.
#[derive(clap::Args)]
pub(super) struct SeedToFile {
    #[arg(long)]
    pub(super) seed: u64,
    #[command(flatten)]
    pub(super) source: Source,
    /// Where to write; a file under reports/ named for the seed when absent.
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
}

pub(super) fn parse_seed_range(text: &str) -> Result<(u64, u64), String> {
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

pub(super) fn load_scenario(source: &Source) -> Result<(Scenario, String), String> {
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
    let scenario = scenario.with_faults(faults)?;
    // The file's `knobs = "swarm"` holds unless the command line asks for swarm itself.
    let scenario = match source.knobs.as_str() {
        "scenario" => scenario,
        mode => scenario.with_knobs(mode)?,
    };
    Ok((scenario, name))
}
