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

use crate::record::history::{key, OpFn, OpType};
use crate::scenario::GroupSpec;
use crate::world::workload::{poll, Workload};

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
    let crash_at = next_at(&mut rng, spec.restarts);
    let stall_at = next_at(&mut rng, spec.stalls);
    let mut m = Member {
        strategy: Strategy::by_name(&spec.assignment).expect("a validated assignment"),
        group: new_member(&w, &spec, index),
        client: new_client(&w, &spec, index),
        w,
        spec,
        index,
        process,
        rng,
        crash_at,
        stall_at,
    };
    while !m.w.stop_consumers.load(Ordering::Relaxed) {
        if let Some((mine, positions)) = m.join_generation().await {
            m.consume(&mine, positions).await;
        }
    }
    m.group.leave().await;
}

fn new_member(w: &Workload, spec: &GroupSpec, index: u32) -> GroupMember {
    GroupMember::new(
        w.bootstrap.clone(),
        format!("{}-{index}", spec.name),
        spec.name.clone(),
        CLIENT_TIMEOUT,
        spec.session_timeout.ms() as i32,
    )
}

fn new_client(w: &Workload, spec: &GroupSpec, index: u32) -> Client {
    w.consumer_client(format!("{}-{index}", spec.name))
}

/// Joins `group`'s next generation as history process `process`, takes the partitions of the
/// workload's topic its leader (maybe this member, with `strategy`) assigns, and fetches where
/// the group committed each: the partitions and where to resume each. The assignment goes into
/// the history. `None` when any step fails.
pub async fn join(
    w: &Workload,
    group: &mut GroupMember,
    strategy: Strategy,
    process: u64,
) -> Option<(Vec<i32>, BTreeMap<i32, i64>)> {
    let joined = group.join(&[(strategy.name(), Bytes::new())]).await.ok()?;
    let assignments = if joined.leader {
        let ids: Vec<String> = joined.members.iter().map(|(id, _)| id.clone()).collect();
        (strategy.assign(&ids, w.partitions).into_iter())
            .map(|(id, partitions)| (id, encode_assignment(&partitions)))
            .collect()
    } else {
        Vec::new()
    };
    let mine = decode_assignment(&group.sync(assignments).await.ok()?);
    let tps: Vec<TopicPartition> = (mine.iter())
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
    let committed = committed.ok()?;
    let mut assign = w.op(process, OpType::Ok, OpFn::Assign);
    assign.group = Some(group.group.as_str().into());
    assign.keys = Some(mine.iter().map(|p| key(&w.topic, *p)).collect());
    w.history.push(assign);
    let positions = (committed.iter())
        .map(|(tp, offset)| (tp.partition, *offset))
        .collect();
    Some((mine, positions))
}

/// One member's state across generations: its group and fetch clients, and its own faults.
struct Member {
    w: Workload,
    spec: GroupSpec,
    index: u32,
    process: u64,
    rng: ChaCha8Rng,
    strategy: Strategy,
    group: GroupMember,
    client: Client,
    crash_at: Option<Instant>,
    stall_at: Option<Instant>,
}

impl Member {
    /// Joins, syncs and fetches the committed offsets: the partitions of this generation and
    /// where to resume each. `None` (after a backoff) when any step fails.
    async fn join_generation(&mut self) -> Option<(Vec<i32>, BTreeMap<i32, i64>)> {
        let generation = self.try_join_generation().await;
        if generation.is_none() {
            madsim::time::sleep(BACKOFF).await;
        }
        generation
    }

    async fn try_join_generation(&mut self) -> Option<(Vec<i32>, BTreeMap<i32, i64>)> {
        join(&self.w, &mut self.group, self.strategy, self.process).await
    }

    /// Polls, commits and heartbeats until the generation ends.
    async fn consume(&mut self, mine: &[i32], mut positions: BTreeMap<i32, i64>) {
        let session_ms = self.spec.session_timeout.ms();
        let mut heartbeat_at = Instant::now();
        let mut commit_at = Instant::now() + self.spec.commit_interval.0;
        while !self.w.stop_consumers.load(Ordering::Relaxed) {
            if due(self.crash_at) {
                self.group = new_member(&self.w, &self.spec, self.index);
                self.client = new_client(&self.w, &self.spec, self.index);
                self.w.stats().consumer_restarts += 1;
                self.crash_at = next_at(&mut self.rng, self.spec.restarts);
                return;
            }
            if due(self.stall_at) {
                madsim::time::sleep(Duration::from_millis(2 * session_ms)).await;
                self.stall_at = next_at(&mut self.rng, self.spec.stalls);
                // Back as a zombie: it commits what it had read before it learns it was dropped.
                commit_at = Instant::now();
            }
            if Instant::now() >= commit_at {
                commit_at = Instant::now() + self.spec.commit_interval.0;
                if let Err(GroupError::Rejoin(_)) = self.commit(&positions).await {
                    return;
                }
            }
            let (w, process) = (&self.w, self.process);
            poll(w, &mut self.client, process, mine, &mut positions).await;
            if Instant::now() >= heartbeat_at {
                heartbeat_at = Instant::now() + Duration::from_millis(session_ms / 3);
                if let Err(GroupError::Rejoin(_)) = self.group.heartbeat().await {
                    return;
                }
            }
            madsim::time::sleep(self.w.poll_interval).await;
        }
    }

    /// Commits the positions read so far, recording the invocation and its outcome.
    async fn commit(&mut self, positions: &BTreeMap<i32, i64>) -> Result<(), GroupError> {
        let w = &self.w;
        if positions.is_empty() {
            return Ok(());
        }
        let offsets: Vec<(TopicPartition, i64)> = positions
            .iter()
            .map(|(p, o)| (TopicPartition::new(w.topic.clone(), *p), *o))
            .collect();
        let mut commit = w.op(self.process, OpType::Invoke, OpFn::Commit);
        commit.group = Some(self.spec.name.as_str().into());
        commit.offsets = Some(Box::new(
            positions
                .iter()
                .map(|(p, o)| (key(&w.topic, *p), *o))
                .collect(),
        ));
        w.history.push(commit.clone());
        let outcome = self.group.commit(&offsets).await;
        // A commit that failed on the way may still have been written: `info`.
        commit.kind = match &outcome {
            Ok(()) => OpType::Ok,
            Err(GroupError::Rejoin(_)) => OpType::Fail,
            Err(GroupError::Retry(_)) => OpType::Info,
        };
        commit.time_ms = Some(w.now_ms());
        w.history.push(commit);
        outcome
    }
}
