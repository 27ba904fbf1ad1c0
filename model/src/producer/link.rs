//! One broker connection's requests in flight, and the task that reads their answers.
//!
//! The sender writes requests; the reader takes the answers in the order the requests went out
//! (a broker answers a connection's requests in order) and settles each batch of each. An answer
//! that does not come within its deadline, or a broken stream, ends the connection: every request
//! still out on it is settled as lost, since the broker may or may not have taken it.

use std::collections::VecDeque;
use std::sync::Arc;

use madsim::time::Instant;
use tracing::{debug, trace};

use super::accumulator::Batch;
use super::answer::{settle, Attempt};
use super::Shared;
use crate::deadline::Deadline;
use crate::produce_codec::PartitionProduced;
use crate::signal::Signal;
use crate::wire::ResponseReceiver;
use crate::BrokerId;

/// A request out on a connection, waiting for its answer.
pub(super) struct Request {
    pub correlation_id: i32,
    /// When the producer stops waiting and counts the connection lost.
    pub deadline: Instant,
    pub batches: Vec<Batch>,
}

/// A connection's requests in flight.
pub(super) struct Link {
    /// Which connection to this broker: a reader of an earlier one finds its link gone.
    pub generation: u64,
    pub in_flight: VecDeque<Request>,
    /// Fired when a request goes out or the link is dropped, for a reader with nothing to read.
    pub signal: Signal<()>,
}

impl Link {
    pub fn new(generation: u64) -> Link {
        Link {
            generation,
            in_flight: VecDeque::new(),
            signal: Signal::default(),
        }
    }

    /// Drops the link: its reader stops; returns the batches that were out on it.
    pub fn abandon(self) -> Vec<Batch> {
        self.signal.notify();
        self.in_flight.into_iter().flat_map(|r| r.batches).collect()
    }
}

/// Reads the answers of connection `generation` to `broker` until it breaks or is dropped.
pub(super) async fn read_answers(
    shared: Arc<Shared>,
    broker: BrokerId,
    generation: u64,
    mut receiver: ResponseReceiver,
    signal: Signal<()>,
) {
    let mut woken = signal.subscribe();
    loop {
        let next = {
            let s = shared.state.lock();
            match s.links.get(&broker) {
                Some(link) if link.generation == generation => link
                    .in_flight
                    .front()
                    .map(|r| (r.correlation_id, r.deadline)),
                _ => return,
            }
        };
        let Some((correlation_id, deadline)) = next else {
            woken.changed().await;
            continue;
        };
        let answer = match Deadline::at(deadline)
            .run(receiver.produce_answers(correlation_id))
            .await
        {
            Ok(Ok(answers)) => Ok(answers),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("no answer in time".to_owned()),
        };
        let lost = answer.is_err();
        let resolved = {
            let mut s = shared.state.lock();
            match s.links.get(&broker) {
                Some(link) if link.generation == generation => {}
                // Closed or dropped while the answer came: its batches are settled already.
                _ => return,
            }
            match answer {
                Ok(answers) => answered(&shared, &mut s, broker, answers),
                Err(reason) => broken(&shared, &mut s, broker, &reason),
            }
        };
        shared.complete(resolved);
        // A request fewer in flight, or batches back in the queue: the sender may have work.
        shared.wake.notify();
        if lost {
            return;
        }
    }
}

/// Settles each batch of the oldest request to `broker` by its partition's answer.
fn answered(
    shared: &Shared,
    s: &mut super::State,
    broker: BrokerId,
    answers: Vec<PartitionProduced>,
) -> Vec<super::Resolved> {
    let link = s.links.get_mut(&broker).expect("the reader's link");
    let request = link.in_flight.pop_front().expect("a request in flight");
    trace!(
        client = %shared.client_id,
        broker,
        correlation_id = request.correlation_id,
        partitions = answers.len(),
        "produce answered"
    );
    let mut resolved = Vec::new();
    for batch in request.batches {
        let answer = answers
            .iter()
            .find(|a| *a.topic == *batch.tp.topic && a.partition == batch.tp.partition)
            .map(|a| a.answer);
        let attempt = match answer {
            Some(answer) => Attempt::Answered(answer),
            None => Attempt::Lost("the answer names no such partition".into()),
        };
        resolved.extend(settle(shared, s, batch, attempt));
    }
    resolved
}

/// Drops the connection to `broker` and settles every batch out on it as lost.
pub(super) fn broken(
    shared: &Shared,
    s: &mut super::State,
    broker: BrokerId,
    reason: &str,
) -> Vec<super::Resolved> {
    let link = s.links.remove(&broker).expect("the reader's link");
    let batches = link.abandon();
    debug!(
        client = %shared.client_id,
        broker,
        batches = batches.len(),
        reason,
        "connection lost: its requests' outcomes are unknown"
    );
    let mut resolved = Vec::new();
    for batch in batches {
        resolved.extend(settle(shared, s, batch, Attempt::Lost(reason.to_owned())));
    }
    resolved
}
