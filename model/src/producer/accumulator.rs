//! The record accumulator: each partition's batches waiting to go out, and the order their
//! answers are given back in.
//!
//! A record joins its partition's newest batch while that batch has never been sent and has room
//! (`batch_size`); otherwise it starts a new one. Batches are numbered as they are made, and a
//! partition's callbacks run in that order: an answer that comes back before an older batch's is
//! held until the older one has its own. A retried batch goes back into the queue before every
//! later batch of its partition (Kafka's `insertInSequenceOrder`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use madsim::time::Instant;

use super::{Callback, SendOutcome};
use crate::TopicPartition;

/// The id, epoch and first sequence number an idempotent batch was sent with; every retry of the
/// batch carries the same, so that the broker can tell a retry from a new batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    pub producer_id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
}

/// Records of one partition that go out together.
pub(super) struct Batch {
    /// Its place among every batch made: the order its partition's answers are given in.
    pub id: u64,
    pub tp: TopicPartition,
    pub records: Vec<(Option<Bytes>, Bytes)>,
    callbacks: Vec<Callback>,
    /// What the batch will weigh on the wire, near enough.
    pub bytes: usize,
    pub created: Instant,
    /// Times it was sent.
    pub attempts: u32,
    pub stamp: Option<Stamp>,
    /// Some attempt got no clear answer, or an answer that may come after the append: the batch
    /// may be in the log. It can never be refused for certain after that.
    pub maybe_written: bool,
    /// Not to be sent again before this (`retry_backoff`).
    pub retry_at: Option<Instant>,
    /// The batch as encoded and stamped, kept for retries.
    pub encoded: Option<Bytes>,
}

impl Batch {
    /// The instant the batch has waited long enough for more records.
    pub fn lingered(&self, linger: Duration) -> Instant {
        self.created + linger
    }
}

/// What became of a batch.
pub(super) enum Resolution {
    Acked {
        base_offset: i64,
    },
    /// The same outcome for every record.
    Each(SendOutcome),
}

/// A batch's callbacks with its outcome, to run once the state is unlocked.
pub(super) struct Resolved {
    callbacks: Vec<Callback>,
    resolution: Resolution,
}

impl Resolved {
    pub fn records(&self) -> usize {
        self.callbacks.len()
    }

    /// Tells each record what became of it: an acknowledged batch's records follow its first.
    pub fn run(self) {
        for (i, callback) in self.callbacks.into_iter().enumerate() {
            callback(match &self.resolution {
                Resolution::Acked { base_offset } => SendOutcome::Acked {
                    offset: base_offset + i as i64,
                },
                Resolution::Each(outcome) => outcome.clone(),
            });
        }
    }
}

/// One partition's batches.
#[derive(Default)]
pub(super) struct Partition {
    /// Waiting to go out (again), oldest first. Only the accumulator adds to it, so that it
    /// knows which partitions wait.
    queue: VecDeque<Batch>,
    /// Ids of every batch not yet answered to its callbacks, oldest first.
    unresolved: VecDeque<u64>,
    /// Outcomes that came before an older batch's, waiting for it.
    held: BTreeMap<u64, Resolved>,
    /// The sequence number the next new batch starts at.
    pub next_sequence: i32,
    /// Batches out in requests now.
    pub in_flight: usize,
}

impl Partition {
    /// The batch to go out next.
    pub fn front(&self) -> Option<&Batch> {
        self.queue.front()
    }

    /// How many batches wait.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The waiting batches, to be re-stamped.
    pub fn queued_mut(&mut self) -> impl Iterator<Item = &mut Batch> {
        self.queue.iter_mut()
    }

    /// The oldest batch still waiting for its outcome: with idempotence, the only one a retry may
    /// be (the broker takes a partition's batches in sequence).
    pub fn first_unresolved(&self) -> Option<u64> {
        self.unresolved.front().copied()
    }

    /// The newest batch acknowledged while an older one is still unresolved: it is in the log,
    /// so no older batch may be written after it.
    pub fn newest_held_ack(&self) -> Option<u64> {
        self.held
            .iter()
            .rev()
            .find(|(_, r)| matches!(r.resolution, Resolution::Acked { .. }))
            .map(|(id, _)| *id)
    }
}

#[derive(Default)]
pub(super) struct Accumulator {
    partitions: BTreeMap<TopicPartition, Partition>,
    /// The partitions with batches in their queue (and perhaps some emptied since): the sender
    /// looks at these on every turn, not at every partition ever written to.
    waiting: BTreeSet<TopicPartition>,
    /// Partitions something happened to since the sender last looked (see `waits.rs`).
    touched: BTreeSet<TopicPartition>,
    /// Something happened that may concern every partition.
    touched_all: bool,
    /// Every queued batch by when it was made: the delivery timeouts need a look only once the
    /// oldest is that old.
    queued_since: BTreeSet<(Instant, u64)>,
    next_batch_id: u64,
    /// Records handed in whose callbacks have not run.
    outstanding: usize,
}

/// A record's weight in a batch beyond its key and value: Kafka's per-record overhead, at most.
const RECORD_OVERHEAD: usize = 21;

impl Accumulator {
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Adds a record to `tp`'s newest batch if that has never gone out and has room, else to a
    /// new batch.
    pub fn append(
        &mut self,
        tp: &TopicPartition,
        key: Option<Bytes>,
        value: Bytes,
        callback: Callback,
        batch_size: usize,
    ) {
        self.outstanding += 1;
        let bytes = RECORD_OVERHEAD + key.as_ref().map_or(0, Bytes::len) + value.len();
        let partition = self.partitions.entry(tp.clone()).or_default();
        if partition.queue.is_empty() {
            self.waiting.insert(tp.clone());
        }
        Self::mark(&mut self.touched, tp);
        let now = crate::env::now();
        if let Some(last) = partition.queue.back_mut() {
            if last.encoded.is_none() && last.attempts == 0 && last.bytes + bytes <= batch_size {
                last.bytes += bytes;
                last.records.push((key, value));
                last.callbacks.push(callback);
                return;
            }
        }
        let id = self.next_batch_id;
        self.next_batch_id += 1;
        self.queued_since.insert((now, id));
        partition.unresolved.push_back(id);
        partition.queue.push_back(Batch {
            id,
            tp: tp.clone(),
            records: vec![(key, value)],
            callbacks: vec![callback],
            bytes: crate::batch::HEADER_LEN + bytes,
            created: now,
            attempts: 0,
            stamp: None,
            maybe_written: false,
            retry_at: None,
            encoded: None,
        });
    }

    /// Puts a batch back to be sent again, before every later batch of its partition.
    pub fn requeue(&mut self, batch: Batch) {
        Self::mark(&mut self.waiting, &batch.tp);
        Self::mark(&mut self.touched, &batch.tp);
        self.queued_since.insert((batch.created, batch.id));
        let queue = &mut self.partition(&batch.tp).queue;
        let at = queue.partition_point(|b| b.id < batch.id);
        queue.insert(at, batch);
    }

    fn partition(&mut self, tp: &TopicPartition) -> &mut Partition {
        self.partitions.get_mut(tp).expect("a batch's partition")
    }

    /// A partition written to; panics for one never written to.
    pub fn get(&self, tp: &TopicPartition) -> &Partition {
        &self.partitions[tp]
    }

    /// Every partition written to.
    pub fn partitions(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.values()
    }

    /// The partitions with batches waiting, in partition order.
    pub fn waiting(&self) -> impl Iterator<Item = (&TopicPartition, &Partition)> {
        let partitions = &self.partitions;
        (self.waiting.iter()).filter_map(|tp| Some((tp, partitions.get(tp)?)))
    }

    /// Starts every partition's sequence numbers again at 0, for a new epoch.
    pub fn reset_sequences(&mut self) {
        for partition in self.partitions.values_mut() {
            partition.next_sequence = 0;
        }
    }

    /// The batch of `tp` to go out next.
    pub fn waiting_front(&self, tp: &TopicPartition) -> Option<&Batch> {
        self.partitions.get(tp)?.queue.front()
    }

    /// A waiting partition, to take its batch; `None` for one with nothing queued.
    pub fn waiting_mut(&mut self, tp: &TopicPartition) -> Option<&mut Partition> {
        let partition = self.partitions.get_mut(tp)?;
        if partition.queue.is_empty() {
            self.waiting.remove(tp);
            return None;
        }
        Some(partition)
    }

    /// Calls `f` on each partition with batches waiting, in partition order; `f` may take
    /// batches out of the queue, never put one in.
    pub fn for_each_waiting(&mut self, mut f: impl FnMut(&TopicPartition, &mut Partition)) {
        let partitions = &mut self.partitions;
        self.waiting.retain(|tp| {
            let partition = partitions.get_mut(tp).expect("a waiting partition");
            if !partition.queue.is_empty() {
                f(tp, partition);
            }
            !partition.queue.is_empty()
        });
    }

    /// Settles `batch`; returns what may be answered now: it and the held batches after it, if
    /// nothing older of its partition is still waiting.
    pub fn resolve(&mut self, batch: Batch, resolution: Resolution) -> Vec<Resolved> {
        Self::mark(&mut self.touched, &batch.tp);
        let (id, tp) = (batch.id, batch.tp.clone());
        let partition = self.partition(&tp);
        let resolved = Resolved {
            callbacks: batch.callbacks,
            resolution,
        };
        partition.held.insert(id, resolved);
        let mut released = Vec::new();
        while let Some(next) = partition.unresolved.front() {
            let Some(r) = partition.held.remove(next) else {
                break;
            };
            partition.unresolved.pop_front();
            released.push(r);
        }
        self.outstanding -= released.iter().map(Resolved::records).sum::<usize>();
        released
    }

    /// Takes out of the queues every batch waiting past its delivery timeout.
    pub fn expired(&mut self, now: Instant, delivery_timeout: Duration) -> Vec<Batch> {
        if self.next_expiry(delivery_timeout).is_none_or(|at| now < at) {
            return Vec::new();
        }
        self.take_queued(|_, b| now >= b.created + delivery_timeout)
    }

    /// The soonest a queued batch passes its delivery timeout.
    pub fn next_expiry(&self, delivery_timeout: Duration) -> Option<Instant> {
        (self.queued_since.first()).map(|(created, _)| *created + delivery_timeout)
    }

    /// Takes the batch of `tp` to go out next, counting it in flight; with its partition.
    pub fn take_front(&mut self, tp: &TopicPartition) -> Option<(Batch, &mut Partition)> {
        let partition = self.partitions.get_mut(tp)?;
        let batch = partition.queue.pop_front()?;
        partition.in_flight += 1;
        self.queued_since.remove(&(batch.created, batch.id));
        Some((batch, partition))
    }

    /// Takes out of the queues the batches `pick` names, given their partition.
    pub fn take_queued(&mut self, pick: impl Fn(&Partition, &Batch) -> bool) -> Vec<Batch> {
        let mut taken = Vec::new();
        self.for_each_waiting(|_, partition| {
            // Checked before the queue is taken apart: the sender asks on every turn that may
            // take something, and a queue with nothing to take, nearly always, costs no copy.
            if !partition.queue.iter().any(|b| pick(partition, b)) {
                return;
            }
            let queue = std::mem::take(&mut partition.queue);
            let (out, keep): (Vec<Batch>, Vec<Batch>) =
                queue.into_iter().partition(|b| pick(partition, b));
            partition.queue = keep.into();
            taken.extend(out);
        });
        for b in &taken {
            self.queued_since.remove(&(b.created, b.id));
            // Its partition may have a new oldest batch, with times of its own.
            Self::mark(&mut self.touched, &b.tp);
        }
        taken
    }

    /// Marks `tp` as something happened to, for the sender's next turn.
    pub fn touch(&mut self, tp: &TopicPartition) {
        Self::mark(&mut self.touched, tp);
    }

    /// Marks every partition as something happened to.
    pub fn touch_all(&mut self) {
        self.touched_all = true;
    }

    /// Whether every partition is marked.
    pub fn all_touched(&self) -> bool {
        self.touched_all
    }

    /// The partitions marked, still waiting.
    pub fn touched(&self) -> impl Iterator<Item = (&TopicPartition, &Partition)> {
        let partitions = &self.partitions;
        (self.touched.iter())
            .filter_map(|tp| Some((tp, partitions.get(tp)?)))
            .filter(|(_, p)| !p.queue.is_empty())
    }

    /// Takes the marks: the partitions marked, or, with every partition marked, every waiting
    /// partition (and true).
    pub fn take_touched(&mut self) -> (BTreeSet<TopicPartition>, bool) {
        let touched = std::mem::take(&mut self.touched);
        if std::mem::take(&mut self.touched_all) {
            return (self.waiting.clone(), true);
        }
        (touched, false)
    }

    fn mark(set: &mut BTreeSet<TopicPartition>, tp: &TopicPartition) {
        // The name is cloned (an Arc) only for a partition not yet in the set.
        if !set.contains(tp) {
            set.insert(tp.clone());
        }
    }

    /// Answers everything: the batches `in_flight` and in the queues unknown, the held ones as
    /// they were settled; in each partition's order.
    pub fn abandon(&mut self, in_flight: Vec<Batch>) -> Vec<Resolved> {
        let unknown = || {
            Resolution::Each(SendOutcome::Unknown {
                reason: "still outstanding when the producer closed".into(),
            })
        };
        let mut waiting: Vec<Batch> = in_flight;
        self.for_each_waiting(|_, partition| waiting.extend(partition.queue.drain(..)));
        self.queued_since.clear();
        waiting.sort_by_key(|b| b.id);
        let mut released = Vec::new();
        for batch in waiting {
            released.extend(self.resolve(batch, unknown()));
        }
        released
    }

    /// Counts `batch` as back from a request (answered, lost, or never sent).
    pub fn out_of_flight(&mut self, batch: &Batch) {
        let partition = (self.partitions.get_mut(&batch.tp)).expect("a batch's partition");
        partition.in_flight -= 1;
    }

    /// Every queued batch, for the sender's timers.
    pub fn queued(&self) -> impl Iterator<Item = &Batch> {
        self.waiting().flat_map(|(_, p)| p.queue.iter())
    }
}
