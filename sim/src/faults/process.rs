//! Process faults: a crash (kill, losing unsynced bytes, perhaps with damage to the disk) and a
//! restart after a while; a controlled shutdown and restart; a pause (the process freezes, then
//! returns late, to a world that moved on); and every broker down at once, then a majority back
//! before the rest.
//!
//! Kept recoverable: at most `max_down` brokers are down at once (the all-down fault aside, which
//! brings a majority back first), and damage beyond lost unsynced bytes (a torn write is always
//! safe: nothing unsynced was counted) obeys the fault atlas in `cluster::DiskDamage`.

use std::sync::Arc;
use std::time::Duration;

use model::BrokerId;

use super::Nemesis;
use crate::world::cluster::DiskDamage;

/// How long a controlled shutdown may take before the broker is killed.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(10);

/// Crashes `victim`; it restarts after `downtime` (or at the heal when `None`).
pub fn crash(
    nemesis: &Arc<Nemesis>,
    victim: BrokerId,
    damage: DiskDamage,
    downtime: Option<Duration>,
) {
    nemesis.cluster().crash(victim, damage);
    if let Some(downtime) = downtime {
        nemesis.heal_later(downtime, move |n| {
            let calm = n.is_calm();
            n.cluster().restart_with_damage(victim, calm);
        });
    }
}

/// Asks `victim` to shut down cleanly; it restarts after `downtime` (or at the heal).
pub fn shutdown(nemesis: &Arc<Nemesis>, victim: BrokerId, downtime: Option<Duration>) {
    nemesis.cluster().request_shutdown(victim);
    let n = nemesis.clone();
    madsim::task::spawn(async move {
        let deadline = madsim::time::Instant::now() + SHUTDOWN_LIMIT;
        // Another fault (all brokers down, then back) may restart the broker first: the new
        // process is not this shutdown's to stop.
        let restarted = |n: &Arc<Nemesis>| !n.cluster().down.contains(&victim);
        while !n.cluster().has_exited(victim)
            && !restarted(&n)
            && madsim::time::Instant::now() < deadline
        {
            madsim::time::sleep(Duration::from_millis(50)).await;
        }
        if n.is_stopped() || restarted(&n) {
            return;
        }
        n.cluster().finish_shutdown(victim);
        if let Some(downtime) = downtime {
            madsim::time::sleep(downtime).await;
            if !n.is_stopped() {
                n.cluster().restart(victim);
            }
        }
    });
}

/// Freezes `victim` for `duration` (or until the heal).
pub fn pause(nemesis: &Arc<Nemesis>, victim: BrokerId, duration: Option<Duration>) {
    nemesis.cluster().pause(victim);
    if let Some(duration) = duration {
        nemesis.heal_later(duration, move |n| n.cluster().resume(victim));
    }
}

/// Crashes every broker; a majority restarts after `downtime`, the rest after twice that.
pub fn all_down(nemesis: &Arc<Nemesis>, downtime: Duration) {
    let mut cluster = nemesis.cluster();
    let ids = cluster.ids();
    for id in cluster.up() {
        cluster.crash(id, DiskDamage::None);
    }
    drop(cluster);
    let majority: Vec<BrokerId> = ids.iter().copied().take(ids.len() / 2 + 1).collect();
    let rest: Vec<BrokerId> = ids.iter().copied().skip(ids.len() / 2 + 1).collect();
    nemesis.heal_later(downtime, move |n| {
        for id in majority {
            n.cluster().restart(id);
        }
    });
    nemesis.heal_later(downtime * 2, move |n| {
        for id in rest {
            n.cluster().restart(id);
        }
    });
}
