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

mod logs;
mod shipped;

use std::collections::BTreeSet;
use std::sync::Arc;

use logs::{record, sync};
use logsim::run::run;
use logsim::scenario::Scenario;
use logsim::tools::explain::bug_scenario;
use logsim::world::disk::SimDisk;
use model::broker::LogRef;
use model::coverage::Mark;
use model::log::Log;
use model::metadata::{MetadataImage, MetadataRecord, PartitionState};
use shipped::shipped;

/// Every mark the correct model reaches in this swarm and these scripts (50 of the catalogue's 68).
/// A change to the model that moves schedules may move this list; `cargo test --release --test
/// mutants -- --include-ignored` on the unmutated tree says which mark went missing.
const REACHED: [&str; 50] = [
    "alter-partition-refused",
    "alter-partition-unanswered",
    "broker-fenced",
    "commit-during-rebalance",
    "controlled-shutdown",
    "deposed-leader-below-remembered-reports",
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
    "high-watermark-waits-for-first-fetch-in-epoch",
    "high-watermark-waits-for-joining-replica",
    "isr-expands",
    "isr-member-returns-below-old-words",
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
    // Offsets the checkers heard truncated: a model that cuts its log without saying so leaves
    // the truncation checks nothing to judge.
    let mut cut = 0;
    let mut judge = |scenario: &Scenario, seed, what: &str| {
        let counters = passes(scenario, seed, what);
        reached.extend(counters.marks.keys().copied());
        cut += counters.truncated_offsets;
    };
    for (file, faults, seeds) in grounds {
        let scenario = shipped(file, faults);
        let what = format!("{file} ({faults} faults)");
        for seed in seeds {
            judge(&scenario, seed, &what);
        }
    }
    for bug in model::bugs::switches() {
        let buggy = bug_scenario(bug);
        let mut correct = buggy.clone();
        correct.bugs.clear();
        judge(&correct, 1, &format!("{bug}'s scenario, switch off"));
        // A switch is a historic bug logsim must find: a mutant that takes the harm out of the
        // switched rule is a finder that no longer finds, as wrong as a rule that breaks.
        let report = run(&buggy, 1, false).report;
        assert!(!report.pass, "{bug}'s scenario passes with its switch on");
    }
    let missing: Vec<_> = REACHED.iter().filter(|m| !reached.contains(*m)).collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
    assert!(
        cut > 0,
        "truncations cut {cut} offsets, as the checkers heard them"
    );
}

/// The fetch rules as the correct system has them, and the switches that take each away: a
/// follower names its last fetched epoch on every fetch (KIP-320) unless `zombie-follower` or
/// `same-leader-no-truncate` is on, the metadata log always; it reports only what it synced
/// unless `last-replica-standing` or `double-crash-divergence` is on, the metadata log always. The
/// swarm cannot judge them: with every switch off, a follower that checked only at the start of
/// its role would still be fenced by its leader epoch.
#[test]
fn fetch_rules_hold_unless_their_switches_are_on() {
    use model::bugs::Switch;
    use model::fetcher::{checks_every_fetch, counts_unsynced};
    let partition = LogRef::Partition(model::TopicPartition::new("t", 0));
    let config = |bugs: &[Switch]| {
        let mut c = model::config::BrokerConfig::new(1, Default::default(), vec![1]);
        c.bugs = bugs.to_vec();
        c
    };
    for (bugs, every_fetch, unsynced) in [
        (&[][..], true, false),
        (&[Switch::ZombieFollower][..], false, false),
        (&[Switch::SameLeaderNoTruncate][..], false, false),
        (&[Switch::LastReplicaStanding][..], true, true),
        (&[Switch::DoubleCrashDivergence][..], true, true),
    ] {
        let c = config(bugs);
        assert_eq!(checks_every_fetch(&c, &partition), every_fetch, "{bugs:?}");
        assert_eq!(counts_unsynced(&c, &partition), unsynced, "{bugs:?}");
        assert!(checks_every_fetch(&c, &LogRef::Metadata), "{bugs:?}");
        assert!(!counts_unsynced(&c, &LogRef::Metadata), "{bugs:?}");
    }
}

/// Runs `scenario` at `seed`, which must pass and acknowledge writes; what the observer counted.
fn passes(scenario: &Scenario, seed: u64, what: &str) -> logsim::observer::Counters {
    let report = run(scenario, seed, false).report;
    assert!(
        report.pass && report.acked > 0,
        "{what} seed {seed}: {:?}",
        report.violations.iter().take(2).collect::<Vec<_>>()
    );
    report.counters
}

/// A voter's vote outlives a crash: restarted in the same epoch, it refuses a second candidate
/// and still grants the one it chose (Raft's one vote per term). The swarm reaches a crash between
/// a vote and a rival candidacy too rarely to judge the vote's persistence, so it is judged here.
#[test]
fn a_restarted_voter_keeps_its_vote() {
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

/// A voter refuses a candidate of an epoch older than its own, voter or not, though it has no
/// leader and no vote in its epoch (Raft's first rule of RequestVote). The swarm's stale
/// candidates step down on the answer's newer epoch whatever the vote says, so the rule is judged
/// here.
#[test]
fn a_voter_refuses_a_candidate_of_an_older_epoch() {
    let disk = SimDisk::default();
    let mut quorum = model::raft::Quorum::load(&disk, 1, vec![1, 2, 3]);
    quorum.observe(&disk, 5, None).expect("saves");
    let vote = quorum.grant_vote(&disk, 4, 2, (4, 10), (4, 10));
    assert!(
        !vote.expect("disk works"),
        "granted a vote in epoch 4 from epoch 5"
    );
    assert!(quorum
        .grant_vote(&disk, 5, 2, (4, 10), (4, 10))
        .expect("disk works"));
}

/// Hearing of the leader it already follows, or of no leader (-1, as answers say it), changes
/// nothing in a quorum follower, and `observe` says so.
#[test]
fn observing_what_a_follower_knows_changes_nothing() {
    let disk = SimDisk::default();
    let mut quorum = model::raft::Quorum::load(&disk, 1, vec![1, 2, 3]);
    assert!(
        quorum.observe(&disk, 5, Some(2)).expect("saves"),
        "a new leader"
    );
    for leader in [Some(2), Some(-1), None] {
        let changed = quorum.observe(&disk, 5, leader).expect("saves");
        assert!(!changed, "hearing of {leader:?} changed the quorum");
        assert_eq!(quorum.leader(), Some(2));
    }
}

/// A log under `dir` on a fresh simulated disk, holding `records` one-record batches of `epoch`
/// from offset 0, all synced.
fn synced_log(dir: &str, records: u8, epoch: i32) -> (Arc<SimDisk>, Log) {
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = Log::open(disk.clone(), dir, 1 << 20).expect("opens");
    for value in 0..records {
        log.append_as_leader(&record(&value.to_string()), epoch)
            .expect("appends");
    }
    sync(&mut log, &disk);
    (disk, log)
}

/// A voter's metadata log with entries of epoch 1 at offsets 0 to 4, all synced, and a quorum that
/// has just won epoch 3 without writing in it: its epoch starts at the log end, 5.
fn new_quorum_leader() -> (Arc<SimDisk>, Log, model::raft::Quorum) {
    let (disk, mut log) = synced_log("__cluster_metadata-0", 5, 1);
    let mut quorum = model::raft::Quorum::load(disk.as_ref(), 1, vec![1, 2, 3]);
    quorum.observe(disk.as_ref(), 2, None).expect("saves");
    let epoch = quorum.become_candidate(disk.as_ref()).expect("saves");
    assert!(quorum.count_vote(epoch, 2), "two of three elect");
    quorum.become_leader(0);
    log.assign_epoch(epoch);
    (disk, log, quorum)
}

fn hold(quorum: &mut model::raft::Quorum, voter: i32, offset: i64) {
    let model::raft::QuorumRole::Leader { positions, .. } = &mut quorum.role else {
        panic!("not the quorum leader");
    };
    positions.insert(voter, offset);
}

/// Raft's figure-8 rule: a new quorum leader commits nothing by counting replicas of older epochs'
/// entries, even when a majority holds all of them, until an entry of its own epoch is held by a
/// majority; it then commits everything below it at once. Committing by count at the boundary
/// (its epoch's start) can commit entries that a later leader overwrites. Too rare a schedule for
/// the short swarm: a leader must win with older entries that a majority holds but that were not
/// committed, and one more crash must follow.
#[test]
fn a_new_quorum_leader_commits_only_through_its_own_epoch() {
    let (disk, mut log, mut quorum) = new_quorum_leader();
    quorum.high_watermark = 2;
    hold(&mut quorum, 2, 5);
    assert!(
        !quorum.advance_high_watermark(&log),
        "committed older epochs' entries by count"
    );
    assert_eq!(quorum.high_watermark, 2);
    log.append_as_leader(&record("5"), quorum.epoch)
        .expect("appends");
    sync(&mut log, &disk);
    hold(&mut quorum, 2, 6);
    assert!(quorum.advance_high_watermark(&log));
    assert_eq!(
        quorum.high_watermark, 6,
        "its own entry commits what is below it"
    );
}

/// A new quorum leader advertises no high watermark until its own epoch has committed something,
/// even when what it learned as a follower reaches its epoch's start: a restarting voter that took
/// up that value would act on a state the quorum may have moved past (`everything` seed 9757).
#[test]
fn a_new_quorum_leader_advertises_no_high_watermark_before_its_epoch_commits() {
    let (disk, mut log, mut quorum) = new_quorum_leader();
    quorum.high_watermark = 5;
    assert_eq!(quorum.advertised_high_watermark(&log), -1);
    log.append_as_leader(&record("5"), quorum.epoch)
        .expect("appends");
    sync(&mut log, &disk);
    hold(&mut quorum, 3, 6);
    assert!(quorum.advance_high_watermark(&log));
    assert_eq!(quorum.advertised_high_watermark(&log), 6);
}

/// A partition replica on broker 1 whose log holds offsets 0 to 9 of epoch 0, all synced.
fn replica(high_watermark: i64) -> model::partition::Partition {
    let (_, mut log) = synced_log("events-0", 10, 0);
    log.set_high_watermark(high_watermark);
    model::partition::Partition::new(model::TopicPartition::new("events", 0), log)
}

fn state(leader: i32, leader_epoch: i32, replicas: &[i32], isr: &[i32]) -> PartitionState {
    PartitionState {
        topic: "events".into(),
        partition: 0,
        replicas: replicas.to_vec(),
        isr: isr.to_vec(),
        leader,
        leader_epoch,
        partition_epoch: leader_epoch,
    }
}

/// A metadata image that holds `state` alone.
fn image_of(state: &PartitionState) -> MetadataImage {
    let mut image = MetadataImage::default();
    image.apply(0, &MetadataRecord::Partition(state.clone()));
    image
}

/// Which of `marks` the model reached while `f` ran.
fn marks_of(f: impl FnOnce(), marks: &[Mark]) -> Vec<Mark> {
    model::coverage::reset();
    f();
    let counts = model::coverage::counts();
    (marks.iter().copied())
        .filter(|m| counts.iter().any(|(c, n)| c == m && *n > 0))
        .collect()
}

/// Broker 1 leads, hears the followers' `reports`, loses the lead to 2 without restarting, and
/// takes it back with `isr`: the regained-leader marks that fired.
fn regain(reports: &[(i32, i64)], isr: &[i32], high_watermark: i64) -> Vec<Mark> {
    let mut p = replica(high_watermark);
    p.become_leader(&state(1, 0, &[1, 2, 3], &[1, 2, 3]), 0, false);
    for (follower, offset) in reports {
        p.record_follower_fetch(*follower, *offset, 1);
    }
    p.become_follower(&state(2, 1, &[1, 2, 3], &[1, 2, 3]));
    let regained = [
        Mark::LeaderRegainsLeadership,
        Mark::RegainedLeaderRemembersLaggingFollower,
        Mark::RegainedLeaderRemembersReportsAboveHighWatermark,
    ];
    marks_of(
        || p.become_leader(&state(1, 2, &[1, 2, 3], isr), 2, false),
        &regained,
    )
}

/// A mark says what its name says: guided exploration steers toward the runs that reach rare
/// ones (`regained-leader-remembers-reports-above-high-watermark` is how it finds
/// `hw-advance-old-epoch`), so a mark that fires in the wrong state steers it wrong.
#[test]
fn regained_leadership_marks_name_the_state_regained() {
    use Mark::{
        LeaderRegainsLeadership as Regains, RegainedLeaderRemembersLaggingFollower as Lagging,
        RegainedLeaderRemembersReportsAboveHighWatermark as Above,
    };
    let all = [1, 2, 3];
    let expect = |reports: &[(i32, i64)], isr: &[i32], high_watermark: i64, marks: &[Mark]| {
        assert_eq!(
            regain(reports, isr, high_watermark),
            marks,
            "reports {reports:?}, ISR {isr:?}, high watermark {high_watermark}"
        );
    };
    expect(&[(2, 10), (3, 7)], &all, 5, &[Regains, Lagging, Above]);
    expect(&[(2, 10), (3, 10)], &all, 10, &[Regains]);
    expect(&[(2, 10), (3, 10)], &all, 7, &[Regains, Above]);
    // 3 said nothing: nothing can move on the old words alone.
    expect(&[(2, 10)], &all, 0, &[Regains]);
    expect(&[(2, 10), (3, 10)], &[1], 0, &[Regains]);
}

/// A replica's first leadership, and a leader re-elected in place, regain nothing: no regain
/// mark, and no old words for a returning follower to fall below.
#[test]
fn a_first_or_in_place_leadership_is_no_regain() {
    let marks = [
        Mark::FollowerBecomesLeader,
        Mark::LeaderRegainsLeadership,
        Mark::LeaderReelectedInPlace,
        Mark::IsrMemberReturnsBelowOldWords,
    ];
    let all = [1, 2, 3];
    let mut p = replica(0);
    let first = marks_of(
        || p.become_leader(&state(1, 0, &all, &all), 0, false),
        &marks,
    );
    assert_eq!(first, [Mark::FollowerBecomesLeader]);
    p.record_follower_fetch(2, 10, 1);
    p.record_follower_fetch(3, 10, 1);
    let again = marks_of(
        || p.become_leader(&state(1, 1, &all, &all), 2, false),
        &marks,
    );
    assert_eq!(again, [Mark::LeaderReelectedInPlace]);
    let back = marks_of(|| p.record_follower_fetch(2, 3, 3), &marks);
    assert_eq!(back, [], "an in-place re-election kept no old words");
}

/// `deposed-leader-below-remembered-reports` fires for a replica that led, lost the lead without
/// restarting and follows with a high watermark below the report to it of every ISR member but
/// the leader now: not while it leads, not when such a member's report is at or under its high
/// watermark or was never heard, not when no such member is left.
#[test]
fn the_deposed_leader_mark_fires_below_every_remembered_report() {
    let mark = [Mark::DeposedLeaderBelowRememberedReports];
    let deposed = |reports: &[(i32, i64)], isr: &[i32], high_watermark: i64, leads: bool| {
        let mut p = replica(high_watermark);
        p.become_leader(&state(1, 0, &[1, 2, 3], &[1, 2, 3]), 0, false);
        for (follower, offset) in reports {
            p.record_follower_fetch(*follower, *offset, 1);
        }
        if !leads {
            p.become_follower(&state(2, 1, &[1, 2, 3], &[1, 2, 3]));
        }
        let image = image_of(&state(2, 1, &[1, 2, 3], isr));
        !marks_of(|| p.mark_deposed_leader_high_watermark(&image, 1), &mark).is_empty()
    };
    let all = [1, 2, 3];
    assert!(deposed(&[(2, 10), (3, 8)], &all, 5, false));
    assert!(!deposed(&[(2, 10), (3, 8)], &all, 5, true), "it leads");
    assert!(!deposed(&[(2, 10), (3, 5)], &all, 5, false), "3 said 5");
    assert!(!deposed(&[(2, 10)], &all, 5, false), "3 said nothing");
    // 2 leads now: an election that deposes it leaves it out.
    assert!(deposed(&[(2, 3), (3, 8)], &all, 5, false));
    assert!(
        !deposed(&[(2, 10), (3, 8)], &[1, 2], 5, false),
        "none but 2"
    );
    // Its own synced end (10) bounds what the old words could commit.
    assert!(!deposed(&[(2, 12), (3, 12)], &all, 10, false));
    // A replica that never led is no nearer nor farther: exploration weighs deposed leaders only.
    let mut never_led = replica(5);
    never_led.become_follower(&state(2, 1, &[1, 2, 3], &[1, 2, 3]));
    model::coverage::reset();
    never_led.mark_deposed_leader_high_watermark(&image_of(&state(2, 1, &[1, 2, 3], &all)), 1);
    assert_eq!(model::coverage::nearest(), []);
}

/// `isr-member-returns-below-old-words` fires at the first fetch, in a regained leadership, of a
/// replica that was in the ISR it regained with, when it starts below what the old reports would
/// have lifted the high watermark to; only at its first fetch, not for one outside that ISR, not
/// in a first leadership, and not when the old words would have lifted nothing.
#[test]
fn the_return_mark_fires_at_a_first_fetch_below_the_old_words() {
    let mark = [Mark::IsrMemberReturnsBelowOldWords];
    // Broker 1 leads, hears 2, 3 and 4 at 10, 8 and 9, and regains the lead with 2 and 3 at
    // `high_watermark`: their words would take it to 8.
    let regained = |high_watermark| {
        let mut p = replica(high_watermark);
        p.become_leader(&state(1, 0, &[1, 2, 3, 4], &[1, 2, 3, 4]), 0, false);
        let first = marks_of(|| p.record_follower_fetch(2, 3, 1), &mark);
        assert_eq!(first, [], "a first leadership has no old words");
        for (follower, offset) in [(2, 10), (3, 8), (4, 9)] {
            p.record_follower_fetch(follower, offset, 1);
        }
        p.become_follower(&state(2, 1, &[1, 2, 3, 4], &[1, 2, 3, 4]));
        p.become_leader(&state(1, 2, &[1, 2, 3, 4], &[1, 2, 3]), 2, false);
        p
    };
    let mut p = regained(0);
    let mut fetch =
        |follower, offset| marks_of(|| p.record_follower_fetch(follower, offset, 3), &mark);
    assert_eq!(fetch(3, 8), [], "3 holds 8");
    assert_eq!(fetch(2, 7), mark, "2 holds 7 of the 8");
    assert_eq!(fetch(2, 6), [], "not 2's first fetch in epoch 2");
    assert_eq!(fetch(4, 2), [], "4 was not in the ISR regained");
    let mut p = regained(8);
    let lifted_nothing = marks_of(|| p.record_follower_fetch(2, 7, 3), &mark);
    assert_eq!(lifted_nothing, [], "the high watermark was 8 already");
}

/// `high-watermark-waits-for-joining-replica` fires when a replica being added to the ISR is what
/// holds the high watermark back, and not for a lagging member of the ISR itself.
#[test]
fn the_joining_replica_mark_fires_only_for_a_joining_replica() {
    let waits = |reports: [(i32, i64); 3]| {
        let mut p = replica(0);
        p.become_leader(&state(1, 0, &[1, 2, 3, 4], &[1, 2, 3]), 0, false);
        if let model::partition::Role::Leader(l) = &mut p.role {
            l.pending_isr = Some(vec![1, 2, 3, 4]);
        }
        for (follower, offset) in reports {
            p.record_follower_fetch(follower, offset, 1);
        }
        let mark = [Mark::HighWatermarkWaitsForJoiningReplica];
        let advance = || {
            p.maybe_advance_high_watermark(1, false);
        };
        !marks_of(advance, &mark).is_empty()
    };
    assert!(waits([(2, 10), (3, 10), (4, 6)]), "4 joins at 6");
    assert!(!waits([(2, 10), (3, 10), (4, 10)]), "4 joins caught up");
    assert!(!waits([(2, 10), (3, 6), (4, 10)]), "3 is in the ISR");
}

/// `high-watermark-waits-for-first-fetch-in-epoch` fires while an ISR member has not fetched in
/// the leader's epoch, whatever it reported in an earlier one, and stops once it has.
#[test]
fn the_first_fetch_mark_fires_until_every_isr_member_fetched() {
    let mark = [Mark::HighWatermarkWaitsForFirstFetchInEpoch];
    let mut p = replica(0);
    p.become_leader(&state(1, 0, &[1, 2, 3], &[1, 2, 3]), 0, false);
    p.record_follower_fetch(2, 10, 1);
    p.record_follower_fetch(3, 10, 1);
    p.become_follower(&state(2, 1, &[1, 2, 3], &[1, 2, 3]));
    p.become_leader(&state(1, 2, &[1, 2, 3], &[1, 2, 3]), 2, false);
    p.record_follower_fetch(2, 10, 3);
    let weigh = |p: &mut model::partition::Partition| {
        marks_of(
            || {
                p.maybe_advance_high_watermark(1, false);
            },
            &mark,
        )
    };
    assert_eq!(weigh(&mut p), mark, "3 has not fetched in epoch 2");
    p.record_follower_fetch(3, 10, 4);
    assert_eq!(weigh(&mut p), [], "every ISR member fetched");
}

/// The truncation marks name what a divergence answer did to a follower's log against its high
/// watermark: cut below it, cut down to it or above it, kept records above it that the rule
/// before leader epochs would have cut, or cut the metadata log.
#[test]
fn truncation_marks_name_what_a_divergence_answer_cut() {
    use Mark::{
        EpochRuleKeepsRecordsAboveHighWatermark as Kept,
        FollowerTruncatesBelowOwnHighWatermark as Below,
        FollowerTruncatesToDivergence as ToDivergence, MetadataLogTruncated as Metadata,
    };
    let partition = LogRef::Partition(model::TopicPartition::new("events", 0));
    let cut = |which: &LogRef, high_watermark, from, to| {
        marks_of(
            || model::fetcher::mark_truncation(which, high_watermark, from, to),
            &[Kept, Below, ToDivergence, Metadata],
        )
    };
    assert_eq!(cut(&partition, 5, 10, 7), [Kept, ToDivergence]);
    assert_eq!(cut(&partition, 5, 10, 5), [ToDivergence], "down to it");
    assert_eq!(cut(&partition, 5, 10, 3), [Below]);
    assert_eq!(cut(&partition, 5, 10, 10), [Kept], "nothing to cut");
    assert_eq!(cut(&partition, 10, 10, 10), []);
    assert_eq!(cut(&LogRef::Metadata, 7, 10, 7), [Metadata]);
}

/// `quorum-leader-withholds-high-watermark` fires when a new quorum leader answers a voter whose
/// log is past the high watermark it learned as a follower, and withholds it; not for a voter
/// short of it, not when it learned none, and not once its epoch has committed.
#[test]
fn the_withholding_mark_fires_only_for_a_voter_past_what_is_withheld() {
    let mark = [Mark::QuorumLeaderWithholdsHighWatermark];
    let (disk, mut log, mut quorum) = new_quorum_leader();
    let answer = |quorum: &model::raft::Quorum, log: &Log, fetch_offset| {
        let mut told = 0;
        let marks = marks_of(
            || told = quorum.high_watermark_for(log, fetch_offset),
            &mark,
        );
        (told, marks)
    };
    quorum.high_watermark = 2;
    assert_eq!(answer(&quorum, &log, 5), (-1, mark.to_vec()));
    assert_eq!(
        answer(&quorum, &log, 2),
        (-1, vec![]),
        "the voter is not past it"
    );
    quorum.high_watermark = 0;
    assert_eq!(answer(&quorum, &log, 5), (-1, vec![]), "none learned");
    log.append_as_leader(&record("5"), quorum.epoch)
        .expect("appends");
    sync(&mut log, &disk);
    hold(&mut quorum, 3, 6);
    assert!(quorum.advance_high_watermark(&log));
    assert_eq!(answer(&quorum, &log, 7), (6, vec![]), "its epoch committed");
}

/// An epoch a leader took up at its log's end, without writing in it yet, survives a crash: no
/// batch can tell the restarted log of it, so the epoch checkpoint does. Without it, a leader
/// restarted in that epoch would answer "where does your epoch end" for an epoch it no longer
/// knows. And once a truncation drops that epoch (a divergence answer at its start), a crash
/// does not bring it back.
#[test]
fn the_epoch_checkpoint_keeps_an_unwritten_epoch_until_it_is_truncated() {
    let reopen = |disk: &Arc<SimDisk>| {
        disk.crash();
        Log::open(disk.clone(), "events-0", 1 << 20)
            .expect("reopens")
            .0
    };
    let (disk, mut log) = synced_log("events-0", 5, 1);
    log.assign_epoch(3);
    drop(log);
    let mut restarted = reopen(&disk);
    assert_eq!(restarted.epochs().entries(), &[(1, 0), (3, 5)]);
    assert_eq!(restarted.epochs().start_offset_of(3), Some(5));
    restarted.truncate_to(5).expect("truncates");
    assert_eq!(restarted.epochs().entries(), &[(1, 0)]);
    drop(restarted);
    assert_eq!(
        reopen(&disk).epochs().entries(),
        &[(1, 0)],
        "epoch 3 came back"
    );
}

/// A follower that keeps fetching at the leader's log end stays in the ISR however long it does:
/// it is caught up at every fetch. Were it counted caught up only while behind, the ISR would
/// shrink under it after the lag time and grow back at its next fetch, a flapping ISR that no
/// safety check sees.
#[test]
fn a_follower_fetching_at_the_log_end_stays_in_the_isr() {
    let lag_max_ms = 30_000;
    let mut p = replica(10);
    p.become_leader(&state(1, 0, &[1, 2, 3], &[1, 2, 3]), 0, false);
    for now in (1_000..=2 * lag_max_ms).step_by(1_000) {
        p.record_follower_fetch(2, 10, now);
        p.record_follower_fetch(3, 10, now);
    }
    assert_eq!(p.wanted_isr(1, 2 * lag_max_ms, lag_max_ms, |_| true), None);
    p.record_follower_fetch(3, 7, 2 * lag_max_ms + 1);
    p.record_follower_fetch(2, 10, 3 * lag_max_ms);
    assert_eq!(
        p.wanted_isr(1, 3 * lag_max_ms + 1, lag_max_ms, |_| true),
        Some(vec![1, 2]),
        "3 fell behind and stayed behind past the lag time"
    );
}

/// Every follower role a replica takes up starts a fetch loop of a new generation, so that a loop
/// started for an earlier role sees it is stale and stops, even when leader and epoch come back
/// the same (a follower fenced and unfenced in place).
#[test]
fn each_follower_role_starts_a_new_fetch_generation() {
    let mut p = replica(10);
    let mut seen = vec![p.fetcher_generation];
    for (leader, epoch) in [(2, 1), (2, 1), (3, 2)] {
        p.become_follower(&state(leader, epoch, &[1, 2, 3], &[1, 2, 3]));
        assert!(
            !seen.contains(&p.fetcher_generation),
            "generation {} again, after {seen:?}",
            p.fetcher_generation
        );
        seen.push(p.fetcher_generation);
    }
}
