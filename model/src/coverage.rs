//! Coverage marks: named places where one of the system's rules makes a decision, counted per
//! run, so that a swarm can say what it reached and what it never did.
//!
//! A mark is one line at the decision (`mark!(FollowerTruncatesBelowOwnHighWatermark)`). In
//! simulation it adds one to a per-thread counter (every seed runs on a thread of its own; the
//! harness resets the counts when a run starts); in real mode it compiles to nothing. The
//! catalogue below is the whole list, so that a mark nobody reached can be named.

/// Declares the catalogue: each mark with its name in reports and what reaching it means.
macro_rules! catalogue {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)*) => {
        /// A named decision site in the system under test.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Mark {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Mark {
            /// Every mark, in catalogue order.
            pub const ALL: &'static [Mark] = &[$(Mark::$variant,)*];

            /// The mark's name in reports and scenario files (kebab-case).
            pub fn name(self) -> &'static str {
                match self {
                    $(Mark::$variant => $name,)*
                }
            }

            /// What reaching the mark means (its doc comment).
            pub fn about(self) -> &'static str {
                match self {
                    $(Mark::$variant => concat!($($doc),*).trim_ascii_start(),)*
                }
            }
        }
    };
}

impl Mark {
    /// The mark of that name, if the catalogue has one.
    pub fn named(name: &str) -> Option<Mark> {
        Mark::ALL.iter().copied().find(|m| m.name() == name)
    }
}

impl std::fmt::Display for Mark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Mark {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Mark {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        Mark::named(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown coverage mark `{name}` (`logsim marks` lists the {} there are)",
                Mark::ALL.len()
            ))
        })
    }
}

catalogue! {
    // Replication: the follower side.
    /// A follower truncated its log below its own high watermark (what KIP-101's epochs allow
    /// only for records never committed).
    FollowerTruncatesBelowOwnHighWatermark = "follower-truncates-below-own-high-watermark",
    /// A follower truncated its log to where the leader's epoch history says it diverged, no
    /// lower than its own high watermark.
    FollowerTruncatesToDivergence = "follower-truncates-to-divergence",
    /// A divergence answer kept records above the follower's high watermark that truncating to
    /// the high watermark, the rule before leader epochs (KIP-101), would have thrown away.
    EpochRuleKeepsRecordsAboveHighWatermark = "epoch-rule-keeps-records-above-high-watermark",
    /// A leader's fetch session cache was full: the session used least recently went.
    FetchSessionEvicted = "fetch-session-evicted",
    /// A leader answered a fetch with a diverging epoch.
    LeaderAnswersDivergingEpoch = "leader-answers-diverging-epoch",
    /// A leader refused a fetch or produce from an older leader epoch (FENCED_LEADER_EPOCH).
    FencedLeaderEpoch = "fenced-leader-epoch",
    /// A replica was asked with a leader epoch newer than its own (UNKNOWN_LEADER_EPOCH).
    UnknownLeaderEpoch = "unknown-leader-epoch",
    /// A follower's fetch session was refused (evicted or unknown) and started over in full.
    FetchSessionRefused = "fetch-session-refused",
    /// A fetch answer gave a partition no records: the request's max_bytes went to the
    /// partitions before it.
    FetchBudgetSpent = "fetch-budget-spent",
    // Replication: the leader side.
    /// A leader moved its high watermark.
    LeaderAdvancesHighWatermark = "leader-advances-high-watermark",
    /// A replica the leader has asked to add to the ISR, not yet committed, held the high
    /// watermark back (the maximal ISR of KIP-841 at work).
    HighWatermarkWaitsForJoiningReplica = "high-watermark-waits-for-joining-replica",
    /// A leader weighed its high watermark while an ISR member had not fetched in its epoch yet:
    /// KIP-320 counts such a member as holding nothing, where `hw-advance-old-epoch` takes its word
    /// from an older epoch. Counted at every weighing while it lasts.
    HighWatermarkWaitsForFirstFetchInEpoch = "high-watermark-waits-for-first-fetch-in-epoch",
    /// A leader took up a smaller ISR the controller committed (a lagging follower left).
    IsrShrinks = "isr-shrinks",
    /// A leader took up a larger ISR the controller committed (a follower caught up).
    IsrExpands = "isr-expands",
    /// An AlterPartition got no answer (lost, or the controller away).
    AlterPartitionUnanswered = "alter-partition-unanswered",
    /// The controller refused an AlterPartition (a stale partition epoch or leader epoch, or an
    /// ineligible replica).
    AlterPartitionRefused = "alter-partition-refused",
    /// A produce at acks=all was refused because the ISR is below min.insync.replicas.
    NotEnoughReplicas = "not-enough-replicas",
    /// A produce at acks=all timed out waiting for the ISR.
    ProduceTimedOut = "produce-timed-out",
    /// The high watermark passed an acks=all batch with the ISR already below
    /// min.insync.replicas (NOT_ENOUGH_REPLICAS_AFTER_APPEND).
    NotEnoughReplicasAfterAppend = "not-enough-replicas-after-append",
    /// A batch an acks=all produce waited on was truncated from the leader's log.
    ProduceTruncatedWhileWaiting = "produce-truncated-while-waiting",
    /// A leader could not append a produce to its log (a full or failing disk).
    LeaderAppendFails = "leader-append-fails",
    /// A leader was given a newer epoch of its own leadership (the controller re-elected it in
    /// place).
    LeaderReelectedInPlace = "leader-reelected-in-place",
    /// A replica became leader of a partition it had followed.
    FollowerBecomesLeader = "follower-becomes-leader",
    /// A replica that had led a partition, and lost it without restarting, leads it again.
    LeaderRegainsLeadership = "leader-regains-leadership",
    /// A replica leads again a partition it lost without restarting, while a follower it
    /// remembers from its earlier leadership had reported less than its log holds: the state
    /// `hw-advance-old-epoch` needs.
    RegainedLeaderRemembersLaggingFollower = "regained-leader-remembers-lagging-follower",
    /// A replica leads again a partition it lost without restarting, and what the other ISR
    /// members reported in its earlier leadership is above its high watermark: on those old words
    /// alone, `hw-advance-old-epoch` would move the high watermark at once.
    RegainedLeaderRemembersReportsAboveHighWatermark =
        "regained-leader-remembers-reports-above-high-watermark",
    /// A replica that led a partition and lost it without restarting follows it with a high
    /// watermark below what every other ISR member reported to it as leader (a new leader's high
    /// watermark stalled behind the old one's): led again now, `hw-advance-old-epoch` would move
    /// the high watermark at once.
    DeposedLeaderBelowRememberedReports = "deposed-leader-below-remembered-reports",
    /// A leader that regained a partition heard the first fetch in its epoch of a replica that
    /// was in the ISR it regained with, below what the ISR's reports from its earlier leadership
    /// would have lifted the high watermark to: the old words overstated what that member holds,
    /// and `hw-advance-old-epoch` moves the high watermark past it.
    IsrMemberReturnsBelowOldWords = "isr-member-returns-below-old-words",
    /// A leader became a follower.
    LeaderBecomesFollower = "leader-becomes-follower",
    // Idempotence.
    /// A leader answered a retried batch with the offset it was first written at.
    DuplicateBatchAnswered = "duplicate-batch-answered",
    /// A leader refused a batch whose sequence leaves a gap (OUT_OF_ORDER_SEQUENCE_NUMBER).
    OutOfOrderSequence = "out-of-order-sequence",
    /// A leader refused a batch from an older producer epoch.
    ProducerEpochFenced = "producer-epoch-fenced",
    /// A producer learnt that a leader lost its sequence (OUT_OF_ORDER_SEQUENCE_NUMBER or
    /// UNKNOWN_PRODUCER_ID on its oldest batch) and must bump its epoch.
    ProducerLostSequence = "producer-lost-sequence",
    /// A producer bumped its epoch and started its sequences again (KIP-360).
    ProducerEpochBumped = "producer-epoch-bumped",
    /// A producer sent a batch again after a failed or unanswered attempt.
    ProducerRetries = "producer-retries",
    /// A producer gave a batch up at its delivery timeout.
    ProducerDeliveryTimeout = "producer-delivery-timeout",
    // The controller and the quorum.
    /// The controller fenced a broker whose session expired.
    BrokerFenced = "broker-fenced",
    /// The controller refused a heartbeat from an older incarnation of a broker.
    StaleIncarnationRefused = "stale-incarnation-refused",
    /// The controller elected a leader for a partition that had none.
    OfflinePartitionElected = "offline-partition-elected",
    /// The controller elected a replica outside the ISR (unclean election).
    UncleanElection = "unclean-election",
    /// A fenced broker stayed in a partition's ISR as its last member: the partition waits for
    /// it rather than lose what only it may hold.
    LastIsrMemberKept = "last-isr-member-kept",
    /// A partition was left without a leader: no ISR member in service.
    PartitionLeftOffline = "partition-left-offline",
    /// A broker moved its leaderships away in a controlled shutdown.
    ControlledShutdown = "controlled-shutdown",
    /// A quorum voter refused a vote because the candidate's log is behind its own.
    VoteRefusedStaleLog = "vote-refused-stale-log",
    /// A quorum voter refused a vote: it had voted for another candidate in the epoch.
    VoteRefusedAlreadyVoted = "vote-refused-already-voted",
    /// A quorum voter granted a vote.
    VoteGranted = "vote-granted",
    /// A quorum leader resigned for want of fetches from a majority.
    QuorumLeaderResigns = "quorum-leader-resigns",
    /// A metadata follower truncated its metadata log.
    MetadataLogTruncated = "metadata-log-truncated",
    /// A new quorum leader, its epoch not yet committed, withheld the high watermark it had
    /// learned as a follower from a voter whose log is already past it.
    QuorumLeaderWithholdsHighWatermark = "quorum-leader-withholds-high-watermark",
    // Storage.
    /// Recovery dropped a torn, corrupt or out-of-place tail of a log.
    RecoveryDropsDamagedTail = "recovery-drops-damaged-tail",
    /// The quorum leader could not append to the metadata log (a full or failing disk).
    MetadataAppendFails = "metadata-append-fails",
    /// A follower could not append fetched records (a full or failing disk).
    FollowerAppendFails = "follower-append-fails",
    /// A replica could not open a partition's log and will try again.
    PartitionLogUnreadable = "partition-log-unreadable",
    // Consumer groups.
    /// A group started a rebalance.
    GroupRebalances = "group-rebalances",
    /// An offset commit was refused because the group is rebalancing.
    CommitDuringRebalance = "commit-during-rebalance",
    /// A group member was expired for missing its heartbeats.
    GroupMemberExpired = "group-member-expired",
    // Transactions.
    /// A new transaction coordinator read transactions back from its log.
    TxnCoordinatorRecovers = "txn-coordinator-recovers",
    /// A transaction outlived its timeout and was aborted under a new producer epoch.
    TxnTimedOut = "txn-timed-out",
    /// A new producer with a transactional id found the old one's transaction open and had it
    /// aborted.
    TxnAbortedByNewProducer = "txn-aborted-by-new-producer",
    /// The coordinator refused a request of an older producer epoch (a fenced producer).
    TxnProducerFenced = "txn-producer-fenced",
    /// A partition leader refused a transactional batch the coordinator did not place in an
    /// ongoing transaction (KIP-890 part 1).
    TxnProduceNotVerified = "txn-produce-not-verified",
    // Fault points (`fault_point`), each a mark when it fires.
    /// A broker held a reply back (fault point).
    FaultPointDelayReply = "fault-point-delay-reply",
    /// A broker handled a request and hung up instead of answering (fault point).
    FaultPointDropReply = "fault-point-drop-reply",
    /// A leader answered a fetch with one batch per partition (fault point).
    FaultPointShortFetch = "fault-point-short-fetch",
    /// A log's sync took longer than the disk's latency (fault point).
    FaultPointSlowSync = "fault-point-slow-sync",
    /// A log's sync failed (fault point).
    FaultPointFailSync = "fault-point-fail-sync",
    /// A partition leader held a transactional produce back past its client's patience (fault
    /// point).
    FaultPointDelayTxnRequest = "fault-point-delay-txn-request",
    /// A coordinator held an EndTxn back past its client's patience (fault point).
    FaultPointDelayEndTxn = "fault-point-delay-end-txn",
}

#[cfg(madsim)]
const COUNT: usize = Mark::ALL.len();

#[cfg(madsim)]
thread_local! {
    /// Const-initialized cells: a hit is a load and a store, with no lazy set-up or borrow flag.
    static HITS: [std::cell::Cell<u64>; COUNT] = const { [const { std::cell::Cell::new(0) }; COUNT] };
    /// When each mark was first reached, in simulated time since the runtime started.
    static FIRST: std::cell::RefCell<[Option<std::time::Duration>; COUNT]> =
        const { std::cell::RefCell::new([None; COUNT]) };
    /// The largest margin each mark's condition was weighed at (see `near`).
    static NEAREST: std::cell::RefCell<[Option<i64>; COUNT]> =
        const { std::cell::RefCell::new([None; COUNT]) };
}

/// Weighs a mark's condition as a margin that reaches the mark when positive, and keeps the largest
/// margin of the run (Antithesis's numeric `sometimes` assertions): a run that came nearer to a
/// rare mark than any before is progress toward it, which guided exploration keeps and builds
/// on, as a fuzzer climbs a comparison's distance. Hits the mark when `margin > 0`.
#[inline]
pub fn near(mark: Mark, margin: i64) {
    #[cfg(madsim)]
    NEAREST.with_borrow_mut(|n| {
        let best = &mut n[mark as usize];
        *best = Some(best.map_or(margin, |b| b.max(margin)));
    });
    if margin > 0 {
        hit(mark);
    }
}

/// The largest margin each weighed mark's condition reached on this thread since the last
/// `reset` (none in real mode).
pub fn nearest() -> Vec<(Mark, i64)> {
    #[cfg(madsim)]
    return NEAREST.with_borrow(with_values);
    #[cfg(not(madsim))]
    Vec::new()
}

/// Counts one reaching of `mark` (nothing in real mode).
#[inline]
pub fn hit(mark: Mark) {
    #[cfg(madsim)]
    {
        let first = HITS.with(|hits| {
            let cell = &hits[mark as usize];
            cell.set(cell.get() + 1);
            cell.get() == 1
        });
        if first {
            let at = madsim::time::TimeHandle::try_current().map(|t| t.elapsed());
            FIRST.with_borrow_mut(|f| f[mark as usize] = at);
        }
    }
    #[cfg(not(madsim))]
    let _ = mark;
}

/// Forgets every count on this thread: a run starts from none.
pub fn reset() {
    #[cfg(madsim)]
    {
        HITS.with(|hits| hits.iter().for_each(|h| h.set(0)));
        FIRST.with_borrow_mut(|f| *f = [None; COUNT]);
        NEAREST.with_borrow_mut(|n| *n = [None; COUNT]);
    }
}

/// The marks that hold a value in `per_mark`, with their values, in catalogue order.
#[cfg(madsim)]
fn with_values<T: Copy>(per_mark: &[Option<T>; COUNT]) -> Vec<(Mark, T)> {
    (Mark::ALL.iter())
        .filter_map(|m| per_mark[*m as usize].map(|v| (*m, v)))
        .collect()
}

/// When each reached mark was first reached, in simulated time since the runtime started (none
/// in real mode).
pub fn first_reached() -> Vec<(Mark, std::time::Duration)> {
    #[cfg(madsim)]
    return FIRST.with_borrow(with_values);
    #[cfg(not(madsim))]
    Vec::new()
}

/// How often each mark was reached on this thread since the last `reset`, in catalogue order.
pub fn counts() -> Vec<(Mark, u64)> {
    #[cfg(madsim)]
    return HITS.with(|hits| {
        (Mark::ALL.iter())
            .map(|m| (*m, hits[*m as usize].get()))
            .collect()
    });
    #[cfg(not(madsim))]
    Mark::ALL.iter().map(|m| (*m, 0)).collect()
}

/// Reaches a coverage mark: `mark!(BrokerFenced)`.
#[macro_export]
macro_rules! mark {
    ($mark:ident) => {
        $crate::coverage::hit($crate::coverage::Mark::$mark)
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_kebab_case() {
        let names: std::collections::BTreeSet<_> = Mark::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Mark::ALL.len());
        for name in names {
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{name}"
            );
        }
    }

    #[cfg(madsim)]
    #[test]
    fn a_mark_counts_on_its_thread_until_reset() {
        reset();
        crate::mark!(BrokerFenced);
        crate::mark!(BrokerFenced);
        let count = |m| counts().into_iter().find(|(k, _)| *k == m).map(|(_, n)| n);
        assert_eq!(count(Mark::BrokerFenced), Some(2));
        assert_eq!(count(Mark::VoteGranted), Some(0));
        reset();
        assert_eq!(count(Mark::BrokerFenced), Some(0));
    }

    #[cfg(madsim)]
    #[test]
    fn a_weighed_mark_keeps_its_largest_margin_and_is_reached_past_zero() {
        let mark = Mark::RegainedLeaderRemembersReportsAboveHighWatermark;
        let hits = || {
            counts()
                .into_iter()
                .find(|(m, _)| *m == mark)
                .map(|(_, n)| n)
        };
        reset();
        for margin in [-40, -3, -90, 0] {
            near(mark, margin);
        }
        assert_eq!(nearest(), [(mark, 0)]);
        assert_eq!(hits(), Some(0), "a margin of zero does not reach it");
        near(mark, 2);
        near(mark, -7);
        assert_eq!(nearest(), [(mark, 2)]);
        assert_eq!(hits(), Some(1));
        reset();
        assert_eq!(nearest(), []);
    }
}
