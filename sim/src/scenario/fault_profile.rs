//! A profile of fault probabilities, as a scenario's `[faults.profile]` writes it: per step (100
//! ms of simulated time) each kind of fault strikes with its own probability, and lasts a time
//! drawn from a range. `Default` injects nothing. `swarm` draws a profile from the seed: each seed
//! turns on its own subset of fault kinds, at its own rates (swarm testing, after TigerBeetle's
//! VOPR). `faults::profile` injects what a profile says.

use std::time::Duration;

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::Dur;

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
    /// The share of packets lost, drawn from this range; within 0 to 1, default `[0.01, 0.2]`.
    pub packet_loss_rate: [f64; 2],
    /// Message latency rises to `latency_spike`.
    pub latency_probability: f64,
    /// The spike's highest latency, drawn from this range; messages then take from half of it to
    /// all of it. Needs `0 < min < max`; default `["20ms", "300ms"]`.
    pub latency_spike: [Dur; 2],
    /// A broker's clock steps by up to `clock_step_max`, forwards or back.
    pub clock_skew_probability: f64,
    /// The largest clock step, either way; default `10s`.
    pub clock_step_max: Dur,
    /// A broker's clock drifts by up to `clock_drift_ppm_max`, fast or slow.
    pub clock_drift_probability: f64,
    /// The largest drift, in parts per million, either way; 0 to 1000000, default 100000.
    pub clock_drift_ppm_max: i64,
    /// A broker's disk fills up.
    pub disk_full_probability: f64,
    /// A broker's syncs take `disk_slow_delay`.
    pub disk_slow_probability: f64,
    /// How long each sync of a slow disk takes, drawn from this range; default `["10ms", "500ms"]`.
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

    /// Whether every probability is 0: the profile injects nothing.
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
