//! The workload profiles for Kafka's own use cases (scenarios/activity-tracking.toml,
//! messaging.toml, metrics-logs.toml) do what they are for, not only pass: keyed records, consumer
//! restarts that make re-reads, acks=1 losses that are measured, and none under acks=all.

use std::path::Path;

use logsim::run::{run, RunReport};
use logsim::scenario::{Acks, Scenario};
use logsim::tools::swarm::run_seeds;

const SEEDS: [u64; 6] = [1, 2, 3, 4, 5, 6];

fn profile(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml"));
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn reports(scenario: &Scenario) -> Vec<RunReport> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = SEEDS
            .iter()
            .map(|seed| scope.spawn(move || run(scenario, *seed, false).report))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a run"))
            .collect()
    })
}

fn assert_clean(name: &str, reports: &[RunReport]) {
    for r in reports {
        assert!(
            r.pass && r.acked > 0,
            "{name} seed {}: {:?}",
            r.seed,
            r.violations.first()
        );
    }
}

#[test]
fn activity_tracking_sends_keyed_records_and_reads_them_in_key_order() {
    let scenario = profile("activity-tracking");
    assert!(scenario.workload.keys > 0 && scenario.workload.consumers > 1);
    let runs = reports(&scenario);
    assert_clean("activity-tracking", &runs);
    for r in &runs {
        // Several consumers each read what was acknowledged, at least.
        assert!(r.consumed >= r.acked * 2, "seed {}: {r:?}", r.seed);
    }
    // The keys reach the wire: a run's history carries them.
    let out = run(&scenario, 1, false);
    assert!(out.history.iter().any(|op| op.record_key.is_some()));
}

#[test]
fn messaging_consumers_restart_from_their_commits_and_their_rereads_are_counted() {
    let runs = reports(&profile("messaging"));
    assert_clean("messaging", &runs);
    assert!(runs.iter().all(|r| r.consumer_restarts > 0));
    assert!(
        runs.iter().map(|r| r.rereads).sum::<u64>() > 0,
        "restarts from a commit must read something again"
    );
}

#[test]
fn metrics_logs_measures_acks_1_losses_and_loses_nothing_with_acks_all() {
    let weak = profile("metrics-logs");
    assert_eq!(weak.workload.acks, Acks::Leader);
    let results = run_seeds(&weak, &SEEDS, 2, &|_| {});
    assert!(results.iter().all(|r| r.pass), "{results:?}");
    let lost: u64 = results.iter().map(|r| r.lost_acks1).sum();
    assert!(
        lost > 0,
        "leader crashes under acks=1 should lose some acknowledged writes"
    );

    let mut strong = weak.clone();
    strong.workload.acks = Acks::All;
    let runs = reports(&strong);
    assert_clean("metrics-logs with acks=all", &runs);
    assert!(runs.iter().all(|r| r.lost_acks1 == 0));
}
