//! Clock faults: a node's clock steps (forwards, or back: a jump back) or drifts. The model's
//! election timeouts, broker sessions and ISR lag read the node's clock, so they feel it.
//! Healing puts the clock back on virtual time, itself a jump.

use std::sync::Arc;
use std::time::Duration;

use model::BrokerId;

use super::Nemesis;

pub fn skew(nemesis: &Arc<Nemesis>, victim: BrokerId, step_ms: i64, duration: Option<Duration>) {
    nemesis.cluster().clocks[&victim].step(step_ms);
    let detail = format!("step {step_ms:+} ms");
    nemesis.node_fault(
        "clock-skew",
        victim,
        detail,
        |a| &mut a.skewed,
        |c, v| c.clocks[&v].reset(),
        duration,
    );
}

pub fn drift(nemesis: &Arc<Nemesis>, victim: BrokerId, ppm: i64, duration: Option<Duration>) {
    nemesis.cluster().clocks[&victim].set_drift_ppm(ppm);
    let detail = format!("drift {ppm:+} ppm");
    nemesis.node_fault(
        "clock-skew",
        victim,
        detail,
        |a| &mut a.skewed,
        |c, v| c.clocks[&v].reset(),
        duration,
    );
}
