//! The HTML report: one self-contained file with the timeline, leaders, high watermarks, the
//! violations linked to their marks and the history lines the anomalies name.

use std::collections::BTreeSet;

use logsim::run::run;
use logsim::tools::explain::bug_scenario;
use logsim::tools::report::{render, Page};
use model::bugs::Switch;

fn page_for(bug: Option<Switch>, seed: u64) -> (String, bool) {
    let mut scenario = bug_scenario(bug.unwrap_or(Switch::HwTruncation));
    if bug.is_none() {
        scenario.bugs.clear();
    }
    let output = run(&scenario, seed, true);
    let page = Page {
        title: "scenarios/bugs/hw-truncation.toml",
        seed,
        brokers: scenario.cluster.brokers as i64,
        replay: "cargo run --release -p logsim -- run --seed 1 --scenario scenarios/bugs/hw-truncation.toml",
    };
    (render(&page, &output), output.report.pass)
}

fn count(html: &str, needle: &str) -> usize {
    html.matches(needle).count()
}

#[test]
fn a_failing_bug_seed_shows_where_the_replicas_diverged() {
    let (html, pass) = page_for(Some(Switch::HwTruncation), 1);
    assert!(!pass);
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Self-contained: nothing fetched from anywhere.
    for outside in ["<link", "src=", "http://", "https://", "@import"] {
        assert_eq!(count(&html, outside), 0, "{outside} in the page");
    }
    assert_eq!(count(&html, "<svg"), count(&html, "</svg>"));
    assert_eq!(count(&html, "<title>"), count(&html, "</title>"));
    for needle in [
        "FAIL",
        "class=\"band down\"",
        "class=\"band net\"",
        "leads events-0 in epoch 2",
        "broker 4 leads epoch 2",
        "class=\"hw\"",
        "class=\"leo\"",
        "class=\"arrow\"",
        "committed-data-identical",
        "lost-write",
        "--seed 1 --scenario scenarios/bugs/hw-truncation.toml",
    ] {
        assert!(html.contains(needle), "no {needle:?} in the report");
    }
    // Every violation listed links to a mark on the timeline.
    let ids: BTreeSet<&str> = html
        .split("id=\"v-")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    let links: Vec<&str> = html
        .split("href=\"#v-")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .collect();
    assert!(!links.is_empty());
    for l in &links {
        assert!(ids.contains(l), "link #v-{l} has no mark");
    }
    // One mark per check and partition, however often the check failed there afterwards.
    let drawn = count(&html, "class=\"violation\"");
    assert!((1..=72).contains(&drawn), "{drawn} violation marks");
    // And the coverage marks the run reached are ticked where first reached.
    assert!(
        html.contains("class=\"reached\""),
        "no coverage mark on the timeline"
    );
    assert!(html.contains("first reached follower-becomes-leader"));
    // The anomalies' history lines are shown, highlighted.
    assert!(
        html.contains("class=\"hit\""),
        "no history line highlighted"
    );
}

#[test]
fn a_passing_run_says_every_check_held() {
    let (html, pass) = page_for(None, 1);
    assert!(pass);
    assert!(html.contains("PASS") && html.contains("None: every check held."));
    assert_eq!(count(&html, "class=\"violation\""), 0);
}

#[test]
fn the_swarm_page_marks_each_seed_and_says_how_to_replay_the_failing_ones() {
    let scenario = bug_scenario(Switch::HwTruncation);
    let summary =
        logsim::tools::swarm::run_swarm(&scenario, "hw-truncation.toml", 5..8, 2, &|_| {});
    let html = logsim::tools::report::swarm::render(&summary, 5, &|seed| format!("replay {seed}"));
    assert_eq!(
        count(&html, "class=\"s fail\""),
        3,
        "every seed fails with the bug on"
    );
    for seed in 5..8 {
        assert!(html.contains(&format!("id=\"seed-{seed}\"")));
        assert!(html.contains(&format!("replay {seed}")));
    }
    assert!(html.contains("Faults injected") && html.contains("Slowest seeds"));
    let mut correct = scenario.clone();
    correct.bugs.clear();
    let summary = logsim::tools::swarm::run_swarm(&correct, "ok.toml", 5..7, 2, &|_| {});
    let html = logsim::tools::report::swarm::render(&summary, 5, &|seed| format!("replay {seed}"));
    assert_eq!(count(&html, "class=\"s pass\""), 2);
    assert!(!html.contains("Failing seeds"));
}
