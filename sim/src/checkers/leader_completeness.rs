//! Leader completeness: a broker that takes up leadership of a partition holds every record that
//! was acknowledged with acks=all before it was elected. Content is compared by the committed-data
//! check; this one asks that the new leader's log reaches past every such offset.

use super::acked_durability::AckedSend;
use super::view::NodeView;
use super::Violation;
use model::BrokerId;
use std::collections::BTreeMap;
use std::sync::Arc;

/// An election to verify at the next step: who, what, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Election {
    pub node: BrokerId,
    pub partition: String,
    pub leader_epoch: i32,
    pub time_ms: u64,
}

/// The highest offset acknowledged on each partition by each moment, built as acknowledgements
/// arrive, so that checking an election does not walk every acknowledgement of the run.
#[derive(Default)]
pub struct AckedBefore {
    /// How many of the run's acknowledgements are taken in.
    seen: usize,
    /// partition -> (time, highest offset acknowledged by then), in time order.
    by_partition: BTreeMap<Arc<str>, Vec<(u64, i64)>>,
}

impl AckedBefore {
    /// Takes in the acknowledgements that came after those seen before: `acked` only grows, in
    /// the order of simulated time.
    fn catch_up(&mut self, acked: &[AckedSend]) {
        for a in acked.get(self.seen..).unwrap_or_default() {
            let steps = self.by_partition.entry(a.partition.clone()).or_default();
            match steps.last_mut() {
                Some((time, highest)) if *time == a.time_ms => *highest = (*highest).max(a.offset),
                Some(&mut (time, highest)) => {
                    assert!(time < a.time_ms, "{}: acknowledged back in time", a.partition);
                    steps.push((a.time_ms, highest.max(a.offset)));
                }
                None => steps.push((a.time_ms, a.offset)),
            }
        }
        self.seen = acked.len();
    }

    /// The highest offset of `partition` acknowledged before `time_ms`.
    fn highest_before(&self, partition: &str, time_ms: u64) -> Option<i64> {
        let steps = self.by_partition.get(partition)?;
        let before = steps.partition_point(|(time, _)| *time < time_ms);
        before.checked_sub(1).map(|i| steps[i].1)
    }
}

/// Checks pending elections against the acknowledgements made before each.
/// Elections whose leader is gone or moved on are dropped.
pub fn check(
    time_ms: u64,
    elections: &mut Vec<Election>,
    nodes: &[NodeView],
    acked: &[AckedSend],
    index: &mut AckedBefore,
) -> Vec<Violation> {
    index.catch_up(acked);
    let mut out = Vec::new();
    for e in elections.drain(..) {
        let replica = nodes
            .iter()
            .filter(|n| n.node == e.node)
            .flat_map(|n| &n.replicas)
            .find(|r| {
                *r.partition == *e.partition && r.is_leader && r.leader_epoch == e.leader_epoch
            });
        let Some(r) = replica else { continue };
        let needed = index.highest_before(&e.partition, e.time_ms);
        if let Some(offset) = needed.filter(|o| r.log_end_offset <= *o) {
            out.push(Violation {
                check: "leader-completeness",
                time_ms,
                node: Some(e.node),
                partition: Some(e.partition.clone()),
                offsets: vec![offset],
                message: format!(
                    "the leader of epoch {} ends at {} but offset {offset} was acknowledged before its election",
                    e.leader_epoch, r.log_end_offset
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::view::tests::node;
    use super::super::view::ReplicaView;
    use super::*;

    fn sent(offset: i64, time_ms: u64) -> AckedSend {
        AckedSend {
            partition: "t-0".into(),
            offset,
            value: bytes::Bytes::new(),
            time_ms,
        }
    }

    #[test]
    fn a_new_leader_missing_an_acknowledged_record_is_caught() {
        let r = ReplicaView {
            partition: "t-0".into(),
            leader_epoch: 2,
            is_leader: true,
            log_end_offset: 5,
            ..Default::default()
        };
        let nodes = vec![node(3, r)];
        let election = Election {
            node: 3,
            partition: "t-0".into(),
            leader_epoch: 2,
            time_ms: 100,
        };
        let acked = vec![sent(4, 50), sent(9, 150)];
        let mut index = AckedBefore::default();
        assert!(
            check(200, &mut vec![election.clone()], &nodes, &acked, &mut index).is_empty(),
            "offset 9 came after"
        );
        let acked = vec![sent(5, 90)];
        let v = check(
            200,
            &mut vec![election.clone()],
            &nodes,
            &acked,
            &mut AckedBefore::default(),
        );
        assert_eq!(
            (v[0].check, v[0].offsets.clone()),
            ("leader-completeness", vec![5])
        );
        // Taken in step by step, as a run does: the highest before the election counts, from
        // whichever step it arrived in.
        let mut acked = vec![sent(3, 10), sent(5, 60)];
        let mut index = AckedBefore::default();
        assert!(check(70, &mut vec![], &nodes, &acked, &mut index).is_empty());
        acked.extend([sent(2, 60), sent(8, 100), sent(9, 120)]);
        let v = check(200, &mut vec![election], &nodes, &acked, &mut index);
        assert_eq!(v[0].offsets, vec![5]);
    }
}
