//! Property tests: proptest draws a cluster shape, a workload and a fault timeline; the property is
//! that the correct system passes every check. A failing case is shrunk by proptest (fewer and
//! shorter faults, a smaller cluster) and written out, each time a smaller one fails, to
//! `reports/proptest-failure.toml`, which `logsim run --seed 0 --scenario` replays.

use std::path::Path;

use logsim::run::run;
use logsim::scenario::Scenario;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn fault() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        Just("crash"),
        Just("shutdown"),
        Just("pause"),
        Just("partition"),
        Just("clock-skew"),
        Just("disk-full"),
        Just("disk-torn"),
        Just("disk-corrupt"),
    ];
    (kind, 2u32..25, 1u32..8, 1u32..=3).prop_map(|(kind, at, duration, broker)| {
        let target = match kind {
            "partition" => format!("isolate:broker:{broker}"),
            _ => format!("broker:{broker}"),
        };
        let extra = if kind == "clock-skew" { "offset = \"-5s\"\n" } else { "" };
        format!("[[faults.timeline]]\nat = \"{at}s\"\nkind = \"{kind}\"\ntarget = \"{target}\"\nduration = \"{duration}s\"\n{extra}")
    })
}

fn scenario() -> impl Strategy<Value = String> {
    (3i32..=4, 1u32..=4, prop_oneof![Just("all"), Just("1")], prop::collection::vec(fault(), 0..6)).prop_map(
        |(brokers, producers, acks, faults)| {
            format!(
                "[cluster]\nbrokers = {brokers}\n\n[workload]\nproducers = {producers}\nacks = \"{acks}\"\n\n[run]\nduration = \"30s\"\nquiet_period = \"20s\"\n\n{}",
                faults.concat()
            )
        },
    )
}

#[test]
fn the_correct_system_passes_any_drawn_cluster_workload_and_timeline() {
    // A fresh runner per run: proptest's runner keeps state between runs of one thread.
    let mut runner = TestRunner::new(Config {
        cases: 16,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&scenario(), |text| {
        let scenario = Scenario::parse(Path::new("proptest.toml"), &text)
            .expect("the strategy writes valid scenarios");
        let report = run(&scenario, 0, false).report;
        if !report.pass {
            let _ = std::fs::create_dir_all("reports");
            let _ = std::fs::write("reports/proptest-failure.toml", &text);
        }
        prop_assert!(report.pass, "{:?}\n{text}", report.violations.first());
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\nthe shrunk case is in reports/proptest-failure.toml");
    }
}
