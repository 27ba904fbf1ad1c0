//! Each node's quorum epoch (Raft's term, persisted) and the leader epoch it knows for each
//! partition never go down, across restarts too.

use std::collections::BTreeMap;
use super::Check;

use model::BrokerId;

use super::view::NodeView;
use super::Violation;

#[derive(Default)]
/// The `monotonic-epoch` check: the highest quorum and leader epochs each node has shown.
pub struct MonotonicEpochs {
    quorum: BTreeMap<BrokerId, i32>,
    /// Broker -> partition -> the leader epoch it last knew: looked up by name every step, so
    /// keyed so that a lookup builds no key.
    leader: BTreeMap<BrokerId, BTreeMap<String, i32>>,
}

impl MonotonicEpochs {
    /// A restarted broker relearns partition epochs from metadata, from the start; only its
    /// quorum epoch is on disk.
    pub fn forget_partitions(&mut self, node: BrokerId) {
        self.leader.remove(&node);
    }
    /// Judges every live node's epochs against the highest it showed before.
    pub fn check(&mut self, time_ms: u64, nodes: &[NodeView]) -> Vec<Violation> {
        let mut out = Vec::new();
        for n in nodes {
            let before = self.quorum.entry(n.node).or_insert(n.quorum_epoch);
            if n.quorum_epoch < *before {
                out.push(Violation {
                    check: Check::MonotonicEpoch,
                    time_ms,
                    node: Some(n.node),
                    partition: None,
                    offsets: Vec::new(),
                    message: format!("quorum epoch went from {before} to {}", n.quorum_epoch),
                });
            }
            *before = (*before).max(n.quorum_epoch);
            // -1: a restarted broker that has not learned the partition's epoch yet.
            let known = self.leader.entry(n.node).or_default();
            for r in n.replicas.iter().filter(|r| r.leader_epoch >= 0) {
                let before = crate::slot(known, &*r.partition, || r.leader_epoch);
                if r.leader_epoch < *before {
                    out.push(Violation {
                        check: Check::MonotonicEpoch,
                        time_ms,
                        node: Some(n.node),
                        partition: Some(r.partition.to_string()),
                        offsets: Vec::new(),
                        message: format!("leader epoch went from {before} to {}", r.leader_epoch),
                    });
                }
                *before = (*before).max(r.leader_epoch);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::tests::node as view_node;
    use super::super::view::ReplicaView;
    use super::*;

    fn node(quorum_epoch: i32, leader_epoch: i32) -> NodeView {
        let r = ReplicaView {
            partition: "t-0".into(),
            leader_epoch,
            ..Default::default()
        };
        NodeView {
            quorum_epoch,
            ..view_node(1, r)
        }
    }

    #[test]
    fn an_epoch_that_goes_down_is_caught() {
        let mut check = MonotonicEpochs::default();
        assert!(check.check(1, &[node(3, 2)]).is_empty());
        assert!(check.check(2, &[node(4, 2)]).is_empty());
        let v = check.check(3, &[node(3, 2)]);
        assert_eq!((v.len(), v[0].check), (1, Check::MonotonicEpoch));
        let v = check.check(4, &[node(4, 1)]);
        assert_eq!(v[0].partition.as_deref(), Some("t-0"));
    }
}
