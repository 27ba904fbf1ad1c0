//! Log matching for committed data: every batch below a replica's high watermark is the same
//! batch (offsets, leader epoch, CRC) on every replica, and once seen committed it never changes.
//!
//! The first replica to show a committed batch sets the reference; every later sighting, on any
//! replica, is compared with it. A replica's checked prefix is remembered so that each step looks
//! only at new batches; a restart of the replica, or any truncation of its log (seen in the log's
//! own truncation count, so that a truncation nobody reported is not a blind spot), forgets it.

use std::collections::BTreeMap;
use super::Check;

use model::log::BatchMeta;
use model::{BrokerId, TopicPartition};

use super::Violation;

/// What a committed batch must look like everywhere.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reference {
    last_offset: i64,
    leader_epoch: i32,
    crc: u32,
    first_seen_on: BrokerId,
}

#[derive(Default)]
/// The `committed-data-identical` check: each partition's committed batches as first seen, and how
/// far each replica has been compared with them.
pub struct CommittedData {
    /// partition -> the committed batches by base offset, in order. A vector walked alongside the
    /// replica's own batches: a replica that restarts or truncates is checked again from the
    /// start, and a walk costs little where a lookup per batch would not.
    reference: BTreeMap<TopicPartition, Vec<(i64, Reference)>>,
    /// partition -> broker -> (offset below which this replica is already checked, the log's
    /// truncation count then). Keyed by partition first so that a step looks it up without
    /// building a key; by the partition itself rather than its name, whose shared topic compares
    /// without reading it.
    checked_below: BTreeMap<TopicPartition, BTreeMap<BrokerId, (i64, u64)>>,
    /// Batches compared, for the run's coverage counters.
    pub batches_checked: u64,
}

impl CommittedData {
    /// Forget what was checked on a replica from `offset` on (after a truncation or a restart).
    pub fn forget_from(&mut self, node: BrokerId, partition: &TopicPartition, offset: i64) {
        if let Some(c) = self
            .checked_below
            .get_mut(partition)
            .and_then(|by_node| by_node.get_mut(&node))
        {
            c.0 = c.0.min(offset);
        }
    }

    /// Forget everything checked on `node` (it crashed or restarted: its log is read anew).
    pub fn forget_node(&mut self, node: BrokerId) {
        for by_node in self.checked_below.values_mut() {
            by_node.remove(&node);
        }
    }

    /// Checks the batches of one replica below its high watermark. `truncations` is the log's
    /// truncation count; when it moved, the whole log is checked again.
    pub fn check(
        &mut self,
        time_ms: u64,
        node: BrokerId,
        partition: &TopicPartition,
        log: (&[BatchMeta], i64, u64),
    ) -> Option<Violation> {
        let (batches, high_watermark, truncations) = log;
        let from = match self.checked_below.get(partition).and_then(|n| n.get(&node)) {
            Some(&(below, seen)) if seen == truncations => below,
            _ => 0,
        };
        if high_watermark <= from {
            return None;
        }
        let reference = crate::slot(&mut self.reference, partition, Vec::new);
        let start = batches.partition_point(|b| b.last_offset < from);
        let mut checked = from;
        // The first reference batch at or after the replica's first batch to check.
        let mut next = batches.get(start).map_or(reference.len(), |b| {
            reference.partition_point(|(base, _)| *base < b.base_offset)
        });
        for b in &batches[start..] {
            if b.last_offset >= high_watermark {
                break;
            }
            self.batches_checked += 1;
            let seen = Reference {
                last_offset: b.last_offset,
                leader_epoch: b.leader_epoch,
                crc: b.crc,
                first_seen_on: node,
            };
            while next < reference.len() && reference[next].0 < b.base_offset {
                next += 1;
            }
            match reference.get(next).filter(|(base, _)| *base == b.base_offset) {
                None => {
                    // A committed batch must line up with the committed batches around it.
                    let overlap = next
                        .checked_sub(1)
                        .map(|before| &reference[before])
                        .filter(|(_, r)| r.last_offset >= b.base_offset);
                    if let Some((base, r)) = overlap {
                        return Some(violation(time_ms, node, partition, b, format!(
                            "committed batch [{}, {}] overlaps batch [{base}, {}] first seen committed on broker {}",
                            b.base_offset, b.last_offset, r.last_offset, r.first_seen_on
                        )));
                    }
                    // Nearly always at the end: committed batches are first seen in order.
                    reference.insert(next, (b.base_offset, seen));
                }
                Some((_, r))
                    if (r.last_offset, r.leader_epoch, r.crc)
                        != (seen.last_offset, seen.leader_epoch, seen.crc) =>
                {
                    return Some(violation(time_ms, node, partition, b, format!(
                        "committed batch at {} is [{}, {}] epoch {} crc {:#010x} here but [{}, {}] epoch {} crc {:#010x} on broker {}",
                        b.base_offset, b.base_offset, b.last_offset, b.leader_epoch, b.crc,
                        b.base_offset, r.last_offset, r.leader_epoch, r.crc, r.first_seen_on
                    )));
                }
                Some(_) => {}
            }
            next += 1;
            checked = b.last_offset + 1;
        }
        crate::slot(&mut self.checked_below, partition, BTreeMap::new)
            .insert(node, (checked, truncations));
        None
    }
}

fn violation(
    time_ms: u64,
    node: BrokerId,
    partition: &TopicPartition,
    b: &BatchMeta,
    message: String,
) -> Violation {
    Violation {
        check: Check::CommittedDataIdentical,
        time_ms,
        node: Some(node),
        partition: Some(partition.to_string()),
        offsets: vec![b.base_offset, b.last_offset],
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp() -> TopicPartition {
        TopicPartition::new("t", 0)
    }

    fn meta(base: i64, last: i64, epoch: i32, crc: u32) -> BatchMeta {
        BatchMeta {
            base_offset: base,
            last_offset: last,
            leader_epoch: epoch,
            crc,
            segment: 0,
            position: 0,
            size: 0,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            transactional: false,
            control: None,
            coordinator_epoch: -1,
        }
    }

    #[test]
    fn identical_committed_batches_pass_and_a_differing_one_below_the_high_watermark_is_caught() {
        let mut check = CommittedData::default();
        let good = [meta(0, 0, 0, 1), meta(1, 2, 0, 2), meta(3, 3, 1, 3)];
        assert_eq!(check.check(10, 1, &tp(), (&good, 4, 0)), None);
        assert_eq!(check.check(10, 2, &tp(), (&good, 4, 0)), None);
        let diverged = [meta(0, 0, 0, 1), meta(1, 2, 0, 2), meta(3, 3, 2, 9)];
        assert_eq!(
            check.check(11, 3, &tp(), (&diverged, 3, 0)),
            None,
            "above its high watermark a replica may differ"
        );
        let v = check
            .check(12, 3, &tp(), (&diverged, 4, 0))
            .expect("caught");
        assert_eq!(v.check, "committed-data-identical");
        assert_eq!((v.node, v.offsets.clone()), (Some(3), vec![3, 3]));
        assert!(v.message.contains("broker 1"), "{}", v.message);
    }

    #[test]
    fn a_committed_batch_that_changes_after_a_truncation_is_caught() {
        let mut check = CommittedData::default();
        assert_eq!(check.check(1, 1, &tp(), (&[meta(0, 1, 0, 5)], 2, 0)), None);
        let v = check
            .check(2, 1, &tp(), (&[meta(0, 0, 1, 6), meta(1, 1, 1, 7)], 2, 1))
            .expect("caught");
        assert_eq!(v.offsets, vec![0, 0]);
    }

    #[test]
    fn a_reported_truncation_is_checked_again_from_where_it_cut() {
        let mut check = CommittedData::default();
        assert_eq!(
            check.check(1, 1, &tp(), (&[meta(0, 0, 0, 5), meta(1, 1, 0, 6)], 2, 0)),
            None
        );
        check.forget_from(1, &tp(), 1);
        let v = check
            .check(2, 1, &tp(), (&[meta(0, 0, 0, 5), meta(1, 1, 1, 7)], 2, 0))
            .expect("caught");
        assert_eq!(v.offsets, vec![1, 1]);
    }
}
