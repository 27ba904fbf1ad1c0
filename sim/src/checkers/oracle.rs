//! The end-of-run oracle: checks judged once, after every fault has healed and the quiet period
//! has run, on what the cluster holds then and on everything the clients saw. The built-in ones and
//! a test's own are registered the same way ([`Oracle`]) and judged in order; each judgment counts
//! once in the run's `invariants` counters.
//!
//! An oracle of one's own, given to [`Sim::oracle`](crate::sim::Sim::oracle):
//!
//! ```
//! # #[cfg(madsim)] {
//! use logsim::checkers::{End, Oracle, Violation};
//!
//! /// Every partition ends with at least one committed record.
//! struct NoEmptyPartition;
//!
//! impl Oracle for NoEmptyPartition {
//!     fn name(&self) -> &'static str {
//!         "no-empty-partition"
//!     }
//!
//!     fn check(&mut self, end: &End<'_>) -> Vec<Violation> {
//!         let empty = end.leaders.iter().filter(|(_, (_, values))| values.is_empty());
//!         let found = empty.map(|(p, (leader, _))| {
//!             Violation::new(self.name(), end.time_ms, "nothing was committed")
//!                 .on(*leader)
//!                 .partition(p.clone())
//!         });
//!         found.collect()
//!     }
//! }
//! # }
//! ```

use std::collections::BTreeMap;

use bytes::Bytes;
use model::BrokerId;

use super::client_history::ProducerPromises;
use super::liveness::{self, ReplicaEnd};
use super::{acked_durability, client_history, mirror, Check, Violation};
use crate::record::history::{AckedSend, Op};

/// What the end-of-run oracle sees.
pub struct End<'a> {
    /// Simulated milliseconds since the run started.
    pub time_ms: u64,
    /// Each partition of the workload's topic (`events-2`) that has a leader: the leader and its
    /// committed records, offset to value.
    pub leaders: &'a BTreeMap<String, (BrokerId, BTreeMap<i64, Bytes>)>,
    /// The workload's partitions no broker leads.
    pub leaderless: &'a [String],
    /// Whether some broker leads the controller quorum.
    pub quorum_led: bool,
    /// Each partition's assigned replicas, with their high watermarks.
    pub replicas: &'a BTreeMap<String, Vec<ReplicaEnd>>,
    /// Every record acknowledged with acks=all.
    pub acked: &'a [AckedSend],
    /// Every record acknowledged with acks=1: what these lose is counted, not failed.
    pub acked_weak: &'a [AckedSend],
    /// The client history, in order.
    pub history: &'a [Op],
    /// MirrorMaker's target, when the scenario mirrors.
    pub mirror: Option<MirrorEnd<'a>>,
    /// Partitions whose last stable offset lags their high watermark, on their leaders.
    pub unstable: &'a [super::transactions::Unstable],
    /// Every transaction its coordinator holds.
    pub held: &'a [super::transactions::Held],
}

/// What MirrorMaker left on the target cluster.
pub struct MirrorEnd<'a> {
    /// Each source partition (`events-2`) and its number.
    pub source: &'a BTreeMap<String, i32>,
    /// Each target partition's number and its leader's committed records.
    pub target: &'a BTreeMap<i32, BTreeMap<i64, Bytes>>,
    /// (group, partition) -> its latest checkpoint: (committed source offset, target offset).
    pub checkpoints: &'a BTreeMap<(String, i32), (i64, i64)>,
}

/// A check judged once at the end of a run.
pub trait Oracle: Send {
    /// The check's name, as the `invariants` counters give it (violations may name finer kinds).
    fn name(&self) -> &'static str;

    /// Whether the check has anything to judge in this run. Default: yes.
    fn applies(&self, _end: &End<'_>) -> bool {
        true
    }

    /// What is broken in the run's end state or history, if anything.
    fn check(&mut self, end: &End<'_>) -> Vec<Violation>;

    /// Figures the check measured besides violations, by name, for the run's report.
    fn figures(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// The built-in oracle, in the order a run judges it; the client history is judged by what its
/// producers `promise`.
pub fn built_in(promises: ProducerPromises) -> Vec<Box<dyn Oracle>> {
    vec![
        Box::new(LeaderAfterHeal),
        Box::new(AckedDurability { lost_acks1: 0 }),
        Box::new(ReadStaysReadable),
        Box::new(SendsComplete),
        Box::new(FullyReplicated),
        Box::new(MirrorComplete),
        Box::new(TransactionsSettle),
        Box::new(ClientHistory {
            promises,
            rereads: 0,
            allowed: BTreeMap::new(),
        }),
    ]
}

/// Every partition and the controller quorum have a leader once faults are gone.
struct LeaderAfterHeal;

impl Oracle for LeaderAfterHeal {
    fn name(&self) -> &'static str {
        Check::LeaderAfterHeal.name()
    }

    fn check(&mut self, end: &End<'_>) -> Vec<Violation> {
        let message = "no broker leads the partition after the quiet period";
        let mut found: Vec<Violation> = end
            .leaderless
            .iter()
            .map(|p| Violation::new(self.name(), end.time_ms, message).partition(p.clone()))
            .collect();
        if !end.quorum_led {
            let message = "no broker leads the controller quorum after the quiet period";
            found.push(Violation::new(self.name(), end.time_ms, message));
        }
        found
    }
}

/// Every acks=all record is on its partition's leader, at its offset, with its value.
struct AckedDurability {
    lost_acks1: u64,
}

impl Oracle for AckedDurability {
    fn name(&self) -> &'static str {
        Check::AckedWriteDurable.name()
    }

    fn check(&mut self, end: &End<'_>) -> Vec<Violation> {
        // The same test on acks=1 writes finds what acks=1 allows to be lost: a count.
        self.lost_acks1 =
            acked_durability::check(end.time_ms, end.acked_weak, end.leaders).len() as u64;
        acked_durability::check(end.time_ms, end.acked, end.leaders)
    }

    fn figures(&self) -> Vec<(&'static str, u64)> {
        vec![("lost_acks1", self.lost_acks1)]
    }
}

/// A value a consumer read is still where it read it.
struct ReadStaysReadable;

impl Oracle for ReadStaysReadable {
    fn name(&self) -> &'static str {
        Check::ReadStaysReadable.name()
    }

    fn check(&mut self, end: &End<'_>) -> Vec<Violation> {
        let reads = crate::record::history::reads(end.history);
        acked_durability::check_reads(end.time_ms, &reads, end.leaders)
    }
}

/// Every send that was invoked completed.
struct SendsComplete;

impl Oracle for SendsComplete {
    fn name(&self) -> &'static str {
        Check::PendingSend.name()
    }

    fn check(&mut self, end: &End<'_>) -> Vec<Violation> {
        liveness::pending_sends(end.time_ms, end.history)
    }
}

/// Every replica caught up to the highest acknowledged offset.
struct FullyReplicated;

impl Oracle for FullyReplicated {
    fn name(&self) -> &'static str {
        Check::ReplicatedAfterHeal.name()
    }

    fn check(&mut self, end: &End<'_>) -> Vec<Violation> {
        let mut highest_acked: BTreeMap<String, i64> = BTreeMap::new();
        for a in end.acked {
            let h = crate::slot(&mut highest_acked, &*a.partition, || a.offset);
            *h = (*h).max(a.offset);
        }
        liveness::fully_replicated(end.time_ms, &highest_acked, end.replicas)
    }
}

/// Every transaction ended, and every partition's last stable offset caught up.
struct TransactionsSettle;

impl Oracle for TransactionsSettle {
    fn name(&self) -> &'static str {
        Check::HangingTransaction.name()
    }

    fn applies(&self, end: &End<'_>) -> bool {
        !end.unstable.is_empty() || !end.held.is_empty()
    }

    fn check(&mut self, end: &End<'_>) -> Vec<Violation> {
        super::transactions::check(end.time_ms, end.unstable, end.held)
    }
}

/// MirrorMaker copied every acknowledged record, and its checkpoints never skip one.
struct MirrorComplete;

impl Oracle for MirrorComplete {
    fn name(&self) -> &'static str {
        Check::MirrorComplete.name()
    }

    fn applies(&self, end: &End<'_>) -> bool {
        end.mirror.is_some()
    }

    fn check(&mut self, end: &End<'_>) -> Vec<Violation> {
        let Some(m) = &end.mirror else {
            return Vec::new();
        };
        mirror::check(end.time_ms, end.acked, m.source, m.target, m.checkpoints)
    }
}

/// Jepsen's anomalies in the client history: the first few cases of each kind, so that a bad
/// run's report stays readable. What the producers' promises allow is counted in the figures.
struct ClientHistory {
    promises: ProducerPromises,
    rereads: u64,
    allowed: BTreeMap<&'static str, u64>,
}

/// How many cases of each anomaly become violations.
const CASES_SHOWN: usize = 5;

impl Oracle for ClientHistory {
    fn name(&self) -> &'static str {
        "client-history"
    }

    fn check(&mut self, end: &End<'_>) -> Vec<Violation> {
        let gates = client_history::Gates {
            min_acked: 0,
            min_polled: 0,
        };
        let analysis = client_history::check(end.history, None, gates, self.promises);
        self.rereads = analysis.rereads;
        self.allowed = analysis.allowed;
        let mut found = Vec::new();
        for (kind, cases) in analysis.anomalies {
            let total = cases.len();
            for case in cases.into_iter().take(CASES_SHOWN) {
                let message = format!(
                    "{} (history lines {:?}; {total} cases of {kind} in all)",
                    case.detail, case.lines
                );
                let v = Violation::new(kind, end.time_ms, message);
                found.push(v.partition(case.key).offsets(case.offsets));
            }
        }
        found
    }

    fn figures(&self) -> Vec<(&'static str, u64)> {
        let allowed = |kind| self.allowed.get(kind).copied().unwrap_or_default();
        vec![
            ("rereads", self.rereads),
            ("duplicates_allowed", allowed("duplicate")),
            (
                "reorders_allowed",
                allowed("nonmonotonic-send") + allowed("key-order"),
            ),
        ]
    }
}
