//! Injecting faults from a profile of probabilities (`scenario::FaultProfile`): every step (100
//! ms of simulated time) each kind of fault strikes with its own probability, aimed at a target
//! drawn at random, and lasts a drawn time.
//!
//! Draw order per step (changing it changes every seed): for each kind in the order of
//! `FaultProfile`'s fields, one roll; only when the roll strikes, its target and then its parameters.

use std::sync::Arc;
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::network;
use super::target::pick;
use super::{clock, process, storage, Nemesis};
use crate::world::cluster::DiskDamage;
use model::BrokerId;
use crate::scenario::{Dur, Fault, FaultKind, FaultProfile, Shape, Target};

/// How often the profile rolls for faults, in simulated time; the timeline strikes on it too.
pub const STEP: Duration = Duration::from_millis(100);

fn draw(rng: &mut ChaCha8Rng, [a, b]: [Dur; 2]) -> Duration {
    Duration::from_millis(rng.random_range(a.ms()..=b.ms()))
}

/// The profile's draws, one roll per step (see `super::inject`).
pub struct Roller {
    profile: FaultProfile,
    rng: ChaCha8Rng,
}

impl Roller {
    /// Rolls for `profile` from the stream `seed` starts.
    pub fn new(profile: FaultProfile, seed: u64) -> Self {
        Roller {
            profile,
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// One step's rolls, `at` into the run.
    pub fn roll(&mut self, nemesis: &Arc<Nemesis>, at: Duration) {
        let (down, up) = {
            let c = nemesis.cluster();
            (c.down.len() as i32, c.up())
        };
        let mut roll = Roll {
            nemesis,
            rng: &mut self.rng,
            // While a damaged broker re-registers, every roll misses (and is still drawn).
            held: nemesis.cluster().recovering_from_damage(),
            up,
            at,
        };
        let p = &self.profile;
        process_faults(&mut roll, p, down);
        network_faults(&mut roll, p);
        clock_faults(&mut roll, p);
        disk_faults(&mut roll, p);
    }
}

/// One step's draws: the stream, the brokers up when the step began, whether faults hold off,
/// and when the step is (what it strikes is recorded at that time).
struct Roll<'a> {
    nemesis: &'a Arc<Nemesis>,
    rng: &'a mut ChaCha8Rng,
    held: bool,
    up: Vec<BrokerId>,
    at: Duration,
}

impl Roll<'_> {
    fn strikes(&mut self, probability: f64) -> bool {
        probability > 0.0 && self.rng.random_bool(probability) && !self.held
    }

    /// A broker that was up, when the roll strikes and `allowed` holds.
    fn victim(&mut self, probability: f64, allowed: bool) -> Option<BrokerId> {
        (self.strikes(probability) && allowed)
            .then(|| pick(self.rng, &self.up))
            .flatten()
    }

    fn draw(&mut self, range: [Dur; 2]) -> Duration {
        draw(self.rng, range)
    }

    fn record(&self, fault: Fault, duration: Duration) {
        self.nemesis.record(self.at, fault, Some(duration), None);
    }
}

fn process_faults(r: &mut Roll, p: &FaultProfile, down: i32) {
    let room = down < p.max_down;
    if r.strikes(p.crash_probability) && room {
        let victim = Target::Random
            .resolve(&r.nemesis.cluster(), r.rng)
            .first()
            .copied();
        if let Some(victim) = victim {
            let damage = damage(r.rng, p);
            let downtime = r.draw(p.downtime);
            let (fault, seed) = damage.as_fault(Target::Broker(victim));
            r.nemesis.record(r.at, fault, Some(downtime), seed);
            process::crash(r.nemesis, victim, damage, Some(downtime));
        }
    }
    if let Some(victim) = r.victim(p.shutdown_probability, room) {
        let downtime = r.draw(p.downtime);
        r.record(Fault::Shutdown(Target::Broker(victim)), downtime);
        process::shutdown(r.nemesis, victim, Some(downtime));
    }
    if let Some(victim) = r.victim(p.pause_probability, true) {
        let duration = r.draw(p.fault_duration);
        r.record(Fault::Pause(Target::Broker(victim)), duration);
        process::pause(r.nemesis, victim, Some(duration));
    }
    if r.strikes(p.all_down_probability) && down == 0 {
        let downtime = r.draw(p.downtime);
        r.record(Fault::AllDown, downtime);
        process::all_down(r.nemesis, downtime);
    }
}

/// What a crash does to the disk beyond losing unsynced bytes, the worst kind rolled first.
fn damage(rng: &mut ChaCha8Rng, p: &FaultProfile) -> DiskDamage {
    if rng.random_bool(p.wipe_probability) {
        DiskDamage::Wipe
    } else if rng.random_bool(p.corrupt_probability) {
        DiskDamage::Corrupt(rng.random())
    } else if rng.random_bool(p.torn_write_probability) {
        DiskDamage::Torn(rng.random())
    } else {
        DiskDamage::None
    }
}

fn network_faults(r: &mut Roll, p: &FaultProfile) {
    let shapes = [
        (p.partition_probability, Shape::Halves),
        (
            p.isolate_controller_probability,
            Shape::Isolate(Target::Controller),
        ),
        (
            p.isolate_leader_probability,
            Shape::Isolate(Target::Leader(None)),
        ),
        (p.ring_probability, Shape::MajorityRing),
        (
            p.off_controller_probability,
            Shape::OffController(Target::Random),
        ),
    ];
    for (probability, shape) in shapes {
        if r.strikes(probability) {
            let duration = r.draw(p.fault_duration);
            let cut = partition(r.nemesis, &shape, r.rng, Some(duration));
            if let Some(links) = cut.filter(|l| !l.is_empty()) {
                r.record(Fault::Partition(Shape::Links(links)), duration);
            }
        }
    }
    if r.strikes(p.clog_probability) {
        let ids = r.nemesis.cluster().ids();
        if ids.len() > 1 {
            let from = ids[r.rng.random_range(0..ids.len())];
            let others: Vec<_> = ids.iter().copied().filter(|b| *b != from).collect();
            let to = others[r.rng.random_range(0..others.len())];
            let duration = r.draw(p.fault_duration);
            r.record(Fault::Clog(Some((from, to))), duration);
            network::cut(r.nemesis, FaultKind::Clog, vec![(from, to)], Some(duration));
        }
    }
    if r.strikes(p.packet_loss_probability) {
        let rate = r
            .rng
            .random_range(p.packet_loss_rate[0]..=p.packet_loss_rate[1]);
        let duration = r.draw(p.fault_duration);
        r.record(Fault::PacketLoss { rate }, duration);
        network::packet_loss(r.nemesis, rate, Some(duration));
    }
    if r.strikes(p.latency_probability) {
        let high = r.draw(p.latency_spike).max(Duration::from_millis(2));
        let duration = r.draw(p.fault_duration);
        let (min, max) = (high / 2, high);
        r.record(Fault::Latency { min, max }, duration);
        network::latency(r.nemesis, min..max, Some(duration));
    }
}

fn clock_faults(r: &mut Roll, p: &FaultProfile) {
    if let Some(victim) = r.victim(p.clock_skew_probability, true) {
        let max = p.clock_step_max.ms() as i64;
        let step = r.rng.random_range(-max..=max);
        let duration = r.draw(p.fault_duration);
        let target = Target::Broker(victim);
        r.record(Fault::ClockSkew { target, step_ms: step }, duration);
        clock::skew(r.nemesis, victim, step, Some(duration));
    }
    if let Some(victim) = r.victim(p.clock_drift_probability, true) {
        let max = p.clock_drift_ppm_max;
        let ppm = r.rng.random_range(-max..=max);
        let duration = r.draw(p.fault_duration);
        r.record(Fault::ClockDrift { target: Target::Broker(victim), ppm }, duration);
        clock::drift(r.nemesis, victim, ppm, Some(duration));
    }
}

fn disk_faults(r: &mut Roll, p: &FaultProfile) {
    if let Some(victim) = r.victim(p.disk_full_probability, true) {
        let duration = r.draw(p.fault_duration);
        r.record(Fault::DiskFull(Target::Broker(victim)), duration);
        storage::full(r.nemesis, victim, Some(duration));
    }
    if let Some(victim) = r.victim(p.disk_slow_probability, true) {
        let delay = r.draw(p.disk_slow_delay);
        let duration = r.draw(p.fault_duration);
        let target = Target::Broker(victim);
        r.record(Fault::DiskSlow { target, delay }, duration);
        storage::slow(r.nemesis, victim, delay, Some(duration));
    }
}

/// Cuts the links `shape` names among all brokers; the links cut, unless the shape named none.
pub fn partition(
    nemesis: &Arc<Nemesis>,
    shape: &Shape,
    rng: &mut ChaCha8Rng,
    duration: Option<Duration>,
) -> Option<Vec<(BrokerId, BrokerId)>> {
    let (ids, isolated) = {
        let cluster = nemesis.cluster();
        let isolated = match shape {
            Shape::Isolate(target) => target.resolve(&cluster, rng),
            Shape::OffController(target) => {
                let controller = Target::Controller.resolve(&cluster, rng);
                let cut = target.resolve(&cluster, rng);
                if cut.iter().all(|b| controller.contains(b)) {
                    Vec::new()
                } else {
                    controller.into_iter().chain(cut).collect()
                }
            }
            _ => Vec::new(),
        };
        (cluster.ids(), isolated)
    };
    if matches!(shape, Shape::Isolate(_) | Shape::OffController(_)) && isolated.is_empty() {
        return None;
    }
    let links = network::cut_links(shape, &ids, &isolated, rng);
    network::cut(nemesis, FaultKind::Partition, links.clone(), duration);
    Some(links)
}
