//! Builds the simulated cluster: one madsim node per broker, each with its own disk and clock
//! that the harness keeps across the node's crashes, and a registry through which the checkers
//! look at the live brokers' state. The process operations the faults use live here too: crash
//! (with what it does to the disk), restart, controlled shutdown, pause and resume. Each is traced.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use model::sync::Lock;

use madsim::runtime::{Handle, NodeHandle};
use model::broker::{self, Shared};
use model::config::{BrokerConfig, TopicSpec};
use model::env::{Disk, Env};
use model::metadata::MetadataRecord;
use model::BrokerId;

use crate::world::clock::NodeClock;
use crate::world::disk::SimDisk;
use crate::record::journal::{HarnessEvent, Journal};
use crate::scenario::{cluster_of, FaultKind, Scenario, TARGET_FIRST_ID};
use madsim::task::NodeId;

/// The port every simulated broker listens on.
pub const BROKER_PORT: u16 = 9092;

/// Where broker `id` listens.
pub fn broker_address(id: BrokerId) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, id as u8)), BROKER_PORT)
}

type Registry = Arc<Lock<BTreeMap<BrokerId, Arc<Shared>>>>;

/// The simulated brokers of a run: their nodes, disks, clocks and state, and what faults did to
/// them.
pub struct Cluster {
    handle: Handle,
    nodes: BTreeMap<BrokerId, NodeHandle>,
    /// Each broker's disk.
    pub disks: BTreeMap<BrokerId, Arc<SimDisk>>,
    /// Each broker's clock.
    pub clocks: BTreeMap<BrokerId, Arc<NodeClock>>,
    registry: Registry,
    /// Crashed, or shut down, and not restarted yet.
    pub down: BTreeSet<BrokerId>,
    /// Brokers frozen by a pause.
    pub paused: BTreeSet<BrokerId>,
    /// Damage to a crashed broker's data that strikes just before it restarts.
    pending_damage: BTreeMap<BrokerId, DiskDamage>,
    /// A broker whose data was damaged, until when faults hold off while it re-registers.
    damage_quarantine: Option<(BrokerId, madsim::time::Instant)>,
    /// When a network, clock, disk or pause fault last ended.
    last_heal: Option<madsim::time::Instant>,
    journal: Arc<dyn Journal>,
}

/// What a crash does to the broker's disk besides losing unsynced bytes.
///
/// A torn write happens at the crash. A bit flip or a wipe strikes while the broker is down, just
/// before it restarts, and only where the fault atlas allows: never to a partition whose ISR, in
/// the freshest metadata, is this broker alone, for then no correct system could recover what was
/// lost (Kafka's answer to that case, KIP-966's eligible leader replicas, is not modelled).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskDamage {
    /// Nothing beyond the lost unsynced bytes.
    None,
    /// Part of the last unsynced write survives; the number picks how much.
    Torn(u64),
    /// A bit flips at rest in a synced data segment; the number picks where.
    Corrupt(u64),
    /// The data directories are gone.
    Wipe,
}

impl DiskDamage {
    /// The timeline fault that crashes `target` with this damage, and the damage's drawn number.
    pub fn as_fault(self, target: crate::scenario::Target) -> (crate::scenario::Fault, Option<u64>) {
        use crate::scenario::Fault;
        match self {
            DiskDamage::None => (Fault::Crash(target), None),
            DiskDamage::Torn(n) => (Fault::DiskTorn(target), Some(n)),
            DiskDamage::Corrupt(n) => (Fault::DiskCorrupt(target), Some(n)),
            DiskDamage::Wipe => (Fault::DiskWipe(target), None),
        }
    }
}

/// Every broker's configuration: the cluster's, and the MirrorMaker target's when there is one.
pub fn broker_configs(scenario: &Scenario) -> Vec<BrokerConfig> {
    let mut configs = cluster_configs(scenario, 1);
    if scenario.mirror.is_some() {
        configs.extend(cluster_configs(scenario, TARGET_FIRST_ID));
    }
    configs
}

/// One cluster of the scenario's shape, its broker ids from `first`. The target cluster holds
/// only the mirrored topic and coordinates no groups.
fn cluster_configs(scenario: &Scenario, first: BrokerId) -> Vec<BrokerConfig> {
    let target = first == TARGET_FIRST_ID;
    let ids: Vec<BrokerId> = (first..first + scenario.cluster.brokers).collect();
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
            c.fetch_session_cache_slots = scenario.cluster.fetch_session_slots as usize;
            c.replica_lag_time_max_ms = scenario.cluster.replica_lag_time_max.ms();
            c.broker_session_timeout_ms = scenario.cluster.broker_session_timeout.ms();
            c.request_timeout_ms = scenario.cluster.request_timeout.ms();
            c.fetch_max_wait_ms = scenario.cluster.fetch_max_wait.ms();
            c.replica_fetch_max_bytes = scenario.cluster.replica_fetch_max_bytes as i32;
            c.segment_bytes = u64::from(scenario.cluster.segment_bytes);
            c.bugs = scenario.bugs.clone();
            // MirrorMaker keeps its progress in a group on the source.
            if !target && (!scenario.workload.groups.is_empty() || scenario.mirror.is_some()) {
                c.offsets_partitions = 3;
            }
            let w = &scenario.workload;
            if !target && (w.transactions.is_some() || w.pipeline.is_some()) {
                c.transaction_partitions = 3;
                // Transactional offset commits go to a group's coordinator.
                c.offsets_partitions = 3;
            }
            c.transaction_version = scenario.cluster.transaction_version.unwrap_or(2);
            c.topics = if target {
                let t = scenario.workload_topic();
                vec![TopicSpec {
                    name: model::mirror::target_topic(&t.name),
                    partitions: t.partitions,
                    replication_factor: t.replication_factor,
                    assignment: Vec::new(),
                }]
            } else {
                scenario
                    .topics
                    .iter()
                    .map(|t| TopicSpec {
                        name: t.name.clone(),
                        partitions: t.partitions,
                        replication_factor: t.replication_factor,
                        assignment: t.replicas.clone(),
                    })
                    .collect()
            };
            c
        })
        .collect()
}

impl Cluster {
    /// Creates and starts every broker. Must run inside the simulation.
    pub fn build(scenario: &Scenario, journal: Arc<dyn Journal>) -> Cluster {
        let handle = Handle::current();
        let registry: Registry = Arc::default();
        let mut cluster = Cluster {
            handle: handle.clone(),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            clocks: BTreeMap::new(),
            registry: registry.clone(),
            down: BTreeSet::new(),
            paused: BTreeSet::new(),
            pending_damage: BTreeMap::new(),
            damage_quarantine: None,
            last_heal: None,
            journal: journal.clone(),
        };
        for config in broker_configs(scenario) {
            let id = config.id;
            let disk = Arc::new(SimDisk::default());
            disk.set_sync_latency(scenario.cluster.fsync_latency.0);
            let clock = Arc::new(NodeClock::new());
            let env = Env {
                clock: clock.clone(),
                disk: disk.clone(),
                events: journal.clone(),
            };
            let registry = registry.clone();
            let node = handle
                .create_node()
                .name(format!("broker-{id}"))
                .ip(broker_address(id).ip())
                .init(move || run_broker(config.clone(), env.clone(), registry.clone()))
                .build();
            cluster.nodes.insert(id, node);
            cluster.disks.insert(id, disk);
            cluster.clocks.insert(id, clock);
        }
        cluster
    }

    /// Every broker's id, in order.
    pub fn ids(&self) -> Vec<BrokerId> {
        self.nodes.keys().copied().collect()
    }

    /// Brokers running and not paused.
    pub fn up(&self) -> Vec<BrokerId> {
        self.nodes
            .keys()
            .copied()
            .filter(|id| !self.down.contains(id) && !self.paused.contains(id))
            .collect()
    }

    /// The madsim node that runs broker `id`.
    pub fn node_id(&self, id: BrokerId) -> NodeId {
        self.nodes[&id].id()
    }

    /// The scenario's own cluster's brokers, where clients start.
    pub fn bootstrap(&self) -> Vec<SocketAddr> {
        self.bootstrap_of(0)
    }

    /// The brokers of cluster `which` (see `cluster_of`).
    pub fn bootstrap_of(&self, which: u8) -> Vec<SocketAddr> {
        self.nodes
            .keys()
            .filter(|id| cluster_of(**id) == which)
            .map(|id| broker_address(*id))
            .collect()
    }

    fn trace(&self, node: BrokerId, event: HarnessEvent) {
        self.journal.harness(node, event);
    }

    fn stop(&mut self, id: BrokerId) {
        self.handle.kill(self.node_id(id));
        self.registry.lock().remove(&id);
        self.paused.remove(&id);
        self.down.insert(id);
    }

    /// Kills a broker's process: its disk loses every unsynced byte, and `damage` on top.
    pub fn crash(&mut self, id: BrokerId, damage: DiskDamage) {
        self.stop(id);
        let disk = &self.disks[&id];
        let torn = match damage {
            DiskDamage::Torn(pick) => Some(pick),
            _ => None,
        };
        let crash = disk.crash_tearing(torn);
        self.trace(id, HarnessEvent::fault(FaultKind::Crash, id, String::new()));
        if crash.lost_bytes > 0 {
            self.trace(
                id,
                HarnessEvent::fault(
                    FaultKind::DiskLoss,
                    id,
                    format!("{} unsynced bytes lost", crash.lost_bytes),
                ),
            );
        }
        if let Some((path, kept)) = crash.torn {
            self.trace(
                id,
                HarnessEvent::fault(
                    FaultKind::DiskTorn,
                    id,
                    format!("{path}: {kept} bytes of the last write survived"),
                ),
            );
        }
        if matches!(damage, DiskDamage::Corrupt(_) | DiskDamage::Wipe) {
            self.pending_damage.insert(id, damage);
        }
    }

    /// Every view of each partition's ISR that is or may yet become the cluster's: each live
    /// broker's image, and the last record for the partition in each broker's metadata log,
    /// committed or not (an uncommitted record may commit under a later controller).
    fn isr_views(&self) -> Vec<(String, Vec<BrokerId>)> {
        let mut views = Vec::new();
        for (_, broker) in self.live() {
            broker.inspect(|s| {
                views.extend(
                    s.image
                        .partitions()
                        .map(|p| (p.topic_partition().to_string(), p.isr.clone())),
                );
            });
        }
        for disk in self.disks.values() {
            let mut last = BTreeMap::new();
            for path in disk
                .list("__cluster_metadata-0/")
                .unwrap_or_default()
                .iter()
                .filter(|p| p.ends_with(".log"))
            {
                let bytes = disk.read(path).unwrap_or_default();
                let (headers, _) = model::batch::parse_all(&bytes);
                let whole: usize = headers.iter().map(|h| h.size).sum();
                for (_, _, value) in
                    model::batch::decode(bytes::Bytes::from(bytes[..whole].to_vec()))
                        .unwrap_or_default()
                {
                    if let Ok(MetadataRecord::Partition(p)) =
                        MetadataRecord::decode(&value.unwrap_or_default())
                    {
                        last.insert(p.topic_partition().to_string(), p.isr);
                    }
                }
            }
            views.extend(last);
        }
        views
    }

    /// Brokers up, registered in their current incarnation and unfenced in the freshest image: the
    /// ones the controller will not take out of an ISR on its own.
    fn settled(&self) -> BTreeSet<BrokerId> {
        let live = self.live();
        let freshest = live
            .iter()
            .max_by_key(|(_, b)| b.inspect(|s| s.image.next_offset));
        let Some((_, image_holder)) = freshest else {
            return BTreeSet::new();
        };
        live.iter()
            .filter(|(id, b)| {
                let incarnation = b.inspect(|s| s.incarnation);
                image_holder.inspect(|s| {
                    s.image
                        .brokers
                        .get(id)
                        .is_some_and(|r| r.incarnation == incarnation && !r.fenced)
                })
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// Partitions (as `topic-N`) whose data `victim` may lose: every other broker is up, and in
    /// every view of the partition's ISR a settled broker besides `victim` holds the committed
    /// data. The bool says whether that holds for every partition.
    fn damageable(&self, victim: BrokerId) -> (BTreeSet<String>, bool) {
        let others_up = self
            .ids()
            .iter()
            .all(|b| *b == victim || self.up().contains(b));
        let settled = self.settled();
        let views = self.isr_views();
        let mut allowed: BTreeSet<String> = views.iter().map(|(tp, _)| tp.clone()).collect();
        for (tp, isr) in &views {
            if !others_up || !isr.iter().any(|b| *b != victim && settled.contains(b)) {
                allowed.remove(tp);
            }
        }
        let all = others_up && views.iter().all(|(tp, _)| allowed.contains(tp));
        (allowed, all)
    }

    /// While a broker whose data was damaged has not registered its new incarnation, no other
    /// fault should strike: until then the controller may still count it in an ISR.
    pub fn recovering_from_damage(&self) -> bool {
        let Some((victim, until)) = self.damage_quarantine else {
            return false;
        };
        if madsim::time::Instant::now() >= until {
            return false;
        }
        let live = self.live();
        let Some(incarnation) = live
            .iter()
            .find(|(id, _)| *id == victim)
            .map(|(_, b)| b.inspect(|s| s.incarnation))
        else {
            return true;
        };
        !live.iter().any(|(_, b)| {
            b.inspect(|s| {
                s.image
                    .brokers
                    .get(&victim)
                    .is_some_and(|r| r.incarnation == incarnation && !r.fenced)
            })
        })
    }

    fn apply_pending_damage(&mut self, id: BrokerId) {
        let Some(damage) = self.pending_damage.remove(&id) else {
            return;
        };
        let (allowed, all) = self.damageable(id);
        let disk = &self.disks[&id];
        match damage {
            DiskDamage::Corrupt(pick) => {
                let hit = disk.corrupt(pick, |path| {
                    path.split('/')
                        .next()
                        .is_some_and(|dir| allowed.contains(dir))
                });
                if let Some((path, position)) = hit {
                    self.trace(
                        id,
                        HarnessEvent::fault(
                            FaultKind::DiskCorrupt,
                            id,
                            format!("{path}: bit flipped at byte {position}"),
                        ),
                    );
                    self.quarantine(id);
                }
            }
            DiskDamage::Wipe if all => {
                let gone = disk.wipe_data();
                self.trace(
                    id,
                    HarnessEvent::fault(
                        FaultKind::DiskWipe,
                        id,
                        format!("{gone} bytes of data directories wiped"),
                    ),
                );
                self.quarantine(id);
            }
            _ => {}
        }
    }

    fn quarantine(&mut self, id: BrokerId) {
        self.damage_quarantine = Some((
            id,
            madsim::time::Instant::now() + std::time::Duration::from_secs(10),
        ));
    }

    /// Starts a crashed or shut-down broker again.
    pub fn restart(&mut self, id: BrokerId) {
        self.restart_with_damage(id, false);
    }

    /// Restarts a broker; damage pending for its disk strikes only if `calm` (no other fault in
    /// force): a clock jump or partition healing right after could otherwise fence every other
    /// ISR member and leave the damaged broker the last one standing.
    pub fn restart_with_damage(&mut self, id: BrokerId, calm: bool) {
        if !self.down.remove(&id) {
            return;
        }
        if calm {
            self.apply_pending_damage(id);
        }
        self.pending_damage.remove(&id);
        // A broker that exited on its own still holds its ports until it is killed.
        self.handle.kill(self.node_id(id));
        self.trace(id, HarnessEvent::fault(FaultKind::Restart, id, String::new()));
        self.handle.restart(self.node_id(id));
    }

    /// Asks a broker to shut down (Ctrl-C). It counts as down from now on; `finish_shutdown`
    /// makes sure it has stopped.
    pub fn request_shutdown(&mut self, id: BrokerId) {
        self.trace(id, HarnessEvent::fault(FaultKind::Shutdown, id, String::new()));
        self.paused.remove(&id);
        self.down.insert(id);
        self.handle.send_ctrl_c(self.node_id(id));
    }

    /// Whether broker `id`'s process has exited.
    pub fn has_exited(&self, id: BrokerId) -> bool {
        self.handle.is_exit(self.node_id(id))
    }

    /// Stops a broker that was asked to shut down; one that did not finish in time is killed,
    /// which loses what it had not synced.
    pub fn finish_shutdown(&mut self, id: BrokerId) {
        let clean = self.has_exited(id);
        self.handle.kill(self.node_id(id));
        self.registry.lock().remove(&id);
        if !clean {
            let lost = self.disks[&id].crash();
            self.trace(
                id,
                HarnessEvent::fault(
                    FaultKind::DiskLoss,
                    id,
                    format!("shutdown timed out: {lost} unsynced bytes lost"),
                ),
            );
        }
    }

    /// Freezes broker `id` (unless it is down or already paused).
    pub fn pause(&mut self, id: BrokerId) {
        if self.down.contains(&id) || !self.paused.insert(id) {
            return;
        }
        self.trace(id, HarnessEvent::fault(FaultKind::Pause, id, String::new()));
        self.handle.pause(self.node_id(id));
    }

    /// Lets a paused broker go on.
    pub fn resume(&mut self, id: BrokerId) {
        if !self.paused.remove(&id) {
            return;
        }
        self.trace(id, HarnessEvent::heal(FaultKind::Pause, id.to_string()));
        self.handle.resume(self.node_id(id));
        self.note_heal();
    }

    /// Stamps the end of a fault that may still have effects to come.
    pub fn note_heal(&mut self) {
        self.last_heal = Some(madsim::time::Instant::now());
    }

    /// No fault has ended within a broker session timeout. A fault's effects outlive it: a
    /// heartbeat held back by a partition can make the controller fence a broker after the heal,
    /// shrinking an ISR that looked safe to damage a moment before (seed 16316 of the
    /// dedicated-controller swarm lost acknowledged data that way).
    pub fn calm_since_last_heal(&self) -> bool {
        let Some(healed) = self.last_heal else {
            return true;
        };
        let session = self
            .live()
            .iter()
            .map(|(_, b)| b.config.broker_session_timeout_ms)
            .max()
            .unwrap_or_default();
        madsim::time::Instant::now() >= healed + std::time::Duration::from_millis(session)
    }

    /// The brokers that are up, with their state, in id order.
    pub fn live(&self) -> Vec<(BrokerId, Arc<Shared>)> {
        let registry = self.registry.lock();
        registry
            .iter()
            .filter(|(id, _)| !self.paused.contains(id))
            .map(|(id, s)| (*id, s.clone()))
            .collect()
    }
}

/// A broker node's life: start (recovering from its disk), serve until stopped. A start that fails
/// (a full disk) is tried again, as a supervisor restarts a crashed service.
async fn run_broker(config: BrokerConfig, env: Env, registry: Registry) {
    let id = config.id;
    loop {
        match broker::start(config.clone(), env.clone()) {
            Ok(shared) => {
                registry.lock().insert(id, shared.clone());
                if let Err(e) = broker::serve(shared).await {
                    panic!("broker {id} stopped: {e}");
                }
                registry.lock().remove(&id);
                return;
            }
            Err(_) => madsim::time::sleep(std::time::Duration::from_secs(1)).await,
        }
    }
}
