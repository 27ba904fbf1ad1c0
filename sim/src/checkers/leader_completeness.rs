//! Leader completeness: a broker that takes up leadership of a partition holds every record that
//! was acknowledged with acks=all before it was elected. Content is compared by the committed-data
//! check; this one asks that the new leader's log reaches past every such offset.

use super::acked_durability::AckedSend;
use super::view::NodeView;
use super::Violation;
use model::BrokerId;

/// An election to verify at the next step: who, what, when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Election {
    pub node: BrokerId,
    pub partition: String,
    pub leader_epoch: i32,
    pub time_ms: u64,
}

/// Checks pending elections against the acknowledgements made before each.
/// Elections whose leader is gone or moved on are dropped.
pub fn check(
    time_ms: u64,
    elections: &mut Vec<Election>,
    nodes: &[NodeView],
    acked: &[AckedSend],
) -> Vec<Violation> {
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
        let needed = acked
            .iter()
            .filter(|a| *a.partition == *e.partition && a.time_ms < e.time_ms)
            .map(|a| a.offset)
            .max();
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
        assert!(
            check(200, &mut vec![election.clone()], &nodes, &acked).is_empty(),
            "offset 9 came after"
        );
        let acked = vec![sent(5, 90)];
        let v = check(200, &mut vec![election], &nodes, &acked);
        assert_eq!(
            (v[0].check, v[0].offsets.clone()),
            ("leader-completeness", vec![5])
        );
    }
}
