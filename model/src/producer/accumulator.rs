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
    #[inline]
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
    #[inline]
    pub fn expired(&mut self, now: Instant, delivery_timeout: Duration) -> Vec<Batch> {
        if self.next_expiry(delivery_timeout).is_none_or(|at| now < at) {
            return Vec::new();
        }
        self.take_queued(|_, b| now >= b.created + delivery_timeout)
    }

    /// The soonest a queued batch passes its delivery timeout.
    #[inline]
    pub fn next_expiry(&self, delivery_timeout: Duration) -> Option<Instant> {
        (self.queued_since.first()).map(|(created, _)| *created + delivery_timeout)
    }

    /// Takes the batch of `tp` to go out next, counting it in flight; with its partition.
    #[inline]
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
    #[inline]
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

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    type Heard = Arc<Mutex<Vec<(u8, SendOutcome)>>>;

    /// Room for two of the tests' records (31 bytes each with their overhead) after the header.
    const BATCH_SIZE: usize = crate::batch::HEADER_LEN + 62;

    /// Runs `body` inside a simulated runtime (batches read the clock).
    fn simulated(body: impl FnOnce() + Send + 'static) {
        madsim::runtime::Runtime::new().block_on(async move { body() });
    }

    fn append(acc: &mut Accumulator, tp: &TopicPartition, record: u8, heard: &Heard) {
        let heard = heard.clone();
        let callback: Callback = Box::new(move |o| heard.lock().unwrap().push((record, o)));
        acc.append(
            tp,
            None,
            Bytes::from(vec![record; 10]),
            callback,
            BATCH_SIZE,
        );
    }

    /// Records 0, 1 and 2 handed in to one partition: two batches, [0, 1] and [2].
    fn three_records() -> (Accumulator, Heard, TopicPartition) {
        let (mut acc, heard) = (Accumulator::default(), Heard::default());
        let tp = TopicPartition::new("t", 0);
        for record in 0..3 {
            append(&mut acc, &tp, record, &heard);
        }
        (acc, heard, tp)
    }

    fn acked(offset: i64) -> SendOutcome {
        SendOutcome::Acked { offset }
    }

    #[test]
    fn records_share_a_batch_until_it_is_full_or_taken() {
        simulated(|| {
            let (mut acc, heard, tp) = three_records();
            // Two records fill a batch: the third starts a new one.
            assert_eq!(acc.get(&tp).queued(), 2);
            let (first, _) = acc.take_front(&tp).expect("a batch");
            assert_eq!(first.records.len(), 2);
            append(&mut acc, &tp, 3, &heard);
            let (second, _) = acc.take_front(&tp).expect("a batch");
            assert_eq!(second.records.len(), 2, "a record joins the queued batch");
            assert!(acc.take_front(&tp).is_none());
        });
    }

    #[test]
    fn answers_are_given_in_the_order_batches_were_made_whatever_order_they_come_in() {
        simulated(|| {
            let (mut acc, heard, tp) = three_records();
            let batches: Vec<Batch> = (0..2)
                .filter_map(|_| Some(acc.take_front(&tp)?.0))
                .collect();
            let mut batches = batches.into_iter();
            let (older, newer) = (batches.next().unwrap(), batches.next().unwrap());
            let early = acc.resolve(newer, Resolution::Acked { base_offset: 7 });
            assert!(
                early.is_empty(),
                "a newer batch's answer waits for the older's"
            );
            let released = acc.resolve(older, Resolution::Acked { base_offset: 5 });
            assert_eq!(released.len(), 2);
            released.into_iter().for_each(Resolved::run);
            let heard = heard.lock().unwrap().clone();
            assert_eq!(heard, vec![(0, acked(5)), (1, acked(6)), (2, acked(7))]);
            assert_eq!(acc.outstanding(), 0);
        });
    }

    #[test]
    fn a_retried_batch_goes_back_before_every_later_batch_and_is_marked() {
        simulated(|| {
            let (mut acc, _, tp) = three_records();
            let (first, _) = acc.take_front(&tp).unwrap();
            let _ = acc.take_touched();
            acc.out_of_flight(&first);
            acc.requeue(first);
            let (touched, all) = acc.take_touched();
            assert_eq!(
                (touched.into_iter().collect::<Vec<_>>(), all),
                (vec![tp.clone()], false)
            );
            assert_eq!(acc.waiting_front(&tp).unwrap().records[0].1[0], 0);
        });
    }

    #[test]
    fn only_batches_past_their_delivery_timeout_expire_and_the_next_expiry_follows_the_oldest() {
        simulated(|| {
            let (mut acc, heard) = (Accumulator::default(), Heard::default());
            let (a, b) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
            let timeout = Duration::from_secs(10);
            let start = crate::env::now();
            append(&mut acc, &a, 0, &heard);
            assert_eq!(acc.next_expiry(timeout), Some(start + timeout));
            assert!(acc.expired(start + timeout / 2, timeout).is_empty());
            // A later batch on another partition, made once time has moved.
            madsim::time::advance(Duration::from_secs(4));
            append(&mut acc, &b, 1, &heard);
            let expired = acc.expired(start + timeout, timeout);
            assert_eq!(
                expired.iter().map(|b| b.tp.clone()).collect::<Vec<_>>(),
                vec![a]
            );
            assert_eq!(
                acc.next_expiry(timeout),
                Some(start + Duration::from_secs(4) + timeout)
            );
            acc.take_front(&b).unwrap();
            assert_eq!(
                acc.next_expiry(timeout),
                None,
                "nothing queued, nothing to expire"
            );
        });
    }
}
