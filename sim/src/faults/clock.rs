//! Clock faults: a node's clock steps (forwards, or back: a jump back) or drifts. The model's
//! election timeouts, broker sessions and ISR lag read the node's clock, so they feel it.
//! Healing puts the clock back on virtual time, itself a jump.

use std::sync::Arc;
use std::time::Duration;

use model::BrokerId;

use super::Nemesis;
use crate::observer::HarnessEvent;

pub fn skew(nemesis: &Arc<Nemesis>, victim: BrokerId, step_ms: i64, duration: Option<Duration>) {
    nemesis.cluster().clocks[&victim].step(step_ms);
    nemesis.active().skewed.insert(victim);
    nemesis.trace(
        victim,
        HarnessEvent::fault("clock-skew", victim, format!("step {step_ms:+} ms")),
    );
    heal_later(nemesis, victim, duration);
}

pub fn drift(nemesis: &Arc<Nemesis>, victim: BrokerId, ppm: i64, duration: Option<Duration>) {
    nemesis.cluster().clocks[&victim].set_drift_ppm(ppm);
    nemesis.active().skewed.insert(victim);
    nemesis.trace(
        victim,
        HarnessEvent::fault("clock-skew", victim, format!("drift {ppm:+} ppm")),
    );
    heal_later(nemesis, victim, duration);
}

fn heal_later(nemesis: &Arc<Nemesis>, victim: BrokerId, duration: Option<Duration>) {
    if let Some(duration) = duration {
        nemesis.heal_later(duration, move |n| {
            n.cluster().clocks[&victim].reset();
            n.active().skewed.remove(&victim);
            n.trace(victim, HarnessEvent::heal("clock-skew", victim));
        });
    }
}
