//! Exactly-once of a consume-transform-produce pipeline. A pipeline's transaction is a `txn`
//! operation that names a `group` and the `offsets` it commits for that group: its poll steps
//! read the inputs, its sends write the outputs, and the offsets count only if it commits.
//! Exactly-once means every input below the group's committed offsets was processed by one
//! committed transaction, no more and no fewer. (That each committed output is read once, and
//! no aborted one at all, is judged by the flat checks: `lost-write`, `duplicate`, `g1a`.)
//!
//! - `pipeline-skip`: an input below the offset the group committed on its key, which no
//!   committed transaction of the group read: its output was never committed, and the group
//!   moved past it (a consumer that did not seek back after an abort, KAFKA-17582).
//! - `pipeline-duplicate`: an input that two committed transactions of the group read: it was
//!   processed twice, its output committed twice.
//! - `pipeline-behind`: acknowledged inputs at or above the offset the group finally committed
//!   on a key it was assigned (after a quiet period, a liveness gap, as `unseen` is).
//!
//! A transaction whose commit is of unknown outcome (`info`) counts as committed once a read
//! proves any of its sends, as everywhere else. The inputs are every read of the group's keys in
//! the history, except values whose send definitely failed.

use std::collections::{BTreeMap, BTreeSet};

use super::{Case, Found};
use crate::record::history::{Micro, Op, OpFn, OpType};

/// A pipeline's transaction: a `txn` that commits offsets for a group.
fn pipeline_group(op: &Op) -> Option<&str> {
    (op.f == OpFn::Txn && op.offsets.is_some())
        .then_some(op.group.as_deref())
        .flatten()
}

fn inputs(op: &Op) -> impl Iterator<Item = (&str, i64, u64)> {
    (op.steps().iter())
        .filter_map(|s| match s {
            Micro::Poll(Some(msgs)) => Some(msgs.iter()),
            _ => None,
        })
        .flatten()
        .flat_map(|(key, read)| read.iter().map(move |(o, v)| (key.as_str(), *o, *v)))
}

fn sent(op: &Op) -> impl Iterator<Item = (&str, u64, Option<i64>)> {
    let flat = (op.f == OpFn::Send).then(|| op.key.as_deref().zip(op.sent()));
    let flat = flat.flatten().map(|(k, v)| (k, v, op.offset));
    let steps = op.steps().iter().filter_map(|s| match s {
        Micro::Send { key, value, offset } => Some((&**key, *value, *offset)),
        Micro::Poll(_) => None,
    });
    flat.into_iter().chain(steps)
}

/// What one group's pipeline did.
#[derive(Default)]
struct Group<'a> {
    /// (key, offset) -> the lines of the committed transactions that read the input there.
    processed: BTreeMap<(&'a str, i64), Vec<usize>>,
    /// key -> the highest offset committed, and the line of the transaction that committed it.
    committed: BTreeMap<&'a str, (i64, usize)>,
    /// The keys the group was assigned.
    keys: BTreeSet<&'a str>,
}

pub(super) fn check(ops: &[Op], lines: Option<&[usize]>, found: &mut Found) {
    if !ops.iter().any(|o| pipeline_group(o).is_some()) {
        return;
    }
    let line = |i: usize| lines.map_or(i + 1, |l| l[i]);
    let completed = || ops.iter().enumerate().filter(|(_, o)| o.kind != OpType::Invoke);
    // Every read: (key, offset) -> (value, line); and the values read, which prove a send.
    let mut reads: BTreeMap<(&str, i64), (u64, usize)> = BTreeMap::new();
    for (i, op) in completed() {
        let polls = op.polled().flat_map(|(k, r)| r.iter().map(move |(o, v)| (k.as_str(), *o, *v)));
        for (key, offset, value) in polls.chain(inputs(op)) {
            reads.entry((key, offset)).or_insert((value, line(i)));
        }
    }
    let read_values: BTreeSet<u64> = reads.values().map(|(v, _)| *v).collect();
    let failed: BTreeSet<u64> = (completed().filter(|(_, o)| o.kind == OpType::Fail))
        .flat_map(|(_, o)| sent(o).map(|(_, v, _)| v))
        .collect();
    let mut groups: BTreeMap<&str, Group> = BTreeMap::new();
    for (i, op) in completed() {
        if op.f == OpFn::Assign {
            if let Some(g) = op.group.as_deref() {
                let keys = op.keys.iter().flatten().map(String::as_str);
                groups.entry(g).or_default().keys.extend(keys);
            }
            continue;
        }
        let Some(g) = pipeline_group(op) else {
            continue;
        };
        let proven = || sent(op).any(|(_, v, _)| read_values.contains(&v));
        let committed = op.kind == OpType::Ok || (op.kind == OpType::Info && proven());
        if !committed {
            continue;
        }
        let group = groups.entry(g).or_default();
        for (key, offset, _) in inputs(op) {
            group.processed.entry((key, offset)).or_default().push(line(i));
        }
        for (key, offset) in op.committed() {
            let c = group.committed.entry(key).or_insert((*offset, line(i)));
            if *offset > c.0 {
                *c = (*offset, line(i));
            }
        }
    }
    for (name, group) in groups.iter().filter(|(_, g)| !g.committed.is_empty()) {
        duplicates(name, group, &reads, found);
        skips(name, group, &reads, &failed, found);
        behind(name, group, ops, &line, found);
    }
}

/// `pipeline-duplicate`: inputs read by more than one committed transaction.
fn duplicates(name: &str, group: &Group, reads: &Reads, found: &mut Found) {
    for (&(key, offset), at) in group.processed.iter().filter(|(_, at)| at.len() > 1) {
        let value = reads.get(&(key, offset)).map_or(u64::MAX, |r| r.0);
        let case = Case {
            key: key.to_owned(),
            offsets: vec![offset],
            values: vec![value],
            lines: at.clone(),
            detail: format!(
                "group {name} processed the input {value} at offset {offset} in {} committed transactions",
                at.len()
            ),
        };
        found.report("pipeline-duplicate", case);
    }
}

type Reads<'a> = BTreeMap<(&'a str, i64), (u64, usize)>;

/// `pipeline-skip`: inputs below the committed offset that no committed transaction read.
fn skips(name: &str, group: &Group, reads: &Reads, failed: &BTreeSet<u64>, found: &mut Found) {
    for (&key, &(committed, commit_line)) in &group.committed {
        let below = reads.range((key, i64::MIN)..(key, committed));
        for (&(_, offset), &(value, read_line)) in below {
            if failed.contains(&value) || group.processed.contains_key(&(key, offset)) {
                continue;
            }
            let case = Case {
                key: key.to_owned(),
                offsets: vec![offset, committed],
                values: vec![value],
                lines: vec![read_line, commit_line],
                detail: format!(
                    "group {name} committed {key} up to {committed}, but no committed transaction \
                     processed the input {value} at offset {offset}"
                ),
            };
            found.report("pipeline-skip", case);
        }
    }
}

/// `pipeline-behind`: acknowledged inputs of the group's keys at or above its last commit there.
fn behind(
    name: &str,
    group: &Group,
    ops: &[Op],
    line: &dyn Fn(usize) -> usize,
    found: &mut Found,
) {
    let mut left: BTreeMap<&str, Vec<(i64, u64, usize)>> = BTreeMap::new();
    let acked = (ops.iter().enumerate())
        .filter(|(_, o)| o.kind == OpType::Ok && o.acks.is_none_or(|a| a == -1));
    for (i, op) in acked {
        for (key, value, offset) in sent(op) {
            let Some(offset) = offset.filter(|_| group.keys.contains(key)) else {
                continue;
            };
            let committed = group.committed.get(key).map_or(0, |c| c.0);
            if offset >= committed {
                left.entry(key).or_default().push((offset, value, line(i)));
            }
        }
    }
    for (key, mut left) in left {
        left.sort_unstable();
        let count = left.len();
        // The first few name the gap; the count says how wide it is.
        left.truncate(10);
        let committed = group.committed.get(key).map_or(0, |c| c.0);
        let case = Case {
            key: key.to_owned(),
            offsets: left.iter().map(|l| l.0).collect(),
            values: left.iter().map(|l| l.1).collect(),
            lines: left.iter().map(|l| l.2).collect(),
            detail: format!(
                "group {name} committed {key} up to {committed}; {} acknowledged inputs from \
                 offset {} on were never processed",
                count,
                left[0].0
            ),
        };
        found.report("pipeline-behind", case);
    }
}
