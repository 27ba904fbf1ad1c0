//! Builds the simulated cluster: one madsim node per broker, each with its own disk and clock
//! that the harness keeps across the node's crashes, and a registry through which the checkers
//! look at the live brokers' state.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use madsim::runtime::{Handle, NodeHandle};
use model::broker::{self, Shared};
use model::config::{BrokerConfig, TopicSpec};
use model::env::Env;
use model::BrokerId;

use crate::clock::NodeClock;
use crate::disk::SimDisk;
use crate::observer::{HarnessEvent, Observer, ObserverSink};
use crate::scenario::Scenario;

pub const BROKER_PORT: u16 = 9092;

pub fn broker_address(id: BrokerId) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8)), BROKER_PORT)
}

type Registry = Arc<Mutex<BTreeMap<BrokerId, Arc<Shared>>>>;

pub struct Cluster {
    handle: Handle,
    nodes: BTreeMap<BrokerId, NodeHandle>,
    pub disks: BTreeMap<BrokerId, Arc<SimDisk>>,
    pub clocks: BTreeMap<BrokerId, Arc<NodeClock>>,
    registry: Registry,
    pub down: BTreeSet<BrokerId>,
    observer: Arc<Mutex<Observer>>,
}

pub fn broker_configs(scenario: &Scenario) -> Vec<BrokerConfig> {
    let ids: Vec<BrokerId> = (1..=scenario.cluster.brokers).collect();
    let addresses: BTreeMap<BrokerId, SocketAddr> =
        ids.iter().map(|id| (*id, broker_address(*id))).collect();
    let voters: Vec<BrokerId> = ids
        .iter()
        .copied()
        .take(scenario.cluster.voters() as usize)
        .collect();
    ids.iter()
        .map(|id| {
            let mut c = BrokerConfig::new(*id, addresses.clone(), voters.clone());
            c.min_insync_replicas = scenario.cluster.min_insync_replicas as usize;
            c.unclean_leader_election = scenario.cluster.unclean_leader_election;
            c.topics = scenario
                .topics
                .iter()
                .map(|t| TopicSpec {
                    name: t.name.clone(),
                    partitions: t.partitions,
                    replication_factor: t.replication_factor,
                })
                .collect();
            c
        })
        .collect()
}

impl Cluster {
    /// Creates and starts every broker. Must run inside the simulation.
    pub fn build(scenario: &Scenario, observer: Arc<Mutex<Observer>>) -> Cluster {
        let handle = Handle::current();
        let registry: Registry = Arc::default();
        let mut cluster = Cluster {
            handle: handle.clone(),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            clocks: BTreeMap::new(),
            registry: registry.clone(),
            down: BTreeSet::new(),
            observer: observer.clone(),
        };
        for config in broker_configs(scenario) {
            let id = config.id;
            let disk = Arc::new(SimDisk::default());
            let clock = Arc::new(NodeClock::new());
            let env = Env {
                clock: clock.clone(),
                disk: disk.clone(),
                events: Arc::new(ObserverSink(observer.clone())),
            };
            let registry = registry.clone();
            let node = handle
                .create_node()
                .name(format!("broker-{id}"))
                .ip(broker_address(id).ip())
                .init(move || {
                    let (config, env, registry) = (config.clone(), env.clone(), registry.clone());
                    async move {
                        match broker::start(config, env) {
                            Ok(shared) => {
                                registry
                                    .lock()
                                    .unwrap_or_else(|p| p.into_inner())
                                    .insert(id, shared.clone());
                                if let Err(e) = broker::serve(shared).await {
                                    panic!("broker {id} stopped: {e}");
                                }
                            }
                            Err(e) => panic!("broker {id} failed to start: {e}"),
                        }
                    }
                })
                .build();
            cluster.nodes.insert(id, node);
            cluster.disks.insert(id, disk);
            cluster.clocks.insert(id, clock);
        }
        cluster
    }

    pub fn ids(&self) -> Vec<BrokerId> {
        self.nodes.keys().copied().collect()
    }

    pub fn bootstrap(&self) -> Vec<SocketAddr> {
        self.nodes.keys().map(|id| broker_address(*id)).collect()
    }

    /// Kills a broker's process; its disk loses every unsynced byte.
    pub fn crash(&mut self, id: BrokerId) {
        let node = &self.nodes[&id];
        self.handle.kill(node.id());
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id);
        let lost = self.disks[&id].crash();
        self.down.insert(id);
        self.observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .harness(
                id,
                HarnessEvent::Crash {
                    unsynced_bytes_lost: lost,
                },
            );
    }

    pub fn restart(&mut self, id: BrokerId) {
        if !self.down.remove(&id) {
            return;
        }
        self.observer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .harness(id, HarnessEvent::Restart);
        self.handle.restart(self.nodes[&id].id());
    }

    /// The brokers that are up, with their state, in id order.
    pub fn live(&self) -> Vec<(BrokerId, Arc<Shared>)> {
        self.registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, s)| (*id, s.clone()))
            .collect()
    }
}
