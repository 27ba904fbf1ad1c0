//! MirrorMaker's checks, after the quiet period:
//! - `mirror-complete`: every record acknowledged (acks=all) on the source is on the target's
//!   partition of the same number, and the first copies there are in the source's order;
//! - `mirror-checkpoint-skip`: a consumer failing over to the target from a group's last
//!   checkpoint (committed source offset c translated to target offset t) finds every
//!   acknowledged source record at or after c at or after t: it may read again, never skip.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::record::history::AckedSend;
use super::Violation;

/// `source` maps each source partition (`topic-N`) to its number; `target` each partition number
/// to the target leader's committed records.
pub fn check(
    time_ms: u64,
    acked: &[AckedSend],
    source: &BTreeMap<String, i32>,
    target: &BTreeMap<i32, BTreeMap<i64, Bytes>>,
    checkpoints: &BTreeMap<(String, i32), (i64, i64)>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    let violation = |check: super::Check, partition: &str, offsets: Vec<i64>, message: String| {
        Violation {
            check,
            time_ms,
            node: None,
            partition: Some(partition.to_owned()),
            offsets,
            message,
        }
    };
    // Per source partition, its acknowledged records in source order.
    let mut by_partition: BTreeMap<&str, Vec<&AckedSend>> = BTreeMap::new();
    for a in acked {
        by_partition.entry(&*a.partition).or_default().push(a);
    }
    for (partition, mut sends) in by_partition {
        let Some(&number) = source.get(partition) else {
            continue;
        };
        sends.sort_by_key(|a| a.offset);
        let empty = BTreeMap::new();
        let copies = target.get(&number).unwrap_or(&empty);
        // Where each value first lands on the target.
        let mut first: BTreeMap<&Bytes, i64> = BTreeMap::new();
        for (offset, value) in copies {
            first.entry(value).or_insert(*offset);
        }
        let mut last: Option<(i64, i64)> = None;
        for a in &sends {
            match first.get(&a.value) {
                None => {
                    out.push(violation(
                        super::Check::MirrorComplete,
                        partition,
                        vec![a.offset],
                        format!(
                            "acknowledged at source offset {} and never mirrored",
                            a.offset
                        ),
                    ));
                    break;
                }
                Some(&at) => {
                    if let Some((source_before, target_before)) = last {
                        if at < target_before {
                            out.push(violation(
                                super::Check::MirrorComplete,
                                partition,
                                vec![source_before, a.offset],
                                format!(
                                    "source offsets {source_before} and {} are mirrored the other \
                                     way round, at {target_before} and {at}",
                                    a.offset
                                ),
                            ));
                            break;
                        }
                    }
                    last = Some((a.offset, at));
                }
            }
        }
        for ((group, p), (committed, translated)) in checkpoints {
            if *p != number {
                continue;
            }
            let missed = sends.iter().find(|a| {
                a.offset >= *committed
                    && !copies
                        .range(translated..)
                        .any(|(_, value)| *value == a.value)
            });
            if let Some(a) = missed {
                out.push(violation(
                    super::Check::MirrorCheckpointSkip,
                    partition,
                    vec![*committed, *translated, a.offset],
                    format!(
                        "group {group}'s commit of {committed} translates to target offset \
                         {translated}, but source offset {} is not there or after",
                        a.offset
                    ),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(partition: &str, offset: i64, value: &str) -> AckedSend {
        AckedSend {
            partition: partition.into(),
            offset,
            value: Bytes::from(value.to_owned()),
            time_ms: 0,
        }
    }

    fn target(values: &[&str]) -> BTreeMap<i32, BTreeMap<i64, Bytes>> {
        let records = values
            .iter()
            .enumerate()
            .map(|(i, v)| (i as i64, Bytes::from(v.to_string())))
            .collect();
        BTreeMap::from([(0, records)])
    }

    fn checks(
        acked: &[AckedSend],
        on_target: &[&str],
        checkpoints: &[(&str, i64, i64)],
    ) -> Vec<&'static str> {
        let source = BTreeMap::from([("t-0".to_owned(), 0)]);
        let checkpoints = checkpoints
            .iter()
            .map(|(g, committed, translated)| ((g.to_string(), 0), (*committed, *translated)))
            .collect();
        check(0, acked, &source, &target(on_target), &checkpoints)
            .into_iter()
            .map(|v| v.check.name())
            .collect()
    }

    #[test]
    fn a_complete_mirror_with_a_re_copy_after_a_restart_passes() {
        let acked = [sent("t-0", 0, "a"), sent("t-0", 1, "b"), sent("t-0", 2, "c")];
        assert!(checks(&acked, &["a", "b", "a", "b", "c"], &[("g", 1, 1)]).is_empty());
    }

    #[test]
    fn a_missing_record_a_swapped_pair_and_a_checkpoint_past_a_record_are_caught() {
        let acked = [sent("t-0", 0, "a"), sent("t-0", 1, "b"), sent("t-0", 2, "c")];
        assert_eq!(checks(&acked, &["a", "c"], &[]), vec!["mirror-complete"]);
        assert_eq!(checks(&acked, &["a", "c", "b"], &[]), vec!["mirror-complete"]);
        // The group committed 1 (it still has b to read), but the checkpoint points past b.
        assert_eq!(
            checks(&acked, &["a", "b", "c"], &[("g", 1, 2)]),
            vec!["mirror-checkpoint-skip"]
        );
    }
}
