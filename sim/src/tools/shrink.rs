//! Shrinking a failing seed to a short fault schedule.
//!
//! The faults a run injected (from a profile, a swarm mix or a timeline) are taken as the explicit
//! timeline the run recorded of them (`RunOutput::struck`), which replays the same run. With the seed fixed, delta debugging (ddmin) removes faults while
//! the run still fails the same check, then each remaining fault is shortened while it still does.
//! The result is a scenario file that `logsim run --seed N --scenario FILE` replays.

use std::collections::BTreeMap;
use crate::checkers::Check;
use std::time::Duration;

use serde_json::Value;

use crate::run::run;
use crate::scenario::timeline::parse_link;
use crate::scenario::{parse_duration, Fault, Faults, Scenario, Scheduled, Target};

/// The outcome of a shrink.
#[derive(Debug)]
pub struct Shrunk {
    /// The seed shrunk: the shrunk scenario fails with it.
    pub seed: u64,
    /// The check the original run failed first, and every shrunk candidate must fail too.
    pub check: Check,
    /// Faults the original run injected, as read back from its trace.
    pub faults_before: usize,
    /// Faults left in the shrunk timeline.
    pub faults_after: usize,
    /// Runs made, the original one included.
    pub runs: usize,
    /// The scenario with the shrunk timeline as its only faults (no swarm, no profile).
    pub scenario: Scenario,
}

/// Reads the faults of a run back from its trace, as a timeline.
pub fn materialize(trace: &[String]) -> Vec<Scheduled> {
    let mut faults: Vec<Scheduled> = Vec::new();
    // Faults still open: (fault kind, target) -> index into `faults`.
    let mut open: BTreeMap<(String, String), usize> = BTreeMap::new();
    // A node's crash or shutdown waiting for its restart, and damage found at the restart.
    let mut down: BTreeMap<i64, usize> = BTreeMap::new();
    let ends = |f: &mut Scheduled, t: u64| {
        f.duration = Some(Duration::from_millis(t.saturating_sub(ms(f.at)).max(1)));
    };
    for line in trace {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let kind = v["kind"].as_str().unwrap_or("");
        if kind != "fault" && kind != "heal" {
            continue;
        }
        let t = v["t"].as_u64().unwrap_or(0);
        let at = Duration::from_millis(t);
        let node = v["node"].as_i64().unwrap_or(-1);
        let fault = v["fault"].as_str().unwrap_or("").to_owned();
        let target = v["target"].as_str().unwrap_or("").to_owned();
        let detail = v["detail"].as_str().unwrap_or("");
        let broker = Target::Broker(node as i32);
        if kind == "heal" {
            if let Some(i) = open.remove(&(fault, target)) {
                ends(&mut faults[i], t);
            }
            continue;
        }
        let struck = match fault.as_str() {
            "crash" | "shutdown" => {
                down.insert(node, faults.len());
                if fault == "crash" {
                    Some(Fault::Crash(broker))
                } else {
                    Some(Fault::Shutdown(broker))
                }
            }
            "disk-torn" | "disk-corrupt" | "disk-wipe" => {
                if let Some(&i) = down.get(&node) {
                    faults[i].fault = match fault.as_str() {
                        "disk-torn" => Fault::DiskTorn(broker),
                        "disk-corrupt" => Fault::DiskCorrupt(broker),
                        _ => Fault::DiskWipe(broker),
                    };
                }
                None
            }
            "restart" => {
                if let Some(i) = down.remove(&node) {
                    ends(&mut faults[i], t);
                }
                None
            }
            "pause" | "disk-full" | "disk-slow" | "clock-skew" => {
                let struck = node_fault(&fault, broker, detail);
                if struck.is_some() {
                    open.insert((fault, node.to_string()), faults.len());
                }
                struck
            }
            "partition" | "clog" | "packet-loss" | "latency" => {
                let struck = network_fault(&fault, &target, detail);
                if struck.is_some() {
                    open.insert((fault, target), faults.len());
                }
                struck
            }
            _ => None,
        };
        faults.extend(struck.map(|f| f.at(at)));
    }
    faults
}

fn ms(d: Duration) -> u64 {
    d.as_millis() as u64
}

/// A fault on one broker, as its trace line tells it; none when the line lacks its parameters
/// (a trace from an older format, say).
fn node_fault(fault: &str, broker: Target, detail: &str) -> Option<Fault> {
    Some(match fault {
        "pause" => Fault::Pause(broker),
        "disk-full" => Fault::DiskFull(broker),
        "disk-slow" => Fault::DiskSlow {
            target: broker,
            delay: parse_duration(detail.strip_prefix("sync takes ")?).ok()?,
        },
        _ => match detail.strip_prefix("step ").and_then(|d| d.strip_suffix(" ms")) {
            Some(step) => Fault::ClockSkew {
                target: broker,
                step_ms: step.trim_start_matches('+').parse().ok()?,
            },
            None => Fault::ClockDrift {
                target: broker,
                ppm: detail
                    .strip_prefix("drift ")?
                    .strip_suffix(" ppm")?
                    .parse()
                    .ok()?,
            },
        },
    })
}

/// A fault on the network, as its trace line tells it; none when the line lacks its parameters.
fn network_fault(fault: &str, target: &str, detail: &str) -> Option<Fault> {
    Some(match fault {
        "partition" => Fault::Partition(target.parse().ok()?),
        "clog" => Fault::Clog(Some(parse_link(target)?)),
        "packet-loss" => Fault::PacketLoss {
            rate: detail.strip_prefix("rate ")?.parse().ok()?,
        },
        _ => {
            let (min, max) = detail.split_once("..")?;
            Fault::Latency {
                min: parse_duration(min).ok()?,
                max: parse_duration(max).ok()?,
            }
        }
    })
}

/// `base` with `entries` as its only faults (no swarm mix, no profile).
pub fn with_timeline(base: &Scenario, entries: &[Scheduled]) -> Scenario {
    let mut s = base.clone();
    s.faults = Faults {
        swarm: false,
        profile: None,
        timeline: entries.to_vec(),
    };
    s
}

/// The first check `scenario` fails with `seed`, if any.
fn first_failure(scenario: &Scenario, seed: u64) -> Option<Check> {
    let report = run(scenario, seed, false).report;
    report.violations.first().map(|v| v.check)
}

/// Shrinks the failure of `seed` under `scenario`. `progress` hears of each candidate tried.
pub fn shrink(
    scenario: &Scenario,
    seed: u64,
    progress: &dyn Fn(usize, usize),
) -> Result<Shrunk, String> {
    let original = run(scenario, seed, false);
    let Some(first) = original.report.violations.first() else {
        return Err(format!("seed {seed} passes: there is nothing to shrink"));
    };
    let check = first.check;
    // The seed's drawn timing settings become the file's own, so the shrunk scenario stands
    // alone whatever knob mode it is run with.
    let (scenario, _) = scenario.for_seed(seed);
    // What the run struck, as it recorded it: every target resolved and every draw fixed, so
    // that the timeline replays the same run (a trace read back loses overlaps and precision).
    let entries = original.struck.clone();
    let before = entries.len();
    let fails = |candidate: &[Scheduled]| {
        first_failure(&with_timeline(&scenario, candidate), seed) == Some(check)
    };
    if !fails(&entries) {
        return Err(format!(
            "seed {seed} fails {check}, but not once its {before} faults are replayed as a timeline; shrink needs a failure that survives that"
        ));
    }
    Ok(shrink_timeline(&scenario, seed, check, entries, 2, progress))
}

/// Shrinks `entries`, a timeline that fails `check` with `seed` on `scenario` (with no faults of
/// its own), by delta debugging and then shortening; `runs` counts the runs made so far.
pub fn shrink_timeline(
    scenario: &Scenario,
    seed: u64,
    check: Check,
    mut entries: Vec<Scheduled>,
    mut runs: usize,
    progress: &dyn Fn(usize, usize),
) -> Shrunk {
    let before = entries.len();
    let fails = |candidate: &[Scheduled], runs: &mut usize| {
        *runs += 1;
        progress(*runs, candidate.len());
        first_failure(&with_timeline(scenario, candidate), seed) == Some(check)
    };
    // ddmin: try ever finer partitions; keep any chunk's complement that still fails.
    let mut granularity = 2;
    while entries.len() >= 2 {
        let chunk = entries.len().div_ceil(granularity);
        let mut reduced = false;
        for start in (0..entries.len()).step_by(chunk) {
            let complement: Vec<Scheduled> = entries[..start]
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
        let none: Vec<Scheduled> = Vec::new();
        if fails(&none, &mut runs) {
            entries.clear();
        }
    }
    // Shorten what remains.
    for i in 0..entries.len() {
        while let Some(d) = entries[i].duration.filter(|d| ms(*d) >= 200) {
            let mut candidate = entries.clone();
            candidate[i].duration = Some(Duration::from_millis(ms(d) / 2));
            if !fails(&candidate, &mut runs) {
                break;
            }
            entries = candidate;
        }
    }
    let after = entries.len();
    Shrunk {
        seed,
        check,
        faults_before: before,
        faults_after: after,
        runs,
        scenario: with_timeline(scenario, &entries),
    }
}
