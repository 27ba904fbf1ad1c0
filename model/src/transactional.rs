//! A transactional producer, as Kafka's clients drive one: it finds its coordinator, takes a
//! producer id and epoch with InitProducerId (fencing any older producer of its transactional
//! id), and for each transaction adds every partition before its first send there, sends
//! transactional batches (acks=all, idempotent sequences), and ends with EndTxn, commit or abort.
//!
//! Each call is awaited before the next, and retried where Kafka retries (a coordinator that
//! moved or is busy). What it reports is what the client knows: a transaction's end is
//! `Committed` or `Aborted` only on a definite answer, and `Unknown` when a commit may have
//! taken effect. After a transaction whose sends were not all acknowledged, the producer takes a
//! new epoch before the next: a batch whose fate is unknown must not be answered as a duplicate
//! of a new one.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafka_protocol::messages::{
    AddOffsetsToTxnRequest, AddPartitionsToTxnRequest, EndTxnRequest, GroupId,
    InitProducerIdRequest, TopicName, TxnOffsetCommitRequest,
};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use crate::client::{Client, SendOutcome, TxnStamp};
use crate::fetcher::error_code;
use crate::wire::Connection;
use crate::TopicPartition;

const INIT_PRODUCER_ID_VERSION: i16 = 4;
const ADD_PARTITIONS_VERSION: i16 = 3;
const ADD_OFFSETS_VERSION: i16 = 3;
/// TxnOffsetCommit v3 carries the consumer's generation and member id (KIP-447).
const TXN_OFFSET_COMMIT_VERSION: i16 = 3;
/// EndTxn v5 answers with the producer's epoch, which transaction version 2 bumps.
const END_TXN_VERSION: i16 = 5;
const RETRY_BACKOFF: Duration = Duration::from_millis(100);
/// Kafka's producer asks again this soon when the coordinator is still ending the previous
/// transaction.
const CONCURRENT_BACKOFF: Duration = Duration::from_millis(20);
/// Kafka's `max.block.ms`: how long a transactional call waits for the coordinator at most.
const MAX_BLOCK: Duration = Duration::from_secs(60);

/// How a transaction ended, as far as the producer knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnEnd {
    Committed,
    Aborted,
    /// A commit was asked and no definite answer came: it may have committed.
    Unknown(String),
}

/// The consumer group metadata a transaction's offsets are committed under: the group, and the
/// member and generation that consumed them, so that a member a rebalance dropped is fenced
/// (KIP-447).
#[derive(Clone, Copy, Debug)]
pub struct GroupMetadata<'a> {
    pub group: &'a str,
    pub member_id: &'a str,
    pub generation: i32,
}

/// Which coordinator a request goes to.
#[derive(Clone, Copy)]
enum Coordinator<'a> {
    /// The transactional id's.
    Txn,
    /// The consumer group's.
    Group(&'a str),
}

pub struct TransactionalProducer {
    client: Client,
    bootstrap: Vec<SocketAddr>,
    next_bootstrap: usize,
    client_id: String,
    transactional_id: String,
    timeout: Duration,
    transaction_timeout_ms: i32,
    coordinator: Option<Connection>,
    /// The group coordinator of the last offsets sent, and the group.
    group_coordinator: Option<(String, Connection)>,
    producer_id: i64,
    epoch: i16,
    /// Each partition's next sequence number under this epoch.
    sequences: BTreeMap<TopicPartition, i32>,
    /// Partitions added to the transaction under way.
    added: BTreeSet<TopicPartition>,
    /// A send of the transaction under way was not acknowledged: a new epoch before the next.
    tainted: bool,
}

/// A coordinator request's outcome: an answer's error code, or no answer (the request may or may
/// not have taken effect).
type Answer = Result<i16, String>;

impl TransactionalProducer {
    pub fn new(
        bootstrap: Vec<SocketAddr>,
        client_id: impl Into<String>,
        transactional_id: impl Into<String>,
        timeout: Duration,
        transaction_timeout: Duration,
    ) -> Self {
        let client_id = client_id.into();
        TransactionalProducer {
            client: Client::new(bootstrap.clone(), client_id.clone(), timeout)
                .ignoring_older_leader_epochs(),
            bootstrap,
            next_bootstrap: 0,
            client_id,
            transactional_id: transactional_id.into(),
            timeout,
            transaction_timeout_ms: transaction_timeout.as_millis() as i32,
            coordinator: None,
            group_coordinator: None,
            producer_id: -1,
            epoch: -1,
            sequences: BTreeMap::new(),
            added: BTreeSet::new(),
            tainted: false,
        }
    }

    /// The producer id and epoch, once initialized.
    pub fn identity(&self) -> Option<(i64, i16)> {
        (self.producer_id >= 0).then_some((self.producer_id, self.epoch))
    }

    /// Sends a request to the transaction coordinator, finding it first.
    async fn call<R: kafka_protocol::protocol::Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, String> {
        self.call_at(Coordinator::Txn, request, version).await
    }

    /// Sends a request to `which` coordinator, finding it first; a failed exchange drops it.
    async fn call_at<R: kafka_protocol::protocol::Request>(
        &mut self,
        which: Coordinator<'_>,
        request: &R,
        version: i16,
    ) -> Result<R::Response, String> {
        if let Coordinator::Group(group) = which {
            if self
                .group_coordinator
                .as_ref()
                .is_some_and(|(g, _)| g != group)
            {
                self.group_coordinator = None;
            }
        }
        if self.connection(which).is_none() {
            let at = self.bootstrap[self.next_bootstrap % self.bootstrap.len()];
            self.next_bootstrap += 1;
            let (key, key_type) = match which {
                Coordinator::Txn => (self.transactional_id.as_str(), 1),
                Coordinator::Group(group) => (group, 0),
            };
            let (conn, node, _) = crate::group_client::connect_to_coordinator(
                at,
                &self.client_id,
                self.timeout,
                key,
                key_type,
            )
            .await?;
            debug!(client = %self.client_id, coordinator = node, key, "found a coordinator");
            match which {
                Coordinator::Txn => self.coordinator = Some(conn),
                Coordinator::Group(group) => {
                    self.group_coordinator = Some((group.to_owned(), conn))
                }
            }
        }
        let patience = self.timeout * 2;
        let conn = self.connection(which).expect("connected");
        match conn.call(request, version, patience).await {
            Ok(r) => Ok(r),
            Err(e) => {
                self.forget(which);
                Err(e.to_string())
            }
        }
    }

    fn connection(&mut self, which: Coordinator) -> Option<&mut Connection> {
        match which {
            Coordinator::Txn => self.coordinator.as_mut(),
            Coordinator::Group(_) => self.group_coordinator.as_mut().map(|(_, c)| c),
        }
    }

    fn forget(&mut self, which: Coordinator) {
        match which {
            Coordinator::Txn => self.coordinator = None,
            Coordinator::Group(_) => self.group_coordinator = None,
        }
    }

    /// Sends `request` to `which` coordinator until it is answered with no error (`Ok`), an
    /// error not worth retrying (`Err` with its code), or the tries run out. A coordinator still
    /// finishing the previous transaction (CONCURRENT_TRANSACTIONS) is asked again soon, and not
    /// counted, up to `max.block.ms`, as Kafka's producer does.
    async fn settle<R: kafka_protocol::protocol::Request>(
        &mut self,
        which: Coordinator<'_>,
        request: &R,
        version: i16,
        code_of: impl Fn(&R::Response) -> i16,
    ) -> Result<(), i16> {
        let deadline = crate::env::now() + MAX_BLOCK;
        let mut tries = 0;
        while tries < 20 && crate::env::now() < deadline {
            let mut backoff = RETRY_BACKOFF;
            match self.call_at(which, request, version).await {
                Ok(r) => match code_of(&r) {
                    0 => return Ok(()),
                    error_code::CONCURRENT_TRANSACTIONS => backoff = CONCURRENT_BACKOFF,
                    code if !self.retriable(which, code) => return Err(code),
                    _ => {}
                },
                Err(e) => {
                    debug!(client = %self.client_id, error = %e, "coordinator request not answered")
                }
            }
            if backoff == RETRY_BACKOFF {
                tries += 1;
            }
            madsim::time::sleep(backoff).await;
        }
        Err(error_code::REQUEST_TIMED_OUT)
    }

    /// Whether an error code means: find the coordinator again, or wait, and retry.
    fn retriable(&mut self, which: Coordinator, code: i16) -> bool {
        use crate::group::error_code::{COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR};
        if matches!(code, NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE) {
            self.forget(which);
        }
        matches!(
            code,
            NOT_COORDINATOR | COORDINATOR_NOT_AVAILABLE | error_code::CONCURRENT_TRANSACTIONS
        )
    }

    /// Takes a producer id and a new epoch, retrying until `patience` runs out. Fences any older
    /// producer of this transactional id and aborts its open transaction.
    pub async fn init(&mut self, patience: Duration) -> Result<(), String> {
        let deadline = crate::env::now() + patience;
        loop {
            let mut request = InitProducerIdRequest::default();
            request.transactional_id =
                Some(StrBytes::from_string(self.transactional_id.clone()).into());
            request.transaction_timeout_ms = self.transaction_timeout_ms;
            request.producer_id = (-1).into();
            request.producer_epoch = -1;
            let error = match self.call(&request, INIT_PRODUCER_ID_VERSION).await {
                Ok(r) if r.error_code == 0 => {
                    self.producer_id = r.producer_id.0;
                    self.epoch = r.producer_epoch;
                    self.sequences.clear();
                    self.added.clear();
                    self.tainted = false;
                    debug!(client = %self.client_id, producer_id = self.producer_id, epoch = self.epoch, "transactional producer initialized");
                    return Ok(());
                }
                Ok(r) if self.retriable(Coordinator::Txn, r.error_code) => {
                    format!("error code {}", r.error_code)
                }
                Ok(r) => return Err(format!("InitProducerId: error code {}", r.error_code)),
                Err(e) => e,
            };
            if crate::env::now() >= deadline {
                return Err(format!("InitProducerId: {error}"));
            }
            madsim::time::sleep(RETRY_BACKOFF).await;
        }
    }

    /// Starts a transaction. After one whose sends were not all acknowledged, a new epoch first.
    pub async fn begin(&mut self) -> Result<(), String> {
        self.added.clear();
        if self.tainted || self.producer_id < 0 {
            self.init(self.timeout * 4).await?;
        }
        Ok(())
    }

    /// Adds `tp` to the transaction, retrying where the coordinator asks to.
    async fn add(&mut self, tp: &TopicPartition) -> Result<(), i16> {
        if self.added.contains(tp) {
            return Ok(());
        }
        let mut request = AddPartitionsToTxnRequest::default();
        request.v3_and_below_transactional_id =
            StrBytes::from_string(self.transactional_id.clone()).into();
        request.v3_and_below_producer_id = self.producer_id.into();
        request.v3_and_below_producer_epoch = self.epoch;
        let mut t = AddPartitionsToTxnTopic::default();
        t.name = TopicName(StrBytes::from_string(tp.topic.to_string()));
        t.partitions = vec![tp.partition];
        request.v3_and_below_topics = vec![t];
        let code_of = |r: &kafka_protocol::messages::AddPartitionsToTxnResponse| {
            (r.results_by_topic_v3_and_below.first())
                .and_then(|t| t.results_by_partition.first())
                .map_or(r.error_code, |p| p.partition_error_code)
        };
        (self.settle(Coordinator::Txn, &request, ADD_PARTITIONS_VERSION, code_of)).await?;
        self.added.insert(tp.clone());
        Ok(())
    }

    /// Commits a consumer group's `offsets` (each the next offset to read) inside the
    /// transaction, as Kafka's `sendOffsetsToTransaction` does: AddOffsetsToTxn to the
    /// transaction coordinator, then TxnOffsetCommit to the group's. They count once the
    /// transaction commits, and never if it aborts. An error (a generation a rebalance ended,
    /// say) leaves the transaction to be aborted.
    pub async fn send_offsets(
        &mut self,
        group: GroupMetadata<'_>,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<(), i16> {
        let outcome = self.try_send_offsets(group, offsets).await;
        if outcome.is_err() {
            self.tainted = true;
        }
        outcome
    }

    async fn try_send_offsets(
        &mut self,
        group: GroupMetadata<'_>,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<(), i16> {
        let mut add = AddOffsetsToTxnRequest::default();
        add.transactional_id = StrBytes::from_string(self.transactional_id.clone()).into();
        add.producer_id = self.producer_id.into();
        add.producer_epoch = self.epoch;
        add.group_id = GroupId(StrBytes::from_string(group.group.to_owned()));
        let code_of = |r: &kafka_protocol::messages::AddOffsetsToTxnResponse| r.error_code;
        (self.settle(Coordinator::Txn, &add, ADD_OFFSETS_VERSION, code_of)).await?;
        let mut commit = TxnOffsetCommitRequest::default();
        commit.transactional_id = add.transactional_id.clone();
        commit.group_id = add.group_id.clone();
        commit.producer_id = add.producer_id;
        commit.producer_epoch = self.epoch;
        commit.generation_id = group.generation;
        commit.member_id = StrBytes::from_string(group.member_id.to_owned());
        let mut topics: BTreeMap<&str, Vec<TxnOffsetCommitRequestPartition>> = BTreeMap::new();
        for (tp, offset) in offsets {
            let mut p = TxnOffsetCommitRequestPartition::default();
            p.partition_index = tp.partition;
            p.committed_offset = *offset;
            topics.entry(&tp.topic).or_default().push(p);
        }
        commit.topics = (topics.into_iter())
            .map(|(name, partitions)| {
                let mut t = TxnOffsetCommitRequestTopic::default();
                t.name = TopicName(StrBytes::from_string(name.to_owned()));
                t.partitions = partitions;
                t
            })
            .collect();
        let code_of = |r: &kafka_protocol::messages::TxnOffsetCommitResponse| {
            (r.topics.iter().flat_map(|t| t.partitions.iter()))
                .map(|p| p.error_code)
                .find(|c| *c != 0)
                .unwrap_or(0)
        };
        let group_coordinator = Coordinator::Group(group.group);
        (self.settle(
            group_coordinator,
            &commit,
            TXN_OFFSET_COMMIT_VERSION,
            code_of,
        ))
        .await
    }

    /// Sends `value` to `tp` in the transaction: the partition is added first if need be.
    pub async fn send(&mut self, tp: &TopicPartition, value: Bytes) -> SendOutcome {
        self.send_batch(tp, &[(None, value)]).await
    }

    /// Sends `records` to `tp` in the transaction as one batch: the partition is added first if
    /// need be. Acknowledged, the batch's first record's offset.
    pub async fn send_batch(
        &mut self,
        tp: &TopicPartition,
        records: &[(Option<Bytes>, Bytes)],
    ) -> SendOutcome {
        if let Err(error) = self.add(tp).await {
            self.tainted = true;
            return SendOutcome::Refused { error };
        }
        let sequence = self.sequences.get(tp).copied().unwrap_or(0);
        let stamp = TxnStamp {
            transactional_id: &self.transactional_id,
            producer_id: self.producer_id,
            producer_epoch: self.epoch,
            base_sequence: sequence,
        };
        let outcome = (self.client)
            .send_stamped(tp, -1, records, Some(&stamp))
            .await;
        match outcome {
            SendOutcome::Acked { .. } => {
                let next = sequence.wrapping_add(records.len() as i32) & i32::MAX;
                self.sequences.insert(tp.clone(), next);
            }
            _ => self.tainted = true,
        }
        outcome
    }

    /// Ends the transaction: commits it when `commit`, else aborts it.
    pub async fn end(&mut self, commit: bool) -> TxnEnd {
        // A commit asked and not answered may have taken effect.
        let mut uncertain: Option<String> = None;
        let verdict = |uncertain: &Option<String>, definite: TxnEnd| match uncertain {
            Some(reason) if definite != TxnEnd::Committed => TxnEnd::Unknown(reason.clone()),
            _ => definite,
        };
        for _ in 0..30 {
            let mut request = EndTxnRequest::default();
            request.transactional_id = StrBytes::from_string(self.transactional_id.clone()).into();
            request.producer_id = self.producer_id.into();
            request.producer_epoch = self.epoch;
            request.committed = commit;
            let answer: Answer = match self.call(&request, END_TXN_VERSION).await {
                Ok(r) => {
                    if r.error_code == 0
                        && r.producer_id.0 == self.producer_id
                        && r.producer_epoch > self.epoch
                    {
                        // Transaction version 2: the epoch moved on with the end.
                        self.epoch = r.producer_epoch;
                        self.sequences.clear();
                    }
                    Ok(r.error_code)
                }
                Err(e) => Err(e),
            };
            match answer {
                Ok(0) => {
                    self.added.clear();
                    return if commit {
                        TxnEnd::Committed
                    } else {
                        verdict(&uncertain, TxnEnd::Aborted)
                    };
                }
                Ok(code) if self.retriable(Coordinator::Txn, code) => {
                    // The coordinator may have written the decision and lost track of it.
                    if commit && code != error_code::CONCURRENT_TRANSACTIONS {
                        uncertain = Some(format!("EndTxn: error code {code}"));
                    }
                }
                Ok(code) => {
                    // Fenced, or the transaction was aborted under it (a timeout): it did not
                    // commit, unless an earlier unanswered commit did.
                    debug!(client = %self.client_id, commit, error_code = code, "EndTxn refused");
                    self.tainted = true;
                    return verdict(&uncertain, TxnEnd::Aborted);
                }
                Err(e) => {
                    if commit {
                        uncertain = Some(e);
                    }
                }
            }
            madsim::time::sleep(RETRY_BACKOFF).await;
        }
        self.tainted = true;
        match uncertain {
            Some(reason) => TxnEnd::Unknown(reason),
            None if commit => TxnEnd::Unknown("EndTxn retries ran out".into()),
            None => TxnEnd::Aborted,
        }
    }
}
