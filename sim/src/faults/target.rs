//! Resolving what a fault aims at (`scenario::Target`) to the brokers it names now.

use model::partition::Role;
use model::raft::QuorumRole;
use model::{BrokerId, TopicPartition};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::world::cluster::Cluster;
use crate::scenario::Target;

impl Target {
    /// The brokers this target names now, among those up.
    pub fn resolve(&self, cluster: &Cluster, rng: &mut ChaCha8Rng) -> Vec<BrokerId> {
        let up = cluster.up();
        match self {
            Target::Broker(b) => up.iter().copied().filter(|u| u == b).collect(),
            Target::Random => pick(rng, &up).into_iter().collect(),
            Target::All => up,
            Target::Controller => active_controller(cluster)
                .into_iter()
                .filter(|c| up.contains(c))
                .collect(),
            Target::Leader(tp) => {
                let leaders = partition_leaders(cluster);
                let chosen: Vec<BrokerId> = match tp {
                    Some(tp) => leaders.get(tp).copied().into_iter().collect(),
                    None => {
                        let all: Vec<BrokerId> = leaders.values().copied().collect();
                        pick(rng, &all).into_iter().collect()
                    }
                };
                chosen.into_iter().filter(|c| up.contains(c)).collect()
            }
        }
    }
}

/// One of `from`, drawn at random; nothing (and no draw) when it is empty.
pub fn pick(rng: &mut ChaCha8Rng, from: &[BrokerId]) -> Option<BrokerId> {
    (!from.is_empty()).then(|| from[rng.random_range(0..from.len())])
}

/// The live broker that leads the controller quorum in the highest epoch.
pub fn active_controller(cluster: &Cluster) -> Option<BrokerId> {
    cluster
        .live()
        .iter()
        .filter_map(|(id, b)| {
            b.inspect(|s| {
                matches!(s.quorum.role, QuorumRole::Leader { .. }).then_some((s.quorum.epoch, *id))
            })
        })
        .max()
        .map(|(_, id)| id)
}

/// For each partition, the live broker that leads it in the highest leader epoch.
pub fn partition_leaders(
    cluster: &Cluster,
) -> std::collections::BTreeMap<TopicPartition, BrokerId> {
    let mut best: std::collections::BTreeMap<TopicPartition, (i32, BrokerId)> = Default::default();
    for (id, b) in cluster.live() {
        b.inspect(|s| {
            for (tp, p) in &s.partitions {
                if matches!(p.role, Role::Leader(_))
                    && best.get(tp).is_none_or(|(e, _)| p.leader_epoch > *e)
                {
                    best.insert(tp.clone(), (p.leader_epoch, id));
                }
            }
        });
    }
    best.into_iter().map(|(tp, (_, id))| (tp, id)).collect()
}
