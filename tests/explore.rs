//! Guided exploration: it finds a wrong rule and shrinks what it found into a schedule that
//! replays, the correct system passes that schedule, and its corpus is kept on disk and continued.

use std::path::Path;

use logsim::run::run;
use logsim::scenario::Scenario;
use logsim::tools::explore::{Budget, Explorer};

fn short() -> Scenario {
    let text = "[run]\nduration = \"30s\"\nquiet_period = \"15s\"\n";
    Scenario::parse(Path::new("explore.toml"), text).expect("valid")
}

fn explorer<'a>(scenario: &'a Scenario, corpus: Option<&'a Path>) -> Explorer<'a> {
    Explorer {
        scenario,
        jobs: 2,
        seed: 0,
        starting_seeds: 4,
        corpus_file: corpus,
    }
}

/// A corpus file of the test's own, under the temp directory, not there yet.
fn fresh_corpus(name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("logsim-{name}-{}", std::process::id()));
    let file = dir.join("corpus.jsonl");
    let _ = std::fs::remove_file(&file);
    (dir, file)
}

#[test]
fn exploration_finds_a_wrong_rule_and_its_shrunk_schedule_replays_where_the_right_one_passes() {
    let mut buggy = short();
    buggy.bugs = vec![model::bugs::Switch::SkipDivergenceCheck];
    let found = explorer(&buggy, None)
        .explore(Budget::Runs(60), &|_, _, _| {})
        .expect("explores");
    let finding = found
        .finding
        .expect("the wrong rule is found within 60 runs");
    let shrunk = &finding.shrunk;
    assert!(shrunk.faults_after <= shrunk.faults_before);
    let replay = run(&shrunk.scenario, finding.seed, false).report;
    assert_eq!(
        replay.violations.first().map(|v| v.check),
        Some(shrunk.check),
        "the shrunk schedule replays the failure"
    );
    let mut correct = shrunk.scenario.clone();
    correct.bugs.clear();
    let report = run(&correct, finding.seed, false).report;
    assert!(report.pass, "{:?}", report.violations);
}

#[test]
fn the_corpus_is_kept_on_disk_and_a_later_exploration_continues_it() {
    let (dir, file) = fresh_corpus("corpus");
    let scenario = short();
    let first = explorer(&scenario, Some(&file))
        .explore(Budget::Runs(10), &|_, _, _| {})
        .expect("explores");
    assert!(first.finding.is_none(), "the correct system failed");
    assert!(first.corpus > 0 && first.features > 0);
    let lines = std::fs::read_to_string(&file)
        .expect("corpus written")
        .lines()
        .count();
    assert_eq!(lines, first.corpus);
    let second = explorer(&scenario, Some(&file))
        .explore(Budget::Runs(6), &|_, _, _| {})
        .expect("continues");
    assert_eq!(second.loaded, first.corpus);
    assert!(second.corpus >= first.corpus);
    assert!(second.features >= first.features);
    std::fs::write(&file, "not json\n").unwrap();
    let error = explorer(&scenario, Some(&file))
        .explore(Budget::Runs(1), &|_, _, _| {})
        .err()
        .expect("a bad corpus line is refused");
    assert!(error.contains("line 1"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn explorations_side_by_side_share_one_corpus_file() {
    let (dir, file) = fresh_corpus("shared");
    let scenario = short();
    let explore = |seed: u64| {
        let explorer = Explorer {
            seed,
            ..explorer(&scenario, Some(&file))
        };
        explorer
            .explore(Budget::Runs(6), &|_, _, _| {})
            .expect("explores")
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| explore(1));
        let b = s.spawn(|| explore(2));
        (a.join().expect("a"), b.join().expect("b"))
    });
    let text = std::fs::read_to_string(&file).expect("corpus written");
    for line in text.lines() {
        let entry: serde_json::Value = serde_json::from_str(line).expect("whole lines only");
        assert!(entry.get("features").is_some(), "{line}");
    }
    // The file holds what each found; each corpus holds what it found and what it took in from
    // the other. Whichever looked second took in the other's first finds.
    let written = text.lines().count();
    assert!(a.corpus <= written && b.corpus <= written);
    assert!(
        a.corpus + b.corpus > written,
        "{} + {} vs {written}",
        a.corpus,
        b.corpus
    );
    let _ = std::fs::remove_dir_all(&dir);
}
