//! Each bug switch is found by `hunt` within a fixed seed budget, and the seeds it ran pass with no
//! switch on: what catches it is the bug, not the faults.
//!
//! Each switch is hunted on the first of `hunt`'s default grounds that finds it (the test names
//! it, to stay quick): ten in the default cluster under swarm faults; two need a follower to
//! miss leader changes, which a cluster with a dedicated controller under swarm faults gives; one
//! needs leadership to leave and come back while a follower lags, and is hunted over its scripted
//! scenario.

use std::path::Path;

use logsim::run::run;
use logsim::scenario::Scenario;
use logsim::tools::hunt::{default_grounds, hunt};
use model::bugs;

const BUDGET: u64 = 60;

fn ground(bug: bugs::Switch) -> &'static str {
    use bugs::Switch;
    match bug {
        Switch::ZombieFollower | Switch::SameLeaderNoTruncate => "swarm:dedicated-controller",
        Switch::HwAdvanceOldEpoch => "scripted",
        Switch::GroupStaleCommit => "consumer-groups",
        Switch::MirrorSkipOnRestart => "mirror-maker",
        Switch::LateEndTxn | Switch::HangingTxn | Switch::NoProducerFencing => "transactions",
        Switch::ConsumerNoRewindOnAbort => "exactly-once",
        _ => "swarm",
    }
}

#[test]
fn every_bug_switch_is_found_and_the_same_seeds_pass_without_it() {
    let default =
        Scenario::parse(Path::new("hunt.toml"), "[faults]\nswarm = true\n").expect("valid");
    for bug in bugs::switches() {
        let grounds = default_grounds(&default, bug).expect("grounds");
        let (_, scenario) = grounds
            .iter()
            .find(|(name, _)| *name == ground(bug))
            .expect("a known ground");
        let mut correct = scenario.clone();
        correct.bugs.clear();
        let (result, replay) = hunt(&correct, bug, 0..BUDGET, 2);
        assert!(result.found, "{bug} not found in {BUDGET} seeds");
        let seed = result.seed.expect("a seed");
        assert!(result.caught_by.is_some());
        let replayed = run(&replay.expect("a replay scenario"), seed, false).report;
        assert!(
            !replayed.pass,
            "{bug}: the replay scenario does not fail with seed {seed}"
        );
        for s in 0..=seed {
            let report = run(&correct, s, false).report;
            assert!(
                report.pass,
                "{bug}: seed {s} fails with no bug on: {:?}",
                report.violations.first()
            );
        }
    }
}
