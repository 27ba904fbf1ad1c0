//! Many seeds of one scenario, on all cores, each on a fresh thread, and what they add up to.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::checkers::Violation;
use crate::tools::coverage::Coverage;
use model::coverage::Mark;
use crate::run::{self, RunReport};
use crate::scenario::Scenario;
use crate::Locked;

/// A failed seed and the first thing that caught it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The seed that failed.
    pub seed: u64,
    /// The first violation its run recorded.
    pub violation: Option<Violation>,
}

/// What a summary needs of one seed's run; a shard writes one per line (see `shard`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedResult {
    /// The seed run.
    pub seed: u64,
    /// Whether the run passed every check.
    pub pass: bool,
    /// The run's first violation; `None` when it passed.
    pub violation: Option<Violation>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// How often each invariant was evaluated, by name.
    pub invariants: BTreeMap<String, u64>,
    /// Records the producers had acknowledged.
    pub acked: u64,
    /// Times a replica became a partition's leader.
    pub elections: u64,
    /// Log truncations, over all replicas.
    pub truncations: u64,
    /// acks=1 writes acknowledged and then lost to a failover (allowed; measured); 0 when absent.
    #[serde(default)]
    pub lost_acks1: u64,
    /// Values consumers read a second time after resuming from a commit (a restart, or a group
    /// member taking a partition over); 0 when absent.
    #[serde(default)]
    pub rereads: u64,
    /// Wall-clock seconds the run took.
    pub wall_seconds: f64,
    /// Coverage marks the run reached, with their hits; empty when absent.
    #[serde(default)]
    pub marks: BTreeMap<String, u64>,
    /// How the run's transactions ended, when it ran any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<crate::run::TxnCounts>,
}

impl From<&RunReport> for SeedResult {
    fn from(r: &RunReport) -> Self {
        SeedResult {
            seed: r.seed,
            pass: r.pass,
            violation: r.violations.first().cloned(),
            faults: r
                .counters
                .faults
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            invariants: r
                .counters
                .invariants
                .iter()
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            acked: r.acked,
            elections: r.elections,
            truncations: r.truncations,
            lost_acks1: r.lost_acks1,
            rereads: r.rereads,
            wall_seconds: r.wall_seconds,
            marks: (r.counters.marks.iter())
                .map(|(k, n)| (k.to_string(), *n))
                .collect(),
            transactions: r.transactions.clone(),
        }
    }
}

/// What a swarm's seeds add up to: what `logsim swarm` prints and its report page shows.
#[derive(Clone, Debug, Serialize)]
pub struct SwarmSummary {
    /// The scenario's name (its file's path).
    pub scenario: String,
    /// The seeds, as a label: `START..END`, followed by `shard K/N` for one shard's own summary.
    pub seeds: String,
    /// Seeds run.
    pub runs: usize,
    /// Seeds that passed.
    pub passed: usize,
    /// The seeds that failed, in seed order.
    pub failures: Vec<Failure>,
    /// Faults injected across all runs, by kind.
    pub faults: BTreeMap<String, u64>,
    /// How often each invariant was evaluated across all runs.
    pub invariants: BTreeMap<String, u64>,
    /// Records acknowledged, over all runs.
    pub acked: u64,
    /// Times a replica became a partition's leader, over all runs.
    pub elections: u64,
    /// Log truncations, over all runs.
    pub truncations: u64,
    /// acks=1 writes acknowledged and then lost (allowed by acks=1; measured).
    pub lost_acks1: u64,
    /// Values read again by consumers that resumed from a commit (restarts and rebalances).
    pub rereads: u64,
    /// How the transactions ended over all runs, when the scenario runs any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<crate::run::TxnCounts>,
    /// Wall-clock seconds the swarm took; for merged shards, the slowest shard's.
    pub wall_seconds: f64,
    /// Seeds run per wall-clock second.
    pub runs_per_second: f64,
    /// Seeds run per wall-clock minute.
    pub runs_per_minute: f64,
    /// The slowest runs: (seed, wall seconds).
    pub slowest: Vec<(u64, f64)>,
    /// Each coverage mark over the swarm, and the scenario's sometimes-properties judged.
    pub coverage: Coverage,
}

impl SwarmSummary {
    /// Every seed passed, and every sometimes-property was reached by one of them.
    pub fn pass(&self) -> bool {
        self.failures.is_empty() && self.coverage.vacuous.is_empty()
    }
}

/// Runs `seeds` with `jobs` threads. `done` sees each report as it finishes (for progress).
pub fn run_swarm(
    scenario: &Scenario,
    name: &str,
    seeds: Range<u64>,
    jobs: usize,
    done: &(dyn Fn(&RunReport) + Sync),
) -> SwarmSummary {
    let label = format!("{}..{}", seeds.start, seeds.end);
    let wall = std::time::Instant::now();
    let results = run_seeds(scenario, &seeds.collect::<Vec<_>>(), jobs, done);
    let wall = wall.elapsed().as_secs_f64();
    summarize(name, &label, &results, wall, &scenario.sometimes)
}

/// Runs the given seeds with `jobs` threads and returns their results in seed order. `done` sees
/// each report as it finishes (for progress, or to write it out at once).
pub fn run_seeds(
    scenario: &Scenario,
    seeds: &[u64],
    jobs: usize,
    done: &(dyn Fn(&RunReport) + Sync),
) -> Vec<SeedResult> {
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::with_capacity(seeds.len()));
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                let report = run::run(scenario, seed, false).report;
                done(&report);
                results.locked().push(SeedResult::from(&report));
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
    results.sort_by_key(|r| r.seed);
    results
}

/// Adds seed results (in seed order) up; `seeds` names the range they came from, `sometimes` the
/// marks the scenario requires some seed to reach.
pub fn summarize(
    name: &str,
    seeds: &str,
    results: &[SeedResult],
    wall_seconds: f64,
    sometimes: &[Mark],
) -> SwarmSummary {
    let mut faults: BTreeMap<String, u64> = crate::scenario::FaultKind::ALL
        .iter()
        .map(|k| (k.name().to_string(), 0))
        .collect();
    let mut invariants: BTreeMap<String, u64> = BTreeMap::new();
    for r in results {
        for (kind, n) in &r.faults {
            *faults.entry(kind.clone()).or_default() += n;
        }
        for (name, n) in &r.invariants {
            *invariants.entry(name.clone()).or_default() += n;
        }
    }
    let failures: Vec<Failure> = results
        .iter()
        .filter(|r| !r.pass)
        .map(|r| Failure {
            seed: r.seed,
            violation: r.violation.clone(),
        })
        .collect();
    let mut slowest: Vec<(u64, f64)> = results.iter().map(|r| (r.seed, r.wall_seconds)).collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    slowest.truncate(5);
    let rate = results.len() as f64 / wall_seconds.max(1e-9);
    SwarmSummary {
        scenario: name.to_owned(),
        seeds: seeds.to_owned(),
        runs: results.len(),
        passed: results.len() - failures.len(),
        failures,
        faults,
        invariants,
        acked: results.iter().map(|r| r.acked).sum(),
        elections: results.iter().map(|r| r.elections).sum(),
        truncations: results.iter().map(|r| r.truncations).sum(),
        lost_acks1: results.iter().map(|r| r.lost_acks1).sum(),
        rereads: results.iter().map(|r| r.rereads).sum(),
        transactions: (results.iter())
            .filter_map(|r| r.transactions.as_ref())
            .fold(None, |sum: Option<crate::run::TxnCounts>, t| {
                let mut sum = sum.unwrap_or_default();
                sum.add(t);
                Some(sum)
            }),
        wall_seconds,
        runs_per_second: rate,
        runs_per_minute: rate * 60.0,
        slowest,
        coverage: Coverage::tally(results.iter().map(|r| &r.marks), sometimes),
    }
}
