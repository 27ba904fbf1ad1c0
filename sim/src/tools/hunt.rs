//! Hunting a bug: switch one wrong rule on, run seeds (a swarm fault mix by default) until a check
//! catches it, and shrink the failing seed to a scenario that replays it.

use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::run::run;
use crate::scenario::Scenario;
use model::bugs::Switch;
use crate::tools::shrink::{shrink, Shrunk};
use crate::Locked;

/// What a hunt found, and what it cost.
#[derive(Debug, Serialize)]
pub struct Hunt {
    /// The switch hunted.
    pub bug: Switch,
    /// Where the seeds ran: `swarm` (the default cluster under swarm faults),
    /// `swarm:dedicated-controller`, `consumer-groups`, `mirror-maker`, `scripted` (the bug's
    /// scenario in `scenarios/bugs/`), or `scenario` (a scenario file as given).
    pub ground: String,
    /// Whether some seed failed.
    pub found: bool,
    /// The lowest failing seed of the range.
    pub seed: Option<u64>,
    /// Seeds run up to and including the failing one (all of them when none failed).
    pub seeds_tried: u64,
    /// The check whose violation came first in the lowest failing seed; `None` when no seed failed.
    pub caught_by: Option<String>,
    /// That first violation, as text; `None` when no seed failed.
    pub message: Option<String>,
    /// Wall-clock seconds the hunt took, shrinking and the grounds before this one included.
    pub wall_seconds: f64,
    /// Simulated seconds of the runs up to and including the failing one (of every run when none
    /// failed), the grounds before this one included: what finding the bug costs, whatever the
    /// machine.
    pub sim_seconds: f64,
    /// Faults left after shrinking; `None` when no seed failed or shrinking failed.
    pub shrunk_faults: Option<usize>,
    /// Faults the failing run injected, read back from its trace; `None` as for `shrunk_faults`.
    pub faults_before_shrink: Option<usize>,
}

/// Runs `seeds` of `scenario` with `bug` switched on, `jobs` at a time, and shrinks the lowest
/// failing seed. The search is the same on every run: seeds below the one reported all passed.
/// Also returns the scenario that replays the failure with its seed: the shrunk one, or, when
/// shrinking could not keep the failure, the scenario as hunted.
pub fn hunt(
    scenario: &Scenario,
    bug: Switch,
    seeds: Range<u64>,
    jobs: usize,
) -> (Hunt, Option<Scenario>) {
    let wall = std::time::Instant::now();
    let mut buggy = scenario.clone();
    buggy.bugs = vec![bug];
    let next = AtomicU64::new(seeds.start);
    let lowest = Mutex::new(None::<(u64, String, String)>);
    let simulated = Mutex::new(Vec::<(u64, f64)>::new());
    let stop = AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let seed = next.fetch_add(1, Ordering::Relaxed);
                let beyond = lowest.locked().as_ref().is_some_and(|(s, _, _)| seed > *s);
                if seed >= seeds.end || beyond || stop.load(Ordering::Relaxed) {
                    return;
                }
                let report = run(&buggy, seed, false).report;
                simulated.locked().push((seed, report.sim_seconds));
                if let Some(v) = report.violations.first() {
                    let mut l = lowest.locked();
                    if l.as_ref().is_none_or(|(s, _, _)| seed < *s) {
                        *l = Some((seed, v.check.name().to_owned(), v.to_string()));
                    }
                }
            });
        }
    });
    let found = lowest.into_inner().unwrap_or_else(|p| p.into_inner());
    // Runs beyond the failing seed, made side by side with it, are not part of the cost.
    let sim_seconds = (simulated.locked().iter())
        .filter(|(seed, _)| found.as_ref().is_none_or(|f| *seed <= f.0))
        .map(|(_, s)| s)
        .sum();
    let shrunk = found
        .as_ref()
        .and_then(|(seed, _, _)| shrink(&buggy, *seed, &|_, _| {}).ok());
    let result = Hunt {
        bug,
        ground: "scenario".to_owned(),
        found: found.is_some(),
        seed: found.as_ref().map(|f| f.0),
        seeds_tried: found
            .as_ref()
            .map_or(seeds.end - seeds.start, |f| f.0 - seeds.start + 1),
        caught_by: found.as_ref().map(|f| f.1.clone()),
        message: found.as_ref().map(|f| f.2.clone()),
        wall_seconds: wall.elapsed().as_secs_f64(),
        sim_seconds,
        shrunk_faults: shrunk.as_ref().map(|s| s.faults_after),
        faults_before_shrink: shrunk.as_ref().map(|s| s.faults_before),
    };
    let replay = found.map(|_| shrunk.map_or(buggy, |s: Shrunk| s.scenario));
    (result, replay)
}

/// The grounds' scenarios, built in so that hunts work from any directory.
const DEDICATED_CONTROLLER: &str = include_str!("../../../scenarios/dedicated-controller.toml");
const CONSUMER_GROUPS: &str = include_str!("../../../scenarios/consumer-groups.toml");
const MIRROR_MAKER: &str = include_str!("../../../scenarios/mirror-maker.toml");
const TRANSACTIONS: &str = include_str!("../../../scenarios/transactions.toml");
const EXACTLY_ONCE: &str = include_str!("../../../scenarios/exactly-once.toml");

/// The switches whose rule is the transaction coordinator's, a partition's part in
/// transactions, or a transactional client's: only a workload that runs transactions exercises
/// them.
pub fn transactional(bug: Switch) -> bool {
    matches!(
        bug,
        Switch::LateEndTxn
            | Switch::HangingTxn
            | Switch::NoProducerFencing
            | Switch::ConsumerNoRewindOnAbort
    )
}

/// The unscripted ground of a transactional switch: the exactly-once pipeline for the
/// pipeline's own rule, the transactions scenario for the others.
fn transactional_ground(bug: Switch) -> Result<(&'static str, Scenario), String> {
    if bug == Switch::ConsumerNoRewindOnAbort {
        let path = std::path::Path::new("scenarios/exactly-once.toml");
        let s = Scenario::parse(path, EXACTLY_ONCE).map_err(|e| e.to_string())?;
        return Ok(("exactly-once", s.with_faults("swarm")?));
    }
    Ok(("transactions", transactions_ground(bug)?))
}

/// The transactions scenario under swarm faults; for `hanging-txn`, transaction version 1, which
/// alone leaves the switch reachable (under version 2 a late produce is fenced by the epoch bump
/// whatever the partition does).
fn transactions_ground(bug: Switch) -> Result<Scenario, String> {
    let path = std::path::Path::new("scenarios/transactions.toml");
    let mut s = Scenario::parse(path, TRANSACTIONS).map_err(|e| e.to_string())?;
    s = s.with_faults("swarm")?;
    if bug == Switch::HangingTxn {
        // Version 1 is open to late EndTxns (what version 2 closes): held-back produces only.
        s.cluster.transaction_version = Some(1);
        s.fault_points = vec!["delay-txn-request".to_owned()];
    }
    Ok(s)
}

/// Where a hunt with no scenario of its own looks, in order: the default cluster under swarm
/// faults; a cluster with a dedicated controller under swarm faults, where a follower can miss
/// leader changes; two consumer groups whose members crash and stall, under broker crashes;
/// MirrorMaker between two clusters, restarting; and last the bug's scripted scenario.
pub fn default_grounds(
    default: &Scenario,
    bug: Switch,
) -> Result<Vec<(&'static str, Scenario)>, String> {
    let dedicated = Scenario::parse(
        std::path::Path::new("scenarios/dedicated-controller.toml"),
        DEDICATED_CONTROLLER,
    )
    .map_err(|e| e.to_string())?;
    let groups = Scenario::parse(
        std::path::Path::new("scenarios/consumer-groups.toml"),
        CONSUMER_GROUPS,
    )
    .map_err(|e| e.to_string())?;
    let mirror = Scenario::parse(
        std::path::Path::new("scenarios/mirror-maker.toml"),
        MIRROR_MAKER,
    )
    .map_err(|e| e.to_string())?;
    // The unscripted grounds draw their timing settings as the default ground does.
    let knobs = |mut s: Scenario| {
        s.knobs = default.knobs;
        s
    };
    if transactional(bug) {
        let (name, ground) = transactional_ground(bug)?;
        return Ok(vec![
            (name, knobs(ground)),
            ("scripted", crate::tools::explain::bug_scenario(bug)),
        ]);
    }
    Ok(vec![
        ("swarm", default.clone()),
        ("swarm:dedicated-controller", knobs(dedicated)),
        ("consumer-groups", knobs(groups)),
        ("mirror-maker", knobs(mirror)),
        ("scripted", crate::tools::explain::bug_scenario(bug)),
    ])
}

/// Where a guided hunt with no scenario of its own explores: the unscripted ground on which the
/// switch's rule is exercised, a consumer group for the group coordinator's, MirrorMaker for its
/// own, and for every replication, storage and producer rule the cluster with a dedicated
/// controller under swarm faults.
pub fn guided_ground(bug: Switch) -> Result<(&'static str, Scenario), String> {
    if transactional(bug) {
        return transactional_ground(bug);
    }
    let (name, text) = match bug {
        Switch::GroupStaleCommit => ("consumer-groups", CONSUMER_GROUPS),
        Switch::MirrorSkipOnRestart => ("mirror-maker", MIRROR_MAKER),
        _ => ("dedicated-controller", DEDICATED_CONTROLLER),
    };
    let path = format!("scenarios/{name}.toml");
    let scenario = Scenario::parse(std::path::Path::new(&path), text).map_err(|e| e.to_string())?;
    Ok((name, scenario))
}

/// Hunts over each ground in turn until one finds the bug; the seeds and wall time of the
/// grounds that did not are counted in.
pub fn hunt_grounds(
    grounds: &[(&'static str, Scenario)],
    bug: Switch,
    seeds: Range<u64>,
    jobs: usize,
) -> (Hunt, Option<Scenario>) {
    let (mut seeds_before, mut wall_before, mut sim_before) = (0, 0.0, 0.0);
    let mut last = None;
    for (ground, scenario) in grounds {
        let (mut result, replay) = hunt(scenario, bug, seeds.clone(), jobs);
        result.ground = (*ground).to_owned();
        result.seeds_tried += seeds_before;
        result.wall_seconds += wall_before;
        result.sim_seconds += sim_before;
        if result.found {
            return (result, replay);
        }
        (seeds_before, wall_before, sim_before) =
            (result.seeds_tried, result.wall_seconds, result.sim_seconds);
        last = Some((result, replay));
    }
    last.expect("at least one ground")
}
