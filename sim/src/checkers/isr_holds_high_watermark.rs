//! Strong ISR (the property `Kip320.tla` proves): while a leader is current, every member of the
//! controller's ISR that is in service holds, synced, every record below the leader's high
//! watermark: the leader's own records, not others at the same offsets. A member that lacks one
//! is a copy the high watermark counted and a crash would take away: the moment acknowledged
//! data becomes one fault from loss, caught when it happens rather than when the loss does.

use std::collections::BTreeMap;

use super::view::{ControllerView, NodeView, ReplicaView};
use super::Violation;

/// The rule at one step, over every live broker and the controllers' view.
pub fn check(time_ms: u64, nodes: &[NodeView], controller: &ControllerView) -> Vec<Violation> {
    let mut out = Vec::new();
    // Each in-service broker's replica of each partition, looked up once per member rather than
    // found by a walk over the member's replicas: that walk, for every partition, made a step's
    // cost grow with the square of the partitions.
    // A restarted member is out of service until the controller has seen its new incarnation,
    // which also takes it out of the ISR.
    let replicas: BTreeMap<(i32, &str), &ReplicaView> = (nodes.iter().filter(|m| m.in_service))
        .flat_map(|m| (m.replicas.iter()).map(move |r| ((m.node, &*r.partition), r)))
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
                let Some(m) = replicas.get(&(*member, &*r.partition)) else {
                    continue;
                };
                let agreed = agreed_end(&m.epochs, &r.epochs, r.high_watermark);
                let held = m.durable_end_offset.min(agreed);
                if held >= r.high_watermark {
                    continue;
                }
                let lacks = if agreed < m.durable_end_offset {
                    format!("holds records of another epoch from offset {agreed} on")
                } else {
                    format!("has synced up to {held}")
                };
                out.push(Violation {
                    check: super::Check::IsrHoldsHighWatermark,
                    time_ms,
                    node: Some(*member),
                    partition: Some(r.partition.to_string()),
                    offsets: vec![held, r.high_watermark - 1],
                    message: format!(
                        "ISR member {member} {lacks} but broker {} leads epoch {} with high watermark {}",
                        n.node, r.leader_epoch, r.high_watermark
                    ),
                });
            }
        }
    }
    out
}

/// Where two logs stop holding the same records, by their epoch caches: the first offset below
/// `limit` whose batch is of one epoch in one log and another (or none) in the other, else
/// `limit`. A leader writes each offset of its epoch once, so batches of one epoch at one offset
/// hold the same records, and two logs that agree on the epoch at every offset below a point
/// agree on the records. The epoch at an offset changes only where an epoch of either log
/// starts, so those offsets are the only ones to compare.
fn agreed_end(a: &[(i32, i64)], b: &[(i32, i64)], limit: i64) -> i64 {
    let epoch_at = |entries: &[(i32, i64)], offset: i64| {
        let after = entries.partition_point(|(_, start)| *start <= offset);
        after.checked_sub(1).map(|i| entries[i].0)
    };
    (a.iter().chain(b).map(|(_, start)| *start))
        .filter(|start| *start < limit && epoch_at(a, *start) != epoch_at(b, *start))
        .min()
        .unwrap_or(limit)
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

    /// A member as long as the leader but with another epoch's records below the high
    /// watermark (a follower that truncated and refetched a different history, counted on an
    /// older epoch's word) holds none of the leader's records there.
    #[test]
    fn a_member_holding_another_epochs_records_below_the_high_watermark_is_caught() {
        let with_epochs = |mut n: NodeView, epochs: Vec<(i32, i64)>| {
            n.replicas[0].epochs = epochs;
            n
        };
        let leader = with_epochs(node(1, true, 10, 12), vec![(0, 0), (2, 6)]);
        let same = with_epochs(node(2, false, 9, 12), vec![(0, 0), (2, 6)]);
        let isr = controller(vec![1, 2]);
        assert!(check(1, &[leader.clone(), same], &isr).is_empty());
        let diverged = with_epochs(node(2, false, 9, 12), vec![(0, 0), (1, 8)]);
        let v = check(1, &[leader, diverged], &isr);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].node, Some(2));
        assert_eq!(v[0].offsets, vec![6, 9]);
        assert!(v[0].message.contains("another epoch from offset 6"), "{}", v[0].message);
    }

    #[test]
    fn two_logs_agree_up_to_the_first_offset_whose_epochs_differ() {
        let a = [(0, 0), (2, 6), (4, 20)];
        assert_eq!(agreed_end(&a, &a, 30), 30);
        assert_eq!(agreed_end(&a, &[(0, 0), (2, 6)], 20), 20, "the same below the limit");
        assert_eq!(agreed_end(&a, &[(0, 0), (2, 6)], 25), 20);
        assert_eq!(agreed_end(&a, &[(0, 0), (3, 6)], 25), 6);
        assert_eq!(agreed_end(&a, &[(0, 0), (2, 9)], 25), 6, "epoch 2 starts later");
        assert_eq!(agreed_end(&a, &[(1, 0)], 25), 0);
        assert_eq!(agreed_end(&[], &[], 5), 5);
    }
}
