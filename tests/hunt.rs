//! Each bug switch is found by `hunt` within a fixed seed budget, and the seeds it ran pass with no
//! switch on: what catches it is the bug, not the faults.

use std::path::Path;

use logsim::hunt::hunt;
use logsim::run::run;
use logsim::scenario::Scenario;

const BUDGET: u64 = 100;

fn swarm() -> Scenario {
    Scenario::parse(Path::new("hunt.toml"), "[faults]\nswarm = true\n").expect("valid")
}

#[test]
fn every_bug_switch_is_found_and_the_same_seeds_pass_without_it() {
    let scenario = swarm();
    for bug in model::bugs::names() {
        let (result, replay) = hunt(&scenario, bug, 0..BUDGET, 2);
        assert!(result.found, "{bug} not found in {BUDGET} seeds");
        let seed = result.seed.expect("a seed");
        assert!(result.caught_by.is_some());
        let replayed = run(&replay.expect("a replay scenario"), seed, false).report;
        assert!(
            !replayed.pass,
            "{bug}: the replay scenario does not fail with seed {seed}"
        );
        for s in 0..=seed {
            let report = run(&scenario, s, false).report;
            assert!(
                report.pass,
                "seed {s} fails with no bug on: {:?}",
                report.violations.first()
            );
        }
    }
}
