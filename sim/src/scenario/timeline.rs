//! A scripted timeline of faults. In Rust, a [`Fault`] scheduled [`at`](Fault::at) a time into the
//! load phase, for a while or until the heal:
//!
//! ```
//! # #[cfg(madsim)] {
//! use std::time::Duration;
//! use logsim::scenario::{Fault, Target};
//!
//! let crash = Fault::Crash(Target::Broker(2)).at(Duration::from_secs(5)).lasting(Duration::from_secs(3));
//! assert_eq!(crash.duration, Some(Duration::from_secs(3)));
//! # }
//! ```
//!
//! and as a scenario file writes the same:
//!
//! ```toml
//! [[faults.timeline]]
//! at = "5s"
//! kind = "crash"
//! target = "broker:2"
//! duration = "3s"      # down for 3 s; without it, until the heal
//! ```
//!
//! The file's form ([`Entry`]) is read into the typed one, and written back from it, so a shrunk
//! schedule is a file that replays. `faults::timeline` strikes each fault at its time.

use std::time::Duration;

use model::BrokerId;
use serde::{Deserialize, Serialize};

use super::target::BrokerIds;
use super::{parse_offset, Dur, Shape, Target};

/// A fault a timeline schedules, with what it needs to strike.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The brokers crash, losing what they had not synced, and restart when the fault ends.
    Crash(Target),
    /// A crash that tears the last unsynced write of each broker's log.
    DiskTorn(Target),
    /// A crash after which a bit has flipped at rest in a synced segment.
    DiskCorrupt(Target),
    /// A crash that loses the brokers' data directories.
    DiskWipe(Target),
    /// The brokers shut down cleanly, and start again when the fault ends.
    Shutdown(Target),
    /// The brokers freeze: no task of theirs runs until the fault ends.
    Pause(Target),
    /// Every broker crashes; a majority returns after the fault's duration, the rest after twice
    /// that.
    AllDown,
    /// Links between brokers are cut, as the shape says.
    Partition(Shape),
    /// One one-way link queues its bytes until the fault ends; a random link when `None`.
    Clog(Option<(BrokerId, BrokerId)>),
    /// Every link loses this share of its packets.
    PacketLoss {
        /// The share lost, from 0 to 1.
        rate: f64,
    },
    /// Every message takes from `min` to `max`.
    Latency {
        /// The least time a message takes; more than zero.
        min: Duration,
        /// The most time a message takes; more than `min`.
        max: Duration,
    },
    /// The brokers' clocks step by `step_ms` (back when negative).
    ClockSkew {
        /// The brokers whose clocks step.
        target: Target,
        /// The step, in milliseconds; negative steps back.
        step_ms: i64,
    },
    /// The brokers' clocks run fast (or slow, when negative) by `ppm` parts per million.
    ClockDrift {
        /// The brokers whose clocks drift.
        target: Target,
        /// The drift, in parts per million; -1000000 to 1000000.
        ppm: i64,
    },
    /// The brokers' disks refuse writes as full.
    DiskFull(Target),
    /// Each sync of the brokers' disks takes `delay`.
    DiskSlow {
        /// The brokers whose disks slow.
        target: Target,
        /// How long each sync takes.
        delay: Duration,
    },
}

/// A fault at a time into the load phase (from the run's start), for `duration` or, without one,
/// until every fault heals at the end of the load.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Entry", into = "Entry")]
pub struct Scheduled {
    /// When it strikes, from the run's start; at most the load phase's length. It strikes at the
    /// first 100 ms step at or after this time.
    pub at: Duration,
    /// How long it lasts; `None`: until the heal at the end of the load phase.
    pub duration: Option<Duration>,
    /// What strikes.
    pub fault: Fault,
    /// `disk-torn` and `disk-corrupt`: which write tears, which bit flips; drawn when `None`. A
    /// run's own record of what it struck keeps the drawn value, so that it replays exactly.
    pub seed: Option<u64>,
}

/// The target of a fault that aims at brokers, by reference or by mutable reference.
macro_rules! aimed {
    ($fault:expr) => {
        match $fault {
            Fault::Crash(t)
            | Fault::DiskTorn(t)
            | Fault::DiskCorrupt(t)
            | Fault::DiskWipe(t)
            | Fault::Shutdown(t)
            | Fault::Pause(t)
            | Fault::DiskFull(t)
            | Fault::ClockSkew { target: t, .. }
            | Fault::ClockDrift { target: t, .. }
            | Fault::DiskSlow { target: t, .. } => Some(t),
            Fault::AllDown
            | Fault::Partition(_)
            | Fault::Clog(_)
            | Fault::PacketLoss { .. }
            | Fault::Latency { .. } => None,
        }
    };
}

impl Fault {
    /// This fault, struck `at` into the load phase and lasting until the heal.
    pub fn at(self, at: Duration) -> Scheduled {
        Scheduled {
            at,
            duration: None,
            fault: self,
            seed: None,
        }
    }

    /// The brokers it strikes, for the faults that aim at brokers.
    pub fn target(&self) -> Option<&Target> {
        aimed!(self)
    }

    /// The same, to aim the fault elsewhere.
    pub fn target_mut(&mut self) -> Option<&mut Target> {
        aimed!(self)
    }

    fn kind(&self) -> Kind {
        match self {
            Fault::Crash(_) => Kind::Crash,
            Fault::DiskTorn(_) => Kind::DiskTorn,
            Fault::DiskCorrupt(_) => Kind::DiskCorrupt,
            Fault::DiskWipe(_) => Kind::DiskWipe,
            Fault::Shutdown(_) => Kind::Shutdown,
            Fault::Pause(_) => Kind::Pause,
            Fault::AllDown => Kind::AllDown,
            Fault::Partition(_) => Kind::Partition,
            Fault::Clog(_) => Kind::Clog,
            Fault::PacketLoss { .. } => Kind::PacketLoss,
            Fault::Latency { .. } => Kind::Latency,
            Fault::ClockSkew { .. } => Kind::ClockSkew,
            Fault::ClockDrift { .. } => Kind::ClockDrift,
            Fault::DiskFull(_) => Kind::DiskFull,
            Fault::DiskSlow { .. } => Kind::DiskSlow,
        }
    }
}

impl Scheduled {
    /// The same fault, healed `duration` after it strikes.
    pub fn lasting(mut self, duration: Duration) -> Scheduled {
        self.duration = Some(duration);
        self
    }

    /// Checks the fault against the scenario: its brokers and partitions exist, and it strikes
    /// within the load phase. The error names the offending field.
    pub fn validate(
        &self,
        brokers: BrokerIds,
        topics: &[(String, i32)],
        load: Duration,
    ) -> Result<(), (&'static str, String)> {
        if self.at > load {
            return Err((
                "at",
                format!(
                    "at = {:?}: after the load phase ends ({load:?}); faults stop there",
                    self.at
                ),
            ));
        }
        let exists = |b: &BrokerId| brokers.check(*b).map_err(|e| ("target", e));
        match &self.fault {
            Fault::AllDown if self.duration.is_none() => Err((
                "duration",
                "a AllDown fault needs `duration`".to_owned(),
            )),
            Fault::Partition(Shape::Groups(groups)) => groups.iter().flatten().try_for_each(exists),
            Fault::Partition(Shape::Links(links)) => {
                links.iter().flat_map(|(a, b)| [a, b]).try_for_each(exists)
            }
            Fault::Partition(Shape::Isolate(t) | Shape::OffController(t)) => {
                t.validate(brokers, topics).map_err(|e| ("target", e))
            }
            Fault::Clog(Some((a, b))) => [a, b].into_iter().try_for_each(exists),
            fault => match fault.target() {
                Some(t) => t.validate(brokers, topics).map_err(|e| ("target", e)),
                None => Ok(()),
            },
        }
    }
}

/// The `kind` of a timeline entry, as files name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// `crash`: [`Fault::Crash`].
    Crash,
    /// `shutdown`: [`Fault::Shutdown`].
    Shutdown,
    /// `pause`: [`Fault::Pause`].
    Pause,
    /// `all-down`: [`Fault::AllDown`]; needs `duration`.
    AllDown,
    /// `partition`: [`Fault::Partition`]; `target` is a shape, `halves` when absent.
    Partition,
    /// `clog`: [`Fault::Clog`]; `target` is a link `FROM->TO`, a random one when absent.
    Clog,
    /// `packet-loss`: [`Fault::PacketLoss`]; needs `rate`.
    PacketLoss,
    /// `latency`: [`Fault::Latency`]; needs `latency`.
    Latency,
    /// `clock-skew`: [`Fault::ClockSkew`]; needs `offset`.
    ClockSkew,
    /// `clock-drift`: [`Fault::ClockDrift`]; needs `drift_ppm`.
    ClockDrift,
    /// `disk-full`: [`Fault::DiskFull`].
    DiskFull,
    /// `disk-slow`: [`Fault::DiskSlow`]; needs `delay`.
    DiskSlow,
    /// `disk-torn`: [`Fault::DiskTorn`].
    DiskTorn,
    /// `disk-corrupt`: [`Fault::DiskCorrupt`].
    DiskCorrupt,
    /// `disk-wipe`: [`Fault::DiskWipe`].
    DiskWipe,
}

/// A timeline entry as a scenario file writes it: each kind takes the keys it needs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// When it strikes, from the run's start; at most `run.duration`.
    pub at: Dur,
    /// Which fault.
    pub kind: Kind,
    /// Who it strikes: a target for process, clock and disk faults; a shape for `partition`;
    /// `FROM->TO` for `clog`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// How long it lasts; absent: until the heal at the end of the load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<Dur>,
    /// `packet-loss`: the share of packets lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// `latency`: the range each message takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<[Dur; 2]>,
    /// `clock-skew`: the step, `"-5s"` for a jump back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// `clock-drift`: parts per million, negative for a slow clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift_ppm: Option<i64>,
    /// `disk-slow`: how long each sync takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<Dur>,
    /// `disk-torn`, `disk-corrupt`: which write tears or which bit flips (drawn when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
}

/// Parses a one-way link, `2->3`, as a clog's target (and its trace line) writes it.
pub fn parse_link(text: &str) -> Option<(BrokerId, BrokerId)> {
    let (a, b) = text.split_once("->")?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

impl Entry {
    /// The typed fault, or the key at fault and what was expected of it.
    pub fn fault(&self) -> Result<Fault, (&'static str, String)> {
        let needs = |field: &'static str| (field, format!("a {:?} fault needs `{field}`", self.kind));
        let target = || -> Result<Target, (&'static str, String)> {
            let text = self.target.as_deref().unwrap_or("random");
            text.parse().map_err(|e| ("target", e))
        };
        Ok(match self.kind {
            Kind::Crash => Fault::Crash(target()?),
            Kind::DiskTorn => Fault::DiskTorn(target()?),
            Kind::DiskCorrupt => Fault::DiskCorrupt(target()?),
            Kind::DiskWipe => Fault::DiskWipe(target()?),
            Kind::Shutdown => Fault::Shutdown(target()?),
            Kind::Pause => Fault::Pause(target()?),
            Kind::DiskFull => Fault::DiskFull(target()?),
            Kind::AllDown => {
                self.duration.ok_or_else(|| needs("duration"))?;
                Fault::AllDown
            }
            Kind::Partition => {
                let shape = self.target.as_deref().unwrap_or("halves");
                Fault::Partition(shape.parse().map_err(|e| ("target", e))?)
            }
            Kind::Clog => Fault::Clog(match &self.target {
                None => None,
                Some(t) => Some(parse_link(t).ok_or((
                    "target",
                    format!("`{t}` is not a link: expected FROM->TO, like 1->2"),
                ))?),
            }),
            Kind::PacketLoss => {
                let rate = self.rate.ok_or_else(|| needs("rate"))?;
                if !(0.0..=1.0).contains(&rate) {
                    return Err(("rate", "rate: expected a share from 0 to 1".into()));
                }
                Fault::PacketLoss { rate }
            }
            Kind::Latency => {
                let [min, max] = self.latency.ok_or((
                    "latency",
                    "a latency fault needs `latency = [min, max]`".to_owned(),
                ))?;
                if min.0.is_zero() || min >= max {
                    return Err((
                        "latency",
                        "latency: expected [min, max] with 0 < min < max".into(),
                    ));
                }
                Fault::Latency {
                    min: min.0,
                    max: max.0,
                }
            }
            Kind::ClockSkew => {
                let offset = self.offset.as_deref().ok_or((
                    "offset",
                    "a clock-skew fault needs `offset`, like \"-5s\"".to_owned(),
                ))?;
                let step_ms = parse_offset(offset).map_err(|e| ("offset", e))?;
                Fault::ClockSkew {
                    target: target()?,
                    step_ms,
                }
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
                Fault::ClockDrift {
                    target: target()?,
                    ppm,
                }
            }
            Kind::DiskSlow => {
                let delay = self.delay.ok_or_else(|| needs("delay"))?.0;
                Fault::DiskSlow {
                    target: target()?,
                    delay,
                }
            }
        })
    }
}

impl TryFrom<Entry> for Scheduled {
    type Error = String;

    fn try_from(entry: Entry) -> Result<Self, String> {
        Ok(Scheduled {
            at: entry.at.0,
            duration: entry.duration.map(|d| d.0),
            fault: entry.fault().map_err(|(_, message)| message)?,
            seed: entry.seed,
        })
    }
}

impl From<Scheduled> for Entry {
    fn from(s: Scheduled) -> Entry {
        let mut e = Entry {
            at: Dur(s.at),
            kind: s.fault.kind(),
            target: s.fault.target().map(Target::to_string),
            duration: s.duration.map(Dur),
            rate: None,
            latency: None,
            offset: None,
            drift_ppm: None,
            delay: None,
            seed: s.seed,
        };
        match s.fault {
            Fault::Partition(shape) => e.target = Some(shape.to_string()),
            Fault::Clog(link) => e.target = link.map(|(a, b)| format!("{a}->{b}")),
            Fault::PacketLoss { rate } => e.rate = Some(rate),
            Fault::Latency { min, max } => e.latency = Some([Dur(min), Dur(max)]),
            Fault::ClockSkew { step_ms, .. } => e.offset = Some(format!("{step_ms}ms")),
            Fault::ClockDrift { ppm, .. } => e.drift_ppm = Some(ppm),
            Fault::DiskSlow { delay, .. } => e.delay = Some(Dur(delay)),
            _ => {}
        }
        e
    }
}

/// Just the timeline of a scenario file, read again to say where a bad entry is: the typed read
/// of the whole file knows what is wrong with an entry, but not on which line.
#[derive(Deserialize)]
struct TimelineOnly {
    #[serde(default)]
    faults: FaultsOnly,
}

#[derive(Default, Deserialize)]
struct FaultsOnly {
    #[serde(default)]
    timeline: Vec<Entry>,
}

/// The first entry of the file's timeline that does not make a fault: which one (from 0), the
/// key at fault and the message.
pub(super) fn first_bad_entry(text: &str) -> Option<(usize, &'static str, String)> {
    let file: TimelineOnly = toml::from_str(text).ok()?;
    file.faults
        .timeline
        .iter()
        .enumerate()
        .find_map(|(nth, e)| e.fault().err().map(|(key, message)| (nth, key, message)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: BrokerIds = BrokerIds {
        count: 3,
        mirrored: false,
    };

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn every_fault_survives_the_file_form() {
        let target = || Target::Broker(2);
        let faults = [
            Fault::Crash(target()),
            Fault::DiskTorn(Target::Leader(None)),
            Fault::DiskCorrupt(target()),
            Fault::DiskWipe(Target::Random),
            Fault::Shutdown(Target::Controller),
            Fault::Pause(Target::All),
            Fault::AllDown,
            Fault::Partition("1,2|3".parse().unwrap()),
            Fault::Clog(Some((1, 3))),
            Fault::Clog(None),
            Fault::PacketLoss { rate: 0.25 },
            Fault::Latency {
                min: Duration::from_millis(20),
                max: Duration::from_millis(300),
            },
            // A swarm's latency spike of 77 ms runs from half of it: a file that wrote 38 ms
            // replayed another run, and a shrunk finding passed.
            Fault::Latency {
                min: Duration::from_micros(38_500),
                max: Duration::from_millis(77),
            },
            Fault::ClockSkew {
                target: target(),
                step_ms: -7_000,
            },
            Fault::ClockDrift {
                target: target(),
                ppm: 50_000,
            },
            Fault::DiskFull(target()),
            Fault::DiskSlow {
                target: target(),
                delay: Duration::from_millis(250),
            },
        ];
        for fault in faults {
            let scheduled = fault.at(secs(5)).lasting(Duration::from_micros(3_000_250));
            let text = toml::to_string(&Entry::from(scheduled.clone())).unwrap();
            let back: Scheduled = toml::from_str(&text).unwrap();
            assert_eq!(back, scheduled, "{text}");
        }
    }

    #[test]
    fn an_entry_without_what_its_kind_needs_names_the_key() {
        let entry = |text: &str| -> Entry { toml::from_str(text).unwrap() };
        let e = entry("at = \"1s\"\nkind = \"packet-loss\"\n").fault().unwrap_err();
        assert_eq!(e, ("rate", "a PacketLoss fault needs `rate`".into()));
        let e = entry("at = \"1s\"\nkind = \"clog\"\ntarget = \"1-2\"\n").fault().unwrap_err();
        assert_eq!(e.0, "target");
        let e = entry("at = \"1s\"\nkind = \"clock-skew\"\noffset = \"soon\"\n").fault().unwrap_err();
        assert_eq!(e.0, "offset");
        let fault = entry("at = \"1s\"\nkind = \"crash\"\n").fault();
        assert_eq!(fault, Ok(Fault::Crash(Target::Random)), "random when no target is named");
    }

    #[test]
    fn a_fault_aimed_at_what_does_not_exist_is_refused() {
        let topics = [("events".to_owned(), 3)];
        let check = |fault: Fault| fault.at(secs(1)).validate(THREE, &topics, secs(60));
        assert!(check(Fault::Crash(Target::Broker(3))).is_ok());
        assert_eq!(check(Fault::Crash(Target::Broker(4))).unwrap_err().0, "target");
        assert!(check(Fault::Partition("1,2|4".parse().unwrap())).is_err());
        assert!(check(Fault::Clog(Some((1, 9)))).is_err());
        let leader = Target::Leader(Some(model::TopicPartition::new("events", 3)));
        assert!(check(Fault::Pause(leader)).is_err());
        let late = Fault::AllDown.at(secs(61)).lasting(secs(1));
        assert_eq!(late.validate(THREE, &topics, secs(60)).unwrap_err().0, "at");
        let endless = Fault::AllDown.at(secs(1)).validate(THREE, &topics, secs(60));
        assert_eq!(endless.unwrap_err().0, "duration", "all down needs a time to come back");
    }
}
