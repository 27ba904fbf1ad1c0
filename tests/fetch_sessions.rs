//! Fetch sessions under pressure: a broker that keeps fewer sessions than it has fetchers evicts
//! them over and over, and every fetcher whose session went is refused and starts over in full.
//! Replication and consumption must carry on through it, and so must a broker that keeps none.

use logsim::run::run;
use logsim::scenario::Scenario;

fn with_slots(slots: u32) -> Scenario {
    let mut s = Scenario::builtin_default();
    s.cluster.fetch_session_slots = slots;
    s
}

#[test]
fn fetchers_that_keep_losing_their_sessions_still_replicate_everything() {
    for (slots, seed) in [(1, 1), (1, 2), (0, 3)] {
        let out = run(&with_slots(slots), seed, false);
        let r = &out.report;
        assert!(
            r.pass && r.acked > 1000,
            "{slots} slot(s), seed {seed}: acked {}, {:?}",
            r.acked,
            r.violations.iter().take(3).collect::<Vec<_>>()
        );
    }
}

#[test]
fn a_full_session_cache_changes_the_traffic_but_not_the_verdict() {
    let roomy = run(&with_slots(1000), 4, false).report;
    let cramped = run(&with_slots(1), 4, false).report;
    assert!(roomy.pass && cramped.pass);
    assert_ne!(
        roomy.counters.messages, cramped.counters.messages,
        "evictions must show in the traffic, or the cache size was not applied"
    );
}
