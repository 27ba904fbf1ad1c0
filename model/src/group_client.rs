//! A consumer group member in miniature: finds its group's coordinator, joins (the leader assigns
//! partitions), syncs, heartbeats, commits and fetches offsets, in Kafka's wire protocol. The
//! assignment itself is the caller's: the coordinator passes assignments through unread.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    FindCoordinatorRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    OffsetCommitRequest, OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use crate::group::error_code as group_error;
use crate::wire::Connection;
use crate::TopicPartition;

const FIND_COORDINATOR_VERSION: i16 = 1;
const JOIN_GROUP_VERSION: i16 = 3;
const SYNC_GROUP_VERSION: i16 = 3;
const HEARTBEAT_VERSION: i16 = 3;
const LEAVE_GROUP_VERSION: i16 = 2;
const OFFSET_COMMIT_VERSION: i16 = 6;
/// OffsetFetch v7 asks for stable offsets: none with a transactional commit still open (KIP-447).
const OFFSET_FETCH_VERSION: i16 = 7;

/// Why a group call did not succeed, and what the member must do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupError {
    /// The generation is over (a rebalance, an eviction): join again.
    Rejoin(i16),
    /// The coordinator is gone or moved, or the call failed on the way: find it and try again.
    Retry(String),
}

impl std::fmt::Display for GroupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupError::Rejoin(code) => write!(f, "rejoin (error {code})"),
            GroupError::Retry(why) => write!(f, "retry ({why})"),
        }
    }
}

/// What joining gave: the generation, and for the leader every member with its metadata.
#[derive(Clone, Debug)]
pub struct Joined {
    pub generation: i32,
    pub protocol: String,
    pub leader: bool,
    pub members: Vec<(String, Bytes)>,
}

pub struct GroupMember {
    bootstrap: Vec<SocketAddr>,
    next_bootstrap: usize,
    client_id: String,
    timeout: Duration,
    pub group: String,
    pub member_id: String,
    pub generation: i32,
    pub session_timeout_ms: i32,
    coordinator: Option<Connection>,
}

impl GroupMember {
    pub fn new(
        bootstrap: Vec<SocketAddr>,
        client_id: impl Into<String>,
        group: impl Into<String>,
        timeout: Duration,
        session_timeout_ms: i32,
    ) -> Self {
        assert!(!bootstrap.is_empty());
        GroupMember {
            bootstrap,
            next_bootstrap: 0,
            client_id: client_id.into(),
            timeout,
            group: group.into(),
            member_id: String::new(),
            generation: -1,
            session_timeout_ms,
            coordinator: None,
        }
    }

    fn group_id(&self) -> GroupId {
        GroupId(StrBytes::from_string(self.group.clone()))
    }

    /// An error code from the coordinator, as what to do next.
    fn judge(&mut self, code: i16) -> Result<(), GroupError> {
        let judged = self.judge_code(code);
        if let Err(what) = &judged {
            debug!(
                group = %self.group,
                member = %self.member_id,
                generation = self.generation,
                error_code = code,
                next = %what,
                "group call refused"
            );
        }
        judged
    }

    fn judge_code(&mut self, code: i16) -> Result<(), GroupError> {
        match code {
            0 => Ok(()),
            group_error::NOT_COORDINATOR | group_error::COORDINATOR_NOT_AVAILABLE => {
                self.coordinator = None;
                Err(GroupError::Retry(format!("coordinator error {code}")))
            }
            group_error::UNKNOWN_MEMBER_ID => {
                self.member_id.clear();
                self.generation = -1;
                Err(GroupError::Rejoin(code))
            }
            group_error::ILLEGAL_GENERATION | group_error::REBALANCE_IN_PROGRESS => {
                Err(GroupError::Rejoin(code))
            }
            group_error::UNSTABLE_OFFSET_COMMIT => {
                Err(GroupError::Retry("a commit is still being written".into()))
            }
            other => {
                self.coordinator = None;
                Err(GroupError::Retry(format!("error {other}")))
            }
        }
    }

    async fn coordinator(&mut self) -> Result<&mut Connection, GroupError> {
        if self.coordinator.is_none() {
            let address = self.bootstrap[self.next_bootstrap % self.bootstrap.len()];
            self.next_bootstrap += 1;
            let (conn, node, at) =
                connect_to_coordinator(address, &self.client_id, self.timeout, &self.group, 0)
                    .await
                    .map_err(GroupError::Retry)?;
            debug!(
                group = %self.group,
                coordinator = node,
                %at,
                "found the group coordinator"
            );
            self.coordinator = Some(conn);
        }
        Ok(self.coordinator.as_mut().expect("connected"))
    }

    /// Sends `request` to the coordinator; a failed exchange drops the connection.
    async fn call<R: kafka_protocol::protocol::Request>(
        &mut self,
        request: &R,
        version: i16,
        limit: Duration,
    ) -> Result<R::Response, GroupError> {
        let conn = self.coordinator().await?;
        match conn.call(request, version, limit).await {
            Ok(r) => Ok(r),
            Err(e) => {
                debug!(group = %self.group, error = %e, "coordinator call failed: will find it again");
                self.coordinator = None;
                Err(GroupError::Retry(e.to_string()))
            }
        }
    }

    /// Joins (or rejoins) the group with `protocols`; waits for the rebalance to finish.
    pub async fn join(&mut self, protocols: &[(&str, Bytes)]) -> Result<Joined, GroupError> {
        let mut request = JoinGroupRequest::default();
        request.group_id = self.group_id();
        request.session_timeout_ms = self.session_timeout_ms;
        request.rebalance_timeout_ms = self.session_timeout_ms;
        request.member_id = StrBytes::from_string(self.member_id.clone());
        request.protocol_type = StrBytes::from_static_str("consumer");
        request.protocols = protocols
            .iter()
            .map(|(name, metadata)| {
                let mut p = JoinGroupRequestProtocol::default();
                p.name = StrBytes::from_string((*name).to_owned());
                p.metadata = metadata.clone();
                p
            })
            .collect();
        // The coordinator holds a join until every member has joined.
        let limit = self.timeout + Duration::from_millis(self.session_timeout_ms as u64 + 1_000);
        let response = self.call(&request, JOIN_GROUP_VERSION, limit).await?;
        if !response.member_id.is_empty() {
            self.member_id = response.member_id.to_string();
        }
        self.judge(response.error_code)?;
        self.generation = response.generation_id;
        debug!(
            group = %self.group,
            member = %self.member_id,
            generation = self.generation,
            leader = %response.leader.as_str(),
            members = response.members.len(),
            "joined the group"
        );
        Ok(Joined {
            generation: response.generation_id,
            protocol: response
                .protocol_name
                .map(|p| p.to_string())
                .unwrap_or_default(),
            leader: response.leader.as_str() == self.member_id,
            members: response
                .members
                .into_iter()
                .map(|m| (m.member_id.to_string(), m.metadata))
                .collect(),
        })
    }

    /// Ends a join: the leader hands in every member's assignment; each member gets its own.
    pub async fn sync(&mut self, assignments: Vec<(String, Bytes)>) -> Result<Bytes, GroupError> {
        let mut request = SyncGroupRequest::default();
        request.group_id = self.group_id();
        request.generation_id = self.generation;
        request.member_id = StrBytes::from_string(self.member_id.clone());
        request.assignments = assignments
            .into_iter()
            .map(|(member, assignment)| {
                let mut a = SyncGroupRequestAssignment::default();
                a.member_id = StrBytes::from_string(member);
                a.assignment = assignment;
                a
            })
            .collect();
        let response = self
            .call(&request, SYNC_GROUP_VERSION, self.timeout)
            .await?;
        self.judge(response.error_code)?;
        Ok(response.assignment)
    }

    pub async fn heartbeat(&mut self) -> Result<(), GroupError> {
        let mut request = HeartbeatRequest::default();
        request.group_id = self.group_id();
        request.generation_id = self.generation;
        request.member_id = StrBytes::from_string(self.member_id.clone());
        let response = self.call(&request, HEARTBEAT_VERSION, self.timeout).await?;
        self.judge(response.error_code)
    }

    /// Leaves the group, so that it rebalances at once rather than after a session timeout.
    pub async fn leave(&mut self) {
        let mut request = LeaveGroupRequest::default();
        request.group_id = self.group_id();
        request.member_id = StrBytes::from_string(self.member_id.clone());
        let _ = self.call(&request, LEAVE_GROUP_VERSION, self.timeout).await;
        self.member_id.clear();
        self.generation = -1;
    }

    /// Commits `offsets` (each the next offset to read) in this member's generation.
    pub async fn commit(&mut self, offsets: &[(TopicPartition, i64)]) -> Result<(), GroupError> {
        let by_topic = by_topic(offsets.iter().map(|(tp, offset)| (tp, *offset)));
        let mut request = OffsetCommitRequest::default();
        request.group_id = self.group_id();
        request.generation_id_or_member_epoch = self.generation;
        request.member_id = StrBytes::from_string(self.member_id.clone());
        request.topics = by_topic
            .into_iter()
            .map(|(topic, partitions)| {
                let mut t = OffsetCommitRequestTopic::default();
                t.name = TopicName(StrBytes::from_string(topic.to_owned()));
                t.partitions = partitions
                    .into_iter()
                    .map(|(partition, offset)| {
                        let mut p = OffsetCommitRequestPartition::default();
                        p.partition_index = partition;
                        p.committed_offset = offset;
                        p
                    })
                    .collect();
                t
            })
            .collect();
        let response = self
            .call(&request, OFFSET_COMMIT_VERSION, self.timeout)
            .await?;
        let code = response
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.error_code)
            .find(|c| *c != 0)
            .unwrap_or(0);
        self.judge(code)
    }

    /// The group's committed offsets of `partitions` (absent where nothing was committed).
    pub async fn committed(
        &mut self,
        partitions: &[TopicPartition],
    ) -> Result<BTreeMap<TopicPartition, i64>, GroupError> {
        let by_topic = by_topic(partitions.iter().map(|tp| (tp, ())));
        let mut request = OffsetFetchRequest::default();
        request.group_id = self.group_id();
        request.require_stable = true;
        request.topics = Some(
            by_topic
                .into_iter()
                .map(|(topic, partition_indexes)| {
                    let mut t = OffsetFetchRequestTopic::default();
                    t.name = TopicName(StrBytes::from_string(topic.to_owned()));
                    t.partition_indexes = partition_indexes.into_iter().map(|(p, ())| p).collect();
                    t
                })
                .collect(),
        );
        let response = self
            .call(&request, OFFSET_FETCH_VERSION, self.timeout)
            .await?;
        self.judge(response.error_code)?;
        let mut out = BTreeMap::new();
        for t in response.topics {
            for p in t.partitions {
                self.judge(p.error_code)?;
                if p.committed_offset >= 0 {
                    out.insert(
                        TopicPartition::new(t.name.0.as_str(), p.partition_index),
                        p.committed_offset,
                    );
                }
            }
        }
        Ok(out)
    }
}

/// Partitions grouped by topic, as requests list them: topic -> (partition, what goes with it).
fn by_topic<'a, T>(
    items: impl Iterator<Item = (&'a TopicPartition, T)>,
) -> BTreeMap<&'a str, Vec<(i32, T)>> {
    let mut out: BTreeMap<&str, Vec<(i32, T)>> = BTreeMap::new();
    for (tp, with) in items {
        out.entry(&*tp.topic)
            .or_default()
            .push((tp.partition, with));
    }
    out
}

/// How a group's leader splits partitions among members (sorted by member id).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Contiguous runs, the first members taking one more when they do not divide evenly.
    Range,
    /// Partition i to member i mod n.
    RoundRobin,
}

impl Strategy {
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Range => "range",
            Strategy::RoundRobin => "roundrobin",
        }
    }

    pub fn by_name(name: &str) -> Option<Strategy> {
        [Strategy::Range, Strategy::RoundRobin]
            .into_iter()
            .find(|s| s.name() == name)
    }

    /// Each member's partitions of `0..partitions`.
    pub fn assign(self, members: &[String], partitions: i32) -> BTreeMap<String, Vec<i32>> {
        let mut sorted: Vec<&String> = members.iter().collect();
        sorted.sort();
        let mut out: BTreeMap<String, Vec<i32>> =
            sorted.iter().map(|m| ((*m).clone(), Vec::new())).collect();
        let n = sorted.len() as i32;
        if n == 0 {
            return out;
        }
        for p in 0..partitions {
            let member = match self {
                Strategy::RoundRobin => p % n,
                Strategy::Range => {
                    let (base, extra) = (partitions / n, partitions % n);
                    // The first `extra` members take base + 1.
                    let cut = extra * (base + 1);
                    if p < cut {
                        p / (base + 1)
                    } else {
                        extra + (p - cut) / base.max(1)
                    }
                }
            };
            out.get_mut(sorted[member as usize])
                .expect("a member")
                .push(p);
        }
        out
    }
}

/// An assignment on the wire: partition numbers, comma-separated.
pub fn encode_assignment(partitions: &[i32]) -> Bytes {
    Bytes::from(
        partitions
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(","),
    )
}

pub fn decode_assignment(bytes: &[u8]) -> Vec<i32> {
    std::str::from_utf8(bytes)
        .unwrap_or("")
        .split(',')
        .filter_map(|p| p.trim().parse().ok())
        .collect()
}

/// Asks the broker at `bootstrap` which broker coordinates `key` (a group for `key_type` 0, a
/// transactional id for 1) and connects to it: the connection, the broker's id and address.
pub(crate) async fn connect_to_coordinator(
    bootstrap: SocketAddr,
    client_id: &str,
    timeout: Duration,
    key: &str,
    key_type: i8,
) -> Result<(Connection, i32, SocketAddr), String> {
    let mut conn = Connection::connect(bootstrap, client_id, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = FindCoordinatorRequest::default();
    request.key = StrBytes::from_string(key.to_owned());
    request.key_type = key_type;
    let found = conn
        .call(&request, FIND_COORDINATOR_VERSION, timeout)
        .await
        .map_err(|e| e.to_string())?;
    if found.error_code != 0 {
        return Err(format!("no coordinator (error {})", found.error_code));
    }
    let ip = found
        .host
        .as_str()
        .parse()
        .map_err(|_| format!("coordinator host {}", found.host.as_str()))?;
    let at = SocketAddr::new(ip, found.port as u16);
    let conn = Connection::connect(at, client_id, timeout)
        .await
        .map_err(|e| e.to_string())?;
    Ok((conn, found.node_id.0, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_strategies_give_every_partition_to_exactly_one_member() {
        let members: Vec<String> = ["c", "a", "b"].iter().map(|s| s.to_string()).collect();
        for strategy in [Strategy::Range, Strategy::RoundRobin] {
            for partitions in [1, 2, 3, 7, 10] {
                let assigned = strategy.assign(&members, partitions);
                let mut all: Vec<i32> = assigned.values().flatten().copied().collect();
                all.sort();
                assert_eq!(all, (0..partitions).collect::<Vec<_>>(), "{strategy:?}");
            }
        }
        let range = Strategy::Range.assign(&members, 7);
        assert_eq!(range["a"], vec![0, 1, 2]);
        assert_eq!(range["b"], vec![3, 4]);
        assert_eq!(range["c"], vec![5, 6]);
        let rr = Strategy::RoundRobin.assign(&members, 7);
        assert_eq!(rr["a"], vec![0, 3, 6]);
        assert_eq!(
            decode_assignment(&encode_assignment(&[0, 3, 6])),
            vec![0, 3, 6]
        );
        assert!(decode_assignment(b"").is_empty());
    }
}
