//! `logsim bench`: how fast logsim explores, against the bare madsim floor. Each workload runs a
//! few seeds one at a time in a child process (for wall time per run and peak memory), then a
//! swarm of seeds on every core (for seeds per minute). The floor is the same message pattern with
//! no broker logic (`floor`). Figures go to stdout; nothing here asserts a speed.

pub mod floor;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::run::run;
use crate::scenario::Scenario;
use crate::tools::swarm::run_swarm;

/// One run's figures, as the child process reports them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Single {
    /// Wall-clock seconds the run took.
    pub wall_seconds: f64,
    /// Simulated seconds the run covered.
    pub sim_seconds: f64,
    /// Trace events the run recorded (for the floor, its writes).
    pub events: u64,
    /// Messages over madsim's network.
    pub messages: u64,
    /// Records acknowledged (for the floor, its writes).
    pub acked: u64,
    /// The child process's peak resident memory, in bytes (0 without /proc).
    pub peak_rss_bytes: u64,
    /// Whether the run passed every check (always, for the floor).
    pub pass: bool,
}

/// One workload's figures: medians over its single runs, and its swarm's rate.
#[derive(Clone, Debug, Serialize)]
pub struct Workload {
    /// The workload's name, as [`workloads`] gives it.
    pub name: String,
    /// Single runs kept: one per seed, the fastest of its repeats.
    pub runs: usize,
    /// Median over the single runs.
    pub wall_seconds_per_run: f64,
    /// Simulated seconds per wall-clock second of one run.
    pub sim_seconds_per_wall_second: f64,
    /// Trace events (elections, HW moves, faults, ...) per wall second.
    pub events_per_second: f64,
    /// Acknowledged records per wall second of one run.
    pub acked_per_second: f64,
    /// madsim messages per acknowledged record (consumers' and the cluster's own included).
    pub messages_per_acked: f64,
    /// Swarm seeds run per wall-clock minute, on every core.
    pub seeds_per_minute: f64,
    /// Seeds in the workload's swarm.
    pub swarm_seeds: u64,
    /// The highest peak resident memory of any single run, in bytes.
    pub peak_rss_bytes: u64,
    /// Whether every single run and every swarm seed passed.
    pub all_passed: bool,
}

/// The bare madsim floor's figures ([`floor`]): medians over its runs beside the `replication`
/// workload's.
#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    /// Write chains running at once: as many as the `replication` workload's producers.
    pub producers: u32,
    /// Replicated writes acknowledged per wall-clock second.
    pub writes_per_wall_second: f64,
    /// madsim messages per replicated write (producer, leader and followers all counted).
    pub messages_per_write: f64,
    /// Simulated seconds per wall-clock second.
    pub sim_seconds_per_wall_second: f64,
    /// Small runtimes built and run per wall-clock second, one at a time
    /// ([`floor::runtimes_per_second`]).
    pub runtimes_per_second_per_core: f64,
}

/// Everything `logsim bench` measured.
#[derive(Clone, Debug, Serialize)]
pub struct Bench {
    /// Threads the swarms ran on.
    pub cores: usize,
    /// Each workload's figures, in the order of [`workloads`].
    pub workloads: Vec<Workload>,
    /// The bare madsim floor's figures.
    pub floor: Floor,
    /// logsim's wall time per acknowledged record in the `replication` workload over the floor's
    /// wall time per replicated write, at the same number of producers.
    pub floor_ratio: f64,
    /// The marginal wall time per simulated second late in a run over that early in it: from the
    /// 5-minute run to the 10-minute one, over from the default (1-minute) run to the 5-minute one,
    /// all three of the same seed and taken one beside the other. 1 is linear. Every run ends in
    /// the same quiet period and final checks, which the differences cancel.
    pub slope_sim_time: f64,
    /// Wall time per simulated second of the whole 10-minute run over the whole default run's.
    /// The default run's last 10 simulated seconds are idle and its start-up and final checks
    /// weigh more in it, so this is above the marginal slope even where cost is linear.
    pub slope_sim_time_whole_runs: f64,
    /// Wall time per simulated second per partition, 30 partitions over 3 (default runs taken
    /// beside the wide ones): 1 is linear.
    pub slope_partitions: f64,
    /// The exponent k of wall time per simulated second growing as partitions^k on 9 brokers,
    /// fitted over 30, 300 and 1,000 partitions (runs of one seed taken one beside the other):
    /// 1 is linear. Fixed costs (the quorum, heartbeats, the brokers' own loops) weigh most at 30
    /// partitions, so a k below 1 means they are still being paid off.
    pub slope_partitions_at_scale: f64,
}

const REPLICATION_PRODUCERS: u32 = 4;

/// How many times each seed runs. A seed's runs do the same work, so they differ only by what
/// else the machine did meanwhile: the fastest is the one least disturbed, and it is the one kept.
const REPEATS: usize = 3;

/// Keeps the faster of `kept` and `run`.
fn keep_fastest(kept: &mut Option<Single>, run: Single) {
    if kept.as_ref().is_none_or(|k| run.wall_seconds < k.wall_seconds) {
        *kept = Some(run);
    }
}

/// Each workload whose figures are compared with others', and those others: their runs alternate
/// with the workload's, seed by seed.
const PARTNERS: &[(&str, &[&str])] = &[
    ("replication", &["floor"]),
    ("long-10-minutes", &["default", "long-5-minutes"]),
    ("5-brokers-30-partitions", &["default"]),
    (
        "9-brokers-1000-partitions",
        &["9-brokers-30-partitions", "9-brokers-300-partitions"],
    ),
];
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
        include_str!("../../../../scenarios/everything.toml"),
    );
    // The one-shot client: the floor this workload is measured against sends one acks=all write
    // per request, each awaited before the next.
    let replication = parse(
        "replication.toml",
        &format!(
            "description = \"one partition, {REPLICATION_PRODUCERS} producers writing back to back, no faults\"\n\
             [[topics]]\nname = \"events\"\npartitions = 1\n\
             [workload]\nproducers = {REPLICATION_PRODUCERS}\nconsumers = 1\nsend_interval = [\"0ms\", \"1ms\"]\n\
             retries = 0\nidempotence = false\nmax_in_flight = 1\nlinger = \"0ms\"\n\
             [run]\nduration = \"20s\"\nquiet_period = \"2s\"\n"
        ),
    );
    vec![
        ("default", default, 3, 24),
        ("5-brokers-30-partitions", wide, 3, 8),
        ("swarm-all-faults", everything, 3, 24),
        ("long-10-minutes", long, 2, 2),
        ("replication", replication, 5, 8),
        ("9-brokers-300-partitions", nine_brokers(300), 1, 2),
        ("9-brokers-1000-partitions", nine_brokers(1000), 1, 2),
    ]
}

/// A cluster as a user sizes one: 9 brokers, one topic replicated three ways over `partitions`,
/// eight producers, the default scenario's crashes, a minute of traffic and 20 s of quiet.
fn nine_brokers(partitions: i32) -> Scenario {
    let mut s = Scenario::builtin_default();
    s.description = format!("9 brokers, {partitions} partitions, 8 producers");
    s.cluster.brokers = 9;
    s.topics[0].partitions = partitions;
    s.workload.producers = 8;
    s
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

/// Scenarios that run only beside a workload, for its comparisons.
fn partner_scenarios() -> Vec<(&'static str, Scenario)> {
    let mut five = Scenario::builtin_default();
    five.description = "the default scenario for 5 simulated minutes".into();
    five.run.duration.0 = Duration::from_secs(300);
    vec![
        ("long-5-minutes", five),
        ("9-brokers-30-partitions", nine_brokers(30)),
    ]
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
    let scenarios = workloads()
        .into_iter()
        .map(|(n, scenario, ..)| (n, scenario))
        .chain(partner_scenarios());
    let mut known = Vec::new();
    let mut found = None;
    for (n, scenario) in scenarios {
        known.push(n);
        if n == name {
            found = Some(scenario);
        }
    }
    let scenario = found.ok_or_else(|| {
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

/// Wall time per simulated second from `five` to `ten` over that from `one` to `five`: runs of one
/// seed that differ only in how long they run.
fn marginal_slope(one: &Single, five: &Single, ten: &Single) -> f64 {
    let per_second = |a: &Single, b: &Single| {
        (b.wall_seconds - a.wall_seconds) / (b.sim_seconds - a.sim_seconds).max(1e-9)
    };
    per_second(five, ten) / per_second(one, five).max(1e-12)
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
    // The runs each comparison takes beside a workload's own (`PARTNERS`), alternately with them
    // and of the same seeds, so that a machine that speeds up or slows down meanwhile moves both
    // alike.
    let mut partner_runs: BTreeMap<(&str, &str), Vec<Single>> = BTreeMap::new();
    let mut own_runs: BTreeMap<&str, Vec<Single>> = BTreeMap::new();
    for (name, scenario, singles, swarm_seeds) in workloads() {
        progress(name);
        let partners = PARTNERS
            .iter()
            .find(|(w, _)| *w == name)
            .map_or(&[][..], |(_, p)| *p);
        let mut runs = Vec::new();
        for seed in 0..singles as u64 {
            let mut fastest = None;
            let mut partners_fastest = vec![None; partners.len()];
            for _ in 0..REPEATS {
                keep_fastest(&mut fastest, spawn_single(name, seed)?);
                for (partner, kept) in partners.iter().zip(&mut partners_fastest) {
                    keep_fastest(kept, spawn_single(partner, seed)?);
                }
            }
            runs.extend(fastest);
            for (partner, kept) in partners.iter().zip(partners_fastest) {
                partner_runs.entry((name, partner)).or_default().extend(kept);
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
        own_runs.insert(name, runs);
    }
    progress("floor");
    let partner = |name: &'static str, partner: &'static str| {
        partner_runs
            .get(&(name, partner))
            .map_or(&[][..], |r| &r[..])
    };
    let own = |name: &str| own_runs.get(name).map_or(&[][..], |r| &r[..]);
    let floor_runs = partner("replication", "floor");
    let writes_per_second = median_of(floor_runs, |f| f.acked as f64 / f.wall_seconds);
    let floor = Floor {
        producers: REPLICATION_PRODUCERS,
        writes_per_wall_second: writes_per_second,
        sim_seconds_per_wall_second: median_of(floor_runs, |f| f.sim_seconds / f.wall_seconds),
        messages_per_write: median_of(floor_runs, messages_per_acked),
        runtimes_per_second_per_core: floor::runtimes_per_second(200),
    };
    let replication = out
        .iter()
        .find(|w| w.name == "replication")
        .expect("a workload");
    let floor_ratio = writes_per_second / replication.acked_per_second.max(1e-9);
    // Wall seconds per simulated second, the median over some runs.
    let cost = |runs: &[Single]| 1.0 / median_of(runs, |r| r.sim_seconds / r.wall_seconds).max(1e-9);
    let ten_minutes = own("long-10-minutes");
    let one_minute = partner("long-10-minutes", "default");
    let five_minutes = partner("long-10-minutes", "long-5-minutes");
    let slope_sim_time_whole_runs = cost(ten_minutes) / cost(one_minute);
    let slope_sim_time = median(
        one_minute
            .iter()
            .zip(five_minutes)
            .zip(ten_minutes)
            .map(|((one, five), ten)| marginal_slope(one, five, ten))
            .collect(),
    );
    let slope_partitions = (cost(own("5-brokers-30-partitions")) / 30.0)
        / (cost(partner("5-brokers-30-partitions", "default")) / 3.0);
    let at_scale = [
        (30.0, partner("9-brokers-1000-partitions", "9-brokers-30-partitions")),
        (300.0, partner("9-brokers-1000-partitions", "9-brokers-300-partitions")),
        (1000.0, own("9-brokers-1000-partitions")),
    ]
    .map(|(partitions, runs)| (partitions, cost(runs)));
    let slope_partitions_at_scale = log_log_slope(&at_scale);
    Ok(Bench {
        cores,
        workloads: out,
        floor,
        floor_ratio,
        slope_sim_time,
        slope_sim_time_whole_runs,
        slope_partitions,
        slope_partitions_at_scale,
    })
}

/// The least-squares slope of ln y over ln x: the k of y growing as x^k.
fn log_log_slope(points: &[(f64, f64)]) -> f64 {
    let logs: Vec<(f64, f64)> = points
        .iter()
        .map(|(x, y)| (x.ln(), y.max(1e-12).ln()))
        .collect();
    let n = logs.len() as f64;
    let (mx, my) = logs
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (num, den) = logs.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    num / den.max(1e-12)
}

#[cfg(test)]
mod tests {
    use super::{marginal_slope, Single};

    fn run(sim_seconds: f64, wall_seconds: f64) -> Single {
        Single {
            wall_seconds,
            sim_seconds,
            events: 0,
            messages: 0,
            acked: 0,
            peak_rss_bytes: 0,
            pass: true,
        }
    }

    #[test]
    fn the_marginal_slope_sees_through_fixed_costs_but_not_growth() {
        // A fixed 2 s plus 10 ms per simulated second: linear, whatever the fixed part.
        let linear = |sim: f64| run(sim, 2.0 + 0.01 * sim);
        let slope = marginal_slope(&linear(80.0), &linear(320.0), &linear(620.0));
        assert!((slope - 1.0).abs() < 1e-9, "{slope}");
        // Cost per simulated second that grows with the run: above 1.
        let growing = |sim: f64| run(sim, 2.0 + 0.01 * sim + 0.0001 * sim * sim);
        let slope = marginal_slope(&growing(80.0), &growing(320.0), &growing(620.0));
        assert!(slope > 1.5, "{slope}");
    }

    #[test]
    fn the_log_log_slope_is_the_exponent_of_a_power_law() {
        let points = [30.0, 300.0, 1000.0].map(|x: f64| (x, 0.5 * x.powf(1.8)));
        let k = super::log_log_slope(&points);
        assert!((k - 1.8).abs() < 1e-9, "{k}");
        let flat = [30.0, 300.0, 1000.0].map(|x: f64| (x, 2.0));
        assert!(super::log_log_slope(&flat).abs() < 1e-9);
    }

    #[test]
    fn a_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(vec![4.0, 1.0]), 2.5);
        assert_eq!(super::median(vec![]), 0.0);
    }
}
