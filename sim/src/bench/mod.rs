//! `logsim bench`: how fast logsim explores, against the bare madsim floor. Each workload runs a
//! few seeds one at a time in a child process (for wall time per run and peak memory), then a
//! swarm of seeds on every core (for seeds per minute). The floor is the same message pattern with
//! no broker logic (`floor`). Figures go to stdout; nothing here asserts a speed.

pub mod floor;

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::run::run;
use crate::scenario::Scenario;
use crate::swarm::run_swarm;

/// One run's figures, as the child process reports them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Single {
    pub wall_seconds: f64,
    pub sim_seconds: f64,
    pub events: u64,
    /// Messages over madsim's network.
    pub messages: u64,
    pub acked: u64,
    pub peak_rss_bytes: u64,
    pub pass: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    pub name: String,
    pub runs: usize,
    /// Median over the single runs.
    pub wall_seconds_per_run: f64,
    pub sim_seconds_per_wall_second: f64,
    /// Trace events (elections, HW moves, faults, ...) per wall second.
    pub events_per_second: f64,
    /// Acknowledged records per wall second of one run.
    pub acked_per_second: f64,
    /// madsim messages per acknowledged record (consumers' and the cluster's own included).
    pub messages_per_acked: f64,
    pub seeds_per_minute: f64,
    pub swarm_seeds: u64,
    pub peak_rss_bytes: u64,
    pub all_passed: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    pub producers: u32,
    pub writes_per_wall_second: f64,
    /// madsim messages per replicated write (producer, leader and followers all counted).
    pub messages_per_write: f64,
    pub sim_seconds_per_wall_second: f64,
    pub runtimes_per_second_per_core: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Bench {
    pub cores: usize,
    pub workloads: Vec<Workload>,
    pub floor: Floor,
    /// logsim's wall time per acknowledged record in the `replication` workload over the floor's
    /// wall time per replicated write, at the same number of producers.
    pub floor_ratio: f64,
    /// Wall time per simulated second of the 10-minute run over the default run's: 1 is linear.
    pub slope_sim_time: f64,
    /// Wall time per simulated second per partition, 30 partitions over 3: 1 is linear.
    pub slope_partitions: f64,
}

const REPLICATION_PRODUCERS: u32 = 4;
/// How long the floor runs, in simulated time: as long as the `replication` workload.
const FLOOR_SIM: Duration = Duration::from_secs(20);

/// The workloads, by name, with how many single runs and swarm seeds each gets.
pub fn workloads() -> Vec<(&'static str, Scenario, usize, u64)> {
    let default = Scenario::builtin_default();
    let parse = |name: &str, text: &str| {
        Scenario::parse(Path::new(name), text).expect("a valid built-in bench scenario")
    };
    let mut wide = default.clone();
    wide.description = "5 brokers, 30 partitions".into();
    wide.cluster.brokers = 5;
    wide.topics[0].partitions = 30;
    let mut long = default.clone();
    long.description = "the default scenario for 10 simulated minutes".into();
    long.run.duration.0 = Duration::from_secs(600);
    let everything = parse(
        "scenarios/everything.toml",
        include_str!("../../../scenarios/everything.toml"),
    );
    let replication = parse(
        "replication.toml",
        &format!(
            "description = \"one partition, {REPLICATION_PRODUCERS} producers writing back to back, no faults\"\n\
             [[topics]]\nname = \"events\"\npartitions = 1\n\
             [workload]\nproducers = {REPLICATION_PRODUCERS}\nconsumers = 1\nsend_interval = [\"0ms\", \"1ms\"]\n\
             [run]\nduration = \"20s\"\nquiet_period = \"2s\"\n"
        ),
    );
    vec![
        ("default", default, 3, 24),
        ("5-brokers-30-partitions", wide, 3, 8),
        ("swarm-all-faults", everything, 3, 24),
        ("long-10-minutes", long, 2, 2),
        ("replication", replication, 5, 8),
    ]
}

/// Peak resident memory of this process so far, from /proc (0 where there is none).
pub fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// One run of workload `name`, in this process (the child's side).
pub fn single(name: &str, seed: u64) -> Result<Single, String> {
    if name == "floor" {
        let f = floor::run(seed, REPLICATION_PRODUCERS, FLOOR_SIM);
        return Ok(Single {
            wall_seconds: f.wall_seconds,
            sim_seconds: f.sim_seconds,
            events: f.writes,
            messages: f.messages,
            acked: f.writes,
            peak_rss_bytes: peak_rss_bytes(),
            pass: true,
        });
    }
    let (_, scenario, _, _) = workloads()
        .into_iter()
        .find(|(n, ..)| *n == name)
        .ok_or_else(|| {
            let known: Vec<&str> = workloads().iter().map(|(n, ..)| *n).collect();
            format!(
                "unknown bench workload `{name}`: expected floor or one of {}",
                known.join(", ")
            )
        })?;
    let r = run(&scenario, seed, false).report;
    Ok(Single {
        wall_seconds: r.wall_seconds,
        sim_seconds: r.sim_seconds,
        events: r.counters.events,
        messages: r.counters.messages,
        acked: r.acked,
        peak_rss_bytes: peak_rss_bytes(),
        pass: r.pass,
    })
}

/// The middle value; of an even count, the mean of the middle two.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The median over `runs` of one figure of each.
fn median_of(runs: &[Single], figure: impl Fn(&Single) -> f64) -> f64 {
    median(runs.iter().map(figure).collect())
}

/// madsim messages per acknowledged record (per write, for the floor) of one run.
fn messages_per_acked(r: &Single) -> f64 {
    r.messages as f64 / r.acked.max(1) as f64
}

/// Runs every workload and the floor. `spawn_single` runs one seed of a workload in a fresh
/// process and returns its figures.
pub fn bench(
    cores: usize,
    spawn_single: &dyn Fn(&str, u64) -> Result<Single, String>,
    progress: &dyn Fn(&str),
) -> Result<Bench, String> {
    let mut out = Vec::new();
    let mut floor_runs = Vec::new();
    for (name, scenario, singles, swarm_seeds) in workloads() {
        progress(name);
        let mut runs = Vec::new();
        for seed in 0..singles as u64 {
            runs.push(spawn_single(name, seed)?);
            // The floor's runs alternate with the workload it is compared with, so that a
            // machine that speeds up or slows down meanwhile moves both alike.
            if name == "replication" {
                floor_runs.push(spawn_single("floor", seed)?);
            }
        }
        let per = |f: &dyn Fn(&Single) -> f64| median_of(&runs, f);
        let summary = run_swarm(&scenario, name, 100..100 + swarm_seeds, cores, &|_| {});
        out.push(Workload {
            name: name.to_owned(),
            runs: runs.len(),
            wall_seconds_per_run: per(&|r| r.wall_seconds),
            sim_seconds_per_wall_second: per(&|r| r.sim_seconds / r.wall_seconds),
            events_per_second: per(&|r| r.events as f64 / r.wall_seconds),
            acked_per_second: per(&|r| r.acked as f64 / r.wall_seconds),
            messages_per_acked: per(&messages_per_acked),
            seeds_per_minute: summary.runs_per_minute,
            swarm_seeds,
            peak_rss_bytes: runs.iter().map(|r| r.peak_rss_bytes).max().unwrap_or(0),
            all_passed: runs.iter().all(|r| r.pass) && summary.failures.is_empty(),
        });
    }
    progress("floor");
    let writes_per_second = median_of(&floor_runs, |f| f.acked as f64 / f.wall_seconds);
    let floor = Floor {
        producers: REPLICATION_PRODUCERS,
        writes_per_wall_second: writes_per_second,
        sim_seconds_per_wall_second: median_of(&floor_runs, |f| f.sim_seconds / f.wall_seconds),
        messages_per_write: median_of(&floor_runs, messages_per_acked),
        runtimes_per_second_per_core: floor::runtimes_per_second(200),
    };
    let find = |n: &str| out.iter().find(|w| w.name == n).expect("a workload");
    let replication = find("replication");
    let floor_ratio = writes_per_second / replication.acked_per_second.max(1e-9);
    let cost = |w: &Workload| 1.0 / w.sim_seconds_per_wall_second.max(1e-9);
    let slope_sim_time = cost(find("long-10-minutes")) / cost(find("default"));
    let slope_partitions =
        (cost(find("5-brokers-30-partitions")) / 30.0) / (cost(find("default")) / 3.0);
    Ok(Bench {
        cores,
        workloads: out,
        floor,
        floor_ratio,
        slope_sim_time,
        slope_partitions,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(vec![4.0, 1.0]), 2.5);
        assert_eq!(super::median(vec![]), 0.0);
    }
}
