//! A wrong replication rule, switched on, is caught; `shrink` brings its failing schedule down to a
//! few faults, and the shrunk scenario replays the failure.

use std::path::Path;

mod shipped;

use logsim::run::run;
use logsim::scenario::Scenario;
use logsim::tools::shrink::{materialize, shrink, with_timeline};

fn with_bug(base: &str) -> Scenario {
    let text = format!("bugs = [\"skip-divergence-check\"]\n{base}");
    let mut s = Scenario::parse(Path::new("bug.toml"), &text).expect("valid");
    // The one-shot client, as the bug's scripted scenario runs it: the catch is judged one
    // acknowledged write at a time.
    s.workload.set_one_shot();
    s
}

#[test]
fn the_correct_system_passes_where_the_planted_bug_fails() {
    let base = "[run]\nduration = \"40s\"\n\n[faults]\nswarm = true\n";
    let mut correct = Scenario::parse(Path::new("ok.toml"), base).unwrap();
    correct.workload.set_one_shot();
    let buggy = with_bug(base);
    let failing: Vec<u64> = (0..6)
        .filter(|s| !run(&buggy, *s, false).report.pass)
        .collect();
    assert!(!failing.is_empty(), "the bug went unnoticed in six seeds");
    for seed in &failing {
        assert!(
            run(&correct, *seed, false).report.pass,
            "seed {seed} fails without the bug too"
        );
    }
}

#[test]
fn shrink_brings_a_swarm_failure_down_to_a_few_faults_that_replay() {
    let scenario = with_bug("[run]\nduration = \"40s\"\n\n[faults]\nswarm = true\n");
    let seed = (0..10)
        .find(|s| !run(&scenario, *s, false).report.pass)
        .expect("a failing seed");
    let shrunk = shrink(&scenario, seed, &|_, _| {}).expect("shrinks");
    assert!(
        shrunk.faults_after <= 3,
        "{} faults left of {}",
        shrunk.faults_after,
        shrunk.faults_before
    );
    assert!(shrunk.faults_after < shrunk.faults_before || shrunk.faults_before <= 3);
    // The shrunk scenario, written out and read back, fails the same way.
    let text = toml::to_string(&shrunk.scenario).expect("serializes");
    let replayed = Scenario::parse(Path::new("shrunk.toml"), &text).expect("a valid scenario file");
    let report = run(&replayed, seed, false).report;
    assert_eq!(
        report.violations.first().map(|v| v.check),
        Some(shrunk.check)
    );
}

#[test]
fn a_trace_reads_back_as_the_timeline_that_made_it() {
    let text = r#"
[[faults.timeline]]
at = "5s"
kind = "crash"
target = "broker:2"
duration = "3s"
[[faults.timeline]]
at = "10s"
kind = "partition"
target = "1|2,3"
duration = "2s"
[[faults.timeline]]
at = "14s"
kind = "clock-skew"
target = "broker:1"
offset = "-4s"
duration = "2s"
"#;
    let scenario = Scenario::parse(Path::new("t.toml"), text).unwrap();
    let output = run(&scenario, 2, true);
    let entries = materialize(&output.trace);
    let described: Vec<String> = entries
        .iter()
        .map(|e| format!("{:?} {:?} {:?}", e.fault, e.at, e.duration))
        .collect();
    assert_eq!(
        described,
        vec![
            "Crash(Broker(2)) 5s Some(3s)".to_owned(),
            "Partition(Links([(1, 2), (1, 3), (2, 1), (3, 1)])) 10s Some(2s)".to_owned(),
            "ClockSkew { target: Broker(1), step_ms: -4000 } 14s Some(2s)".to_owned(),
        ]
    );
}

#[test]
fn an_unknown_bug_is_refused() {
    let e = Scenario::parse(Path::new("b.toml"), "bugs = [\"telepathy\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("b.toml:1:8: unknown bug `telepathy`: expected one of skip-divergence-check"),
        "{e}"
    );
}

/// What a swarm, a profile or a timeline strikes while it runs, recorded as a fixed timeline,
/// written as a scenario file, read back and run again, must be the very same run: the same
/// trace, to the hash. Otherwise a failure found by a swarm may vanish when replayed, and cannot
/// be shrunk (a file that rounded a drawn latency to the millisecond once replayed a passing run).
#[test]
fn a_run_replays_to_the_same_trace_as_the_timeline_of_its_faults() {
    let cases = [
        ("everything.toml", "scenario", 0..6),
        ("default.toml", "swarm", 0..6),
        ("dedicated-controller.toml", "swarm", 0..6),
        ("mirror-maker.toml", "scenario", 0..2),
        ("bugs/hw-advance-old-epoch.toml", "scenario", 0..2),
    ];
    let mut differ = Vec::new();
    let mut faults = 0;
    for (file, mode, seeds) in cases {
        let base = shipped::shipped(file, mode);
        for seed in seeds {
            let original = run(&base, seed, false);
            faults += original.struck.len();
            let (fixed, _) = base.for_seed(seed);
            let timeline = with_timeline(&fixed, &original.struck);
            let text = toml::to_string(&timeline).expect("serializes");
            let read = Scenario::parse(Path::new("replay.toml"), &text).expect("reads back");
            let replayed = run(&read, seed, false);
            if replayed.report.trace_hash != original.report.trace_hash {
                differ.push(format!("{file} {mode} seed {seed}"));
            }
        }
    }
    assert!(
        faults > 100,
        "only {faults} faults struck: the replay proves little"
    );
    assert!(differ.is_empty(), "replayed differently: {differ:?}");
}
