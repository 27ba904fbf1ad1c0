//! Disk faults on a running broker: a full disk (appends and checkpoint writes fail, so the broker
//! must refuse writes rather than acknowledge them) and a slow sync. Lost unsynced bytes, torn
//! writes, bit flips at rest and wiped data directories strike at a crash (see `process`).

use std::sync::Arc;
use std::time::Duration;

use model::BrokerId;

use super::Nemesis;
use crate::scenario::FaultKind;

/// Fills `victim`'s disk: appends and checkpoint writes fail, for `duration` or, when `None`,
/// until the heal.
pub fn full(nemesis: &Arc<Nemesis>, victim: BrokerId, duration: Option<Duration>) {
    nemesis.cluster().disks[&victim].set_full(true);
    nemesis.node_fault(
        FaultKind::DiskFull,
        victim,
        String::new(),
        |a| &mut a.full,
        |c, v| c.disks[&v].set_full(false),
        duration,
    );
}

/// Makes each sync of `victim`'s disk take `delay`, for `duration` or, when `None`, until the heal.
pub fn slow(nemesis: &Arc<Nemesis>, victim: BrokerId, delay: Duration, duration: Option<Duration>) {
    nemesis.cluster().disks[&victim].set_sync_delay(delay);
    let detail = format!("sync takes {delay:?}");
    let undo = |c: &crate::world::cluster::Cluster, v| c.disks[&v].set_sync_delay(Duration::ZERO);
    nemesis.node_fault(FaultKind::DiskSlow, victim, detail, |a| &mut a.slow, undo, duration);
}
