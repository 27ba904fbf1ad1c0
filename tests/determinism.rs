//! A seed replays bit for bit; another seed is another run.

use std::path::Path;

use logsim::run::{run, simulate};
use logsim::scenario::Scenario;

fn short() -> Scenario {
    // Every seed draws its own mix of every kind of fault.
    let text = "[run]\nduration = \"20s\"\nquiet_period = \"10s\"\n\n[faults]\nswarm = true\n";
    Scenario::parse(Path::new("short.toml"), text).expect("valid")
}

#[test]
fn the_same_seed_gives_the_same_trace_and_history() {
    let scenario = Scenario::builtin_default();
    let a = run(&scenario, 7, true);
    let b = run(&scenario, 7, true);
    assert!(a.report.pass, "{:?}", a.report.violations);
    assert_eq!(a.report.trace_hash, b.report.trace_hash);
    assert_eq!(a.trace, b.trace);
    assert_eq!(a.history, b.history);
    assert!(a.report.acked > 0 && a.report.crashes > 0);
}

#[test]
fn another_seed_gives_another_trace() {
    let scenario = short();
    let hashes: std::collections::BTreeSet<String> = (1..=4)
        .map(|seed| run(&scenario, seed, false).report.trace_hash)
        .collect();
    assert_eq!(hashes.len(), 4, "{hashes:?}");
}

fn simulate_short_seed() -> impl std::future::Future<Output = logsim::run::RunOutput> {
    simulate(short(), 11, false, Default::default())
}

#[test]
fn madsim_finds_no_nondeterminism() {
    // Runs the same seed twice and compares every random draw madsim's scheduler makes.
    let output = madsim::runtime::Runtime::check_determinism(
        11,
        madsim::Config::default(),
        simulate_short_seed,
    );
    assert!(output.report.acked > 0);
}
