//! Node clocks. madsim has one clock for the whole simulation; each broker reads its own view of
//! it: virtual time, plus an offset, plus a drift in parts per million. Faults (a later issue) step
//! the offset or set the drift; the model only ever sees the result through `Clock::now_ms`.

use std::sync::atomic::{AtomicI64, Ordering};

use madsim::time::Instant;
use model::env::Clock;

/// Node clocks start far from zero so that a step backwards never goes below it.
const EPOCH_MS: i64 = 1_000_000_000;

pub struct NodeClock {
    start: Instant,
    offset_ms: AtomicI64,
    drift_ppm: AtomicI64,
}

impl NodeClock {
    pub fn new() -> Self {
        NodeClock {
            start: Instant::now(),
            offset_ms: AtomicI64::new(0),
            drift_ppm: AtomicI64::new(0),
        }
    }

    pub fn step(&self, delta_ms: i64) {
        self.offset_ms.fetch_add(delta_ms, Ordering::Relaxed);
    }

    pub fn set_drift_ppm(&self, ppm: i64) {
        self.drift_ppm.store(ppm, Ordering::Relaxed);
    }
}

impl Default for NodeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for NodeClock {
    fn now_ms(&self) -> u64 {
        let elapsed = self.start.elapsed().as_millis() as i64;
        let drift = elapsed * self.drift_ppm.load(Ordering::Relaxed) / 1_000_000;
        (EPOCH_MS + elapsed + drift + self.offset_ms.load(Ordering::Relaxed)).max(0) as u64
    }
}
