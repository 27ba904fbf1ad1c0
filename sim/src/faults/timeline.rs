//! A scripted timeline of faults, as a scenario file writes it:
//!
//! ```toml
//! [[faults.timeline]]
//! at = "12.5s"
//! kind = "crash"
//! target = "leader:events-0"
//! duration = "5s"      # down for 5 s; without it, until the heal
//! ```
//!
//! Each entry draws what it leaves open (a `random` target, `halves`) from a stream of its own,
//! seeded from the run's seed and the entry's index.

use std::sync::Arc;
use std::time::Duration;

use madsim::time::{sleep, Instant};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::network::{self, Shape};
use super::target::Target;
use super::{clock, process, profile, storage, Nemesis};
use crate::cluster::DiskDamage;
use crate::scenario::{parse_duration, Dur};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Crash,
    Shutdown,
    Pause,
    AllDown,
    Partition,
    Clog,
    PacketLoss,
    Latency,
    ClockSkew,
    ClockDrift,
    DiskFull,
    DiskSlow,
    DiskTorn,
    DiskCorrupt,
    DiskWipe,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub at: Dur,
    pub kind: Kind,
    /// Who it strikes: a target for process, clock and disk faults; a shape for `partition`;
    /// `FROM->TO` for `clog`.
    #[serde(default)]
    pub target: Option<String>,
    /// How long it lasts; absent: until the heal at the end of the load.
    #[serde(default)]
    pub duration: Option<Dur>,
    /// `packet-loss`: the share of packets lost.
    #[serde(default)]
    pub rate: Option<f64>,
    /// `latency`: the range each message takes.
    #[serde(default)]
    pub latency: Option<[Dur; 2]>,
    /// `clock-skew`: the step, `"-5s"` for a jump back.
    #[serde(default)]
    pub offset: Option<String>,
    /// `clock-drift`: parts per million, negative for a slow clock.
    #[serde(default)]
    pub drift_ppm: Option<i64>,
    /// `disk-slow`: how long each sync takes.
    #[serde(default)]
    pub delay: Option<Dur>,
}

/// A signed duration in milliseconds: `"5s"`, `"-250ms"`.
pub fn parse_offset(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, t.strip_prefix('+').unwrap_or(t)),
    };
    Ok(sign * parse_duration(rest)?.as_millis() as i64)
}

/// Parses a one-way link, `2->3`.
fn parse_link(text: &str) -> Option<(i32, i32)> {
    let (a, b) = text.split_once("->")?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

impl Entry {
    fn target(&self) -> Result<Target, String> {
        self.target.as_deref().unwrap_or("random").parse()
    }

    /// Checks the entry against the scenario; the error names the offending field.
    pub fn validate(
        &self,
        brokers: i32,
        topics: &[(String, i32)],
        load: Duration,
    ) -> Result<(), (&'static str, String)> {
        if self.at.0 > load {
            return Err((
                "at",
                format!(
                    "at = {:?}: after the load phase ends ({load:?}); faults stop there",
                    self.at.0
                ),
            ));
        }
        let needs = |field: &'static str, present: bool| {
            if present {
                Ok(())
            } else {
                Err((field, format!("a {:?} fault needs `{field}`", self.kind)))
            }
        };
        match self.kind {
            Kind::Partition => {
                let shape: Shape = self
                    .target
                    .as_deref()
                    .unwrap_or("halves")
                    .parse()
                    .map_err(|e| ("target", e))?;
                let named: Vec<i32> = match &shape {
                    Shape::Groups(g) => g.iter().flatten().copied().collect(),
                    Shape::Links(l) => l.iter().flat_map(|(a, b)| [*a, *b]).collect(),
                    Shape::Isolate(t) | Shape::OffController(t) => {
                        return t.validate(brokers, topics).map_err(|e| ("target", e))
                    }
                    _ => Vec::new(),
                };
                if let Some(b) = named.iter().find(|b| !(1..=brokers).contains(*b)) {
                    return Err((
                        "target",
                        format!("broker {b} does not exist: brokers are 1 to {brokers}"),
                    ));
                }
            }
            Kind::Clog => {
                if let Some(t) = &self.target {
                    let (a, b) = parse_link(t).ok_or((
                        "target",
                        format!("`{t}` is not a link: expected FROM->TO, like 1->2"),
                    ))?;
                    for x in [a, b] {
                        if !(1..=brokers).contains(&x) {
                            return Err((
                                "target",
                                format!("broker {x} does not exist: brokers are 1 to {brokers}"),
                            ));
                        }
                    }
                }
            }
            Kind::AllDown => needs("duration", self.duration.is_some())?,
            Kind::PacketLoss => {
                needs("rate", self.rate.is_some())?;
                if !self.rate.is_some_and(|r| (0.0..=1.0).contains(&r)) {
                    return Err(("rate", "rate: expected a share from 0 to 1".into()));
                }
            }
            Kind::Latency => {
                let [a, b] = self.latency.ok_or((
                    "latency",
                    "a latency fault needs `latency = [min, max]`".to_owned(),
                ))?;
                if a.0.is_zero() || a >= b {
                    return Err((
                        "latency",
                        "latency: expected [min, max] with 0 < min < max".into(),
                    ));
                }
            }
            Kind::ClockSkew => {
                let offset = self.offset.as_deref().ok_or((
                    "offset",
                    "a clock-skew fault needs `offset`, like \"-5s\"".to_owned(),
                ))?;
                parse_offset(offset).map_err(|e| ("offset", e))?;
            }
            Kind::ClockDrift => {
                let ppm = self.drift_ppm.ok_or((
                    "drift_ppm",
                    "a clock-drift fault needs `drift_ppm`".to_owned(),
                ))?;
                if ppm.abs() > 1_000_000 {
                    return Err((
                        "drift_ppm",
                        "drift_ppm: expected -1000000 to 1000000".into(),
                    ));
                }
            }
            Kind::DiskSlow => needs("delay", self.delay.is_some())?,
            _ => {}
        }
        if !matches!(
            self.kind,
            Kind::Partition | Kind::Clog | Kind::AllDown | Kind::PacketLoss | Kind::Latency
        ) {
            self.target()
                .map_err(|e| ("target", e))?
                .validate(brokers, topics)
                .map_err(|e| ("target", e))?;
        }
        Ok(())
    }
}

/// Runs every entry at its time. Validated entries only.
///
/// It ticks on the fault profile's step (100 ms), so a timeline read back from a profile's run
/// (see `shrink`) strikes at the same moments, between the same scheduler events, as the
/// profile did; an entry strikes at the first tick at or after its time.
pub async fn run(nemesis: Arc<Nemesis>, entries: Vec<Entry>, seed: u64, start: Instant) {
    let mut order: Vec<(usize, Entry)> = entries.into_iter().enumerate().collect();
    order.sort_by_key(|(i, e)| (e.at, *i));
    let mut next = 0;
    while next < order.len() {
        sleep(profile::STEP).await;
        if nemesis.is_stopped() {
            return;
        }
        while let Some((index, entry)) = order
            .get(next)
            .filter(|(_, e)| start + e.at.0 <= Instant::now())
        {
            let mut rng = ChaCha8Rng::seed_from_u64(
                seed ^ (*index as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
            );
            strike(&nemesis, entry, &mut rng);
            next += 1;
        }
    }
}

fn strike(nemesis: &Arc<Nemesis>, e: &Entry, rng: &mut ChaCha8Rng) {
    let duration = e.duration.map(|d| d.0);
    let victims = || -> Vec<i32> {
        let target = e.target().expect("validated");
        target.resolve(&nemesis.cluster(), &mut rng.clone())
    };
    match e.kind {
        Kind::Crash | Kind::DiskTorn | Kind::DiskCorrupt | Kind::DiskWipe => {
            for victim in victims() {
                let damage = match e.kind {
                    Kind::DiskTorn => DiskDamage::Torn(rng.random()),
                    Kind::DiskCorrupt => DiskDamage::Corrupt(rng.random()),
                    Kind::DiskWipe => DiskDamage::Wipe,
                    _ => DiskDamage::None,
                };
                process::crash(nemesis, victim, damage, duration);
            }
        }
        Kind::Shutdown => victims()
            .into_iter()
            .for_each(|v| process::shutdown(nemesis, v, duration)),
        Kind::Pause => victims()
            .into_iter()
            .for_each(|v| process::pause(nemesis, v, duration)),
        Kind::AllDown => process::all_down(nemesis, duration.expect("validated")),
        Kind::Partition => {
            let shape: Shape = e
                .target
                .as_deref()
                .unwrap_or("halves")
                .parse()
                .expect("validated");
            profile::partition(nemesis, &shape, rng, duration);
        }
        Kind::Clog => {
            let link = match e.target.as_deref().and_then(parse_link) {
                Some(link) => link,
                None => {
                    let ids = nemesis.cluster().ids();
                    let from = ids[rng.random_range(0..ids.len())];
                    let to =
                        ids[(ids.iter().position(|b| *b == from).unwrap_or(0) + 1) % ids.len()];
                    (from, to)
                }
            };
            network::cut(nemesis, "clog", vec![link], duration);
        }
        Kind::PacketLoss => network::packet_loss(nemesis, e.rate.expect("validated"), duration),
        Kind::Latency => {
            let [a, b] = e.latency.expect("validated");
            network::latency(nemesis, a.0..b.0, duration);
        }
        Kind::ClockSkew => {
            let step = parse_offset(e.offset.as_deref().expect("validated")).expect("validated");
            victims()
                .into_iter()
                .for_each(|v| clock::skew(nemesis, v, step, duration));
        }
        Kind::ClockDrift => {
            let ppm = e.drift_ppm.expect("validated");
            victims()
                .into_iter()
                .for_each(|v| clock::drift(nemesis, v, ppm, duration));
        }
        Kind::DiskFull => victims()
            .into_iter()
            .for_each(|v| storage::full(nemesis, v, duration)),
        Kind::DiskSlow => {
            let delay = e.delay.expect("validated").0;
            victims()
                .into_iter()
                .for_each(|v| storage::slow(nemesis, v, delay, duration));
        }
    }
}
