//! The consume-transform-produce pipeline: Kafka's exactly-once read-process-write loop. Each
//! worker is a member of the pipeline's consumer group, reading the workload's topic with
//! read_committed, and a transactional producer of its own. For every batch of records it read,
//! it begins a transaction, writes one output record per input to the output topic, commits
//! the offsets past what it read inside the transaction (with its generation, so a member a
//! rebalance dropped is fenced), and commits, or aborts at the drawn rate. After an abort it
//! reads again from where the transaction started (the switch `consumer-no-rewind-on-abort`
//! keeps its positions instead); after a commit of unknown fate it joins again and resumes from
//! whatever the group committed.
//!
//! History: each transaction is one `txn` operation, its steps the poll that read the inputs and
//! one send per output, carrying `group` and the `offsets` it commits: the checker judges that
//! every input below the group's committed offsets was processed by exactly one committed
//! transaction. Outputs are paired with inputs by place: the poll's records, partition by
//! partition in offset order, and the sends in the same order. Every output value is new
//! (from [`OUTPUT_VALUES`] on, unique in the run), also when an input is processed again after
//! an abort: a read then tells which attempt it saw.
//!
//! Draw order (changing it changes every seed): per transaction, whether to abort.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use madsim::time::Instant;
use model::client::{Client, PollOutcome};
use model::group_client::{GroupError, GroupMember, Strategy};
use model::transactional::{GroupMetadata, TransactionalProducer};
use model::TopicPartition;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::record::history::{key, Micro, OpFn, OpType, PolledMsgs, Steps, Value};
use crate::scenario::PipelineSpec;
use crate::world::group_consumer::join;
use crate::world::txn_producer::{note_end, note_send};
use crate::world::workload::Workload;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
const BACKOFF: Duration = Duration::from_millis(100);
const POLL_MAX_WAIT_MS: i32 = 100;

/// Where output values start: apart from every value a producer writes.
pub const OUTPUT_VALUES: u64 = 1 << 50;

/// The pipeline's settings and where its outputs go.
#[derive(Clone)]
pub struct Pipeline {
    /// `[workload.pipeline]`.
    pub spec: PipelineSpec,
    /// The output topic's partitions.
    pub output_partitions: i32,
    /// `consumer-no-rewind-on-abort`: positions are kept after an abort.
    pub no_rewind: bool,
}

/// Pipeline worker `index`, history process `process`, until the consumers stop.
pub async fn worker(w: Workload, p: Pipeline, index: u32, process: u64, seed: u64) {
    let mut worker = Worker {
        rng: ChaCha8Rng::seed_from_u64(seed),
        group: GroupMember::new(
            w.bootstrap.clone(),
            format!("pipeline-{index}"),
            p.spec.group.clone(),
            CLIENT_TIMEOUT,
            p.spec.session_timeout.ms() as i32,
        ),
        consumer: Client::new(w.bootstrap.clone(), format!("pipeline-{index}"), CLIENT_TIMEOUT)
            .reading_committed(),
        producer: TransactionalProducer::new(
            w.bootstrap.clone(),
            format!("pipeline-{index}"),
            format!("pipeline-{index}"),
            CLIENT_TIMEOUT,
            p.spec.timeout.0,
        ),
        w,
        p,
        index,
        process,
        sequence: 0,
        finished: false,
        drained_at: None,
    };
    while !worker.stopped() {
        let generation = join(&worker.w, &mut worker.group, Strategy::Range, process).await;
        match generation {
            Some((mine, positions)) => worker.process(&mine, positions).await,
            None => madsim::time::sleep(BACKOFF).await,
        }
    }
    worker.group.leave().await;
}

/// Why a generation's loop ended.
enum Next {
    /// Go on in this generation.
    Continue,
    /// Join again and resume from the group's commits.
    Rejoin,
}

struct Worker {
    w: Workload,
    p: Pipeline,
    index: u32,
    process: u64,
    /// Outputs written so far: the next one's value is `OUTPUT_VALUES + sequence * workers +
    /// index`.
    sequence: u64,
    /// Every input was processed after the producers stopped: the readers read the rest.
    finished: bool,
    /// When the input producers will have drained, once they stopped.
    drained_at: Option<Instant>,
    rng: ChaCha8Rng,
    group: GroupMember,
    consumer: Client,
    producer: TransactionalProducer,
}

/// One transaction's inputs: per input partition, the (offset, value) pairs read, and where the
/// partition's reading goes on once they are processed.
struct Batch {
    read: BTreeMap<i32, Vec<(i64, u64)>>,
    next: BTreeMap<i32, i64>,
    /// Every partition was read, and the empty ones were read to their high watermark.
    complete: bool,
}

impl Worker {
    fn stopped(&self) -> bool {
        self.finished || self.w.stop_consumers.load(Ordering::Relaxed)
    }

    /// After a read that found nothing: whether the producers stopped and drained, so that
    /// nothing more will come.
    fn caught_up(&mut self) -> bool {
        if !self.w.stop_producers.load(Ordering::Relaxed) {
            return false;
        }
        let drain = self.w.producer_drain;
        Instant::now() >= *self.drained_at.get_or_insert_with(|| Instant::now() + drain)
    }

    /// Reads and processes `mine` from `positions` until the generation ends.
    async fn process(&mut self, mine: &[i32], mut positions: BTreeMap<i32, i64>) {
        let session_ms = self.p.spec.session_timeout.ms();
        let mut heartbeat_at = Instant::now();
        while !self.stopped() {
            if Instant::now() >= heartbeat_at {
                heartbeat_at = Instant::now() + Duration::from_millis(session_ms / 3);
                if let Err(GroupError::Rejoin(_)) = self.group.heartbeat().await {
                    return;
                }
            }
            let batch = self.read(mine, &mut positions).await;
            if batch.read.is_empty() {
                self.finished = batch.complete && self.caught_up();
                madsim::time::sleep(self.w.poll_interval).await;
                continue;
            }
            let (committed, next) = self.transact(&batch).await;
            if committed || self.p.no_rewind {
                positions.extend(&batch.next);
            }
            if let Next::Rejoin = next {
                return;
            }
        }
    }

    /// One poll of `mine`, each partition's records cut to `max_records`: what it read, and where each partition it read
    /// goes on. A partition that returned nothing but skipped batches (markers, aborted
    /// records) moves its position at once.
    async fn read(&mut self, mine: &[i32], positions: &mut BTreeMap<i32, i64>) -> Batch {
        let w = &self.w;
        let mut wanted = Vec::with_capacity(mine.len());
        for p in mine {
            let tp = TopicPartition::new(w.topic.clone(), *p);
            let offset = match positions.get(p) {
                Some(offset) => *offset,
                None => match self.consumer.list_offset(&tp, model::client::EARLIEST).await {
                    Ok(offset) => *positions.entry(*p).or_insert(offset),
                    Err(_) => continue,
                },
            };
            wanted.push((tp, offset));
        }
        let mut batch = Batch {
            read: BTreeMap::new(),
            next: BTreeMap::new(),
            complete: wanted.len() == mine.len(),
        };
        // Each partition's share, so that one with a backlog does not starve the others.
        let room = self.p.spec.max_records as usize;
        for (tp, outcome) in self.consumer.poll_many(&wanted, POLL_MAX_WAIT_MS).await {
            let PollOutcome::Records {
                mut records,
                next_offset,
                high_watermark,
            } = outcome
            else {
                batch.complete = false;
                continue;
            };
            if records.is_empty() {
                positions.insert(tp.partition, next_offset);
                // Nothing to read below an open transaction is not the end of the partition.
                batch.complete &= next_offset >= high_watermark;
                continue;
            }
            let next = if records.len() > room {
                records.truncate(room);
                records[room - 1].0 + 1
            } else {
                next_offset
            };
            let values = (records.into_iter())
                .map(|(o, v)| {
                    let value = std::str::from_utf8(&v).ok().and_then(|t| t.parse().ok());
                    (o, value.unwrap_or(u64::MAX))
                })
                .collect();
            batch.read.insert(tp.partition, values);
            batch.next.insert(tp.partition, next);
        }
        batch
    }

    /// Processes `batch` in one transaction, recorded as one operation: whether it committed,
    /// and what to do next.
    async fn transact(&mut self, batch: &Batch) -> (bool, Next) {
        if let Err(error) = self.producer.begin().await {
            tracing::debug!(process = self.process, %error, "cannot begin a transaction: backing off");
            madsim::time::sleep(BACKOFF).await;
            return (false, Next::Continue);
        }
        let abort = self.rng.random_bool(self.p.spec.abort_rate);
        let w = self.w.clone();
        let mut outputs: Vec<(TopicPartition, u64)> = Vec::new();
        let output: Arc<str> = self.p.spec.output.as_str().into();
        for (p, read) in &batch.read {
            let tp = TopicPartition::new(output.clone(), p % self.p.output_partitions);
            for _ in read {
                let value = OUTPUT_VALUES
                    + self.sequence * u64::from(self.p.spec.workers)
                    + u64::from(self.index);
                self.sequence += 1;
                outputs.push((tp.clone(), value));
            }
        }
        let polled: PolledMsgs = (batch.read.iter())
            .map(|(p, read)| (key(&w.topic, *p), read.clone()))
            .collect();
        let steps = |offsets: &[Option<i64>]| {
            let mut steps = vec![Micro::Poll(Some(Box::new(polled.clone())))];
            steps.extend(outputs.iter().zip(offsets).map(|((tp, value), offset)| Micro::Send {
                key: key(&tp.topic, tp.partition).into(),
                value: *value,
                offset: *offset,
            }));
            Some(Value::Steps(Box::new(Steps(steps))))
        };
        let offsets: BTreeMap<String, i64> = (batch.next.iter())
            .map(|(p, o)| (key(&w.topic, *p), *o))
            .collect();
        let (process, group): (u64, Box<str>) = (self.process, self.p.spec.group.as_str().into());
        let op = |kind, value| {
            let mut op = w.op(process, kind, OpFn::Txn);
            op.value = value;
            op.group = Some(group.clone());
            op.offsets = Some(Box::new(offsets.clone()));
            op
        };
        w.history.push(op(OpType::Invoke, steps(&vec![None; outputs.len()])));
        w.stats().produced += outputs.len() as u64;
        let (sent, mut failed) = self.send_outputs(&outputs).await;
        let mut next = Next::Continue;
        if failed.is_none() {
            if let Err(why) = self.send_offsets(batch).await {
                next = Next::Rejoin;
                failed = Some(why);
            }
        }
        let commit = !abort && failed.is_none();
        let commit_ms = commit.then(|| w.now_ms());
        let end = self.producer.end(commit).await;
        let mut done = op(OpType::Ok, steps(&sent));
        done.commit_ms = commit_ms;
        note_end(&w, &mut done, end, failed, abort);
        if done.kind == OpType::Info {
            // Whether the offsets moved is the group's to say.
            next = Next::Rejoin;
        }
        let committed = done.kind == OpType::Ok;
        w.history.push(done);
        (committed, next)
    }

    /// Sends the outputs, one batch per output partition, until one fails: each output's offset
    /// once known, and why one failed.
    async fn send_outputs(
        &mut self,
        outputs: &[(TopicPartition, u64)],
    ) -> (Vec<Option<i64>>, Option<String>) {
        let mut offsets = Vec::with_capacity(outputs.len());
        for run in outputs.chunk_by(|a, b| a.0 == b.0) {
            let tp = &run[0].0;
            let records: Vec<(Option<Bytes>, Bytes)> = (run.iter())
                .map(|(_, value)| (None, Bytes::from(value.to_string())))
                .collect();
            let outcome = self.producer.send_batch(tp, &records).await;
            if let Some(failed) = note_send(&self.w, tp, outcome, run.len(), &mut offsets) {
                return (offsets, Some(failed));
            }
        }
        (offsets, None)
    }

    /// Commits the offsets past `batch` inside the transaction, under this member's generation.
    async fn send_offsets(&mut self, batch: &Batch) -> Result<(), String> {
        let offsets: Vec<(TopicPartition, i64)> = (batch.next.iter())
            .map(|(p, o)| (TopicPartition::new(self.w.topic.clone(), *p), *o))
            .collect();
        let metadata = GroupMetadata {
            group: &self.group.group,
            member_id: &self.group.member_id,
            generation: self.group.generation,
        };
        (self.producer.send_offsets(metadata, &offsets).await)
            .map_err(|code| format!("offsets not committed: error code {code}"))
    }
}
