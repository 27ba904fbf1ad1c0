//! Wrong rules that can be switched back on, one at a time, to show what the right rule is for and
//! that the simulator finds its absence. The default is the correct system: no bug is on unless a
//! run asks for it by name. Each switch is read at the one place where its right rule lives.

use serde::{Deserialize, Deserializer, Serialize};

/// A wrong rule that can be switched back on. Its serde name (and `name`) is the one scenario
/// files and the command line use: `skip-divergence-check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Switch {
    /// The leader never reports a diverging epoch: a follower keeps whatever it had past the point
    /// where its log and the leader's part, and appends the leader's records after it (the problem
    /// KIP-101's leader epochs solve).
    SkipDivergenceCheck,
    /// A follower, each time its role starts (a restart, a new leader), cuts its log back to its
    /// own high watermark instead of letting the leader say where the logs part (KIP-101, first
    /// case). Its high watermark lags the leader's, so records the leader already acknowledged go.
    HwTruncation,
    /// A follower counts records before it has synced them (Kafka's replicas leave durability to
    /// the copies), and a replica told to truncate keeps whatever lies below its own high watermark
    /// (KIP-101, second case): after two replicas lose their unsynced tails, the one that comes
    /// back second keeps records the new leader has overwritten.
    DoubleCrashDivergence,
    /// A replica outside the ISR may be elected leader when no ISR member can be (the behaviour
    /// `unclean.leader.election.enable=true` chooses, and the pre-0.11 default).
    UncleanElection,
    /// Asked where an epoch it never had ends, the leader answers with its own log end instead of
    /// the largest epoch at or below it (KAFKA-6361, fixed by KIP-279): a follower that led an
    /// epoch the new leader never saw keeps that epoch's records.
    FastFailover,
    /// Fetches carry no current leader epoch, and a follower checks where its log parts from the
    /// leader's only when its role starts, as before KIP-320: a follower that missed leader changes
    /// keeps fetching from its old leader, is served, and never truncates what that leader dropped
    /// (KAFKA-6880).
    ZombieFollower,
    /// A follower whose leader is re-elected in a newer epoch keeps its fetcher and so skips the
    /// truncation a new epoch calls for, as in Kafka 2.0 where truncation happened only when the
    /// follower role started (KAFKA-7164).
    SameLeaderNoTruncate,
    /// A new leader counts what its followers reported while it led an older epoch, so the high
    /// watermark moves on the word of followers that may since have truncated (the first draft of
    /// KIP-320, `Kip320FirstTry.tla`).
    HwAdvanceOldEpoch,
    /// Followers count records toward the high watermark before syncing them, so an ISR that
    /// shrinks to one follower-turned-leader hangs on that one copy; its unclean shutdown loses
    /// acknowledged records, it is re-elected as the last ISR member, and the others truncate to it
    /// (the case KIP-966's eligible leader replicas close).
    LastReplicaStanding,
    /// The group coordinator accepts an offset commit from a member of an older generation (or from
    /// a member during a rebalance): a consumer that lost its partitions while stalled moves their
    /// committed offsets back over its successor's.
    GroupStaleCommit,
    /// MirrorMaker commits how far it has read on the source before it has written it to the
    /// target: a restart in between resumes past records that never reached the target.
    MirrorSkipOnRestart,
    /// The leader counts its own records toward the high watermark before syncing them, so acks=all
    /// answers before the leader's copy is durable; a leader that loses its tail and is re-elected
    /// loses acknowledged records.
    NoFsyncBeforeAck,
    /// The broker keeps only each idempotent producer's last batch per partition instead of its
    /// last five, as before KAFKA-5494: a retry of an older batch, with five in flight, is not
    /// recognised, and is taken for a batch of a producer it has no state for and written again.
    DedupWindowOfOne,
    /// A broker that takes up leadership starts with no idempotent producer state instead of the
    /// state its log holds (Kafka builds it as a follower appends, and from snapshots and the log's
    /// tail on recovery): a retry, across the failover, of a batch the old leader wrote and
    /// replicated comes from a producer the new leader does not know, and is written again.
    ProducerStateNotRebuilt,
    /// The idempotent producer, told a sequence is out of order, bumps its epoch and starts its
    /// sequences again at once, while earlier batches are unacknowledged and may be written: those
    /// go again under new sequences, which no broker can tell from new batches (librdkafka#4953,
    /// redpanda#3039). The switch is read by the producer, through its settings.
    EpochBumpWithBatchesInFlight,
    /// EndTxn never bumps the producer's epoch, whatever the transaction version: a delayed
    /// EndTxn of an ended transaction carries the epoch of the next one and ends it early
    /// (KAFKA-17754; KIP-890 part 2 closes it).
    LateEndTxn,
    /// A partition leader appends a transactional batch that opens a transaction without asking
    /// the coordinator: a produce that raced its transaction's end opens one no marker closes,
    /// and the last stable offset hangs (KAFKA-12671; KIP-890 part 1 closes it).
    HangingTxn,
    /// InitProducerId gives a transactional id's new producer the same epoch as the old one, so
    /// the old producer (a zombie) is not fenced and its writes and commit are accepted.
    NoProducerFencing,
    /// A consume-transform-produce loop that aborts its transaction goes on reading from where
    /// its consumer had got to instead of seeking back to the last committed offsets: the
    /// records it read in the aborted transaction are never processed (KAFKA-17582). The switch
    /// is read by the pipeline's client.
    ConsumerNoRewindOnAbort,
}

impl Switch {
    /// The switch's name, as files and the command line write it.
    pub fn name(self) -> &'static str {
        match self {
            Switch::SkipDivergenceCheck => "skip-divergence-check",
            Switch::HwTruncation => "hw-truncation",
            Switch::DoubleCrashDivergence => "double-crash-divergence",
            Switch::UncleanElection => "unclean-election",
            Switch::FastFailover => "fast-failover",
            Switch::ZombieFollower => "zombie-follower",
            Switch::SameLeaderNoTruncate => "same-leader-no-truncate",
            Switch::HwAdvanceOldEpoch => "hw-advance-old-epoch",
            Switch::LastReplicaStanding => "last-replica-standing",
            Switch::GroupStaleCommit => "group-stale-commit",
            Switch::MirrorSkipOnRestart => "mirror-skip-on-restart",
            Switch::NoFsyncBeforeAck => "no-fsync-before-ack",
            Switch::DedupWindowOfOne => "dedup-window-of-one",
            Switch::ProducerStateNotRebuilt => "producer-state-not-rebuilt",
            Switch::EpochBumpWithBatchesInFlight => "epoch-bump-with-batches-in-flight",
            Switch::LateEndTxn => "late-end-txn",
            Switch::HangingTxn => "hanging-txn",
            Switch::NoProducerFencing => "no-producer-fencing",
            Switch::ConsumerNoRewindOnAbort => "consumer-no-rewind-on-abort",
        }
    }

    /// What the switch brings back, and what closed it in Kafka's history.
    pub fn bug(self) -> &'static Bug {
        ALL.iter()
            .find(|b| b.switch == self)
            .expect("every switch is described")
    }
}

impl std::fmt::Display for Switch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Switch {
    /// By name, refusing an unknown one with the list of known ones.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for Switch {
    type Err = String;

    /// A switch by name; an unknown name is refused with the list of known ones.
    fn from_str(name: &str) -> Result<Switch, String> {
        ALL.iter()
            .map(|b| b.switch)
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                format!(
                    "unknown bug `{name}`: expected one of {}",
                    names().join(", ")
                )
            })
    }
}

/// A bug switch: what it brings back, and what closed it in Kafka's history.
#[derive(Clone, Copy, Debug)]
pub struct Bug {
    pub switch: Switch,
    pub wrong_rule: &'static str,
    pub right_rule: &'static str,
    pub history: &'static str,
}

/// Every bug switch, in the order of Kafka's history.
pub const ALL: &[Bug] = &[
    Bug {
        switch: Switch::SkipDivergenceCheck,
        wrong_rule: "the leader never reports a diverging epoch, so followers keep records the leader does not have",
        right_rule: "a fetch names the epoch of the follower's last record, and the leader answers with where that epoch ends in its own log",
        history: "leader epochs, KIP-101 (Kafka 0.11)",
    },
    Bug {
        switch: Switch::HwTruncation,
        wrong_rule: "a follower starting its role truncates to its own high watermark, which lags the leader's",
        right_rule: "a follower truncates only where the leader says their logs part, by epoch, never to its own high watermark",
        history: "KIP-101, first case (Kafka 0.11)",
    },
    Bug {
        switch: Switch::DoubleCrashDivergence,
        wrong_rule: "followers count records they have not synced, and a replica keeps whatever lies below its own high watermark",
        right_rule: "a follower reports only what it has synced, and truncates wherever the leader's epochs say, even below its high watermark",
        history: "KIP-101, second case (Kafka 0.11)",
    },
    Bug {
        switch: Switch::UncleanElection,
        wrong_rule: "a replica outside the ISR may be elected, losing acknowledged records",
        right_rule: "only ISR members may lead; with none left, the partition waits",
        history: "unclean.leader.election.enable defaults to false, KIP-106 (Kafka 0.11)",
    },
    Bug {
        switch: Switch::FastFailover,
        wrong_rule: "asked where an epoch it never had ends, the leader answers with its own log end",
        right_rule: "the answer is the largest epoch at or below the one asked for, and where it ends",
        history: "KAFKA-6361, KIP-279 (Kafka 2.0)",
    },
    Bug {
        switch: Switch::ZombieFollower,
        wrong_rule: "fetches carry no current leader epoch, and a follower checks for divergence only when its role starts",
        right_rule: "every fetch carries the follower's leader epoch (a stale one is fenced) and the epoch of its last record",
        history: "KAFKA-6880, KIP-320 (Kafka 2.1)",
    },
    Bug {
        switch: Switch::SameLeaderNoTruncate,
        wrong_rule: "a follower whose leader is re-elected in a new epoch skips the truncation a new epoch calls for",
        right_rule: "every new leader epoch restarts the follower role and checks for divergence, whoever leads it",
        history: "KAFKA-7164 (Kafka 2.1)",
    },
    Bug {
        switch: Switch::HwAdvanceOldEpoch,
        wrong_rule: "a new leader counts follower positions reported while it led an older epoch",
        right_rule: "the high watermark moves only on fetches made in the leader's current epoch",
        history: "KIP-320, the fix to its first draft (Kip320FirstTry.tla)",
    },
    Bug {
        switch: Switch::LastReplicaStanding,
        wrong_rule: "followers count records they have not synced, so the last ISR member may lose acknowledged records in an unclean shutdown and still be re-elected",
        right_rule: "a replica counts toward the high watermark only what it has synced, so the last ISR member holds every acknowledged record",
        history: "KIP-966, eligible leader replicas (Kafka 3.7 to 4.0)",
    },
    Bug {
        switch: Switch::GroupStaleCommit,
        wrong_rule: "the group coordinator accepts an offset commit from a member of an older generation, or from one it dropped",
        right_rule: "a commit must come from a current member in the group's current generation, outside a rebalance",
        history: "generation fencing of OffsetCommit (KAFKA-2017 era; the zombie consumer problem of KIP-98/KIP-447)",
    },
    Bug {
        switch: Switch::MirrorSkipOnRestart,
        wrong_rule: "MirrorMaker commits its source position when it reads records, before the target has them",
        right_rule: "MirrorMaker commits a source position only once every record below it is acknowledged by the target",
        history: "MirrorMaker 1's data loss on restart, fixed by committing after the produce callback (KAFKA-2452, KIP-382)",
    },
    Bug {
        switch: Switch::NoFsyncBeforeAck,
        wrong_rule: "the leader counts its own records before syncing them, so acks=all answers before its copy is durable",
        right_rule: "the leader counts toward the high watermark only what it has synced",
        history: "a rule logsim keeps; Kafka leaves it to flush.messages and relies on replication",
    },
    Bug {
        switch: Switch::DedupWindowOfOne,
        wrong_rule: "the broker remembers only a producer's last batch, so a retry of an older one in flight is written again",
        right_rule: "the broker remembers a producer's last five batches per partition, as many as may be in flight, and answers a retry of any of them with where it went",
        history: "KAFKA-5494 (Kafka 1.0): idempotence with up to five requests in flight",
    },
    Bug {
        switch: Switch::ProducerStateNotRebuilt,
        wrong_rule: "a new leader starts with no producer state, so a retry across the failover of a batch it already has is written again",
        right_rule: "every replica keeps each producer's last batches as it appends them, so a new leader answers a retry as the old one would have",
        history: "KIP-98's producer state on every replica (Kafka 0.11: ProducerStateManager, rebuilt from snapshots and the log's tail)",
    },
    Bug {
        switch: Switch::EpochBumpWithBatchesInFlight,
        wrong_rule: "the producer, told a sequence is out of order, bumps its epoch at once and sends unacknowledged batches again under new sequences, though they may be written",
        right_rule: "the epoch is bumped only once nothing sent under the old one is in flight, and a batch that may be written never goes under the new one",
        history: "KIP-360 (Kafka 2.5); librdkafka#4953, redpanda#3039",
    },
    Bug {
        switch: Switch::NoProducerFencing,
        wrong_rule: "InitProducerId gives a transactional id's new producer the old producer's epoch, so the old one (a zombie) goes on writing and committing",
        right_rule: "every InitProducerId bumps the epoch, and the coordinator and every partition refuse the older epoch (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH)",
        history: "KIP-98 (Kafka 0.11): zombie fencing by producer epoch",
    },
    Bug {
        switch: Switch::HangingTxn,
        wrong_rule: "a partition leader appends a transactional batch that opens a transaction without asking the coordinator, so a produce held up past its transaction's end opens one that no marker will close",
        right_rule: "the leader asks the coordinator whether the partition is in the producer's ongoing transaction before a batch may open one there (KIP-890 part 1)",
        history: "KAFKA-12671 (hanging transactions pin the last stable offset); KIP-890 part 1 (Kafka 3.6)",
    },
    Bug {
        switch: Switch::LateEndTxn,
        wrong_rule: "EndTxn leaves the producer's epoch as it was, so an EndTxn held up past its transaction's end carries the next transaction's epoch and ends that one early",
        right_rule: "with transaction version 2 every EndTxn bumps the epoch, so a late EndTxn of an ended transaction is fenced (KIP-890 part 2)",
        history: "KAFKA-17754 (Jepsen's Bufstream analysis, reproduced on Kafka); KIP-890 part 2 (Kafka 4.0)",
    },
    Bug {
        switch: Switch::ConsumerNoRewindOnAbort,
        wrong_rule: "a consume-transform-produce loop that aborts its transaction keeps its consumer's positions, so what it read in the aborted transaction is skipped: offsets are committed past inputs whose outputs were never committed",
        right_rule: "after an abort the consumer seeks back to the group's committed offsets (or to where the aborted transaction started reading), so every input is processed again under a new transaction",
        history: "KAFKA-17582 (Jepsen's Bufstream analysis: a consumer's position after an aborted transaction); Kafka Streams and the documented read-process-write loop seek back on abort",
    },
];

impl Bug {
    /// The switch's name.
    pub fn name(&self) -> &'static str {
        self.switch.name()
    }
}

/// Every switch's name, in the order of Kafka's history, for messages that list them.
pub fn names() -> Vec<&'static str> {
    ALL.iter().map(|b| b.name()).collect()
}

/// Every switch, in the order of Kafka's history.
pub fn switches() -> impl Iterator<Item = Switch> {
    ALL.iter().map(|b| b.switch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_switch_is_described_once_and_named_as_serde_names_it() {
        for switch in switches() {
            assert_eq!(switch.bug().switch, switch);
            assert_eq!(ALL.iter().filter(|b| b.switch == switch).count(), 1);
            let json = serde_json::to_string(&switch).unwrap();
            assert_eq!(json, format!("\"{}\"", switch.name()));
            assert_eq!(switch.name().parse::<Switch>(), Ok(switch));
        }
        let e = "telepathy".parse::<Switch>().unwrap_err();
        assert!(e.starts_with("unknown bug `telepathy`: expected one of skip-divergence-check"));
    }
}
