//! The names of the checks: one enum, whose names (in violations, JSON, traces, shard files and
//! the `invariants` counters) are the kebab-case strings the checks have always had. A check of a
//! test's own has a name of its own: [`Check::Custom`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! checks {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// A check a violation belongs to.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Check {
            $($(#[$doc])* $variant,)*
            /// A check of a test's own (an `Invariant` or `Oracle` it added), by its name.
            Custom(&'static str),
        }

        impl Check {
            /// Every built-in check.
            pub const BUILT_IN: &[Check] = &[$(Check::$variant,)*];

            /// The check's name, as violations and reports give it.
            pub fn name(self) -> &'static str {
                match self {
                    $(Check::$variant => $name,)*
                    Check::Custom(name) => name,
                }
            }

            /// The built-in check of that name, if there is one.
            pub fn built_in(name: &str) -> Option<Check> {
                match name {
                    $($name => Some(Check::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

checks! {
    /// At most one leader per partition per leader epoch.
    SingleLeaderPerEpoch = "single-leader-per-epoch",
    /// At most one quorum leader per quorum epoch in a cluster.
    SingleQuorumLeaderPerEpoch = "single-quorum-leader-per-epoch",
    /// A node's quorum epoch and the leader epochs it knows never go down.
    MonotonicEpoch = "monotonic-epoch",
    /// The newest leader's high watermark never goes back in its epoch.
    MonotonicLeaderHighWatermark = "monotonic-leader-high-watermark",
    /// No replica truncates below a high watermark consumers were shown.
    NoTruncationBelowShownHighWatermark = "no-truncation-below-shown-high-watermark",
    /// A leader is in its ISR, the ISR is never empty, the controller's lies within the maximal one.
    Isr = "isr",
    /// Every committed batch is the same on every replica, and never changes.
    CommittedDataIdentical = "committed-data-identical",
    /// A new leader holds every offset acknowledged before its election.
    LeaderCompleteness = "leader-completeness",
    /// Every in-service ISR member holds every offset below a current leader's high watermark.
    IsrHoldsHighWatermark = "isr-holds-high-watermark",
    /// Every partition and the quorum have a leader after the quiet period.
    LeaderAfterHeal = "leader-after-heal",
    /// Every send completed.
    PendingSend = "pending-send",
    /// Every replica holds every acknowledged offset after the quiet period.
    ReplicatedAfterHeal = "replicated-after-heal",
    /// Every acks=all record is committed on its leader, at its offset, with its value.
    AckedWriteDurable = "acked-write-durable",
    /// Every value a consumer read is still committed at its offset.
    ReadStaysReadable = "read-stays-readable",
    /// A leader's last stable offset is at most its high watermark and never goes back in its
    /// epoch.
    LastStableOffset = "last-stable-offset",
    /// No transaction is left open on a partition where its coordinator will write no marker.
    HangingTransaction = "hanging-transaction",
    /// No coordinator holds a transaction open long past its timeout after the quiet period.
    UnfinishedTransaction = "unfinished-transaction",
    /// MirrorMaker copied every acknowledged record, in order.
    MirrorComplete = "mirror-complete",
    /// A consumer failing over from a checkpoint skips nothing.
    MirrorCheckpointSkip = "mirror-checkpoint-skip",
    /// An acknowledged write no read ever returned, though reads went past it.
    LostWrite = "lost-write",
    /// An acknowledged write no read returned, at the end of the history.
    Unseen = "unseen",
    /// A value at two offsets.
    Duplicate = "duplicate",
    /// Two values at one offset.
    InconsistentOffsets = "inconsistent-offsets",
    /// A consumer's reads went backwards.
    NonmonotonicPoll = "nonmonotonic-poll",
    /// A consumer skipped an offset it should have read.
    PollSkip = "poll-skip",
    /// A producer's acknowledged offsets went backwards.
    NonmonotonicSend = "nonmonotonic-send",
    /// A read of a value whose send failed (aborted read).
    G1a = "g1a",
    /// Two values of one key read in an order other than they were sent.
    KeyOrder = "key-order",
    /// A group's committed offset went backwards.
    CommitBackwards = "commit-backwards",
    /// A group member resumed past what the group had consumed.
    GroupSkip = "group-skip",
    /// The run tested nothing: nothing acknowledged, read or compared.
    Gate = "gate",
    /// An assertion of the model or the harness fired (a panic inside the run).
    Assertion = "assertion",
}

impl From<&'static str> for Check {
    /// The built-in check of that name, else a check of one's own.
    fn from(name: &'static str) -> Check {
        Check::built_in(name).unwrap_or(Check::Custom(name))
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl PartialEq<&str> for Check {
    fn eq(&self, other: &&str) -> bool {
        self.name() == *other
    }
}

impl PartialEq<Check> for &str {
    fn eq(&self, other: &Check) -> bool {
        *self == other.name()
    }
}

impl Serialize for Check {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Check {
    /// A name read back from a file that no built-in check has is leaked to become a custom
    /// check's: a few bytes per failed seed, in a process that soon ends.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Ok(Check::built_in(&name).unwrap_or_else(|| Check::Custom(Box::leak(name.into_boxed_str()))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_the_checks_they_name() {
        for check in Check::BUILT_IN {
            let json = serde_json::to_string(check).expect("a name");
            assert_eq!(json, format!("\"{}\"", check.name()));
            assert_eq!(serde_json::from_str::<Check>(&json).expect("read back"), *check);
        }
        let own: Check = serde_json::from_str("\"my-own-check\"").expect("read back");
        assert_eq!(own, Check::Custom("my-own-check"));
        assert_eq!(Check::from("leader-completeness"), Check::LeaderCompleteness);
        assert!(Check::LeaderCompleteness == "leader-completeness");
    }
}
