//! Each kind of fault takes effect: the run shows what it did, and the checks still pass.

use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use logsim::record::history::{OpFn, OpType};
use logsim::run::{run, run_with_hooks, Hook, RunOutput};
use logsim::scenario::Scenario;
use logsim::world::cluster::Cluster;

fn scenario(faults: &str) -> Scenario {
    let text = format!("[run]\nduration = \"30s\"\nquiet_period = \"20s\"\n\n{faults}");
    Scenario::parse(Path::new("faults.toml"), &text).expect("valid")
}

fn passing(output: &RunOutput) {
    assert!(output.report.pass, "{:?}", output.report.violations);
}

fn traced(output: &RunOutput, needle: &str) -> bool {
    output.trace.iter().any(|l| l.contains(needle))
}

#[test]
fn every_fault_kind_of_a_timeline_strikes_and_is_counted() {
    let s = scenario(
        r#"
[[faults.timeline]]
at = "5s"
kind = "crash"
target = "broker:1"
duration = "2s"
[[faults.timeline]]
at = "8s"
kind = "shutdown"
target = "broker:2"
duration = "2s"
[[faults.timeline]]
at = "11s"
kind = "pause"
target = "broker:3"
duration = "1s"
[[faults.timeline]]
at = "13s"
kind = "partition"
target = "1|2,3"
duration = "2s"
[[faults.timeline]]
at = "13s"
kind = "clog"
target = "2->3"
duration = "2s"
[[faults.timeline]]
at = "14s"
kind = "packet-loss"
rate = 0.1
duration = "2s"
[[faults.timeline]]
at = "14s"
kind = "latency"
latency = ["20ms", "50ms"]
duration = "2s"
[[faults.timeline]]
at = "15s"
kind = "clock-skew"
target = "broker:1"
offset = "-3s"
duration = "2s"
[[faults.timeline]]
at = "15s"
kind = "clock-drift"
target = "broker:2"
drift_ppm = 50000
duration = "2s"
[[faults.timeline]]
at = "16s"
kind = "disk-full"
target = "broker:3"
duration = "2s"
[[faults.timeline]]
at = "16s"
kind = "disk-slow"
target = "broker:1"
delay = "100ms"
duration = "2s"
[[faults.timeline]]
at = "19s"
kind = "disk-torn"
target = "broker:2"
duration = "2s"
[[faults.timeline]]
at = "21s"
kind = "disk-corrupt"
target = "broker:3"
duration = "2s"
[[faults.timeline]]
at = "27s"
kind = "disk-wipe"
target = "broker:1"
duration = "2s"
"#,
    );
    let output = run(&s, 3, true);
    passing(&output);
    let faults = &output.report.counters.faults;
    for kind in logsim::scenario::FaultKind::ALL {
        if kind == logsim::scenario::FaultKind::DiskTorn {
            // A tear needs unsynced bytes at the crash; it is counted only when it tore something.
            continue;
        }
        assert!(
            faults.get(kind.name()).is_some_and(|n| *n > 0),
            "no {kind} in {faults:?}"
        );
    }
    assert!(
        traced(&output, r#""kind":"shut_down""#),
        "the shutdown was not a controlled one"
    );
}

#[test]
fn a_crash_restarts_the_broker_as_a_new_incarnation_that_lost_its_unsynced_bytes() {
    let s = scenario("[[faults.timeline]]\nat = \"10s\"\nkind = \"crash\"\ntarget = \"broker:2\"\nduration = \"3s\"\n");
    let output = run(&s, 4, true);
    passing(&output);
    assert!(traced(
        &output,
        r#""node":2,"kind":"broker_started","incarnation":2"#
    ));
    assert!(output
        .report
        .counters
        .faults
        .get("disk-loss")
        .is_some_and(|n| *n > 0));
}

#[test]
fn a_partition_stops_traffic_so_the_cut_off_broker_is_fenced() {
    let s = scenario("[[faults.timeline]]\nat = \"10s\"\nkind = \"partition\"\ntarget = \"isolate:broker:3\"\nduration = \"12s\"\n");
    let output = run(&s, 5, true);
    passing(&output);
    assert!(
        output
            .trace
            .iter()
            .any(|l| l.contains(r#""kind":"broker_fenced","broker":3,"reason":"session expired""#)),
        "broker 3 kept its session through a partition"
    );
}

#[test]
fn a_pause_freezes_a_broker_until_its_session_expires() {
    let s = scenario("[[faults.timeline]]\nat = \"10s\"\nkind = \"pause\"\ntarget = \"broker:1\"\nduration = \"8s\"\n");
    let output = run(&s, 6, true);
    passing(&output);
    assert!(traced(&output, r#""kind":"broker_fenced","broker":1"#));
}

static SKEW_DURING: AtomicI64 = AtomicI64::new(i64::MIN);
static SKEW_AFTER: AtomicI64 = AtomicI64::new(i64::MIN);

#[test]
fn a_clock_skew_moves_a_node_clock_and_the_heal_puts_it_back() {
    fn during(c: &mut Cluster) {
        SKEW_DURING.store(c.clocks[&2].skew_ms(), Ordering::SeqCst);
    }
    fn after(c: &mut Cluster) {
        SKEW_AFTER.store(c.clocks[&2].skew_ms(), Ordering::SeqCst);
    }
    let s = scenario("[[faults.timeline]]\nat = \"5s\"\nkind = \"clock-skew\"\ntarget = \"broker:2\"\noffset = \"-7s\"\nduration = \"10s\"\n");
    let hooks = vec![
        Hook::new(Duration::from_secs(8), during),
        Hook::new(Duration::from_secs(20), after),
    ];
    let output = run_with_hooks(&s, 7, false, hooks);
    passing(&output);
    assert_eq!(SKEW_DURING.load(Ordering::SeqCst), -7_000);
    assert_eq!(SKEW_AFTER.load(Ordering::SeqCst), 0);
}

#[test]
fn a_full_disk_refuses_writes_and_nothing_is_acked_while_it_lasts() {
    let mut s = scenario("[[faults.timeline]]\nat = \"10s\"\nkind = \"disk-full\"\ntarget = \"all\"\nduration = \"8s\"\n");
    // The one-shot client, which tries each write once, so that a refusal reaches the history:
    // Kafka's producer would retry the write until the disks empty, and then it is acknowledged.
    s.workload.set_one_shot();
    let output = run(&s, 8, true);
    passing(&output);
    let history = &output.history;
    let mut invoked_at = std::collections::BTreeMap::new();
    let mut acked_while_full = 0;
    let mut refused_while_full = 0;
    for op in history.iter().filter(|o| o.f == OpFn::Send) {
        match op.kind {
            OpType::Invoke => {
                invoked_at.insert(op.process, op.time_ms.unwrap_or(0));
            }
            kind => {
                let start = invoked_at[&op.process];
                if start >= 10_050 && op.time_ms.unwrap_or(0) < 18_000 {
                    match kind {
                        OpType::Ok => acked_while_full += 1,
                        _ => refused_while_full += 1,
                    }
                }
            }
        }
    }
    assert_eq!(
        acked_while_full, 0,
        "a write was acknowledged while every disk was full"
    );
    assert!(
        refused_while_full > 0,
        "no write was even tried while the disks were full"
    );
    assert!(
        output.report.acked > 0,
        "the cluster took writes again after the disks emptied"
    );
}
