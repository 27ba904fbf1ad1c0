//! Clock faults: a node's clock steps (forwards, or back: a jump back) or drifts. The model's
//! election timeouts, broker sessions and ISR lag read the node's clock, so they feel it.
//! Healing puts the clock back on virtual time, itself a jump.

use std::sync::Arc;
use std::time::Duration;

use model::BrokerId;

use super::Nemesis;
use crate::scenario::FaultKind;

/// Steps `victim`'s clock by `step_ms` milliseconds (back when negative), for `duration` or, when
/// `None`, until the heal.
pub fn skew(nemesis: &Arc<Nemesis>, victim: BrokerId, step_ms: i64, duration: Option<Duration>) {
    nemesis.cluster().clocks[&victim].step(step_ms);
    skewed(nemesis, victim, format!("step {step_ms:+} ms"), duration);
}

/// Makes `victim`'s clock run fast by `ppm` parts per million (slow when negative), for `duration`
/// or, when `None`, until the heal.
pub fn drift(nemesis: &Arc<Nemesis>, victim: BrokerId, ppm: i64, duration: Option<Duration>) {
    nemesis.cluster().clocks[&victim].set_drift_ppm(ppm);
    skewed(nemesis, victim, format!("drift {ppm:+} ppm"), duration);
}

/// Records a clock fault on `victim`, healed by putting its clock back on virtual time.
fn skewed(nemesis: &Arc<Nemesis>, victim: BrokerId, detail: String, duration: Option<Duration>) {
    nemesis.node_fault(
        FaultKind::ClockSkew,
        victim,
        detail,
        |a| &mut a.skewed,
        |c, v| c.clocks[&v].reset(),
        duration,
    );
}
