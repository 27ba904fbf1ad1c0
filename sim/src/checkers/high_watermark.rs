//! High-watermark rules. The newest-epoch leader's high watermark never goes down while it leads
//! that epoch (a new leader may start lower: it learns the old one's high watermark late). And no
//! replica truncates below a high watermark it had taken as committed when that offset was also
//! shown to a consumer: that would be cutting committed data a reader has seen.

use std::collections::BTreeMap;
use super::Check;

use model::BrokerId;

use std::sync::Arc;

use model::env::Event;
use model::sync::Lock;

use super::invariant::{Heard, Invariant, Judgment};
use super::view::{NodeView, ReplicaView};
use super::Violation;

/// A leader's offset that must never go back while it leads one epoch (a new leader may start
/// lower): the high watermark (`monotonic-leader-high-watermark`), or the last stable offset
/// (part of `last-stable-offset`). Each partition's newest (epoch, offset) a leader showed.
pub struct LeaderMonotonic {
    check: Check,
    /// What the offset is called in a violation's message.
    what: &'static str,
    offset: fn(&ReplicaView) -> i64,
    /// Partition -> (leader epoch, offset) of its newest leader so far.
    newest: BTreeMap<String, (i32, i64)>,
}

/// The `monotonic-leader-high-watermark` check.
pub type LeaderHighWatermark = LeaderMonotonic;

impl Default for LeaderMonotonic {
    fn default() -> Self {
        LeaderMonotonic::new(Check::MonotonicLeaderHighWatermark, "high watermark", |r| {
            r.high_watermark
        })
    }
}

impl LeaderMonotonic {
    /// A rule reported as `check`, on the offset `offset` reads, called `what`.
    pub fn new(check: Check, what: &'static str, offset: fn(&ReplicaView) -> i64) -> Self {
        LeaderMonotonic {
            check,
            what,
            offset,
            newest: BTreeMap::new(),
        }
    }

    /// Judges every current leader's offset against the highest shown in its epoch.
    pub fn check(&mut self, time_ms: u64, nodes: &[NodeView]) -> Vec<Violation> {
        let mut out = Vec::new();
        for n in nodes {
            for r in n.replicas.iter().filter(|r| r.is_leader) {
                let offset = (self.offset)(r);
                let first = (r.leader_epoch, offset);
                let entry = crate::slot(&mut self.newest, &*r.partition, || first);
                if r.leader_epoch == entry.0 && offset < entry.1 {
                    out.push(Violation {
                        check: self.check,
                        time_ms,
                        node: Some(n.node),
                        partition: Some(r.partition.to_string()),
                        offsets: vec![entry.1, offset],
                        message: format!(
                            "the leader of epoch {} moved its {} back from {} to {offset}",
                            r.leader_epoch, self.what, entry.1
                        ),
                    });
                }
                if r.leader_epoch > entry.0 || (r.leader_epoch == entry.0 && offset > entry.1) {
                    *entry = (r.leader_epoch, offset);
                }
            }
        }
        out
    }
}

/// A truncation from `from` to `to` by `node`, which had taken `high_watermark` as committed, when
/// consumers had been shown up to `shown`.
pub fn truncation_below_shown(
    time_ms: u64,
    node: BrokerId,
    partition: &str,
    (from, to, high_watermark): (i64, i64, i64),
    shown: i64,
) -> Option<Violation> {
    let floor = high_watermark.min(shown);
    (to < floor).then(|| Violation {
        check: Check::NoTruncationBelowShownHighWatermark,
        time_ms,
        node: Some(node),
        partition: Some(partition.to_owned()),
        offsets: vec![from, to],
        message: format!("truncated from {from} to {to}, below its high watermark {high_watermark} with {shown} shown to consumers"),
    })
}

/// The rule of `truncation_below_shown`, judged on each truncation as it happens.
pub struct NoTruncationBelowShown {
    /// The highest high watermark each partition showed a consumer (the workload writes it).
    shown: Arc<Lock<BTreeMap<String, i64>>>,
}

impl NoTruncationBelowShown {
    /// The rule against the high watermarks in `shown`.
    pub fn new(shown: Arc<Lock<BTreeMap<String, i64>>>) -> Self {
        NoTruncationBelowShown { shown }
    }
}

impl Invariant for NoTruncationBelowShown {
    /// It judges events, not steps.
    fn incremental(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        super::Check::NoTruncationBelowShownHighWatermark.name()
    }

    fn observe(&mut self, heard: &Heard<'_>) -> Judgment {
        let Event::Truncated {
            partition,
            from,
            to,
            high_watermark,
        } = heard.event
        else {
            return None;
        };
        let partition = partition.to_string();
        let shown = self.shown.lock().get(&partition).copied().unwrap_or(0);
        let found = truncation_below_shown(
            heard.time_ms,
            heard.node,
            &partition,
            (*from, *to, *high_watermark),
            shown,
        );
        Some(found.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::view::tests::node;
    use super::super::view::ReplicaView;
    use super::*;

    fn leader(epoch: i32, hw: i64) -> Vec<NodeView> {
        let r = ReplicaView {
            partition: "t-0".into(),
            leader_epoch: epoch,
            is_leader: true,
            high_watermark: hw,
            ..Default::default()
        };
        vec![node(1, r)]
    }

    #[test]
    fn a_leader_high_watermark_that_goes_back_is_caught_but_a_new_leader_may_start_lower() {
        let mut check = LeaderHighWatermark::default();
        assert!(check.check(1, &leader(1, 10)).is_empty());
        assert!(
            check.check(2, &leader(2, 7)).is_empty(),
            "a new epoch may start lower"
        );
        assert!(check.check(3, &leader(2, 9)).is_empty());
        let v = check.check(4, &leader(2, 8));
        assert_eq!(v[0].offsets, vec![9, 8]);
    }

    #[test]
    fn a_truncation_below_a_shown_high_watermark_is_caught() {
        assert!(
            truncation_below_shown(1, 2, "t-0", (13, 10, 10), 20).is_none(),
            "uncommitted tail"
        );
        assert!(
            truncation_below_shown(1, 2, "t-0", (13, 10, 12), 5).is_none(),
            "not shown yet"
        );
        let v = truncation_below_shown(1, 2, "t-0", (13, 10, 12), 20).expect("caught");
        assert_eq!((v.node, v.offsets.clone()), (Some(2), vec![13, 10]));
    }
}
