//! Each check, shown a violation planted in a live run, fails the run and names it.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use logsim::run::{run_with_hooks, Hook};
use logsim::scenario::Scenario;
use logsim::world::cluster::Cluster;
use model::env::Event;
use model::partition::Role;
use model::TopicPartition;

fn scenario(text: &str) -> Scenario {
    Scenario::parse(Path::new("planted.toml"), text).expect("valid")
}

fn quiet() -> Scenario {
    scenario("[run]\nduration = \"20s\"\nquiet_period = \"5s\"\n")
}

fn checks_failed(s: &Scenario, hooks: Vec<Hook>) -> Vec<&'static str> {
    let report = run_with_hooks(s, 5, false, hooks).report;
    assert!(!report.pass, "the planted violation went unnoticed");
    report.violations.iter().map(|v| v.check.name()).collect()
}

#[test]
fn an_unplanted_run_passes() {
    let report = run_with_hooks(&quiet(), 5, false, Vec::new()).report;
    assert!(report.pass, "{:?}", report.violations);
}

/// Rewrites the last committed batch of a follower of events-0 with other contents.
fn corrupt_a_committed_batch(cluster: &mut Cluster) {
    let tp = TopicPartition::new("events", 0);
    for (_, broker) in cluster.live() {
        let mut s = broker.lock();
        let Some(p) = s.partitions.get_mut(&tp) else {
            continue;
        };
        if !matches!(p.role, Role::Follower { .. }) {
            continue;
        }
        let hw = p.log.high_watermark();
        let Some(last) = p
            .log
            .batches()
            .iter()
            .rev()
            .find(|b| b.last_offset < hw)
            .copied()
        else {
            continue;
        };
        p.log.truncate_to(last.base_offset).expect("truncate");
        let mut forged = model::batch::encode(&[(None, Bytes::from_static(b"forged"))], 0).to_vec();
        model::batch::stamp(&mut forged, last.base_offset, last.leader_epoch);
        p.log.append_replicated(&forged).expect("append");
        p.log.set_high_watermark(last.base_offset + 1);
        return;
    }
    panic!("no follower with a committed batch to corrupt");
}

#[test]
fn a_replica_whose_committed_data_differs_is_caught() {
    let failed = checks_failed(
        &quiet(),
        vec![Hook::new(
            Duration::from_secs(15),
            corrupt_a_committed_batch,
        )],
    );
    assert!(failed.contains(&"committed-data-identical"), "{failed:?}");
}

/// Empties the leader of events-0 once the quiet period is almost over.
fn lose_the_leaders_log(cluster: &mut Cluster) {
    let tp = TopicPartition::new("events", 0);
    for (_, broker) in cluster.live() {
        let mut s = broker.lock();
        if let Some(p) = s.partitions.get_mut(&tp).filter(|p| p.is_leader()) {
            p.log.truncate_to(0).expect("truncate");
            return;
        }
    }
}

#[test]
fn an_acked_write_missing_from_the_leader_is_caught() {
    let failed = checks_failed(
        &quiet(),
        vec![Hook::new(
            Duration::from_millis(24_990),
            lose_the_leaders_log,
        )],
    );
    assert!(failed.contains(&"acked-write-durable"), "{failed:?}");
}

/// Makes a second broker claim leadership of an epoch that already has a leader.
fn claim_a_taken_epoch(cluster: &mut Cluster) {
    let tp = TopicPartition::new("events", 0);
    let live = cluster.live();
    let (_, follower) = live
        .iter()
        .find(|(_, b)| b.inspect(|s| s.partitions.get(&tp).is_some_and(|p| !p.is_leader())))
        .expect("a follower of events-0");
    let epoch = follower.inspect(|s| s.partitions[&tp].leader_epoch);
    follower.emit(Event::BecameLeader {
        partition: tp,
        leader_epoch: epoch,
        log_end_offset: 0,
        high_watermark: 0,
    });
}

#[test]
fn two_leaders_of_one_epoch_are_caught() {
    let failed = checks_failed(
        &quiet(),
        vec![Hook::new(Duration::from_secs(10), claim_a_taken_epoch)],
    );
    assert!(failed.contains(&"single-leader-per-epoch"), "{failed:?}");
}

#[test]
fn a_run_that_acks_nothing_fails_its_gate() {
    // Over before any topic exists: every send is refused.
    let s = scenario("[run]\nduration = \"2s\"\nquiet_period = \"0s\"\n");
    let failed = checks_failed(&s, Vec::new());
    assert!(failed.contains(&"gate"), "{failed:?}");
}

/// Crashes two of the three brokers for good, after the heal.
fn crash_two_for_good(cluster: &mut Cluster) {
    for id in cluster.ids().into_iter().take(2) {
        cluster.crash(id, logsim::world::cluster::DiskDamage::None);
    }
}

#[test]
fn a_partition_left_without_a_leader_is_caught() {
    let failed = checks_failed(
        &quiet(),
        vec![Hook::new(Duration::from_millis(20_500), crash_two_for_good)],
    );
    assert!(failed.contains(&"leader-after-heal"), "{failed:?}");
}

#[test]
fn an_assertion_firing_inside_the_simulation_fails_the_run_with_its_message() {
    fn assert_fails(_: &mut Cluster) {
        panic!("planted assertion");
    }
    let report = run_with_hooks(
        &quiet(),
        5,
        false,
        vec![Hook::new(Duration::from_secs(3), assert_fails)],
    )
    .report;
    assert!(!report.pass);
    assert_eq!(report.violations[0].check, "assertion");
    assert!(
        report.violations[0].message.contains("planted assertion"),
        "{:?}",
        report.violations
    );
}
