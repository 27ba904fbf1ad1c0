//! Striking a scripted timeline (`scenario::timeline`): each fault at its time.
//!
//! Each fault draws what it leaves open (a `random` target, `halves`) from a stream of its own,
//! seeded from the run's seed and the fault's index in the timeline.

use std::sync::Arc;

use madsim::time::{sleep, Instant};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{clock, network, process, profile, storage, Nemesis};
use crate::world::cluster::DiskDamage;
use crate::scenario::{seeds, Fault, FaultKind, Scheduled};

/// Strikes every fault at its time.
///
/// It ticks on the fault profile's step (100 ms), so a timeline read back from a profile's run
/// (see `shrink`) strikes at the same moments, between the same scheduler events, as the
/// profile did; a fault strikes at the first tick at or after its time.
pub async fn run(nemesis: Arc<Nemesis>, faults: Vec<Scheduled>, seed: u64, start: Instant) {
    let mut order: Vec<(usize, Scheduled)> = faults.into_iter().enumerate().collect();
    order.sort_by_key(|(i, f)| (f.at, *i));
    let mut next = 0;
    while next < order.len() {
        sleep(profile::STEP).await;
        if nemesis.is_stopped() {
            return;
        }
        while let Some((index, scheduled)) = order
            .get(next)
            .filter(|(_, f)| start + f.at <= Instant::now())
        {
            let mut rng = ChaCha8Rng::seed_from_u64(seeds::timeline_entry(seed, *index));
            strike(&nemesis, scheduled, &mut rng);
            next += 1;
        }
    }
}

fn strike(nemesis: &Arc<Nemesis>, scheduled: &Scheduled, rng: &mut ChaCha8Rng) {
    let duration = scheduled.duration;
    let victims = || -> Vec<i32> {
        match scheduled.fault.target() {
            Some(target) => target.resolve(&nemesis.cluster(), &mut rng.clone()),
            None => Vec::new(),
        }
    };
    match &scheduled.fault {
        Fault::Crash(_) | Fault::DiskTorn(_) | Fault::DiskCorrupt(_) | Fault::DiskWipe(_) => {
            for victim in victims() {
                let damage = match scheduled.fault {
                    Fault::DiskTorn(_) => DiskDamage::Torn(rng.random()),
                    Fault::DiskCorrupt(_) => DiskDamage::Corrupt(rng.random()),
                    Fault::DiskWipe(_) => DiskDamage::Wipe,
                    _ => DiskDamage::None,
                };
                process::crash(nemesis, victim, damage, duration);
            }
        }
        Fault::Shutdown(_) => victims()
            .into_iter()
            .for_each(|v| process::shutdown(nemesis, v, duration)),
        Fault::Pause(_) => victims()
            .into_iter()
            .for_each(|v| process::pause(nemesis, v, duration)),
        Fault::AllDown => process::all_down(nemesis, duration.unwrap_or_default()),
        Fault::Partition(shape) => profile::partition(nemesis, shape, rng, duration),
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
            network::cut(nemesis, FaultKind::Clog, vec![link], duration);
        }
        Fault::PacketLoss { rate } => network::packet_loss(nemesis, *rate, duration),
        Fault::Latency { min, max } => network::latency(nemesis, *min..*max, duration),
        Fault::ClockSkew { step_ms, .. } => victims()
            .into_iter()
            .for_each(|v| clock::skew(nemesis, v, *step_ms, duration)),
        Fault::ClockDrift { ppm, .. } => victims()
            .into_iter()
            .for_each(|v| clock::drift(nemesis, v, *ppm, duration)),
        Fault::DiskFull(_) => victims()
            .into_iter()
            .for_each(|v| storage::full(nemesis, v, duration)),
        Fault::DiskSlow { delay, .. } => victims()
            .into_iter()
            .for_each(|v| storage::slow(nemesis, v, *delay, duration)),
    }
}
