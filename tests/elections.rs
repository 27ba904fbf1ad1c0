//! Snapshots of who led what, when: the election trace of fixed seeds and scenarios, told in words
//! (`logsim trace --kind elections`). A change to how brokers elect, fence or truncate shows up as
//! a snapshot diff to review (`cargo insta review`, or `INSTA_UPDATE=always` to accept).

use std::path::Path;

use logsim::run::run;
use logsim::scenario::Scenario;
use logsim::tools::explain::bug_scenario;
use logsim::tools::narrate::{told, Filter};

const SEED: u64 = 1;

fn elections(scenario: &Scenario) -> String {
    let output = run(scenario, SEED, true);
    let filter = Filter::elections();
    let mut text: String = told(&output.trace, &filter)
        .iter()
        .map(|e| format!("{e}\n"))
        .collect();
    text.push_str(&format!(
        "verdict: {}\n",
        if output.report.pass { "PASS" } else { "FAIL" }
    ));
    text
}

fn shipped(name: &str) -> Scenario {
    let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    Scenario::load(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn initial_election() {
    let s = Scenario::parse(
        Path::new("initial.toml"),
        "[run]\nduration = \"8s\"\nquiet_period = \"4s\"\n",
    )
    .expect("valid");
    insta::assert_snapshot!("initial-election", elections(&s));
}

#[test]
fn shipped_scenarios() {
    for name in ["leader-crash", "controller-failover", "split-brain"] {
        insta::assert_snapshot!(name, elections(&shipped(name)));
    }
}

#[test]
fn historic_bugs() {
    for bug in model::bugs::switches() {
        let scenario = bug_scenario(bug);
        insta::assert_snapshot!(format!("bug-{bug}"), elections(&scenario));
    }
}
