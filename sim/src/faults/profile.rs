//! A profile of fault probabilities: every step (100 ms of simulated time) each kind of fault
//! strikes with its own probability, aimed at a target drawn at random, and lasts a drawn time.
//! `Default` injects nothing. `swarm` draws a profile from the seed: each seed turns on its own
//! subset of fault kinds, at its own rates (swarm testing, after TigerBeetle's VOPR).
//!
//! Draw order per step (changing it changes every seed): for each kind in the order of the fields
//! below, one roll; only when the roll strikes, its target and then its parameters.

use std::sync::Arc;
use std::time::Duration;

use madsim::time::{sleep, Instant};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::network::{self, Shape};
use super::target::{pick, Target};
use super::{clock, process, storage, Nemesis};
use crate::cluster::DiskDamage;
use crate::scenario::Dur;

pub const STEP: Duration = Duration::from_millis(100);

fn ms(v: u64) -> Dur {
    Dur(Duration::from_millis(v))
}

fn range(a: u64, b: u64) -> [Dur; 2] {
    [ms(a), ms(b)]
}

/// Probabilities are per step; durations are drawn uniformly from `[min, max]`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultProfile {
    /// A broker crashes.
    pub crash_probability: f64,
    /// How long a crashed or shut-down broker stays down.
    pub downtime: [Dur; 2],
    /// Brokers down at once, at most (all-down aside).
    pub max_down: i32,
    /// Given a crash: the last unsynced write is torn.
    pub torn_write_probability: f64,
    /// Given a crash: a bit flips at rest in a data segment (minority replicas only).
    pub corrupt_probability: f64,
    /// Given a crash: the data directories are wiped (minority replicas only).
    pub wipe_probability: f64,
    /// A broker shuts down cleanly.
    pub shutdown_probability: f64,
    /// A broker freezes for `fault_duration`.
    pub pause_probability: f64,
    /// Every broker crashes; a majority returns after `downtime`, the rest after twice that.
    pub all_down_probability: f64,
    /// Brokers split into random halves.
    pub partition_probability: f64,
    /// The active controller is cut off from the other brokers.
    pub isolate_controller_probability: f64,
    /// The leader of a random partition is cut off from the other brokers.
    pub isolate_leader_probability: f64,
    /// A random broker loses the active controller, and only it.
    pub off_controller_probability: f64,
    /// A majority ring (each broker sees a different majority).
    pub ring_probability: f64,
    /// One random one-way link is clogged.
    pub clog_probability: f64,
    /// Packets are lost at a rate drawn from `packet_loss_rate`.
    pub packet_loss_probability: f64,
    pub packet_loss_rate: [f64; 2],
    /// Message latency rises to `latency_spike`.
    pub latency_probability: f64,
    pub latency_spike: [Dur; 2],
    /// A broker's clock steps by up to `clock_step_max`, forwards or back.
    pub clock_skew_probability: f64,
    pub clock_step_max: Dur,
    /// A broker's clock drifts by up to `clock_drift_ppm_max`, fast or slow.
    pub clock_drift_probability: f64,
    pub clock_drift_ppm_max: i64,
    /// A broker's disk fills up.
    pub disk_full_probability: f64,
    /// A broker's syncs take `disk_slow_delay`.
    pub disk_slow_probability: f64,
    pub disk_slow_delay: [Dur; 2],
    /// How long a pause, partition, clog, loss, latency, clock or disk fault lasts.
    pub fault_duration: [Dur; 2],
}

impl Default for FaultProfile {
    fn default() -> Self {
        FaultProfile {
            crash_probability: 0.0,
            downtime: range(1_000, 8_000),
            max_down: 1,
            torn_write_probability: 0.0,
            corrupt_probability: 0.0,
            wipe_probability: 0.0,
            shutdown_probability: 0.0,
            pause_probability: 0.0,
            all_down_probability: 0.0,
            partition_probability: 0.0,
            isolate_controller_probability: 0.0,
            isolate_leader_probability: 0.0,
            off_controller_probability: 0.0,
            ring_probability: 0.0,
            clog_probability: 0.0,
            packet_loss_probability: 0.0,
            packet_loss_rate: [0.01, 0.2],
            latency_probability: 0.0,
            latency_spike: range(20, 300),
            clock_skew_probability: 0.0,
            clock_step_max: ms(10_000),
            clock_drift_probability: 0.0,
            clock_drift_ppm_max: 100_000,
            disk_full_probability: 0.0,
            disk_slow_probability: 0.0,
            disk_slow_delay: range(10, 500),
            fault_duration: range(1_000, 10_000),
        }
    }
}

impl FaultProfile {
    /// Each kind of fault is on for about half the seeds, at a rate of its own.
    pub fn swarm(rng: &mut ChaCha8Rng) -> FaultProfile {
        let mut p = FaultProfile::default();
        let maybe = |rng: &mut ChaCha8Rng, max: f64| {
            if rng.random_bool(0.5) {
                rng.random_range(max / 10.0..=max)
            } else {
                0.0
            }
        };
        p.crash_probability = maybe(rng, 0.02);
        p.torn_write_probability = maybe(rng, 0.5);
        p.corrupt_probability = maybe(rng, 0.3);
        p.wipe_probability = maybe(rng, 0.2);
        p.shutdown_probability = maybe(rng, 0.01);
        p.pause_probability = maybe(rng, 0.01);
        p.all_down_probability = maybe(rng, 0.001);
        p.partition_probability = maybe(rng, 0.01);
        p.isolate_controller_probability = maybe(rng, 0.005);
        p.isolate_leader_probability = maybe(rng, 0.005);
        p.off_controller_probability = maybe(rng, 0.005);
        p.ring_probability = maybe(rng, 0.005);
        p.clog_probability = maybe(rng, 0.01);
        p.packet_loss_probability = maybe(rng, 0.005);
        p.latency_probability = maybe(rng, 0.005);
        p.clock_skew_probability = maybe(rng, 0.005);
        p.clock_drift_probability = maybe(rng, 0.005);
        p.disk_full_probability = maybe(rng, 0.005);
        p.disk_slow_probability = maybe(rng, 0.005);
        p.max_down = rng.random_range(1..=2);
        p
    }

    pub fn is_quiet(&self) -> bool {
        self.probabilities().iter().all(|(_, p)| *p == 0.0)
    }

    /// Every probability, by field name, for validation.
    pub fn probabilities(&self) -> Vec<(&'static str, f64)> {
        vec![
            ("crash_probability", self.crash_probability),
            ("torn_write_probability", self.torn_write_probability),
            ("corrupt_probability", self.corrupt_probability),
            ("wipe_probability", self.wipe_probability),
            ("shutdown_probability", self.shutdown_probability),
            ("pause_probability", self.pause_probability),
            ("all_down_probability", self.all_down_probability),
            ("partition_probability", self.partition_probability),
            (
                "isolate_controller_probability",
                self.isolate_controller_probability,
            ),
            (
                "isolate_leader_probability",
                self.isolate_leader_probability,
            ),
            (
                "off_controller_probability",
                self.off_controller_probability,
            ),
            ("ring_probability", self.ring_probability),
            ("clog_probability", self.clog_probability),
            ("packet_loss_probability", self.packet_loss_probability),
            ("latency_probability", self.latency_probability),
            ("clock_skew_probability", self.clock_skew_probability),
            ("clock_drift_probability", self.clock_drift_probability),
            ("disk_full_probability", self.disk_full_probability),
            ("disk_slow_probability", self.disk_slow_probability),
        ]
    }

    /// A broken rule, as (field, what was expected).
    pub fn validate(&self, brokers: i32) -> Result<(), (&'static str, String)> {
        for (name, p) in self.probabilities() {
            if !(0.0..=1.0).contains(&p) {
                return Err((
                    name,
                    format!("{name} = {p}: expected a probability from 0 to 1"),
                ));
            }
        }
        let ranges = [
            ("downtime", self.downtime),
            ("latency_spike", self.latency_spike),
            ("disk_slow_delay", self.disk_slow_delay),
            ("fault_duration", self.fault_duration),
        ];
        for (name, [a, b]) in ranges {
            if a > b {
                return Err((name, format!("{name}: expected [min, max] with min <= max")));
            }
        }
        if self.latency_spike[0].0.is_zero() || self.latency_spike[0] == self.latency_spike[1] {
            return Err((
                "latency_spike",
                "latency_spike: expected [min, max] with 0 < min < max".into(),
            ));
        }
        let [a, b] = self.packet_loss_rate;
        if !(0.0..=1.0).contains(&a) || !(0.0..=1.0).contains(&b) || a > b {
            return Err((
                "packet_loss_rate",
                "packet_loss_rate: expected [min, max] within 0 to 1".into(),
            ));
        }
        if !(0..=brokers).contains(&self.max_down) {
            return Err((
                "max_down",
                format!(
                    "max_down = {}: expected 0 to the number of brokers ({brokers})",
                    self.max_down
                ),
            ));
        }
        if self.clock_drift_ppm_max < 0 || self.clock_drift_ppm_max > 1_000_000 {
            return Err((
                "clock_drift_ppm_max",
                "clock_drift_ppm_max: expected 0 to 1000000".into(),
            ));
        }
        Ok(())
    }
}

fn draw(rng: &mut ChaCha8Rng, [a, b]: [Dur; 2]) -> Duration {
    Duration::from_millis(rng.random_range(a.ms()..=b.ms()))
}

/// Injects faults from `profile` every step until `until`.
pub async fn run(nemesis: Arc<Nemesis>, profile: FaultProfile, seed: u64, until: Instant) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let p = &profile;
    loop {
        sleep(STEP).await;
        if Instant::now() >= until {
            return;
        }
        // While a damaged broker re-registers, every roll misses (and is still drawn).
        let calm = nemesis.cluster().recovering_from_damage();
        let strikes = |rng: &mut ChaCha8Rng, probability: f64| {
            probability > 0.0 && rng.random_bool(probability) && !calm
        };
        let (down, up) = {
            let c = nemesis.cluster();
            (c.down.len() as i32, c.up())
        };
        let room = down < p.max_down;
        if strikes(&mut rng, p.crash_probability) && room {
            let victim = Target::Random
                .resolve(&nemesis.cluster(), &mut rng)
                .first()
                .copied();
            if let Some(victim) = victim {
                let damage = if rng.random_bool(p.wipe_probability) {
                    DiskDamage::Wipe
                } else if rng.random_bool(p.corrupt_probability) {
                    DiskDamage::Corrupt(rng.random())
                } else if rng.random_bool(p.torn_write_probability) {
                    DiskDamage::Torn(rng.random())
                } else {
                    DiskDamage::None
                };
                process::crash(&nemesis, victim, damage, Some(draw(&mut rng, p.downtime)));
            }
        }
        if let Some(victim) = (strikes(&mut rng, p.shutdown_probability) && room)
            .then(|| pick(&mut rng, &up))
            .flatten()
        {
            process::shutdown(&nemesis, victim, Some(draw(&mut rng, p.downtime)));
        }
        if let Some(victim) = (strikes(&mut rng, p.pause_probability))
            .then(|| pick(&mut rng, &up))
            .flatten()
        {
            process::pause(&nemesis, victim, Some(draw(&mut rng, p.fault_duration)));
        }
        if strikes(&mut rng, p.all_down_probability) && down == 0 {
            process::all_down(&nemesis, draw(&mut rng, p.downtime));
        }
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
            if strikes(&mut rng, probability) {
                let duration = draw(&mut rng, p.fault_duration);
                partition(&nemesis, &shape, &mut rng, Some(duration));
            }
        }
        if strikes(&mut rng, p.clog_probability) {
            let ids = nemesis.cluster().ids();
            if ids.len() > 1 {
                let from = ids[rng.random_range(0..ids.len())];
                let others: Vec<_> = ids.iter().copied().filter(|b| *b != from).collect();
                let to = others[rng.random_range(0..others.len())];
                network::cut(
                    &nemesis,
                    "clog",
                    vec![(from, to)],
                    Some(draw(&mut rng, p.fault_duration)),
                );
            }
        }
        if strikes(&mut rng, p.packet_loss_probability) {
            let rate = rng.random_range(p.packet_loss_rate[0]..=p.packet_loss_rate[1]);
            network::packet_loss(&nemesis, rate, Some(draw(&mut rng, p.fault_duration)));
        }
        if strikes(&mut rng, p.latency_probability) {
            let high = draw(&mut rng, p.latency_spike).max(Duration::from_millis(2));
            network::latency(
                &nemesis,
                high / 2..high,
                Some(draw(&mut rng, p.fault_duration)),
            );
        }
        if let Some(victim) = (strikes(&mut rng, p.clock_skew_probability))
            .then(|| pick(&mut rng, &up))
            .flatten()
        {
            let max = p.clock_step_max.ms() as i64;
            let step = rng.random_range(-max..=max);
            clock::skew(
                &nemesis,
                victim,
                step,
                Some(draw(&mut rng, p.fault_duration)),
            );
        }
        if let Some(victim) = (strikes(&mut rng, p.clock_drift_probability))
            .then(|| pick(&mut rng, &up))
            .flatten()
        {
            let max = p.clock_drift_ppm_max;
            let ppm = rng.random_range(-max..=max);
            clock::drift(
                &nemesis,
                victim,
                ppm,
                Some(draw(&mut rng, p.fault_duration)),
            );
        }
        if let Some(victim) = (strikes(&mut rng, p.disk_full_probability))
            .then(|| pick(&mut rng, &up))
            .flatten()
        {
            storage::full(&nemesis, victim, Some(draw(&mut rng, p.fault_duration)));
        }
        if let Some(victim) = (strikes(&mut rng, p.disk_slow_probability))
            .then(|| pick(&mut rng, &up))
            .flatten()
        {
            let delay = draw(&mut rng, p.disk_slow_delay);
            storage::slow(
                &nemesis,
                victim,
                delay,
                Some(draw(&mut rng, p.fault_duration)),
            );
        }
    }
}

/// Cuts the links `shape` names among all brokers.
pub fn partition(
    nemesis: &Arc<Nemesis>,
    shape: &Shape,
    rng: &mut ChaCha8Rng,
    duration: Option<Duration>,
) {
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
        return;
    }
    let links = network::cut_links(shape, &ids, &isolated, rng);
    network::cut(nemesis, "partition", links, duration);
}
