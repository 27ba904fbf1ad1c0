//! Sharded swarms: four shards, merged, say what one unsharded swarm says (timings aside), and a
//! merge that lacks or doubles a shard refuses rather than summing what it has.

use std::path::PathBuf;

mod support;
use support::logsim;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("logsim-shard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// The summary without what depends on the machine's speed.
fn without_timings(json: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(json.trim()).expect("one JSON summary");
    let o = v.as_object_mut().expect("an object");
    for timing in [
        "wall_seconds",
        "runs_per_second",
        "runs_per_minute",
        "slowest",
    ] {
        assert!(o.remove(timing).is_some(), "no {timing} in the summary");
    }
    v
}

/// Runs `swarm_args` whole and in four shards, merges the shards, and compares.
fn merged_equals_unsharded(name: &str, swarm_args: &[&str]) -> serde_json::Value {
    let dir = scratch(name);
    let (_, whole, err) = logsim(&[&["swarm", "--json"], swarm_args].concat());
    assert!(!whole.is_empty(), "{err}");
    let mut files = Vec::new();
    for k in 0..4 {
        let file = dir.join(format!("shard-{k}.jsonl"));
        let shard = format!("{k}/4");
        let path = file.to_str().expect("a UTF-8 path").to_owned();
        let (code, _, err) = logsim(
            &[
                &["swarm", "--json", "--shard", &shard, "--out", &path],
                swarm_args,
            ]
            .concat(),
        );
        assert!(code == 0 || code == 1, "shard {k}: {err}");
        files.push(path);
    }
    // Shard order does not matter.
    files.reverse();
    let (code, merged, err) = logsim(
        &[
            &["merge", "--json"],
            files
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
                .as_slice(),
        ]
        .concat(),
    );
    assert!(code == 0 || code == 1, "merge: {err}");
    let whole = without_timings(&whole);
    assert_eq!(without_timings(&merged), whole);
    let _ = std::fs::remove_dir_all(dir);
    whole
}

#[test]
fn four_merged_shards_equal_the_unsharded_swarm() {
    let passing = merged_equals_unsharded(
        "passing",
        &["--seeds", "3..13", "--faults", "swarm", "--jobs", "2"],
    );
    assert_eq!(passing["runs"], 10);
    // With failures, their violations come through the files whole.
    let failing = merged_equals_unsharded(
        "failing",
        &[
            "--seeds",
            "0..5",
            "--scenario",
            "scenarios/bugs/skip-divergence-check.toml",
            "--jobs",
            "2",
        ],
    );
    assert!(
        !failing["failures"].as_array().expect("failures").is_empty(),
        "the bug scenario should fail somewhere: {failing}"
    );
}

#[test]
fn a_missing_doubled_or_unfinished_shard_is_reported_and_nothing_is_merged() {
    let dir = scratch("broken");
    let mut files = Vec::new();
    for k in 0..3 {
        let path = dir.join(format!("shard-{k}.jsonl"));
        let path = path.to_str().expect("a UTF-8 path").to_owned();
        let shard = format!("{k}/3");
        let (code, _, err) = logsim(&[
            "swarm", "--seeds", "0..6", "--shard", &shard, "--out", &path, "--jobs", "1",
        ]);
        assert_eq!(code, 0, "{err}");
        files.push(path);
    }
    let (code, out, err) = logsim(&["merge", &files[0], &files[1]]);
    assert_eq!(code, 2, "{out}");
    assert!(err.contains("shard 2/3 is missing"), "{err}");
    assert!(out.is_empty(), "no summary from a partial merge: {out}");

    let (code, _, err) = logsim(&["merge", &files[0], &files[1], &files[2], &files[1]]);
    assert_eq!(code, 2);
    assert!(err.contains("shard 1/3 is given 2 times"), "{err}");

    // A shard killed after its first result: its file has no end.
    let text = std::fs::read_to_string(&files[2]).expect("shard file");
    let cut: Vec<&str> = text.lines().take(2).collect();
    std::fs::write(&files[2], cut.join("\n")).expect("write");
    let (code, _, err) = logsim(&["merge", &files[0], &files[1], &files[2]]);
    assert_eq!(code, 2);
    assert!(
        err.contains("was cut short with 1 of its 2 seeds; missing [5]"),
        "{err}"
    );

    let (code, _, err) = logsim(&["merge", &files[0], "Cargo.toml"]);
    assert_eq!(code, 2);
    assert!(err.contains("Cargo.toml:1: not a shard line"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn shard_arguments_are_checked() {
    let (code, _, err) = logsim(&["swarm", "--seeds", "0..4", "--shard", "2/2"]);
    assert_eq!(code, 2);
    assert!(err.contains("not below the shard count"), "{err}");
    let (code, _, err) = logsim(&["swarm", "--seeds", "0..4", "--shard", "one/2"]);
    assert_eq!(code, 2);
    assert!(err.contains("`one` is not a number"), "{err}");
    let (code, _, err) = logsim(&[
        "swarm",
        "--seeds",
        "0..4",
        "--shard-from-env",
        "LOGSIM_TEST_NO_SUCH_VARIABLE",
        "--shards",
        "2",
    ]);
    assert_eq!(code, 2);
    assert!(
        err.contains("LOGSIM_TEST_NO_SUCH_VARIABLE is not set"),
        "{err}"
    );
}
