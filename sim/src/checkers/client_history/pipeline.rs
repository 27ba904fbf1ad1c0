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

use super::txn::{outcome, polled, sends, values_read};
use super::{Case, Found};
use crate::record::history::{Op, OpFn, OpType};

/// A pipeline's transaction: a `txn` that commits offsets for a group.
fn pipeline_group(op: &Op) -> Option<&str> {
    (op.f == OpFn::Txn && op.offsets.is_some())
        .then_some(op.group.as_deref())
        .flatten()
}

/// What `op` read: (key, offset, value), from its polls or its poll steps.
fn reads(op: &Op) -> impl Iterator<Item = (&str, i64, u64)> {
    polled(op).flat_map(|(key, read)| read.iter().map(move |(o, v)| (key.as_str(), *o, *v)))
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
    // Every read: (key, offset) -> (value, line).
    let mut read_at: Reads = BTreeMap::new();
    for (i, op) in completed() {
        for (key, offset, value) in reads(op) {
            read_at.entry((key, offset)).or_insert((value, line(i)));
        }
    }
    let read_values = values_read(ops);
    let failed: BTreeSet<u64> = (completed().filter(|(_, o)| o.kind == OpType::Fail))
        .flat_map(|(_, o)| sends(o).map(|(_, v, _)| v))
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
        if outcome(op, &read_values) != OpType::Ok {
            continue;
        }
        let group = groups.entry(g).or_default();
        for (key, offset, _) in reads(op) {
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
        duplicates(name, group, &read_at, found);
        skips(name, group, &read_at, &failed, found);
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
        for (key, value, offset) in sends(op) {
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

#[cfg(test)]
mod tests {
    use super::super::{check, parse, Analysis, Gates, ProducerPromises};

    fn judge(lines: &[String]) -> Analysis {
        let (ops, at) = parse(&lines.join("\n")).expect("a valid history");
        check(&ops, Some(&at), Gates::default(), ProducerPromises::default())
    }

    fn kinds(a: &Analysis) -> Vec<&'static str> {
        a.anomalies.keys().copied().collect()
    }

    /// Inputs 1, 2 and 3 at offsets 0 to 2 of in/0, and the pipeline's member assigned in/0.
    fn inputs() -> Vec<String> {
        let mut h: Vec<String> = (0..3)
            .map(|o| {
                format!(r#"{{"process":0,"type":"ok","f":"send","key":"in/0","value":{},"offset":{o}}}"#, o + 1)
            })
            .collect();
        h.push(r#"{"process":1,"type":"ok","f":"assign","keys":["in/0"],"group":"p"}"#.into());
        h
    }

    /// A pipeline transaction of process 1 that ended `kind`: it read `read` (offset, value) from
    /// in/0, wrote value + 100 for each to out/0 from offset `out`, and committed in/0 up to
    /// `next`.
    fn txn(kind: &str, read: &[(i64, u64)], out: i64, next: i64) -> Vec<String> {
        let polled: Vec<String> = read.iter().map(|(o, v)| format!("[{o},{v}]")).collect();
        let poll = format!(r#"["poll",{{"in/0":[{}]}}]"#, polled.join(","));
        let sends = |done: bool| -> Vec<String> {
            (read.iter().zip(out..))
                .map(|((_, v), at)| match done {
                    true => format!(r#"["send","out/0",[{at},{}]]"#, v + 100),
                    false => format!(r#"["send","out/0",{}]"#, v + 100),
                })
                .collect()
        };
        let op = |kind: &str, done: bool| {
            let steps = [vec![poll.clone()], sends(done)].concat().join(",");
            format!(
                r#"{{"process":1,"type":"{kind}","f":"txn","value":[{steps}],"group":"p","offsets":{{"in/0":{next}}}}}"#
            )
        };
        vec![op("invoke", false), op(kind, true)]
    }

    /// A read_committed reader's poll of out/0.
    fn reader(read: &[(i64, u64)]) -> String {
        let polled: Vec<String> = read.iter().map(|(o, v)| format!("[{o},{v}]")).collect();
        format!(r#"{{"process":2,"type":"ok","f":"poll","msgs":{{"out/0":[{}]}}}}"#, polled.join(","))
    }

    const ALL: [(i64, u64); 3] = [(0, 1), (1, 2), (2, 3)];

    #[test]
    fn every_input_processed_once_and_committed_is_exactly_once() {
        let h = [inputs(), txn("ok", &ALL, 0, 3), vec![reader(&[(0, 101), (1, 102), (2, 103)])]];
        let a = judge(&h.concat());
        assert!(a.valid, "{:?} {:?}", a.anomalies, a.gates);
    }

    #[test]
    fn moving_on_past_an_aborted_transactions_inputs_is_a_pipeline_skip() {
        let aborted = txn("fail", &ALL[..2], 0, 2);
        let skipped = txn("ok", &ALL[2..], 2, 3);
        let h = [inputs(), aborted.clone(), skipped, vec![reader(&[(2, 103)])]];
        let a = judge(&h.concat());
        let skips = &a.anomalies.get("pipeline-skip").expect("a skip")[..];
        assert_eq!(skips.len(), 2, "{:?}", a.anomalies);
        assert_eq!((skips[0].offsets.clone(), skips[0].values.clone()), (vec![0, 3], vec![1]));
        // Its twin seeks back: the next transaction reads the aborted one's inputs again.
        let again = txn("ok", &ALL, 2, 3);
        let h = [inputs(), aborted, again, vec![reader(&[(2, 101), (3, 102), (4, 103)])]];
        let a = judge(&h.concat());
        assert!(a.valid, "{:?} {:?}", a.anomalies, a.gates);
    }

    #[test]
    fn inputs_two_committed_transactions_processed_are_a_pipeline_duplicate() {
        let first = txn("ok", &ALL[..2], 0, 2);
        let out = [(0, 101), (1, 102), (2, 101), (3, 102), (4, 103)];
        // The second read the first's inputs again, as if its commit had not counted.
        let h = [inputs(), first, txn("ok", &ALL, 2, 3), vec![reader(&out)]];
        let a = judge(&h.concat());
        assert!(kinds(&a).contains(&"pipeline-duplicate"), "{:?}", a.anomalies);
        assert_eq!(a.anomalies["pipeline-duplicate"].len(), 2);
    }

    #[test]
    fn inputs_above_the_last_commit_are_a_pipeline_behind() {
        let h = [inputs(), txn("ok", &ALL[..2], 0, 2), vec![reader(&[(0, 101), (1, 102)])]];
        let a = judge(&h.concat());
        // The input nobody read is `unseen` too.
        assert_eq!(kinds(&a), ["pipeline-behind", "unseen"], "{:?}", a.anomalies);
        assert_eq!(a.anomalies["pipeline-behind"][0].offsets, [2]);
    }

    #[test]
    fn a_pipelines_offsets_count_as_its_groups_commit_only_when_it_commits() {
        // A later transaction commits in/0 below what an earlier one committed: backwards.
        let later = txn("ok", &[], 3, 2);
        let h = [inputs(), txn("ok", &ALL, 0, 3), later.clone()];
        let mut h = h.concat();
        h.push(reader(&[(0, 101), (1, 102), (2, 103)]));
        let a = judge(&h);
        assert!(kinds(&a).contains(&"commit-backwards"), "{:?}", a.anomalies);
        // The earlier one aborted: its offsets never counted.
        let h = [inputs(), txn("fail", &ALL, 0, 3), later].concat();
        let a = judge(&h);
        assert!(!a.anomalies.contains_key("commit-backwards"), "{:?}", a.anomalies);
    }
}
