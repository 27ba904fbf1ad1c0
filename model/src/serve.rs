//! The broker's request handlers: one connection at a time, one request at a time, answered in
//! order, as Kafka does.

use std::sync::Arc;
use std::time::Duration;

use crate::net::TcpStream;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset as LeaderEpochEnd, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId as WireBrokerId, InitProducerIdResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse,
    OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse, RequestHeader, RequestKind,
    ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use crate::batch;
use crate::broker::{self, LogRef, Shared, State, Watch};
use crate::deadline::Deadline;
use crate::fault_point::{self, Point};
use crate::fetch_codec::{self, FetchQuery, PartitionAnswer, PartitionQuery};
use crate::fetch_session::cache::Context;
use crate::fetcher::error_code;
use crate::group;
use crate::log::epoch_cache::EpochEnd;
use crate::log::{AppendError, Log, Sequence};
use crate::metadata::{topic_id, METADATA_TOPIC};
use crate::partition::Role;
use crate::produce_codec::{self, ProduceAnswer, ProduceQuery};
use crate::wire::{
    decode_request, decode_request_header, encode_response, finish_frame, start_response,
    write_frame, FrameReader, Undecodable,
};
use crate::{controller, raft_driver, BrokerId, TopicPartition};
use bytes::BytesMut;
use tracing::{debug, trace, warn};

/// The APIs and versions this broker answers.
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    // From v0, though v0-2 carry the old message format this broker refuses: librdkafka turns
    // compression on only for a broker that lists the oldest versions.
    (ApiKey::Produce, 0, 9),
    (
        ApiKey::Fetch,
        *fetch_codec::VERSIONS.start(),
        *fetch_codec::VERSIONS.end(),
    ),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 1, 12),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::Vote, 0, 0),
    (ApiKey::BeginQuorumEpoch, 0, 0),
    (ApiKey::AlterPartition, 3, 3),
    (ApiKey::BrokerHeartbeat, 0, 0),
    (ApiKey::InitProducerId, 0, 4),
    (ApiKey::FindCoordinator, 0, 3),
    (ApiKey::JoinGroup, 0, 3),
    (ApiKey::SyncGroup, 0, 3),
    (ApiKey::Heartbeat, 0, 3),
    (ApiKey::LeaveGroup, 0, 2),
    (ApiKey::OffsetCommit, 2, 7),
    (ApiKey::OffsetFetch, 1, 7),
    (ApiKey::AddPartitionsToTxn, 0, 4),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::WriteTxnMarkers, 1, 1),
    (ApiKey::TxnOffsetCommit, 0, 3),
];

/// What a connection keeps from one request to the next, so that the requests that carry records
/// reuse their room: a follower fetches the same partition again and again.
#[derive(Default)]
struct Kept {
    fetch: FetchQuery,
    answers: Vec<PartitionAnswer>,
    /// The answers that go out: all of them, or an incremental fetch's news.
    chosen: Vec<usize>,
    /// What the last fetch waited for, shared with its listener.
    moves: Option<Arc<[(TopicPartition, Watch)]>>,
    produce: ProduceQuery,
    produced: Vec<ProduceAnswer>,
}

pub async fn connection(shared: Arc<Shared>, mut stream: TcpStream) {
    let mut reader = FrameReader::default();
    let mut out = BytesMut::new();
    let mut kept = Kept::default();
    loop {
        let Ok(frame) = reader.next(&mut stream).await else {
            return;
        };
        let decoded = decode_request_header(frame);
        if let Ok((header, _)) = &decoded {
            trace!(
                api = %api_name(header.request_api_key),
                version = header.request_api_version,
                correlation_id = header.correlation_id,
                client = header.client_id.as_deref().unwrap_or(""),
                "request"
            );
        }
        let reply = match decoded {
            Ok((header, _)) if !supported(&header) => refuse(header, &mut out),
            Ok((header, mut body)) if header.request_api_key == ApiKey::Fetch as i16 => {
                let version = header.request_api_version;
                match fetch_codec::decode_request(&mut body, version, &mut kept.fetch) {
                    Ok(()) => {
                        let session = answer_fetch(&shared, &mut kept).await;
                        let (query, answers) = (&kept.fetch.partitions, &kept.answers);
                        respond_by_hand(&header, &mut out, |out| {
                            let chosen = &kept.chosen;
                            fetch_codec::encode_response(
                                session, query, answers, chosen, version, out,
                            )
                        })
                    }
                    Err(_) => refuse(header, &mut out),
                }
            }
            Ok((header, mut body)) if header.request_api_key == ApiKey::Produce as i16 => {
                let version = header.request_api_version;
                match produce_codec::decode_request(&mut body, version, &mut kept.produce) {
                    Ok(()) => {
                        let (query, answers) = (&mut kept.produce, &mut kept.produced);
                        produce(&shared, query, answers).await;
                        if query.acks == 0 {
                            Reply::Nothing
                        } else {
                            respond_by_hand(&header, &mut out, |out| {
                                produce_codec::encode_response(query, answers, version, out)
                            })
                        }
                    }
                    Err(_) => refuse(header, &mut out),
                }
            }
            Ok((header, body)) => match decode_request(header, body) {
                Ok((header, request)) => {
                    match handle(&shared, request, header.request_api_version).await {
                        Some(response) => respond(&header, response, &mut out),
                        None => Reply::Nothing,
                    }
                }
                Err(Undecodable {
                    header: Some(header),
                    ..
                }) => refuse(header, &mut out),
                Err(_) => {
                    debug!("undecodable request; closing the connection");
                    Reply::Close
                }
            },
            // Not even a header: nothing to answer to.
            Err(_) => {
                debug!("request without a readable header; closing the connection");
                Reply::Close
            }
        };
        match reply {
            Reply::Send => {
                if fault_point::fires(Point::DropReply) {
                    debug!("fault point: the request took effect, its answer is dropped");
                    return;
                }
                if fault_point::fires(Point::DelayReply) {
                    madsim::time::sleep(fault_point::delay(Duration::from_millis(500))).await;
                }
                if write_frame(&mut stream, &out).await.is_err() {
                    return;
                }
            }
            Reply::Nothing => {}
            Reply::Close => return,
        }
    }
}

/// A request's API by name, for the log: `Fetch`, or the number of one this broker does not know.
fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|()| format!("api {key}"), |api| format!("{api:?}"))
}

/// What a connection does after a request.
enum Reply {
    /// Send the answer framed in the connection's buffer.
    Send,
    /// Nothing to send (a produce with acks=0).
    Nothing,
    Close,
}

/// Frames `response`, fitted to the version of `header`'s request.
fn respond(header: &RequestHeader, mut response: ResponseKind, out: &mut BytesMut) -> Reply {
    crate::versions::fit(&mut response, header.request_api_version);
    match encode_response(header, &response, out) {
        Ok(()) => Reply::Send,
        Err(_) => Reply::Close,
    }
}

/// Frames an answer whose body `body` writes by hand.
fn respond_by_hand(
    header: &RequestHeader,
    out: &mut BytesMut,
    body: impl FnOnce(&mut BytesMut),
) -> Reply {
    if start_response(header, out).is_err() {
        return Reply::Close;
    }
    body(out);
    finish_frame(out);
    Reply::Send
}

/// Answers a request this broker does not support or cannot read.
fn refuse(header: RequestHeader, out: &mut BytesMut) -> Reply {
    match api_versions_refusal(header) {
        Some((header, response)) => respond(&header, response, out),
        None => Reply::Close,
    }
}

/// Whether the request's API and version are among those this broker advertises.
fn supported(header: &RequestHeader) -> bool {
    SUPPORTED.iter().any(|(key, min, max)| {
        *key as i16 == header.request_api_key && (*min..=*max).contains(&header.request_api_version)
    })
}

/// A client that asks for API versions in a version this broker does not know gets, as Kafka
/// answers, the version-0 response with UNSUPPORTED_VERSION and the list of what it does support,
/// so that it can ask again. Any other unsupported or unreadable request closes the connection.
fn api_versions_refusal(mut header: RequestHeader) -> Option<(RequestHeader, ResponseKind)> {
    if header.request_api_key != ApiKey::ApiVersions as i16 {
        return None;
    }
    header.request_api_version = 0;
    let mut response = api_versions();
    response.error_code = error_code::UNSUPPORTED_VERSION;
    Some((header, ResponseKind::ApiVersions(response)))
}

/// Answers one request; `None` for a request that gets no answer (a produce with acks=0).
async fn handle(shared: &Arc<Shared>, request: RequestKind, version: i16) -> Option<ResponseKind> {
    use crate::txn::{coordinator as txn, markers};
    if let RequestKind::EndTxn(_) = &request {
        hold_txn_request(Point::DelayEndTxn).await;
    }
    Some(match request {
        RequestKind::Metadata(r) => ResponseKind::Metadata(metadata(shared, r)),
        RequestKind::ListOffsets(r) => ResponseKind::ListOffsets(list_offsets(shared, r)),
        RequestKind::OffsetForLeaderEpoch(r) => {
            ResponseKind::OffsetForLeaderEpoch(offset_for_leader_epoch(shared, r))
        }
        RequestKind::ApiVersions(_) => ResponseKind::ApiVersions(api_versions()),
        RequestKind::InitProducerId(r) => match r.transactional_id.clone() {
            Some(id) => {
                let id = id.0.to_string();
                ResponseKind::InitProducerId(txn::init_producer_id(shared, r, id).await)
            }
            None => ResponseKind::InitProducerId(init_producer_id(shared)),
        },
        RequestKind::AddPartitionsToTxn(r) => {
            ResponseKind::AddPartitionsToTxn(txn::add_partitions_to_txn(shared, r, version).await)
        }
        RequestKind::AddOffsetsToTxn(r) => {
            ResponseKind::AddOffsetsToTxn(txn::add_offsets_to_txn(shared, r).await)
        }
        RequestKind::EndTxn(r) => ResponseKind::EndTxn(txn::end_txn(shared, r, version).await),
        RequestKind::WriteTxnMarkers(r) => {
            ResponseKind::WriteTxnMarkers(markers::write_txn_markers(shared, r).await)
        }
        RequestKind::TxnOffsetCommit(r) => {
            ResponseKind::TxnOffsetCommit(group::txn_offset_commit(shared, r).await)
        }
        RequestKind::FindCoordinator(r) => {
            ResponseKind::FindCoordinator(group::find_coordinator(shared, r))
        }
        RequestKind::JoinGroup(r) => ResponseKind::JoinGroup(group::join_group(shared, r).await),
        RequestKind::SyncGroup(r) => ResponseKind::SyncGroup(group::sync_group(shared, r).await),
        RequestKind::Heartbeat(r) => ResponseKind::Heartbeat(group::heartbeat(shared, r)),
        RequestKind::LeaveGroup(r) => ResponseKind::LeaveGroup(group::leave_group(shared, r)),
        RequestKind::OffsetCommit(r) => {
            ResponseKind::OffsetCommit(group::offset_commit(shared, r).await)
        }
        RequestKind::OffsetFetch(r) => ResponseKind::OffsetFetch(group::offset_fetch(shared, r)),
        RequestKind::Vote(r) => ResponseKind::Vote(raft_driver::handle_vote(shared, r)),
        RequestKind::BeginQuorumEpoch(r) => {
            ResponseKind::BeginQuorumEpoch(raft_driver::handle_begin_quorum_epoch(shared, r))
        }
        RequestKind::BrokerHeartbeat(r) => {
            ResponseKind::BrokerHeartbeat(controller::handle_heartbeat(shared, r))
        }
        RequestKind::AlterPartition(r) => {
            ResponseKind::AlterPartition(controller::handle_alter_partition(shared, r).await)
        }
        _ => return None,
    })
}

/// The fault point that holds a client's transactional request back, long enough for the client
/// to give up on it and go on.
async fn hold_txn_request(point: Point) {
    if fault_point::fires(point) {
        // Past the six seconds a client waits, so that it has given up when the request lands;
        // an EndTxn longer, past the client's retry of it.
        let spread = match point {
            Point::DelayEndTxn => Duration::from_secs(14),
            _ => Duration::from_secs(6),
        };
        let held = Duration::from_secs(6) + fault_point::delay(spread);
        debug!(
            held_ms = held.as_millis() as u64,
            "fault point: a transactional request is held back"
        );
        madsim::time::sleep(held).await;
    }
}

/// Gives an idempotent producer its id (a transactional one asks its coordinator).
fn init_producer_id(shared: &Arc<Shared>) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    let id = next_producer_id(shared, &mut shared.lock());
    debug!(producer_id = id, "producer id given");
    response.producer_id = id.into();
    response.producer_epoch = 0;
    response
}

/// A new producer id. Ids are unique without asking the controller: the broker id, this
/// incarnation of it (one more at every start), and a counter.
pub(crate) fn next_producer_id(shared: &Shared, s: &mut State) -> i64 {
    s.producers_started += 1;
    (i64::from(shared.id()) << 48)
        | ((s.incarnation as i64 & 0xffff) << 32)
        | (s.producers_started & 0xffff_ffff) as i64
}

fn api_versions() -> ApiVersionsResponse {
    let mut response = ApiVersionsResponse::default();
    response.api_keys = SUPPORTED
        .iter()
        .map(|(key, min, max)| {
            let mut v = ApiVersion::default();
            v.api_key = *key as i16;
            v.min_version = *min;
            v.max_version = *max;
            v
        })
        .collect();
    response
}

/// Where a follower's log leaves the leader's: `None` when the follower's last fetched epoch ends,
/// in the leader's log, at or after its fetch offset. Otherwise the leader's largest epoch at or
/// below it and that epoch's end (KIP-279).
/// `fast_failover` switches the KAFKA-6361 bug on (see `bugs::Switch::FastFailover`).
pub fn divergence(
    log: &Log,
    fetch_offset: i64,
    last_fetched_epoch: i32,
    fast_failover: bool,
) -> Option<EpochEnd> {
    if fetch_offset > log.log_end_offset() {
        return Some(EpochEnd {
            epoch: log.latest_epoch(),
            end_offset: log.log_end_offset(),
        });
    }
    if last_fetched_epoch < 0 {
        return None;
    }
    let mut end = log.end_offset_for_epoch(last_fetched_epoch);
    if fast_failover && end.epoch != last_fetched_epoch {
        end = EpochEnd {
            epoch: last_fetched_epoch,
            end_offset: log.log_end_offset(),
        };
    }
    if end.epoch == last_fetched_epoch && end.end_offset >= fetch_offset {
        return None;
    }
    Some(EpochEnd {
        epoch: end.epoch,
        end_offset: end.end_offset.max(0),
    })
}

/// Checks that this broker leads `tp` in the epoch a request names (-1: any).
fn leader_of<'a>(
    s: &'a mut State,
    tp: &TopicPartition,
    epoch: i32,
) -> Result<&'a mut crate::partition::Partition, i16> {
    let p = s
        .partitions
        .get_mut(tp)
        .ok_or(error_code::NOT_LEADER_OR_FOLLOWER)?;
    if epoch >= 0 && epoch < p.leader_epoch {
        crate::mark!(FencedLeaderEpoch);
        return Err(error_code::FENCED_LEADER_EPOCH);
    }
    if epoch > p.leader_epoch {
        crate::mark!(UnknownLeaderEpoch);
        return Err(error_code::UNKNOWN_LEADER_EPOCH);
    }
    if !p.is_leader() {
        return Err(error_code::NOT_LEADER_OR_FOLLOWER);
    }
    Ok(p)
}

/// Answers each partition of `query` into `answers`. The records go to the log: the query, kept
/// for the next request, must not hold on to the frame they were read from.
async fn produce(shared: &Arc<Shared>, query: &mut ProduceQuery, answers: &mut Vec<ProduceAnswer>) {
    answers.clear();
    if query.transactional_id.is_some() {
        hold_txn_request(Point::DelayTxnRequest).await;
    }
    for part in &mut query.partitions {
        let records = std::mem::take(&mut part.records);
        if let Some(id) = &query.transactional_id {
            let verified = crate::txn::verify::before_append(shared, id, &part.tp, &records).await;
            if let Err(code) = verified {
                answers.push(Err(code));
                continue;
            }
        }
        answers
            .push(produce_partition(shared, &part.tp, query.acks, query.timeout_ms, records).await);
    }
}

/// Appends to a led partition and, for acks=all, waits for the high watermark to pass the batch.
/// Errors before the append are definite refusals; errors after it leave the outcome unknown.
pub(crate) async fn produce_partition(
    shared: &Arc<Shared>,
    tp: &TopicPartition,
    acks: i16,
    timeout_ms: i32,
    records: bytes::Bytes,
) -> Result<i64, i16> {
    let min_isr = shared.config.min_insync_replicas;
    let (base, last, epoch) = {
        let mut s = shared.lock();
        let p = leader_of(&mut s, tp, -1)?;
        let isr_len = p.leader_state().map_or(0, |l| l.isr.len());
        if acks == -1 && isr_len < min_isr {
            trace!(partition = %tp, isr_len, min_isr, "produce refused: not enough in-sync replicas");
            crate::mark!(NotEnoughReplicas);
            return Err(error_code::NOT_ENOUGH_REPLICAS);
        }
        let epoch = p.leader_epoch;
        let header = batch::parse(&records).map_err(|_| error_code::CORRUPT_MESSAGE)?;
        let lookback = if shared.config.bug(crate::bugs::Switch::DedupWindowOfOne) {
            1
        } else {
            crate::log::DUPLICATE_LOOKBACK_BATCHES
        };
        let (base, last) = match p.log.sequence_within(&header, lookback) {
            Sequence::Duplicate {
                base_offset,
                last_offset,
            } => {
                debug!(
                    partition = %tp,
                    producer_id = header.producer_id,
                    base_sequence = header.base_sequence,
                    base_offset,
                    "duplicate produce: answered with where the batch already is"
                );
                crate::mark!(DuplicateBatchAnswered);
                (base_offset, last_offset)
            }
            Sequence::OutOfOrder => {
                debug!(
                    partition = %tp,
                    producer_id = header.producer_id,
                    base_sequence = header.base_sequence,
                    "produce refused: out of sequence"
                );
                crate::mark!(OutOfOrderSequence);
                return Err(error_code::OUT_OF_ORDER_SEQUENCE_NUMBER);
            }
            Sequence::Fenced => {
                debug!(
                    partition = %tp,
                    producer_id = header.producer_id,
                    producer_epoch = header.producer_epoch,
                    "produce refused: the producer has a newer epoch here"
                );
                crate::mark!(ProducerEpochFenced);
                return Err(error_code::INVALID_PRODUCER_EPOCH);
            }
            Sequence::New => {
                let appended = p
                    .log
                    .append_as_leader(&records, epoch)
                    .map_err(|e| match e {
                        AppendError::Corrupt(error) => {
                            debug!(partition = %tp, %error, "produce refused: corrupt batch");
                            error_code::CORRUPT_MESSAGE
                        }
                        error => {
                            warn!(partition = %tp, %error, "cannot append a produce");
                            crate::mark!(LeaderAppendFails);
                            error_code::KAFKA_STORAGE_ERROR
                        }
                    })?;
                shared.notify_moved_to(tp, Watch::LogEnd, appended.1 + 1);
                appended
            }
        };
        (base, last, epoch)
    };
    if acks != -1 {
        // The answer does not wait for the disk, but the high watermark, which counts only what the
        // leader has synced, must not wait for the next acks=all write either.
        madsim::task::spawn(sync_and_advance(shared.clone(), tp.clone()));
        return Ok(base);
    }
    if shared.config.bug(crate::bugs::Switch::NoFsyncBeforeAck) {
        // The answer waits for the followers only; the leader's copy sits in the page cache.
        broker::advance_high_watermark(shared, &mut shared.lock(), tp);
    } else if !sync_and_advance(shared.clone(), tp.clone()).await {
        return Err(error_code::REQUEST_TIMED_OUT);
    }
    let mut rx = shared.subscribe_to_moves([(tp.clone(), Watch::HighWatermark)]);
    // Only a high watermark past the batch answers this produce; smaller moves need not wake it.
    rx.wake_at_least(last + 1);
    let mut deadline = Deadline::after(Duration::from_millis(timeout_ms.max(0) as u64));
    loop {
        {
            let s = shared.lock();
            let Some(p) = s
                .partitions
                .get(tp)
                .filter(|p| p.is_leader() && p.leader_epoch == epoch)
            else {
                return Err(error_code::REQUEST_TIMED_OUT);
            };
            if p.log.log_end_offset() <= last {
                // Truncated under us: this leader lost the batch.
                crate::mark!(ProduceTruncatedWhileWaiting);
                return Err(error_code::REQUEST_TIMED_OUT);
            }
            if p.log.high_watermark() > last {
                let isr_len = p.leader_state().map_or(0, |l| l.isr.len());
                if isr_len < min_isr {
                    crate::mark!(NotEnoughReplicasAfterAppend);
                    return Err(error_code::NOT_ENOUGH_REPLICAS_AFTER_APPEND);
                }
                return Ok(base);
            }
        }
        if deadline.passed() || deadline.run(rx.changed()).await.is_err() {
            crate::mark!(ProduceTimedOut);
            return Err(error_code::REQUEST_TIMED_OUT);
        }
    }
}

/// Syncs a led partition's log, then lets its high watermark move. False if the sync failed.
async fn sync_and_advance(shared: Arc<Shared>, tp: TopicPartition) -> bool {
    if let Err(error) = broker::sync_log(&shared, &LogRef::Partition(tp.clone())).await {
        warn!(partition = %tp, %error, "cannot sync the leader's log");
        return false;
    }
    let mut s = shared.lock();
    broker::advance_high_watermark(&shared, &mut s, &tp);
    true
}

/// Answers the fetch in `kept.fetch`, in its session: every partition's answer goes into
/// `kept.answers`, and those that go out into `kept.chosen`. Returns the answer's session error
/// code and id.
async fn answer_fetch(shared: &Arc<Shared>, kept: &mut Kept) -> (i16, i32) {
    let context = shared.lock().fetch_sessions.open(&mut kept.fetch);
    kept.answers.clear();
    if let Context::Refused { error } = context {
        debug!(
            replica = kept.fetch.replica_id,
            session = kept.fetch.session_id,
            epoch = kept.fetch.session_epoch,
            error_code = error,
            "fetch session refused"
        );
    } else {
        fetch(shared, kept).await;
    }
    let (partitions, answers) = (&kept.fetch.partitions, &kept.answers);
    (shared.lock().fetch_sessions).choose(context, partitions, answers, &mut kept.chosen);
    (context.error_code(), context.session_id())
}

/// Answers the fetch in `kept.fetch` into `kept.answers`, once there is something to answer or
/// its wait runs out.
async fn fetch(shared: &Arc<Shared>, kept: &mut Kept) {
    let query = &kept.fetch;
    let mut deadline = Deadline::after(Duration::from_millis(query.max_wait_ms.max(0) as u64));
    // A follower reads up to the log's end, a consumer up to the high watermark: each waits for
    // its bound to move.
    let watch = if query.replica_id >= 0 {
        Watch::LogEnd
    } else {
        Watch::HighWatermark
    };
    let same = |moves: &[(TopicPartition, Watch)]| {
        moves.len() == query.partitions.len()
            && moves
                .iter()
                .zip(&query.partitions)
                .all(|((tp, w), p)| *w == watch && *tp == p.tp)
    };
    let moves = match &kept.moves {
        Some(moves) if same(moves) => moves.clone(),
        _ => {
            let moves: Arc<[(TopicPartition, Watch)]> = query
                .partitions
                .iter()
                .map(|p| (p.tp.clone(), watch))
                .collect();
            kept.moves = Some(moves.clone());
            moves
        }
    };
    let mut rx = shared.subscribe_to_moves(moves);
    loop {
        let ready = fetch_once(shared, query, &mut kept.answers);
        if ready || deadline.passed() {
            return;
        }
        if deadline.run(rx.changed()).await.is_err() {
            // The wait ran out: answer with the partitions as they are now (the high watermark
            // may have moved meanwhile), as Kafka completes a delayed fetch.
            fetch_once(shared, query, &mut kept.answers);
            return;
        }
    }
}

/// One pass over a fetch: an answer for each of its partitions, into `answers`. Returns whether
/// the answer should go now (data or an error) rather than wait for more.
fn fetch_once(
    shared: &Arc<Shared>,
    query: &FetchQuery,
    answers: &mut Vec<PartitionAnswer>,
) -> bool {
    let mut ready = false;
    let mut s = shared.lock();
    answers.clear();
    // Once the answer holds `max_bytes` of records, the partitions after it get none this time.
    let mut budget = query.max_bytes.max(0) as usize;
    let now = shared.now_ms();
    answers.extend(query.partitions.iter().map(|p| {
        let (answer, has_data) = if &*p.tp.topic == METADATA_TOPIC {
            raft_driver::fetch_metadata(shared, &mut s, query.replica_id, p)
        } else {
            let read_committed = query.isolation_level == 1;
            fetch_partition(
                shared,
                &mut s,
                query.replica_id,
                read_committed,
                p,
                budget,
                now,
            )
        };
        budget = budget.saturating_sub(answer.records.len());
        ready |= has_data;
        answer
    }));
    ready
}

fn fetch_partition(
    shared: &Arc<Shared>,
    s: &mut State,
    replica: BrokerId,
    read_committed: bool,
    p: &PartitionQuery,
    budget: usize,
    now: u64,
) -> (PartitionAnswer, bool) {
    let tp = &p.tp;
    let mut out = PartitionAnswer::new(tp.partition);
    let partition = match leader_of(s, tp, p.current_leader_epoch) {
        Ok(partition) => partition,
        Err(code) => {
            trace!(
                partition = %tp,
                replica,
                epoch = p.current_leader_epoch,
                error_code = code,
                "fetch refused"
            );
            out.error_code = code;
            if let Some(part) = s.partitions.get(tp) {
                let leader = match part.role {
                    Role::Leader(_) => shared.id(),
                    Role::Follower { leader } => leader,
                };
                out.current_leader = (leader, part.leader_epoch);
            }
            return (out, true);
        }
    };
    out.current_leader = (shared.id(), partition.leader_epoch);
    let is_follower = replica >= 0;
    if is_follower {
        let check = !shared.config.bug(crate::bugs::Switch::SkipDivergenceCheck);
        if let Some(d) = divergence(
            &partition.log,
            p.fetch_offset,
            p.last_fetched_epoch,
            shared.config.bug(crate::bugs::Switch::FastFailover),
        )
        .filter(|_| check)
        {
            debug!(
                partition = %tp,
                replica,
                fetch_offset = p.fetch_offset,
                last_fetched_epoch = p.last_fetched_epoch,
                diverging_epoch = d.epoch,
                end_offset = d.end_offset,
                "follower's fetch diverges: it must truncate"
            );
            crate::mark!(LeaderAnswersDivergingEpoch);
            out.diverging_epoch = d;
            out.high_watermark = partition.log.high_watermark();
            return (out, true);
        }
        partition.record_follower_fetch(replica, p.fetch_offset, now);
        broker::advance_high_watermark_of(shared, tp, partition);
    }
    let log = &partition.log;
    // A follower reads to the log end and has no use for the stable offset.
    let stable = if is_follower {
        log.high_watermark()
    } else {
        log.last_stable_offset()
    };
    let upper = if is_follower {
        log.log_end_offset()
    } else if read_committed {
        stable
    } else {
        log.high_watermark()
    };
    if p.fetch_offset > log.log_end_offset() || p.fetch_offset < 0 {
        out.error_code = error_code::OFFSET_OUT_OF_RANGE;
        out.high_watermark = log.high_watermark();
        return (out, true);
    }
    let mut limit = (p.partition_max_bytes.max(1) as usize).min(budget);
    if limit > 0 && fault_point::fires(Point::ShortFetch) {
        // One batch, whatever its size: a read always returns the first.
        limit = 1;
    }
    let records = if limit == 0 {
        crate::mark!(FetchBudgetSpent);
        bytes::Bytes::new()
    } else {
        log.read(p.fetch_offset, upper, limit).unwrap_or_default()
    };
    let has_data = !records.is_empty();
    if read_committed && has_data {
        let aborted = log.transactions().aborted_between(p.fetch_offset, upper);
        out.aborted = aborted.map(|a| (a.producer_id, a.first_offset)).collect();
    }
    out.high_watermark = log.high_watermark();
    out.last_stable_offset = stable;
    out.log_start_offset = 0;
    out.records = records;
    (out, has_data)
}

fn metadata(shared: &Arc<Shared>, request: MetadataRequest) -> MetadataResponse {
    let s = shared.lock();
    let mut response = MetadataResponse::default();
    response.cluster_id = Some(StrBytes::from_static_str("logsim"));
    response.controller_id = WireBrokerId(s.quorum.leader().unwrap_or(-1));
    for (id, address) in &shared.config.brokers {
        if s.image.brokers.contains_key(id) {
            let mut b = MetadataResponseBroker::default();
            b.node_id = WireBrokerId(*id);
            b.host = StrBytes::from_string(address.ip().to_string());
            b.port = address.port() as i32;
            response.brokers.push(b);
        }
    }
    let wanted: Option<Vec<String>> = request.topics.map(|ts| {
        ts.into_iter()
            .filter_map(|t| t.name.map(|n| n.0.as_str().to_owned()))
            .collect()
    });
    let names: Vec<String> =
        wanted.unwrap_or_else(|| s.image.topics.keys().map(|k| k.to_string()).collect());
    for name in names {
        let mut t = MetadataResponseTopic::default();
        t.name = Some(kafka_protocol::messages::TopicName(StrBytes::from_string(
            name.clone(),
        )));
        t.topic_id = topic_id(&name);
        match s.image.topics.get(name.as_str()) {
            None => t.error_code = error_code::UNKNOWN_TOPIC_OR_PARTITION,
            Some(partitions) => {
                for p in partitions.values() {
                    let mut r = MetadataResponsePartition::default();
                    r.partition_index = p.partition;
                    r.leader_id = WireBrokerId(p.leader);
                    r.leader_epoch = p.leader_epoch;
                    r.replica_nodes = p.replicas.iter().map(|b| WireBrokerId(*b)).collect();
                    r.isr_nodes = p.isr.iter().map(|b| WireBrokerId(*b)).collect();
                    t.partitions.push(r);
                }
            }
        }
        response.topics.push(t);
    }
    response
}

fn list_offsets(shared: &Arc<Shared>, request: ListOffsetsRequest) -> ListOffsetsResponse {
    const EARLIEST: i64 = -2;
    let mut s = shared.lock();
    let mut response = ListOffsetsResponse::default();
    for topic in request.topics {
        let mut t = ListOffsetsTopicResponse::default();
        t.name = topic.name.clone();
        for p in topic.partitions {
            let tp = TopicPartition::new(topic.name.0.as_str(), p.partition_index);
            let mut r = ListOffsetsPartitionResponse::default();
            r.partition_index = p.partition_index;
            match leader_of(&mut s, &tp, p.current_leader_epoch) {
                Ok(partition) => {
                    r.offset = if p.timestamp == EARLIEST {
                        0
                    } else {
                        partition.log.high_watermark()
                    };
                    r.leader_epoch = partition.leader_epoch;
                    r.timestamp = -1;
                }
                Err(code) => r.error_code = code,
            }
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}

fn offset_for_leader_epoch(
    shared: &Arc<Shared>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut s = shared.lock();
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in request.topics {
        let mut t = OffsetForLeaderTopicResult::default();
        t.topic = topic.topic.clone();
        for p in topic.partitions {
            let tp = TopicPartition::new(topic.topic.0.as_str(), p.partition);
            let mut r = LeaderEpochEnd::default();
            r.partition = p.partition;
            match leader_of(&mut s, &tp, p.current_leader_epoch) {
                Ok(partition) => {
                    let end = partition.log.end_offset_for_epoch(p.leader_epoch);
                    r.leader_epoch = end.epoch;
                    r.end_offset = end.end_offset;
                }
                Err(code) => r.error_code = code,
            }
            t.partitions.push(r);
        }
        response.topics.push(t);
    }
    response
}
