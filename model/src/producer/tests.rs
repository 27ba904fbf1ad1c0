//! The producer's rules for answers and epochs, tried on a state built by hand: paths a swarm
//! seldom reaches (an unknown producer id, an epoch at its limit, a bump waiting for what is in
//! flight) are each made to happen here.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::accumulator::{Batch, Stamp};
use super::answer::{settle, Attempt};
use super::{epoch, Identity, ProducerConfig, SendOutcome, Shared, State};
use crate::fetcher::error_code;
use crate::signal::Signal;
use crate::sync::Lock;
use crate::TopicPartition;

type Heard = Arc<std::sync::Mutex<Vec<SendOutcome>>>;

/// An idempotent producer with id 7 in `epoch`, each record its own batch.
fn producer(epoch: i16) -> Shared {
    let mut config = ProducerConfig::kafka_default(-1, Duration::from_secs(30));
    config.batch_size = 1;
    Shared {
        state: Lock::new(State {
            accumulator: Default::default(),
            links: Default::default(),
            identity: Identity {
                producer_id: 7,
                epoch,
                bump_needed: false,
            },
            stale: Default::default(),
            flushing: false,
            closed: false,
            generations: 0,
        }),
        wake: Signal::default(),
        config,
        client_id: "test".into(),
    }
}

fn tp() -> TopicPartition {
    TopicPartition::new("t", 0)
}

/// Hands in `n` records and takes their batches out as the sender would: stamped in sequence
/// and counted in flight.
fn sent(shared: &Shared, n: usize, heard: &Heard) -> Vec<Batch> {
    let mut s = shared.state.lock();
    let mut batches = Vec::new();
    for i in 0..n {
        let heard = heard.clone();
        let callback = Box::new(move |o| heard.lock().unwrap().push(o));
        (s.accumulator).append(&tp(), None, Bytes::from_static(b"v"), callback, 1);
        let (mut batch, _) = s.accumulator.take_front(&tp()).expect("a batch");
        batch.attempts = 1;
        batch.stamp = Some(Stamp {
            producer_id: 7,
            epoch: s.identity.epoch,
            base_sequence: i as i32,
        });
        batches.push(batch);
    }
    batches
}

fn answer(shared: &Shared, batch: Batch, attempt: Attempt) {
    let resolved = {
        let mut s = shared.state.lock();
        settle(shared, &mut s, batch, attempt)
    };
    resolved.into_iter().for_each(|r| r.run());
}

/// Sends `n` batches and answers batch `which` with the error `code`.
fn answered_with(n: usize, which: usize, code: i16) -> (Shared, Heard) {
    let (shared, heard) = (producer(0), Heard::default());
    let mut batches = sent(&shared, n, &heard);
    answer(&shared, batches.remove(which), Attempt::Answered(Err(code)));
    (shared, heard)
}

fn simulated(body: impl FnOnce() + Send + 'static) {
    madsim::runtime::Runtime::new().block_on(async move { body() });
}

#[test]
fn an_unknown_producer_id_on_a_batch_never_written_retries_it_under_a_bump() {
    simulated(|| {
        let (shared, heard) = answered_with(1, 0, error_code::UNKNOWN_PRODUCER_ID);
        assert!(
            heard.lock().unwrap().is_empty(),
            "the batch goes again, unanswered"
        );
        let s = shared.state.lock();
        assert!(s.identity.bump_needed);
        let front = s.accumulator.waiting_front(&tp()).expect("requeued");
        assert!(front.retry_at.is_some() && !front.maybe_written);
    });
}

#[test]
fn an_out_of_order_sequence_on_the_oldest_batch_refuses_it_and_asks_for_a_bump() {
    simulated(|| {
        let code = error_code::OUT_OF_ORDER_SEQUENCE_NUMBER;
        let (shared, heard) = answered_with(1, 0, code);
        assert_eq!(
            *heard.lock().unwrap(),
            vec![SendOutcome::Refused { error: code }]
        );
        assert!(shared.state.lock().identity.bump_needed);
    });
}

#[test]
fn a_sequence_error_behind_an_unanswered_batch_is_that_batchs_gap_and_waits_behind_it() {
    simulated(|| {
        let (shared, heard) = answered_with(2, 1, error_code::OUT_OF_ORDER_SEQUENCE_NUMBER);
        let s = shared.state.lock();
        assert!(heard.lock().unwrap().is_empty() && !s.identity.bump_needed);
        assert!(s.accumulator.waiting_front(&tp()).is_some(), "queued again");
    });
}

#[test]
fn a_batch_that_may_be_written_fails_unknown_once_a_bump_is_due() {
    simulated(|| {
        let (shared, heard) = (producer(0), Heard::default());
        let mut batches = sent(&shared, 1, &heard);
        let lost = Attempt::Lost("connection closed".into());
        answer(&shared, batches.remove(0), lost);
        let mut s = shared.state.lock();
        s.identity.bump_needed = true;
        let (batch, _) = s
            .accumulator
            .take_front(&tp())
            .expect("requeued after the loss");
        drop(s);
        let code = error_code::OUT_OF_ORDER_SEQUENCE_NUMBER;
        answer(&shared, batch, Attempt::Answered(Err(code)));
        assert!(matches!(
            heard.lock().unwrap()[..],
            [SendOutcome::Unknown { .. }]
        ));
    });
}

#[test]
fn the_epoch_is_bumped_only_once_nothing_is_in_flight_and_then_sequences_start_again() {
    simulated(|| {
        let (shared, heard) = (producer(3), Heard::default());
        let mut batches = sent(&shared, 2, &heard);
        let mut s = shared.state.lock();
        s.identity.bump_needed = true;
        let _ = s.accumulator.take_touched();
        assert!(epoch::maybe_bump(&shared, &mut s).is_empty());
        assert_eq!(s.identity.epoch, 3, "a batch is in flight: no bump yet");
        drop(s);
        answer(&shared, batches.remove(0), Attempt::Answered(Ok(0)));
        answer(&shared, batches.remove(0), Attempt::Answered(Ok(1)));
        let mut s = shared.state.lock();
        assert!(epoch::maybe_bump(&shared, &mut s).is_empty());
        assert_eq!((s.identity.epoch, s.identity.bump_needed), (4, false));
        assert_eq!(s.accumulator.get(&tp()).next_sequence, 0);
        assert!(
            s.accumulator.all_touched(),
            "every partition is looked at again"
        );
    });
}

#[test]
fn an_epoch_at_its_limit_asks_for_a_new_producer_id_instead() {
    simulated(|| {
        let shared = producer(i16::MAX);
        let mut s = shared.state.lock();
        s.identity.bump_needed = true;
        assert!(epoch::maybe_bump(&shared, &mut s).is_empty());
        assert_eq!(s.identity.producer_id, -1);
    });
}
