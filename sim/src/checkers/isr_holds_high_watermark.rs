//! Strong ISR (the property `Kip320.tla` proves): while a leader is current, every member of the
//! controller's ISR that is in service holds, synced, every offset below the leader's high
//! watermark. A member that lacks one is a copy the high watermark counted and a crash would
//! take away: the moment acknowledged data becomes one fault from loss, caught when it happens
//! rather than when the loss does.

use std::collections::BTreeMap;

use super::view::{ControllerView, NodeView};
use super::Violation;

/// The rule at one step, over every live broker and the controllers' view.
pub fn check(time_ms: u64, nodes: &[NodeView], controller: &ControllerView) -> Vec<Violation> {
    let mut out = Vec::new();
    // What each in-service broker holds synced of each partition, looked up once per member
    // rather than found by a walk over the member's replicas: that walk, for every partition,
    // made a step's cost grow with the square of the partitions.
    // A restarted member is out of service until the controller has seen its new incarnation,
    // which also takes it out of the ISR.
    let synced: BTreeMap<(i32, &str), i64> = (nodes.iter().filter(|m| m.in_service))
        .flat_map(|m| (m.replicas.iter()).map(move |r| ((m.node, &*r.partition), r.durable_end_offset)))
        .collect();
    for n in nodes {
        for r in n.replicas.iter().filter(|r| r.is_leader) {
            let Some(c) = controller.get(&*r.partition) else {
                continue;
            };
            // A newly elected controller that has not applied the leader's partition epoch yet
            // shows an older ISR.
            let current = c.leader == n.node
                && c.leader_epoch == r.leader_epoch
                && c.partition_epoch >= r.partition_epoch;
            if !current {
                continue;
            }
            for member in &c.isr {
                let held = synced.get(&(*member, &*r.partition)).copied();
                if let Some(held) = held.filter(|held| *held < r.high_watermark) {
                    out.push(Violation {
                        check: super::Check::IsrHoldsHighWatermark,
                        time_ms,
                        node: Some(*member),
                        partition: Some(r.partition.to_string()),
                        offsets: vec![held, r.high_watermark - 1],
                        message: format!(
                            "ISR member {member} has synced up to {held} but broker {} leads epoch {} with high watermark {}",
                            n.node, r.leader_epoch, r.high_watermark
                        ),
                    });
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::view::tests::{controller, node as view_node};
    use super::super::view::ReplicaView;
    use super::*;

    fn node(id: i32, is_leader: bool, high_watermark: i64, durable: i64) -> NodeView {
        view_node(
            id,
            ReplicaView {
                partition: "t-0".into(),
                leader_epoch: 3,
                is_leader,
                high_watermark,
                log_end_offset: durable,
                durable_end_offset: durable,
                ..Default::default()
            },
        )
    }

    #[test]
    fn a_member_or_leader_short_of_the_high_watermark_is_caught() {
        let healthy = [node(1, true, 10, 12), node(2, false, 9, 10)];
        assert!(check(1, &healthy, &controller(vec![1, 2])).is_empty());
        let short = [node(1, true, 10, 12), node(2, false, 9, 8)];
        let v = check(1, &short, &controller(vec![1, 2]));
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].node, Some(2));
        assert_eq!(v[0].offsets, vec![8, 9]);
        let unsynced_leader = [node(1, true, 10, 7), node(2, false, 9, 10)];
        assert_eq!(check(1, &unsynced_leader, &controller(vec![1, 2])).len(), 1);
        // Outside the ISR, or out of service, a short log is no one's business here.
        assert!(check(1, &short, &controller(vec![1])).is_empty());
        let mut restarted = short.clone();
        restarted[1].in_service = false;
        assert!(check(1, &restarted, &controller(vec![1, 2])).is_empty());
    }
}
