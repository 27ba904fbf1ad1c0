//! The transaction coordinator's state and its requests: InitProducerId with a transactional id,
//! AddPartitionsToTxn (and the brokers' verify-only form), AddOffsetsToTxn and EndTxn; and, at
//! every tick, the transactions to time out or to finish.
//!
//! A change is claimed (one at a time per transactional id: another request meanwhile gets
//! CONCURRENT_TRANSACTIONS and retries), written to `__transaction_state` with acks=all, and
//! applied once acknowledged, only if this broker still leads the partition in the same epoch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, AddPartitionsToTxnRequest,
    AddPartitionsToTxnResponse, EndTxnRequest, EndTxnResponse, InitProducerIdRequest,
    InitProducerIdResponse,
};
use tracing::debug;

use super::{TxnMeta, TxnState, TRANSACTION_STATE_TOPIC};
use crate::broker::{Shared, State};
use crate::fetcher::error_code;
use crate::group::error_code::{COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR};
use crate::{batch, TopicPartition};

/// The longest transaction timeout a producer may ask for (`transaction.max.timeout.ms`).
pub const MAX_TIMEOUT_MS: u64 = 15 * 60 * 1000;

/// Transactions this broker coordinates, and the changes in flight.
#[derive(Default)]
pub struct Coordinator {
    loaded: BTreeMap<i32, Loaded>,
    /// Transactional ids with a state change being written.
    writing: BTreeSet<String>,
    /// Transactions whose markers a task is writing, with the coordinator epoch it works in.
    completing: BTreeSet<(String, i32)>,
}

/// The transactions of one `__transaction_state` partition, as of `epoch`'s leadership.
struct Loaded {
    epoch: i32,
    txns: BTreeMap<String, TxnMeta>,
    /// Ids whose latest record in the log, read back, is not yet below the high watermark, and
    /// where it is: a state a new leader might not have is never acted on (nor answered from).
    /// Their requests wait until it is committed and read again.
    unsettled: BTreeMap<String, i64>,
}

/// Every transaction this broker coordinates now, by transactional id (for checks and reports):
/// those of the state partitions it leads, in the epoch it leads them.
pub fn held(s: &State) -> impl Iterator<Item = (&String, &TxnMeta)> {
    let current = |partition: i32, epoch: i32| {
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition);
        (s.partitions.get(&tp)).is_some_and(|p| p.is_leader() && p.leader_epoch == epoch)
    };
    (s.transactions.loaded.iter())
        .filter(move |(partition, l)| current(**partition, l.epoch))
        .flat_map(|(_, l)| l.txns.iter())
}

/// What a coordinator needs done that a request did not ask for.
pub enum Due {
    /// Abort `id`'s transaction: it outlived its timeout.
    TimeOut(String),
    /// Write the markers of `id`'s decided transaction, coordinating in `epoch`.
    Complete(String, TopicPartition, i32),
}

fn state_partition(shared: &Shared, id: &str) -> Option<TopicPartition> {
    let partitions = shared.config.transaction_partitions;
    (partitions > 0).then(|| {
        TopicPartition::new(
            TRANSACTION_STATE_TOPIC,
            super::partition_for(id, partitions),
        )
    })
}

/// The state partition of `id` when this broker leads it, with its leader epoch (the coordinator
/// epoch).
pub fn coordinating(shared: &Shared, s: &State, id: &str) -> Result<(TopicPartition, i32), i16> {
    let tp = state_partition(shared, id).ok_or(COORDINATOR_NOT_AVAILABLE)?;
    match s.partitions.get(&tp) {
        Some(p) if p.is_leader() => Ok((tp, p.leader_epoch)),
        _ => Err(NOT_COORDINATOR),
    }
}

/// The broker that coordinates `id`, as this broker's metadata has it.
pub fn coordinator_of(shared: &Shared, s: &State, id: &str) -> Option<crate::BrokerId> {
    let tp = state_partition(shared, id)?;
    let leader = s.image.partition(&tp.topic, tp.partition)?.leader;
    (leader >= 0).then_some(leader)
}

/// The transactions of `tp`, read back from its log when this broker's leadership of it is new,
/// after a write whose fate it does not know, or once the high watermark passes what was
/// unsettled: the last record of each id below the high watermark stands, and an id with a
/// record above it is unsettled.
fn loaded<'a>(s: &'a mut State, tp: &TopicPartition, epoch: i32) -> &'a mut Loaded {
    let high_watermark = s.partitions.get(tp).map_or(0, |p| p.log.high_watermark());
    let stale = (s.transactions.loaded.get(&tp.partition))
        .is_none_or(|l| l.epoch != epoch || l.unsettled.values().any(|at| *at < high_watermark));
    if stale {
        let mut txns = BTreeMap::new();
        let mut unsettled = BTreeMap::new();
        if let Some(p) = s.partitions.get(tp) {
            let bytes = (p.log.read(0, p.log.log_end_offset(), usize::MAX)).unwrap_or_default();
            for (at, key, value) in batch::decode(bytes).unwrap_or_default() {
                let id = key.as_deref().and_then(|k| std::str::from_utf8(k).ok());
                let meta = value.as_deref().and_then(TxnMeta::decode);
                let (Some(id), Some(meta)) = (id, meta) else {
                    continue;
                };
                if at < high_watermark {
                    txns.insert(id.to_owned(), meta);
                } else {
                    unsettled.insert(id.to_owned(), at);
                }
            }
        }
        if !txns.is_empty() {
            crate::mark!(TxnCoordinatorRecovers);
        }
        debug!(partition = %tp, epoch, transactions = txns.len(), "transactions read back from the log");
        s.transactions.loaded.insert(
            tp.partition,
            Loaded {
                epoch,
                txns,
                unsettled,
            },
        );
    }
    s.transactions
        .loaded
        .get_mut(&tp.partition)
        .expect("loaded")
}

/// Claims a change of `id`'s state, coordinated here: its partition, the coordinator epoch and
/// the state now. Refused while another change of it is being written.
fn claim(
    shared: &Shared,
    s: &mut State,
    id: &str,
) -> Result<(TopicPartition, i32, Option<TxnMeta>), i16> {
    let (tp, epoch) = coordinating(shared, s, id)?;
    if s.transactions.writing.contains(id) {
        return Err(error_code::CONCURRENT_TRANSACTIONS);
    }
    let l = loaded(s, &tp, epoch);
    if l.unsettled.contains_key(id) {
        return Err(error_code::CONCURRENT_TRANSACTIONS);
    }
    let meta = l.txns.get(id).cloned();
    s.transactions.writing.insert(id.to_owned());
    Ok((tp, epoch, meta))
}

/// Gives up a claim without writing.
fn release(s: &mut State, id: &str) {
    s.transactions.writing.remove(id);
}

/// Writes `next` as `id`'s state to its partition and applies it once acknowledged; the claim
/// ends either way. A decision or a completion written is reported as an event, with `why`.
async fn write(
    shared: &Arc<Shared>,
    id: &str,
    tp: &TopicPartition,
    epoch: i32,
    next: TxnMeta,
    why: &str,
) -> Result<(), i16> {
    let record = [(Some(Bytes::from(id.to_owned())), next.encode())];
    let records = batch::encode(&record, shared.now_ms() as i64);
    let timeout = shared.config.request_timeout_ms as i32;
    let written = crate::serve::produce_partition(shared, tp, -1, timeout, records).await;
    let mut s = shared.lock();
    release(&mut s, id);
    if let Err(code) = written {
        debug!(
            transactional_id = id,
            error_code = code,
            "transaction state not written"
        );
        // The record may be in the log all the same, and be committed: what this coordinator
        // holds is read from the log again before it acts.
        s.transactions.loaded.remove(&tp.partition);
        return Err(match code {
            error_code::NOT_LEADER_OR_FOLLOWER => NOT_COORDINATOR,
            _ => COORDINATOR_NOT_AVAILABLE,
        });
    }
    if coordinating(shared, &s, id) != Ok((tp.clone(), epoch)) {
        return Err(NOT_COORDINATOR);
    }
    debug!(
        transactional_id = id,
        producer_id = next.producer_id,
        producer_epoch = next.producer_epoch,
        state = %next.state,
        partitions = next.partitions.len(),
        "transaction state written"
    );
    report(shared, id, &next, why);
    loaded(&mut s, tp, epoch).txns.insert(id.to_owned(), next);
    Ok(())
}

/// Tells the outside world that `id`'s transaction, as `meta` now holds it, was decided (for
/// `why`) or completed; other states are not news.
fn report(shared: &Shared, id: &str, meta: &TxnMeta, why: &str) {
    let commit = matches!(
        meta.state,
        TxnState::PrepareCommit | TxnState::CompleteCommit
    );
    let completed = matches!(
        meta.state,
        TxnState::CompleteCommit | TxnState::CompleteAbort
    );
    if !meta.state.preparing() && !completed {
        return;
    }
    let event = if meta.state.preparing() {
        crate::env::Event::TxnDecided {
            transactional_id: id.to_owned(),
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            commit,
            partitions: meta.partitions.iter().cloned().collect(),
            why: why.to_owned(),
        }
    } else {
        crate::env::Event::TxnCompleted {
            transactional_id: id.to_owned(),
            producer_id: meta.producer_id,
            commit,
        }
    };
    shared.emit(event);
}

/// Checks a request's producer against `id`'s state.
fn check_producer(meta: Option<&TxnMeta>, producer_id: i64, epoch: i16) -> Result<&TxnMeta, i16> {
    let meta = meta.ok_or(error_code::INVALID_PRODUCER_ID_MAPPING)?;
    if meta.producer_id != producer_id {
        return Err(error_code::INVALID_PRODUCER_ID_MAPPING);
    }
    if epoch != meta.producer_epoch {
        crate::mark!(TxnProducerFenced);
        return Err(error_code::PRODUCER_FENCED);
    }
    Ok(meta)
}

pub async fn init_producer_id(
    shared: &Arc<Shared>,
    request: InitProducerIdRequest,
    id: String,
) -> InitProducerIdResponse {
    let mut response = InitProducerIdResponse::default();
    response.producer_id = (-1).into();
    response.producer_epoch = -1;
    let timeout_ms = u64::try_from(request.transaction_timeout_ms).unwrap_or(u64::MAX);
    if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
        response.error_code = error_code::INVALID_TRANSACTION_TIMEOUT;
        return response;
    }
    let now = shared.now_ms();
    let (tp, epoch, next, abort_first) = {
        let mut s = shared.lock();
        let (tp, epoch, meta) = match claim(shared, &mut s, &id) {
            Ok(c) => c,
            Err(code) => {
                response.error_code = code;
                return response;
            }
        };
        let fence = !shared.config.bug(crate::bugs::Switch::NoProducerFencing);
        let next = match meta {
            Some(m) if m.state.preparing() => {
                release(&mut s, &id);
                response.error_code = error_code::CONCURRENT_TRANSACTIONS;
                return response;
            }
            // An open transaction of the older producer is aborted first, under a new epoch
            // that fences it; the caller retries once it is complete.
            Some(m) if m.state == TxnState::Ongoing => (
                TxnMeta {
                    producer_epoch: m.producer_epoch + i16::from(fence),
                    previous_epoch: -1,
                    state: TxnState::PrepareAbort,
                    ..m
                },
                true,
            ),
            Some(m) if m.producer_epoch < i16::MAX - 1 => (
                TxnMeta {
                    producer_epoch: m.producer_epoch + i16::from(fence),
                    previous_epoch: -1,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    started_ms: now,
                    ..m
                },
                false,
            ),
            // A new id, or an epoch at its limit: a new producer id.
            _ => (
                TxnMeta {
                    producer_id: crate::serve::next_producer_id(shared, &mut s),
                    producer_epoch: 0,
                    previous_epoch: -1,
                    timeout_ms,
                    state: TxnState::Empty,
                    partitions: BTreeSet::new(),
                    started_ms: now,
                },
                false,
            ),
        };
        (tp, epoch, next.0, next.1)
    };
    let (producer_id, producer_epoch) = (next.producer_id, next.producer_epoch);
    let why = "a new producer of its transactional id";
    if let Err(code) = write(shared, &id, &tp, epoch, next, why).await {
        response.error_code = code;
        return response;
    }
    if abort_first {
        crate::mark!(TxnAbortedByNewProducer);
        spawn_completion(shared, id, tp, epoch);
        response.error_code = error_code::CONCURRENT_TRANSACTIONS;
        return response;
    }
    debug!(transactional_id = %id, producer_id, producer_epoch, "transactional producer id given");
    response.producer_id = producer_id.into();
    response.producer_epoch = producer_epoch;
    response
}

/// Adds `partitions` to `id`'s transaction, opening it if need be.
async fn add_partitions(
    shared: &Arc<Shared>,
    id: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: Vec<TopicPartition>,
) -> Result<(), i16> {
    let now = shared.now_ms();
    let (tp, epoch, next) = {
        let mut s = shared.lock();
        let (tp, epoch, meta) = claim(shared, &mut s, id)?;
        let checked = check_producer(meta.as_ref(), producer_id, producer_epoch).and_then(|m| {
            if m.state.preparing() {
                Err(error_code::CONCURRENT_TRANSACTIONS)
            } else {
                Ok(m)
            }
        });
        let m = match checked {
            Ok(m) => m.clone(),
            Err(code) => {
                release(&mut s, id);
                return Err(code);
            }
        };
        let ongoing = m.state == TxnState::Ongoing;
        if ongoing && partitions.iter().all(|p| m.partitions.contains(p)) {
            release(&mut s, id);
            return Ok(());
        }
        let mut next = m;
        if !ongoing {
            next.partitions.clear();
            next.started_ms = now;
            next.state = TxnState::Ongoing;
        }
        next.partitions.extend(partitions);
        (tp, epoch, next)
    };
    write(shared, id, &tp, epoch, next, "AddPartitionsToTxn").await
}

/// Whether `tp` is in `id`'s ongoing transaction under this producer and epoch: a partition
/// leader asks before it lets a batch open a transaction (KIP-890 part 1).
pub fn verify_here(
    shared: &Shared,
    s: &mut State,
    id: &str,
    producer_id: i64,
    producer_epoch: i16,
    tp: &TopicPartition,
) -> Result<(), i16> {
    let (state_tp, epoch) = coordinating(shared, s, id)?;
    let l = loaded(s, &state_tp, epoch);
    if l.unsettled.contains_key(id) {
        return Err(error_code::CONCURRENT_TRANSACTIONS);
    }
    let meta = l.txns.get(id);
    let m = check_producer(meta, producer_id, producer_epoch)?;
    if m.state != TxnState::Ongoing || !m.partitions.contains(tp) {
        crate::mark!(TxnProduceNotVerified);
        return Err(error_code::INVALID_TXN_STATE);
    }
    Ok(())
}

pub async fn add_partitions_to_txn(
    shared: &Arc<Shared>,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let mut response = AddPartitionsToTxnResponse::default();
    if version >= 4 {
        // From brokers, each transaction's partitions to verify.
        for t in request.transactions {
            let id = t.transactional_id.0.to_string();
            let mut result = AddPartitionsToTxnResult::default();
            result.transactional_id = t.transactional_id.clone();
            let mut s = shared.lock();
            for topic in &t.topics {
                let mut r = AddPartitionsToTxnTopicResult::default();
                r.name = topic.name.clone();
                for &p in &topic.partitions {
                    let tp = TopicPartition::new(topic.name.0.as_str(), p);
                    let code = if t.verify_only {
                        let (pid, epoch) = (t.producer_id.0, t.producer_epoch);
                        verify_here(shared, &mut s, &id, pid, epoch, &tp).err()
                    } else {
                        Some(error_code::INVALID_REQUEST)
                    };
                    let mut pr = AddPartitionsToTxnPartitionResult::default();
                    pr.partition_index = p;
                    pr.partition_error_code = code.unwrap_or(0);
                    r.results_by_partition.push(pr);
                }
                result.topic_results.push(r);
            }
            response.results_by_transaction.push(result);
        }
        return response;
    }
    let id = request.v3_and_below_transactional_id.0.to_string();
    let partitions: Vec<TopicPartition> = (request.v3_and_below_topics.iter())
        .flat_map(|t| {
            let name = t.name.0.as_str();
            t.partitions
                .iter()
                .map(move |p| TopicPartition::new(name, *p))
        })
        .collect();
    let (pid, epoch) = (
        request.v3_and_below_producer_id.0,
        request.v3_and_below_producer_epoch,
    );
    let code = add_partitions(shared, &id, pid, epoch, partitions)
        .await
        .err()
        .unwrap_or(0);
    for t in &request.v3_and_below_topics {
        let mut r = AddPartitionsToTxnTopicResult::default();
        r.name = t.name.clone();
        for &p in &t.partitions {
            let mut pr = AddPartitionsToTxnPartitionResult::default();
            pr.partition_index = p;
            pr.partition_error_code = code;
            r.results_by_partition.push(pr);
        }
        response.results_by_topic_v3_and_below.push(r);
    }
    response
}

pub async fn add_offsets_to_txn(
    shared: &Arc<Shared>,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let mut response = AddOffsetsToTxnResponse::default();
    let group = request.group_id.0.as_str();
    let offsets = shared.config.offsets_partitions;
    if offsets <= 0 {
        response.error_code = COORDINATOR_NOT_AVAILABLE;
        return response;
    }
    let tp = TopicPartition::new(
        crate::group::OFFSETS_TOPIC,
        crate::group::partition_for(group, offsets),
    );
    let id = request.transactional_id.0.to_string();
    let (pid, epoch) = (request.producer_id.0, request.producer_epoch);
    if let Err(code) = add_partitions(shared, &id, pid, epoch, vec![tp]).await {
        response.error_code = code;
    }
    response
}

pub async fn end_txn(shared: &Arc<Shared>, request: EndTxnRequest, version: i16) -> EndTxnResponse {
    let mut response = EndTxnResponse::default();
    response.producer_id = (-1).into();
    response.producer_epoch = -1;
    let id = request.transactional_id.0.to_string();
    let (producer_id, producer_epoch) = (request.producer_id.0, request.producer_epoch);
    let commit = request.committed;
    // Transaction version 2: the epoch moves on with every end (KIP-890 part 2).
    let bump = shared.config.transaction_version >= 2
        && version >= 5
        && !shared.config.bug(crate::bugs::Switch::LateEndTxn);
    let (tp, epoch, next) = {
        let mut s = shared.lock();
        let (tp, epoch, meta) = match claim(shared, &mut s, &id) {
            Ok(c) => c,
            Err(code) => {
                response.error_code = code;
                return response;
            }
        };
        debug!(
            transactional_id = %id,
            producer_epoch,
            commit,
            state = ?meta.as_ref().map(|m| (m.state, m.producer_epoch)),
            "EndTxn"
        );
        let answered = match meta {
            // A retry of the end just made, under the epoch it bumped.
            Some(m)
                if m.producer_id == producer_id
                    && m.previous_epoch == producer_epoch
                    && m.previous_epoch >= 0 =>
            {
                Err(retried_end(&m, commit))
            }
            m => check_producer(m.as_ref(), producer_id, producer_epoch)
                .map_err(|code| (code, None))
                .and_then(|m| match (m.state, commit) {
                    (TxnState::Ongoing, _) => Ok(m.clone()),
                    _ => Err(retried_end(m, commit)),
                }),
        };
        let m = match answered {
            Ok(m) => m,
            Err((code, epoch)) => {
                release(&mut s, &id);
                response.error_code = code;
                if let Some((pid, e)) = epoch.filter(|_| code == 0) {
                    response.producer_id = pid.into();
                    response.producer_epoch = e;
                }
                return response;
            }
        };
        let next = TxnMeta {
            state: if commit {
                TxnState::PrepareCommit
            } else {
                TxnState::PrepareAbort
            },
            producer_epoch: m.producer_epoch + i16::from(bump),
            previous_epoch: if bump { m.producer_epoch } else { -1 },
            ..m
        };
        (tp, epoch, next)
    };
    let (pid, new_epoch) = (next.producer_id, next.producer_epoch);
    if let Err(code) = write(shared, &id, &tp, epoch, next, "EndTxn").await {
        response.error_code = code;
        return response;
    }
    debug!(transactional_id = %id, producer_id = pid, commit, "transaction decided");
    spawn_completion(shared, id, tp, epoch);
    response.producer_id = pid.into();
    response.producer_epoch = new_epoch;
    response
}

/// The answer to an EndTxn for a transaction that is no longer ongoing: success when it ends the
/// way it asks (a retry), with the producer's id and epoch; otherwise the error.
fn retried_end(m: &TxnMeta, commit: bool) -> (i16, Option<(i64, i16)>) {
    let ok = Some((m.producer_id, m.producer_epoch));
    match (m.state, commit) {
        (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => (0, ok),
        (TxnState::Empty, false) => (0, ok),
        (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
            (error_code::CONCURRENT_TRANSACTIONS, None)
        }
        _ => (error_code::INVALID_TXN_STATE, None),
    }
}

/// Starts writing the markers of `id`'s decided transaction, unless a task already is.
fn spawn_completion(shared: &Arc<Shared>, id: String, tp: TopicPartition, epoch: i32) {
    let key = (id, epoch);
    if shared.lock().transactions.completing.insert(key.clone()) {
        madsim::task::spawn(super::markers::complete(shared.clone(), key.0, tp, epoch));
    }
}

/// Ends the marker task's hold on `id`.
pub(super) fn completed(s: &mut State, id: &str, epoch: i32) {
    s.transactions.completing.remove(&(id.to_owned(), epoch));
}

/// `id`'s state, if this broker coordinates it in `epoch`.
pub(super) fn current(
    shared: &Shared,
    s: &mut State,
    id: &str,
    tp: &TopicPartition,
    epoch: i32,
) -> Option<TxnMeta> {
    if coordinating(shared, s, id) != Ok((tp.clone(), epoch)) {
        return None;
    }
    let l = loaded(s, tp, epoch);
    if l.unsettled.contains_key(id) {
        return None;
    }
    l.txns.get(id).cloned()
}

/// Writes `id`'s transaction as complete, once every marker is written; false if it could not
/// (the caller tries again, or stops if this broker no longer coordinates it).
pub(super) async fn write_complete(
    shared: &Arc<Shared>,
    id: &str,
    tp: &TopicPartition,
    epoch: i32,
) -> bool {
    let next = {
        let mut s = shared.lock();
        let Ok((_, _, Some(m))) = claim(shared, &mut s, id) else {
            return false;
        };
        let state = match m.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            TxnState::PrepareAbort => TxnState::CompleteAbort,
            _ => {
                release(&mut s, id);
                return true;
            }
        };
        TxnMeta {
            state,
            partitions: BTreeSet::new(),
            ..m
        }
    };
    (write(shared, id, tp, epoch, next, "markers written").await).is_ok()
}

/// What this broker must do for its transactions at `now`: time out the old, finish the decided.
/// Run every tick.
pub fn due(shared: &Shared, s: &mut State, now: u64) -> Vec<Due> {
    let partitions = shared.config.transaction_partitions;
    let mut due = Vec::new();
    for partition in 0..partitions {
        let tp = TopicPartition::new(TRANSACTION_STATE_TOPIC, partition);
        let epoch = match s.partitions.get(&tp) {
            Some(p) if p.is_leader() => p.leader_epoch,
            _ => continue,
        };
        // Brought up to date first, then read beside the claims without copying them.
        loaded(s, &tp, epoch);
        let Coordinator {
            loaded: partitions_loaded,
            writing,
            completing,
        } = &s.transactions;
        let l = &partitions_loaded[&partition];
        for (id, m) in &l.txns {
            if writing.contains(id) || l.unsettled.contains_key(id) {
                continue;
            }
            if m.state == TxnState::Ongoing && now >= m.started_ms.saturating_add(m.timeout_ms) {
                due.push(Due::TimeOut(id.clone()));
            } else if m.state.preparing() && !completing.contains(&(id.clone(), epoch)) {
                due.push(Due::Complete(id.clone(), tp.clone(), epoch));
            }
        }
    }
    due
}

/// Does what `due` found.
pub fn run_due(shared: &Arc<Shared>, due: Vec<Due>) {
    for d in due {
        match d {
            Due::TimeOut(id) => {
                madsim::task::spawn(time_out(shared.clone(), id));
            }
            Due::Complete(id, tp, epoch) => spawn_completion(shared, id, tp, epoch),
        }
    }
}

/// Aborts `id`'s transaction, which outlived its timeout, bumping the producer's epoch so that
/// the producer cannot write into it any more.
async fn time_out(shared: Arc<Shared>, id: String) {
    let now = shared.now_ms();
    let (tp, epoch, next) = {
        let mut s = shared.lock();
        let Ok((tp, epoch, Some(m))) = claim(&shared, &mut s, &id) else {
            return;
        };
        if m.state != TxnState::Ongoing || now < m.started_ms.saturating_add(m.timeout_ms) {
            release(&mut s, &id);
            return;
        }
        let next = TxnMeta {
            state: TxnState::PrepareAbort,
            producer_epoch: m.producer_epoch + 1,
            previous_epoch: -1,
            ..m
        };
        (tp, epoch, next)
    };
    debug!(transactional_id = %id, producer_id = next.producer_id, "transaction timed out: aborting it");
    if (write(&shared, &id, &tp, epoch, next, "its timeout").await).is_ok() {
        crate::mark!(TxnTimedOut);
        spawn_completion(&shared, id, tp, epoch);
    }
}
