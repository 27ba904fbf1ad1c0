//! Randomized knobs (FoundationDB's knob randomization under BUGGIFY): with `knobs = "swarm"` (or
//! `--knobs swarm`) each seed draws the broker and client settings that change timing, within
//! ranges Kafka allows, so a swarm explores configurations as well as faults. The draw is a
//! function of the seed alone: a replay draws it again, and `shrink` writes it into the shrunk
//! scenario as fixed settings.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{seeds, Dur, Scenario};

/// Where a run's timing settings come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KnobMode {
    /// As the scenario file sets them (or their defaults).
    #[default]
    Scenario,
    /// Drawn from each seed (see [`Knobs::draw`]).
    Swarm,
}

impl KnobMode {
    /// `scenario` or `swarm`, as `--knobs` takes it.
    pub fn parse(text: &str) -> Result<KnobMode, String> {
        match text {
            "scenario" => Ok(KnobMode::Scenario),
            "swarm" => Ok(KnobMode::Swarm),
            other => Err(format!(
                "`{other}` is not a knob mode: expected scenario or swarm"
            )),
        }
    }
}

/// One seed's draw of the settings that change timing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Knobs {
    /// `replica.lag.time.max.ms`.
    pub replica_lag_time_max: Dur,
    /// `broker.session.timeout.ms`.
    pub broker_session_timeout: Dur,
    /// `request.timeout.ms`, on brokers' requests to one another.
    pub request_timeout: Dur,
    /// `replica.fetch.wait.max.ms`.
    pub fetch_max_wait: Dur,
    /// `replica.fetch.max.bytes`.
    pub replica_fetch_max_bytes: u32,
    /// `log.segment.bytes`.
    pub segment_bytes: u32,
    /// How long each fsync takes.
    pub fsync_latency: Dur,
    /// The producers' `linger.ms`; `None` for the one-shot client, whose meaning it would change.
    pub linger: Option<Dur>,
    /// The producers' `batch.size`; `None` for the one-shot client.
    pub batch_size: Option<u32>,
}

fn ms(rng: &mut ChaCha8Rng, low: u64, high: u64) -> Dur {
    Dur(Duration::from_millis(rng.random_range(low..=high)))
}

fn one_of(rng: &mut ChaCha8Rng, choices: &[u32]) -> u32 {
    choices[rng.random_range(0..choices.len())]
}

impl Knobs {
    /// The draw of `seed` for `scenario` (whose client decides whether linger and batch size are
    /// drawn). Ranges are Kafka's rules scaled to a simulated minute, as the defaults are: the
    /// fetch wait stays below half the lag time, so a caught-up follower is never dropped from
    /// the ISR for waiting alone.
    pub fn draw(scenario: &Scenario, seed: u64) -> Knobs {
        let mut rng = ChaCha8Rng::seed_from_u64(seeds::knobs(seed));
        let replica_lag_time_max = ms(&mut rng, 1_000, 10_000);
        let broker_session_timeout = ms(&mut rng, 1_500, 8_000);
        let request_timeout = ms(&mut rng, 1_000, 5_000);
        let fetch_max_wait = ms(&mut rng, 10, (replica_lag_time_max.ms() / 2).min(1_000));
        let replica_fetch_max_bytes = one_of(&mut rng, &[8 << 10, 64 << 10, 256 << 10, 1 << 20]);
        let segment_bytes = one_of(&mut rng, &[16 << 10, 64 << 10, 256 << 10, 1 << 20]);
        let fsync_latency = Dur(Duration::from_micros(rng.random_range(0..=10_000)));
        let kafka_producer = scenario.workload.retries > 0;
        let linger = kafka_producer.then(|| ms(&mut rng, 0, 20));
        let batch_size = kafka_producer.then(|| one_of(&mut rng, &[1 << 10, 4 << 10, 16 << 10, 64 << 10]));
        Knobs {
            replica_lag_time_max,
            broker_session_timeout,
            request_timeout,
            fetch_max_wait,
            replica_fetch_max_bytes,
            segment_bytes,
            fsync_latency,
            linger,
            batch_size,
        }
    }

    /// Writes the draw into `scenario`'s settings.
    pub fn apply(&self, scenario: &mut Scenario) {
        let c = &mut scenario.cluster;
        c.replica_lag_time_max = self.replica_lag_time_max;
        c.broker_session_timeout = self.broker_session_timeout;
        c.request_timeout = self.request_timeout;
        c.fetch_max_wait = self.fetch_max_wait;
        c.replica_fetch_max_bytes = self.replica_fetch_max_bytes;
        c.segment_bytes = self.segment_bytes;
        c.fsync_latency = self.fsync_latency;
        if let Some(linger) = self.linger {
            scenario.workload.linger = linger;
        }
        if let Some(batch_size) = self.batch_size {
            scenario.workload.batch_size = batch_size;
        }
    }
}

impl std::fmt::Display for Knobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = |d: Dur| format!("{:?}", d.0);
        write!(
            f,
            "replica_lag_time_max {}, broker_session_timeout {}, request_timeout {}, fetch_max_wait {}, replica_fetch_max_bytes {}, segment_bytes {}, fsync_latency {}",
            d(self.replica_lag_time_max),
            d(self.broker_session_timeout),
            d(self.request_timeout),
            d(self.fetch_max_wait),
            self.replica_fetch_max_bytes,
            self.segment_bytes,
            d(self.fsync_latency),
        )?;
        if let (Some(linger), Some(batch)) = (self.linger, self.batch_size) {
            write!(f, ", linger {}, batch_size {batch}", d(linger))?;
        }
        Ok(())
    }
}
