//! The test `just mutants` runs against each mutant of the model (cargo-mutants): a short swarm over
//! the shapes that exercise replication, the quorum and storage, which must pass, acknowledge
//! writes and check them, and reach every coverage mark the correct model reaches in it. A mutant
//! that breaks a rule shows up as a failed check, a panic, a run that acknowledges nothing, or a
//! wedge past cargo-mutants' timeout; a mutant that stops the model from taking a decision it
//! takes (never shrinking an ISR, never truncating to a divergence) shows up as a mark never
//! reached, as a sometimes-property does in a swarm. Ignored by `cargo test`: it is the mutants'
//! test, not the suite's.

mod shipped;

use std::collections::BTreeSet;

use logsim::run::run;
use shipped::shipped;

/// Every mark the correct model reaches in this swarm (38 of the catalogue's 64). A change to the
/// model that moves schedules may move this list; `cargo test --release --test mutants --
/// --ignored` on the unmutated tree says which mark went missing.
const REACHED: [&str; 38] = [
    "follower-truncates-to-divergence",
    "epoch-rule-keeps-records-above-high-watermark",
    "leader-answers-diverging-epoch",
    "fenced-leader-epoch",
    "unknown-leader-epoch",
    "leader-advances-high-watermark",
    "high-watermark-waits-for-joining-replica",
    "isr-shrinks",
    "isr-expands",
    "alter-partition-unanswered",
    "alter-partition-refused",
    "not-enough-replicas",
    "produce-timed-out",
    "not-enough-replicas-after-append",
    "leader-append-fails",
    "follower-becomes-leader",
    "leader-regains-leadership",
    "regained-leader-remembers-lagging-follower",
    "leader-becomes-follower",
    "duplicate-batch-answered",
    "out-of-order-sequence",
    "producer-lost-sequence",
    "producer-epoch-bumped",
    "producer-retries",
    "broker-fenced",
    "offline-partition-elected",
    "last-isr-member-kept",
    "partition-left-offline",
    "controlled-shutdown",
    "vote-refused-stale-log",
    "vote-refused-already-voted",
    "vote-granted",
    "quorum-leader-resigns",
    "metadata-log-truncated",
    "quorum-leader-withholds-high-watermark",
    "recovery-drops-damaged-tail",
    "metadata-append-fails",
    "follower-append-fails",
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
        for seed in seeds {
            let report = run(&scenario, seed, false).report;
            assert!(
                report.pass && report.acked > 0,
                "{file} ({faults} faults) seed {seed}: {:?}",
                report.violations.iter().take(2).collect::<Vec<_>>()
            );
            reached.extend(report.counters.marks.keys().copied());
        }
    }
    let missing: Vec<_> = REACHED.iter().filter(|m| !reached.contains(*m)).collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
}
