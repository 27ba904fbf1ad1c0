//! Each bug's scripted scenario (`scenarios/bugs/`) fails with its switch on and passes with it
//! off, on more than one seed; and `explain` tells the story and names the check that caught it.

use logsim::run::run;
use logsim::tools::explain::{bug_scenario, explain};

#[test]
fn every_scripted_scenario_fails_with_its_switch_and_passes_without() {
    for bug in model::bugs::switches() {
        let scenario = bug_scenario(bug);
        let mut correct = scenario.clone();
        correct.bugs.clear();
        for seed in [1, 2] {
            let with_bug = run(&scenario, seed, false).report;
            assert!(
                !with_bug.pass,
                "{bug}: seed {seed} passes with the switch on"
            );
            let without = run(&correct, seed, false).report;
            assert!(
                without.pass,
                "{bug}: seed {seed} fails with the switch off: {:?}",
                without.violations.first()
            );
            assert!(without.acked > 0, "{bug}: seed {seed} acknowledged nothing");
        }
    }
}

/// The idempotence switches break what an idempotent producer promises: each record written once,
/// in the order it was sent. Other checks may fire too; this one must.
#[test]
fn the_idempotence_switches_are_caught_by_the_producer_promises() {
    use model::bugs::Switch;
    for (bug, check) in [
        (Switch::DedupWindowOfOne, "duplicate"),
        (Switch::ProducerStateNotRebuilt, "duplicate"),
        (Switch::EpochBumpWithBatchesInFlight, "duplicate"),
    ] {
        let report = run(&bug_scenario(bug), 1, false).report;
        assert!(
            report.violations.iter().any(|v| v.check.name() == check),
            "{bug}: no `{check}` among {:?}",
            report
                .violations
                .iter()
                .map(|v| v.check.name())
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_files_on_disk_are_the_ones_explain_plays() {
    for bug in model::bugs::switches() {
        let path = format!("{}/scenarios/bugs/{bug}.toml", env!("CARGO_MANIFEST_DIR"));
        let on_disk = logsim::scenario::Scenario::load(std::path::Path::new(&path))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(on_disk.bugs, vec![bug], "{path} switches on its bug");
    }
}

#[test]
fn explain_narrates_the_catch_and_the_fix() {
    let bug = model::bugs::Switch::ZombieFollower.bug();
    let e = explain(bug, 1).expect("explains");
    assert!(e.caught && e.correct_passes);
    for needle in [
        "KIP-320",
        "leads events-0 in epoch 2",
        "VIOLATION committed-data-identical",
        "switch off, same scenario and seed: PASS",
    ] {
        assert!(e.text.contains(needle), "no `{needle}` in:\n{}", e.text);
    }
}
