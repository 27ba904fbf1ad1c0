//! What a fault aims at, as scenario files write it: `broker:2`, `random`, `controller` (the active
//! controller), `leader` (the leader of a random partition), `leader:events-0`, or `all`.

use model::partition::Role;
use model::raft::QuorumRole;
use model::{BrokerId, TopicPartition};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use crate::cluster::Cluster;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Broker(BrokerId),
    Random,
    Controller,
    /// The leader of a partition, or of a random one.
    Leader(Option<TopicPartition>),
    All,
}

pub const TARGET_FORMS: &str =
    "`broker:N`, `random`, `controller`, `leader`, `leader:TOPIC-PARTITION` or `all`";

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        let bad = || format!("`{text}` is not a target: expected {TARGET_FORMS}");
        Ok(match t {
            "random" => Target::Random,
            "controller" => Target::Controller,
            "leader" => Target::Leader(None),
            "all" => Target::All,
            _ => {
                if let Some(n) = t.strip_prefix("broker:") {
                    Target::Broker(n.parse().map_err(|_| bad())?)
                } else if let Some(tp) = t.strip_prefix("leader:") {
                    let (topic, partition) = tp.rsplit_once('-').ok_or_else(bad)?;
                    Target::Leader(Some(TopicPartition::new(
                        topic,
                        partition.parse().map_err(|_| bad())?,
                    )))
                } else {
                    return Err(bad());
                }
            }
        })
    }
}

impl Target {
    /// Checks the target against the cluster's shape: the broker exists, the partition exists.
    pub fn validate(&self, brokers: i32, topics: &[(String, i32)]) -> Result<(), String> {
        match self {
            Target::Broker(b) if !(1..=brokers).contains(b) => Err(format!(
                "broker {b} does not exist: brokers are 1 to {brokers}"
            )),
            Target::Leader(Some(tp))
                if !topics
                    .iter()
                    .any(|(t, n)| **t == *tp.topic && (0..*n).contains(&tp.partition)) =>
            {
                Err(format!("partition {tp} does not exist"))
            }
            _ => Ok(()),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_bad_ones_say_what_was_expected() {
        assert_eq!("broker:2".parse::<Target>(), Ok(Target::Broker(2)));
        assert_eq!(
            "leader:events-10".parse::<Target>(),
            Ok(Target::Leader(Some(TopicPartition::new("events", 10))))
        );
        assert_eq!("controller".parse::<Target>(), Ok(Target::Controller));
        let e = "broker:two".parse::<Target>().unwrap_err();
        assert!(e.contains("expected `broker:N`"), "{e}");
        let topics = [("events".to_owned(), 3)];
        assert!(Target::Broker(4)
            .validate(3, &topics)
            .unwrap_err()
            .contains("broker 4 does not exist"));
        assert!(Target::Leader(Some(TopicPartition::new("events", 3)))
            .validate(3, &topics)
            .is_err());
        assert!(Target::Leader(Some(TopicPartition::new("events", 2)))
            .validate(3, &topics)
            .is_ok());
    }
}
