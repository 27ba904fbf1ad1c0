//! A producer as Kafka's since 3.0 (KIP-679): records are handed to it without waiting, each with
//! a callback (Kafka's `send(record, callback)`); they gather per partition into batches
//! (`linger`, `batch_size`); one sender task drains ready batches into one Produce request per
//! leader, with up to `max_in_flight` requests outstanding on each broker connection; a batch
//! that fails is retried after `retry_backoff` until `retries` or `delivery_timeout` run out.
//!
//! Idempotence is on by default (it needs acks=all): the producer gets an id and epoch from
//! InitProducerId, stamps each batch with its partition's next sequence numbers the first time it
//! goes out, and keeps that stamp on every retry, so a leader answers a retry of a batch it already
//! has with the original offset. Batches of a partition go out, and are acknowledged, in order; a
//! retried batch goes before later ones. When the broker reports a sequence it cannot place, the
//! producer bumps its epoch and starts its sequences again, but only once nothing sent under the
//! old epoch could still be written (KIP-360); see `answer.rs` and `epoch.rs`.
//!
//! Each record's callback gets what the producer knows of it: acknowledged at an offset, refused
//! (definitely not written), or unknown (an attempt may have been written). Callbacks of one
//! partition run in the order the records were handed in.
//!
//! Left out: compression, `max.request.size`, `buffer.memory` (the accumulator is unbounded),
//! transactions, and the sticky partitioner (the caller picks the partition). The sender connects
//! and asks for metadata inline, so a broker that does not answer holds every partition up for a
//! request timeout, where Kafka's network client connects without blocking its sender.

mod accumulator;
mod answer;
mod epoch;
mod link;
mod sender;
#[cfg(test)]
mod tests;
mod waits;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tracing::debug;

pub use crate::client::SendOutcome;
use crate::signal::Signal;
use crate::sync::Lock;
use crate::{BrokerId, TopicPartition};

use accumulator::{Accumulator, Resolved};
use link::Link;

/// What a record's sender hears of it, once.
pub type Callback = Box<dyn FnOnce(SendOutcome) + Send>;

/// The producer's settings, named as Kafka's are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducerConfig {
    /// `acks`: 0, 1, or -1 for all.
    pub acks: i16,
    /// `enable.idempotence`; needs acks=all.
    pub idempotence: bool,
    /// `linger.ms`: how long a batch waits for more records before it is ready.
    pub linger: Duration,
    /// `batch.size`: a batch is ready once it holds this many bytes.
    pub batch_size: usize,
    /// `max.in.flight.requests.per.connection`: requests sent to a broker and not yet answered.
    pub max_in_flight: usize,
    /// `retries`: how many times a batch is sent again after its first attempt fails.
    pub retries: u32,
    /// `retry.backoff.ms`: the wait before a failed batch is sent again.
    pub retry_backoff: Duration,
    /// `delivery.timeout.ms`: a record not acknowledged this long after it was handed in fails.
    pub delivery_timeout: Duration,
    /// `request.timeout.ms`: how long a leader may wait for its replicas (the request's
    /// `timeout_ms`); the producer gives up on an answer after twice this.
    pub request_timeout: Duration,
    /// The `epoch-bump-with-batches-in-flight` switch's wrong rule (librdkafka#4953,
    /// redpanda#3039): on a sequence the leader cannot place, bump the epoch at once and send every
    /// unacknowledged batch again under new sequences, even those that may be written. Never set
    /// but by the simulator, for that switch.
    pub bump_with_batches_in_flight: bool,
}

impl ProducerConfig {
    /// Kafka 3.0's defaults for `acks`: idempotent when acks=all (as Kafka 3.2 and later decide
    /// when idempotence is not set), linger 0, 16 KiB batches, five requests in flight, retries
    /// until the two-minute delivery timeout. The request timeout is the caller's.
    pub fn kafka_default(acks: i16, request_timeout: Duration) -> Self {
        ProducerConfig {
            acks,
            idempotence: acks == -1,
            linger: Duration::ZERO,
            batch_size: 16_384,
            max_in_flight: 5,
            retries: i32::MAX as u32,
            retry_backoff: Duration::from_millis(100),
            delivery_timeout: Duration::from_secs(120),
            request_timeout,
            bump_with_batches_in_flight: false,
        }
    }

    /// Checks what Kafka's producer checks at construction.
    pub fn validate(&self) -> Result<(), String> {
        if self.idempotence && self.acks != -1 {
            return Err("idempotence needs acks=all".into());
        }
        if self.idempotence && !(1..=5).contains(&self.max_in_flight) {
            return Err("idempotence needs 1 to 5 requests in flight".into());
        }
        if self.idempotence && self.retries == 0 {
            return Err("idempotence needs retries".into());
        }
        if self.max_in_flight == 0 || self.batch_size == 0 {
            return Err("max_in_flight and batch_size must be at least 1".into());
        }
        if self.delivery_timeout <= self.linger {
            return Err("delivery_timeout must be longer than linger".into());
        }
        Ok(())
    }
}

/// The producer id and epoch an idempotent producer stamps its batches with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Identity {
    /// -1 until InitProducerId answers.
    producer_id: i64,
    epoch: i16,
    /// A batch's sequence failed, so the broker's sequences and this producer's may differ: the
    /// epoch must be bumped and sequences started again, once that is safe.
    bump_needed: bool,
}

/// What the caller, the sender task and the connections' reader tasks share.
struct State {
    accumulator: Accumulator,
    /// Each broker connection's requests in flight.
    links: BTreeMap<BrokerId, Link>,
    identity: Identity,
    /// Partitions whose leader an answer showed to be stale: the sender forgets them and asks
    /// for metadata again.
    stale: BTreeMap<TopicPartition, i16>,
    /// Every batch is ready now, whatever its linger (Kafka's `flush`).
    flushing: bool,
    closed: bool,
    /// Connections made so far; tells a connection's reader apart from an earlier one's.
    generations: u64,
}

struct Shared {
    state: Lock<State>,
    /// Fired on every change the sender may act on: a record handed in, an answer, a close.
    wake: Signal<()>,
    config: ProducerConfig,
    client_id: String,
}

impl Shared {
    /// Runs callbacks outside the lock (they belong to the caller and may do anything), then,
    /// if there were any, wakes whoever waits for outstanding records (a flush). The sender never
    /// wakes itself: its own changes it acts on in its next round.
    fn complete(&self, resolved: Vec<Resolved>) {
        if resolved.is_empty() {
            return;
        }
        for r in resolved {
            r.run();
        }
        self.wake.notify();
    }
}

/// A running producer; its sender task stops when it is closed or dropped.
pub struct Producer {
    shared: Arc<Shared>,
}

impl Producer {
    /// Starts a producer that finds the cluster through `bootstrap`; panics on an invalid
    /// `config` (see [`ProducerConfig::validate`]).
    pub fn start(
        bootstrap: Vec<SocketAddr>,
        client_id: impl Into<String>,
        config: ProducerConfig,
    ) -> Producer {
        assert!(!bootstrap.is_empty());
        if let Err(e) = config.validate() {
            panic!("invalid producer config: {e}");
        }
        let shared = Arc::new(Shared {
            state: Lock::new(State {
                accumulator: Accumulator::default(),
                links: BTreeMap::new(),
                identity: Identity {
                    producer_id: -1,
                    epoch: -1,
                    bump_needed: false,
                },
                stale: BTreeMap::new(),
                flushing: false,
                closed: false,
                generations: 0,
            }),
            wake: Signal::default(),
            config,
            client_id: client_id.into(),
        });
        madsim::task::spawn(sender::run(shared.clone(), bootstrap));
        Producer { shared }
    }

    /// Hands a record to the producer; `callback` hears what became of it.
    pub fn send(
        &self,
        tp: &TopicPartition,
        key: Option<Bytes>,
        value: Bytes,
        callback: impl FnOnce(SendOutcome) + Send + 'static,
    ) {
        let refused = {
            let mut s = self.shared.state.lock();
            if s.closed {
                Some(callback)
            } else {
                let batch_size = self.shared.config.batch_size;
                s.accumulator
                    .append(tp, key, value, Box::new(callback), batch_size);
                None
            }
        };
        match refused {
            Some(callback) => callback(SendOutcome::Unknown {
                reason: "the producer is closed".into(),
            }),
            None => self.shared.wake.notify(),
        }
    }

    /// Records handed in whose callbacks have not run yet.
    pub fn outstanding(&self) -> usize {
        self.shared.state.lock().accumulator.outstanding()
    }

    /// Makes every batch ready now and waits, at most `limit`, until every record handed in has
    /// its answer; true if all have.
    pub async fn flush(&self, limit: Duration) -> bool {
        {
            let mut s = self.shared.state.lock();
            s.flushing = true;
            s.accumulator.touch_all();
        }
        self.shared.wake.notify();
        let mut deadline = crate::deadline::Deadline::after(limit);
        let mut changed = self.shared.wake.subscribe();
        while self.outstanding() > 0 {
            if deadline.run(changed.changed()).await.is_err() {
                break;
            }
        }
        self.shared.state.lock().flushing = false;
        self.outstanding() == 0
    }

    /// Stops the producer now, as Kafka's `close(Duration.ZERO)`: every record still without an
    /// answer is answered unknown (it may yet be written by a request already out).
    pub fn close(&self) {
        let resolved = {
            let mut s = self.shared.state.lock();
            if s.closed {
                return;
            }
            s.closed = true;
            let in_flight = std::mem::take(&mut s.links)
                .into_values()
                .flat_map(Link::abandon)
                .collect();
            s.accumulator.abandon(in_flight)
        };
        debug!(
            client = %self.shared.client_id,
            records = resolved.iter().map(Resolved::records).sum::<usize>(),
            "producer closed: what was outstanding is answered unknown"
        );
        self.shared.complete(resolved);
        // The sender may be asleep with nothing to do: it must wake to see the close and stop.
        self.shared.wake.notify();
    }
}

impl Drop for Producer {
    fn drop(&mut self) {
        self.close();
    }
}
