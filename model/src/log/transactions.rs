//! What a partition's log knows of transactions (KIP-98), all derived from its batches, so that
//! recovery, truncation and a new leader rebuild it by reading them again: each producer's open
//! transaction and where it starts, the aborted transactions (the index a read_committed reader
//! filters by), and the last stable offset.
//!
//! A transaction opens on a partition with its producer's first transactional batch there and
//! ends with the control batch (marker) its coordinator has the leader write. Until the marker is
//! below the high watermark the transaction still pins the last stable offset: a reader must not
//! pass records whose fate a new leader might not know.

use std::collections::BTreeMap;

use super::BatchMeta;
use crate::batch::Marker;

/// An aborted transaction on one partition: its producer, its first record and its marker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub marker_offset: i64,
}

#[derive(Clone, Debug, Default)]
pub struct Transactions {
    /// Each producer's open transaction: where it starts.
    open: BTreeMap<i64, i64>,
    /// Ended transactions whose marker may not be below the high watermark yet: (first offset,
    /// marker offset).
    unreplicated: Vec<(i64, i64)>,
    /// In the order of their markers.
    aborted: Vec<AbortedTxn>,
    /// The highest producer epoch a marker carried, per producer: a data batch of an older one
    /// belongs to a producer since fenced.
    marker_epochs: BTreeMap<i64, i16>,
    /// The highest coordinator epoch a marker carried, per producer: a marker from an older
    /// coordinator (one that lost its leadership and does not know yet) is refused.
    coordinator_epochs: BTreeMap<i64, i32>,
}

impl Transactions {
    /// Takes in a batch appended at the log's end.
    #[inline]
    pub fn on_batch(&mut self, m: &BatchMeta) {
        if !m.transactional {
            return;
        }
        match m.control {
            None => {
                self.open.entry(m.producer_id).or_insert(m.base_offset);
            }
            Some(marker) => {
                let epoch = self.marker_epochs.entry(m.producer_id).or_insert(i16::MIN);
                *epoch = (*epoch).max(m.producer_epoch);
                let coordinator =
                    (self.coordinator_epochs.entry(m.producer_id)).or_insert(i32::MIN);
                *coordinator = (*coordinator).max(m.coordinator_epoch);
                let Some(first) = self.open.remove(&m.producer_id) else {
                    // The transaction wrote nothing here: its marker ends nothing.
                    return;
                };
                self.unreplicated.push((first, m.base_offset));
                if marker == Marker::Abort {
                    self.aborted.push(AbortedTxn {
                        producer_id: m.producer_id,
                        first_offset: first,
                        marker_offset: m.base_offset,
                    });
                }
            }
        }
    }

    /// Forgets what `high_watermark` has made stable for good.
    pub fn on_high_watermark(&mut self, high_watermark: i64) {
        if !self.unreplicated.is_empty() {
            self.unreplicated
                .retain(|(_, marker)| *marker >= high_watermark);
        }
    }

    /// The offset below which every transaction's fate is decided and replicated: the first
    /// record of the earliest transaction still open or whose marker is not yet below
    /// `high_watermark`; `high_watermark` when there is none.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        let open = self.open.values().copied();
        let unreplicated = (self.unreplicated.iter())
            .filter(|(_, marker)| *marker >= high_watermark)
            .map(|(first, _)| *first);
        open.chain(unreplicated).fold(high_watermark, i64::min)
    }

    /// The aborted transactions with records in `[from, upper)`, as a fetch answers them.
    pub fn aborted_between(&self, from: i64, upper: i64) -> impl Iterator<Item = &AbortedTxn> {
        let start = self.aborted.partition_point(|a| a.marker_offset < from);
        self.aborted[start..]
            .iter()
            .filter(move |a| a.first_offset < upper)
    }

    /// Where `producer_id`'s open transaction starts on this partition.
    pub fn open_since(&self, producer_id: i64) -> Option<i64> {
        self.open.get(&producer_id).copied()
    }

    /// Every open transaction: producer and first offset.
    pub fn open(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.open.iter().map(|(p, o)| (*p, *o))
    }

    /// Whether the marker `h` comes too late to be written: its producer epoch is older than
    /// the producer's newest here (`data_epoch`, its last data batch's, or a marker's), or its
    /// coordinator epoch is older than a marker's already written for the producer. A zombie
    /// coordinator's marker, or one from a transaction long ended, must not end the transaction
    /// open now.
    pub fn fences_marker(&self, h: &crate::batch::BatchHeader, data_epoch: Option<i16>) -> bool {
        let pid = h.producer_id;
        let newest = data_epoch.max(self.marker_epoch(pid));
        let coordinator = self.coordinator_epochs.get(&pid).copied();
        newest.is_some_and(|e| h.producer_epoch < e)
            || coordinator.is_some_and(|e| h.coordinator_epoch < e)
    }

    /// The newest epoch a marker of `producer_id` carried here.
    pub fn marker_epoch(&self, producer_id: i64) -> Option<i16> {
        self.marker_epochs.get(&producer_id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(base: i64, last: i64, producer_id: i64, control: Option<Marker>) -> BatchMeta {
        BatchMeta {
            base_offset: base,
            last_offset: last,
            leader_epoch: 0,
            crc: 0,
            segment: 0,
            position: 0,
            size: 0,
            producer_id,
            producer_epoch: 0,
            base_sequence: 0,
            transactional: true,
            control,
            coordinator_epoch: 0,
        }
    }

    #[test]
    fn an_open_transaction_pins_the_stable_offset_until_its_marker_is_replicated() {
        let mut t = Transactions::default();
        t.on_batch(&meta(3, 4, 7, None));
        t.on_batch(&meta(5, 5, 8, None));
        assert_eq!(t.last_stable_offset(6), 3);
        t.on_batch(&meta(6, 6, 7, Some(Marker::Commit)));
        t.on_high_watermark(6);
        assert_eq!(
            t.last_stable_offset(6),
            3,
            "the marker is not below the HW yet"
        );
        t.on_high_watermark(7);
        assert_eq!(t.last_stable_offset(7), 5, "producer 8's is still open");
        t.on_batch(&meta(7, 7, 8, Some(Marker::Abort)));
        t.on_high_watermark(8);
        assert_eq!(t.last_stable_offset(8), 8);
        let aborted: Vec<_> = t.aborted_between(0, 8).collect();
        assert_eq!(
            aborted,
            [&AbortedTxn {
                producer_id: 8,
                first_offset: 5,
                marker_offset: 7
            }]
        );
        assert_eq!(t.aborted_between(8, 20).count(), 0, "read past its marker");
        assert_eq!(
            t.aborted_between(0, 5).count(),
            0,
            "read below its first record"
        );
    }

    #[test]
    fn a_late_marker_of_an_older_epoch_or_an_older_coordinator_is_fenced() {
        let marker = |producer_epoch: i16, coordinator_epoch: i32| {
            let bytes = crate::batch::encode_marker(
                7,
                producer_epoch,
                Marker::Commit,
                coordinator_epoch,
                0,
            );
            crate::batch::parse(&bytes).expect("a marker parses")
        };
        assert_eq!(marker(3, 5).coordinator_epoch, 5);
        let mut t = Transactions::default();
        let mut written = meta(0, 0, 7, Some(Marker::Abort));
        (written.producer_epoch, written.coordinator_epoch) = (3, 5);
        t.on_batch(&written);
        assert!(
            !t.fences_marker(&marker(3, 5), Some(3)),
            "the same end again"
        );
        assert!(!t.fences_marker(&marker(4, 6), Some(3)), "a newer one");
        assert!(
            t.fences_marker(&marker(2, 5), Some(3)),
            "an older producer epoch"
        );
        assert!(
            t.fences_marker(&marker(3, 4), Some(3)),
            "an older coordinator"
        );
        assert!(
            t.fences_marker(&marker(3, 5), Some(4)),
            "older than the data written since"
        );
    }

    #[test]
    fn a_marker_of_a_transaction_that_wrote_nothing_here_ends_nothing() {
        let mut t = Transactions::default();
        t.on_batch(&meta(0, 0, 9, Some(Marker::Abort)));
        assert_eq!(t.last_stable_offset(1), 1);
        assert_eq!(t.aborted_between(0, 1).count(), 0);
        assert_eq!(t.marker_epoch(9), Some(0));
    }
}
