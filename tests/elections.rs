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

/// Records when each check step ran.
struct StepTimes(std::sync::Arc<std::sync::Mutex<Vec<u64>>>);

impl logsim::checkers::Invariant for StepTimes {
    fn name(&self) -> &'static str {
        "step-times"
    }

    fn check(
        &mut self,
        step: &logsim::checkers::Step<'_>,
    ) -> Option<Vec<logsim::checkers::Violation>> {
        self.0.lock().expect("not poisoned").push(step.time_ms);
        Some(Vec::new())
    }
}

/// A step judges the cluster as each election happens, besides every 50 ms: a new leader weighs
/// its high watermark as it takes over, and its followers' first fetches may set right what it
/// counted within milliseconds, between two regular steps.
#[test]
fn a_step_judges_every_election_as_it_happens() {
    let times = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let out = logsim::sim::Sim::new(shipped("leader-crash"))
        .seed(SEED)
        .invariant(StepTimes(times.clone()))
        .run()
        .expect("a valid scenario");
    let steps = times.lock().expect("not poisoned").clone();
    let elections: Vec<u64> = (out.trace.iter())
        .map(|line| serde_json::from_str::<serde_json::Value>(line).expect("a JSON line"))
        .filter(|e| e["kind"] == "became_leader")
        .map(|e| e["t"].as_u64().expect("a time"))
        .collect();
    assert!(elections.len() > 3, "elections: {elections:?}");
    for t in &elections {
        assert!(steps.contains(t), "no step at the election at {t} ms");
    }
    let first = steps[0];
    assert!(
        elections.iter().any(|t| (t - first) % 50 != 0),
        "every election fell on the 50 ms grid, so this run cannot tell: {elections:?}"
    );
}

/// A leader elected with an ISR of itself alone commits what it holds as it takes over, as
/// Kafka's `makeLeader` weighs the high watermark at once: the high watermark moves at the
/// millisecond of the election, not at the leader's next fetch, sync or tick.
#[test]
fn a_leader_alone_in_its_isr_moves_its_high_watermark_as_it_takes_over() {
    let output = run(&shipped("split-brain"), SEED, true);
    let events: Vec<serde_json::Value> = (output.trace.iter())
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let mut isr = std::collections::BTreeMap::new();
    let mut alone = 0;
    for (i, e) in events.iter().enumerate() {
        let partition = e["partition"].clone();
        match e["kind"].as_str() {
            Some("partition_changed") => {
                isr.insert(partition.to_string(), e["isr"].clone());
            }
            Some("became_leader")
                if isr.get(&partition.to_string()) == Some(&serde_json::json!([e["node"]]))
                    && e["log_end_offset"].as_i64() > e["high_watermark"].as_i64() =>
            {
                alone += 1;
                let moved = events[i + 1..]
                    .iter()
                    .take_while(|later| later["t"] == e["t"])
                    .any(|later| {
                        later["kind"] == "high_watermark"
                            && later["node"] == e["node"]
                            && later["partition"] == partition
                    });
                assert!(moved, "the high watermark waited after the election: {e}");
            }
            _ => {}
        }
    }
    assert!(
        alone > 0,
        "no leader was elected alone in its ISR behind its log end"
    );
}
