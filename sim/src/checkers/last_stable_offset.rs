//! The `last-stable-offset` check, at every step: on every leader the last stable offset is at
//! most the high watermark (a read_committed consumer reads only what is committed), and it never
//! goes back while one leader leads one epoch (what a read_committed consumer was handed stays
//! decided: a transaction cannot open below it).

use super::high_watermark::LeaderMonotonic;
use super::view::NodeView;
use super::{Check, Violation};

/// Each partition's newest leader's last stable offset, per epoch.
pub struct LastStableOffset(LeaderMonotonic);

impl Default for LastStableOffset {
    fn default() -> Self {
        let check = LeaderMonotonic::new(Check::LastStableOffset, "last stable offset", |r| {
            r.last_stable_offset
        });
        LastStableOffset(check)
    }
}

impl LastStableOffset {
    /// Judges every current leader's last stable offset.
    pub fn check(&mut self, time_ms: u64, nodes: &[NodeView]) -> Vec<Violation> {
        let mut out = self.0.check(time_ms, nodes);
        for n in nodes {
            let above = (n.replicas.iter())
                .filter(|r| r.is_leader && r.last_stable_offset > r.high_watermark);
            for r in above {
                out.push(Violation {
                    check: Check::LastStableOffset,
                    time_ms,
                    node: Some(n.node),
                    partition: Some(r.partition.to_string()),
                    offsets: vec![r.last_stable_offset, r.high_watermark],
                    message: format!(
                        "the leader of epoch {} has its last stable offset {} above its high \
                         watermark {}",
                        r.leader_epoch, r.last_stable_offset, r.high_watermark
                    ),
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::tests::node;
    use super::super::view::ReplicaView;
    use super::*;

    fn leader(epoch: i32, lso: i64, hw: i64) -> Vec<NodeView> {
        let r = ReplicaView {
            partition: "t-0".into(),
            leader_epoch: epoch,
            is_leader: true,
            high_watermark: hw,
            last_stable_offset: lso,
            ..Default::default()
        };
        vec![node(1, r)]
    }

    #[test]
    fn a_last_stable_offset_above_the_high_watermark_is_caught_and_one_at_it_is_not() {
        let mut check = LastStableOffset::default();
        assert!(check.check(1, &leader(1, 10, 10)).is_empty());
        let v = check.check(2, &leader(1, 12, 11));
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].offsets, [12, 11]);
    }

    #[test]
    fn a_last_stable_offset_that_goes_back_in_an_epoch_is_caught_but_a_new_leader_may_start_lower() {
        let mut check = LastStableOffset::default();
        assert!(check.check(1, &leader(1, 8, 10)).is_empty());
        assert!(check.check(2, &leader(2, 5, 10)).is_empty(), "a new epoch may start lower");
        let v = check.check(3, &leader(2, 4, 10));
        assert_eq!(v[0].offsets, [5, 4]);
        assert_eq!(v[0].check, Check::LastStableOffset);
    }
}
