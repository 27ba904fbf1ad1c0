//! Wrong rules that can be switched back on, one at a time, to show what the right rule is for and
//! that the simulator finds its absence. The default is the correct system: no bug is on unless a
//! run asks for it by name.

/// The leader never reports a diverging epoch: a follower keeps whatever it had past the point
/// where its log and the leader's part, and appends the leader's records after it (the problem
/// KIP-101's leader epochs solve).
pub const SKIP_DIVERGENCE_CHECK: &str = "skip-divergence-check";

/// A replica outside the ISR may be elected leader when no ISR member can be (the behaviour
/// `unclean.leader.election.enable=true` chooses, and the pre-0.11 default).
pub const UNCLEAN_ELECTION: &str = "unclean-election";

/// Asked where an epoch it never had ends, the leader answers with its own log end instead of the
/// largest epoch at or below it (KAFKA-6361, fixed by KIP-279): a follower that led an epoch the new
/// leader never saw keeps that epoch's records.
pub const FAST_FAILOVER: &str = "fast-failover";

/// Every bug switch, with what it brings back.
pub const ALL: &[(&str, &str)] = &[
    (SKIP_DIVERGENCE_CHECK, "the leader never reports a diverging epoch, so followers keep divergent records (KIP-101)"),
    (UNCLEAN_ELECTION, "a replica outside the ISR may be elected, losing acknowledged records (KIP-106)"),
    (FAST_FAILOVER, "end offsets for an unknown epoch are the leader's log end, so divergence goes unseen (KIP-279)"),
];

pub fn is_known(name: &str) -> bool {
    ALL.iter().any(|(n, _)| *n == name)
}
