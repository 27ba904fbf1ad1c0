//! Wrong rules that can be switched back on, one at a time, to show what the right rule is for and
//! that the simulator finds its absence. The default is the correct system: no bug is on unless a
//! run asks for it by name.

/// The leader never reports a diverging epoch: a follower keeps whatever it had past the point
/// where its log and the leader's part, and appends the leader's records after it (the problem
/// KIP-101's leader epochs solve).
pub const SKIP_DIVERGENCE_CHECK: &str = "skip-divergence-check";

/// Every bug switch, with what it brings back.
pub const ALL: &[(&str, &str)] = &[(
    SKIP_DIVERGENCE_CHECK,
    "the leader never reports a diverging epoch, so followers keep divergent records (KIP-101)",
)];

pub fn is_known(name: &str) -> bool {
    ALL.iter().any(|(n, _)| *n == name)
}
