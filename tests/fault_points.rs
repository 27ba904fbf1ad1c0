//! Fault points in the model (BUGGIFY): quiet unless the scenario turns them on; on, they fire,
//! each firing counted as a coverage mark, the run stays the seed's alone, and the correct system
//! still passes, since the quiet period turns them off again.

use std::path::Path;

use logsim::run::run;
use logsim::scenario::Scenario;

fn scenario(buggify: bool) -> Scenario {
    let text = format!(
        "buggify = {buggify}\n[run]\nduration = \"30s\"\nquiet_period = \"15s\"\n[faults.profile]\ncrash_probability = 0.02\ndowntime = [\"1s\", \"4s\"]\nmax_down = 1\n"
    );
    Scenario::parse(Path::new("buggify.toml"), &text).expect("valid")
}

fn fault_point_hits(marks: &std::collections::BTreeMap<&'static str, u64>) -> u64 {
    (marks.iter())
        .filter(|(m, _)| m.starts_with("fault-point-"))
        .map(|(_, n)| n)
        .sum()
}

#[test]
fn fault_points_are_quiet_unless_the_scenario_turns_them_on() {
    for seed in 1..=3 {
        let off = run(&scenario(false), seed, false).report;
        assert!(off.pass, "{:?}", off.violations);
        assert_eq!(fault_point_hits(&off.counters.marks), 0, "seed {seed}");
    }
}

#[test]
fn turned_on_they_fire_as_marks_replay_by_seed_and_the_correct_system_passes() {
    let on = scenario(true);
    let mut fired = 0;
    for seed in 1..=4 {
        let report = run(&on, seed, false).report;
        assert!(report.pass, "seed {seed}: {:?}", report.violations);
        fired += fault_point_hits(&report.counters.marks);
        let again = run(&on, seed, false).report;
        assert_eq!(report.trace_hash, again.trace_hash, "seed {seed} replays");
    }
    assert!(fired > 0, "no fault point fired in four runs");
    assert_ne!(
        run(&on, 1, false).report.trace_hash,
        run(&scenario(false), 1, false).report.trace_hash,
        "the fault points changed nothing"
    );
}

/// A sync that fails leaves what it covered written and not durable; nothing but another try of
/// that sync makes it durable (a retried produce appends nothing, a follower refetches below its
/// unsynced records). Before syncs were tried again, every one of these seeds wedged: replicas
/// that never again caught up with acknowledged offsets after the heal.
#[test]
fn failed_syncs_are_tried_again_so_the_high_watermark_and_followers_move_on() {
    let text = "fault_points = [\"fail-sync\"]\n[workload]\nproducers = 4\nsend_interval = [\"1ms\", \"10ms\"]\n[run]\nduration = \"20s\"\nquiet_period = \"15s\"\n";
    let scenario = Scenario::parse(Path::new("fail-sync.toml"), text).expect("valid");
    for seed in 1..=2 {
        let report = run(&scenario, seed, false).report;
        assert!(report.pass, "seed {seed}: {:?}", report.violations);
        let failed = report.counters.marks.get("fault-point-fail-sync");
        assert!(
            failed > Some(&10),
            "seed {seed}: syncs failed {failed:?} times"
        );
        assert!(report.acked > 1_000, "seed {seed}: {} acked", report.acked);
    }
}
