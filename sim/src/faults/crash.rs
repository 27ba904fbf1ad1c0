//! Process crashes: a broker is killed at a seeded time, loses every byte it had not synced, and
//! restarts after a seeded downtime.
//!
//! Kept recoverable: at most `max_down` brokers are down at once (by default one, so the quorum and
//! an ISR of two survive). Left out for now: graceful shutdowns, pauses, wiped disks, and crashes
//! aimed at a particular role, which the fault-injection work adds.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use madsim::time::{sleep, Instant};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::cluster::Cluster;

/// Options drawn for one run.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CrashOptions {
    /// Pause between crashes, milliseconds, drawn uniformly from [min, max].
    pub interval_ms: (u64, u64),
    /// Downtime of a crashed broker, milliseconds, drawn uniformly from [min, max].
    pub downtime_ms: (u64, u64),
    pub max_down: usize,
}

impl CrashOptions {
    pub fn new(interval_ms: (u64, u64), downtime_ms: (u64, u64), max_down: usize) -> Self {
        assert!(interval_ms.0 <= interval_ms.1 && interval_ms.1 > 0);
        assert!(downtime_ms.0 <= downtime_ms.1);
        CrashOptions {
            interval_ms,
            downtime_ms,
            max_down,
        }
    }
}

/// Crashes and restarts brokers until `until`. Draw order: per crash, the pause before it, the
/// victim among the live brokers, then its downtime.
pub async fn run(cluster: Arc<Mutex<Cluster>>, options: CrashOptions, seed: u64, until: Instant) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    loop {
        let pause = rng.random_range(options.interval_ms.0..=options.interval_ms.1);
        sleep(Duration::from_millis(pause)).await;
        if Instant::now() >= until {
            return;
        }
        let mut c = cluster.lock().unwrap_or_else(|p| p.into_inner());
        let up: Vec<_> = c
            .ids()
            .into_iter()
            .filter(|id| !c.down.contains(id))
            .collect();
        if c.down.len() >= options.max_down || up.is_empty() {
            continue;
        }
        let victim = up[rng.random_range(0..up.len())];
        let downtime = rng.random_range(options.downtime_ms.0..=options.downtime_ms.1);
        c.crash(victim);
        drop(c);
        let cluster = cluster.clone();
        madsim::task::spawn(async move {
            sleep(Duration::from_millis(downtime)).await;
            cluster
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .restart(victim);
        });
    }
}
