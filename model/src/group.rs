//! The group coordinator: consumer groups (join, sync, heartbeat, leave, with a generation that
//! every rebalance bumps) and their committed offsets, which live in the replicated internal topic
//! `__consumer_offsets` and so survive crashes exactly as data does.
//!
//! A group's coordinator is the leader of partition `abs(javaHash(group)) % partitions` of that
//! topic, as in Kafka, so clients find it with FindCoordinator. Membership is in the coordinator's
//! memory: when the partition's leadership moves, members learn NOT_COORDINATOR, find the new
//! coordinator and join again. Offsets are read back from the partition's log by each new leader.
//!
//! A commit is appended to the offsets partition as an acks=all write and answered only once the
//! high watermark covers it. A commit from a generation other than the group's current one, or from
//! an unknown member, is refused (ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID): a consumer that lost its
//! partitions in a rebalance must not move their offsets. The `group-stale-commit` bug switch
//! accepts it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId as WireBrokerId, FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, SyncGroupResponse, TxnOffsetCommitRequest, TxnOffsetCommitResponse,
};
use kafka_protocol::protocol::StrBytes;
use tracing::{debug, trace};

use crate::broker::{Shared, State};
use crate::deadline::Deadline;
use crate::{batch, bugs, TopicPartition};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

pub mod error_code {
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    pub const NOT_COORDINATOR: i16 = 16;
    pub const ILLEGAL_GENERATION: i16 = 22;
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    pub const UNSTABLE_OFFSET_COMMIT: i16 = 88;
}

/// Java's `String.hashCode`, which Kafka uses to place a group.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// The offsets partition that holds `group`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    let h = java_hash(group);
    // Kafka's Utils.abs: MIN_VALUE maps to 0.
    let h = if h == i32::MIN { 0 } else { h.abs() };
    h % partitions.max(1)
}

#[derive(Clone, Debug)]
struct Member {
    protocols: Vec<(String, Bytes)>,
    session_timeout_ms: u64,
    rebalance_timeout_ms: u64,
    last_seen_ms: u64,
    /// Joined the rebalance in progress.
    joined: bool,
    assignment: Bytes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Empty,
    /// Waiting for every member to join, until `deadline_ms`.
    Joining {
        deadline_ms: u64,
    },
    /// Joined; waiting for the leader's assignment.
    Syncing,
    Stable,
}

#[derive(Clone, Debug)]
pub struct Group {
    /// The offsets partition's leader epoch this state was built in.
    epoch: i32,
    generation: i32,
    protocol_type: String,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    phase: Phase,
}

/// What a commit is for: (group, topic, partition).
type Slot = (String, String, i32);

/// The slots and offsets an offset commit of either kind (OffsetCommit, TxnOffsetCommit) asks
/// for, in the request's order: their requests differ in type, not in shape.
macro_rules! commit_slots {
    ($group:expr, $request:expr) => {
        ($request.topics.iter())
            .flat_map(|t| {
                t.partitions.iter().map(|p| {
                    let slot = ($group.clone(), t.name.0.to_string(), p.partition_index);
                    (slot, p.committed_offset)
                })
            })
            .collect::<Vec<(Slot, i64)>>()
    };
}

/// The answer to an offset commit of either kind: every partition it named, with `code`.
macro_rules! commit_answer {
    ($response:ty, $topic:ty, $partition:ty, $request:expr, $code:expr) => {{
        let mut response = <$response>::default();
        for t in &$request.topics {
            let mut rt = <$topic>::default();
            rt.name = t.name.clone();
            for p in &t.partitions {
                let mut rp = <$partition>::default();
                rp.partition_index = p.partition_index;
                rp.error_code = $code;
                rt.partitions.push(rp);
            }
            response.topics.push(rt);
        }
        response
    }};
}

/// Committed offsets of the groups in one offsets partition, as of `epoch`'s leadership.
#[derive(Clone, Debug, Default)]
pub struct OffsetCache {
    epoch: i32,
    /// (group, topic, partition) -> the next offset to read, and where in the offsets partition
    /// its commit record is. Commits are answered in the order their writes are acknowledged,
    /// which need not be the order they were written in: the log's order decides.
    committed: BTreeMap<(String, String, i32), (i64, i64)>,
    /// Offsets committed inside each producer's open transaction (TxnOffsetCommit), with where
    /// their records are: they count once the transaction's commit marker is written.
    in_transactions: BTreeMap<i64, Vec<(Slot, i64, i64)>>,
}

impl OffsetCache {
    /// Takes in one commit record at `at` of the offsets partition; `producer` names the
    /// transaction it was written in, if any.
    fn take(&mut self, slot: (String, String, i32), offset: i64, at: i64, producer: Option<i64>) {
        match producer {
            Some(p) => self
                .in_transactions
                .entry(p)
                .or_default()
                .push((slot, offset, at)),
            // A commit written after this one, already taken in, stands.
            None => {
                if self.committed.get(&slot).is_none_or(|(_, w)| *w < at) {
                    self.committed.insert(slot, (offset, at));
                }
            }
        }
    }

    /// Ends `producer`'s transaction: its offsets count when it commits.
    fn end_transaction(&mut self, producer: i64, marker: batch::Marker) {
        let offsets = self.in_transactions.remove(&producer).unwrap_or_default();
        if marker == batch::Marker::Commit {
            for (slot, offset, at) in offsets {
                self.take(slot, offset, at, None);
            }
        }
    }

    /// Forgets `producer`'s transactional offsets of `commits`, whose write failed.
    fn drop_transactional(&mut self, producer: i64, commits: &[(Slot, i64)]) {
        if let Some(held) = self.in_transactions.get_mut(&producer) {
            held.retain(|(slot, offset, _)| !commits.iter().any(|(s, o)| s == slot && o == offset));
        }
    }

    /// Whether a transaction not yet ended holds an offset for `slot`.
    fn unstable(&self, slot: &(String, String, i32)) -> bool {
        (self.in_transactions.values()).any(|offsets| offsets.iter().any(|(s, _, _)| s == slot))
    }
}

/// Reads one commit record's key and value.
fn parse_commit(key: Option<&[u8]>, value: Option<&[u8]>) -> Option<((String, String, i32), i64)> {
    let slot = key.and_then(parse_commit_key)?;
    let offset = std::str::from_utf8(value?).ok()?.parse::<i64>().ok()?;
    Some((slot, offset))
}

/// Groups and offsets this broker coordinates.
#[derive(Default)]
pub struct Coordinator {
    groups: BTreeMap<String, Group>,
    offsets: BTreeMap<i32, OffsetCache>,
    members_created: u64,
    /// Commits accepted and not yet acknowledged, per (group, topic, partition). An offset fetch
    /// waits them out (UNSTABLE_OFFSET_COMMIT): a member taking a partition over from one whose
    /// last commit is still being written must start from that commit, not from the one before.
    pending: BTreeMap<(String, String, i32), u32>,
}

fn offsets_tp(shared: &Shared, group: &str) -> Option<TopicPartition> {
    let partitions = shared.config.offsets_partitions;
    (partitions > 0).then(|| TopicPartition::new(OFFSETS_TOPIC, partition_for(group, partitions)))
}

/// The offsets partition of `group` when this broker leads it, with its leader epoch.
fn coordinating(shared: &Shared, s: &State, group: &str) -> Result<(TopicPartition, i32), i16> {
    let tp = offsets_tp(shared, group).ok_or(error_code::COORDINATOR_NOT_AVAILABLE)?;
    match s.partitions.get(&tp) {
        Some(p) if p.is_leader() => Ok((tp, p.leader_epoch)),
        _ => Err(error_code::NOT_COORDINATOR),
    }
}

impl Group {
    /// A group with no members, in `epoch`'s leadership, its generation at `generation`.
    fn empty(epoch: i32, generation: i32) -> Group {
        Group {
            epoch,
            generation,
            protocol_type: String::new(),
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            phase: Phase::Empty,
        }
    }
}

/// The group's state here, new when this broker's leadership of its partition is.
fn group_mut<'a>(s: &'a mut State, group: &str, epoch: i32) -> &'a mut Group {
    let g = s
        .coordinator
        .groups
        .entry(group.to_owned())
        .or_insert_with(|| Group::empty(epoch, 0));
    if g.epoch != epoch {
        // A new leadership knows no members: they find it and join again. The generation goes on
        // from the old one where this broker saw it, and never back.
        debug!(
            group,
            epoch,
            old_epoch = g.epoch,
            generation = g.generation,
            "new leadership of the group's offsets partition: members must join again"
        );
        *g = Group::empty(epoch, g.generation);
    }
    g
}

/// Starts a join phase; `group` and `reason` are for the log.
fn start_rebalance(group: &str, g: &mut Group, now: u64, reason: &str) {
    crate::mark!(GroupRebalances);
    let timeout = g
        .members
        .values()
        .map(|m| m.rebalance_timeout_ms)
        .max()
        .unwrap_or(0);
    for m in g.members.values_mut() {
        m.joined = false;
    }
    g.phase = if g.members.is_empty() {
        Phase::Empty
    } else {
        Phase::Joining {
            deadline_ms: now + timeout,
        }
    };
    debug!(
        group,
        generation = g.generation,
        members = g.members.len(),
        timeout_ms = timeout,
        reason,
        "rebalance started"
    );
}

/// Ends the join phase: members that did not join are dropped, the generation moves on, and a
/// protocol every member supports is chosen.
fn complete_join(group: &str, g: &mut Group) {
    let before = g.members.len();
    g.members.retain(|_, m| m.joined);
    g.generation += 1;
    debug!(
        group,
        generation = g.generation,
        members = g.members.len(),
        dropped = before - g.members.len(),
        "join phase complete: new generation"
    );
    if g.members.is_empty() {
        g.phase = Phase::Empty;
        g.leader = None;
        g.protocol = None;
        return;
    }
    if g.leader.as_ref().is_none_or(|l| !g.members.contains_key(l)) {
        g.leader = g.members.keys().next().cloned();
    }
    let first = g.members.values().next().expect("a member");
    g.protocol = first
        .protocols
        .iter()
        .map(|(name, _)| name)
        .find(|name| {
            g.members
                .values()
                .all(|m| m.protocols.iter().any(|(n, _)| n == *name))
        })
        .cloned();
    for m in g.members.values_mut() {
        m.assignment = Bytes::new();
    }
    g.phase = Phase::Syncing;
}

/// Drops members whose session ran out and ends join phases whose time is up; run every tick.
pub fn expire(shared: &Shared, s: &mut State, now: u64) {
    let mut changed = Vec::new();
    for (name, g) in s.coordinator.groups.iter_mut() {
        let before = g.members.len();
        // A member waiting in a join is the join phase's to judge, by its deadline.
        let joining = matches!(g.phase, Phase::Joining { .. });
        g.members
            .retain(|_, m| (joining && m.joined) || m.last_seen_ms + m.session_timeout_ms >= now);
        if g.members.len() != before {
            crate::mark!(GroupMemberExpired);
            start_rebalance(name, g, now, "a member's session expired");
            changed.push(name.clone());
        } else if let Phase::Joining { deadline_ms } = g.phase {
            if now >= deadline_ms {
                complete_join(name, g);
                changed.push(name.clone());
            }
        }
    }
    for name in changed {
        if let Some(tp) = offsets_tp(shared, &name) {
            shared.notify_partition(&tp);
        }
    }
}

fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

pub fn find_coordinator(
    shared: &Shared,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let mut response = FindCoordinatorResponse::default();
    let s = shared.lock();
    let key = request.key.as_str();
    // Key type 1 names a transactional id, 0 a group.
    let leader = if request.key_type == 1 {
        crate::txn::coordinator::coordinator_of(shared, &s, key)
    } else {
        offsets_tp(shared, key)
            .and_then(|tp| s.image.partition(&tp.topic, tp.partition))
            .map(|p| p.leader)
            .filter(|l| *l >= 0)
    };
    match leader.and_then(|l| shared.config.address(l).map(|a| (l, a))) {
        Some((id, address)) => {
            response.node_id = WireBrokerId(id);
            response.host = str_bytes(&address.ip().to_string());
            response.port = i32::from(address.port());
        }
        None => {
            response.error_code = error_code::COORDINATOR_NOT_AVAILABLE;
            response.node_id = WireBrokerId(-1);
        }
    }
    response
}

fn join_error(code: i16, member_id: &str) -> JoinGroupResponse {
    let mut r = JoinGroupResponse::default();
    r.error_code = code;
    r.generation_id = -1;
    r.member_id = str_bytes(member_id);
    r
}

pub async fn join_group(shared: &Arc<Shared>, request: JoinGroupRequest) -> JoinGroupResponse {
    let group = request.group_id.0.to_string();
    let now = shared.now_ms();
    let (tp, member_id) = {
        let mut s = shared.lock();
        let (tp, epoch) = match coordinating(shared, &s, &group) {
            Ok(c) => c,
            Err(code) => return join_error(code, request.member_id.as_str()),
        };
        let mut member_id = request.member_id.to_string();
        if member_id.is_empty() {
            s.coordinator.members_created += 1;
            member_id = format!(
                "{}-{}-{}-{}",
                request.protocol_type.as_str(),
                shared.id(),
                s.incarnation,
                s.coordinator.members_created
            );
        }
        let g = group_mut(&mut s, &group, epoch);
        if !g.members.is_empty() && g.protocol_type != request.protocol_type.as_str() {
            return join_error(error_code::INCONSISTENT_GROUP_PROTOCOL, &member_id);
        }
        if !request.member_id.is_empty() && !g.members.contains_key(&member_id) {
            return join_error(error_code::UNKNOWN_MEMBER_ID, &member_id);
        }
        g.protocol_type = request.protocol_type.to_string();
        let known = g.members.contains_key(&member_id);
        let protocols: Vec<(String, Bytes)> = request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect();
        let member = Member {
            protocols,
            session_timeout_ms: request.session_timeout_ms.max(1) as u64,
            rebalance_timeout_ms: request
                .rebalance_timeout_ms
                .max(request.session_timeout_ms)
                .max(1) as u64,
            last_seen_ms: now,
            joined: true,
            assignment: Bytes::new(),
        };
        // A new member, or a known one joining outside a join phase, starts a rebalance.
        if !known || !matches!(g.phase, Phase::Joining { .. }) {
            g.members.insert(member_id.clone(), member);
            let reason = if known {
                "a member joins again"
            } else {
                "a new member joins"
            };
            start_rebalance(&group, g, now, reason);
            g.members.get_mut(&member_id).expect("inserted").joined = true;
        } else {
            g.members.insert(member_id.clone(), member);
        }
        if g.members.values().all(|m| m.joined) {
            complete_join(&group, g);
        }
        shared.notify_partition(&tp);
        (tp, member_id)
    };
    let mut rx = shared.subscribe_to(vec![tp.clone()]);
    let mut deadline = Deadline::after(Duration::from_millis(
        request
            .rebalance_timeout_ms
            .max(request.session_timeout_ms)
            .max(0) as u64
            + 1_000,
    ));
    loop {
        {
            let mut s = shared.lock();
            let now = shared.now_ms();
            let epoch = match coordinating(shared, &s, &group) {
                Ok((_, epoch)) => epoch,
                Err(code) => return join_error(code, &member_id),
            };
            let g = group_mut(&mut s, &group, epoch);
            let Some(me) = g.members.get_mut(&member_id) else {
                return join_error(error_code::UNKNOWN_MEMBER_ID, &member_id);
            };
            if let Phase::Joining { deadline_ms } = g.phase {
                // A join still waiting counts for a rebalance that began after it was sent.
                me.joined = true;
                me.last_seen_ms = now;
                if now >= deadline_ms || g.members.values().all(|m| m.joined) {
                    complete_join(&group, g);
                    shared.notify_partition(&tp);
                }
            }
            if !g.members.contains_key(&member_id) {
                return join_error(error_code::UNKNOWN_MEMBER_ID, &member_id);
            }
            if matches!(g.phase, Phase::Syncing | Phase::Stable) {
                let mut r = JoinGroupResponse::default();
                r.generation_id = g.generation;
                r.protocol_type = Some(str_bytes(&g.protocol_type));
                r.protocol_name = g.protocol.as_deref().map(str_bytes);
                r.member_id = str_bytes(&member_id);
                r.leader = str_bytes(g.leader.as_deref().unwrap_or(""));
                if g.leader.as_deref() == Some(member_id.as_str()) {
                    let protocol = g.protocol.clone().unwrap_or_default();
                    r.members = g
                        .members
                        .iter()
                        .map(|(id, m)| {
                            let mut jm = JoinGroupResponseMember::default();
                            jm.member_id = str_bytes(id);
                            jm.metadata = m
                                .protocols
                                .iter()
                                .find(|(n, _)| *n == protocol)
                                .map(|(_, b)| b.clone())
                                .unwrap_or_default();
                            jm
                        })
                        .collect();
                }
                return r;
            }
        }
        if deadline.passed() || deadline.run(rx.changed()).await.is_err() {
            return join_error(error_code::REBALANCE_IN_PROGRESS, &member_id);
        }
    }
}

fn sync_error(code: i16) -> SyncGroupResponse {
    let mut r = SyncGroupResponse::default();
    r.error_code = code;
    r
}

/// Checks that `member` of `generation` may act in the group now.
fn check_member(g: &Group, member: &str, generation: i32) -> Result<(), i16> {
    if !g.members.contains_key(member) {
        return Err(error_code::UNKNOWN_MEMBER_ID);
    }
    if generation != g.generation {
        return Err(error_code::ILLEGAL_GENERATION);
    }
    Ok(())
}

/// Checks a transactional offset commit's group metadata, as far as it gives any: an older
/// client sends none (no member, generation -1) and is fenced by its producer epoch alone.
fn check_txn_member(g: &Group, member: &str, generation: i32) -> Result<(), i16> {
    if !member.is_empty() && !g.members.contains_key(member) {
        return Err(error_code::UNKNOWN_MEMBER_ID);
    }
    if generation >= 0 && generation != g.generation {
        return Err(error_code::ILLEGAL_GENERATION);
    }
    Ok(())
}

pub async fn sync_group(shared: &Arc<Shared>, request: SyncGroupRequest) -> SyncGroupResponse {
    let group = request.group_id.0.to_string();
    let member = request.member_id.to_string();
    let generation = request.generation_id;
    let tp = {
        let mut s = shared.lock();
        let (tp, epoch) = match coordinating(shared, &s, &group) {
            Ok(c) => c,
            Err(code) => return sync_error(code),
        };
        let g = group_mut(&mut s, &group, epoch);
        if let Err(code) = check_member(g, &member, generation) {
            return sync_error(code);
        }
        if matches!(g.phase, Phase::Joining { .. }) {
            return sync_error(error_code::REBALANCE_IN_PROGRESS);
        }
        if g.phase == Phase::Syncing && g.leader.as_deref() == Some(member.as_str()) {
            for a in &request.assignments {
                if let Some(m) = g.members.get_mut(a.member_id.as_str()) {
                    m.assignment = a.assignment.clone();
                }
            }
            g.phase = Phase::Stable;
            shared.notify_partition(&tp);
        }
        tp
    };
    let mut rx = shared.subscribe_to(vec![tp.clone()]);
    let mut deadline = Deadline::after(shared.request_timeout());
    loop {
        {
            let mut s = shared.lock();
            let epoch = match coordinating(shared, &s, &group) {
                Ok((_, epoch)) => epoch,
                Err(code) => return sync_error(code),
            };
            let g = group_mut(&mut s, &group, epoch);
            if let Err(code) = check_member(g, &member, generation) {
                return sync_error(code);
            }
            match g.phase {
                Phase::Stable => {
                    let mut r = SyncGroupResponse::default();
                    r.protocol_type = Some(str_bytes(&g.protocol_type));
                    r.protocol_name = g.protocol.as_deref().map(str_bytes);
                    r.assignment = g.members[&member].assignment.clone();
                    return r;
                }
                Phase::Joining { .. } | Phase::Empty => {
                    return sync_error(error_code::REBALANCE_IN_PROGRESS)
                }
                Phase::Syncing => {}
            }
        }
        if deadline.passed() || deadline.run(rx.changed()).await.is_err() {
            return sync_error(error_code::REBALANCE_IN_PROGRESS);
        }
    }
}

pub fn heartbeat(shared: &Shared, request: HeartbeatRequest) -> HeartbeatResponse {
    let mut r = HeartbeatResponse::default();
    let group = request.group_id.0.to_string();
    let mut s = shared.lock();
    let now = shared.now_ms();
    let epoch = match coordinating(shared, &s, &group) {
        Ok((_, epoch)) => epoch,
        Err(code) => {
            r.error_code = code;
            return r;
        }
    };
    let g = group_mut(&mut s, &group, epoch);
    if let Err(code) = check_member(g, request.member_id.as_str(), request.generation_id) {
        r.error_code = code;
        return r;
    }
    if let Some(m) = g.members.get_mut(request.member_id.as_str()) {
        m.last_seen_ms = now;
    }
    if matches!(g.phase, Phase::Joining { .. }) {
        r.error_code = error_code::REBALANCE_IN_PROGRESS;
    }
    r
}

pub fn leave_group(shared: &Shared, request: LeaveGroupRequest) -> LeaveGroupResponse {
    let mut r = LeaveGroupResponse::default();
    let group = request.group_id.0.to_string();
    let mut s = shared.lock();
    let now = shared.now_ms();
    let (tp, epoch) = match coordinating(shared, &s, &group) {
        Ok(c) => c,
        Err(code) => {
            r.error_code = code;
            return r;
        }
    };
    let g = group_mut(&mut s, &group, epoch);
    let mut leaving: Vec<String> = request
        .members
        .iter()
        .map(|m| m.member_id.to_string())
        .collect();
    if !request.member_id.is_empty() {
        leaving.push(request.member_id.to_string());
    }
    let before = g.members.len();
    g.members.retain(|id, _| !leaving.contains(id));
    if g.members.len() == before {
        r.error_code = error_code::UNKNOWN_MEMBER_ID;
        return r;
    }
    start_rebalance(&group, g, now, "a member left");
    shared.notify_partition(&tp);
    r
}

/// The key of a commit record: `group`, topic and partition, NUL-separated.
fn commit_key(group: &str, topic: &str, partition: i32) -> Bytes {
    Bytes::from(format!("{group}\0{topic}\0{partition}"))
}

fn parse_commit_key(key: &[u8]) -> Option<(String, String, i32)> {
    let text = std::str::from_utf8(key).ok()?;
    let mut parts = text.split('\0');
    let (group, topic, partition) = (parts.next()?, parts.next()?, parts.next()?);
    Some((group.to_owned(), topic.to_owned(), partition.parse().ok()?))
}

/// The offsets partition's committed offsets, read back from its log when this broker's
/// leadership of it is new. The whole log, not only below the high watermark: a new leader's high
/// watermark lags, but its log holds every acknowledged commit, and what else it holds it will
/// commit, never truncate.
fn cache<'a>(s: &'a mut State, tp: &TopicPartition, epoch: i32) -> &'a mut OffsetCache {
    let stale = s
        .coordinator
        .offsets
        .get(&tp.partition)
        .is_none_or(|c| c.epoch != epoch);
    if stale {
        let mut fresh = OffsetCache {
            epoch,
            ..OffsetCache::default()
        };
        if let Some(p) = s.partitions.get(tp) {
            let bytes = p
                .log
                .read(0, p.log.log_end_offset(), usize::MAX)
                .unwrap_or_default();
            let mut at = 0;
            for h in batch::headers(&bytes).map_while(Result::ok) {
                let one = bytes.slice(at..at + h.size);
                at += h.size;
                if let Some(marker) = h.control {
                    fresh.end_transaction(h.producer_id, marker);
                    continue;
                }
                let producer = h.transactional.then_some(h.producer_id);
                for (offset_at, key, value) in batch::decode(one).unwrap_or_default() {
                    if let Some((slot, offset)) = parse_commit(key.as_deref(), value.as_deref()) {
                        fresh.take(slot, offset, offset_at, producer);
                    }
                }
            }
        }
        s.coordinator.offsets.insert(tp.partition, fresh);
    }
    s.coordinator
        .offsets
        .get_mut(&tp.partition)
        .expect("cached")
}

pub async fn offset_commit(
    shared: &Arc<Shared>,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let member = request.member_id.to_string();
    let generation = request.generation_id_or_member_epoch;
    // (group, topic, partition) and the offset, in the request's order.
    let commits = commit_slots!(group, request);
    let answer = |code: i16| {
        commit_answer!(
            OffsetCommitResponse,
            OffsetCommitResponseTopic,
            OffsetCommitResponsePartition,
            request,
            code
        )
    };
    let (tp, epoch, records) = {
        let mut s = shared.lock();
        let (tp, epoch) = match coordinating(shared, &s, &group) {
            Ok(c) => c,
            Err(code) => return answer(code),
        };
        let stale_allowed = shared.config.bug(bugs::Switch::GroupStaleCommit);
        let g = group_mut(&mut s, &group, epoch);
        // A standalone consumer (no generation, no member) may commit for a group nobody is in.
        let standalone = generation < 0 && member.is_empty() && g.members.is_empty();
        if !standalone && !stale_allowed {
            if let Err(code) = check_member(g, &member, generation) {
                debug!(
                    %group,
                    %member,
                    generation,
                    current = g.generation,
                    error_code = code,
                    "offset commit refused"
                );
                return answer(code);
            }
            if matches!(g.phase, Phase::Joining { .. }) {
                debug!(%group, %member, generation, "offset commit refused: rebalance in progress");
                crate::mark!(CommitDuringRebalance);
                return answer(error_code::REBALANCE_IN_PROGRESS);
            }
        }
        trace!(%group, %member, generation, commits = ?commits, "offset commit accepted");
        if commits.is_empty() {
            return answer(0);
        }
        let entries: Vec<(Option<Bytes>, Bytes)> = commits
            .iter()
            .map(|((g, topic, partition), offset)| {
                (
                    Some(commit_key(g, topic, *partition)),
                    Bytes::from(offset.to_string()),
                )
            })
            .collect();
        for (slot, _) in &commits {
            *s.coordinator.pending.entry(slot.clone()).or_default() += 1;
        }
        (tp, epoch, batch::encode(&entries, shared.now_ms() as i64))
    };
    let written = crate::serve::produce_partition(
        shared,
        &tp,
        -1,
        shared.config.request_timeout_ms as i32,
        records,
    )
    .await;
    let mut s = shared.lock();
    for (slot, _) in &commits {
        if let Some(n) = s.coordinator.pending.get_mut(slot) {
            *n -= 1;
            if *n == 0 {
                s.coordinator.pending.remove(slot);
            }
        }
    }
    let base = match written {
        Ok(base) => base,
        Err(code) => return answer(code),
    };
    if coordinating(shared, &s, &group).is_ok_and(|(_, e)| e == epoch) {
        let c = cache(&mut s, &tp, epoch);
        // The batch's records are the commits in order, from `base` on.
        for ((slot, offset), at) in commits.into_iter().zip(base..) {
            c.take(slot, offset, at, None);
        }
    }
    answer(0)
}

/// Commits offsets inside a producer's transaction: written to the offsets partition as that
/// producer's transactional records, they count once its commit marker is written there (the
/// producer has added the partition with AddOffsetsToTxn, so the coordinator writes one).
pub async fn txn_offset_commit(
    shared: &Arc<Shared>,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    use kafka_protocol::messages::txn_offset_commit_response::{
        TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
    };
    let group = request.group_id.0.to_string();
    let (producer_id, producer_epoch) = (request.producer_id.0, request.producer_epoch);
    let commits = commit_slots!(group, request);
    let answer = |code: i16| {
        commit_answer!(
            TxnOffsetCommitResponse,
            TxnOffsetCommitResponseTopic,
            TxnOffsetCommitResponsePartition,
            request,
            code
        )
    };
    let (tp, epoch) = {
        let mut s = shared.lock();
        let (tp, epoch) = match coordinating(shared, &s, &group) {
            Ok(c) => c,
            Err(code) => return answer(code),
        };
        // KIP-447: a producer that names its consumer's group metadata is fenced by the group's
        // generation, so a member dropped by a rebalance cannot commit what it consumed.
        let g = group_mut(&mut s, &group, epoch);
        if let Err(code) = check_txn_member(g, &request.member_id, request.generation_id) {
            debug!(%group, member = %request.member_id.as_str(), generation = request.generation_id, current = g.generation, error_code = code, "transactional offset commit refused");
            return answer(code);
        }
        // Held for the producer's transaction from before the append, so that a marker written
        // while the append waits for its replicas ends them too (an abort that came first would
        // otherwise leave them to count at the producer's next commit).
        let at = s.partitions.get(&tp).map_or(0, |p| p.log.log_end_offset());
        let c = cache(&mut s, &tp, epoch);
        for ((slot, offset), at) in commits.iter().zip(at..) {
            c.take(slot.clone(), *offset, at, Some(producer_id));
        }
        (tp, epoch)
    };
    if commits.is_empty() {
        return answer(0);
    }
    let entries: Vec<(Option<Bytes>, Bytes)> = (commits.iter())
        .map(|((g, topic, partition), offset)| {
            let key = commit_key(g, topic, *partition);
            (Some(key), Bytes::from(offset.to_string()))
        })
        .collect();
    let mut records = batch::encode(&entries, shared.now_ms() as i64).to_vec();
    batch::set_transactional(&mut records);
    batch::set_producer(&mut records, producer_id, producer_epoch, -1);
    let timeout = shared.config.request_timeout_ms as i32;
    let written =
        crate::serve::produce_partition(shared, &tp, -1, timeout, Bytes::from(records)).await;
    if let Err(code) = written {
        // The producer aborts: what it may have written is ended by the abort marker.
        let mut s = shared.lock();
        if coordinating(shared, &s, &group).is_ok_and(|(_, e)| e == epoch) {
            cache(&mut s, &tp, epoch).drop_transactional(producer_id, &commits);
        }
        return answer(code);
    }
    answer(0)
}

/// A transaction's marker was written on `tp`: if it is an offsets partition this broker leads,
/// the offsets committed in that transaction count now, or never.
pub fn take_marker(shared: &Shared, tp: &TopicPartition, producer_id: i64, marker: batch::Marker) {
    if &*tp.topic != OFFSETS_TOPIC {
        return;
    }
    let mut s = shared.lock();
    let epoch = match s.partitions.get(tp) {
        Some(p) if p.is_leader() => p.leader_epoch,
        _ => return,
    };
    cache(&mut s, tp, epoch).end_transaction(producer_id, marker);
}

pub fn offset_fetch(shared: &Shared, request: OffsetFetchRequest) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    let group = request.group_id.0.to_string();
    let mut s = shared.lock();
    let (tp, epoch) = match coordinating(shared, &s, &group) {
        Ok(c) => c,
        Err(code) => {
            response.error_code = code;
            return response;
        }
    };
    let pending = s.coordinator.pending.clone();
    let c = cache(&mut s, &tp, epoch);
    let wanted: Vec<(String, Vec<i32>)> = match &request.topics {
        Some(topics) => topics
            .iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes.clone()))
            .collect(),
        None => {
            let mut all: BTreeMap<String, Vec<i32>> = BTreeMap::new();
            for (g, t, p) in c.committed.keys() {
                if *g == group {
                    all.entry(t.clone()).or_default().push(*p);
                }
            }
            all.into_iter().collect()
        }
    };
    for (topic, partitions) in wanted {
        let mut rt = OffsetFetchResponseTopic::default();
        rt.name = kafka_protocol::messages::TopicName(str_bytes(&topic));
        for p in partitions {
            let mut rp = OffsetFetchResponsePartition::default();
            rp.partition_index = p;
            let slot = (group.clone(), topic.clone(), p);
            rp.committed_offset = c.committed.get(&slot).map_or(-1, |(offset, _)| *offset);
            if pending.contains_key(&slot) || (request.require_stable && c.unstable(&slot)) {
                rp.error_code = error_code::UNSTABLE_OFFSET_COMMIT;
            }
            rp.metadata = Some(StrBytes::from_static_str(""));
            rt.partitions.push(rp);
        }
        response.topics.push(rt);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_placed_as_kafka_places_them() {
        // Java's "logsim".hashCode() and "hello".hashCode(), printed by a JVM.
        assert_eq!(java_hash("logsim"), -1_097_325_805);
        assert_eq!(partition_for("logsim", 50), 5);
        assert_eq!(java_hash("hello"), 99_162_322);
        assert_eq!(java_hash(""), 0);
        for g in ["a", "group-1", "consumers"] {
            assert!((0..3).contains(&partition_for(g, 3)));
        }
    }

    #[test]
    fn commit_keys_read_back() {
        let k = commit_key("g", "events", 2);
        assert_eq!(
            parse_commit_key(&k),
            Some(("g".to_owned(), "events".to_owned(), 2))
        );
        assert_eq!(parse_commit_key(b"junk"), None);
    }
}
