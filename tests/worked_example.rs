//! A simulation test of one's own, written the way a user of the `logsim` crate writes it: a
//! cluster built in Rust, the leader of a partition crashed at a set time, an invariant of the
//! test's own judged at every step, a hook that plants what the invariant must catch, typed trace
//! events to assert on, and the elections told in words and snapshotted with insta.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use logsim::checkers::{End, Heard, Invariant, Oracle, Step, Violation};
use logsim::record::trace::Traced;
use logsim::scenario::{Dur, Fault, Scenario, Target};
use logsim::sim::Sim;
use logsim::tools::narrate::{told, Filter};
use model::env::Event;
use model::{BrokerId, TopicPartition};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// The default cluster (three brokers, `events` with three partitions replicated three ways),
/// without its random crashes, for a short run.
fn scenario() -> Scenario {
    let mut s = Scenario::default();
    s.faults.profile = None;
    s.run.duration = Dur(secs(20));
    s.run.quiet_period = Dur(secs(10));
    s
}

fn events_0() -> TopicPartition {
    TopicPartition::new("events", 0)
}

/// The test's own invariant: no leader epoch of a partition is taken up by two brokers. It hears
/// every election as it happens (`observe`) and judges at the next step (`check`).
#[derive(Default)]
struct OneBrokerPerEpoch {
    /// (partition, leader epoch) -> the brokers that took it up.
    leaders: BTreeMap<(String, i32), BTreeSet<BrokerId>>,
    /// Epochs already reported, so each is reported once.
    reported: BTreeSet<(String, i32)>,
}

impl Invariant for OneBrokerPerEpoch {
    fn name(&self) -> &'static str {
        "one-broker-per-epoch"
    }

    fn observe(&mut self, heard: &Heard<'_>) -> Option<Vec<Violation>> {
        if let Event::BecameLeader {
            partition,
            leader_epoch,
            ..
        } = heard.event
        {
            let key = (partition.to_string(), *leader_epoch);
            self.leaders.entry(key).or_default().insert(heard.node);
        }
        None // judged at the next step, not here
    }

    fn check(&mut self, step: &Step<'_>) -> Option<Vec<Violation>> {
        let mut found = Vec::new();
        for ((partition, epoch), brokers) in &self.leaders {
            if brokers.len() > 1 && self.reported.insert((partition.clone(), *epoch)) {
                let message = format!("epoch {epoch} was taken up by brokers {brokers:?}");
                found.push(Violation::new(self.name(), step.time_ms, message).partition(partition));
            }
        }
        Some(found)
    }
}

/// Crashing the leader of events-0 at 8 s hands its leadership to another broker in a newer
/// epoch; the crashed broker comes back at 12 s and follows. Nothing is lost, and the test's own
/// invariant holds at every step.
#[test]
fn the_leader_crashes_and_another_broker_takes_over() {
    let crash = Fault::Crash(Target::Leader(Some(events_0())))
        .at(secs(8))
        .lasting(secs(4));
    let out = Sim::new(scenario())
        .seed(3)
        .fault(crash)
        .invariant(OneBrokerPerEpoch::default())
        .run()
        .expect("a valid scenario");
    assert!(out.report.pass, "{:?}", out.report.violations);
    assert!(out.report.acked > 0);
    assert!(out.report.counters.invariants["one-broker-per-epoch"] > 0);

    // Typed events: who took up events-0, in which epoch, in order.
    let leaders: Vec<(BrokerId, i32)> = out
        .events()
        .iter()
        .filter_map(|line| match &line.event {
            Traced::Model(Event::BecameLeader {
                partition,
                leader_epoch,
                ..
            }) if *partition == events_0() => Some((line.node, *leader_epoch)),
            _ => None,
        })
        .collect();
    assert!(leaders.len() >= 2, "{leaders:?}");
    assert_ne!(leaders[0].0, leaders[1].0, "another broker took over");
    assert!(leaders[1].1 > leaders[0].1, "in a newer epoch");

    // The same story in words, as `logsim trace --kind elections --partition events-0` tells it.
    let filter = Filter {
        partition: Some("events-0".into()),
        ..Filter::elections()
    };
    let story: Vec<String> = told(&out.trace, &filter)
        .iter()
        .map(ToString::to_string)
        .collect();
    insta::assert_snapshot!("leader-crash-in-rust", story.join("\n"));
}

/// The test's invariant must be able to fail: a hook, which keeps the broker it picked and counts
/// its calls, makes a follower of events-0 announce that it leads the leader's epoch too.
#[test]
fn the_invariant_catches_a_second_leader_planted_by_a_hook() {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let victim = 0; // the first follower found
    let out = Sim::new(scenario())
        .seed(3)
        .keep_trace(false)
        .invariant(OneBrokerPerEpoch::default())
        .hook(secs(10), move |cluster| {
            counted.fetch_add(1, Ordering::Relaxed);
            let followers: Vec<_> = cluster
                .live()
                .into_iter()
                .filter(|(_, b)| {
                    b.inspect(|s| {
                        s.partitions
                            .get(&events_0())
                            .is_some_and(|p| !p.is_leader())
                    })
                })
                .collect();
            let (_, follower) = &followers[victim];
            let epoch = follower.inspect(|s| s.partitions[&events_0()].leader_epoch);
            follower.emit(Event::BecameLeader {
                partition: events_0(),
                leader_epoch: epoch,
                log_end_offset: 0,
                high_watermark: 0,
            });
        })
        .run()
        .expect("a valid scenario");
    assert_eq!(calls.load(Ordering::Relaxed), 1, "the hook ran once");
    assert!(!out.report.pass);
    let ours: Vec<&Violation> = out
        .report
        .violations
        .iter()
        .filter(|v| v.check == "one-broker-per-epoch")
        .collect();
    assert_eq!(ours.len(), 1, "{:?}", out.report.violations);
    assert_eq!(ours[0].partition.as_deref(), Some("events-0"));
}

/// A fault aimed at a broker the cluster does not have is refused before anything runs.
#[test]
fn a_fault_at_a_broker_that_does_not_exist_is_refused() {
    let e = Sim::new(scenario())
        .fault(Fault::Pause(Target::Broker(9)).at(secs(1)))
        .run()
        .err()
        .expect("refused");
    assert!(e.contains("broker 9 does not exist"), "{e}");
}

/// The test's own end-of-run check: after the quiet period, each partition's leader holds at
/// least `min` committed records.
struct AtLeast {
    min: usize,
}

impl Oracle for AtLeast {
    fn name(&self) -> &'static str {
        "at-least-committed"
    }

    fn check(&mut self, end: &End<'_>) -> Vec<Violation> {
        let short = end.leaders.iter().filter(|(_, (_, v))| v.len() < self.min);
        short
            .map(|(partition, (leader, values))| {
                let message = format!("{} committed records, expected {}", values.len(), self.min);
                Violation::new(self.name(), end.time_ms, message)
                    .on(*leader)
                    .partition(partition.clone())
            })
            .collect()
    }
}

/// An oracle of one's own is judged once at the end, after the built-in ones: a bar no run can
/// reach fails every partition; the same run with a bar it reaches passes.
#[test]
fn an_oracle_of_ones_own_judges_the_end_of_the_run() {
    let run = |min| {
        Sim::new(scenario())
            .seed(3)
            .keep_trace(false)
            .oracle(AtLeast { min })
            .run()
            .expect("a valid scenario")
    };
    let clean = run(1);
    assert!(clean.report.pass, "{:?}", clean.report.violations);
    assert_eq!(clean.report.counters.invariants["at-least-committed"], 1);
    let planted = run(1_000_000);
    let ours: Vec<_> = planted
        .report
        .violations
        .iter()
        .filter(|v| v.check == "at-least-committed")
        .collect();
    assert_eq!(ours.len(), 3, "{:?}", planted.report.violations);
    assert_eq!(planted.report.violations.len(), 3, "only ours fail");
}
