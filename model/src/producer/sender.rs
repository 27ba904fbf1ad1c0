//! The sender task, Kafka's `Sender.runOnce` in a loop: expire what waited too long, bump the
//! epoch when that is due and safe, get a producer id and leaders, drain every partition's ready
//! batch into one request per leader with room for another request in flight, send them, and
//! sleep until something changes or a batch's linger, backoff or delivery time comes round.
//!
//! A partition sends its oldest waiting batch only: that keeps its batches in order on the wire.
//! With idempotence a batch sent before (it carries its stamp) goes again only as its
//! partition's oldest unanswered batch, and while the epoch waits to be bumped only batches that
//! may already be in the log go out, under their old stamps, to learn what became of them.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::InitProducerIdRequest;
use madsim::time::Instant;
use tracing::{debug, trace};

use super::accumulator::{Batch, Partition, Resolution, Resolved, Stamp};
use super::answer::{fail, settle, Attempt};
use super::link::{self, read_answers, Link, Request};
use super::waits::{Wait, Waits};
use super::{epoch, Identity, SendOutcome, Shared, State};
use crate::batch;
use crate::client::Client;
use crate::deadline::Deadline;
use crate::fetcher::error_code;
use crate::produce_codec::MultiProduce;
use crate::wire::{Connection, RequestSender};
use crate::{BrokerId, TopicPartition};

const INIT_PRODUCER_ID_VERSION: i16 = 4;

/// The sender's own: metadata, and the writing half of each broker connection.
struct Sender {
    shared: Arc<Shared>,
    bootstrap: Vec<SocketAddr>,
    metadata: Client,
    /// By broker: the connection's generation and its writing half.
    writers: BTreeMap<BrokerId, (u64, RequestSender)>,
    /// Not to ask for metadata again before this.
    metadata_due: Instant,
    init_attempts: usize,
    /// What the partitions passed over wait for.
    waits: Waits,
}

pub(super) async fn run(shared: Arc<Shared>, bootstrap: Vec<SocketAddr>) {
    let config = &shared.config;
    let mut sender = Sender {
        metadata: Client::new(
            bootstrap.clone(),
            shared.client_id.clone(),
            config.request_timeout,
        )
        .ignoring_older_leader_epochs(),
        shared: shared.clone(),
        bootstrap,
        writers: BTreeMap::new(),
        metadata_due: crate::env::now(),
        init_attempts: 0,
        waits: Waits::default(),
    };
    let mut woken = shared.wake.subscribe();
    loop {
        if shared.state.lock().closed {
            return;
        }
        let now = crate::env::now();
        let resolved = sender.housekeeping(now);
        shared.complete(resolved);
        if config.idempotence && shared.state.lock().identity.producer_id < 0 {
            sender.init_producer_id().await;
            continue;
        }
        // Before metadata is due again, one leaderless partition is enough to know to wait.
        let metadata_due = now >= sender.metadata_due;
        let leaderless = sender.topics_without_leader(metadata_due);
        if !leaderless.is_empty() && metadata_due {
            sender.metadata_due = now + config.retry_backoff;
            let mut changed = Vec::new();
            for topic in leaderless {
                changed.extend(
                    sender
                        .metadata
                        .refresh_leaders(&topic)
                        .await
                        .unwrap_or_default(),
                );
            }
            // Only a partition whose leader changed can be sent differently now.
            let mut s = shared.state.lock();
            changed.iter().for_each(|tp| s.accumulator.touch(tp));
            continue;
        }
        let requests = sender.drain(now);
        if !requests.is_empty() {
            for (leader, batches) in requests {
                sender.send(leader, batches).await;
            }
            continue;
        }
        let metadata_wait = (!leaderless.is_empty()).then_some(sender.metadata_due);
        match sender
            .next_timer(now)
            .into_iter()
            .chain(metadata_wait)
            .min()
        {
            Some(at) => drop(Deadline::at(at).run(woken.changed()).await),
            None => woken.changed().await,
        }
    }
}

impl Sender {
    /// Forgets leaders answers showed stale, drops writers of broken connections, fails batches
    /// past their delivery timeout, and bumps the epoch when due.
    fn housekeeping(&mut self, now: Instant) -> Vec<Resolved> {
        let shared = &*self.shared;
        let mut s = shared.state.lock();
        for (tp, code) in std::mem::take(&mut s.stale) {
            self.metadata.forget_leader(&tp, code);
            s.accumulator.touch(&tp);
        }
        self.writers.retain(|broker, (generation, _)| {
            s.links
                .get(broker)
                .is_some_and(|l| l.generation == *generation)
        });
        let mut resolved = Vec::new();
        for batch in s.accumulator.expired(now, shared.config.delivery_timeout) {
            let reason = "delivery timeout";
            crate::mark!(ProducerDeliveryTimeout);
            resolved.extend(fail(
                shared,
                &mut s,
                batch,
                error_code::REQUEST_TIMED_OUT,
                reason,
            ));
        }
        resolved.extend(epoch::maybe_bump(shared, &mut s));
        resolved
    }

    /// Asks a bootstrap broker, in turn, for a producer id; backs off after a failure.
    async fn init_producer_id(&mut self) {
        let shared = &*self.shared;
        let address = self.bootstrap[self.init_attempts % self.bootstrap.len()];
        self.init_attempts += 1;
        match request_producer_id(shared, address).await {
            Ok((producer_id, epoch)) => {
                debug!(client = %shared.client_id, producer_id, epoch, "producer id given");
                let mut s = shared.state.lock();
                s.identity.producer_id = producer_id;
                s.identity.epoch = epoch;
                s.accumulator.touch_all();
            }
            Err(error) => {
                debug!(client = %shared.client_id, %error, "no producer id yet: backing off");
                madsim::time::sleep(shared.config.retry_backoff).await;
            }
        }
    }

    /// The topics of waiting batches whose partition has no known leader: of those found so on
    /// an earlier turn and those not looked at since something happened to them (every other
    /// waiting partition had a leader when last looked at, and the metadata has not changed).
    /// With `every` false, stops at the first topic found.
    fn topics_without_leader(&self, every: bool) -> BTreeSet<String> {
        let s = self.shared.state.lock();
        let accumulator = &s.accumulator;
        let mut topics = BTreeSet::new();
        let look = |tp: &TopicPartition| {
            // A name is copied once per topic, not once per leaderless partition.
            if !topics.contains(&*tp.topic) && self.metadata.leader(tp).is_none() {
                topics.insert(tp.topic.to_string());
            }
            every || topics.is_empty()
        };
        let mut candidates: Box<dyn Iterator<Item = &TopicPartition>> = if accumulator.all_touched()
        {
            Box::new(accumulator.waiting().map(|(tp, _)| tp))
        } else {
            let leaderless =
                (self.waits.leaderless()).filter(|tp| accumulator.get(tp).queued() > 0);
            Box::new(accumulator.touched().map(|(tp, _)| tp).chain(leaderless))
        };
        // `all` stops at the first partition `look` says to stop at.
        candidates.all(look);
        topics
    }

    /// Takes the ready batch of each partition due a look whose leader has room for a request,
    /// stamped and encoded, grouped by leader; notes what the others wait for.
    fn drain(&mut self, now: Instant) -> BTreeMap<BrokerId, Vec<Batch>> {
        let config = &self.shared.config;
        let mut s = self.shared.state.lock();
        let State {
            accumulator,
            links,
            identity,
            flushing,
            ..
        } = &mut *s;
        let busy = |leader: BrokerId| links.get(&leader).map_or(0, |l| l.in_flight.len());
        let (mut due, all) = accumulator.take_touched();
        if all {
            self.waits.clear();
        }
        let has_room = |leader| busy(leader) < config.max_in_flight;
        self.waits.release(now, has_room, &mut due);
        let mut out: BTreeMap<BrokerId, Vec<Batch>> = BTreeMap::new();
        for tp in &due {
            self.waits.looking_at(tp);
            let Some(partition) = accumulator.waiting_mut(tp) else {
                continue;
            };
            let front = partition.front().expect("a waiting partition's batch");
            // Leaderless first: such a partition calls for metadata whether or not its batch
            // could go.
            let passed_over = match self.metadata.leader(tp) {
                None => Err(Wait::Leader),
                Some((leader, _)) => sendable(front, partition, config, identity, now, *flushing)
                    .and_then(|()| {
                        if has_room(leader) {
                            Ok(leader)
                        } else {
                            Err(Wait::Room(leader))
                        }
                    }),
            };
            let leader = match passed_over {
                Ok(leader) => leader,
                Err(wait) => {
                    // Its batch's own times wake the sender whatever it waits for: a turn too
                    // many costs little, a turn too few leaves a batch behind.
                    let times = [front.retry_at, Some(front.lingered(config.linger))];
                    self.waits.wait(tp, wait, times.into_iter().flatten(), now);
                    continue;
                }
            };
            let (mut batch, partition) = accumulator.take_front(tp).expect("a front batch");
            prepare(&mut batch, partition, config.idempotence, identity);
            let more = partition.queued() > 0;
            out.entry(leader).or_default().push(batch);
            if more {
                // One batch per partition a turn keeps them in order; the next goes next turn.
                accumulator.touch(tp);
            }
        }
        out
    }

    /// Sends `batches` to `leader` in one request, connecting first if need be.
    async fn send(&mut self, leader: BrokerId, batches: Vec<Batch>) {
        let shared = self.shared.clone();
        if !self.writers.contains_key(&leader) {
            if let Err(error) = self.connect(leader).await {
                debug!(client = %shared.client_id, leader, %error, "cannot connect to the leader");
                let mut s = shared.state.lock();
                for batch in batches {
                    not_sent(&shared, &mut s, batch);
                }
                return;
            }
        }
        let (generation, writer) = self.writers.get_mut(&leader).expect("connected");
        let generation = *generation;
        let parts: Vec<(&str, i32, &[u8])> = batches
            .iter()
            .map(|b| {
                let encoded = b.encoded.as_deref().expect("prepared");
                (&*b.tp.topic, b.tp.partition, encoded)
            })
            .collect();
        let config = &shared.config;
        let produce = MultiProduce {
            acks: config.acks,
            timeout_ms: config.request_timeout.as_millis() as i32,
            parts: &parts,
        };
        let written = writer.send_produce(&produce, config.request_timeout).await;
        drop(parts);
        let resolved = {
            let mut s = shared.state.lock();
            sent(
                &shared,
                &mut s,
                leader,
                generation,
                batches,
                written.map_err(|e| e.to_string()),
            )
        };
        shared.complete(resolved);
    }

    /// Connects to `leader` and starts the reader of its answers.
    async fn connect(&mut self, leader: BrokerId) -> Result<(), String> {
        let shared = &self.shared;
        let address = self
            .metadata
            .broker_address(leader)
            .ok_or_else(|| format!("no address for broker {leader}"))?;
        let timeout = shared.config.request_timeout;
        let connection = Connection::connect(address, &shared.client_id, timeout)
            .await
            .map_err(|e| e.to_string())?;
        let (writer, receiver) = connection.into_pipeline();
        let mut s = shared.state.lock();
        s.generations += 1;
        let generation = s.generations;
        let link = Link::new(generation);
        let signal = link.signal.clone();
        if let Some(old) = s.links.insert(leader, link) {
            // A connection the sender had already let go of; nothing can be out on it.
            assert!(old.in_flight.is_empty());
            old.abandon();
        }
        drop(s);
        madsim::task::spawn(read_answers(
            shared.clone(),
            leader,
            generation,
            receiver,
            signal,
        ));
        self.writers.insert(leader, (generation, writer));
        trace!(client = %shared.client_id, leader, generation, "connected to the leader");
        Ok(())
    }

    /// The soonest a waiting batch's linger, backoff or delivery timeout comes round.
    fn next_timer(&mut self, now: Instant) -> Option<Instant> {
        let config = &self.shared.config;
        let s = self.shared.state.lock();
        let expiry = s.accumulator.next_expiry(config.delivery_timeout);
        // A time noted for a batch counts while that batch is still its partition's oldest.
        let front_time = |tp: &TopicPartition, at: Instant| {
            let front = s.accumulator.waiting_front(tp);
            front.is_some_and(|b| b.retry_at == Some(at) || b.lingered(config.linger) == at)
        };
        (self.waits.next_time(front_time).into_iter())
            .chain(expiry)
            .filter(|at| *at > now)
            .min()
    }
}

/// Whether a partition's oldest waiting batch may go now (see the module's doc), or what it
/// waits for.
fn sendable(
    front: &Batch,
    partition: &Partition,
    config: &super::ProducerConfig,
    identity: &Identity,
    now: Instant,
    flushing: bool,
) -> Result<(), Wait> {
    if let Some(at) = front.retry_at.filter(|at| now < *at) {
        return Err(Wait::Until(at));
    }
    let ready = front.attempts > 0
        || partition.queued() > 1
        || front.bytes >= config.batch_size
        || now >= front.lingered(config.linger)
        || flushing;
    if !ready {
        return Err(Wait::Until(front.lingered(config.linger)));
    }
    if !config.idempotence {
        return Ok(());
    }
    let in_turn = match front.stamp {
        Some(_) => {
            partition.first_unresolved() == Some(front.id)
                && (!identity.bump_needed || front.maybe_written)
        }
        None => !identity.bump_needed,
    };
    if in_turn {
        Ok(())
    } else {
        Err(Wait::Answer)
    }
}

/// Stamps a batch going out for the first time (with idempotence), and encodes it once.
fn prepare(batch: &mut Batch, partition: &mut Partition, idempotence: bool, identity: &Identity) {
    batch.attempts += 1;
    batch.retry_at = None;
    if batch.encoded.is_some() {
        return;
    }
    let mut bytes = batch::encode(&batch.records, 0).to_vec();
    if idempotence {
        let stamp = *batch.stamp.get_or_insert_with(|| {
            let stamp = Stamp {
                producer_id: identity.producer_id,
                epoch: identity.epoch,
                base_sequence: partition.next_sequence,
            };
            partition.next_sequence = partition
                .next_sequence
                .wrapping_add(batch.records.len() as i32)
                & i32::MAX;
            stamp
        });
        batch::set_producer(
            &mut bytes,
            stamp.producer_id,
            stamp.epoch,
            stamp.base_sequence,
        );
    }
    batch.encoded = Some(Bytes::from(bytes));
}

/// Puts back a batch that never went out (no connection): it waits the backoff, and its leader
/// is looked up again.
fn not_sent(shared: &Shared, s: &mut State, mut batch: Batch) {
    s.accumulator.out_of_flight(&batch);
    batch.attempts -= 1;
    batch.retry_at = Some(crate::env::now() + shared.config.retry_backoff);
    s.stale.insert(batch.tp.clone(), -1);
    s.accumulator.requeue(batch);
}

/// After writing a request: its batches wait for the answer, or with acks=0 are done; after a
/// failed write, the connection and everything out on it are lost.
fn sent(
    shared: &Shared,
    s: &mut State,
    leader: BrokerId,
    generation: u64,
    batches: Vec<Batch>,
    written: Result<i32, String>,
) -> Vec<Resolved> {
    let on_link = s
        .links
        .get(&leader)
        .is_some_and(|l| l.generation == generation);
    if s.closed || !on_link {
        // Closed meanwhile, or the connection broke while the request was written.
        let reason = "the connection was lost as the request went out";
        return batches
            .into_iter()
            .flat_map(|b| settle(shared, s, b, Attempt::Lost(reason.into())))
            .collect();
    }
    let correlation_id = match written {
        Ok(id) => id,
        Err(reason) => {
            let mut resolved = link::broken(shared, s, leader, &reason);
            for batch in batches {
                resolved.extend(settle(shared, s, batch, Attempt::Lost(reason.clone())));
            }
            return resolved;
        }
    };
    if shared.config.acks == 0 {
        let mut resolved = Vec::new();
        for batch in batches {
            s.accumulator.out_of_flight(&batch);
            resolved.extend(
                s.accumulator
                    .resolve(batch, Resolution::Each(SendOutcome::Sent)),
            );
        }
        return resolved;
    }
    let link = s.links.get_mut(&leader).expect("the link");
    link.in_flight.push_back(Request {
        correlation_id,
        deadline: crate::env::now() + shared.config.request_timeout * 2,
        batches,
    });
    link.signal.notify();
    Vec::new()
}

/// Asks the broker at `address` for a producer id and epoch.
async fn request_producer_id(shared: &Shared, address: SocketAddr) -> Result<(i64, i16), String> {
    let timeout = shared.config.request_timeout;
    let mut connection = Connection::connect(address, &shared.client_id, timeout)
        .await
        .map_err(|e| e.to_string())?;
    let mut request = InitProducerIdRequest::default();
    request.transactional_id = None;
    request.transaction_timeout_ms = i32::MAX;
    request.producer_id = (-1).into();
    request.producer_epoch = -1;
    let response = connection
        .call(&request, INIT_PRODUCER_ID_VERSION, timeout)
        .await
        .map_err(|e| e.to_string())?;
    if response.error_code != error_code::NONE {
        return Err(format!("error code {}", response.error_code));
    }
    Ok((response.producer_id.0, response.producer_epoch))
}
