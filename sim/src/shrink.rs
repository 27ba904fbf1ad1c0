//! Shrinking a failing seed to a short fault schedule.
//!
//! The faults a run injected (from a profile, a swarm mix or a timeline) are read back from its
//! trace as an explicit timeline. With the seed fixed, delta debugging (ddmin) removes faults while
//! the run still fails the same check, then each remaining fault is shortened while it still does.
//! The result is a scenario file that `logsim run --seed N --scenario FILE` replays.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::faults::timeline::{Entry, Kind};
use crate::run::run;
use crate::scenario::{parse_duration, Dur, Faults, Scenario};

/// The outcome of a shrink.
#[derive(Debug)]
pub struct Shrunk {
    pub seed: u64,
    /// The check the original run failed first, and every shrunk candidate must fail too.
    pub check: String,
    pub faults_before: usize,
    pub faults_after: usize,
    pub runs: usize,
    pub scenario: Scenario,
}

fn ms(v: u64) -> Dur {
    Dur(Duration::from_millis(v))
}

fn entry(at: u64, kind: Kind, target: Option<String>, until: Option<u64>) -> Entry {
    Entry {
        at: ms(at),
        kind,
        target,
        duration: until.map(|u| ms(u.saturating_sub(at).max(1))),
        rate: None,
        latency: None,
        offset: None,
        drift_ppm: None,
        delay: None,
    }
}

/// Reads the faults of a run back from its trace, as a timeline.
pub fn materialize(trace: &[String]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    // Faults still open: (fault kind, target) -> index into `entries`.
    let mut open: BTreeMap<(String, String), usize> = BTreeMap::new();
    // A node's crash or shutdown waiting for its restart, and damage found at the restart.
    let mut down: BTreeMap<i64, usize> = BTreeMap::new();
    for line in trace {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let kind = v["kind"].as_str().unwrap_or("");
        if kind != "fault" && kind != "heal" {
            continue;
        }
        let t = v["t"].as_u64().unwrap_or(0);
        let node = v["node"].as_i64().unwrap_or(-1);
        let fault = v["fault"].as_str().unwrap_or("").to_owned();
        let target = v["target"].as_str().unwrap_or("").to_owned();
        let detail = v["detail"].as_str().unwrap_or("");
        let broker = format!("broker:{node}");
        if kind == "heal" {
            if let Some(i) = open.remove(&(fault, target)) {
                entries[i].duration = Some(ms(t.saturating_sub(entries[i].at.ms()).max(1)));
            }
            continue;
        }
        match fault.as_str() {
            "crash" | "shutdown" => {
                let k = if fault == "crash" {
                    Kind::Crash
                } else {
                    Kind::Shutdown
                };
                down.insert(node, entries.len());
                entries.push(entry(t, k, Some(broker), None));
            }
            "disk-torn" | "disk-corrupt" | "disk-wipe" => {
                if let Some(&i) = down.get(&node) {
                    entries[i].kind = match fault.as_str() {
                        "disk-torn" => Kind::DiskTorn,
                        "disk-corrupt" => Kind::DiskCorrupt,
                        _ => Kind::DiskWipe,
                    };
                }
            }
            "restart" => {
                if let Some(i) = down.remove(&node) {
                    entries[i].duration = Some(ms(t.saturating_sub(entries[i].at.ms()).max(1)));
                }
            }
            "pause" | "disk-full" | "disk-slow" | "clock-skew" => {
                let mut e = entry(t, Kind::Pause, Some(broker), None);
                e.kind = match fault.as_str() {
                    "pause" => Kind::Pause,
                    "disk-full" => Kind::DiskFull,
                    "disk-slow" => {
                        e.delay = detail
                            .strip_prefix("sync takes ")
                            .and_then(|d| parse_duration(d).ok())
                            .map(Dur);
                        Kind::DiskSlow
                    }
                    _ => {
                        if let Some(step) = detail
                            .strip_prefix("step ")
                            .and_then(|d| d.strip_suffix(" ms"))
                        {
                            e.offset = Some(format!("{}ms", step.trim_start_matches('+')));
                            Kind::ClockSkew
                        } else {
                            e.drift_ppm = detail
                                .strip_prefix("drift ")
                                .and_then(|d| d.strip_suffix(" ppm"))
                                .and_then(|p| p.parse().ok());
                            Kind::ClockDrift
                        }
                    }
                };
                open.insert((fault, node.to_string()), entries.len());
                entries.push(e);
            }
            "partition" | "clog" => {
                let k = if fault == "partition" {
                    Kind::Partition
                } else {
                    Kind::Clog
                };
                open.insert((fault, target.clone()), entries.len());
                entries.push(entry(t, k, Some(target), None));
            }
            "packet-loss" => {
                let mut e = entry(t, Kind::PacketLoss, None, None);
                e.rate = detail.strip_prefix("rate ").and_then(|r| r.parse().ok());
                open.insert((fault, target), entries.len());
                entries.push(e);
            }
            "latency" => {
                let mut e = entry(t, Kind::Latency, None, None);
                e.latency = detail.split_once("..").and_then(|(a, b)| {
                    Some([Dur(parse_duration(a).ok()?), Dur(parse_duration(b).ok()?)])
                });
                open.insert((fault, target), entries.len());
                entries.push(e);
            }
            _ => {}
        }
    }
    // A shortened clock fault must not leave its partner half-set: drop entries that lack their
    // parameters (a trace from an older format, say).
    entries.retain(|e| match e.kind {
        Kind::DiskSlow => e.delay.is_some(),
        Kind::ClockSkew => e.offset.is_some(),
        Kind::ClockDrift => e.drift_ppm.is_some(),
        Kind::PacketLoss => e.rate.is_some(),
        Kind::Latency => e.latency.is_some(),
        _ => true,
    });
    entries
}

fn with_timeline(base: &Scenario, entries: &[Entry]) -> Scenario {
    let mut s = base.clone();
    s.faults = Faults {
        swarm: false,
        profile: None,
        timeline: entries.to_vec(),
    };
    s
}

/// The first check `scenario` fails with `seed`, if any.
fn first_failure(scenario: &Scenario, seed: u64) -> Option<String> {
    let report = run(scenario, seed, false).report;
    report.violations.first().map(|v| v.check.to_owned())
}

/// Shrinks the failure of `seed` under `scenario`. `progress` hears of each candidate tried.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    progress: &dyn Fn(usize, usize),
) -> Result<Shrunk, String> {
    let original = run(scenario, seed, true);
    let Some(first) = original.report.violations.first() else {
        return Err(format!("seed {seed} passes: there is nothing to shrink"));
    };
    let check = first.check.to_owned();
    let mut entries = materialize(&original.trace);
    let before = entries.len();
    let mut runs = 1;
    let fails = |candidate: &[Entry], runs: &mut usize| {
        *runs += 1;
        progress(*runs, candidate.len());
        first_failure(&with_timeline(scenario, candidate), seed).as_deref() == Some(check.as_str())
    };
    if !fails(&entries, &mut runs) {
        return Err(format!(
            "seed {seed} fails {check}, but not once its {before} faults are replayed as a timeline; shrink needs a failure that survives that"
        ));
    }
    // ddmin: try ever finer partitions; keep any chunk's complement that still fails.
    let mut granularity = 2;
    while entries.len() >= 2 {
        let chunk = entries.len().div_ceil(granularity);
        let mut reduced = false;
        for start in (0..entries.len()).step_by(chunk) {
            let complement: Vec<Entry> = entries[..start]
                .iter()
                .chain(entries[(start + chunk).min(entries.len())..].iter())
                .cloned()
                .collect();
            if fails(&complement, &mut runs) {
                entries = complement;
                granularity = (granularity - 1).max(2);
                reduced = true;
                break;
            }
        }
        if !reduced {
            if granularity >= entries.len() {
                break;
            }
            granularity = (granularity * 2).min(entries.len());
        }
    }
    if entries.len() == 1 {
        let none: Vec<Entry> = Vec::new();
        if fails(&none, &mut runs) {
            entries.clear();
        }
    }
    // Shorten what remains.
    for i in 0..entries.len() {
        while let Some(d) = entries[i].duration.filter(|d| d.ms() >= 200) {
            let mut candidate = entries.clone();
            candidate[i].duration = Some(ms(d.ms() / 2));
            if !fails(&candidate, &mut runs) {
                break;
            }
            entries = candidate;
        }
    }
    let after = entries.len();
    Ok(Shrunk {
        seed,
        check,
        faults_before: before,
        faults_after: after,
        runs,
        scenario: with_timeline(scenario, &entries),
    })
}
