//! ISR rules (KIP-320): a leader is in its own ISR, the ISR is never empty, and a leader that is
//! current (the controller names it, in the same leader epoch) holds a maximal ISR that contains
//! the controller's ISR, so the high watermark never moves without a member the controller counts.

use super::view::{ControllerView, NodeView};
use super::Check;
use super::Violation;

/// The ISR rules at one step, over every live broker and the controllers' view.
pub fn check(time_ms: u64, nodes: &[NodeView], controller: &ControllerView) -> Vec<Violation> {
    let mut out = Vec::new();
    for n in nodes {
        for r in n.replicas.iter().filter(|r| r.is_leader) {
            let v = |message: String| Violation {
                check: Check::Isr,
                time_ms,
                node: Some(n.node),
                partition: Some(r.partition.to_string()),
                offsets: Vec::new(),
                message,
            };
            if r.isr.is_empty() {
                out.push(v("the leader's ISR is empty".into()));
            } else if !r.isr.contains(&n.node) {
                out.push(v(format!("the leader is not in its ISR {:?}", r.isr)));
            }
            if let Some(c) = controller.get(&*r.partition) {
                // A controller that has not caught up with the leader's partition epoch (a newly
                // elected one, before its first commit) has nothing to say yet.
                let current = c.leader == n.node
                    && c.leader_epoch == r.leader_epoch
                    && c.partition_epoch >= r.partition_epoch;
                if current && c.isr.iter().any(|b| !r.maximal_isr.contains(b)) {
                    out.push(v(format!(
                        "the controller's ISR {:?} is not within the leader's maximal ISR {:?}",
                        c.isr, r.maximal_isr
                    )));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::view::tests::{controller, node};
    use super::super::view::ReplicaView;
    use super::*;

    fn leader(isr: Vec<i32>, maximal: Vec<i32>) -> Vec<NodeView> {
        let r = ReplicaView {
            partition: "t-0".into(),
            leader_epoch: 3,
            is_leader: true,
            isr,
            maximal_isr: maximal,
            partition_epoch: 5,
            ..Default::default()
        };
        vec![node(1, r)]
    }

    #[test]
    fn a_leader_outside_its_isr_an_empty_isr_and_a_narrower_leader_view_are_caught() {
        assert!(check(
            1,
            &leader(vec![1, 2], vec![1, 2, 3]),
            &controller(vec![1, 2, 3])
        )
        .is_empty());
        assert_eq!(
            check(1, &leader(vec![2], vec![2]), &controller(vec![2])).len(),
            1
        );
        assert_eq!(
            check(1, &leader(vec![], vec![1]), &ControllerView::new()).len(),
            1
        );
        let v = check(
            1,
            &leader(vec![1, 2], vec![1, 2]),
            &controller(vec![1, 2, 3]),
        );
        assert!(
            v[0].message.contains("not within the leader's maximal ISR"),
            "{}",
            v[0].message
        );
    }
}
