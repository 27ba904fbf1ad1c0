//! Many seeds of one scenario, on all cores, each on a fresh thread, and what they add up to.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::checkers::Violation;
use crate::run::{self, RunReport};
use crate::scenario::Scenario;
use crate::Locked;

/// A failed seed and the first thing that caught it.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub seed: u64,
    pub violation: Option<Violation>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SwarmSummary {
    pub scenario: String,
    pub seeds: String,
    pub runs: usize,
    pub passed: usize,
    pub failures: Vec<Failure>,
    /// Faults injected across all runs, by kind.
    pub faults: BTreeMap<String, u64>,
    /// How often each invariant was evaluated across all runs.
    pub invariants: BTreeMap<String, u64>,
    pub acked: u64,
    pub elections: u64,
    pub truncations: u64,
    pub wall_seconds: f64,
    pub runs_per_second: f64,
    pub runs_per_minute: f64,
    /// The slowest runs: (seed, wall seconds).
    pub slowest: Vec<(u64, f64)>,
}

/// Runs `seeds` with `jobs` threads. `done` sees each report as it finishes (for progress).
pub fn run_swarm(
    scenario: &Scenario,
    name: &str,
    seeds: Range<u64>,
    jobs: usize,
    done: &(dyn Fn(&RunReport) + Sync),
) -> SwarmSummary {
    let wall = std::time::Instant::now();
    let next = AtomicU64::new(seeds.start);
    let reports = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                if seed >= seeds.end {
                    return;
                }
                let report = run::run(scenario, seed, false).report;
                done(&report);
                reports.locked().push(report);
            });
        }
    });
    let mut reports = reports.into_inner().unwrap_or_else(|p| p.into_inner());
    reports.sort_by_key(|r| r.seed);
    summarize(name, &seeds, &reports, wall.elapsed().as_secs_f64())
}

pub fn summarize(
    name: &str,
    seeds: &Range<u64>,
    reports: &[RunReport],
    wall_seconds: f64,
) -> SwarmSummary {
    let mut faults: BTreeMap<String, u64> = crate::faults::KINDS
        .iter()
        .map(|k| (k.to_string(), 0))
        .collect();
    for r in reports {
        for (kind, n) in &r.counters.faults {
            *faults.entry(kind.to_string()).or_default() += n;
        }
    }
    let mut invariants: BTreeMap<String, u64> = BTreeMap::new();
    for r in reports {
        for (name, n) in &r.counters.invariants {
            *invariants.entry(name.to_string()).or_default() += n;
        }
    }
    let failures: Vec<Failure> = reports
        .iter()
        .filter(|r| !r.pass)
        .map(|r| Failure {
            seed: r.seed,
            violation: r.violations.first().cloned(),
        })
        .collect();
    let mut slowest: Vec<(u64, f64)> = reports.iter().map(|r| (r.seed, r.wall_seconds)).collect();
    slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
    slowest.truncate(5);
    let rate = reports.len() as f64 / wall_seconds.max(1e-9);
    SwarmSummary {
        scenario: name.to_owned(),
        seeds: format!("{}..{}", seeds.start, seeds.end),
        runs: reports.len(),
        passed: reports.len() - failures.len(),
        failures,
        faults,
        invariants,
        acked: reports.iter().map(|r| r.acked).sum(),
        elections: reports.iter().map(|r| r.elections).sum(),
        truncations: reports.iter().map(|r| r.truncations).sum(),
        wall_seconds,
        runs_per_second: rate,
        runs_per_minute: rate * 60.0,
        slowest,
    }
}
