//! One seeded run from start to verdict: build the cluster, run the workload under faults, stop the
//! faults and heal, give the cluster a quiet period to converge, then judge.
//!
//! Phases: setup (brokers start, elect a quorum, create topics), load (producers, consumers and
//! faults for `run.duration`), heal (every fault undone), quiet (`run.quiet_period`: producers for
//! its first half, consumers throughout), check (liveness, durability of acked writes, the gates).

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use model::sync::Lock;
use std::time::Duration;

use madsim::time::{sleep, Instant};
use model::partition::Role;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::checkers::acked_durability::committed_values;
use crate::checkers::changes::ReplicaSeen;
use crate::checkers::client_history::ProducerPromises;
use crate::checkers::liveness::ReplicaEnd;
use crate::checkers::view::{ControllerPartition, ControllerView, NodeView, ReplicaView};
use crate::checkers::oracle::{self, End, MirrorEnd, Oracle};
use crate::checkers::{Check, Invariant, Violation};
use crate::world::cluster::Cluster;
use crate::faults::profile;
use crate::faults::{timeline, Nemesis};
use crate::record::history::{AckedSend, History, Op};
use crate::record::journal::{HarnessEvent, Journal};
use crate::observer::{Counters, Observer, ObserverSink};
use crate::scenario::{seeds, FaultProfile, Scenario, Topic};
use crate::world::workload::{self, Workload, WorkloadStats};

/// How often the per-step invariants look at every live replica.
pub const CHECK_STEP: Duration = Duration::from_millis(50);

/// A run's verdict and what it exercised. `pass` is false when any check found a violation.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RunReport {
    /// The seed that decided the run.
    pub seed: u64,
    /// No check failed.
    pub pass: bool,
    /// The hash of the whole trace, in hex: the same seed and build give the same hash.
    pub trace_hash: String,
    /// Simulated seconds the run lasted.
    pub sim_seconds: f64,
    /// Wall-clock seconds it took.
    pub wall_seconds: f64,
    /// Records the producers sent.
    pub produced: u64,
    /// Sends acknowledged.
    pub acked: u64,
    /// Sends refused (a definite failure).
    pub refused: u64,
    /// Sends whose outcome the producer never learned.
    pub unknown: u64,
    /// Values the consumers read.
    pub consumed: u64,
    /// Partition leaderships taken up.
    pub elections: u64,
    /// Quorum leaderships won.
    pub quorum_elections: u64,
    /// Logs truncated.
    pub truncations: u64,
    /// Brokers crashed or shut down.
    pub crashes: u64,
    /// Committed batches compared across replicas.
    pub batches_checked: u64,
    /// acks=1 writes acknowledged and then lost to a failover: allowed, and measured.
    pub lost_acks1: u64,
    /// Values consumers read a second time after resuming from a commit (a restart, or a group
    /// member taking a partition over).
    pub rereads: u64,
    /// Consumer restarts: lone consumers and group members starting over after a crash.
    pub consumer_restarts: u64,
    /// How the transactions ended, when the workload ran any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transactions: Option<TxnCounts>,
    /// What the run exercised: faults by kind, invariants evaluated, and more.
    pub counters: Counters,
    /// The fault probabilities this run drew from (a swarm run draws its own).
    pub fault_profile: FaultProfile,
    /// The timing settings this run drew, under `knobs = "swarm"`; `None` when the scenario's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knobs: Option<crate::scenario::Knobs>,
    /// Every violation found, in order.
    pub violations: Vec<Violation>,
}

/// How a run's transactions ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TxnCounts {
    /// Committed, as their producers were told.
    pub committed: u64,
    /// Aborted: by choice, after a failed send, or under a fenced producer.
    pub aborted: u64,
    /// Commits whose outcome the producer never learned.
    pub unknown: u64,
    /// Aborted by their coordinator for outliving their timeout.
    pub timed_out: u64,
}

impl TxnCounts {
    /// Both counts added up.
    pub fn add(&mut self, other: &TxnCounts) {
        self.committed += other.committed;
        self.aborted += other.aborted;
        self.unknown += other.unknown;
        self.timed_out += other.timed_out;
    }
}

/// Everything a run leaves behind.
pub struct RunOutput {
    /// The verdict and figures.
    pub report: RunReport,
    /// The trace, one JSON line per event (empty unless the trace was kept).
    pub trace: Vec<String>,
    /// The client history.
    pub history: Vec<Op>,
    /// Replicas' log ends and high watermarks over time, kept with the trace.
    pub samples: Vec<crate::observer::ReplicaSample>,
    /// Every fault the run struck, as a timeline that replays the very same run (see
    /// `Nemesis::struck`): what `shrink` starts from.
    pub struck: Vec<crate::scenario::Scheduled>,
}

impl RunOutput {
    /// The trace as typed events (empty when the run did not keep its trace).
    pub fn events(&self) -> Vec<crate::record::trace::TraceLine> {
        crate::record::trace::TraceLine::parse_all(&self.trace).expect("a run's own trace reads back")
    }
}

/// Something done to the cluster at a set simulated time: how tests plant a violation in a live run
/// and see the checks catch it. The action may hold state of its own (a broker id, a counter).
pub struct Hook {
    /// When, in simulated time from the start of the run.
    pub at: Duration,
    /// What to do to the cluster.
    pub action: Box<dyn FnOnce(&mut Cluster) + Send>,
}

impl Hook {
    /// `action`, done to the cluster `at` into the run.
    pub fn new(at: Duration, action: impl FnOnce(&mut Cluster) + Send + 'static) -> Hook {
        Hook {
            at,
            action: Box::new(action),
        }
    }
}

/// What a run adds to its scenario: hooks, and per-step invariants of its own.
#[derive(Default)]
pub struct Extras {
    /// Things done to the cluster at set times.
    pub hooks: Vec<Hook>,
    /// Invariants judged after the built-in ones.
    pub invariants: Vec<Box<dyn Invariant>>,
    /// End-of-run checks judged after the built-in ones.
    pub oracles: Vec<Box<dyn Oracle>>,
}

/// Runs one seed on a fresh thread (per-thread state must not leak between runs) in a fresh runtime.
pub fn run(scenario: &Scenario, seed: u64, keep_trace: bool) -> RunOutput {
    run_with(scenario, seed, keep_trace, Extras::default())
}

/// Runs one seed with `hooks` done to the cluster at their times.
pub fn run_with_hooks(
    scenario: &Scenario,
    seed: u64,
    keep_trace: bool,
    hooks: Vec<Hook>,
) -> RunOutput {
    let extras = Extras {
        hooks,
        ..Extras::default()
    };
    run_with(scenario, seed, keep_trace, extras)
}

/// Runs one seed with `extras`: what `run` does, and what `Sim` builds.
pub fn run_with(scenario: &Scenario, seed: u64, keep_trace: bool, extras: Extras) -> RunOutput {
    let (scenario, knobs) = scenario.for_seed(seed);
    let wall = std::time::Instant::now();
    let thread = std::thread::Builder::new()
        .name(format!("seed-{seed}"))
        .spawn(move || {
            let runtime =
                madsim::runtime::Runtime::with_seed_and_config(seed, madsim::Config::default());
            model::coverage::reset();
            model::fault_point::reset();
            let mut output = runtime.block_on(async move {
                let _clock = model::env::bind_clock();
                let named: Vec<_> = (scenario.fault_points.iter())
                    .filter_map(|n| model::fault_point::Point::named(n))
                    .collect();
                if scenario.buggify {
                    model::fault_point::enable(true);
                    for point in &named {
                        model::fault_point::force(*point, true);
                    }
                } else if !named.is_empty() {
                    // The points named, and nothing else: not madsim's own network delays.
                    model::fault_point::enable_named(&named);
                }
                simulate(scenario, seed, keep_trace, extras).await
            });
            let counters = &mut output.report.counters;
            counters.marks = (model::coverage::counts().into_iter())
                .filter(|(_, n)| *n > 0)
                .map(|(mark, n)| (mark.name(), n))
                .collect();
            counters.marks_first_ms = (model::coverage::first_reached().into_iter())
                .map(|(mark, at)| (mark.name(), at.as_millis() as u64))
                .collect();
            counters.marks_nearest = (model::coverage::nearest().into_iter())
                .map(|(mark, margin)| (mark.name(), margin))
                .collect();
            // The coordinators' timeouts are counted by their mark, read only now.
            let timed_out = counters.marks.get("txn-timed-out").copied().unwrap_or(0);
            if let Some(t) = output.report.transactions.as_mut() {
                t.timed_out = timed_out;
            }
            output
        })
        .expect("spawn a run thread");
    let mut output = match thread.join() {
        Ok(output) => output,
        Err(panic) => panicked(seed, panic),
    };
    output.report.wall_seconds = wall.elapsed().as_secs_f64();
    output.report.knobs = knobs;
    output
}

/// A panic inside the simulation is an assertion of the model or harness firing: a failed run,
/// reported like any other violation, never lost.
fn panicked(seed: u64, panic: Box<dyn std::any::Any + Send>) -> RunOutput {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into());
    let violation = Violation::new(Check::Assertion, 0, message);
    RunOutput {
        report: RunReport {
            seed,
            violations: vec![violation],
            ..RunReport::default()
        },
        trace: Vec::new(),
        history: Vec::new(),
        samples: Vec::new(),
        struck: Vec::new(),
    }
}

/// What the phases of one run share.
struct World {
    scenario: Scenario,
    seed: u64,
    start: Instant,
    observer: Arc<Lock<Observer>>,
    journal: Arc<dyn Journal>,
    cluster: Arc<Lock<Cluster>>,
    topic: Topic,
    /// The end-of-run checks, built-in and added, in the order they judge.
    oracles: Vec<Box<dyn Oracle>>,
}

/// The run itself, inside a madsim runtime seeded with `seed`: setup, load, heal, quiet, judge.
/// The workload's stream is drawn from in one order (producers, consumers, MirrorMaker, group
/// members); changing that order changes every seed.
pub async fn simulate(
    scenario: Scenario,
    seed: u64,
    keep_trace: bool,
    extras: Extras,
) -> RunOutput {
    let mut world = setup(scenario, seed, keep_trace, extras);
    let mut workload_rng = ChaCha8Rng::seed_from_u64(seeds::workload(seed));
    let workload = workload_of(&world);
    let clients = spawn_clients(&world, &workload, &mut workload_rng);
    let (mirror, mirror_node) = start_mirror(&world, &workload, &mut workload_rng).unzip();
    spawn_group_members(&world, &workload, &clients, &mut workload_rng);
    spawn_txn_producers(&world, &workload, &clients, &mut workload_rng);
    spawn_pipeline(&world, &workload, &clients, &mut workload_rng);
    let load_end = world.start + world.scenario.run.duration.0;
    let (nemesis, fault_profile) = start_faults(&world, load_end);
    step_checks_until(&world.cluster, &world.observer, &workload.acked, load_end).await;
    heal_and_quiet(&world, &nemesis, &workload).await;
    let mut output = judge(&mut world, &workload, mirror.as_deref(), fault_profile);
    output.struck = std::mem::take(&mut *nemesis.struck.lock());
    let nodes: Vec<_> = [clients].into_iter().chain(mirror_node).collect();
    tear_down(&world, &nodes).await;
    output
}

/// Kills every node once the run is judged, and lets the executor drop their tasks. A task still
/// waiting when the runtime goes holds its broker's state, and the wait holds the task through
/// madsim's timer: a cycle that kept every run's brokers alive, 9-21 MB a seed, until a long
/// swarm ran out of memory.
async fn tear_down(world: &World, others: &[madsim::runtime::NodeHandle]) {
    let handle = madsim::runtime::Handle::current();
    let brokers: Vec<_> = {
        let c = world.cluster.lock();
        c.ids().into_iter().map(|id| c.node_id(id)).collect()
    };
    for node in brokers.into_iter().chain(others.iter().map(|n| n.id())) {
        handle.kill(node);
    }
    sleep(Duration::from_millis(1)).await;
}

/// The observer, the cluster (every broker started), and the hooks waiting for their times.
fn setup(scenario: Scenario, seed: u64, keep_trace: bool, extras: Extras) -> World {
    let start = Instant::now();
    let observer = Arc::new(Lock::new(Observer::new(keep_trace)));
    for invariant in extras.invariants {
        observer.lock().add_invariant(invariant);
    }
    let journal: Arc<dyn Journal> = Arc::new(ObserverSink(observer.clone()));
    let cluster = Arc::new(Lock::new(Cluster::build(&scenario, journal.clone())));
    for hook in extras.hooks {
        let cluster = cluster.clone();
        madsim::task::spawn(async move {
            sleep(hook.at).await;
            (hook.action)(&mut cluster.lock());
        });
    }
    let topic = scenario.workload_topic().clone();
    // What the producers promise decides whether a retried duplicate or reorder is a violation.
    let promises = ProducerPromises {
        idempotent: scenario.workload.idempotent(),
        retries: scenario.workload.retries > 0,
    };
    let mut oracles = oracle::built_in(promises);
    oracles.extend(extras.oracles);
    World {
        scenario,
        seed,
        start,
        observer,
        journal,
        cluster,
        topic,
        oracles,
    }
}

/// What every client of the workload shares: its settings, stop flags and what it records.
fn workload_of(world: &World) -> Workload {
    let w = &world.scenario.workload;
    Workload {
        topic: world.topic.name.clone(),
        partitions: world.topic.partitions,
        acks: w.acks.wire(),
        keys: w.keys,
        consumer_restarts_ms: w.consumer_restarts.map(|[lo, hi]| (lo.ms(), hi.ms())),
        commit_interval: w.commit_interval.0,
        send_interval_ms: (w.send_interval[0].ms(), w.send_interval[1].ms()),
        producer: workload::producer_config(w).map(|mut config| {
            config.bump_with_batches_in_flight = world
                .scenario
                .bugs
                .contains(&model::bugs::Switch::EpochBumpWithBatchesInFlight);
            config
        }),
        // Producers stop halfway through the quiet period; a quarter more lets their last sends
        // finish and leaves the consumers a quarter to read them.
        producer_drain: world.scenario.run.quiet_period.0 / 4,
        poll_interval: w.poll_interval.0,
        bootstrap: world.cluster.lock().bootstrap(),
        history: History::default(),
        start: world.start,
        stop_producers: Arc::default(),
        stop_consumers: Arc::default(),
        acked: Arc::default(),
        acked_weak: Arc::default(),
        read_committed: w.isolation == Some(crate::scenario::Isolation::ReadCommitted),
        transactions: w.transactions.clone(),
        shown_high_watermarks: world.observer.lock().shown_high_watermarks.clone(),
        stats: Arc::default(),
    }
}

/// The clients' node, with the producers and the lone consumers running on it.
fn spawn_clients(
    world: &World,
    workload: &Workload,
    rng: &mut ChaCha8Rng,
) -> madsim::runtime::NodeHandle {
    let clients = madsim::runtime::Handle::current()
        .create_node()
        .name("clients")
        .ip("10.0.1.1".parse().expect("an address"))
        .build();
    let w = &world.scenario.workload;
    let producers = w.producers;
    for id in 0..producers {
        clients.spawn(workload::producer(workload.clone(), id, producers, rng.random()));
    }
    // Process ids: producers, then lone consumers, then group members (`spawn_group_members`). A
    // lone consumer's restart is a new process, one stride of all of them further on.
    let stride = process_count(w);
    for id in 0..w.consumers {
        let process = u64::from(producers + id);
        // Drawn only for restarting consumers, so that other scenarios' seeds stay as they were.
        let seed = workload.consumer_restarts_ms.map(|_| rng.random::<u64>());
        clients.spawn(workload::consumer(workload.clone(), id, process, stride, seed));
    }
    clients
}

/// MirrorMaker on its own node, and the WAN's faults, when the scenario has a second cluster.
fn start_mirror(
    world: &World,
    workload: &Workload,
    rng: &mut ChaCha8Rng,
) -> Option<(
    Arc<Lock<crate::world::mirror::MirrorRecord>>,
    madsim::runtime::NodeHandle,
)> {
    let spec = world.scenario.mirror.as_ref()?;
    let record = Arc::new(Lock::new(crate::world::mirror::MirrorRecord::default()));
    let c = world.cluster.lock();
    let config = model::mirror::MirrorConfig {
        source: c.bootstrap_of(0),
        target: c.bootstrap_of(1),
        topic: world.topic.name.clone(),
        partitions: world.topic.partitions,
        queue: spec.queue as usize,
        checkpoint_interval: spec.checkpoint_interval.0,
        groups: world.scenario.workload.groups.iter().map(|g| g.name.clone()).collect(),
        bugs: world.scenario.bugs.clone(),
        timeout: Duration::from_secs(3),
    };
    let source_nodes: Vec<_> = c
        .ids()
        .into_iter()
        .filter(|id| crate::scenario::cluster_of(*id) == 0)
        .map(|id| c.node_id(id))
        .collect();
    drop(c);
    let node = madsim::runtime::Handle::current()
        .create_node()
        .name("mirror-maker")
        .ip("10.0.3.1".parse().expect("an address"))
        .build();
    node.spawn(crate::world::mirror::run(
        workload.clone(),
        spec.clone(),
        config,
        record.clone(),
        rng.random(),
    ));
    // Drawn only when the WAN fails, so that other mirror scenarios' seeds stay as they were.
    if spec.wan_partitions.is_some() {
        madsim::task::spawn(crate::world::mirror::wan_faults(
            spec.clone(),
            node.id(),
            source_nodes,
            world.journal.clone(),
            world.start + world.scenario.run.duration.0,
            rng.random(),
        ));
    }
    Some((record, node))
}

/// Every consumer group's members, on the clients' node.
fn spawn_group_members(
    world: &World,
    workload: &Workload,
    clients: &madsim::runtime::NodeHandle,
    rng: &mut ChaCha8Rng,
) {
    let w = &world.scenario.workload;
    let mut process = u64::from(w.producers + w.consumers);
    for spec in &w.groups {
        for index in 0..spec.consumers {
            clients.spawn(crate::world::group_consumer::member(
                workload.clone(),
                spec.clone(),
                index,
                process,
                rng.random(),
            ));
            process += 1;
        }
    }
}

/// The transactional producers, on the clients' node; their processes follow the group members'.
fn spawn_txn_producers(
    world: &World,
    workload: &Workload,
    clients: &madsim::runtime::NodeHandle,
    rng: &mut ChaCha8Rng,
) {
    let w = &world.scenario.workload;
    let Some(spec) = &w.transactions else {
        return;
    };
    let members: u32 = w.groups.iter().map(|g| g.consumers).sum();
    let first = u64::from(w.producers + w.consumers + members);
    let stride = process_count(w);
    for index in 0..spec.producers {
        let process = first + u64::from(index);
        let run = crate::world::txn_producer::run(
            workload.clone(),
            spec.clone(),
            index,
            process,
            stride,
            rng.random(),
        );
        clients.spawn(run);
    }
}

/// The processes the run starts: producers, lone consumers, group members, transactional
/// producers, then the pipeline's workers and its output's readers. A client that restarts is a
/// new process, this many further on.
fn process_count(w: &crate::scenario::Workload) -> u64 {
    let members: u32 = w.groups.iter().map(|g| g.consumers).sum();
    let txn_producers = w.transactions.as_ref().map_or(0, |t| t.producers);
    let pipeline = w.pipeline.as_ref().map_or(0, |p| p.workers + p.readers);
    u64::from(w.producers + w.consumers + members + txn_producers + pipeline)
}

/// The pipeline's workers, then the readers of its output, on the clients' node; their processes
/// follow the transactional producers'.
fn spawn_pipeline(
    world: &World,
    workload: &Workload,
    clients: &madsim::runtime::NodeHandle,
    rng: &mut ChaCha8Rng,
) {
    let w = &world.scenario.workload;
    let (Some(spec), Some(output)) = (&w.pipeline, world.scenario.pipeline_output()) else {
        return;
    };
    let stride = process_count(w);
    let mut process = stride - u64::from(spec.workers + spec.readers);
    let pipeline = crate::world::pipeline::Pipeline {
        spec: spec.clone(),
        output_partitions: output.partitions,
        no_rewind: (world.scenario.bugs).contains(&model::bugs::Switch::ConsumerNoRewindOnAbort),
    };
    for index in 0..spec.workers {
        let worker = crate::world::pipeline::worker(
            workload.clone(),
            pipeline.clone(),
            index,
            process,
            rng.random(),
        );
        clients.spawn(worker);
        process += 1;
    }
    let mut readers = workload.clone();
    readers.topic = output.name.clone();
    readers.partitions = output.partitions;
    readers.read_committed = true;
    for index in 0..spec.readers {
        let id = w.consumers + index;
        clients.spawn(workload::consumer(readers.clone(), id, process, stride, None));
        process += 1;
    }
}

/// The fault injectors: the profile's (the scenario's or the seed's swarm draw) and the timeline's.
fn start_faults(world: &World, load_end: Instant) -> (Arc<Nemesis>, FaultProfile) {
    let nemesis = Nemesis::new(world.cluster.clone(), world.journal.clone());
    let fault_profile = world.scenario.fault_profile(world.seed);
    let timeline = &world.scenario.faults.timeline;
    if !fault_profile.is_quiet() || !timeline.is_empty() {
        let roller = (!fault_profile.is_quiet())
            .then(|| profile::Roller::new(fault_profile.clone(), seeds::profile(world.seed)));
        let script = timeline::Script::new(timeline.clone(), seeds::timeline(world.seed));
        madsim::task::spawn(crate::faults::inject(
            nemesis.clone(),
            script,
            roller,
            world.start,
            load_end,
        ));
    }
    (nemesis, fault_profile)
}

/// Heal: faults stop and everything they did is undone. Producers go on through the first half of
/// the quiet period, so a cluster that no longer takes writes after healing fails the gate; then
/// they stop and the rest of the quiet period lets everything settle.
async fn heal_and_quiet(world: &World, nemesis: &Nemesis, workload: &Workload) {
    let (cluster, observer) = (&world.cluster, &world.observer);
    let quiet = world.scenario.run.quiet_period.0;
    nemesis.heal_all();
    // The fault points are faults too: the quiet period judges a system left alone.
    if world.scenario.buggify || !world.scenario.fault_points.is_empty() {
        model::fault_point::enable(false);
    }
    observer.lock().harness(-1, HarnessEvent::FaultsStopped);
    let quiet_end = Instant::now() + quiet;
    step_checks_until(cluster, observer, &workload.acked, Instant::now() + quiet / 2).await;
    workload.stop_producers.store(true, Ordering::Relaxed);
    step_checks_until(cluster, observer, &workload.acked, quiet_end).await;
    observer
        .lock()
        .harness(-1, HarnessEvent::QuietPeriodEnded);
    workload.stop_consumers.store(true, Ordering::Relaxed);
}

/// The end-of-run oracle, the client history and the gates; then the report.
fn judge(
    world: &mut World,
    workload: &Workload,
    mirror: Option<&Lock<crate::world::mirror::MirrorRecord>>,
    fault_profile: FaultProfile,
) -> RunOutput {
    check_step(&world.cluster, &world.observer, &workload.acked);
    let figures = end_checks(world, workload, mirror);
    let figure = |name| figures.get(name).copied().unwrap_or_default();
    let (lost_acks1, rereads) = (figure("lost_acks1"), figure("rereads"));
    let world = &*world;
    let observer = &world.observer;
    let stats = workload.stats.lock().clone();
    gates(observer, &stats);
    let mut obs = observer.lock();
    obs.counters.messages = madsim::net::NetSim::current().stat().msg_count;
    let counters = obs.counters.clone();
    let report = RunReport {
        seed: world.seed,
        pass: obs.violations.is_empty(),
        trace_hash: format!("{:016x}", obs.trace_hash()),
        sim_seconds: world.start.elapsed().as_secs_f64(),
        wall_seconds: 0.0,
        produced: stats.produced,
        acked: stats.acked,
        refused: stats.refused,
        unknown: stats.unknown,
        consumed: stats.consumed,
        elections: counters.elections,
        quorum_elections: counters.quorum_elections,
        truncations: counters.truncations,
        crashes: counters.crashes,
        batches_checked: obs.committed.batches_checked,
        lost_acks1,
        rereads,
        consumer_restarts: stats.consumer_restarts,
        transactions: workload.transactions.as_ref().map(|_| TxnCounts {
            committed: stats.txn_committed,
            aborted: stats.txn_aborted,
            unknown: stats.txn_unknown,
            timed_out: 0,
        }),
        counters,
        fault_profile,
        knobs: None,
        violations: obs.violations.clone(),
    };
    RunOutput {
        report,
        trace: obs.take_lines(),
        history: workload.history.take(),
        samples: obs.take_samples(),
        struck: Vec::new(),
    }
}

/// Runs the per-step invariants every `CHECK_STEP` until `until`, and at once after a replica
/// becomes leader: a new leader weighs its high watermark as it takes over, before any follower
/// has fetched in its epoch, and what it counted then may be set right by the first fetch, well
/// within a step.
async fn step_checks_until(
    cluster: &Arc<Lock<Cluster>>,
    observer: &Arc<Lock<Observer>>,
    acked: &Lock<Vec<AckedSend>>,
    until: Instant,
) {
    let mut elections = observer.lock().elections.subscribe();
    while Instant::now() < until {
        let step = sleep(CHECK_STEP.min(until - Instant::now()));
        futures_util::future::select(std::pin::pin!(step), elections.changed()).await;
        check_step(cluster, observer, acked);
    }
}

/// The per-step invariants, over the partitions where something changed since the last step (or
/// over every live replica, when an invariant asks for that or replicas are being sampled).
fn check_step(
    cluster: &Arc<Lock<Cluster>>,
    observer: &Arc<Lock<Observer>>,
    acked: &Lock<Vec<AckedSend>>,
) {
    let live = cluster.lock().live();
    // Each cluster's controller is its quorum leader of the highest epoch; its image is what it
    // holds committed. The clusters' topics have different names, so their views add up.
    let mut freshest: BTreeMap<u8, (i32, model::BrokerId)> = BTreeMap::new();
    for (id, b) in &live {
        if let Some(epoch) = b.inspect(|s| s.quorum.is_leader().then_some(s.quorum.epoch)) {
            let best = freshest.entry(crate::scenario::cluster_of(*id)).or_insert((epoch, *id));
            *best = (*best).max((epoch, *id));
        }
    }
    let holders: Vec<model::BrokerId> = freshest.values().map(|(_, id)| *id).collect();
    let mut obs = observer.lock();
    let now = obs.now_ms();
    let sampling = obs.samples_at(now);
    let every = sampling || !obs.incremental();
    let mut changes = std::mem::take(&mut obs.changes);
    changes.begin();
    for (id, broker) in &live {
        broker.inspect(|s| {
            let state = (s.quorum.epoch, s.in_service(*id), s.incarnation);
            let replicas = (s.partitions.iter()).map(|(tp, p)| (tp, ReplicaSeen::of(p)));
            changes.node(*id, state, replicas);
            if holders.contains(id) {
                let records = s.image.partitions().map(|p| {
                    let seen = (p.leader, p.leader_epoch, p.partition_epoch);
                    (p.topic_partition(), seen)
                });
                changes.controller(*id, records);
            }
        });
    }
    changes.end();
    let judged = |tp: &model::TopicPartition| every || changes.changed(tp);
    let mut nodes = Vec::with_capacity(live.len());
    let mut controller = ControllerView::new();
    for (id, broker) in &live {
        broker.inspect(|s| {
            let mut replicas = Vec::new();
            for (tp, p) in s.partitions.iter().filter(|(tp, _)| judged(tp)) {
                let partition = obs.partition_name(tp);
                if sampling {
                    obs.sample(crate::observer::ReplicaSample {
                        t_ms: now,
                        node: *id,
                        partition: partition.to_string(),
                        log_end_offset: p.log.log_end_offset(),
                        high_watermark: p.log.high_watermark(),
                    });
                }
                let log = (p.log.batches(), p.log.high_watermark(), p.log.truncations());
                if let Some(v) = obs.committed.check(now, *id, tp, log) {
                    obs.violation(v);
                }
                replicas.push(ReplicaView {
                    partition,
                    leader_epoch: p.leader_epoch,
                    is_leader: p.is_leader(),
                    high_watermark: p.log.high_watermark(),
                    log_end_offset: p.log.log_end_offset(),
                    last_stable_offset: p.log.last_stable_offset(),
                    durable_end_offset: p.log.durable_end_offset(),
                    isr: p.leader_state().map(|l| l.isr.clone()).unwrap_or_default(),
                    maximal_isr: p.maximal_isr(),
                    partition_epoch: p.leader_state().map_or(0, |l| l.partition_epoch),
                    epochs: p.log.epochs().entries().to_vec(),
                });
            }
            nodes.push(NodeView {
                node: *id,
                quorum_epoch: s.quorum.epoch,
                in_service: s.in_service(*id),
                replicas,
            });
            if holders.contains(id) {
                let records = s.image.partitions().filter(|p| judged(&p.topic_partition()));
                controller.extend(records.map(|p| {
                    let c = ControllerPartition {
                        leader: p.leader,
                        leader_epoch: p.leader_epoch,
                        partition_epoch: p.partition_epoch,
                        isr: p.isr.clone(),
                    };
                    (obs.partition_name(&p.topic_partition()), c)
                }));
            }
        });
    }
    obs.changes = changes;
    let found = obs.judge_step(now, &nodes, &controller, &acked.lock());
    obs.evaluated(Check::CommittedDataIdentical.name());
    for v in found {
        obs.violation(v);
    }
}

/// After the quiet period: every partition has a leader, and every acks=all acked write is on it.
/// The leader with the highest epoch among live brokers of `tp`, and its committed records.
fn leader_values(
    live: &[(model::BrokerId, Arc<model::broker::Shared>)],
    tp: &model::TopicPartition,
) -> Option<(model::BrokerId, BTreeMap<i64, bytes::Bytes>)> {
    live.iter()
        .filter_map(|(id, b)| {
            b.inspect(|s| {
                s.partitions
                    .get(tp)
                    .filter(|p| matches!(p.role, Role::Leader(_)))
                    .map(|p| (p.leader_epoch, *id, committed_values(&p.log)))
            })
        })
        .max_by_key(|(epoch, _, _)| *epoch)
        .map(|(_, id, values)| (id, values))
}

/// Judges the end of the run with every oracle, in order; returns the figures they measured.
fn end_checks(
    world: &mut World,
    workload: &Workload,
    mirror: Option<&Lock<crate::world::mirror::MirrorRecord>>,
) -> BTreeMap<&'static str, u64> {
    let live = world.cluster.lock().live();
    let topic = &world.topic;
    let mut leaders = BTreeMap::new();
    let mut leaderless = Vec::new();
    for partition in 0..topic.partitions {
        let tp = model::TopicPartition::new(topic.name.clone(), partition);
        match leader_values(&live, &tp) {
            Some(leader) => drop(leaders.insert(tp.to_string(), leader)),
            None => leaderless.push(tp.to_string()),
        }
    }
    let replicas = replica_ends(&live, topic);
    let mirrored = mirror.map(|record| (mirror_target(&live, topic), record.lock()));
    let acked = workload.acked.lock();
    let acked_weak = workload.acked_weak.lock();
    let time_ms = world.observer.lock().now_ms();
    let quorum_led = live
        .iter()
        .any(|(_, b)| b.inspect(|s| s.quorum.is_leader()));
    let (unstable, held) = transactions_at_end(&live);
    let (observer, oracles) = (&world.observer, &mut world.oracles);
    workload.history.with_ops(|history| {
        let end = End {
            time_ms,
            leaders: &leaders,
            leaderless: &leaderless,
            quorum_led,
            replicas: &replicas,
            acked: &acked,
            acked_weak: &acked_weak,
            history,
            mirror: mirrored
                .as_ref()
                .map(|((source, target), record)| MirrorEnd {
                    source,
                    target,
                    checkpoints: &record.checkpoints,
                }),
            unstable: &unstable,
            held: &held,
        };
        let mut figures = BTreeMap::new();
        for oracle in oracles.iter_mut() {
            if !oracle.applies(&end) {
                continue;
            }
            let found = oracle.check(&end);
            let mut obs = observer.lock();
            obs.evaluated(oracle.name());
            for v in found {
                obs.violation(v);
            }
            figures.extend(oracle.figures());
        }
        figures
    })
}

/// Every led partition whose last stable offset lags its high watermark, and every transaction
/// its coordinator holds, on the live brokers.
fn transactions_at_end(
    live: &[(model::BrokerId, Arc<model::broker::Shared>)],
) -> (
    Vec<crate::checkers::transactions::Unstable>,
    Vec<crate::checkers::transactions::Held>,
) {
    use crate::checkers::transactions::{Held, Unstable};
    let (mut unstable, mut held) = (Vec::new(), Vec::new());
    for (id, b) in live {
        let now = b.now_ms();
        b.inspect(|s| {
            for (tp, p) in s.partitions.iter().filter(|(_, p)| p.is_leader()) {
                let (lso, hw) = (p.log.last_stable_offset(), p.log.high_watermark());
                if lso < hw {
                    unstable.push(Unstable {
                        partition: tp.to_string(),
                        leader: *id,
                        last_stable_offset: lso,
                        high_watermark: hw,
                        open: p.log.transactions().open().collect(),
                    });
                }
            }
            for (name, m) in model::txn::coordinator::held(s) {
                let open = m.state == model::txn::TxnState::Ongoing || m.state.preparing();
                held.push(Held {
                    id: name.clone(),
                    coordinator: *id,
                    producer_id: m.producer_id,
                    state: m.state.to_string(),
                    open,
                    partitions: m.partitions.iter().map(|p| p.to_string()).collect(),
                    overdue_ms: now.saturating_sub(m.started_ms.saturating_add(m.timeout_ms)),
                });
            }
        });
    }
    (unstable, held)
}

/// Each partition's assigned replicas (as the freshest image among live brokers says) with their
/// high watermarks.
fn replica_ends(
    live: &[(model::BrokerId, Arc<model::broker::Shared>)],
    topic: &Topic,
) -> BTreeMap<String, Vec<ReplicaEnd>> {
    let mut replicas = BTreeMap::new();
    for partition in 0..topic.partitions {
        let tp = model::TopicPartition::new(topic.name.clone(), partition);
        let assigned = live.iter().find_map(|(_, b)| {
            b.inspect(|s| {
                s.image
                    .partition(&topic.name, partition)
                    .map(|p| p.replicas.clone())
            })
        });
        let high_watermark = |broker| {
            let (_, b) = live.iter().find(|(id, _)| *id == broker)?;
            b.inspect(|s| s.partitions.get(&tp).map(|p| p.log.high_watermark()))
        };
        let ends = assigned
            .unwrap_or_default()
            .into_iter()
            .map(|broker| ReplicaEnd {
                broker,
                high_watermark: high_watermark(broker),
            })
            .collect();
        replicas.insert(tp.to_string(), ends);
    }
    replicas
}

/// The source partitions by name and number, and each mirrored partition's target leader's
/// committed records.
type MirrorTarget = (BTreeMap<String, i32>, BTreeMap<i32, BTreeMap<i64, bytes::Bytes>>);

fn mirror_target(
    live: &[(model::BrokerId, Arc<model::broker::Shared>)],
    topic: &Topic,
) -> MirrorTarget {
    let target_topic = model::mirror::target_topic(&topic.name);
    let mut target = BTreeMap::new();
    let mut source = BTreeMap::new();
    for partition in 0..topic.partitions {
        source.insert(
            model::TopicPartition::new(topic.name.clone(), partition).to_string(),
            partition,
        );
        let tp = model::TopicPartition::new(target_topic.clone(), partition);
        if let Some((_, values)) = leader_values(live, &tp) {
            target.insert(partition, values);
        }
    }
    (source, target)
}

/// A run that acked nothing, read nothing or compared nothing has not tested anything.
fn gates(observer: &Arc<Lock<Observer>>, stats: &WorkloadStats) {
    let mut obs = observer.lock();
    let now = obs.now_ms();
    let batches_checked = obs.committed.batches_checked;
    let mut gate = |ok: bool, message: &str| {
        if !ok {
            obs.violation(Violation::new(Check::Gate, now, message));
        }
    };
    gate(
        stats.produced == 0 || stats.acked > 0,
        "the workload sent records and none was acknowledged",
    );
    let ended = stats.txn_committed + stats.txn_aborted + stats.txn_unknown;
    gate(
        ended == 0 || stats.txn_committed > 0,
        "transactions were run and none committed",
    );
    gate(
        stats.polls == 0 || stats.consumed > 0,
        "the consumers polled and read nothing",
    );
    gate(
        batches_checked > 0,
        "no committed batch was ever compared across replicas",
    );
}
