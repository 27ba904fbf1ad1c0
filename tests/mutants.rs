//! The test `just mutants` runs against each mutant of the model (cargo-mutants): a short swarm over
//! the shapes that exercise replication, the quorum and storage, which must pass, acknowledge
//! writes and check them. A mutant that breaks a rule shows up as a failed check, a panic, a run
//! that acknowledges nothing, or a wedge past cargo-mutants' timeout. Ignored by `cargo test`: it
//! is the mutants' test, not the suite's.

mod shipped;

use logsim::run::run;
use shipped::shipped;

#[test]
#[ignore]
fn a_short_swarm_passes_and_checks_what_it_acknowledged() {
    let grounds = [
        ("default.toml", "swarm", 0..6),
        ("everything.toml", "scenario", 0..6),
        ("dedicated-controller.toml", "swarm", 0..4),
        ("leader-crash.toml", "scenario", 1..2),
        ("disk-loss.toml", "scenario", 1..2),
    ];
    for (file, faults, seeds) in grounds {
        let scenario = shipped(file, faults);
        for seed in seeds {
            let report = run(&scenario, seed, false).report;
            assert!(
                report.pass && report.acked > 0,
                "{file} ({faults} faults) seed {seed}: {:?}",
                report.violations.iter().take(2).collect::<Vec<_>>()
            );
        }
    }
}
