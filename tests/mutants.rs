//! The test `just mutants` runs against each mutant of the model (cargo-mutants): a short swarm over
//! the shapes that exercise replication, the quorum and storage, which must pass, acknowledge
//! writes and check them, and reach every coverage mark the correct model reaches in it. A mutant
//! that breaks a rule shows up as a failed check, a panic, a run that acknowledges nothing, or a
//! wedge past cargo-mutants' timeout; a mutant that stops the model from taking a decision it
//! takes (never shrinking an ISR, never truncating to a divergence) shows up as a mark never
//! reached, as a sometimes-property does in a swarm. Beside the swarm it plays every bug switch's
//! scripted scenario with the switch off: each is a schedule written to reach the state a historic
//! bug needs, so a mutant that brings back a bug of the same shape fails there. Ignored by `cargo
//! test`: it is the mutants' test, not the suite's.

mod shipped;

use std::collections::BTreeSet;

use logsim::run::run;
use logsim::scenario::Scenario;
use logsim::tools::explain::bug_scenario;
use shipped::shipped;

/// Every mark the correct model reaches in this swarm and these scripts (47 of the catalogue's 64).
/// A change to the model that moves schedules may move this list; `cargo test --release --test
/// mutants -- --ignored` on the unmutated tree says which mark went missing.
const REACHED: [&str; 47] = [
    "alter-partition-refused",
    "alter-partition-unanswered",
    "broker-fenced",
    "commit-during-rebalance",
    "controlled-shutdown",
    "duplicate-batch-answered",
    "epoch-rule-keeps-records-above-high-watermark",
    "fault-point-delay-end-txn",
    "fault-point-delay-txn-request",
    "fenced-leader-epoch",
    "follower-append-fails",
    "follower-becomes-leader",
    "follower-truncates-to-divergence",
    "group-member-expired",
    "group-rebalances",
    "high-watermark-waits-for-joining-replica",
    "isr-expands",
    "isr-shrinks",
    "last-isr-member-kept",
    "leader-advances-high-watermark",
    "leader-answers-diverging-epoch",
    "leader-append-fails",
    "leader-becomes-follower",
    "leader-regains-leadership",
    "metadata-append-fails",
    "metadata-log-truncated",
    "not-enough-replicas",
    "not-enough-replicas-after-append",
    "offline-partition-elected",
    "out-of-order-sequence",
    "partition-left-offline",
    "produce-timed-out",
    "producer-epoch-bumped",
    "producer-epoch-fenced",
    "producer-lost-sequence",
    "producer-retries",
    "quorum-leader-resigns",
    "quorum-leader-withholds-high-watermark",
    "recovery-drops-damaged-tail",
    "regained-leader-remembers-lagging-follower",
    "regained-leader-remembers-reports-above-high-watermark",
    "txn-aborted-by-new-producer",
    "txn-producer-fenced",
    "unknown-leader-epoch",
    "vote-granted",
    "vote-refused-already-voted",
    "vote-refused-stale-log",
];

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
    let mut reached = BTreeSet::new();
    for (file, faults, seeds) in grounds {
        let scenario = shipped(file, faults);
        let what = format!("{file} ({faults} faults)");
        for seed in seeds {
            reached.extend(passes(&scenario, seed, &what));
        }
    }
    for bug in model::bugs::switches() {
        let mut correct = bug_scenario(bug);
        correct.bugs.clear();
        let what = format!("{bug}'s scenario, switch off");
        reached.extend(passes(&correct, 1, &what));
    }
    let missing: Vec<_> = REACHED.iter().filter(|m| !reached.contains(*m)).collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
}

/// Runs `scenario` at `seed`, which must pass and acknowledge writes; the marks it reached.
fn passes(scenario: &Scenario, seed: u64, what: &str) -> Vec<&'static str> {
    let report = run(scenario, seed, false).report;
    assert!(
        report.pass && report.acked > 0,
        "{what} seed {seed}: {:?}",
        report.violations.iter().take(2).collect::<Vec<_>>()
    );
    report.counters.marks.keys().copied().collect()
}
