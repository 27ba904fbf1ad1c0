//! The workload: producers sending unique values to the partitions of one topic, and consumers
//! reading every partition from the start. Every operation goes into the history.
//!
//! Draw order (changing it changes every seed): each producer draws, per send, first the partition
//! (or, with `keys`, the record key, whose partition Kafka's partitioner picks) and then the pause
//! before its next send. A consumer that restarts draws from its own stream, the time to each
//! restart.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use model::sync::Lock;
use std::time::Duration;

use bytes::Bytes;
use madsim::time::Instant;
use model::client::{Client, PollOutcome, SendOutcome, EARLIEST};
use model::producer::{Producer, ProducerConfig};
use model::partitioner::partition_for_key;
use model::TopicPartition;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::record::history::AckedSend;
use crate::record::history::{key, History, Op, OpFn, OpType, Value};
use crate::scenario;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);

/// The producers' settings from the scenario's `[workload]`: `None` for the one-shot client.
pub fn producer_config(w: &scenario::Workload) -> Option<ProducerConfig> {
    if w.one_shot() {
        return None;
    }
    let mut config = ProducerConfig::kafka_default(w.acks.wire(), CLIENT_TIMEOUT);
    config.idempotence = w.idempotent();
    config.linger = w.linger.0;
    config.batch_size = w.batch_size as usize;
    config.max_in_flight = w.max_in_flight as usize;
    config.retries = w.retries;
    config.delivery_timeout = w.delivery_timeout.0;
    Some(config)
}
const POLL_MAX_WAIT_MS: i32 = 100;
const BACKOFF: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
/// What the clients did, counted.
pub struct WorkloadStats {
    /// Records sent.
    pub produced: u64,
    /// Sends acknowledged.
    pub acked: u64,
    /// Sends refused.
    pub refused: u64,
    /// Sends whose outcome is unknown.
    pub unknown: u64,
    /// Polls that returned records.
    pub polls: u64,
    /// Values read.
    pub consumed: u64,
    /// Consumer restarts (each resumes from its last commit).
    pub consumer_restarts: u64,
    /// Transactions committed.
    #[serde(skip_serializing_if = "is_zero")]
    pub txn_committed: u64,
    /// Transactions aborted (by choice, or because a send failed).
    #[serde(skip_serializing_if = "is_zero")]
    pub txn_aborted: u64,
    /// Transactions whose commit may or may not have taken effect.
    #[serde(skip_serializing_if = "is_zero")]
    pub txn_unknown: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Clone)]
/// What every client of a run shares: its settings, stop flags, and what it records.
pub struct Workload {
    /// The topic the workload uses.
    pub topic: String,
    /// How many partitions it has.
    pub partitions: i32,
    /// The producers' acks setting (-1 for all).
    pub acks: i16,
    /// Distinct record keys (`user-0` ...); 0 sends unkeyed records to random partitions.
    pub keys: u32,
    /// A consumer restarts after a time drawn from this range (ms), when set.
    pub consumer_restarts_ms: Option<(u64, u64)>,
    /// How often a restarting consumer commits its positions.
    pub commit_interval: Duration,
    /// The range each producer waits between sends, in milliseconds.
    pub send_interval_ms: (u64, u64),
    /// Kafka's producer with these settings; `None` for the one-shot client.
    pub producer: Option<ProducerConfig>,
    /// How long a producer, once stopped, waits for its outstanding sends before it closes.
    pub producer_drain: Duration,
    /// How long a consumer waits between polls.
    pub poll_interval: Duration,
    /// The addresses of the scenario's own cluster (not MirrorMaker's target).
    pub bootstrap: Vec<SocketAddr>,
    /// The run's client history.
    pub history: History,
    /// When the run started.
    pub start: Instant,
    /// Set when producers must stop.
    pub stop_producers: Arc<AtomicBool>,
    /// Set when consumers must stop.
    pub stop_consumers: Arc<AtomicBool>,
    /// Every acks=all acknowledgement, in the order of simulated time.
    pub acked: Arc<Lock<Vec<AckedSend>>>,
    /// Sends acknowledged with acks=1: allowed to be lost, and counted when they are.
    pub acked_weak: Arc<Lock<Vec<AckedSend>>>,
    /// Consumers read only what committed transactions wrote.
    pub read_committed: bool,
    /// The transactional producers' settings, when the scenario has them.
    pub transactions: Option<crate::scenario::TransactionsSpec>,
    /// The highest high watermark each partition showed a consumer.
    pub shown_high_watermarks: Arc<Lock<BTreeMap<String, i64>>>,
    /// What the clients did, counted.
    pub stats: Arc<Lock<WorkloadStats>>,
}

impl Workload {
    /// Simulated milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        (model::env::now() - self.start).as_millis() as u64
    }

    /// An operation of `process`, stamped with the time now.
    pub fn op(&self, process: u64, kind: OpType, f: OpFn) -> Op {
        let mut op = Op::new(process, kind, f);
        op.time_ms = Some(self.now_ms());
        op
    }

    /// A consumer's client, reading at the workload's isolation level.
    pub fn consumer_client(&self, client_id: String) -> Client {
        let client = Client::new(self.bootstrap.clone(), client_id, CLIENT_TIMEOUT);
        if self.read_committed {
            client.reading_committed()
        } else {
            client
        }
    }

    /// The counts, locked.
    pub fn stats(&self) -> model::sync::LockGuard<'_, WorkloadStats> {
        self.stats.lock()
    }
}

/// A producer: process `id` of `producers`. Its values are `sequence * producers + id`, so that
/// every value in the run is unique. With `w.producer` it runs Kafka's producer, handing each
/// record over without waiting; without, the one-shot client, each send awaited before the next.
pub async fn producer(w: Workload, id: u32, producers: u32, seed: u64) {
    match w.producer.clone() {
        Some(config) => pipelined_producer(w, id, producers, seed, config).await,
        None => one_shot_producer(w, id, producers, seed).await,
    }
}

/// Each partition's name and history key, made once rather than for every send.
type PartitionNames = Vec<(TopicPartition, Arc<str>, Arc<str>)>;

fn partition_names(w: &Workload) -> PartitionNames {
    let topic: Arc<str> = w.topic.as_str().into();
    (0..w.partitions)
        .map(|p| {
            let tp = TopicPartition::new(topic.clone(), p);
            let name = tp.to_string().into();
            (tp, key(&w.topic, p).into(), name)
        })
        .collect()
}

/// A producer's next record, drawn from its stream: the partition (or the record key, whose
/// partition Kafka's partitioner picks), then the pause before the next.
struct Draw {
    partition: usize,
    record_key: Option<String>,
    pause: Duration,
    value: u64,
}

fn draw(w: &Workload, rng: &mut ChaCha8Rng, sequence: &mut u64, id: u32, producers: u32) -> Draw {
    let (partition, record_key) = if w.keys == 0 {
        (rng.random_range(0..w.partitions), None)
    } else {
        let key = format!("user-{}", rng.random_range(0..w.keys));
        (partition_for_key(key.as_bytes(), w.partitions), Some(key))
    };
    let pause = rng.random_range(w.send_interval_ms.0..=w.send_interval_ms.1);
    let value = *sequence * u64::from(producers) + u64::from(id);
    *sequence += 1;
    Draw {
        partition: partition as usize,
        record_key,
        pause: Duration::from_millis(pause),
        value,
    }
}

/// Writes a send's invoke into the history and counts it; returns the invoke.
fn invoke(w: &Workload, process: u64, history_key: &Arc<str>, d: &Draw) -> Op {
    let mut invoke = w.op(process, OpType::Invoke, OpFn::Send);
    invoke.key = Some(history_key.clone());
    invoke.value = Some(Value::One(d.value));
    invoke.acks = Some(w.acks);
    invoke.record_key = d.record_key.as_deref().map(Box::from);
    w.history.push(invoke.clone());
    w.stats().produced += 1;
    invoke
}

/// The completion of the send `invoke` (of partition `name`) with `outcome`: counted, and an
/// acknowledgement noted for the durability checks. Returns the operation for the history.
fn completion(w: &Workload, invoke: Op, name: &Arc<str>, outcome: SendOutcome) -> Op {
    let value = invoke.sent().expect("a send's value");
    let mut done = w.op(invoke.process, OpType::Ok, OpFn::Send);
    done.key = invoke.key;
    done.value = Some(Value::One(value));
    done.acks = invoke.acks;
    done.record_key = invoke.record_key;
    match outcome {
        SendOutcome::Acked { offset } => {
            done.offset = Some(offset);
            w.stats().acked += 1;
            let acked = AckedSend {
                partition: name.clone(),
                offset,
                value: Bytes::from(value.to_string()),
                time_ms: w.now_ms(),
            };
            match w.acks {
                -1 => w.acked.lock().push(acked),
                1 => w.acked_weak.lock().push(acked),
                _ => {}
            }
        }
        SendOutcome::Sent => done.kind = OpType::Info,
        SendOutcome::Refused { error } => {
            done.kind = OpType::Fail;
            done.error = Some(format!("error code {error}").into());
            w.stats().refused += 1;
        }
        SendOutcome::Unknown { reason } => {
            done.kind = OpType::Info;
            done.error = Some(reason.into());
            w.stats().unknown += 1;
        }
    }
    done
}

/// Today's one-shot client: each send is one request, awaited, tried once; after a send that was
/// not acknowledged the producer backs off instead of pausing.
async fn one_shot_producer(w: Workload, id: u32, producers: u32, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let process = u64::from(id);
    let mut client = Client::new(
        w.bootstrap.clone(),
        format!("producer-{id}"),
        CLIENT_TIMEOUT,
    );
    let mut sequence = 0u64;
    let names = partition_names(&w);
    while !w.stop_producers.load(Ordering::Relaxed) {
        let d = draw(&w, &mut rng, &mut sequence, id, producers);
        let (tp, history_key, name) = &names[d.partition];
        let invoke = invoke(&w, process, history_key, &d);
        let value_bytes = Bytes::from(d.value.to_string());
        let record_key = d.record_key.map(Bytes::from);
        let outcome = client.send(tp, w.acks, record_key, value_bytes).await;
        let done = completion(&w, invoke, name, outcome);
        let backoff = matches!(done.kind, OpType::Fail | OpType::Info) && done.error.is_some();
        if backoff {
            tracing::debug!(
                producer = id,
                partition = %tp,
                value = d.value,
                outcome = ?done.kind,
                error = done.error.as_deref().unwrap_or(""),
                "send not acknowledged: backing off before the next send"
            );
        }
        w.history.push(done);
        madsim::time::sleep(if backoff { BACKOFF } else { d.pause }).await;
    }
}

/// Kafka's producer: each record is handed over at the drawn pace without waiting for earlier
/// ones, and its completion goes into the history when its callback runs. After the producers
/// stop, it waits up to `w.producer_drain` for what is still outstanding, then closes: what is
/// left is recorded as unknown.
async fn pipelined_producer(
    w: Workload,
    id: u32,
    producers: u32,
    seed: u64,
    config: ProducerConfig,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let process = u64::from(id);
    let producer = Producer::start(w.bootstrap.clone(), format!("producer-{id}"), config);
    let w = Arc::new(w);
    let mut sequence = 0u64;
    let names = partition_names(&w);
    while !w.stop_producers.load(Ordering::Relaxed) {
        let d = draw(&w, &mut rng, &mut sequence, id, producers);
        let (tp, history_key, name) = &names[d.partition];
        let invoke = invoke(&w, process, history_key, &d);
        let value_bytes = Bytes::from(d.value.to_string());
        let record_key = d.record_key.map(Bytes::from);
        let (recorder, name) = (w.clone(), name.clone());
        producer.send(tp, record_key, value_bytes, move |outcome| {
            let done = completion(&recorder, invoke, &name, outcome);
            recorder.history.push(done);
        });
        madsim::time::sleep(d.pause).await;
    }
    if !producer.flush(w.producer_drain).await {
        tracing::debug!(
            producer = id,
            outstanding = producer.outstanding(),
            "sends still outstanding at the end of the drain: recorded as unknown"
        );
    }
    producer.close();
}

/// A consumer, history process `process`: it assigns itself every partition, finds where each
/// starts with ListOffsets (earliest), as auto.offset.reset=earliest does, and polls them in turn.
/// With `consumer_restarts_ms` (and `seed`), it commits its positions every `commit_interval` and
/// restarts now and then: a new client, and reading resumes from the last commit, as a consumer
/// process that crashed would; what it read after that commit it reads again. Each restart is a
/// new history process, as in Jepsen: the k-th is `process + k * process_stride`, where the stride
/// is the number of processes the run starts, so no other client has its id. Its assigns and
/// commits name a group of its own (`consumer-ID`), the link that lets the checker resume each
/// incarnation from the commits of the ones before.
pub async fn consumer(w: Workload, id: u32, process: u64, process_stride: u64, seed: Option<u64>) {
    let new_client = || w.consumer_client(format!("consumer-{id}"));
    let mut client = new_client();
    let mut restarts = w
        .consumer_restarts_ms
        .zip(seed)
        .map(|(range, seed)| (range, ChaCha8Rng::seed_from_u64(seed)));
    // Only a consumer that commits needs a group (Kafka's group.id); one that never restarts has
    // none, so its history is as it was.
    let group: Option<Box<str>> = restarts.as_ref().map(|_| format!("consumer-{id}").into());
    let assign = |process| {
        let mut op = w.op(process, OpType::Ok, OpFn::Assign);
        op.keys = Some((0..w.partitions).map(|p| key(&w.topic, p)).collect());
        op.group = group.clone();
        op
    };
    let mut process = process;
    w.history.push(assign(process));
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    let mut restart_at = restarts
        .as_mut()
        .map(|((lo, hi), rng)| Instant::now() + Duration::from_millis(rng.random_range(*lo..=*hi)));
    let mut committed: BTreeMap<i32, i64> = BTreeMap::new();
    let mut commit_at = Instant::now() + w.commit_interval;
    while !w.stop_consumers.load(Ordering::Relaxed) {
        if let Some(at) = restart_at.filter(|at| Instant::now() >= *at) {
            client = new_client();
            positions = committed.clone();
            process += process_stride;
            w.history.push(assign(process));
            w.stats().consumer_restarts += 1;
            restart_at = restarts
                .as_mut()
                .map(|((lo, hi), rng)| at + Duration::from_millis(rng.random_range(*lo..=*hi)));
        }
        if restart_at.is_some() && Instant::now() >= commit_at {
            let mut commit = w.op(process, OpType::Ok, OpFn::Commit);
            commit.group = group.clone();
            commit.offsets = Some(Box::new(
                positions
                    .iter()
                    .map(|(p, o)| (key(&w.topic, *p), *o))
                    .collect(),
            ));
            w.history.push(commit);
            committed = positions.clone();
            commit_at = Instant::now() + w.commit_interval;
        }
        let all: Vec<i32> = (0..w.partitions).collect();
        poll(&w, &mut client, process, &all, &mut positions).await;
        madsim::time::sleep(w.poll_interval).await;
    }
}

/// One poll of `partitions` by consumer `process`, each from its position (found with
/// ListOffsets, earliest, when it has none), into the history as one operation, as Kafka's
/// consumer polls every partition it is assigned at once; each position moves past what it read.
/// A poll in which every partition failed is a failed operation.
pub async fn poll(
    w: &Workload,
    client: &mut Client,
    process: u64,
    partitions: &[i32],
    positions: &mut BTreeMap<i32, i64>,
) {
    let mut wanted = Vec::with_capacity(partitions.len());
    for &partition in partitions {
        let tp = TopicPartition::new(w.topic.clone(), partition);
        let offset = match positions.get(&partition) {
            Some(offset) => *offset,
            None => match client.list_offset(&tp, EARLIEST).await {
                Ok(offset) => *positions.entry(partition).or_insert(offset),
                Err(_) => continue,
            },
        };
        wanted.push((tp, offset));
    }
    if wanted.is_empty() {
        return;
    }
    w.history.push(w.op(process, OpType::Invoke, OpFn::Poll));
    let polled = client.poll_many(&wanted, POLL_MAX_WAIT_MS).await;
    let mut done = w.op(process, OpType::Ok, OpFn::Poll);
    let mut msgs = BTreeMap::new();
    let mut failures = Vec::new();
    for (tp, outcome) in polled {
        match outcome {
            PollOutcome::Records {
                records,
                high_watermark,
                next_offset,
            } => {
                let position = positions.entry(tp.partition).or_insert(next_offset);
                *position = (*position).max(next_offset);
                let mut stats = w.stats();
                stats.polls += 1;
                stats.consumed += records.len() as u64;
                drop(stats);
                let shown = &mut *w.shown_high_watermarks.lock();
                let entry = shown.entry(tp.to_string()).or_insert(high_watermark);
                *entry = (*entry).max(high_watermark);
                // A value that is not a number cannot be ours; u64::MAX marks it for the checker.
                let read: Vec<(i64, u64)> = (records.into_iter())
                    .map(|(o, v)| {
                        let value = std::str::from_utf8(&v).ok().and_then(|t| t.parse().ok());
                        (o, value.unwrap_or(u64::MAX))
                    })
                    .collect();
                // Partitions with nothing new stay out, as in Jepsen's histories: a poll of a
                // thousand partitions names the few that moved.
                if !read.is_empty() {
                    msgs.insert(key(&w.topic, tp.partition), read);
                }
            }
            PollOutcome::Failed { reason } => failures.push(format!("{tp}: {reason}")),
        }
    }
    if msgs.is_empty() && !failures.is_empty() {
        done.kind = OpType::Fail;
        done.error = Some(failures.join("; ").into());
    } else {
        done.msgs = Some(Box::new(msgs));
    }
    w.history.push(done);
}
