//! Node clocks. madsim has one clock for the whole simulation; each broker reads its own view of
//! it: virtual time, plus an offset, plus a drift in parts per million. Clock faults step the
//! offset (forwards, or back: a jump back) or set the drift; the model only ever sees the result
//! through `Clock::now_ms`, which its timeouts, sessions and lag checks read.

use model::sync::Lock;

use madsim::time::Instant;
use model::env::Clock;

/// Node clocks start far from zero so that a step backwards never goes below it.
const EPOCH_MS: i64 = 1_000_000_000;

struct Skew {
    offset_ms: i64,
    drift_ppm: i64,
    /// Virtual milliseconds at which the current drift started.
    drift_since_ms: i64,
}

/// One broker's clock: simulated time plus a step and a drift the faults set.
pub struct NodeClock {
    start: Instant,
    skew: Lock<Skew>,
}

impl NodeClock {
    /// A clock that keeps simulated time exactly.
    pub fn new() -> Self {
        NodeClock {
            start: Instant::now(),
            skew: Lock::new(Skew {
                offset_ms: 0,
                drift_ppm: 0,
                drift_since_ms: 0,
            }),
        }
    }

    fn skew(&self) -> model::sync::LockGuard<'_, Skew> {
        self.skew.lock()
    }

    fn virtual_ms(&self) -> i64 {
        (model::env::now() - self.start).as_millis() as i64
    }

    /// Moves the clock by `delta_ms` at once (negative: a jump back).
    pub fn step(&self, delta_ms: i64) {
        self.skew().offset_ms += delta_ms;
    }

    /// Makes the clock run fast (positive) or slow (negative) from now on. What the old drift
    /// gained or lost so far stays.
    pub fn set_drift_ppm(&self, ppm: i64) {
        let now = self.virtual_ms();
        let mut s = self.skew();
        s.offset_ms += (now - s.drift_since_ms) * s.drift_ppm / 1_000_000;
        s.drift_ppm = ppm;
        s.drift_since_ms = now;
    }

    /// Removes every skew: the clock agrees with virtual time again.
    pub fn reset(&self) {
        let mut s = self.skew();
        s.offset_ms = 0;
        s.drift_ppm = 0;
        s.drift_since_ms = 0;
    }

    /// How far this clock is from virtual time, in milliseconds.
    pub fn skew_ms(&self) -> i64 {
        self.now_ms() as i64 - EPOCH_MS - self.virtual_ms()
    }
}

impl Default for NodeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for NodeClock {
    fn now_ms(&self) -> u64 {
        let now = self.virtual_ms();
        let s = self.skew();
        let drift = (now - s.drift_since_ms) * s.drift_ppm / 1_000_000;
        (EPOCH_MS + now + s.offset_ms + drift).max(0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_drift_move_a_node_clock_and_reset_undoes_them() {
        madsim::runtime::Runtime::new().block_on(async {
            let clock = NodeClock::new();
            clock.step(-3_000);
            assert_eq!(clock.skew_ms(), -3_000);
            clock.set_drift_ppm(100_000);
            madsim::time::sleep(std::time::Duration::from_secs(10)).await;
            assert_eq!(clock.skew_ms(), -2_000, "10 s at +10% gains 1 s");
            clock.set_drift_ppm(0);
            madsim::time::sleep(std::time::Duration::from_secs(10)).await;
            assert_eq!(
                clock.skew_ms(),
                -2_000,
                "the gain stays once the drift stops"
            );
            clock.reset();
            assert_eq!(clock.skew_ms(), 0);
        });
    }
}
