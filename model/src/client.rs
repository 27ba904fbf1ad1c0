//! A Kafka client in miniature: finds partition leaders through Metadata, produces with acks 0, 1
//! or all, and fetches committed records, all in Kafka's wire protocol.
//!
//! A send is tried once. Its outcome says what the client knows: acked at an offset, refused before
//! anything was written, or unknown (the request went out and no clear answer came back), which is
//! what a history checker must treat as "may or may not have happened".

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    BrokerId as WireBrokerId, ListOffsetsRequest, MetadataRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use tracing::{debug, trace};

use crate::fetch_codec::{FetchAnswer, FetchQuery, PartitionQuery};
use crate::fetch_session::handler::SessionHandler;
use crate::fetcher::error_code;
use crate::produce_codec::SingleProduce;
use crate::wire::{CallError, Connection};
use crate::{batch, BrokerId, TopicPartition};

const METADATA_VERSION: i16 = 12;
const LIST_OFFSETS_VERSION: i16 = 7;
/// `max.partition.fetch.bytes` and `fetch.max.bytes`, Kafka's consumer defaults.
const PARTITION_FETCH_MAX_BYTES: i32 = 1024 * 1024;
const FETCH_MAX_BYTES: i32 = 50 * 1024 * 1024;

/// ListOffsets' name for the first offset of a partition.
pub const EARLIEST: i64 = -2;
/// ListOffsets' name for the end of a partition (its high watermark).
pub const LATEST: i64 = -1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    Acked {
        offset: i64,
    },
    /// acks=0: sent, nothing more is known.
    Sent,
    Refused {
        error: i16,
    },
    Unknown {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollOutcome {
    Records {
        records: Vec<(i64, Bytes)>,
        high_watermark: i64,
        /// Where the next read starts: past every batch the answer held, records or not (a
        /// read_committed reader skips markers and aborted records, and must not read them again).
        next_offset: i64,
    },
    Failed {
        reason: String,
    },
}

/// Whose transaction a batch belongs to, and where it stands in its producer's sequence.
#[derive(Clone, Copy, Debug)]
pub struct TxnStamp<'a> {
    pub transactional_id: &'a str,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

pub struct Client {
    bootstrap: Vec<SocketAddr>,
    client_id: String,
    timeout: Duration,
    connections: BTreeMap<BrokerId, Connection>,
    brokers: BTreeMap<BrokerId, SocketAddr>,
    leaders: BTreeMap<TopicPartition, (BrokerId, i32)>,
    /// The highest leader epoch seen of each partition, kept when its leader is forgotten: a
    /// metadata answer from a broker that has not heard of a newer leader must not take the
    /// client back to an older one (KIP-320).
    leader_epochs_seen: BTreeMap<TopicPartition, i32>,
    /// Whether an answer naming an older leader epoch than seen is ignored (KIP-320); see
    /// [`Client::ignoring_older_leader_epochs`].
    ignore_older_leader_epochs: bool,
    next_bootstrap: usize,
    /// Connections to the bootstrap brokers that metadata requests go over, kept as Kafka's
    /// clients keep theirs: a producer that keeps losing its leader asks again and again, and a
    /// new connection each time would cost a handshake each time. The requests still go round
    /// the bootstrap brokers in turn, so one broker with a stale view cannot hold a client to it.
    /// A connection is dropped on any error.
    metadata: BTreeMap<usize, Connection>,
    /// The fetch session with each leader, kept across polls.
    sessions: BTreeMap<BrokerId, SessionHandler>,
    /// The high watermark each partition's leader last told, for polls it had no news for.
    high_watermarks: BTreeMap<TopicPartition, i64>,
    /// Reads only committed records, up to the last stable offset (`isolation.level`).
    read_committed: bool,
}

impl Client {
    pub fn new(
        bootstrap: Vec<SocketAddr>,
        client_id: impl Into<String>,
        timeout: Duration,
    ) -> Self {
        assert!(!bootstrap.is_empty());
        Client {
            bootstrap,
            client_id: client_id.into(),
            timeout,
            connections: BTreeMap::new(),
            brokers: BTreeMap::new(),
            leaders: BTreeMap::new(),
            leader_epochs_seen: BTreeMap::new(),
            ignore_older_leader_epochs: false,
            next_bootstrap: 0,
            metadata: BTreeMap::new(),
            sessions: BTreeMap::new(),
            high_watermarks: BTreeMap::new(),
            read_committed: false,
        }
    }

    /// Reads only what committed transactions wrote, as `isolation.level=read_committed` does.
    pub fn reading_committed(mut self) -> Self {
        self.read_committed = true;
        self
    }

    /// The leader this client believes in, and its epoch.
    pub fn leader(&self, tp: &TopicPartition) -> Option<(BrokerId, i32)> {
        self.leaders.get(tp).copied()
    }

    /// Never goes back to an older leader epoch of a partition than one already seen, whatever a
    /// stale broker's metadata says, as Kafka's clients do since KIP-320. The producer turns it
    /// on. It is off otherwise so that the one-shot client and the consumers keep the runs they
    /// had, with the traces and soak seeds pinned to them; turning it on for them moves those.
    pub fn ignoring_older_leader_epochs(mut self) -> Self {
        self.ignore_older_leader_epochs = true;
        self
    }

    /// Where broker `id` listens, as the last metadata answer said.
    pub fn broker_address(&self, id: BrokerId) -> Option<SocketAddr> {
        self.brokers.get(&id).copied()
    }

    pub async fn refresh_metadata(&mut self, topic: &str) -> Result<(), String> {
        self.refresh_leaders(topic).await.map(drop)
    }

    /// Asks a bootstrap broker, in turn, for `topic`'s metadata; returns the partitions whose
    /// leader or leader epoch this client now believes differently.
    pub async fn refresh_leaders(&mut self, topic: &str) -> Result<Vec<TopicPartition>, String> {
        let which = self.next_bootstrap % self.bootstrap.len();
        self.next_bootstrap += 1;
        let failed = |client: &str, error: String| {
            debug!(%client, topic, bootstrap = which, %error, "metadata refresh failed");
            error
        };
        let mut conn = match self.metadata.remove(&which) {
            Some(conn) => conn,
            None => Connection::connect(self.bootstrap[which], &self.client_id, self.timeout)
                .await
                .map_err(|e| failed(&self.client_id, e.to_string()))?,
        };
        let mut t = MetadataRequestTopic::default();
        t.name = Some(TopicName(StrBytes::from_string(topic.to_owned())));
        let mut request = MetadataRequest::default();
        request.topics = Some(vec![t]);
        let response = conn
            .call(&request, METADATA_VERSION, self.timeout)
            .await
            .map_err(|e| failed(&self.client_id, e.to_string()))?;
        self.metadata.insert(which, conn);
        // What it believed before, for the log only: read only when the log would show it.
        let before = tracing::enabled!(tracing::Level::DEBUG).then(|| self.topic_leaders(topic));
        for b in response.brokers {
            if let Ok(ip) = b.host.as_str().parse() {
                self.brokers
                    .insert(b.node_id.0, SocketAddr::new(ip, b.port as u16));
            }
        }
        let mut changed = Vec::new();
        for t in response.topics {
            let Some(name) = t.name else { continue };
            for p in t.partitions {
                let tp = TopicPartition::new(name.0.as_str(), p.partition_index);
                let seen = self.leader_epochs_seen.entry(tp.clone()).or_insert(-1);
                if self.ignore_older_leader_epochs && p.leader_epoch < *seen {
                    trace!(
                        client = %self.client_id,
                        partition = %tp,
                        epoch = p.leader_epoch,
                        seen = *seen,
                        "metadata names an older leader epoch than seen: kept what is known"
                    );
                    continue;
                }
                *seen = (*seen).max(p.leader_epoch);
                let now = (p.leader_id.0 >= 0).then_some((p.leader_id.0, p.leader_epoch));
                let old = match now {
                    Some(leader) => self.leaders.insert(tp.clone(), leader),
                    None => self.leaders.remove(&tp),
                };
                if old != now {
                    changed.push(tp);
                }
            }
        }
        if let Some(before) = before {
            let leaders = self.topic_leaders(topic);
            if leaders != before {
                debug!(
                    client = %self.client_id,
                    topic,
                    bootstrap = which,
                    ?leaders,
                    "metadata refreshed: leaders (partition, leader, epoch) changed"
                );
            } else {
                trace!(client = %self.client_id, topic, bootstrap = which, "metadata refreshed");
            }
        }
        Ok(changed)
    }

    /// The leaders this client knows of `topic`'s partitions, for the log.
    fn topic_leaders(&self, topic: &str) -> Vec<(i32, BrokerId, i32)> {
        self.leaders
            .iter()
            .filter(|(tp, _)| &*tp.topic == topic)
            .map(|(tp, (leader, epoch))| (tp.partition, *leader, *epoch))
            .collect()
    }

    async fn leader_connection(&mut self, tp: &TopicPartition) -> Result<(BrokerId, i32), String> {
        if !self.leaders.contains_key(tp) {
            self.refresh_metadata(&tp.topic).await?;
        }
        let (leader, epoch) = self
            .leaders
            .get(tp)
            .copied()
            .ok_or_else(|| format!("no leader for {tp}"))?;
        if !self.connections.contains_key(&leader) {
            let address = *self
                .brokers
                .get(&leader)
                .ok_or_else(|| format!("no address for broker {leader}"))?;
            let conn = Connection::connect(address, &self.client_id, self.timeout)
                .await
                .map_err(|e| {
                    debug!(
                        client = %self.client_id,
                        partition = %tp,
                        leader,
                        error = %e,
                        "cannot connect to the leader: will look it up again"
                    );
                    self.leaders.remove(tp);
                    e.to_string()
                })?;
            self.connections.insert(leader, conn);
        }
        Ok((leader, epoch))
    }

    /// Drops what this client believed of `tp`'s leader, and the connection to it, after a failed
    /// exchange: the next call asks for metadata again.
    fn forget(&mut self, tp: &TopicPartition, leader: BrokerId, error: &dyn std::fmt::Display) {
        debug!(
            client = %self.client_id,
            partition = %tp,
            leader,
            %error,
            "exchange with the leader failed: forgetting it and its connection"
        );
        self.leaders.remove(tp);
        self.connections.remove(&leader);
    }

    /// Drops what this client believed of `tp`'s leader after the leader answered with an error:
    /// the next call asks for metadata again.
    pub(crate) fn forget_leader(&mut self, tp: &TopicPartition, error_code: i16) {
        debug!(
            client = %self.client_id,
            partition = %tp,
            leader = ?self.leaders.get(tp),
            error_code,
            "leader answered with an error: will look the leader up again"
        );
        self.leaders.remove(tp);
    }

    pub async fn send(
        &mut self,
        tp: &TopicPartition,
        acks: i16,
        key: Option<Bytes>,
        value: Bytes,
    ) -> SendOutcome {
        self.send_batch(tp, acks, &[(key, value)]).await
    }

    /// Sends `records` as one batch; an acknowledgement gives the first one's offset, and the
    /// others follow it.
    pub async fn send_batch(
        &mut self,
        tp: &TopicPartition,
        acks: i16,
        records: &[(Option<Bytes>, Bytes)],
    ) -> SendOutcome {
        self.send_stamped(tp, acks, records, None).await
    }

    /// `send_batch`, as a transactional producer's batch when `txn` says whose.
    pub async fn send_stamped(
        &mut self,
        tp: &TopicPartition,
        acks: i16,
        records: &[(Option<Bytes>, Bytes)],
        txn: Option<&TxnStamp<'_>>,
    ) -> SendOutcome {
        let (leader, _) = match self.leader_connection(tp).await {
            Ok(l) => l,
            Err(error) => {
                trace!(client = %self.client_id, partition = %tp, %error, "send refused: no leader to send to");
                return SendOutcome::Refused {
                    error: error_code::NOT_LEADER_OR_FOLLOWER,
                };
            }
        };
        let mut batch = batch::encode(records, 0);
        if let Some(t) = txn {
            let mut stamped = batch.to_vec();
            batch::set_transactional(&mut stamped);
            batch::set_producer(
                &mut stamped,
                t.producer_id,
                t.producer_epoch,
                t.base_sequence,
            );
            batch = Bytes::from(stamped);
        }
        let produce = SingleProduce {
            transactional_id: txn.map(|t| t.transactional_id),
            topic: &tp.topic,
            partition: tp.partition,
            acks,
            timeout_ms: self.timeout.as_millis() as i32,
            records: &batch,
        };
        let conn = self.connections.get_mut(&leader).expect("connected");
        if acks == 0 {
            return match conn.produce_unanswered(&produce, self.timeout).await {
                Ok(()) => SendOutcome::Sent,
                Err(e) => {
                    self.forget(tp, leader, &e);
                    SendOutcome::Unknown {
                        reason: e.to_string(),
                    }
                }
            };
        }
        let (error_code, base_offset) = match conn.produce(&produce, self.timeout * 2).await {
            Ok(Some(answer)) => answer,
            Ok(None) => {
                return SendOutcome::Unknown {
                    reason: "empty produce response".into(),
                }
            }
            Err(e) => {
                self.forget(tp, leader, &e);
                return SendOutcome::Unknown {
                    reason: e.to_string(),
                };
            }
        };
        trace!(
            client = %self.client_id,
            partition = %tp,
            leader,
            acks,
            error_code,
            base_offset,
            "produce answered"
        );
        match error_code {
            error_code::NONE => SendOutcome::Acked {
                offset: base_offset,
            },
            code @ (error_code::NOT_LEADER_OR_FOLLOWER
            | error_code::FENCED_LEADER_EPOCH
            | error_code::UNKNOWN_LEADER_EPOCH
            | error_code::NOT_ENOUGH_REPLICAS
            | error_code::KAFKA_STORAGE_ERROR
            | error_code::CORRUPT_MESSAGE
            | error_code::OUT_OF_ORDER_SEQUENCE_NUMBER
            | error_code::INVALID_PRODUCER_EPOCH
            | error_code::INVALID_TXN_STATE
            | error_code::PRODUCER_FENCED) => {
                self.forget_leader(tp, code);
                SendOutcome::Refused { error: code }
            }
            code => {
                self.forget_leader(tp, code);
                SendOutcome::Unknown {
                    reason: format!("error code {code}"),
                }
            }
        }
    }

    /// Asks the leader of `tp` for an offset: `EARLIEST` or `LATEST`.
    pub async fn list_offset(
        &mut self,
        tp: &TopicPartition,
        timestamp: i64,
    ) -> Result<i64, String> {
        let (leader, epoch) = self.leader_connection(tp).await?;
        let mut p = ListOffsetsPartition::default();
        p.partition_index = tp.partition;
        p.current_leader_epoch = epoch;
        p.timestamp = timestamp;
        let mut t = ListOffsetsTopic::default();
        t.name = TopicName(StrBytes::from_string(tp.topic.to_string()));
        t.partitions = vec![p];
        let mut request = ListOffsetsRequest::default();
        request.replica_id = WireBrokerId(-1);
        request.topics = vec![t];
        let conn = self.connections.get_mut(&leader).expect("connected");
        let response = match conn
            .call(&request, LIST_OFFSETS_VERSION, self.timeout)
            .await
        {
            Ok(r) => r,
            Err(e) => {
                self.forget(tp, leader, &e);
                return Err(e.to_string());
            }
        };
        let p = response
            .topics
            .into_iter()
            .next()
            .and_then(|t| t.partitions.into_iter().next())
            .ok_or_else(|| "empty list offsets response".to_owned())?;
        if p.error_code != error_code::NONE {
            self.forget_leader(tp, p.error_code);
            return Err(format!("error code {}", p.error_code));
        }
        Ok(p.offset)
    }

    /// Reads committed records of `tp` from `offset` on, from its leader.
    pub async fn poll(
        &mut self,
        tp: &TopicPartition,
        offset: i64,
        max_wait_ms: i32,
    ) -> PollOutcome {
        let mut polled = self.poll_many(&[(tp.clone(), offset)], max_wait_ms).await;
        polled.pop().map_or_else(
            || PollOutcome::Failed {
                reason: "no answer".into(),
            },
            |(_, outcome)| outcome,
        )
    }

    /// Reads committed records of each partition from its offset on, as Kafka's consumer does:
    /// one fetch to each leader, in a fetch session, all at once. Each partition gets an outcome,
    /// in the order asked; a partition the leader had no news of gets no records.
    pub async fn poll_many(
        &mut self,
        wanted: &[(TopicPartition, i64)],
        max_wait_ms: i32,
    ) -> Vec<(TopicPartition, PollOutcome)> {
        let mut outcomes: BTreeMap<TopicPartition, PollOutcome> = BTreeMap::new();
        let mut by_leader: BTreeMap<BrokerId, Vec<PartitionQuery>> = BTreeMap::new();
        for (tp, offset) in wanted {
            match self.leader_connection(tp).await {
                Ok((leader, epoch)) => by_leader.entry(leader).or_default().push(PartitionQuery {
                    tp: tp.clone(),
                    first_of_topic: false,
                    current_leader_epoch: epoch,
                    fetch_offset: *offset,
                    last_fetched_epoch: -1,
                    partition_max_bytes: PARTITION_FETCH_MAX_BYTES,
                }),
                Err(reason) => {
                    outcomes.insert(tp.clone(), PollOutcome::Failed { reason });
                }
            }
        }
        let wait = Duration::from_millis(max_wait_ms.max(0) as u64);
        let limit = self.timeout + wait;
        let fetches = by_leader.into_iter().map(|(leader, partitions)| {
            let conn = self.connections.remove(&leader).expect("connected");
            let session = self.sessions.remove(&leader).unwrap_or_default();
            let query = FetchQuery {
                replica_id: -1,
                max_wait_ms,
                max_bytes: FETCH_MAX_BYTES,
                isolation_level: i8::from(self.read_committed),
                ..FetchQuery::default()
            };
            let mut f = LeaderFetch {
                leader,
                conn,
                session,
                partitions,
                query,
                answer: FetchAnswer::default(),
            };
            async move {
                f.session.build(&f.partitions, &mut f.query);
                let known = f.partitions.first().map(|p| p.tp.topic.clone());
                let result = (f.conn)
                    .fetch(&f.query, known.as_ref(), &mut f.answer, limit)
                    .await;
                (f, result)
            }
        });
        for (f, result) in futures_util::future::join_all(fetches).await {
            self.take_fetch(f, result, &mut outcomes);
        }
        wanted
            .iter()
            .map(|(tp, offset)| {
                let outcome = outcomes.remove(tp).unwrap_or_else(|| PollOutcome::Records {
                    records: Vec::new(),
                    high_watermark: self.high_watermarks.get(tp).copied().unwrap_or(*offset),
                    next_offset: *offset,
                });
                (tp.clone(), outcome)
            })
            .collect()
    }

    /// Takes one leader's answer to a poll into `outcomes`.
    fn take_fetch(
        &mut self,
        mut f: LeaderFetch,
        result: Result<(), CallError>,
        outcomes: &mut BTreeMap<TopicPartition, PollOutcome>,
    ) {
        let failed = |reason: String| PollOutcome::Failed { reason };
        if let Err(e) = result {
            f.session.lost_answer();
            self.sessions.insert(f.leader, f.session);
            for p in &f.partitions {
                self.forget(&p.tp, f.leader, &e);
                outcomes.insert(p.tp.clone(), failed(e.to_string()));
            }
            return;
        }
        self.connections.insert(f.leader, f.conn);
        let accepted = f.session.take_answer(&f.answer);
        self.sessions.insert(f.leader, f.session);
        if !accepted {
            let reason = format!("fetch session error code {}", f.answer.error_code);
            for p in &f.partitions {
                outcomes.insert(p.tp.clone(), failed(reason.clone()));
            }
            return;
        }
        let offsets: BTreeMap<&TopicPartition, i64> = f
            .partitions
            .iter()
            .map(|p| (&p.tp, p.fetch_offset))
            .collect();
        for (topic, data) in std::mem::take(&mut f.answer.partitions) {
            let tp = TopicPartition::new(topic, data.partition_index);
            let Some(&offset) = offsets.get(&tp) else {
                continue;
            };
            let outcome = if data.error_code != error_code::NONE {
                self.forget_leader(&tp, data.error_code);
                failed(format!("error code {}", data.error_code))
            } else {
                self.high_watermarks.insert(tp.clone(), data.high_watermark);
                let mut next_offset = offset;
                let mut committed = crate::committed::Filter::new(&data.aborted);
                let read_committed = self.read_committed;
                let decoded = batch::decode_where(data.records, |h| {
                    next_offset = next_offset.max(h.next_offset());
                    !read_committed || committed.keeps(h)
                });
                match decoded {
                    Ok(records) => PollOutcome::Records {
                        records: records
                            .into_iter()
                            .filter(|(o, _, _)| *o >= offset)
                            .map(|(o, _, v)| (o, v.unwrap_or_default()))
                            .collect(),
                        high_watermark: data.high_watermark,
                        next_offset,
                    },
                    Err(e) => failed(format!("undecodable records: {e}")),
                }
            };
            outcomes.insert(tp, outcome);
        }
    }
}

/// One leader's part of a poll, carried through the fetch and back.
struct LeaderFetch {
    leader: BrokerId,
    conn: Connection,
    session: SessionHandler,
    partitions: Vec<PartitionQuery>,
    query: FetchQuery,
    answer: FetchAnswer,
}
