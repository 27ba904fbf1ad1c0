//! The cluster metadata the controller quorum agrees on: records in the `__cluster_metadata` log,
//! and the image every broker builds by applying the committed ones in order.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::{BrokerId, TopicPartition};

pub const METADATA_TOPIC: &str = "__cluster_metadata";

/// No leader: the partition is offline.
pub const NO_LEADER: BrokerId = -1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// Shared by the image's partitions and every name made from them.
    pub topic: std::sync::Arc<str>,
    pub partition: i32,
    pub replicas: Vec<BrokerId>,
    pub isr: Vec<BrokerId>,
    pub leader: BrokerId,
    pub leader_epoch: i32,
    /// Bumped on every change, leader or ISR; AlterPartition must name the current one.
    pub partition_epoch: i32,
}

impl PartitionState {
    pub fn topic_partition(&self) -> TopicPartition {
        TopicPartition::new(self.topic.clone(), self.partition)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetadataRecord {
    /// Written first in each quorum epoch by its leader, so that the epoch has an entry to commit.
    LeaderChange {
        leader: BrokerId,
        epoch: i32,
    },
    RegisterBroker {
        broker: BrokerId,
        incarnation: u64,
    },
    FenceBroker {
        broker: BrokerId,
    },
    UnfenceBroker {
        broker: BrokerId,
    },
    Topic {
        name: String,
        partitions: i32,
    },
    Partition(PartitionState),
}

impl MetadataRecord {
    pub fn encode(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(self).expect("metadata records serialize"))
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes).map_err(|e| e.to_string())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub incarnation: u64,
    pub fenced: bool,
    /// The metadata offset of the registration; the broker is caught up once it has applied it.
    pub registered_at: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataImage {
    /// The next metadata offset to apply.
    pub next_offset: i64,
    pub brokers: BTreeMap<BrokerId, BrokerRegistration>,
    pub topics: BTreeMap<std::sync::Arc<str>, BTreeMap<i32, PartitionState>>,
}

impl MetadataImage {
    pub fn apply(&mut self, offset: i64, record: &MetadataRecord) {
        assert!(
            offset >= self.next_offset,
            "metadata offset {offset} applied after {}",
            self.next_offset
        );
        self.next_offset = offset + 1;
        match record {
            MetadataRecord::LeaderChange { .. } => {}
            MetadataRecord::RegisterBroker {
                broker,
                incarnation,
            } => {
                self.brokers.insert(
                    *broker,
                    BrokerRegistration {
                        incarnation: *incarnation,
                        fenced: true,
                        registered_at: offset,
                    },
                );
            }
            MetadataRecord::FenceBroker { broker } => {
                if let Some(b) = self.brokers.get_mut(broker) {
                    b.fenced = true;
                }
            }
            MetadataRecord::UnfenceBroker { broker } => {
                if let Some(b) = self.brokers.get_mut(broker) {
                    b.fenced = false;
                }
            }
            MetadataRecord::Topic { name, .. } => {
                self.topics.entry(name.as_str().into()).or_default();
            }
            MetadataRecord::Partition(p) => {
                if let Some(old) = self.partition(&p.topic, p.partition) {
                    assert!(
                        p.leader_epoch >= old.leader_epoch,
                        "leader epoch of {} went back",
                        p.topic_partition()
                    );
                    assert!(
                        p.partition_epoch > old.partition_epoch,
                        "partition epoch of {} did not grow",
                        p.topic_partition()
                    );
                }
                assert!(!p.isr.is_empty(), "{}: empty ISR", p.topic_partition());
                if p.leader != NO_LEADER {
                    assert!(
                        p.isr.contains(&p.leader),
                        "{}: leader {} outside ISR {:?}",
                        p.topic_partition(),
                        p.leader,
                        p.isr
                    );
                }
                self.topics
                    .entry(p.topic.clone())
                    .or_default()
                    .insert(p.partition, p.clone());
            }
        }
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionState> {
        self.topics.get(topic).and_then(|t| t.get(&partition))
    }

    pub fn partitions(&self) -> impl Iterator<Item = &PartitionState> {
        self.topics.values().flat_map(|t| t.values())
    }

    pub fn is_unfenced(&self, broker: BrokerId) -> bool {
        self.brokers.get(&broker).is_some_and(|b| !b.fenced)
    }
}

/// A stable topic id derived from its name, so that ids agree without a lookup.
pub fn topic_id(name: &str) -> uuid::Uuid {
    let mut hash: u128 = 0x6c62272e07bb014262b821756295c58d;
    for b in name.bytes() {
        hash ^= b as u128;
        hash = hash.wrapping_mul(0x0000000001000000000000000000013B);
    }
    uuid::Uuid::from_u128(hash)
}
