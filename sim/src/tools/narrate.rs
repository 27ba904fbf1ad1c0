//! A run's trace for people: each JSON trace line becomes one line of plain words (time, node,
//! what happened), and a filter picks lines by partition, node and kind. `logsim trace` prints it,
//! `logsim explain` tells its story with it, and the snapshot tests pin elections with it.

use serde_json::Value;

/// One trace event, told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Told {
    /// Simulated milliseconds since the run started.
    pub t_ms: u64,
    /// The broker it happened on; -1 for the harness (faults on links, the network).
    pub node: i64,
    /// The trace's own kind (`became_leader`, `truncated`, `fault`, ...).
    pub kind: String,
    /// `topic-partition`, for events about one.
    pub partition: Option<String>,
    /// What happened, in plain words (the raw line, for a kind not known here).
    pub text: String,
}

impl std::fmt::Display for Told {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let node = if self.node < 0 {
            "  -".to_owned()
        } else {
            format!("n{:<2}", self.node)
        };
        write!(
            f,
            "{:>9.3}s {node} {:<17} {}",
            self.t_ms as f64 / 1000.0,
            self.kind,
            self.text
        )
    }
}

/// Which lines to keep: all of them by default.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Keeps this partition's lines (`events-2`) and lines about no partition; `None` keeps all.
    pub partition: Option<String>,
    /// Keeps this broker's lines and the harness's (node -1); `None` keeps every node's.
    pub node: Option<i64>,
    /// Trace kinds to keep; empty keeps every kind.
    pub kinds: Vec<String>,
}

impl Filter {
    /// The lines that tell who leads (`ELECTION_KINDS`): what the election snapshots keep.
    pub fn elections() -> Filter {
        Filter {
            kinds: ELECTION_KINDS.iter().map(|k| k.to_string()).collect(),
            ..Filter::default()
        }
    }

    /// Whether the filter keeps `e`.
    pub fn keeps(&self, e: &Told) -> bool {
        let partition = match (&self.partition, &e.partition) {
            (Some(want), Some(p)) => want == p,
            // Faults and quorum events concern every partition.
            (Some(_), None) => true,
            (None, _) => true,
        };
        let node = self.node.is_none_or(|n| n == e.node || e.node < 0);
        let kind = self.kinds.is_empty() || self.kinds.contains(&e.kind);
        partition && node && kind
    }
}

/// The kinds that tell who leads: what the election snapshots keep.
pub const ELECTION_KINDS: &[&str] = &[
    "fault",
    "heal",
    "quorum_leader",
    "controller_active",
    "broker_fenced",
    "partition_changed",
    "became_leader",
    "truncated",
];

/// Tells one JSON trace line; `None` for a line that is not a trace event.
pub fn tell(line: &str) -> Option<Told> {
    let e: Value = serde_json::from_str(line).ok()?;
    let kind = e["kind"].as_str()?.to_owned();
    let num = |k: &str| e[k].as_i64().unwrap_or(-1);
    let text_of = |k: &str| e[k].as_str().unwrap_or("?").to_owned();
    let partition = e
        .get("partition")
        .filter(|p| p.is_object())
        .map(|p| format!("{}-{}", p["topic"].as_str().unwrap_or("?"), p["partition"]));
    let p = partition.clone().unwrap_or_default();
    let text = match kind.as_str() {
        "fault" => fault_text(&e),
        "heal" => match e["fault"].as_str().unwrap_or("?") {
            "partition" | "clog" => format!("the cut {} heals", text_of("target")),
            fault => format!("the {fault} fault on {} ends", text_of("target")),
        },
        "broker_started" => format!("starts, incarnation {}", num("incarnation")),
        "shut_down" => format!(
            "shut down{}",
            if e["leaderships_moved"].as_bool() == Some(true) {
                ", its leaderships moved first"
            } else {
                ""
            }
        ),
        "log_recovered" => format!(
            "reopens {p}: log end {}, high watermark {}, {} bytes dropped",
            num("log_end_offset"),
            num("high_watermark"),
            num("dropped_bytes")
        ),
        "quorum_candidate" => format!("stands for quorum epoch {}", num("epoch")),
        "quorum_vote" => format!(
            "{} broker {} in quorum epoch {}",
            if e["granted"].as_bool() == Some(true) {
                "votes for"
            } else {
                "refuses"
            },
            num("candidate"),
            num("epoch")
        ),
        "quorum_leader" => format!("leads the controller quorum in epoch {}", num("epoch")),
        "quorum_follower" => format!(
            "follows broker {} in quorum epoch {}",
            num("leader"),
            num("epoch")
        ),
        "controller_active" => format!("is the active controller (epoch {})", num("epoch")),
        "broker_registered" => format!(
            "registers broker {}, incarnation {}",
            num("broker"),
            num("incarnation")
        ),
        "broker_fenced" => format!("fences broker {} ({})", num("broker"), text_of("reason")),
        "broker_unfenced" => format!("unfences broker {}", num("broker")),
        "partition_changed" if num("leader") < 0 => format!(
            "{p}: no leader in epoch {}, ISR {}",
            num("leader_epoch"),
            e["isr"]
        ),
        "partition_changed" => format!(
            "{p}: leader {} in epoch {}, ISR {}{}",
            num("leader"),
            num("leader_epoch"),
            e["isr"],
            if e["unclean"].as_bool() == Some(true) {
                ", UNCLEAN (from outside the ISR)"
            } else {
                ""
            }
        ),
        "became_leader" => format!(
            "leads {p} in epoch {}: log end {}, high watermark {}",
            num("leader_epoch"),
            num("log_end_offset"),
            num("high_watermark")
        ),
        "became_follower" if num("leader") < 0 => {
            format!("{p} has no leader in epoch {}", num("leader_epoch"))
        }
        "became_follower" => format!(
            "follows broker {} in epoch {} of {p}",
            num("leader"),
            num("leader_epoch")
        ),
        "isr_changed" => format!("{p}: ISR now {}", e["isr"]),
        "truncated" => format!(
            "truncates {p} from {} back to {} (its high watermark was {})",
            num("from"),
            num("to"),
            num("high_watermark")
        ),
        "high_watermark" => format!("{p}: high watermark {}", num("high_watermark")),
        "txn_decided" => format!(
            "decides to {} `{}`'s transaction (producer {}, epoch {}) on {} ({})",
            if e["commit"].as_bool() == Some(true) { "COMMIT" } else { "ABORT" },
            text_of("transactional_id"),
            num("producer_id"),
            num("producer_epoch"),
            partition_list(&e["partitions"]),
            text_of("why")
        ),
        "txn_completed" => format!(
            "`{}`'s transaction is {}: every marker written",
            text_of("transactional_id"),
            if e["commit"].as_bool() == Some(true) { "committed" } else { "aborted" }
        ),
        "violation" => format!("VIOLATION {}: {}", text_of("check"), text_of("message")),
        "faults_stopped" => "faults stop; the quiet period begins".to_owned(),
        "quiet_period_ended" => "the quiet period ends".to_owned(),
        _ => line.to_owned(),
    };
    Some(Told {
        t_ms: e["t"].as_u64().unwrap_or(0),
        node: e["node"].as_i64().unwrap_or(-1),
        kind,
        partition,
        text,
    })
}

/// `[events-0, events-2]` from a list of partitions as events write them.
fn partition_list(v: &Value) -> String {
    let names: Vec<String> = (v.as_array().into_iter().flatten())
        .map(|p| format!("{}-{}", p["topic"].as_str().unwrap_or("?"), p["partition"]))
        .collect();
    format!("[{}]", names.join(", "))
}

fn fault_text(e: &Value) -> String {
    let target = e["target"].as_str().unwrap_or("?");
    let detail = e["detail"].as_str().unwrap_or("");
    let what = match e["fault"].as_str().unwrap_or("?") {
        "crash" => format!("broker {target} crashes, losing what it had not synced"),
        "shutdown" => format!("broker {target} shuts down cleanly, handing its leaderships over"),
        "restart" => format!("broker {target} restarts"),
        "pause" => format!("broker {target} freezes"),
        "disk-loss" => format!("broker {target}'s disk drops what was not synced"),
        "partition" | "clog" => format!("the network cuts {target}"),
        other => format!("{other} on {target}"),
    };
    if detail.is_empty() {
        what
    } else {
        format!("{what} ({detail})")
    }
}

/// The told lines of a trace that `filter` keeps.
pub fn told(trace: &[String], filter: &Filter) -> Vec<Told> {
    trace
        .iter()
        .filter_map(|l| tell(l))
        .filter(|e| filter.keeps(e))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_words_and_the_filter_picks_them() {
        let lines = [
            r#"{"t":15000,"node":2,"kind":"fault","fault":"crash","target":"2","detail":""}"#,
            r#"{"t":17329,"node":3,"kind":"became_leader","partition":{"topic":"events","partition":0},"leader_epoch":1,"log_end_offset":959,"high_watermark":957}"#,
            r#"{"t":17333,"node":4,"kind":"truncated","partition":{"topic":"events","partition":0},"from":965,"to":959,"high_watermark":957}"#,
            r#"{"t":17400,"node":4,"kind":"became_leader","partition":{"topic":"events","partition":1},"leader_epoch":3,"log_end_offset":10,"high_watermark":10}"#,
        ]
        .map(str::to_owned);
        let all = told(&lines, &Filter::default());
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[1].to_string(),
            "   17.329s n3  became_leader     leads events-0 in epoch 1: log end 959, high watermark 957"
        );
        assert!(all[2].text.contains("from 965 back to 959"));
        let events0 = Filter {
            partition: Some("events-0".into()),
            ..Filter::default()
        };
        assert_eq!(
            told(&lines, &events0).len(),
            3,
            "the fault stays, events-1 goes"
        );
        let truncations = Filter {
            kinds: vec!["truncated".into()],
            node: Some(4),
            ..Filter::default()
        };
        assert_eq!(told(&lines, &truncations).len(), 1);
        assert!(tell("not json").is_none());
    }
}
