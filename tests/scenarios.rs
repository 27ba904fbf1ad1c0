//! The shipped scenario files run clean, and bad scenario files are refused with the file, line and
//! column and what was expected, before any run starts.

use std::path::{Path, PathBuf};

use logsim::run::run;
use logsim::scenario::Scenario;

fn shipped() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("scenarios/")
        .map(|e| e.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_scenario_runs_clean() {
    let files = shipped();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in [
        "default",
        "leader-crash",
        "controller-failover",
        "split-brain",
        "asymmetric-link",
        "clock-skew",
        "disk-loss",
        "full-disk",
        "rolling-restart",
        "everything",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "scenarios/{wanted}.toml is missing"
        );
    }
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .iter()
            .map(|file| {
                scope.spawn(move || {
                    let scenario = Scenario::load(file).unwrap_or_else(|e| panic!("{e}"));
                    (1..=2)
                        .map(|seed| run(&scenario, seed, false).report)
                        .filter(|r| !r.pass || r.acked == 0)
                        .map(|r| {
                            format!(
                                "{} seed {}: {:?}",
                                file.display(),
                                r.seed,
                                r.violations.first()
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a scenario thread"))
            .collect()
    });
    assert!(failures.is_empty(), "{failures:#?}");
}

fn refused(text: &str) -> String {
    Scenario::parse(Path::new("bad.toml"), text)
        .expect_err("refused")
        .to_string()
}

#[test]
fn an_unknown_fault_kind_is_refused_where_it_is_written() {
    let e = refused("[[faults.timeline]]\nat = \"5s\"\nkind = \"meteor\"\n");
    assert!(
        e.starts_with("bad.toml:3:8: unknown variant `meteor`, expected one of `crash`"),
        "{e}"
    );
}

#[test]
fn a_target_that_does_not_exist_is_refused_at_its_entry() {
    let e = refused("[[faults.timeline]]\nat = \"5s\"\nkind = \"crash\"\ntarget = \"broker:1\"\n\n[[faults.timeline]]\nat = \"6s\"\nkind = \"crash\"\ntarget = \"broker:7\"\n");
    assert!(
        e.starts_with(
            "bad.toml:9:1: faults.timeline[1]: broker 7 does not exist: brokers are 1 to 3"
        ),
        "{e}"
    );
    let e = refused(
        "[[faults.timeline]]\nat = \"5s\"\nkind = \"crash\"\ntarget = \"leader:events-9\"\n",
    );
    assert!(
        e.contains(":4:1: faults.timeline[0]: partition events-9 does not exist"),
        "{e}"
    );
    let e = refused("[[faults.timeline]]\nat = \"5s\"\nkind = \"partition\"\ntarget = \"1|2,x\"\n");
    assert!(
        e.contains(":4:1:") && e.contains("expected `halves`, `majority-ring`"),
        "{e}"
    );
}

#[test]
fn values_out_of_range_are_refused_with_what_was_expected() {
    let e = refused("[faults.profile]\ncrash_probability = 1.5\n");
    assert!(
        e.starts_with("bad.toml:2:1: crash_probability = 1.5: expected a probability from 0 to 1"),
        "{e}"
    );
    let e = refused("[faults.profile]\nmax_down = 9\n");
    assert!(
        e.contains(":2:1: max_down = 9: expected 0 to the number of brokers (3)"),
        "{e}"
    );
    let e = refused(
        "[run]\nduration = \"10s\"\n\n[[faults.timeline]]\nat = \"12s\"\nkind = \"pause\"\n",
    );
    assert!(
        e.contains(":5:1: faults.timeline[0]: at = 12s: after the load phase ends"),
        "{e}"
    );
    let e = refused("[[faults.timeline]]\nat = \"5s\"\nkind = \"packet-loss\"\n");
    assert!(e.contains("needs `rate`"), "{e}");
    let e = refused("[faults.profile]\ncrash_chance = 0.1\n");
    assert!(
        e.starts_with("bad.toml:2:1: unknown field `crash_chance`"),
        "{e}"
    );
}

#[test]
fn a_malformed_file_is_refused_with_its_line() {
    let e = refused("[faults.profile\ncrash_probability = 0.1\n");
    assert!(e.starts_with("bad.toml:1:"), "{e}");
    let e = refused("[[faults.timeline]]\nat = 5\nkind = \"crash\"\n");
    assert!(e.starts_with("bad.toml:2:6:"), "{e}");
}
