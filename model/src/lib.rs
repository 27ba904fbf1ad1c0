//! The system under test: a Kafka-style log cluster.
//!
//! A broker process ([`broker::Broker`]) holds partition logs ([`log::Log`]), serves Kafka's wire
//! protocol, replicates partitions from leaders to followers with leader epochs, and takes part in a
//! KRaft-style controller quorum ([`raft`], [`controller`]) that owns the cluster metadata.
//!
//! The model sees the world through three narrow doors, collected in [`env::Env`]: a network
//! (madsim's TCP, which is tokio's without `--cfg madsim`), a clock and a disk. It knows nothing of
//! seeds, faults or checkers; what it reports goes out as typed [`env::Event`]s.

pub mod batch;
pub mod broker;
pub mod bugs;
pub mod client;
mod codec;
pub mod config;
pub mod controller;
mod crc;
pub mod deadline;
pub mod env;
pub mod fetch_codec;
pub mod fetcher;
pub mod file_disk;
pub mod group;
pub mod group_client;
pub mod log;
pub mod metadata;
pub mod mirror;
pub mod net;
pub mod partition;
pub mod partitioner;
pub mod produce_codec;
pub mod producer;
pub mod raft;
pub mod raft_driver;
pub mod serve;
pub mod signal;
pub mod sync;
pub mod versions;
pub mod wire;

/// A broker id, as Kafka spells it on the wire.
pub type BrokerId = i32;

/// A partition, named the way reports name it: `events-2`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct TopicPartition {
    /// Shared, not owned: a partition's name is copied into every wait, wake-up and event.
    pub topic: std::sync::Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<std::sync::Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
