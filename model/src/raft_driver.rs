//! The controller quorum in motion: election timers, Vote and BeginQuorumEpoch exchanges, the
//! leader's side of the metadata Fetch, and appends by the active controller.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::begin_quorum_epoch_request::{self, BeginQuorumEpochRequest};
use kafka_protocol::messages::begin_quorum_epoch_response::{self, BeginQuorumEpochResponse};
use kafka_protocol::messages::vote_request::{self, VoteRequest};
use kafka_protocol::messages::vote_response::{self, VoteResponse};
use kafka_protocol::messages::{BrokerId as WireBrokerId, TopicName};
use kafka_protocol::protocol::StrBytes;
use tracing::{debug, trace, warn};

use crate::broker::{self, LogRef, Shared, State, TICK};
use crate::env::Event;
use crate::fetch_codec::{FetchQuery, PartitionAnswer, PartitionQuery};
use crate::fetcher::{self, error_code};
use crate::metadata::{MetadataRecord, METADATA_TOPIC};
use crate::raft::QuorumRole;
use crate::wire::Connection;
use crate::{batch, BrokerId, TopicPartition};

const VOTE_VERSION: i16 = 0;
const BEGIN_QUORUM_EPOCH_VERSION: i16 = 0;

fn metadata_topic() -> TopicName {
    TopicName(StrBytes::from_static_str(METADATA_TOPIC))
}

/// Whether every partition a quorum request (Vote, BeginQuorumEpoch) names is the metadata log's:
/// the quorum has that one log, and Kafka answers a request naming another as invalid rather than
/// deciding it.
macro_rules! names_only_the_metadata_log {
    ($request:expr) => {
        ($request.topics.iter()).all(|t| {
            t.topic_name.0.as_str() == METADATA_TOPIC
                && t.partitions.iter().all(|p| p.partition_index == 0)
        })
    };
}

pub async fn run(shared: Arc<Shared>) {
    loop {
        madsim::time::sleep(TICK).await;
        let now = shared.now_ms();
        let timeout = shared.config.election_timeout_ms;
        let mut s = shared.lock();
        match &s.quorum.role {
            QuorumRole::Leader { announced, .. } => {
                if !s.quorum.leader_has_quorum(now, 2 * timeout) {
                    debug!(
                        epoch = s.quorum.epoch,
                        "quorum leader resigns: no fetch from a majority of voters in time"
                    );
                    crate::mark!(QuorumLeaderResigns);
                    s.quorum.resign();
                    s.quorum.reset_election_timer(now, timeout);
                    continue;
                }
                let epoch = s.quorum.epoch;
                if s.metadata_log.epochs().start_offset_of(epoch).is_none() {
                    // The epoch's first record did not get written (a full disk): without it nothing
                    // in this epoch can commit, so keep trying.
                    append_metadata(
                        &shared,
                        &mut s,
                        &[MetadataRecord::LeaderChange {
                            leader: shared.id(),
                            epoch,
                        }],
                    );
                    continue;
                }
                let unannounced: Vec<BrokerId> = s
                    .quorum
                    .voters
                    .iter()
                    .copied()
                    .filter(|v| *v != shared.id() && !announced.contains(v))
                    .collect();
                let epoch = s.quorum.epoch;
                drop(s);
                for voter in unannounced {
                    madsim::task::spawn(begin_quorum_epoch(shared.clone(), voter, epoch));
                }
            }
            QuorumRole::Follower { leader } => {
                let (epoch, leader) = (s.quorum.epoch, *leader);
                if now >= s.quorum.election_deadline_ms {
                    if s.quorum.is_voter() {
                        start_election(&shared, &mut s, now);
                    } else {
                        // An observer that lost touch with its leader looks for the current one.
                        // Its fetcher stops with the role; forgetting it lets the next one start
                        // even if the leader turns out to be the same.
                        debug!(epoch, leader, "observer lost touch with the quorum leader");
                        s.quorum.resign();
                        s.metadata_fetcher = None;
                    }
                } else if s
                    .metadata_fetcher
                    .is_none_or(|(e, l, _)| (e, l) != (epoch, leader))
                {
                    let generation = broker::next_metadata_fetcher(&mut s, epoch, leader);
                    madsim::task::spawn(fetcher::run(shared.clone(), generation));
                }
            }
            QuorumRole::Unattached | QuorumRole::Candidate { .. } => {
                if s.quorum.is_voter() && now >= s.quorum.election_deadline_ms {
                    start_election(&shared, &mut s, now);
                } else if !s.quorum.is_voter() && now >= s.quorum.election_deadline_ms {
                    // Observers get no BeginQuorumEpoch: they ask a voter who leads.
                    s.quorum.reset_election_timer(now, timeout);
                    let voters = &s.quorum.voters;
                    let voter = voters[(now / timeout.max(1)) as usize % voters.len()];
                    let epoch = s.quorum.epoch;
                    trace!(voter, epoch, "observer asks a voter who leads");
                    madsim::task::spawn(find_leader(shared.clone(), voter, epoch));
                }
            }
        }
    }
}

fn start_election(shared: &Arc<Shared>, s: &mut State, now: u64) {
    let epoch = match s.quorum.become_candidate(shared.env.disk.as_ref()) {
        Ok(e) => e,
        Err(_) => return,
    };
    debug!(
        epoch,
        last_epoch = s.metadata_log.latest_epoch(),
        log_end = s.metadata_log.log_end_offset(),
        "election timeout: standing as candidate"
    );
    s.quorum
        .reset_election_timer(now, shared.config.election_timeout_ms);
    shared.emit(Event::QuorumCandidate { epoch });
    let last = (
        s.metadata_log.latest_epoch(),
        s.metadata_log.log_end_offset(),
    );
    if s.quorum.count_vote(epoch, shared.id()) {
        become_leader(shared, s);
        return;
    }
    for voter in s.quorum.voters.clone() {
        if voter != shared.id() {
            madsim::task::spawn(request_vote(shared.clone(), voter, epoch, last));
        }
    }
}

fn become_leader(shared: &Arc<Shared>, s: &mut State) {
    s.quorum.become_leader(shared.now_ms());
    let epoch = s.quorum.epoch;
    debug!(epoch, "won the election: quorum leader");
    s.metadata_fetcher = None;
    shared.emit(Event::QuorumLeader { epoch });
    append_metadata(
        shared,
        s,
        &[MetadataRecord::LeaderChange {
            leader: shared.id(),
            epoch,
        }],
    );
}

/// Appends records to the metadata log as quorum leader, in one batch so they commit together.
pub fn append_metadata(
    shared: &Arc<Shared>,
    s: &mut State,
    records: &[MetadataRecord],
) -> Option<i64> {
    if !s.quorum.is_leader() || records.is_empty() {
        return None;
    }
    let entries: Vec<(Option<Bytes>, Bytes)> = records.iter().map(|r| (None, r.encode())).collect();
    let bytes = batch::encode(&entries, shared.now_ms() as i64);
    let epoch = s.quorum.epoch;
    // A full disk refuses the append: the controller decides nothing until it can write.
    let (_, last) = match s.metadata_log.append_as_leader(&bytes, epoch) {
        Ok(appended) => appended,
        Err(error) => {
            warn!(epoch, records = records.len(), %error, "cannot append to the metadata log");
            crate::mark!(MetadataAppendFails);
            return None;
        }
    };
    trace!(
        epoch,
        records = records.len(),
        last_offset = last,
        "appended metadata"
    );
    let shared2 = shared.clone();
    madsim::task::spawn(async move {
        if broker::sync_log(&shared2, &LogRef::Metadata).await.is_ok() {
            let mut guard = shared2.lock();
            let s = &mut *guard;
            if s.quorum.advance_high_watermark(&s.metadata_log) {
                broker::apply_committed(&shared2, s);
            }
            shared2.notify();
        }
    });
    shared.notify();
    Some(last)
}

async fn request_vote(shared: Arc<Shared>, voter: BrokerId, epoch: i32, last: (i32, i64)) {
    let Some(address) = shared.config.address(voter) else {
        return;
    };
    let mut p = vote_request::PartitionData::default();
    p.partition_index = 0;
    p.replica_epoch = epoch;
    p.replica_id = WireBrokerId(shared.id());
    p.last_offset_epoch = last.0;
    p.last_offset = last.1;
    let mut t = vote_request::TopicData::default();
    t.topic_name = metadata_topic();
    t.partitions = vec![p];
    let mut request = VoteRequest::default();
    request.topics = vec![t];
    let timeout = shared.request_timeout();
    let Ok(mut conn) =
        Connection::connect(address, &format!("voter-{}", shared.id()), timeout).await
    else {
        return;
    };
    let Ok(response) = conn.call(&request, VOTE_VERSION, timeout).await else {
        return;
    };
    let Some(p) = response.topics.first().and_then(|t| t.partitions.first()) else {
        return;
    };
    let mut s = shared.lock();
    trace!(voter, epoch, granted = p.vote_granted, "vote answered");
    if p.leader_epoch > s.quorum.epoch {
        let leader = (p.leader_id.0 >= 0).then_some(p.leader_id.0);
        let _ = s
            .quorum
            .observe(shared.env.disk.as_ref(), p.leader_epoch, leader);
        return;
    }
    if p.vote_granted && s.quorum.count_vote(epoch, voter) {
        become_leader(&shared, &mut s);
    }
}

async fn begin_quorum_epoch(shared: Arc<Shared>, voter: BrokerId, epoch: i32) {
    let Some(address) = shared.config.address(voter) else {
        return;
    };
    let mut p = begin_quorum_epoch_request::PartitionData::default();
    p.partition_index = 0;
    p.leader_id = WireBrokerId(shared.id());
    p.leader_epoch = epoch;
    let mut t = begin_quorum_epoch_request::TopicData::default();
    t.topic_name = metadata_topic();
    t.partitions = vec![p];
    let mut request = BeginQuorumEpochRequest::default();
    request.topics = vec![t];
    let timeout = shared.request_timeout();
    let Ok(mut conn) =
        Connection::connect(address, &format!("leader-{}", shared.id()), timeout).await
    else {
        return;
    };
    if let Ok(response) = conn
        .call(&request, BEGIN_QUORUM_EPOCH_VERSION, timeout)
        .await
    {
        let ok = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .is_some_and(|p| p.error_code == error_code::NONE);
        let mut s = shared.lock();
        if let (true, QuorumRole::Leader { announced, .. }) = (ok, &mut s.quorum.role) {
            announced.insert(voter);
        }
    }
}

/// Asks `voter` who leads the quorum, with a metadata fetch it will refuse or answer; either way its
/// answer names the current leader and epoch.
async fn find_leader(shared: Arc<Shared>, voter: BrokerId, epoch: i32) {
    let Some(address) = shared.config.address(voter) else {
        return;
    };
    let request = FetchQuery::single(
        shared.id(),
        TopicPartition::new(METADATA_TOPIC, 0),
        epoch,
        shared.lock().metadata_log.durable_end_offset(),
        -1,
        0,
        0,
    );
    let timeout = shared.request_timeout();
    let Ok(mut conn) =
        Connection::connect(address, &format!("observer-{}", shared.id()), timeout).await
    else {
        return;
    };
    let Ok(Some(p)) = conn.fetch_one(&request, timeout).await else {
        return;
    };
    let (leader, leader_epoch) = p.current_leader;
    if leader >= 0 {
        let mut s = shared.lock();
        if s.quorum.leader().is_none()
            && s.quorum
                .observe(shared.env.disk.as_ref(), leader_epoch, Some(leader))
                .unwrap_or(false)
        {
            let (now, timeout) = (shared.now_ms(), shared.config.election_timeout_ms);
            s.quorum.reset_election_timer(now, timeout);
            debug!(
                epoch = leader_epoch,
                leader, voter, "observer found the quorum leader"
            );
            shared.emit(Event::QuorumFollower {
                epoch: leader_epoch,
                leader,
            });
        }
    }
}

pub fn handle_vote(shared: &Arc<Shared>, request: VoteRequest) -> VoteResponse {
    let mut response = VoteResponse::default();
    if !names_only_the_metadata_log!(request) {
        response.error_code = error_code::INVALID_REQUEST;
        return response;
    }
    for topic in request.topics {
        let mut t = vote_response::TopicData::default();
        t.topic_name = topic.topic_name;
        for p in topic.partitions {
            let mut s = shared.lock();
            let own_last = (
                s.metadata_log.latest_epoch(),
                s.metadata_log.log_end_offset(),
            );
            let candidate = p.replica_id.0;
            let granted = s
                .quorum
                .grant_vote(
                    shared.env.disk.as_ref(),
                    p.replica_epoch,
                    candidate,
                    (p.last_offset_epoch, p.last_offset),
                    own_last,
                )
                .unwrap_or(false);
            if granted {
                let (now, timeout) = (shared.now_ms(), shared.config.election_timeout_ms);
                s.quorum.reset_election_timer(now, timeout);
            }
            debug!(
                epoch = p.replica_epoch,
                candidate,
                granted,
                own_epoch = s.quorum.epoch,
                voted_for = ?s.quorum.voted_for,
                "vote requested"
            );
            shared.emit(Event::QuorumVote {
                epoch: p.replica_epoch,
                candidate,
                granted,
            });
            let mut r = vote_response::PartitionData::default();
            r.partition_index = p.partition_index;
            r.leader_id = WireBrokerId(s.quorum.leader().unwrap_or(-1));
            r.leader_epoch = s.quorum.epoch;
            r.vote_granted = granted;
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}

pub fn handle_begin_quorum_epoch(
    shared: &Arc<Shared>,
    request: BeginQuorumEpochRequest,
) -> BeginQuorumEpochResponse {
    let mut response = BeginQuorumEpochResponse::default();
    if !names_only_the_metadata_log!(request) {
        response.error_code = error_code::INVALID_REQUEST;
        return response;
    }
    for topic in request.topics {
        let mut t = begin_quorum_epoch_response::TopicData::default();
        t.topic_name = topic.topic_name;
        for p in topic.partitions {
            let mut s = shared.lock();
            let (epoch, leader) = (p.leader_epoch, p.leader_id.0);
            let mut r = begin_quorum_epoch_response::PartitionData::default();
            r.partition_index = p.partition_index;
            if epoch < s.quorum.epoch {
                r.error_code = error_code::FENCED_LEADER_EPOCH;
            } else if s
                .quorum
                .observe(shared.env.disk.as_ref(), epoch, Some(leader))
                .unwrap_or(false)
            {
                let (now, timeout) = (shared.now_ms(), shared.config.election_timeout_ms);
                s.quorum.reset_election_timer(now, timeout);
                debug!(
                    epoch,
                    leader, "following the new quorum leader (BeginQuorumEpoch)"
                );
                shared.emit(Event::QuorumFollower { epoch, leader });
            }
            r.leader_id = WireBrokerId(s.quorum.leader().unwrap_or(-1));
            r.leader_epoch = s.quorum.epoch;
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}

/// The quorum leader's answer to a metadata fetch: fence stale epochs, report divergence, note the
/// fetcher's position (a voter's counts toward the commit), and return records.
pub fn fetch_metadata(
    shared: &Arc<Shared>,
    s: &mut State,
    replica: BrokerId,
    p: &PartitionQuery,
) -> (PartitionAnswer, bool) {
    let mut out = PartitionAnswer::new(p.tp.partition);
    out.current_leader = (s.quorum.leader().unwrap_or(-1), s.quorum.epoch);
    if !s.quorum.is_leader() {
        out.error_code = error_code::NOT_LEADER_OR_FOLLOWER;
        return (out, true);
    }
    if p.current_leader_epoch < s.quorum.epoch {
        trace!(
            replica,
            epoch = p.current_leader_epoch,
            "metadata fetch from an old epoch fenced"
        );
        out.error_code = error_code::FENCED_LEADER_EPOCH;
        return (out, true);
    }
    if p.current_leader_epoch > s.quorum.epoch {
        out.error_code = error_code::UNKNOWN_LEADER_EPOCH;
        return (out, true);
    }
    if let Some(diverging) =
        crate::serve::divergence(&s.metadata_log, p.fetch_offset, p.last_fetched_epoch, false)
    {
        debug!(
            replica,
            fetch_offset = p.fetch_offset,
            last_fetched_epoch = p.last_fetched_epoch,
            diverging_epoch = diverging.epoch,
            end_offset = diverging.end_offset,
            "metadata fetch diverges: the follower must truncate"
        );
        out.diverging_epoch = diverging;
        out.high_watermark = s.quorum.advertised_high_watermark(&s.metadata_log);
        return (out, true);
    }
    let now = shared.now_ms();
    if let QuorumRole::Leader {
        positions,
        last_fetch_ms,
        announced,
    } = &mut s.quorum.role
    {
        if s.quorum.voters.contains(&replica) {
            positions.insert(replica, p.fetch_offset);
            last_fetch_ms.insert(replica, now);
            announced.insert(replica);
        }
    }
    if s.quorum.advance_high_watermark(&s.metadata_log) {
        broker::apply_committed(shared, s);
        shared.notify();
    }
    let records = s
        .metadata_log
        .read(
            p.fetch_offset,
            i64::MAX,
            p.partition_max_bytes.max(1) as usize,
        )
        .unwrap_or_default();
    let has_data = !records.is_empty();
    out.high_watermark = (s.quorum).high_watermark_for(&s.metadata_log, p.fetch_offset);
    out.records = records;
    (out, has_data)
}
