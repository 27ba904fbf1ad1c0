//! The tests `just mutants` runs against each mutant of the model (cargo-mutants): a short swarm over
//! the shapes that exercise replication, the quorum and storage, which must pass, acknowledge
//! writes and check them, and reach every coverage mark the correct model reaches in it. A mutant
//! that breaks a rule shows up as a failed check, a panic, a run that acknowledges nothing, or a
//! wedge past cargo-mutants' timeout; a mutant that stops the model from taking a decision it
//! takes (never shrinking an ISR, never truncating to a divergence) shows up as a mark never
//! reached, as a sometimes-property does in a swarm. Beside the swarm it plays every bug switch's
//! scripted scenario with the switch off: each is a schedule written to reach the state a historic
//! bug needs, so a mutant that brings back a bug of the same shape fails there. `cargo test` skips
//! the swarm (it is the mutants' judge, not the suite's) and runs the quick rule tests below it.

mod shipped;

use std::collections::BTreeSet;

use logsim::run::run;
use logsim::scenario::Scenario;
use logsim::tools::explain::bug_scenario;
use shipped::shipped;

/// Every mark the correct model reaches in this swarm and these scripts (47 of the catalogue's 64).
/// A change to the model that moves schedules may move this list; `cargo test --release --test
/// mutants -- --include-ignored` on the unmutated tree says which mark went missing.
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

/// A voter's vote outlives a crash: restarted in the same epoch, it refuses a second candidate
/// and still grants the one it chose (Raft's one vote per term). The swarm reaches a crash between
/// a vote and a rival candidacy too rarely to judge the vote's persistence, so it is judged here.
#[test]
fn a_restarted_voter_keeps_its_vote() {
    use logsim::world::disk::SimDisk;
    use model::raft::Quorum;

    let disk = SimDisk::default();
    let mut quorum = Quorum::load(&disk, 1, vec![1, 2, 3]);
    let granted = quorum.grant_vote(&disk, 5, 2, (4, 10), (4, 10));
    assert!(
        granted.expect("disk works"),
        "a first candidate gets the vote"
    );
    disk.crash();
    let mut restarted = Quorum::load(&disk, 1, vec![1, 2, 3]);
    assert_eq!(restarted.epoch, 5, "the epoch survives the crash");
    let rival = restarted.grant_vote(&disk, 5, 3, (4, 10), (4, 10));
    assert!(!rival.expect("disk works"), "a second vote in epoch 5");
    let again = restarted.grant_vote(&disk, 5, 2, (4, 10), (4, 10));
    assert!(
        again.expect("disk works"),
        "the chosen candidate asks again"
    );
}
