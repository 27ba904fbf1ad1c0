//! At most one leader per partition per leader epoch, and at most one quorum leader per quorum
//! epoch: the rule that makes epochs worth fencing on.

use std::collections::BTreeMap;
use super::Check;

use model::env::Event;
use model::BrokerId;

use super::Violation;

#[derive(Default)]
/// The `single-leader-per-epoch` check: the first leader of each partition epoch and of each
/// cluster's quorum epoch.
pub struct LeaderPerEpoch {
    partition_leaders: BTreeMap<(String, i32), BrokerId>,
    /// (cluster, quorum epoch): each cluster of a mirror scenario has its own quorum.
    quorum_leaders: BTreeMap<(u8, i32), BrokerId>,
}

impl LeaderPerEpoch {
    /// Judges one event at simulated time `time_ms`: a second leader of an epoch is a violation.
    pub fn observe(&mut self, time_ms: u64, node: BrokerId, event: &Event) -> Option<Violation> {
        match event {
            Event::BecameLeader {
                partition,
                leader_epoch,
                ..
            } => {
                let key = (partition.to_string(), *leader_epoch);
                let first = *self.partition_leaders.entry(key).or_insert(node);
                (first != node).then(|| Violation {
                    check: Check::SingleLeaderPerEpoch,
                    time_ms,
                    node: Some(node),
                    partition: Some(partition.to_string()),
                    offsets: Vec::new(),
                    message: format!(
                        "brokers {first} and {node} both led leader epoch {leader_epoch}"
                    ),
                })
            }
            Event::QuorumLeader { epoch } => {
                let cluster = crate::scenario::cluster_of(node);
                let first = *self.quorum_leaders.entry((cluster, *epoch)).or_insert(node);
                (first != node).then(|| Violation {
                    check: Check::SingleQuorumLeaderPerEpoch,
                    time_ms,
                    node: Some(node),
                    partition: None,
                    offsets: Vec::new(),
                    message: format!("brokers {first} and {node} both led quorum epoch {epoch}"),
                })
            }
            _ => None,
        }
    }
}

impl super::Invariant for LeaderPerEpoch {
    /// It judges events, not steps.
    fn incremental(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        super::Check::SingleLeaderPerEpoch.name()
    }

    /// Judged on each election, partition or quorum, as it is taken up.
    fn observe(&mut self, heard: &super::invariant::Heard<'_>) -> super::invariant::Judgment {
        if !matches!(
            heard.event,
            Event::BecameLeader { .. } | Event::QuorumLeader { .. }
        ) {
            return None;
        }
        Some(
            LeaderPerEpoch::observe(self, heard.time_ms, heard.node, heard.event)
                .into_iter()
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::TopicPartition;

    fn became_leader(epoch: i32) -> Event {
        Event::BecameLeader {
            partition: TopicPartition::new("t", 0),
            leader_epoch: epoch,
            log_end_offset: 0,
            high_watermark: 0,
        }
    }

    #[test]
    fn two_leaders_in_one_epoch_are_caught() {
        let mut check = LeaderPerEpoch::default();
        assert_eq!(check.observe(1, 1, &became_leader(3)), None);
        assert_eq!(
            check.observe(2, 1, &became_leader(3)),
            None,
            "the same leader again is fine"
        );
        assert_eq!(check.observe(3, 2, &became_leader(4)), None);
        let v = check.observe(4, 3, &became_leader(3)).expect("caught");
        assert_eq!(v.check, "single-leader-per-epoch");
        assert_eq!(v.node, Some(3));
        assert_eq!(v.partition.as_deref(), Some("t-0"));
    }

    #[test]
    fn two_quorum_leaders_in_one_epoch_are_caught() {
        let mut check = LeaderPerEpoch::default();
        assert_eq!(check.observe(1, 1, &Event::QuorumLeader { epoch: 5 }), None);
        assert!(check
            .observe(2, 2, &Event::QuorumLeader { epoch: 5 })
            .is_some());
    }
}
