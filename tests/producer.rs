//! Kafka's producer against a cluster whose leaders crash: each record is its own send in the
//! history, a partition's acknowledgements of one producer come in offset order, batches carry
//! several records, and only the exact one-shot settings bring back the one-shot client.

use std::collections::BTreeMap;
use std::path::Path;

use logsim::record::history::{Op, OpFn, OpType};
use logsim::run::run;
use logsim::scenario::Scenario;
use logsim::world::workload::producer_config;

fn shipped(name: &str) -> Scenario {
    let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    Scenario::load(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"))
}

/// Each producer's acknowledged sends, by (process, partition), in history order: (offset, time).
fn acknowledged(history: &[Op]) -> BTreeMap<(u64, String), Vec<(i64, u64)>> {
    let mut acked: BTreeMap<(u64, String), Vec<(i64, u64)>> = BTreeMap::new();
    for op in history {
        if (op.f, op.kind) != (OpFn::Send, OpType::Ok) {
            continue;
        }
        let key = op.key.as_deref().expect("a send's key").to_owned();
        let at = (
            op.offset.expect("an ok send's offset"),
            op.time_ms.unwrap_or(0),
        );
        acked.entry((op.process, key)).or_default().push(at);
    }
    acked
}

#[test]
fn given_leader_crashes_a_partitions_acknowledgements_of_one_producer_come_in_offset_order() {
    let scenario = shipped("leader-crash");
    assert!(producer_config(&scenario.workload).is_some_and(|c| c.idempotence));
    for seed in [1, 2] {
        let out = run(&scenario, seed, false);
        assert!(
            out.report.pass,
            "seed {seed}: {:?}",
            out.report.violations.first()
        );
        assert!(
            out.report.crashes > 0 && out.report.acked > 0,
            "seed {seed}"
        );
        let acked = acknowledged(&out.history);
        let mut batched = 0;
        for ((process, key), sends) in &acked {
            for pair in sends.windows(2) {
                assert!(
                    pair[0].0 < pair[1].0,
                    "seed {seed}: process {process} on {key}: offset {} acknowledged after {}",
                    pair[1].0,
                    pair[0].0
                );
                // Records of one batch are acknowledged together, at consecutive offsets.
                batched += usize::from(pair[1] == (pair[0].0 + 1, pair[0].1));
            }
        }
        assert!(batched > 0, "seed {seed}: no batch carried two records");
        // Several sends of one process were outstanding at once.
        let mut open: BTreeMap<u64, i64> = BTreeMap::new();
        let mut most = 0;
        for op in out.history.iter().filter(|op| op.f == OpFn::Send) {
            let n = open.entry(op.process).or_default();
            *n += if op.kind == OpType::Invoke { 1 } else { -1 };
            most = most.max(*n);
        }
        assert!(
            most > 1,
            "seed {seed}: sends were never outstanding together"
        );
    }
}

#[test]
fn only_the_exact_one_shot_settings_bring_back_the_one_shot_client() {
    let mut w = Scenario::default().workload;
    assert!(producer_config(&w).is_some());
    w.retries = 0;
    w.idempotence = Some(false);
    w.max_in_flight = 1;
    assert!(producer_config(&w).is_none(), "linger is already 0ms");
    w.max_in_flight = 2;
    assert!(producer_config(&w).is_some());
    for name in ["default", "everything", "activity-tracking", "messaging"] {
        assert!(producer_config(&shipped(name).workload).is_some(), "{name}");
    }
    assert!(producer_config(&shipped("metrics-logs").workload).is_none());
}
