//! Liveness after the heal: once faults stop and the quiet period has run, the cluster must have
//! converged. A wedge (a send that never completes, a replica that never catches up, a partition
//! or quorum without a leader) fails the run, just as lost data does.

use std::collections::BTreeMap;

use model::BrokerId;

use super::Violation;
use crate::record::history::{Op, OpFn, OpType};

fn violation(
    check: super::Check,
    time_ms: u64,
    node: Option<BrokerId>,
    partition: Option<String>,
    offsets: Vec<i64>,
    message: String,
) -> Violation {
    Violation {
        check,
        time_ms,
        node,
        partition,
        offsets,
        message,
    }
}

/// Every send that was invoked has completed (acked, refused or known unknown). A send is known by
/// its process and value: a producer that batches has several sends outstanding at once.
pub fn pending_sends(time_ms: u64, history: &[Op]) -> Vec<Violation> {
    let mut open: BTreeMap<(u64, Option<u64>), &Op> = BTreeMap::new();
    for op in history.iter().filter(|o| o.f == OpFn::Send) {
        if op.kind == OpType::Invoke {
            open.insert((op.process, op.sent()), op);
        } else {
            open.remove(&(op.process, op.sent()));
        }
    }
    open.values()
        .map(|op| {
            let value = op.sent().map_or("?".to_owned(), |v| v.to_string());
            let message = format!(
                "process {} sent {value} at {} ms and never heard back",
                op.process,
                op.time_ms.unwrap_or(0)
            );
            violation(
                super::Check::PendingSend,
                time_ms,
                None,
                op.key.as_deref().map(str::to_owned),
                Vec::new(),
                message,
            )
        })
        .collect()
}

/// What one replica holds of a partition at the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaEnd {
    /// A broker the partition is assigned to.
    pub broker: BrokerId,
    /// `None`: the broker is down or does not host the partition.
    pub high_watermark: Option<i64>,
}

/// Every replica of every partition holds, below its high watermark, every acknowledged offset.
pub fn fully_replicated(
    time_ms: u64,
    highest_acked: &BTreeMap<String, i64>,
    replicas: &BTreeMap<String, Vec<ReplicaEnd>>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    for (partition, highest) in highest_acked {
        for r in replicas.get(partition).into_iter().flatten() {
            let behind = r.high_watermark.is_none_or(|hw| hw <= *highest);
            if behind {
                let held = r
                    .high_watermark
                    .map_or("nothing".to_owned(), |hw| format!("up to {hw}"));
                let message =
                    format!("replica has committed {held}, but offset {highest} was acknowledged");
                out.push(violation(
                    super::Check::ReplicatedAfterHeal,
                    time_ms,
                    Some(r.broker),
                    Some(partition.clone()),
                    vec![*highest],
                    message,
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(value: u64, process: u64, kind: OpType) -> Op {
        let mut op = Op::new(process, kind, OpFn::Send);
        op.key = Some("t/0".into());
        op.value = Some(crate::record::history::Value::One(value));
        op
    }

    #[test]
    fn a_send_without_a_completion_is_caught() {
        let history = vec![
            op(0, 0, OpType::Invoke),
            op(0, 0, OpType::Ok),
            op(2, 1, OpType::Invoke),
            op(3, 0, OpType::Invoke),
            op(3, 0, OpType::Info),
        ];
        let v = pending_sends(9, &history);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].check, "pending-send");
        assert!(v[0].message.contains("process 1"), "{}", v[0].message);
    }

    #[test]
    fn given_several_sends_of_one_producer_in_flight_when_one_never_completes_it_is_caught() {
        let history = vec![
            op(10, 0, OpType::Invoke),
            op(11, 0, OpType::Invoke),
            op(12, 0, OpType::Invoke),
            op(12, 0, OpType::Ok),
            op(10, 0, OpType::Ok),
        ];
        let v = pending_sends(9, &history);
        assert_eq!(v.len(), 1, "{v:?}");
        assert!(v[0].message.contains("sent 11"), "{}", v[0].message);
    }

    #[test]
    fn a_replica_behind_the_last_acked_offset_is_caught() {
        let highest = BTreeMap::from([("t-0".to_owned(), 10)]);
        let ends = |hw: Option<i64>| {
            BTreeMap::from([(
                "t-0".to_owned(),
                vec![
                    ReplicaEnd {
                        broker: 1,
                        high_watermark: Some(11),
                    },
                    ReplicaEnd {
                        broker: 2,
                        high_watermark: hw,
                    },
                ],
            )])
        };
        assert!(fully_replicated(5, &highest, &ends(Some(11))).is_empty());
        let v = fully_replicated(5, &highest, &ends(Some(10)));
        assert_eq!((v.len(), v[0].node), (1, Some(2)));
        assert_eq!(
            fully_replicated(5, &highest, &ends(None))[0].check,
            "replicated-after-heal"
        );
    }
}
