//! The client-history checker, after Jepsen's Kafka checker: it reads a history (see
//! `crate::record::history`) and reports anomalies by kind, each with the key, offsets, values and history
//! lines involved.
//!
//! - `lost-write`: an acknowledged value at or below the highest offset read on its key, never read.
//! - `unseen`: an acknowledged value above it, never read (after a quiet period, a liveness gap).
//! - `duplicate`: one value at more than one offset.
//! - `inconsistent-offsets`: one offset of one key seen with two values.
//! - `nonmonotonic-poll`: a consumer's reads of a key go back (between polls or within one).
//! - `poll-skip`: a consumer's reads of a key jump over offsets known to exist (between polls or
//!   within one), without an `assign` in between.
//! - `nonmonotonic-send`: one producer's acknowledged offsets on a key go back, its sends taken in
//!   the order they were invoked.
//! - `g1a`: a read of a value whose send definitely failed.
//! - `key-order`: a consumer reads two acknowledged values of one producer and one record key in
//!   the opposite order to their sends (Kafka promises order per key, from one producer).
//! - `g1c`: transactions that each read what another sent, in a cycle (see `txn`); their `g0`
//!   write cycles are counted, not reported.
//! - `torn-transaction`: a consumer read part of a committed transaction's records on a key and
//!   read on past the rest without them. A transaction's sends and polls count for every
//!   other check as flat ones would, and the offsets it commits for a group (a pipeline's) as
//!   a commit of that group that takes effect when it commits.
//! - `pipeline-skip`, `pipeline-duplicate`, `pipeline-behind`: a consume-transform-produce
//!   pipeline's inputs were each processed by exactly one committed transaction (see `pipeline`).
//!
//! Reads: a poll's messages count as read whether it completed `ok`, `fail` or `info` (a failed
//! poll still saw what it returned), for every anomaly; only an `ok` poll moves its consumer on.
//! An `info` send that a read proves written stands as an acknowledged one would, at the offset
//! it carries (if any) or where it was read.
//!
//! An `assign` or `subscribe` replaces the keys its process holds: a key it keeps keeps its
//! position; a key new to it starts at or before the last `commit` of it that may have been made
//! (anywhere without one), from where reads must not skip; reading again what was read before is
//! allowed but counted (`rereads`). A consumer that restarts is a new process, as in Jepsen.
//!
//! Consumer groups: an `assign` or `commit` that names a `group` is the group's, so a member that
//! takes over a partition resumes from whatever member committed it last, counting a commit still
//! in flight (sent, not yet answered): the coordinator may have written it already. A group's
//! `assign` is a rebalance's outcome, so each of its keys starts afresh from the group's commit.
//! - `commit-backwards`: a group's (or a lone consumer's) commit of a key, acknowledged, is below
//!   one acknowledged before it was sent. Commits in flight at once may land in either order.
//! - `group-skip`: an acknowledged value at or below the highest offset a group read on its key,
//!   which no member of the group ever read: the group skipped it across a rebalance.
//!
//! What the producers promise decides whether `duplicate`, `nonmonotonic-send` and `key-order`
//! are violations ([`ProducerPromises`]): a producer that retries without idempotence may write a
//! value twice and out of order, so there they are counted (`allowed`), not reported.
//!
//! Sends made with acks 0 or 1 (an `acks` field other than -1) may be lost by design, so they do not
//! count toward `lost-write` and `unseen`, and their acknowledged offsets (which a failover may give
//! to another value) not toward `inconsistent-offsets`, `duplicate` or `nonmonotonic-send`; reads
//! of them still do. One pass builds indexes in ordered maps, so the result
//! is the same on every run and a 100,000-operation history takes well under a second.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::record::history::{Op, OpFn, OpType};

mod consumers;
mod group_skip;
mod index;
mod offsets;
mod pipeline;
mod send_order;
#[cfg(test)]
mod tests;
mod txn;
mod writes;

use index::Index;

/// One anomaly: where, and which history lines (1-based) show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Case {
    /// The key (`topic/partition`) it concerns.
    pub key: String,
    /// The offsets involved.
    pub offsets: Vec<i64>,
    /// The values involved.
    pub values: Vec<u64>,
    /// The history lines (1-based) that show it.
    pub lines: Vec<usize>,
    /// What went wrong, in a sentence.
    pub detail: String,
}

#[derive(Clone, Copy, Debug)]
/// The least a history must hold to count as having tested something.
pub struct Gates {
    /// Fewer acknowledged sends than this fails the history: it tested nothing.
    pub min_acked: u64,
    /// Fewer values read by polls than this fails it too.
    pub min_polled: u64,
}

impl Default for Gates {
    fn default() -> Self {
        Gates {
            min_acked: 1,
            min_polled: 1,
        }
    }
}

/// What the producers that wrote a history promise, which decides whether a value written twice or
/// out of order is a violation. The default is the strictest reading: a producer that never
/// retries, whose every duplicate and reordering is a fault.
///
/// | `idempotent` | `retries` | `duplicate`, `nonmonotonic-send`, `key-order` |
/// |---|---|---|
/// | true | either | violations: Kafka's idempotent producer writes each value once, in the order its sends were invoked, with up to 5 requests in flight |
/// | false | true | allowed and counted: a retried batch may land twice, or after a later one |
/// | false | false | violations: a send made once cannot land twice, nor overtake the next |
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ProducerPromises {
    /// The producers are idempotent (`enable.idempotence=true`).
    pub idempotent: bool,
    /// The producers retry a send that failed or timed out (`retries` above 0).
    pub retries: bool,
}

impl ProducerPromises {
    /// The anomaly kinds these promises allow: counted, not reported.
    fn allowed_kinds(self) -> &'static [&'static str] {
        if self.retries && !self.idempotent {
            &["duplicate", "nonmonotonic-send", "key-order"]
        } else {
            &[]
        }
    }
}

#[derive(Clone, Debug, Serialize)]
/// The checker's verdict on a history.
pub struct Analysis {
    /// No anomaly and every gate passed.
    pub valid: bool,
    /// The anomalies found, by kind, each kind's cases in history order.
    pub anomalies: BTreeMap<&'static str, Vec<Case>>,
    /// Operations in the history.
    pub ops: usize,
    /// Sends acknowledged.
    pub acked: u64,
    /// Values read by polls.
    pub polled: u64,
    /// Values a reader (a group, or a process alone) read again at an offset it had read before:
    /// what resuming from a commit costs.
    pub rereads: u64,
    /// The promises the history was judged by.
    pub promises: ProducerPromises,
    /// Cases of each kind the promises allow, counted instead of reported (see
    /// [`ProducerPromises`]).
    pub allowed: BTreeMap<&'static str, u64>,
    /// Gates that failed, as sentences.
    pub gates: Vec<String>,
}

/// Parses a history: one JSON object per line; blank lines are skipped. An invalid line is an
/// error that names its line number.
pub fn parse(text: &str) -> Result<(Vec<Op>, Vec<usize>), String> {
    let mut ops = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let op: Op = serde_json::from_str(line).map_err(|e| format!("line {}: {e}", i + 1))?;
        if let Some(problem) = misshapen(&op) {
            return Err(format!("line {}: {problem}", i + 1));
        }
        ops.push(op);
        lines.push(i + 1);
    }
    Ok((ops, lines))
}

/// What is wrong with an operation whose `value` does not fit its `f`: a transaction's must be its
/// steps; a send's or a poll's may be either (Jepsen writes every operation as a list of steps);
/// the others carry none.
fn misshapen(op: &Op) -> Option<String> {
    use crate::record::history::Value;
    match (op.f, &op.value) {
        (OpFn::Txn, Some(Value::One(v))) => Some(format!(
            "a txn's value is its list of steps, not the number {v}"
        )),
        (OpFn::Assign | OpFn::Subscribe | OpFn::Commit, Some(_)) => {
            Some(format!("a {:?} carries no value", op.f).to_lowercase())
        }
        _ => None,
    }
}

/// The anomalies found so far, by kind, each kind's cases in the order they were found; and the
/// cases of the kinds the producers' promises allow, only counted. The checks report every case
/// alike and never ask what is allowed: that is decided here, in one place.
struct Found {
    cases: BTreeMap<&'static str, Vec<Case>>,
    allowed_kinds: &'static [&'static str],
    allowed: BTreeMap<&'static str, u64>,
}

impl Found {
    fn new(promises: ProducerPromises) -> Found {
        Found {
            cases: BTreeMap::new(),
            allowed_kinds: promises.allowed_kinds(),
            allowed: BTreeMap::new(),
        }
    }

    fn report(&mut self, kind: &'static str, case: Case) {
        if self.allowed_kinds.contains(&kind) {
            self.count(kind, case);
        } else {
            self.cases.entry(kind).or_default().push(case);
        }
    }

    /// A case of a kind that is never a violation (Kafka promises nothing against it): counted.
    fn count(&mut self, kind: &'static str, _case: Case) {
        *self.allowed.entry(kind).or_default() += 1;
    }
}

/// Checks `ops`, written by producers that keep `promises`; `lines[i]` is the history line of
/// `ops[i]` (or pass `None` for `i + 1`).
pub fn check(
    ops: &[Op],
    lines: Option<&[usize]>,
    gates: Gates,
    promises: ProducerPromises,
) -> Analysis {
    let mut found = Found::new(promises);
    let op_count = ops.len();
    let raw = ops;
    let flat = txn::flatten(ops, lines);
    let (ops, lines) = match &flat {
        Some((flat, flat_lines)) => {
            txn::check(ops, lines, &mut found);
            pipeline::check(ops, lines, &mut found);
            (&flat[..], Some(&flat_lines[..]))
        }
        None => (ops, lines),
    };
    let index = Index::build(ops, lines);
    let places = offsets::check(&index, &mut found);
    writes::check(&index, &places, &mut found);
    send_order::check(&index, &mut found);
    let consumed = consumers::check(&index, ops, &mut found);
    group_skip::check(&index, &consumed, &mut found);
    let mut gate_failures = gate_failures(&index, gates);
    let txns = raw.iter().filter(|o| o.f == OpFn::Txn);
    if txns.clone().next().is_some() && !txns.clone().any(|o| o.kind == OpType::Ok) {
        gate_failures.push("transactions were run and none committed".to_owned());
    }
    Analysis {
        valid: found.cases.is_empty() && gate_failures.is_empty(),
        anomalies: found.cases,
        ops: op_count,
        acked: index.acked,
        polled: index.polled,
        rereads: consumed.rereads,
        promises,
        allowed: found.allowed,
        gates: gate_failures,
    }
}

/// The gates the history did not pass, as sentences: a history that tested nothing fails.
fn gate_failures(index: &Index, gates: Gates) -> Vec<String> {
    let mut failures = Vec::new();
    if index.acked < gates.min_acked {
        failures.push(format!(
            "{} sends acknowledged, fewer than the {} required",
            index.acked, gates.min_acked
        ));
    }
    if index.polled < gates.min_polled {
        failures.push(format!(
            "{} values read, fewer than the {} required",
            index.polled, gates.min_polled
        ));
    }
    failures
}
