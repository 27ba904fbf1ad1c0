//! The idempotent producer's epoch bump (KIP-360): after a sequence failed, the producer takes
//! the next epoch and starts every partition's sequences again at 0, which the broker accepts
//! from a newer epoch.
//!
//! It is safe only once nothing sent under the old epoch can still land: no request is in flight,
//! and no queued batch that may have been written keeps its old stamp. Such a batch, if it is its
//! partition's oldest, goes out again first under its old stamp, so the broker can answer it as a
//! retry or refuse it; one behind an older batch cannot be placed under either epoch and fails as
//! unknown. Re-stamping a batch that may be in the log would let the broker write it twice
//! (librdkafka#4953, redpanda#3039). A batch older than one of its partition already written (a
//! leader that did not know the producer took a later batch across the gap) fails as well: written
//! now, it would land after it, out of order.

use tracing::debug;

use super::accumulator::{Batch, Resolved};
use super::answer::fail;
use super::{Shared, State};
use crate::fetcher::error_code;

/// Bumps the epoch if one is needed and it is safe; returns what that failed.
#[inline]
pub(super) fn maybe_bump(shared: &Shared, s: &mut State) -> Vec<Resolved> {
    if !s.identity.bump_needed {
        return Vec::new();
    }
    if shared.config.bump_with_batches_in_flight {
        // The wrong rule: bump now, and re-stamp every queued batch, even those that may be written.
        bump(shared, s);
        return Vec::new();
    }
    if s.accumulator.partitions().any(|p| p.in_flight > 0) {
        return Vec::new();
    }
    let mut resolved = Vec::new();
    for batch in unplaceable(s) {
        let reason = "cannot go again under the new epoch without a duplicate or a reordering";
        resolved.extend(fail(
            shared,
            s,
            batch,
            error_code::OUT_OF_ORDER_SEQUENCE_NUMBER,
            reason,
        ));
    }
    let old_stamp_pending = s
        .accumulator
        .queued()
        .any(|b| b.stamp.is_some() && b.maybe_written);
    if old_stamp_pending {
        return resolved;
    }
    bump(shared, s);
    resolved
}

/// Takes the next epoch and starts every partition's sequences again, re-stamping what is queued.
fn bump(shared: &Shared, s: &mut State) {
    let identity = &mut s.identity;
    if identity.epoch == i16::MAX {
        // The epoch cannot go higher: a new producer id, from InitProducerId.
        identity.producer_id = -1;
    } else {
        identity.epoch += 1;
    }
    identity.bump_needed = false;
    s.accumulator.reset_sequences();
    s.accumulator.touch_all();
    s.accumulator.for_each_waiting(|_, partition| {
        for batch in partition.queued_mut() {
            batch.stamp = None;
            batch.encoded = None;
        }
    });
    debug!(
        client = %shared.client_id,
        producer_id = s.identity.producer_id,
        epoch = s.identity.epoch,
        "producer epoch bumped: sequences start again at 0"
    );
    crate::mark!(ProducerEpochBumped);
}

/// Takes out of the queues the batches that cannot go again (see the module's doc): those that
/// may have been written under their stamp and are not their partition's oldest, and those older
/// than a batch of their partition already written.
fn unplaceable(s: &mut State) -> Vec<Batch> {
    s.accumulator.take_queued(|partition, b| {
        let old_stamp_only =
            b.stamp.is_some() && b.maybe_written && Some(b.id) != partition.first_unresolved();
        old_stamp_only
            || partition
                .newest_held_ack()
                .is_some_and(|newer| b.id < newer)
    })
}
