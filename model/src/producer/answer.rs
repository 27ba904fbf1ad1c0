//! What an attempt's answer means for its batch, as Kafka's `Sender.completeBatch` decides:
//! acknowledged, sent again after `retry_backoff`, or failed.
//!
//! A failed batch is refused (definitely not written) only if no attempt of it could have been
//! written; otherwise its outcome is unknown. With idempotence, a sequence error is the broker
//! saying its sequences and the producer's differ: if an older batch of the partition is still
//! unresolved, the gap is that batch's and this one is retried behind it; if this batch is the
//! oldest, the broker has lost what came before it, and the batch fails (UNKNOWN_PRODUCER_ID: it
//! is retried instead, when it was never possibly written) and the epoch must be bumped. Any
//! stamped batch that fails leaves a hole in its partition's sequences, so it too asks for a bump.

use tracing::debug;

use super::accumulator::{Batch, Resolution, Resolved};
use super::{SendOutcome, Shared, State};
use crate::fetcher::error_code;

/// What came of one attempt.
pub(super) enum Attempt {
    /// The leader's answer: the base offset, or an error code.
    Answered(Result<i64, i16>),
    /// No answer (the connection broke or the answer was late): the batch may have been written.
    Lost(String),
}

/// Errors the leader gives before it appends anything: the attempt was certainly not written.
fn refused_before_append(code: i16) -> bool {
    matches!(
        code,
        error_code::NOT_LEADER_OR_FOLLOWER
            | error_code::FENCED_LEADER_EPOCH
            | error_code::UNKNOWN_LEADER_EPOCH
            | error_code::UNKNOWN_TOPIC_OR_PARTITION
            | error_code::NOT_ENOUGH_REPLICAS
            | error_code::KAFKA_STORAGE_ERROR
            | error_code::CORRUPT_MESSAGE
            | error_code::OUT_OF_ORDER_SEQUENCE_NUMBER
            | error_code::INVALID_PRODUCER_EPOCH
            | error_code::UNKNOWN_PRODUCER_ID
    )
}

/// Errors after which Kafka's producer asks for metadata again: the leader may have moved.
fn leader_may_have_moved(code: i16) -> bool {
    matches!(
        code,
        error_code::NOT_LEADER_OR_FOLLOWER
            | error_code::FENCED_LEADER_EPOCH
            | error_code::UNKNOWN_LEADER_EPOCH
            | error_code::UNKNOWN_TOPIC_OR_PARTITION
            | error_code::KAFKA_STORAGE_ERROR
    )
}

/// Settles one attempt of `batch`; returns what may be answered now.
pub(super) fn settle(
    shared: &Shared,
    s: &mut State,
    mut batch: Batch,
    attempt: Attempt,
) -> Vec<Resolved> {
    s.accumulator.out_of_flight(&batch);
    let code = match attempt {
        Attempt::Answered(Ok(base_offset)) => {
            return s
                .accumulator
                .resolve(batch, Resolution::Acked { base_offset });
        }
        Attempt::Answered(Err(code)) => code,
        Attempt::Lost(reason) => {
            batch.maybe_written = true;
            s.stale.insert(batch.tp.clone(), -1);
            return retry_or_fail(shared, s, batch, error_code::REQUEST_TIMED_OUT, &reason);
        }
    };
    if !refused_before_append(code) {
        batch.maybe_written = true;
    }
    if leader_may_have_moved(code) {
        s.stale.insert(batch.tp.clone(), code);
    }
    let reason = format!("error code {code}");
    match code {
        error_code::OUT_OF_ORDER_SEQUENCE_NUMBER | error_code::UNKNOWN_PRODUCER_ID
            if shared.config.idempotence =>
        {
            sequence_error(shared, s, batch, code, &reason)
        }
        error_code::INVALID_PRODUCER_EPOCH => fail(shared, s, batch, code, &reason),
        _ => retry_or_fail(shared, s, batch, code, &reason),
    }
}

/// A sequence the leader cannot place (see the module's doc).
fn sequence_error(
    shared: &Shared,
    s: &mut State,
    batch: Batch,
    code: i16,
    reason: &str,
) -> Vec<Resolved> {
    if shared.config.bump_with_batches_in_flight {
        // The wrong rule: the batch goes again under the bumped epoch whether or not it may be
        // written, and the bump does not wait for what is in flight (`epoch.rs`).
        if batch
            .stamp
            .is_some_and(|stamp| stamp.epoch == s.identity.epoch)
        {
            s.identity.bump_needed = true;
        }
        return retry_or_fail(shared, s, batch, code, reason);
    }
    let oldest = s.accumulator.get(&batch.tp).first_unresolved() == Some(batch.id);
    if s.identity.bump_needed && batch.maybe_written {
        // It cannot be sent again under the old epoch (its gap stays) nor the new (it may be a
        // duplicate then).
        return fail(shared, s, batch, code, reason);
    }
    if !oldest || s.identity.bump_needed {
        return retry_or_fail(shared, s, batch, code, reason);
    }
    debug!(
        client = %shared.client_id,
        partition = %batch.tp,
        error_code = code,
        stamp = ?batch.stamp,
        "the leader lost this producer's sequence: the epoch must be bumped"
    );
    crate::mark!(ProducerLostSequence);
    s.identity.bump_needed = true;
    if code == error_code::UNKNOWN_PRODUCER_ID && !batch.maybe_written {
        // KIP-360: the producer's state is gone (retention, truncation); the batch goes again
        // under the bumped epoch.
        return retry_or_fail(shared, s, batch, code, reason);
    }
    fail(shared, s, batch, code, reason)
}

/// Sends the batch again after the backoff, if its retries and delivery time allow.
fn retry_or_fail(
    shared: &Shared,
    s: &mut State,
    mut batch: Batch,
    code: i16,
    reason: &str,
) -> Vec<Resolved> {
    let config = &shared.config;
    let now = crate::env::now();
    let in_time = now < batch.created + config.delivery_timeout;
    if !in_time {
        crate::mark!(ProducerDeliveryTimeout);
    }
    if batch.attempts > config.retries || !in_time || s.closed {
        return fail(shared, s, batch, code, reason);
    }
    debug!(
        client = %shared.client_id,
        partition = %batch.tp,
        attempts = batch.attempts,
        reason,
        "batch failed: it goes again after the backoff"
    );
    crate::mark!(ProducerRetries);
    batch.retry_at = Some(now + config.retry_backoff);
    s.accumulator.requeue(batch);
    Vec::new()
}

/// Fails the batch: refused if no attempt of it could have been written, else unknown.
pub(super) fn fail(
    shared: &Shared,
    s: &mut State,
    batch: Batch,
    code: i16,
    reason: &str,
) -> Vec<Resolved> {
    debug!(
        client = %shared.client_id,
        partition = %batch.tp,
        attempts = batch.attempts,
        maybe_written = batch.maybe_written,
        reason,
        "batch failed for good"
    );
    if batch.stamp.is_some() {
        s.identity.bump_needed = true;
    }
    let outcome = if batch.maybe_written {
        SendOutcome::Unknown {
            reason: reason.to_owned(),
        }
    } else {
        SendOutcome::Refused { error: code }
    };
    s.accumulator.resolve(batch, Resolution::Each(outcome))
}
