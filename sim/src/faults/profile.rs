//! Injecting faults from a profile of probabilities (`scenario::FaultProfile`): every step (100
//! ms of simulated time) each kind of fault strikes with its own probability, aimed at a target
//! drawn at random, and lasts a drawn time.
//!
//! Draw order per step (changing it changes every seed): for each kind in the order of
//! `FaultProfile`'s fields, one roll; only when the roll strikes, its target and then its parameters.

use std::sync::Arc;
use std::time::Duration;

use madsim::time::{sleep, Instant};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::network;
use super::target::pick;
use super::{clock, process, storage, Nemesis};
use crate::cluster::DiskDamage;
use crate::scenario::{Dur, FaultKind, FaultProfile, Shape, Target};

pub const STEP: Duration = Duration::from_millis(100);

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
                    FaultKind::Clog,
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
    network::cut(nemesis, FaultKind::Partition, links, duration);
}
