//! Seeds a soak swarm once failed on the correct system, replayed: each must pass, and each must
//! still reach the shape that made it fail, so a schedule change that no longer reaches it shows
//! up here rather than hiding a regression.

mod shipped;

use logsim::record::history::{Op, OpFn, OpType};
use logsim::run::run;
use logsim::scenario::Scenario;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

fn scenario(file: &str, faults: &str) -> Scenario {
    let mut s = shipped::shipped(file, faults);
    // The soaks that found these seeds ran the one-shot client, before Kafka's producer was the
    // workload's default; their schedules are reached again only with it.
    s.workload.set_one_shot();
    s
}

/// (partition, epoch, leader) of every election taken up after a newer epoch of the same partition
/// was already decided: a broker applying stale metadata as it wakes.
fn stale_take_ups(trace: &[String]) -> Vec<(String, i64, i64)> {
    let mut newest: BTreeMap<String, i64> = BTreeMap::new();
    let mut stale = Vec::new();
    for line in trace {
        let e: Value = serde_json::from_str(line).expect("trace line is JSON");
        let Some(p) = e.get("partition").filter(|p| p.is_object()) else {
            continue;
        };
        let name = format!("{}-{}", p["topic"].as_str().unwrap_or(""), p["partition"]);
        let epoch = e["leader_epoch"].as_i64().unwrap_or(-1);
        match e["kind"].as_str() {
            Some("partition_changed") => {
                let n = newest.entry(name).or_insert(epoch);
                *n = (*n).max(epoch);
            }
            Some("became_leader") if newest.get(&name).is_some_and(|n| *n > epoch) => {
                stale.push((name, epoch, e["node"].as_i64().unwrap_or(-1)));
            }
            _ => {}
        }
    }
    stale
}

/// Leader completeness once dated an election by the moment the broker took it up. A broker that
/// froze between the controller's decision and taking it up woke into a later epoch's
/// acknowledgements and was judged against them: a false alarm, since a Kafka broker applies its
/// metadata log in order and a zombie leader owes only what was acknowledged when it was chosen.
#[test]
fn a_leader_taking_up_a_stale_election_on_waking_is_judged_by_its_election() {
    // Re-picked with `search_seeds_for_a_shape` when fetch sessions, the quorum leader's
    // withheld high watermark and batched AlterPartition requests moved every schedule: the seeds that once failed no longer reach
    // the shape.
    let cases = [
        ("everything.toml", "scenario", 11033, ("events-0", 2, 3)),
        ("everything.toml", "scenario", 11057, ("events-0", 1, 3)),
        ("everything.toml", "scenario", 11106, ("events-0", 1, 2)),
        ("default.toml", "swarm", 409, ("events-0", 0, 1)),
        ("default.toml", "swarm", 518, ("events-1", 0, 2)),
        ("default.toml", "swarm", 521, ("events-0", 0, 1)),
        ("default.toml", "swarm", 455, ("events-0", 3, 2)),
    ];
    for (file, faults, seed, (partition, epoch, node)) in cases {
        let out = run(&scenario(file, faults), seed, true);
        let stale = stale_take_ups(&out.trace);
        assert!(
            stale.contains(&(partition.to_string(), epoch, node)),
            "{file} seed {seed} no longer takes up a stale election ({stale:?}): pick a seed that does"
        );
        assert!(
            out.report.pass && out.report.acked > 0,
            "{file} seed {seed}: {:?}",
            out.report.violations
        );
    }
}

/// Whether some member of a group took a partition up while another member's commit of it was
/// sent and not yet answered.
fn assigned_during_anothers_commit(history: &[Op]) -> bool {
    let mut in_flight: BTreeMap<(u64, String), &str> = BTreeMap::new();
    for op in history {
        let (Some(group), OpFn::Commit | OpFn::Assign) = (op.group.as_deref(), op.f) else {
            continue;
        };
        let keys: Vec<String> = match op.f {
            OpFn::Commit => op.offsets.iter().flat_map(|o| o.keys().cloned()).collect(),
            _ => op.keys.iter().flat_map(|k| k.iter().cloned()).collect(),
        };
        for key in keys {
            match (op.f, op.kind) {
                (OpFn::Commit, OpType::Invoke) => {
                    in_flight.insert((op.process, key), group);
                }
                (OpFn::Commit, _) => {
                    in_flight.remove(&(op.process, key));
                }
                (_, OpType::Ok)
                    if in_flight
                        .iter()
                        .any(|((p, k), g)| *p != op.process && *k == key && *g == group) =>
                {
                    return true;
                }
                _ => {}
            }
        }
    }
    false
}

/// The client-history checker once took a member's resume point to be the group's last answered
/// commit. A commit takes effect when the coordinator writes it, before its answer arrives, so a
/// member that takes the partition up meanwhile may start from it: poll-skip was a false alarm.
#[test]
fn a_member_may_resume_from_a_commit_still_in_flight() {
    // Re-picked as above.
    let cases = [
        ("consumer-groups.toml", 1003),
        ("consumer-groups.toml", 1005),
        ("mirror-maker.toml", 19716),
    ];
    for (file, seed) in cases {
        let out = run(&scenario(file, "scenario"), seed, true);
        assert!(
            assigned_during_anothers_commit(&out.history),
            "{file} seed {seed} no longer hands a partition over during a commit: pick a seed that does"
        );
        assert!(
            out.report.pass && out.report.acked > 0,
            "{file} seed {seed}: {:?}",
            out.report.violations
        );
    }
}

/// (restarted broker, fenced broker) for each restart that came within a broker session timeout
/// after a fault healed, followed (still within it) by the controller fencing another broker.
fn fenced_soon_after_a_heal(trace: &[String]) -> Vec<(i64, i64)> {
    const SESSION_MS: i64 = 3_000;
    let events: Vec<Value> = trace
        .iter()
        .map(|l| serde_json::from_str(l).expect("trace line is JSON"))
        .collect();
    let t = |e: &Value| e["t"].as_i64().unwrap_or(-1);
    let mut found = Vec::new();
    let mut last_heal = None;
    let mut restarted = None;
    for e in &events {
        match (e["kind"].as_str(), e["fault"].as_str()) {
            (Some("heal"), _) => (last_heal, restarted) = (Some(t(e)), None),
            (Some("fault"), Some("restart")) => restarted = Some(e["node"].as_i64().unwrap_or(-1)),
            (Some("broker_fenced"), _) => {
                let broker = e["broker"].as_i64().unwrap_or(-1);
                let recent = last_heal.is_some_and(|h| t(e) < h + SESSION_MS);
                if let Some(r) = restarted.filter(|r| recent && *r != broker) {
                    found.push((r, broker));
                }
            }
            _ => {}
        }
    }
    found
}

/// A wipe once struck a restarting broker while the ISR still counted a healthy peer, but that
/// peer's heartbeats had been held back by a partition that had just healed: the controller
/// fenced it a moment later, the wiped broker became the last ISR member and led with an empty
/// log. Damage now waits for a broker session timeout of calm after any fault ends.
#[test]
fn disk_damage_waits_out_the_lagging_effects_of_a_heal() {
    let out = run(&scenario("dedicated-controller.toml", "swarm"), 16316, true);
    assert!(
        fenced_soon_after_a_heal(&out.trace).contains(&(3, 2)),
        "seed 16316 no longer restarts broker 3 and fences broker 2 right after a heal: pick a seed that does"
    );
    assert!(
        out.report.pass && out.report.acked > 0,
        "seed 16316: {:?}",
        out.report.violations.iter().take(3).collect::<Vec<_>>()
    );
}

/// A new quorum leader once told its followers the high watermark it had learned as a follower,
/// before committing anything of its own epoch. Broker 2 had led events-2 in epoch 4 and
/// restarted; its image, rebuilt from zero up to that old high watermark, named broker 1 leader
/// of epoch 3, and it followed the deposed leader and truncated acknowledged records. A leader
/// now advertises no high watermark until its epoch commits, as KRaft's does; the broker asserts
/// that its image is never older than its own log (which fires on this seed without the rule).
#[test]
fn a_restarted_broker_waits_for_the_new_quorum_leaders_commit_before_taking_up_roles() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/scenarios/everything.toml"
    ));
    let s = Scenario::load(path).expect("shipped scenario");
    let out = run(&s, 9757, false);
    let withheld = out
        .report
        .counters
        .marks
        .get("quorum-leader-withholds-high-watermark");
    assert!(
        withheld.is_some(),
        "seed 9757 no longer has a new quorum leader withhold a high watermark: pick a seed that does"
    );
    assert!(
        out.report.pass && out.report.acked > 0,
        "seed 9757: {:?}",
        out.report.violations.iter().take(3).collect::<Vec<_>>()
    );
}

/// Finds new seeds for the tests above when a schedule change moves them off their shapes:
/// `LOGSIM_SEARCH=file:faults:shape:from..to cargo test --release --test soak_regressions -- --ignored --nocapture`,
/// where shape is `stale-take-up` or `assigned-during-commit`. It prints each seed that reaches
/// the shape, with its verdict.
#[test]
#[ignore]
fn search_seeds_for_a_shape() {
    let spec = std::env::var("LOGSIM_SEARCH").expect("LOGSIM_SEARCH=file:faults:shape:from..to");
    let parts: Vec<&str> = spec.split(':').collect();
    let [file, faults, shape, range] = parts[..] else {
        panic!("LOGSIM_SEARCH=file:faults:shape:from..to, not {spec}");
    };
    let (from, to) = range.split_once("..").expect("a range from..to");
    let (from, to): (u64, u64) = (from.parse().expect("from"), to.parse().expect("to"));
    let s = scenario(file, faults);
    for seed in from..to {
        let out = run(&s, seed, true);
        let found = match shape {
            "stale-take-up" => format!("{:?}", stale_take_ups(&out.trace)),
            "assigned-during-commit" => assigned_during_anothers_commit(&out.history).to_string(),
            other => panic!("unknown shape {other}"),
        };
        if found != "[]" && found != "false" {
            println!("seed {seed}: {found} pass={}", out.report.pass);
        }
    }
}
