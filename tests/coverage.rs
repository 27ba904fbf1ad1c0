//! Coverage marks and sometimes-properties: a run counts the marks its faults must reach, a
//! scripted scenario reaches the state it was written for, and a swarm that never reaches a mark
//! its scenario requires fails as vacuous.

use std::path::Path;

use logsim::run::run;
use logsim::scenario::Scenario;
use logsim::tools::swarm::run_swarm;

fn marks_of(scenario: &Scenario, seed: u64) -> Vec<&'static str> {
    let report = run(scenario, seed, false).report;
    report.counters.marks.keys().copied().collect()
}

#[test]
fn a_run_with_crashes_reaches_the_marks_crashes_must_and_not_those_its_settings_forbid() {
    let scenario = Scenario::builtin_default();
    let marks = marks_of(&scenario, 1);
    for needed in [
        "broker-fenced",
        "follower-becomes-leader",
        "vote-granted",
        "leader-advances-high-watermark",
        "producer-retries",
    ] {
        assert!(marks.contains(&needed), "{needed} not reached: {marks:?}");
    }
    // Unclean election is off in the default scenario.
    assert!(!marks.contains(&"unclean-election"), "{marks:?}");
    assert_eq!(marks, marks_of(&scenario, 1), "one seed, one coverage");
}

#[test]
fn the_scripted_hw_advance_old_epoch_scenario_reaches_the_state_its_bug_needs() {
    let scenario = Scenario::load(Path::new("scenarios/bugs/hw-advance-old-epoch.toml"))
        .expect("the shipped scenario loads");
    let marks = marks_of(&scenario, 1);
    for needed in [
        "leader-regains-leadership",
        "regained-leader-remembers-lagging-follower",
        "regained-leader-remembers-reports-above-high-watermark",
    ] {
        assert!(marks.contains(&needed), "{needed} not reached: {marks:?}");
    }
}

fn short_default(sometimes: &str) -> Scenario {
    let text = format!("sometimes = {sometimes}\n[run]\nduration = \"20s\"\nquiet_period = \"5s\"\n[faults.profile]\ncrash_probability = 0.05\ndowntime = [\"1s\", \"4s\"]\nmax_down = 1\n");
    Scenario::parse(Path::new("sometimes.toml"), &text).expect("valid")
}

#[test]
fn a_swarm_that_never_reaches_a_sometimes_property_fails_as_vacuous() {
    let scenario = short_default(r#"["broker-fenced", "unclean-election"]"#);
    let summary = run_swarm(&scenario, "sometimes.toml", 1..3, 2, &|_| {});
    assert!(summary.failures.is_empty(), "{:?}", summary.failures);
    assert_eq!(summary.coverage.vacuous, ["unclean-election"]);
    assert!(!summary.pass(), "a vacuous swarm must fail");
    assert!(summary
        .coverage
        .never_reached()
        .any(|m| m == "unclean-election"));

    let reached = short_default(r#"["broker-fenced"]"#);
    let summary = run_swarm(&reached, "sometimes.toml", 1..3, 2, &|_| {});
    assert!(summary.coverage.vacuous.is_empty());
    assert!(summary.pass());
}

#[test]
fn an_unknown_mark_in_sometimes_is_refused_with_its_name_and_line() {
    let text = "description = \"x\"\nsometimes = [\"broker-fenced\", \"no-such-mark\"]\n";
    let error = Scenario::parse(Path::new("bad.toml"), text).expect_err("unknown mark");
    let message = error.to_string();
    assert!(message.contains("no-such-mark"), "{message}");
    assert!(message.contains("logsim marks"), "{message}");
    assert_eq!(error.line, 2, "{message}");
}
