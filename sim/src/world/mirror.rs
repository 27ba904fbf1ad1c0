//! Runs MirrorMaker (`model::mirror`) on its own node between the scenario's cluster and the
//! target cluster, restarting it at seeded times, and keeps what it reports for the checks.

use crate::record::journal::{HarnessEvent, Journal};
use crate::scenario::FaultKind;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use model::sync::Lock;
use std::time::Duration;

use madsim::time::Instant;
use model::mirror::{MirrorConfig, MirrorSink};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::scenario::Mirror;
use crate::world::workload::Workload;

/// What MirrorMaker reported in a run.
#[derive(Default, Debug)]
pub struct MirrorRecord {
    /// (group, partition) -> its latest checkpoint: (committed source offset, target offset).
    pub checkpoints: BTreeMap<(String, i32), (i64, i64)>,
}

/// MirrorMaker's sink: each checkpoint goes into the run's record.
pub struct Recorder(pub Arc<Lock<MirrorRecord>>);

impl MirrorSink for Recorder {
    fn checkpoint(&self, group: &str, partition: i32, source_offset: i64, target_offset: i64) {
        self.0.lock().checkpoints.insert(
            (group.to_owned(), partition),
            (source_offset, target_offset),
        );
    }
}

/// MirrorMaker until the consumers stop, restarting after times drawn from `spec.restarts`.
pub async fn run(
    w: Workload,
    spec: Mirror,
    config: MirrorConfig,
    record: Arc<Lock<MirrorRecord>>,
    seed: u64,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let draw = |rng: &mut ChaCha8Rng| {
        spec.restarts.map(|[lo, hi]| {
            Instant::now() + Duration::from_millis(rng.random_range(lo.ms()..=hi.ms()))
        })
    };
    let sink = Recorder(record);
    let stop = || w.stop_consumers.load(Ordering::Relaxed);
    loop {
        let at = draw(&mut rng);
        let mut restart = || at.is_some_and(|at| Instant::now() >= at);
        if !model::mirror::run(&config, &sink, &stop, &mut restart).await {
            return;
        }
    }
}

/// Cuts the WAN link, both ways between MirrorMaker's node and every source broker, at times
/// drawn from `spec.wan_partitions` and for times drawn from `spec.wan_outage`, until `until`.
/// Traced as a `partition` fault of target `wan`.
pub async fn wan_faults(
    spec: Mirror,
    mirror: madsim::task::NodeId,
    source: Vec<madsim::task::NodeId>,
    journal: Arc<dyn Journal>,
    until: Instant,
    seed: u64,
) {
    let Some([lo, hi]) = spec.wan_partitions else {
        return;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let [short, long] = spec.wan_outage;
    loop {
        let wait = Duration::from_millis(rng.random_range(lo.ms()..=hi.ms()));
        let outage = Duration::from_millis(rng.random_range(short.ms()..=long.ms()));
        if Instant::now() + wait + outage >= until {
            return;
        }
        madsim::time::sleep(wait).await;
        let net = madsim::net::NetSim::current();
        for b in &source {
            net.clog_link(mirror, *b);
            net.clog_link(*b, mirror);
        }
        let detail = format!("for {} ms", outage.as_millis());
        journal.harness(-1, HarnessEvent::fault(FaultKind::Partition, "wan", detail));
        madsim::time::sleep(outage).await;
        for b in &source {
            net.unclog_link(mirror, *b);
            net.unclog_link(*b, mirror);
        }
        journal.harness(-1, HarnessEvent::heal(FaultKind::Partition, "wan"));
    }
}
