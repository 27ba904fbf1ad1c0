//! The command line, as a user meets it: a summary or one JSON object, and clear one-line errors
//! for bad input, never a panic.

mod support;
use support::logsim;

#[test]
fn run_prints_a_summary_that_ends_in_a_verdict() {
    let (code, out, err) = logsim(&["run", "--seed", "7", "--no-files"]);
    assert_eq!(code, 0, "{out}{err}");
    for field in [
        "seed          7",
        "simulated",
        "wall",
        "records",
        "elections",
        "trace hash",
        "PASS",
    ] {
        assert!(out.contains(field), "missing {field:?} in\n{out}");
    }
}

#[test]
fn run_json_is_one_object_with_the_promised_fields() {
    let (code, out, err) = logsim(&["run", "--seed", "7", "--json", "--no-files"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim().lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    for field in [
        "seed",
        "pass",
        "trace_hash",
        "sim_seconds",
        "wall_seconds",
        "acked",
        "consumed",
        "elections",
        "truncations",
        "violations",
    ] {
        assert!(v.get(field).is_some(), "missing {field}");
    }
    assert_eq!(v["seed"], 7);
    assert_eq!(v["pass"], true);
}

#[test]
fn run_writes_its_trace_and_history_under_reports() {
    let dir = std::env::temp_dir().join(format!("logsim-cli-{}", std::process::id()));
    let (code, out, err) = logsim(&[
        "run",
        "--seed",
        "3",
        "--json",
        "--reports",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    let trace = std::fs::read_to_string(v["trace_file"].as_str().unwrap()).expect("trace file");
    let first: serde_json::Value =
        serde_json::from_str(trace.lines().next().unwrap()).expect("a JSON line");
    assert!(first.get("t").is_some() && first.get("node").is_some() && first.get("kind").is_some());
    assert!(
        std::fs::metadata(v["history_file"].as_str().unwrap())
            .unwrap()
            .len()
            > 0
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_seed_that_is_not_a_number_is_a_clear_error() {
    let (code, _, err) = logsim(&["run", "--seed", "seven"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'seven' for '--seed"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn a_missing_scenario_file_is_a_clear_error() {
    let (code, _, err) = logsim(&["run", "--seed", "1", "--scenario", "scenarios/absent.toml"]);
    assert_eq!(code, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("scenarios/absent.toml: cannot read scenario file"),
        "{err}"
    );
}

#[test]
fn a_malformed_scenario_file_names_its_line_and_column() {
    let path = std::env::temp_dir().join(format!("logsim-bad-{}.toml", std::process::id()));
    std::fs::write(
        &path,
        "[cluster]\nbrokers = 3\n\n[workload]\nacks = \"most\"\n",
    )
    .unwrap();
    let (code, _, err) = logsim(&["run", "--seed", "1", "--scenario", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 2);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(":5:8: unknown variant `most`"), "{err}");
}

#[test]
fn a_failing_run_exits_non_zero_and_says_how_to_replay_it() {
    let path = std::env::temp_dir().join(format!("logsim-gate-{}.toml", std::process::id()));
    std::fs::write(&path, "[run]\nduration = \"2s\"\nquiet_period = \"0s\"\n").unwrap();
    let (code, out, _) = logsim(&[
        "run",
        "--seed",
        "4",
        "--no-files",
        "--scenario",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("violation     gate"), "{out}");
    assert!(
        out.contains("FAIL  replay: cargo run --release -p logsim -- run --seed 4"),
        "{out}"
    );
}

#[test]
fn replay_confirms_a_recorded_trace_and_shows_where_a_different_one_parts() {
    let dir = std::env::temp_dir().join(format!("logsim-replay-{}", std::process::id()));
    let (code, _, err) = logsim(&[
        "run",
        "--seed",
        "9",
        "--faults",
        "swarm",
        "--reports",
        dir.to_str().unwrap(),
    ]);
    assert!(code == 0 || code == 1, "{err}");
    let trace = dir.join("trace-9.jsonl");
    let args = [
        "replay",
        "--seed",
        "9",
        "--faults",
        "swarm",
        "--trace",
        trace.to_str().unwrap(),
    ];
    let (code, out, err) = logsim(&args);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("replays bit for bit"), "{out}");
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines[40] = r#"{"t":0,"node":0,"kind":"tampered"}"#;
    std::fs::write(&trace, lines.join("\n")).unwrap();
    let (code, out, _) = logsim(&args);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("part at line 41") && out.contains("tampered"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn swarm_json_counts_runs_failures_and_faults_by_kind() {
    let (code, out, err) = logsim(&["swarm", "--seeds", "0..4", "--faults", "swarm", "--json"]);
    assert_eq!(code, 0, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    assert_eq!(v["runs"], 4);
    assert_eq!(v["failures"].as_array().map(Vec::len), Some(0));
    for kind in [
        "crash",
        "restart",
        "pause",
        "partition",
        "packet-loss",
        "latency",
        "clock-skew",
        "disk-loss",
        "disk-torn",
        "disk-corrupt",
        "disk-full",
        "disk-slow",
    ] {
        assert!(v["faults"][kind].is_u64(), "no count for {kind}");
    }
    assert!(v["acked"].as_u64().unwrap() > 0);
    assert!(v["runs_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_swarm_with_a_failing_seed_exits_non_zero_and_prints_the_replay_command() {
    let path = std::env::temp_dir().join(format!("logsim-swarm-gate-{}.toml", std::process::id()));
    std::fs::write(&path, "[run]\nduration = \"2s\"\nquiet_period = \"0s\"\n").unwrap();
    let (code, out, _) = logsim(&[
        "swarm",
        "--seeds",
        "0..2",
        "--scenario",
        path.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("runs          2 (0 passed, 2 failed)"),
        "{out}"
    );
    assert!(
        out.contains("FAIL          cargo run --release -p logsim -- run --seed 1 --scenario"),
        "{out}"
    );
}

#[test]
fn an_unknown_fault_mode_is_a_clear_error() {
    let (code, _, err) = logsim(&["run", "--seed", "1", "--faults", "lots"]);
    assert_eq!(code, 2);
    assert!(
        err.contains("`lots` is not a fault mode: expected scenario, swarm or none"),
        "{err}"
    );
}

#[test]
fn explain_tells_the_story_and_exits_zero_when_the_bug_is_caught() {
    let (code, out, err) = logsim(&["explain", "--bug", "hw-truncation"]);
    assert_eq!(code, 0, "{out}{err}");
    for needle in ["KIP-101", "truncates events-0", "VIOLATION", "switch off"] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }
    let (code, _, err) = logsim(&["explain", "--bug", "nope"]);
    assert_eq!(code, 2);
    assert!(
        err.starts_with("error: unknown bug `nope`: expected one of"),
        "{err}"
    );
}

#[test]
fn trace_prints_one_line_per_event_through_its_filter() {
    let (code, out, err) = logsim(&[
        "trace",
        "--seed",
        "7",
        "--kind",
        "became_leader",
        "--partition",
        "events-0",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().count() >= 2, "{out}");
    for line in out.lines() {
        assert!(
            line.contains("became_leader") && line.contains("leads events-0 in epoch"),
            "{line}"
        );
    }
}

#[test]
fn report_writes_one_html_file_where_asked() {
    let out = std::env::temp_dir().join(format!("logsim-report-{}.html", std::process::id()));
    let out_s = out.to_str().expect("utf-8 path");
    let (code, stdout, err) = logsim(&["report", "--seed", "7", "--out", out_s]);
    assert_eq!(code, 0, "{stdout}{err}");
    assert!(stdout.starts_with("PASS"), "{stdout}");
    let html = std::fs::read_to_string(&out).expect("written");
    assert!(html.contains("<svg") && html.contains("--seed 7"));
    let _ = std::fs::remove_file(&out);
}

#[test]
fn bench_runs_one_workload_seed_as_a_child_would_and_refuses_unknown_ones() {
    let (code, out, err) = logsim(&["bench", "--single", "replication", "--seed", "1"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    for field in [
        "wall_seconds",
        "sim_seconds",
        "events",
        "messages",
        "acked",
        "peak_rss_bytes",
        "pass",
    ] {
        assert!(v.get(field).is_some(), "no {field} in {out}");
    }
    assert!(v["acked"].as_u64().unwrap_or(0) > 0);
    assert!(v["messages"].as_u64().unwrap_or(0) > v["acked"].as_u64().unwrap_or(0));
    // The floor runs the same way, in a child of its own: six messages per replicated write,
    // besides connecting and the writes still in flight at the end.
    let (code, out, err) = logsim(&["bench", "--single", "floor", "--seed", "1"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON object");
    let writes = v["acked"].as_u64().unwrap_or(0);
    let messages = v["messages"].as_u64().unwrap_or(0);
    assert!(writes > 0, "{out}");
    assert!((writes * 6..writes * 6 + 100).contains(&messages), "{out}");
    let (code, _, err) = logsim(&["bench", "--single", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown bench workload `nope`"), "{err}");
    assert!(err.contains("replication"), "names the workloads: {err}");
}

/// `--log` turns on the model's own log on stderr, each line stamped with simulated time and the
/// node; the run it logs is the run it would have been (same trace hash), and it is off otherwise.
#[test]
fn the_model_log_is_off_by_default_and_changes_nothing_when_on() {
    let hash = |out: &str| {
        let v: serde_json::Value = serde_json::from_str(out).expect("JSON");
        v["trace_hash"].as_str().unwrap_or_default().to_owned()
    };
    let quiet = logsim(&["run", "--seed", "3", "--no-files", "--json"]);
    let logged = logsim(&[
        "run",
        "--seed",
        "3",
        "--no-files",
        "--json",
        "--log",
        "model::controller=debug",
    ]);
    assert_eq!((quiet.0, logged.0), (0, 0), "{}", logged.2);
    assert!(!quiet.2.contains("DEBUG"), "{}", quiet.2);
    let line = logged
        .2
        .lines()
        .find(|l| l.contains("controller unfences broker"))
        .unwrap_or_else(|| panic!("no unfencing logged: {}", logged.2));
    assert!(line.contains("DEBUG node{id="), "{line}");
    assert!(
        line.trim_start().starts_with(|c: char| c.is_ascii_digit()),
        "{line}"
    );
    assert_eq!(hash(&quiet.1), hash(&logged.1));

    let (code, _, err) = logsim(&["run", "--seed", "3", "--no-files", "--log", "model=loud"]);
    assert_eq!(code, 2);
    assert!(err.contains("log filter `model=loud`"), "{err}");
}

/// Writes `text` to a history file of this test's own; returns its path.
fn history_file(name: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("logsim-{name}-{}.jsonl", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn check_history_judges_a_duplicate_by_what_the_producers_promise() {
    // Value 7 sent once and read at two offsets: a retried batch written twice.
    let path = history_file(
        "twice",
        concat!(
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"send\",\"key\":\"t/0\",\"value\":7}\n",
            "{\"process\":0,\"type\":\"ok\",\"f\":\"send\",\"key\":\"t/0\",\"value\":7,\"offset\":0}\n",
            "{\"process\":1,\"type\":\"ok\",\"f\":\"subscribe\",\"keys\":[\"t/0\"]}\n",
            "{\"process\":1,\"type\":\"ok\",\"f\":\"poll\",\"msgs\":{\"t/0\":[[0,7],[1,7]]}}\n",
        ),
    );
    let file = path.to_str().unwrap();
    let (code, out, err) = logsim(&["check-history", file]);
    assert_eq!(
        code, 1,
        "a producer that never retries writes once: {out}{err}"
    );
    assert!(
        out.contains("duplicate: 1 cases") && out.contains("INVALID"),
        "{out}"
    );
    let (code, out, err) = logsim(&["check-history", file, "--retries"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("duplicate: 1 cases, allowed"), "{out}");
    let (code, out, _) = logsim(&["check-history", file, "--retries", "--idempotent", "--json"]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(v["promises"]["idempotent"], true);
    assert_eq!(
        v["anomalies"]["duplicate"][0]["offsets"],
        serde_json::json!([0, 1])
    );
}

#[test]
fn check_history_names_the_line_it_cannot_read() {
    let path = history_file(
        "bad",
        "{\"process\":1,\"type\":\"ok\",\"f\":\"subscribe\",\"keys\":[\"t/0\"]}\n{\"process\":1,\"type\":\"ok\",\"f\":\"seek\"}\n",
    );
    let (code, _, err) = logsim(&["check-history", path.to_str().unwrap()]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 2: unknown variant `seek`"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
