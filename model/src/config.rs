//! A broker's configuration: the same knobs Kafka has, under the same names where Kafka has them.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::BrokerId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i32,
    /// Replicas per partition, preferred leader first, as `--replica-assignment` gives them; empty
    /// for round-robin over the brokers registered when the topic is created.
    #[serde(default)]
    pub assignment: Vec<Vec<BrokerId>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BrokerConfig {
    pub id: BrokerId,
    /// Every broker's advertised address, the static part of the cluster's membership.
    pub brokers: BTreeMap<BrokerId, SocketAddr>,
    /// `controller.quorum.voters`: the brokers that also run the controller quorum.
    pub voters: Vec<BrokerId>,
    /// Topics the active controller creates when they are missing.
    pub topics: Vec<TopicSpec>,
    pub min_insync_replicas: usize,
    pub unclean_leader_election: bool,
    pub replica_lag_time_max_ms: u64,
    pub broker_session_timeout_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    /// `controller.quorum.election.timeout.ms`; each wait is drawn between this and twice it.
    pub election_timeout_ms: u64,
    pub fetch_max_wait_ms: u64,
    /// `replica.fetch.max.bytes`: the most record bytes a follower asks for of one partition.
    pub replica_fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`: the most a follower asks for in one fetch.
    pub replica_fetch_response_max_bytes: i32,
    /// `max.incremental.fetch.session.cache.slots`: the fetch sessions a broker keeps; a new one
    /// beyond them evicts the one used least recently, and 0 keeps none.
    pub fetch_session_cache_slots: usize,
    pub request_timeout_ms: u64,
    pub segment_bytes: u64,
    pub high_watermark_checkpoint_interval_ms: u64,
    /// Wrong rules switched back on (see `bugs`); empty for the correct system.
    pub bugs: Vec<crate::bugs::Switch>,
    /// Partitions of `__consumer_offsets`, which the controller creates when this is above 0
    /// (`offsets.topic.num.partitions`); 0 for a cluster that coordinates no consumer groups.
    pub offsets_partitions: i32,
    /// Partitions of `__transaction_state` (`transaction.state.log.num.partitions`); 0 for a
    /// cluster that coordinates no transactions.
    pub transaction_partitions: i32,
    /// 1: transactions end without bumping the producer's epoch; 2: every EndTxn bumps it
    /// (KIP-890 part 2), for producers that send EndTxn v5. Both verify transactional produces
    /// (KIP-890 part 1).
    pub transaction_version: i16,
}

impl BrokerConfig {
    /// Kafka's defaults, scaled down where a simulated minute must see several failovers.
    pub fn new(
        id: BrokerId,
        brokers: BTreeMap<BrokerId, SocketAddr>,
        voters: Vec<BrokerId>,
    ) -> Self {
        BrokerConfig {
            id,
            brokers,
            voters,
            topics: Vec::new(),
            min_insync_replicas: 2,
            unclean_leader_election: false,
            replica_lag_time_max_ms: 3_000,
            broker_session_timeout_ms: 3_000,
            broker_heartbeat_interval_ms: 500,
            election_timeout_ms: 1_000,
            fetch_max_wait_ms: 500,
            replica_fetch_max_bytes: 1024 * 1024,
            replica_fetch_response_max_bytes: 10 * 1024 * 1024,
            fetch_session_cache_slots: 1000,
            request_timeout_ms: 2_000,
            segment_bytes: 256 * 1024,
            high_watermark_checkpoint_interval_ms: 1_000,
            bugs: Vec::new(),
            offsets_partitions: 0,
            transaction_partitions: 0,
            transaction_version: 2,
        }
    }

    /// Whether a replica outside the ISR may be elected: by configuration, or the bug switch.
    pub fn unclean_election(&self) -> bool {
        self.unclean_leader_election || self.bug(crate::bugs::Switch::UncleanElection)
    }

    /// The configured topics, and `__consumer_offsets` when groups are coordinated: replicated
    /// three ways (or on every broker, in a smaller cluster), as Kafka's default has it.
    pub fn topics_to_create(&self) -> Vec<TopicSpec> {
        let mut topics = self.topics.clone();
        if self.offsets_partitions > 0 {
            topics.push(TopicSpec {
                name: crate::group::OFFSETS_TOPIC.to_owned(),
                partitions: self.offsets_partitions,
                replication_factor: (self.brokers.len() as i32).clamp(1, 3),
                assignment: Vec::new(),
            });
        }
        if self.transaction_partitions > 0 {
            topics.push(TopicSpec {
                name: crate::txn::TRANSACTION_STATE_TOPIC.to_owned(),
                partitions: self.transaction_partitions,
                replication_factor: (self.brokers.len() as i32).clamp(1, 3),
                assignment: Vec::new(),
            });
        }
        topics
    }

    /// Whether the wrong rule `switch` is on.
    pub fn bug(&self, switch: crate::bugs::Switch) -> bool {
        self.bugs.contains(&switch)
    }

    pub fn address(&self, id: BrokerId) -> Option<SocketAddr> {
        self.brokers.get(&id).copied()
    }
}
