//! Disk faults on a running broker: a full disk (appends and checkpoint writes fail, so the broker
//! must refuse writes rather than acknowledge them) and a slow sync. Lost unsynced bytes, torn
//! writes, bit flips at rest and wiped data directories strike at a crash (see `process`).

use std::sync::Arc;
use std::time::Duration;

use model::BrokerId;

use super::Nemesis;
use crate::observer::HarnessEvent;

pub fn full(nemesis: &Arc<Nemesis>, victim: BrokerId, duration: Option<Duration>) {
    nemesis.cluster().disks[&victim].set_full(true);
    nemesis.active().full.insert(victim);
    nemesis.trace(
        victim,
        HarnessEvent::fault("disk-full", victim, String::new()),
    );
    if let Some(duration) = duration {
        nemesis.heal_later(duration, move |n| {
            n.cluster().disks[&victim].set_full(false);
            n.active().full.remove(&victim);
            n.trace(victim, HarnessEvent::heal("disk-full", victim));
        });
    }
}

pub fn slow(nemesis: &Arc<Nemesis>, victim: BrokerId, delay: Duration, duration: Option<Duration>) {
    nemesis.cluster().disks[&victim].set_sync_delay(delay);
    nemesis.active().slow.insert(victim);
    nemesis.trace(
        victim,
        HarnessEvent::fault("disk-slow", victim, format!("sync takes {delay:?}")),
    );
    if let Some(duration) = duration {
        nemesis.heal_later(duration, move |n| {
            n.cluster().disks[&victim].set_sync_delay(Duration::ZERO);
            n.active().slow.remove(&victim);
            n.trace(victim, HarnessEvent::heal("disk-slow", victim));
        });
    }
}
