//! What the per-step invariants look at: a plain copy of each live broker's replication state, so
//! that the checks are pure functions a test can feed by hand.

use std::collections::BTreeMap;

use model::BrokerId;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
/// One replica of one partition on one broker, as a step sees it.
pub struct ReplicaView {
    /// The partition (`events-2`).
    pub partition: std::sync::Arc<str>,
    /// The leader epoch the replica is in.
    pub leader_epoch: i32,
    /// Whether it leads the partition.
    pub is_leader: bool,
    /// Its high watermark.
    pub high_watermark: i64,
    /// The offset after its last record.
    pub log_end_offset: i64,
    /// Below it every transaction is decided (the high watermark when none is open).
    pub last_stable_offset: i64,
    /// What would survive a crash now.
    pub durable_end_offset: i64,
    /// The leader's committed ISR, and with proposals in flight (empty on followers).
    pub isr: Vec<BrokerId>,
    /// As leader, the ISR its high watermark waits for: the committed ISR with a member being
    /// added (KIP-320's maximal ISR).
    pub maximal_isr: Vec<BrokerId>,
    /// The partition epoch of the leader's ISR (0 on followers).
    pub partition_epoch: i32,
    /// Its epoch cache: each leader epoch its log holds, with the offset where it starts. Two
    /// logs whose batches at an offset are of one epoch hold the same records up to there.
    pub epochs: Vec<(i32, i64)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
/// One live broker as a step sees it.
pub struct NodeView {
    /// The broker's id.
    pub node: BrokerId,
    /// The quorum epoch it is in.
    pub quorum_epoch: i32,
    /// The broker's own image shows its current incarnation registered and unfenced.
    pub in_service: bool,
    /// Its replicas, one per partition it hosts.
    pub replicas: Vec<ReplicaView>,
}

/// The controller's committed view of a partition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ControllerPartition {
    /// The leader the controller chose (-1 for none).
    pub leader: BrokerId,
    /// The leader epoch.
    pub leader_epoch: i32,
    /// The partition epoch: it grows with every change the controller commits.
    pub partition_epoch: i32,
    /// The controller's ISR.
    pub isr: Vec<BrokerId>,
}

/// The freshest committed metadata any live broker holds, by partition.
pub type ControllerView = BTreeMap<std::sync::Arc<str>, ControllerPartition>;

/// Views for the checkers' unit tests.
#[cfg(test)]
pub mod tests {
    use super::*;

    /// A live, in-service broker in quorum epoch 1 holding one replica.
    pub fn node(id: BrokerId, replica: ReplicaView) -> NodeView {
        NodeView {
            node: id,
            quorum_epoch: 1,
            in_service: true,
            replicas: vec![replica],
        }
    }

    /// The controller's view the checker tests share: `t-0`, led by broker 1 in leader epoch 3,
    /// partition epoch 5.
    pub fn controller(isr: Vec<BrokerId>) -> ControllerView {
        ControllerView::from([(
            "t-0".into(),
            ControllerPartition {
                leader: 1,
                leader_epoch: 3,
                partition_epoch: 5,
                isr,
            },
        )])
    }
}
