//! The foundation's bar: a hundred seeds with crashes pass, and across them leaders really change
//! and followers really truncate.

use logsim::run::run;
use logsim::scenario::Scenario;

#[test]
fn a_hundred_default_seeds_pass_with_elections_and_truncations() {
    let scenario = Scenario::builtin_default();
    let seeds: Vec<u64> = (1000..1100).collect();
    let reports = std::thread::scope(|scope| {
        let workers = 2;
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (scenario, seeds) = (&scenario, &seeds);
                scope.spawn(move || {
                    seeds
                        .iter()
                        .skip(w)
                        .step_by(workers)
                        .map(|s| run(scenario, *s, false).report)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker"))
            .collect::<Vec<_>>()
    });
    let failed: Vec<_> = reports
        .iter()
        .filter(|r| !r.pass)
        .map(|r| (r.seed, r.violations.first().cloned()))
        .collect();
    assert!(failed.is_empty(), "failed seeds: {failed:?}");
    assert!(reports
        .iter()
        .all(|r| r.acked > 0 && r.consumed > 0 && r.crashes > 0));
    let elections: u64 = reports.iter().map(|r| r.elections).sum();
    let truncations: u64 = reports.iter().map(|r| r.truncations).sum();
    // Three initial leaders a run; anything beyond is a failover.
    assert!(
        elections > 3 * reports.len() as u64,
        "elections {elections}"
    );
    assert!(truncations > 0, "no follower ever truncated");
}
