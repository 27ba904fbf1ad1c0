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
pub mod committed;
pub mod config;
pub mod controller;
pub mod coverage;
mod crc;
pub mod deadline;
pub mod env;
pub mod fault_point;
pub mod fetch_codec;
pub mod fetch_session;
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
pub mod replica_fetcher;
pub mod serve;
pub mod signal;
pub mod sync;
pub mod transactional;
pub mod txn;
pub mod versions;
pub mod wire;

/// A broker id, as Kafka spells it on the wire.
pub type BrokerId = i32;

/// A partition, named the way reports name it: `events-2`.
#[derive(Clone, Debug, Eq, serde::Serialize, serde::Deserialize)]
pub struct TopicPartition {
    /// Shared, not owned: a partition's name is copied into every wait, wake-up and event.
    pub topic: std::sync::Arc<str>,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<std::sync::Arc<str>>, partition: i32) -> Self {
        Self {
            topic: shared_name(topic.into()),
            partition,
        }
    }
}

/// The one allocation of a topic's name this thread hands out, so that partitions of one topic
/// compare their names by address (see `Ord for TopicPartition`). A cluster has a handful of
/// topics; past `KEPT` names, new ones are passed through as they come. Which allocation a name
/// has changes no result, only how fast it compares.
fn shared_name(name: std::sync::Arc<str>) -> std::sync::Arc<str> {
    const KEPT: usize = 64;
    thread_local! {
        static NAMES: std::cell::RefCell<Vec<std::sync::Arc<str>>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    NAMES.with_borrow_mut(|names| {
        if let Some(known) = names.iter().find(|k| **k == name) {
            return known.clone();
        }
        if names.len() < KEPT {
            names.push(name.clone());
        }
        name
    })
}

/// Ordered by topic name, then partition, as a derived order would be; but two names that share
/// their allocation are equal without reading them. Partitions are looked up in maps on every
/// fetch of every partition, and most lookups name a topic through the same shared name.
impl Ord for TopicPartition {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let topics = if std::sync::Arc::ptr_eq(&self.topic, &other.topic) {
            std::cmp::Ordering::Equal
        } else {
            self.topic.cmp(&other.topic)
        };
        topics.then(self.partition.cmp(&other.partition))
    }
}

impl PartialOrd for TopicPartition {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for TopicPartition {
    fn eq(&self, other: &Self) -> bool {
        self.partition == other.partition
            && (std::sync::Arc::ptr_eq(&self.topic, &other.topic) || self.topic == other.topic)
    }
}

impl std::hash::Hash for TopicPartition {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.topic.hash(state);
        self.partition.hash(state);
    }
}

impl std::fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}
