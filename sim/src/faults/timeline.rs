//! Striking a scripted timeline (`scenario::timeline`): each fault at its time.
//!
//! Each fault draws what it leaves open (a `random` target, `halves`) from a stream of its own,
//! seeded from the run's seed and the fault's index in the timeline, and is recorded with what it
//! drew (`Nemesis::record`).

use std::sync::Arc;

use madsim::time::Instant;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{clock, network, process, profile, storage, Nemesis};
use crate::world::cluster::DiskDamage;
use crate::scenario::{seeds, Fault, FaultKind, Scheduled, Shape, Target};
use std::time::Duration;

/// A scripted timeline's faults in the order they strike (see `super::inject`).
pub struct Script {
    order: Vec<(usize, Scheduled)>,
    next: usize,
    seed: u64,
}

impl Script {
    /// `faults`, drawing what they leave open from streams of `seed`.
    pub fn new(faults: Vec<Scheduled>, seed: u64) -> Self {
        let mut order: Vec<(usize, Scheduled)> = faults.into_iter().enumerate().collect();
        order.sort_by_key(|(i, f)| (f.at, *i));
        Script {
            order,
            next: 0,
            seed,
        }
    }

    /// Strikes every fault whose time has come: at the first step at or after it.
    pub fn strike_due(&mut self, nemesis: &Arc<Nemesis>, start: Instant, at: Duration) {
        while let Some((index, scheduled)) = (self.order.get(self.next))
            .filter(|(_, f)| start + f.at <= Instant::now())
        {
            let mut rng = ChaCha8Rng::seed_from_u64(seeds::timeline_entry(self.seed, *index));
            strike(nemesis, scheduled, &mut rng, at);
            self.next += 1;
        }
    }
}

fn strike(nemesis: &Arc<Nemesis>, scheduled: &Scheduled, rng: &mut ChaCha8Rng, at: Duration) {
    let duration = scheduled.duration;
    let record = |fault: Fault, seed: Option<u64>| nemesis.record(at, fault, duration, seed);
    let victims = || -> Vec<i32> {
        match scheduled.fault.target() {
            Some(target) => target.resolve(&nemesis.cluster(), &mut rng.clone()),
            None => Vec::new(),
        }
    };
    // The victims of a fault that aims at brokers, each recorded as the fault aimed at it alone.
    let struck = || {
        let victims = victims();
        for v in &victims {
            let mut fault = scheduled.fault.clone();
            if let Some(target) = fault.target_mut() {
                *target = Target::Broker(*v);
            }
            record(fault, None);
        }
        victims
    };
    match &scheduled.fault {
        Fault::Crash(_) | Fault::DiskTorn(_) | Fault::DiskCorrupt(_) | Fault::DiskWipe(_) => {
            for victim in victims() {
                let mut drawn = || scheduled.seed.unwrap_or_else(|| rng.random());
                let damage = match scheduled.fault {
                    Fault::DiskTorn(_) => DiskDamage::Torn(drawn()),
                    Fault::DiskCorrupt(_) => DiskDamage::Corrupt(drawn()),
                    Fault::DiskWipe(_) => DiskDamage::Wipe,
                    _ => DiskDamage::None,
                };
                let (fault, seed) = damage.as_fault(Target::Broker(victim));
                record(fault, seed);
                process::crash(nemesis, victim, damage, duration);
            }
        }
        Fault::Shutdown(_) => (struck().into_iter())
            .for_each(|v| process::shutdown(nemesis, v, duration)),
        Fault::Pause(_) => (struck().into_iter())
            .for_each(|v| process::pause(nemesis, v, duration)),
        Fault::AllDown => {
            record(Fault::AllDown, None);
            process::all_down(nemesis, duration.unwrap_or_default())
        }
        Fault::Partition(shape) => {
            let cut = profile::partition(nemesis, shape, rng, duration);
            if let Some(links) = cut.filter(|l| !l.is_empty()) {
                record(Fault::Partition(Shape::Links(links)), None);
            }
        }
        Fault::Clog(link) => {
            let link = match link {
                Some(link) => *link,
                None => {
                    let ids = nemesis.cluster().ids();
                    let from = ids[rng.random_range(0..ids.len())];
                    let to =
                        ids[(ids.iter().position(|b| *b == from).unwrap_or(0) + 1) % ids.len()];
                    (from, to)
                }
            };
            record(Fault::Clog(Some(link)), None);
            network::cut(nemesis, FaultKind::Clog, vec![link], duration);
        }
        Fault::PacketLoss { rate } => {
            record(scheduled.fault.clone(), None);
            network::packet_loss(nemesis, *rate, duration)
        }
        Fault::Latency { min, max } => {
            record(scheduled.fault.clone(), None);
            network::latency(nemesis, *min..*max, duration)
        }
        Fault::ClockSkew { step_ms, .. } => (struck().into_iter())
            .for_each(|v| clock::skew(nemesis, v, *step_ms, duration)),
        Fault::ClockDrift { ppm, .. } => (struck().into_iter())
            .for_each(|v| clock::drift(nemesis, v, *ppm, duration)),
        Fault::DiskFull(_) => (struck().into_iter())
            .for_each(|v| storage::full(nemesis, v, duration)),
        Fault::DiskSlow { delay, .. } => (struck().into_iter())
            .for_each(|v| storage::slow(nemesis, v, *delay, duration)),
    }
}
