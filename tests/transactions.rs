//! Transactions end to end: the shipped scenario commits, aborts and recovers transactions and
//! passes; read_committed readers are what keeps aborted records out of the history (the same
//! run with read_uncommitted readers is caught reading them, `g1a`); and the settle checks and
//! the gate fail runs that leave transactions hanging or commit none.

use std::path::Path;

use logsim::run::run;
use logsim::scenario::{Isolation, Scenario};

fn shipped() -> Scenario {
    let path = format!("{}/scenarios/transactions.toml", env!("CARGO_MANIFEST_DIR"));
    Scenario::load(Path::new(&path)).expect("the shipped scenario loads")
}

#[test]
fn the_shipped_scenario_commits_aborts_and_recovers_transactions_and_passes() {
    let mut marks = std::collections::BTreeSet::new();
    for seed in 1..=3 {
        let report = run(&shipped(), seed, false).report;
        assert!(report.pass, "seed {seed}: {:?}", report.violations.first());
        let t = report.transactions.expect("transactions counted");
        assert!(t.committed > 0 && t.aborted > 0, "seed {seed}: {t:?}");
        let timeouts = report
            .counters
            .marks
            .get("txn-timed-out")
            .copied()
            .unwrap_or(0);
        assert_eq!(
            t.timed_out, timeouts,
            "seed {seed}: the timeouts are the mark's count"
        );
        assert!(report
            .counters
            .invariants
            .contains_key("hanging-transaction"));
        marks.extend(report.counters.marks.keys().copied());
    }
    for mark in ["txn-coordinator-recovers", "fault-point-delay-end-txn"] {
        assert!(marks.contains(mark), "no seed reached {mark}: {marks:?}");
    }
}

#[test]
fn readers_that_see_uncommitted_records_are_caught_reading_aborted_ones() {
    let mut uncommitted = shipped();
    uncommitted.workload.isolation = Some(Isolation::ReadUncommitted);
    let report = run(&uncommitted, 1, false).report;
    assert!(
        report.violations.iter().any(|v| v.check.name() == "g1a"),
        "{:?}",
        report
            .violations
            .iter()
            .map(|v| v.check.name())
            .collect::<Vec<_>>()
    );
    assert!(
        run(&shipped(), 1, false).report.pass,
        "the read_committed twin passes"
    );
}

#[test]
fn a_run_whose_transactions_never_commit_fails_its_gate() {
    let mut never = shipped();
    never.faults = Default::default();
    if let Some(t) = never.workload.transactions.as_mut() {
        t.abort_rate = 1.0;
    }
    let report = run(&never, 1, false).report;
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.message.contains("none committed")),
        "{:?}",
        report.violations
    );
}

fn refused(text: &str) -> String {
    Scenario::parse(Path::new("bad.toml"), text)
        .expect_err("refused")
        .to_string()
}

#[test]
fn bad_transaction_settings_are_refused_with_what_was_expected() {
    let e = refused("[workload.transactions]\nabort_rate = 2.0\n");
    assert!(e.contains("abort_rate = 2: expected 0 to 1"), "{e}");
    let e = refused("[workload.transactions]\nsends = [3, 2]\n");
    assert!(e.contains("sends = [3, 2]"), "{e}");
    let e = refused("[cluster]\ntransaction_version = 3\n");
    assert!(
        e.contains("transaction_version = 3: expected 1 or 2"),
        "{e}"
    );
    let e = refused("fault_points = [\"delay-everything\"]\n");
    assert!(
        e.contains("unknown fault point `delay-everything`: expected one of delay-reply"),
        "{e}"
    );
    let e = refused("[workload]\nisolation = \"serializable\"\n");
    assert!(e.contains("unknown variant `serializable`"), "{e}");
}
