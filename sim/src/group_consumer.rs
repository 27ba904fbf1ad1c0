//! A consumer group's member: it joins, takes the partitions its leader assigns, resumes each from
//! the group's committed offset, polls, commits every `commit_interval` and heartbeats. A
//! rebalance (a member joining, leaving, crashing or stalling) sends it back to join again.
//!
//! Faults of the member's own, drawn from its seed: a crash (its successor is a new member, and the
//! old one is dropped when its session runs out) and a stall (no heartbeats for two session
//! timeouts, after which it goes on as if nothing happened: it commits what it had read in the
//! generation it no longer belongs to, which the coordinator must refuse).
//!
//! History: an `assign` with the group when it takes up partitions, and a `commit` with the group
//! for every acknowledged commit.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use madsim::time::Instant;
use model::client::Client;
use model::group_client::{
    decode_assignment, encode_assignment, GroupError, GroupMember, Strategy,
};
use model::TopicPartition;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::history::{key, OpFn, OpType};
use crate::scenario::GroupSpec;
use crate::workload::{poll_partition, Workload};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
const BACKOFF: Duration = Duration::from_millis(100);

/// When the next of a member's own faults comes, drawn from `range`.
fn next_at(rng: &mut ChaCha8Rng, range: Option<[crate::scenario::Dur; 2]>) -> Option<Instant> {
    range
        .map(|[lo, hi]| Instant::now() + Duration::from_millis(rng.random_range(lo.ms()..=hi.ms())))
}

fn due(at: Option<Instant>) -> bool {
    at.is_some_and(|at| Instant::now() >= at)
}

/// Member `index` of group `spec`, history process `process`.
pub async fn member(w: Workload, spec: GroupSpec, index: u32, process: u64, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let strategy = Strategy::by_name(&spec.assignment).expect("a validated assignment");
    let session_ms = spec.session_timeout.ms();
    let new_member = || {
        GroupMember::new(
            w.bootstrap.clone(),
            format!("{}-{index}", spec.name),
            spec.name.clone(),
            CLIENT_TIMEOUT,
            session_ms as i32,
        )
    };
    let new_client = || {
        Client::new(
            w.bootstrap.clone(),
            format!("{}-{index}", spec.name),
            CLIENT_TIMEOUT,
        )
    };
    let mut group = new_member();
    let mut client = new_client();
    let mut crash_at = next_at(&mut rng, spec.restarts);
    let mut stall_at = next_at(&mut rng, spec.stalls);
    while !w.stop_consumers.load(Ordering::Relaxed) {
        let joined = match group.join(&[(strategy.name(), Bytes::new())]).await {
            Ok(j) => j,
            Err(_) => {
                madsim::time::sleep(BACKOFF).await;
                continue;
            }
        };
        let assignments = if joined.leader {
            let ids: Vec<String> = joined.members.iter().map(|(id, _)| id.clone()).collect();
            strategy
                .assign(&ids, w.partitions)
                .into_iter()
                .map(|(id, partitions)| (id, encode_assignment(&partitions)))
                .collect()
        } else {
            Vec::new()
        };
        let mine = match group.sync(assignments).await {
            Ok(a) => decode_assignment(&a),
            Err(_) => {
                madsim::time::sleep(BACKOFF).await;
                continue;
            }
        };
        let tps: Vec<TopicPartition> = mine
            .iter()
            .map(|p| TopicPartition::new(w.topic.clone(), *p))
            .collect();
        // A commit still being written makes the fetch wait (UNSTABLE_OFFSET_COMMIT): ask again
        // for a while before joining anew.
        let mut committed = Err(GroupError::Retry(String::new()));
        for _ in 0..20 {
            committed = group.committed(&tps).await;
            if !matches!(committed, Err(GroupError::Retry(_))) {
                break;
            }
            madsim::time::sleep(BACKOFF).await;
        }
        let Ok(committed) = committed else {
            madsim::time::sleep(BACKOFF).await;
            continue;
        };
        let mut assign = w.op(process, OpType::Ok, OpFn::Assign);
        assign.group = Some(spec.name.as_str().into());
        assign.keys = Some(mine.iter().map(|p| key(&w.topic, *p)).collect());
        w.history.push(assign);
        let mut positions: BTreeMap<i32, i64> = committed
            .iter()
            .map(|(tp, offset)| (tp.partition, *offset))
            .collect();
        let mut heartbeat_at = Instant::now();
        let mut commit_at = Instant::now() + spec.commit_interval.0;
        // Polls, commits and heartbeats until the generation ends.
        while !w.stop_consumers.load(Ordering::Relaxed) {
            if due(crash_at) {
                group = new_member();
                client = new_client();
                w.stats().consumer_restarts += 1;
                crash_at = next_at(&mut rng, spec.restarts);
                break;
            }
            if due(stall_at) {
                madsim::time::sleep(Duration::from_millis(2 * session_ms)).await;
                stall_at = next_at(&mut rng, spec.stalls);
                // Back as a zombie: it commits what it had read before it learns it was dropped.
                commit_at = Instant::now();
            }
            if Instant::now() >= commit_at {
                commit_at = Instant::now() + spec.commit_interval.0;
                let offsets: Vec<(TopicPartition, i64)> = positions
                    .iter()
                    .map(|(p, o)| (TopicPartition::new(w.topic.clone(), *p), *o))
                    .collect();
                if !offsets.is_empty() {
                    let mut commit = w.op(process, OpType::Invoke, OpFn::Commit);
                    commit.group = Some(spec.name.as_str().into());
                    commit.offsets = Some(Box::new(
                        positions
                            .iter()
                            .map(|(p, o)| (key(&w.topic, *p), *o))
                            .collect(),
                    ));
                    w.history.push(commit.clone());
                    let outcome = group.commit(&offsets).await;
                    // A commit that failed on the way may still have been written: `info`.
                    commit.kind = match &outcome {
                        Ok(()) => OpType::Ok,
                        Err(GroupError::Rejoin(_)) => OpType::Fail,
                        Err(GroupError::Retry(_)) => OpType::Info,
                    };
                    commit.time_ms = Some(w.now_ms());
                    w.history.push(commit);
                    if let Err(GroupError::Rejoin(_)) = outcome {
                        break;
                    }
                }
            }
            for partition in &mine {
                poll_partition(&w, &mut client, process, *partition, &mut positions).await;
            }
            if Instant::now() >= heartbeat_at {
                heartbeat_at = Instant::now() + Duration::from_millis(session_ms / 3);
                if let Err(GroupError::Rejoin(_)) = group.heartbeat().await {
                    break;
                }
            }
            madsim::time::sleep(w.poll_interval).await;
        }
    }
    group.leave().await;
}
