//! The end-of-run oracle: after faults heal and the quiet period ends, every record acknowledged
//! with acks=all is on its partition's leader, below the high watermark, at the offset it was
//! acknowledged with, with the value that was sent.

use std::collections::BTreeMap;
use super::Check;

use bytes::Bytes;
use model::log::Log;
use model::BrokerId;

use super::Violation;
use crate::record::history::AckedSend;

/// The committed records of a log, offset -> value.
pub fn committed_values(log: &Log) -> BTreeMap<i64, Bytes> {
    let bytes = log
        .read(0, log.high_watermark(), usize::MAX)
        .unwrap_or_default();
    model::batch::decode(bytes)
        .unwrap_or_default()
        .into_iter()
        .map(|(offset, _, value)| (offset, value.unwrap_or_default()))
        .collect()
}

/// `leaders` maps each partition to its leader and that leader's committed records.
pub fn check(
    time_ms: u64,
    acked: &[AckedSend],
    leaders: &BTreeMap<String, (BrokerId, BTreeMap<i64, Bytes>)>,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    for a in acked {
        let Some((leader, values)) = leaders.get(&*a.partition) else {
            // The liveness check reports partitions without a leader.
            continue;
        };
        let problem = match values.get(&a.offset) {
            None => Some("is not committed on the leader".to_owned()),
            Some(v) if *v != a.value => Some(format!(
                "holds {:?} on the leader, not the acknowledged {:?}",
                String::from_utf8_lossy(v),
                String::from_utf8_lossy(&a.value)
            )),
            Some(_) => None,
        };
        if let Some(problem) = problem {
            violations.push(Violation {
                check: Check::AckedWriteDurable,
                time_ms,
                node: Some(*leader),
                partition: Some(a.partition.to_string()),
                offsets: vec![a.offset],
                message: format!("acks=all record at offset {} {problem}", a.offset),
            });
        }
    }
    violations
}

/// Once committed, a record a consumer read stays readable at that offset: after the quiet period
/// the leader holds, committed, every (offset, value) of each partition that a poll returned.
pub fn check_reads(
    time_ms: u64,
    reads: &BTreeMap<String, Vec<(i64, u64)>>,
    leaders: &BTreeMap<String, (BrokerId, BTreeMap<i64, Bytes>)>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    // Values are sent as decimal text: compare bytes, in one buffer rather than a string per read.
    let mut text = Vec::with_capacity(20);
    for (partition, read) in reads {
        let Some((leader, values)) = leaders.get(partition) else {
            continue;
        };
        for &(offset, value) in read {
            text.clear();
            model::env::push_unsigned(&mut text, value);
            let held = values.get(&offset);
            if held.is_some_and(|v| v[..] == text[..]) {
                continue;
            }
            let held = held.map(|v| String::from_utf8_lossy(v).into_owned());
            out.push(Violation {
                check: Check::ReadStaysReadable,
                time_ms,
                node: Some(*leader),
                partition: Some(partition.clone()),
                offsets: vec![offset],
                message: format!(
                    "a consumer read {value} at offset {offset}; the leader now holds {}",
                    held.as_deref().unwrap_or("nothing committed")
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_or_replaced_acked_record_is_caught() {
        let acked = vec![
            AckedSend {
                partition: "t-0".into(),
                offset: 0,
                value: Bytes::from_static(b"a"),
                time_ms: 0,
            },
            AckedSend {
                partition: "t-0".into(),
                offset: 1,
                value: Bytes::from_static(b"b"),
                time_ms: 0,
            },
            AckedSend {
                partition: "t-0".into(),
                offset: 2,
                value: Bytes::from_static(b"c"),
                time_ms: 0,
            },
        ];
        let values = BTreeMap::from([(0, Bytes::from_static(b"a")), (1, Bytes::from_static(b"x"))]);
        let leaders = BTreeMap::from([("t-0".to_owned(), (2, values))]);
        let v = check(5, &acked, &leaders);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].offsets, vec![1]);
        assert!(v[0].message.contains("not the acknowledged"));
        assert_eq!(v[1].offsets, vec![2]);
        assert_eq!(v[1].node, Some(2));
    }

    #[test]
    fn a_read_record_that_changed_or_vanished_is_caught() {
        let values = BTreeMap::from([
            (0, Bytes::from_static(b"10")),
            (1, Bytes::from_static(b"99")),
        ]);
        let leaders = BTreeMap::from([("t-0".to_owned(), (1, values))]);
        let reads = BTreeMap::from([("t-0".to_owned(), vec![(0, 10), (1, 11), (2, 12)])]);
        let v = check_reads(5, &reads, &leaders);
        assert_eq!(
            v.iter().map(|v| v.offsets[0]).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(v[0].check, "read-stays-readable");
    }
}
