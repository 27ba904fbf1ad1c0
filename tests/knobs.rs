//! Randomized knobs: each seed draws its timing settings under `knobs = "swarm"`, the run uses
//! them, the draw is the seed's alone, and `shrink` writes it into the shrunk scenario.

use std::path::Path;

use logsim::run::run;
use logsim::scenario::{KnobMode, Knobs, Scenario};
use logsim::tools::shrink::shrink;
use logsim::world::cluster::broker_configs;

fn parse(text: &str) -> Scenario {
    Scenario::parse(Path::new("knobs.toml"), text).expect("valid")
}

#[test]
fn a_seed_draws_its_knobs_again_and_seeds_draw_differently_within_kafka_rules() {
    let scenario = Scenario::builtin_default();
    let draws: Vec<Knobs> = (0..20).map(|s| Knobs::draw(&scenario, s)).collect();
    assert_eq!(draws[7], Knobs::draw(&scenario, 7), "one seed, one draw");
    let distinct: std::collections::BTreeSet<u64> =
        draws.iter().map(|k| k.replica_lag_time_max.ms()).collect();
    assert!(distinct.len() > 10, "{distinct:?}");
    for seed in 0..20 {
        // Written out and read back, the drawn scenario passes the file's own validation.
        let (drawn, knobs) = scenario.clone().with_knobs("swarm").unwrap().for_seed(seed);
        assert_eq!(knobs.as_ref(), Some(&draws[seed as usize]));
        let text = toml::to_string(&drawn).expect("serializes");
        let back = Scenario::parse(Path::new("drawn.toml"), &text)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}\n{text}"));
        assert_eq!(back.knobs, KnobMode::Scenario);
        assert_eq!(
            back.cluster.fetch_max_wait,
            draws[seed as usize].fetch_max_wait
        );
    }
}

#[test]
fn a_run_under_swarm_knobs_runs_with_its_draw() {
    let fixed = parse("[run]\nduration = \"20s\"\nquiet_period = \"10s\"\n");
    let drawn = fixed.clone().with_knobs("swarm").unwrap();
    let report = run(&drawn, 3, false).report;
    assert!(report.pass, "{:?}", report.violations);
    let knobs = report.knobs.clone().expect("the draw is reported");
    assert_eq!(knobs, Knobs::draw(&fixed, 3));
    let (scenario, _) = drawn.for_seed(3);
    for c in broker_configs(&scenario) {
        assert_eq!(c.replica_lag_time_max_ms, knobs.replica_lag_time_max.ms());
        assert_eq!(
            c.broker_session_timeout_ms,
            knobs.broker_session_timeout.ms()
        );
        assert_eq!(c.fetch_max_wait_ms, knobs.fetch_max_wait.ms());
        assert_eq!(c.segment_bytes, u64::from(knobs.segment_bytes));
    }
    assert_ne!(
        report.trace_hash,
        run(&fixed, 3, false).report.trace_hash,
        "the knobs changed nothing"
    );
    assert!(run(&fixed, 3, false).report.knobs.is_none());
}

#[test]
fn the_one_shot_client_keeps_its_linger_and_batch_size() {
    let mut one_shot = Scenario::builtin_default();
    one_shot.workload.set_one_shot();
    let knobs = Knobs::draw(&one_shot, 5);
    assert_eq!((knobs.linger, knobs.batch_size), (None, None));
    assert!(Knobs::draw(&Scenario::builtin_default(), 5)
        .linger
        .is_some());
}

#[test]
fn shrink_writes_the_drawn_knobs_into_the_shrunk_scenario() {
    let text = "bugs = [\"skip-divergence-check\"]\nknobs = \"swarm\"\n[run]\nduration = \"40s\"\n\n[faults]\nswarm = true\n";
    let mut scenario = parse(text);
    scenario.workload.set_one_shot();
    let seed = (0..10)
        .find(|s| !run(&scenario, *s, false).report.pass)
        .expect("a failing seed");
    let knobs = Knobs::draw(&scenario, seed);
    let shrunk = shrink(&scenario, seed, &|_, _| {}).expect("shrinks");
    assert_eq!(shrunk.scenario.knobs, KnobMode::Scenario);
    assert_eq!(
        shrunk.scenario.cluster.replica_lag_time_max,
        knobs.replica_lag_time_max
    );
    assert_eq!(
        shrunk.scenario.cluster.request_timeout,
        knobs.request_timeout
    );
    let replay = run(&shrunk.scenario, seed, false).report;
    assert_eq!(
        replay.violations.first().map(|v| v.check),
        Some(shrunk.check),
        "the shrunk scenario replays the failure"
    );
}

#[test]
fn a_fetch_wait_beyond_the_lag_time_is_refused_by_name() {
    let text = "[cluster]\nreplica_lag_time_max = \"1s\"\nfetch_max_wait = \"2s\"\n";
    let error = Scenario::parse(Path::new("bad.toml"), text).expect_err("refused");
    assert!(error.to_string().contains("fetch_max_wait"), "{error}");
    let unknown =
        Scenario::parse(Path::new("bad.toml"), "knobs = \"wild\"\n").expect_err("refused");
    assert!(unknown.to_string().contains("wild"), "{unknown}");
}
