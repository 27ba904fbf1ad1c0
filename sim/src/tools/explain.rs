//! `logsim explain`: plays a bug's scripted scenario (`scenarios/bugs/NAME.toml`) with its switch
//! on, and tells the run as a story for someone learning replication: who leads which epoch, what
//! each replica holds, which check caught the broken rule, and what closed it in Kafka. Then it
//! plays the same seed with the switch off, to show that the faults alone break nothing.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use model::bugs::{Bug, Switch};
use serde_json::Value;

use crate::tools::narrate;
use crate::run::{run, RunReport};
use crate::scenario::Scenario;

/// The scripted scenario of each bug, built in so that `explain` works from any directory.
const SCENARIOS: &[(Switch, &str)] = &[
    (
        Switch::SkipDivergenceCheck,
        include_str!("../../../scenarios/bugs/skip-divergence-check.toml"),
    ),
    (
        Switch::HwTruncation,
        include_str!("../../../scenarios/bugs/hw-truncation.toml"),
    ),
    (
        Switch::DoubleCrashDivergence,
        include_str!("../../../scenarios/bugs/double-crash-divergence.toml"),
    ),
    (
        Switch::UncleanElection,
        include_str!("../../../scenarios/bugs/unclean-election.toml"),
    ),
    (
        Switch::FastFailover,
        include_str!("../../../scenarios/bugs/fast-failover.toml"),
    ),
    (
        Switch::ZombieFollower,
        include_str!("../../../scenarios/bugs/zombie-follower.toml"),
    ),
    (
        Switch::SameLeaderNoTruncate,
        include_str!("../../../scenarios/bugs/same-leader-no-truncate.toml"),
    ),
    (
        Switch::HwAdvanceOldEpoch,
        include_str!("../../../scenarios/bugs/hw-advance-old-epoch.toml"),
    ),
    (
        Switch::LastReplicaStanding,
        include_str!("../../../scenarios/bugs/last-replica-standing.toml"),
    ),
    (
        Switch::NoFsyncBeforeAck,
        include_str!("../../../scenarios/bugs/no-fsync-before-ack.toml"),
    ),
    (
        Switch::GroupStaleCommit,
        include_str!("../../../scenarios/bugs/group-stale-commit.toml"),
    ),
    (
        Switch::MirrorSkipOnRestart,
        include_str!("../../../scenarios/bugs/mirror-skip-on-restart.toml"),
    ),
    (
        Switch::DedupWindowOfOne,
        include_str!("../../../scenarios/bugs/dedup-window-of-one.toml"),
    ),
    (
        Switch::ProducerStateNotRebuilt,
        include_str!("../../../scenarios/bugs/producer-state-not-rebuilt.toml"),
    ),
    (
        Switch::EpochBumpWithBatchesInFlight,
        include_str!("../../../scenarios/bugs/epoch-bump-with-batches-in-flight.toml"),
    ),
    (
        Switch::NoProducerFencing,
        include_str!("../../../scenarios/bugs/no-producer-fencing.toml"),
    ),
    (
        Switch::HangingTxn,
        include_str!("../../../scenarios/bugs/hanging-txn.toml"),
    ),
    (
        Switch::LateEndTxn,
        include_str!("../../../scenarios/bugs/late-end-txn.toml"),
    ),
    (
        Switch::ConsumerNoRewindOnAbort,
        include_str!("../../../scenarios/bugs/consumer-no-rewind-on-abort.toml"),
    ),
];

/// The seed the scripted scenarios are told with.
pub const SEED: u64 = 1;

/// A bug's scripted scenario, parsed, with its switch on.
pub fn bug_scenario(bug: Switch) -> Scenario {
    let text = scripted(bug);
    let path = format!("scenarios/bugs/{bug}.toml");
    let mut scenario = Scenario::parse(Path::new(&path), text).expect("a shipped scenario parses");
    scenario.bugs = vec![bug];
    scenario
}

/// What `explain` found: the story, and the two verdicts it rests on.
pub struct Explanation {
    /// The story, ready to print: the bug's rules, the interleaving, the run told, both verdicts.
    pub text: String,
    /// The run with the switch on failed.
    pub caught: bool,
    /// The same seed with the switch off passed.
    pub correct_passes: bool,
}

/// Plays `bug`'s scripted scenario with `seed`, its switch on and then off, and tells the run with
/// it on (see the module doc).
pub fn explain(bug: &Bug, seed: u64) -> Result<Explanation, String> {
    let scenario = bug_scenario(bug.switch);
    let with_bug = run(&scenario, seed, true);
    let mut correct = scenario.clone();
    correct.bugs.clear();
    let without = run(&correct, seed, false).report;

    let mut out = String::new();
    let _ = writeln!(out, "{}: {}", bug.name(), bug.wrong_rule);
    let _ = writeln!(out, "The right rule: {}.", bug.right_rule);
    let _ = writeln!(out, "Closed in Kafka by: {}.", bug.history);
    let _ = writeln!(
        out,
        "\nScenario scenarios/bugs/{}.toml, seed {seed}: {}",
        bug.name(), scenario.description
    );
    let plan = scenario_comment(bug.switch);
    if !plan.is_empty() {
        let _ = writeln!(out, "\nThe interleaving it plays:");
        for line in plan {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out, "\nWhat happened, with the switch on:");
    let mut story = Story::default();
    for line in &with_bug.trace {
        if let Some(sentence) = story.tell(line) {
            let _ = writeln!(out, "{sentence}");
        }
        if story.done() {
            break;
        }
    }
    let report = &with_bug.report;
    let _ = writeln!(out, "\nVerdict with the switch on: {}", verdict(report));
    let mut seen = Vec::new();
    for v in &report.violations {
        if seen.contains(&v.check) {
            continue;
        }
        seen.push(v.check);
        let _ = writeln!(out, "  {} ({}): {}", v.check, meaning(v.check.name()), v);
    }
    let _ = writeln!(
        out,
        "Verdict with the switch off, same scenario and seed: {}",
        verdict(&without)
    );
    Ok(Explanation {
        text: out,
        caught: !report.pass,
        correct_passes: without.pass,
    })
}

fn verdict(r: &RunReport) -> String {
    format!(
        "{} ({} records acknowledged, {} violations)",
        if r.pass { "PASS" } else { "FAIL" },
        r.acked,
        r.violations.len()
    )
}

/// The text of a bug's scripted scenario file.
fn scripted(bug: Switch) -> &'static str {
    SCENARIOS
        .iter()
        .find(|(switch, _)| *switch == bug)
        .map(|(_, text)| *text)
        .expect("every switch has a scripted scenario")
}

/// The comment block at the top of a bug's scenario file, without its `#`.
fn scenario_comment(bug: Switch) -> Vec<String> {
    scripted(bug)
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim_end().to_owned())
        .map(|l| l.strip_prefix(' ').map(str::to_owned).unwrap_or(l))
        .collect()
}

/// What a check stands for, in a learner's words.
pub fn meaning(check: &str) -> &'static str {
    match check {
        "committed-data-identical" => {
            "records below the high watermark must be the same on every replica"
        }
        "leader-completeness" => "a new leader must hold every record acknowledged before it",
        "isr-holds-high-watermark" => {
            "every ISR member must hold, synced, what the leader's high watermark covers"
        }
        "no-truncation-below-shown-high-watermark" => {
            "no replica may drop a record a consumer was allowed to read"
        }
        "acked-write-durable" => "an acknowledged acks=all record must survive",
        "replicated-after-heal" => "after healing, every replica must catch up",
        "leader-after-heal" => "after healing, every partition must have a leader",
        "single-leader-per-epoch" => "one leader per leader epoch",
        "monotonic-leader-high-watermark" => "a leader's high watermark never goes back",
        "read-stays-readable" => "a record a consumer read must stay on the leader",
        "lost-write" => "an acknowledged record must be read by a consumer that reads past it",
        "inconsistent-offsets" => "one offset must never hold two different records",
        "nonmonotonic-send" => "a producer's acknowledged offsets must go up",
        "unseen" => "every acknowledged record must be read in the end",
        "g1a" => "a reader must never see a record of a transaction that aborted",
        "poll-skip" => "a consumer must not skip a committed record between two it read",
        "hanging-transaction" => {
            "a transaction left open where no marker will come holds readers back for good"
        }
        "unfinished-transaction" => "a coordinator must end every transaction past its timeout",
        _ => "see the checks in README.md",
    }
}

/// Turns trace lines into sentences, and keeps what each replica is known to hold.
/// The kinds a story tells; the rest (votes, each high-watermark move) would drown it.
const STORY_KINDS: &[&str] = &[
    "fault",
    "heal",
    "broker_fenced",
    "partition_changed",
    "became_leader",
    "became_follower",
    "truncated",
    "isr_changed",
    "log_recovered",
    "txn_decided",
    "txn_completed",
    "violation",
    "faults_stopped",
];

/// The story ends when the faults stop; the end-of-run verdicts follow it. It keeps each broker's
/// high watermark, to show what each held when a check caught the bug.
#[derive(Default)]
struct Story {
    high_watermarks: BTreeMap<(String, i64), i64>,
    caught: Vec<String>,
    ended: bool,
}

impl Story {
    fn done(&self) -> bool {
        self.ended
    }

    fn tell(&mut self, line: &str) -> Option<String> {
        let told = narrate::tell(line)?;
        match told.kind.as_str() {
            "high_watermark" => {
                let e: Value = serde_json::from_str(line).ok()?;
                let partition = told.partition.clone().unwrap_or_default();
                let hw = e["high_watermark"].as_i64().unwrap_or(-1);
                self.high_watermarks.insert((partition, told.node), hw);
                return None;
            }
            "faults_stopped" => self.ended = true,
            "violation" => {
                let check = told.text.split(':').next().unwrap_or("").to_owned();
                if self.caught.contains(&check) {
                    return None;
                }
                self.caught.push(check);
                let partition = told
                    .partition
                    .clone()
                    .or_else(|| self.high_watermarks.keys().next().map(|(p, _)| p.clone()));
                let held: Vec<String> = self
                    .high_watermarks
                    .iter()
                    .filter(|((p, _), _)| Some(p) == partition.as_ref())
                    .map(|((_, b), hw)| format!("broker {b}: {hw}"))
                    .collect();
                return Some(format!(
                    "{told}\n{:>32}high watermarks then: {}",
                    "",
                    held.join(", ")
                ));
            }
            // The first start and its empty logs say nothing yet.
            "log_recovered"
                if told.text.contains("log end 0,") || told.text.contains("reopens __") =>
            {
                return None
            }
            "became_follower" if told.text.contains("has no leader") => return None,
            _ => {}
        }
        STORY_KINDS
            .contains(&told.kind.as_str())
            .then(|| told.to_string())
    }
}
