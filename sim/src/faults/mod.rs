//! Fault injection. One module per kind of fault (`process`, `network`, `clock`, `storage`), the
//! targets they aim at (`target`), the probability profile a run draws faults from (`profile`),
//! and the explicit timeline a scenario may script (`timeline`).
//!
//! Every fault is traced (kind, target, what it did) and counted by kind. Faults draw from their
//! own random streams, seeded from the run's seed with salts of their own, so enabling one never
//! shifts the workload's draws. Every fault is healed by the end of the load phase (`heal_all`):
//! crashed brokers restart, paused ones resume, links unclog, clocks and disks return to normal.

pub mod clock;
pub mod network;
pub mod process;
pub mod profile;
pub mod storage;
pub mod target;
pub mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use model::sync::{Lock, LockGuard};
use std::time::Duration;

use madsim::net::NetSim;
use model::BrokerId;

use crate::world::cluster::Cluster;
use crate::record::journal::{HarnessEvent, Journal};
use crate::scenario::FaultKind;

/// The one fault clock: every step (`profile::STEP`), the timeline's faults that are due, then the
/// profile's rolls, until the load ends. One task for both that ticks alike whatever strikes, so
/// that a run and the timeline of what it struck (`Nemesis::struck`) wake at the same moments,
/// between the same scheduler events, and replay alike.
pub async fn inject(
    nemesis: Arc<Nemesis>,
    mut script: timeline::Script,
    mut roller: Option<profile::Roller>,
    start: madsim::time::Instant,
    until: madsim::time::Instant,
) {
    loop {
        madsim::time::sleep(profile::STEP).await;
        let now = madsim::time::Instant::now();
        if now >= until || nemesis.is_stopped() {
            return;
        }
        // Whole milliseconds, at or before the step, so that the record strikes at this step.
        let at = Duration::from_millis((now - start).as_millis() as u64);
        script.strike_due(&nemesis, start, at);
        if let Some(roller) = &mut roller {
            roller.roll(&nemesis, at);
        }
    }
}

/// madsim's latency range when no latency fault is active.
pub const NORMAL_LATENCY: std::ops::Range<Duration> =
    Duration::from_millis(1)..Duration::from_millis(10);

/// Faults that are in force now, so that each can be undone on its own and all at the end.
#[derive(Default)]
pub struct Active {
    /// One-way links cut, with how many faults cut each.
    pub links: BTreeMap<(BrokerId, BrokerId), u32>,
    /// Packet-loss faults in force; the loss rate goes back to 0 when the last one heals.
    pub packet_loss: u32,
    /// Latency faults in force; latency goes back to [`NORMAL_LATENCY`] when the last one heals.
    pub latency: u32,
    /// Brokers whose clock is stepped or drifting.
    pub skewed: BTreeSet<BrokerId>,
    /// Brokers whose disk is full.
    pub full: BTreeSet<BrokerId>,
    /// Brokers whose disk syncs slowly.
    pub slow: BTreeSet<BrokerId>,
}

/// What every injector works with.
pub struct Nemesis {
    /// The cluster the faults strike.
    pub cluster: Arc<Lock<Cluster>>,
    /// Where faults and heals are traced.
    pub journal: Arc<dyn Journal>,
    /// The faults in force.
    pub active: Lock<Active>,
    /// After `heal_all`, scheduled heals and restarts find nothing left to do.
    pub stopped: Lock<bool>,
    /// Every fault struck so far, as a timeline entry with its target resolved and every drawn
    /// parameter fixed: run as a scenario's timeline, it strikes the same faults at the same
    /// steps, and the run replays exactly (what `shrink` needs of a swarm's failure).
    pub struck: Lock<Vec<crate::scenario::Scheduled>>,
}

impl Nemesis {
    /// A nemesis for `cluster`, with no fault in force, tracing to `journal`.
    pub fn new(cluster: Arc<Lock<Cluster>>, journal: Arc<dyn Journal>) -> Arc<Self> {
        Arc::new(Nemesis {
            cluster,
            journal,
            active: Lock::default(),
            stopped: Lock::new(false),
            struck: Lock::default(),
        })
    }

    /// Locks the cluster.
    pub fn cluster(&self) -> LockGuard<'_, Cluster> {
        self.cluster.lock()
    }

    /// Locks the faults in force.
    pub fn active(&self) -> LockGuard<'_, Active> {
        self.active.lock()
    }

    /// Whether `heal_all` has run; scheduled heals and restarts then do nothing.
    pub fn is_stopped(&self) -> bool {
        *self.stopped.lock()
    }

    /// Notes a fault struck `at` into the run, lasting `duration`, with the drawn `seed` of its
    /// damage (see `struck`).
    pub fn record(
        &self,
        at: Duration,
        fault: crate::scenario::Fault,
        duration: Option<Duration>,
        seed: Option<u64>,
    ) {
        let mut scheduled = fault.at(at);
        scheduled.duration = duration;
        scheduled.seed = seed;
        self.struck.lock().push(scheduled);
    }

    /// Traces `event` as the harness's, on broker `node` (-1 for the network as a whole).
    pub fn trace(&self, node: BrokerId, event: HarnessEvent) {
        self.journal.harness(node, event);
    }

    /// Records a fault in force on one broker (already applied by the caller), traces it, and
    /// after `duration` undoes it with `undo`. `mark` names the set in `Active` that tracks it, so
    /// that `heal_all` can undo it too.
    pub fn node_fault(
        self: &Arc<Self>,
        kind: FaultKind,
        victim: BrokerId,
        detail: String,
        mark: fn(&mut Active) -> &mut BTreeSet<BrokerId>,
        undo: fn(&Cluster, BrokerId),
        duration: Option<Duration>,
    ) {
        mark(&mut self.active()).insert(victim);
        self.trace(victim, HarnessEvent::fault(kind, victim, detail));
        if let Some(duration) = duration {
            self.heal_later(duration, move |n| {
                undo(&n.cluster(), victim);
                mark(&mut n.active()).remove(&victim);
                n.healed(victim, kind, victim);
            });
        }
    }

    /// Traces the end of a fault and stamps its time, for `is_calm`.
    pub fn healed(&self, node: BrokerId, kind: FaultKind, target: impl ToString) {
        self.cluster().note_heal();
        self.trace(node, HarnessEvent::heal(kind, target));
    }

    /// Runs `heal` after `duration`, unless everything was healed before.
    pub fn heal_later(
        self: &Arc<Self>,
        duration: Duration,
        heal: impl FnOnce(&Nemesis) + Send + 'static,
    ) {
        let nemesis = self.clone();
        madsim::task::spawn(async move {
            madsim::time::sleep(duration).await;
            if !nemesis.is_stopped() {
                heal(&nemesis);
            }
        });
    }

    /// No network, clock or disk fault is in force, no broker is paused, and none of them ended
    /// within a broker session timeout.
    pub fn is_calm(&self) -> bool {
        let a = self.active();
        let quiet =
            a.links.is_empty() && a.packet_loss == 0 && a.latency == 0 && a.skewed.is_empty();
        let disks = a.full.is_empty() && a.slow.is_empty();
        drop(a);
        let cluster = self.cluster();
        quiet && disks && cluster.paused.is_empty() && cluster.calm_since_last_heal()
    }

    /// Ends every fault: the start of the quiet period. Damage still pending for a disk is dropped:
    /// every clock jumps back at once here, which may fence brokers in a burst.
    pub fn heal_all(&self) {
        *self.stopped.lock() = true;
        let mut active = std::mem::take(&mut *self.active());
        let mut cluster = self.cluster();
        let net = NetSim::current();
        for ((from, to), _) in std::mem::take(&mut active.links) {
            net.unclog_link(cluster.node_id(from), cluster.node_id(to));
        }
        if active.packet_loss > 0 || active.latency > 0 {
            net.update_config(|c| {
                c.packet_loss_rate = 0.0;
                c.send_latency = NORMAL_LATENCY;
            });
        }
        for id in &active.skewed {
            cluster.clocks[id].reset();
        }
        for id in &active.full {
            cluster.disks[id].set_full(false);
        }
        for id in &active.slow {
            cluster.disks[id].set_sync_delay(Duration::ZERO);
        }
        for id in cluster.paused.clone() {
            cluster.resume(id);
        }
        for id in cluster.down.clone() {
            if !cluster.has_exited(id) {
                // A shutdown still under way ends now, hard.
                cluster.finish_shutdown(id);
            }
            cluster.restart(id);
        }
    }
}
