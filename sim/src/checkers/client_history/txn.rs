//! Transactions: a history's `txn` operations are read as the sends and polls they hold by every
//! flat check, and judged as wholes for what only transactions can do, after Elle.
//!
//! Flat checks ([`flatten`]): each step of a transaction becomes one operation of the
//! transaction's process, with the transaction's completion, on its history line. A commit (`ok`)
//! acknowledges its sends at the offsets they carry, so a committed value never read below what
//! was read is a `lost-write`; an abort (`fail`) means its sends were never written, so reading one
//! is `g1a` (an aborted read); a crashed (`info`) transaction committed whole once a read proves
//! any one of its sends. Polls of an aborted transaction still saw what they returned, but do not
//! move their consumer on.
//!
//! Cycles ([`check`]): every completed operation that sent or read is a node. A value read links
//! the operation that sent it to each other operation that read it (a write-read edge). A cycle of
//! such edges is `g1c`, circular information flow: two transactions each read what the other
//! wrote, which no order of commits allows when reads see only committed data. Each case names
//! the cycle's operations and edges. Write-write edges join the writers of neighbouring values of
//! a partition, in offset order; their cycles (`g0`) are two transactions interleaved on two
//! partitions in opposite orders. Kafka's transactions promise that a transaction's records are
//! all committed or none, not an order between transactions, so `g0` is counted, not reported
//! (Jepsen's Kafka checker allows it too).
//!
//! Torn transactions ([`torn`]): a consumer that saw part of a committed transaction's records
//! on a partition and read on past the rest without them.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use super::{Case, Found};
use crate::record::history::{Micro, Op, OpFn, OpType, Value};

/// Whether `op` lists steps: a transaction, or a send or poll written as Jepsen writes every
/// operation, as a list of one step.
fn has_steps(op: &Op) -> bool {
    !op.steps().is_empty()
}

/// `ops` with every transaction replaced by its steps, and each flat operation's history line;
/// `None` when the history holds no transaction (the checks read `ops` as they are).
///
/// A transaction that crashed (`info`) but one of whose sends some operation read committed
/// whole: its sends stand as acknowledged, so each one never read below what was read is lost.
pub(super) fn flatten(ops: &[Op], lines: Option<&[usize]>) -> Option<(Vec<Op>, Vec<usize>)> {
    if !ops.iter().any(has_steps) {
        return None;
    }
    let read = values_read(ops);
    let mut flat = Vec::with_capacity(ops.len());
    let mut flat_lines = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        let line = lines.map_or(i + 1, |l| l[i]);
        if !has_steps(op) {
            flat.push(op.clone());
            flat_lines.push(line);
            continue;
        }
        let sent_as = outcome(op, &read);
        for step in op.steps() {
            let mut one = match step {
                Micro::Send { key, value, offset } => {
                    let mut send = Op::new(op.process, sent_as, OpFn::Send);
                    send.key = Some(key.clone());
                    send.value = Some(Value::One(*value));
                    // An aborted transaction's offsets name records that were never committed.
                    send.offset = offset.filter(|_| op.kind != OpType::Fail);
                    send
                }
                Micro::Poll(msgs) => {
                    let mut poll = Op::new(op.process, op.kind, OpFn::Poll);
                    poll.msgs = msgs.clone();
                    poll
                }
            };
            one.time_ms = op.time_ms;
            flat.push(one);
            flat_lines.push(line);
        }
        // A pipeline's offsets commit with its transaction.
        if op.offsets.is_some() {
            let mut commit = Op::new(op.process, sent_as, OpFn::Commit);
            commit.group = op.group.clone();
            commit.offsets = op.offsets.clone();
            commit.time_ms = op.time_ms;
            flat.push(commit);
            flat_lines.push(line);
        }
    }
    Some((flat, flat_lines))
}

/// A dependency between two operations: the value (of `key`, at `offset`) that makes it.
#[derive(Clone, Copy, Debug)]
struct Dep<'a> {
    key: &'a str,
    offset: i64,
    value: u64,
}

/// What each completed operation sent and read, by its index in the history.
struct Effects<'a> {
    /// Each value's sender.
    writer: BTreeMap<u64, usize>,
    /// (reader, what it read), in history order.
    reads: Vec<(usize, Dep<'a>)>,
    /// (key, offset, value) of every send with a known offset and every read: the version order.
    versions: Vec<(&'a str, i64, u64)>,
}

/// What `op` sent: (key, value, offset).
pub(super) fn sends(op: &Op) -> impl Iterator<Item = (&str, u64, Option<i64>)> {
    let flat = (op.f == OpFn::Send).then(|| op.key.as_deref().zip(op.sent()));
    let flat = flat.flatten().map(|(k, v)| (k, v, op.offset));
    let steps = op.steps().iter().filter_map(|s| match s {
        Micro::Send { key, value, offset } => Some((&**key, *value, *offset)),
        Micro::Poll(_) => None,
    });
    flat.into_iter().chain(steps)
}

/// Every value a completed operation read: a read of a send proves it was written.
pub(super) fn values_read(ops: &[Op]) -> BTreeSet<u64> {
    (ops.iter().filter(|o| o.kind != OpType::Invoke))
        .flat_map(polled)
        .flat_map(|(_, msgs)| msgs.iter().map(|(_, v)| *v))
        .collect()
}

/// How `op` ended as far as the history tells: a crashed (`info`) one that a read of any of its
/// sends (`read`, from [`values_read`]) proves written committed (`ok`).
pub(super) fn outcome(op: &Op, read: &BTreeSet<u64>) -> OpType {
    match op.kind {
        OpType::Info if sends(op).any(|(_, v, _)| read.contains(&v)) => OpType::Ok,
        kind => kind,
    }
}

/// What `op` read, by key: a poll's, or every poll step's of a transaction.
pub(super) fn polled(op: &Op) -> impl Iterator<Item = (&String, &Vec<(i64, u64)>)> {
    let steps = op.steps().iter().filter_map(|s| match s {
        Micro::Poll(Some(msgs)) => Some(msgs.iter()),
        _ => None,
    });
    op.polled().chain(steps.flatten())
}

fn effects(ops: &[Op]) -> Effects<'_> {
    let mut e = Effects {
        writer: BTreeMap::new(),
        reads: Vec::new(),
        versions: Vec::new(),
    };
    for (i, op) in ops.iter().enumerate().filter(|(_, o)| o.kind != OpType::Invoke) {
        for (key, value, offset) in sends(op) {
            e.writer.insert(value, i);
            if let (Some(offset), false) = (offset, op.kind == OpType::Fail) {
                e.versions.push((key, offset, value));
            }
        }
        for (key, msgs) in polled(op) {
            for &(offset, value) in msgs {
                e.reads.push((i, Dep { key, offset, value }));
                e.versions.push((key, offset, value));
            }
        }
    }
    // One value per offset: two values at one offset are `inconsistent-offsets`, reported apart.
    e.versions.sort_unstable();
    e.versions.dedup_by_key(|(k, o, _)| (*k, *o));
    e
}

/// The graph of operations (by history index) and the dependencies between them.
struct Graph<'a> {
    graph: DiGraph<usize, Dep<'a>>,
    nodes: BTreeMap<usize, NodeIndex>,
}

impl<'a> Graph<'a> {
    fn new() -> Self {
        Graph {
            graph: DiGraph::new(),
            nodes: BTreeMap::new(),
        }
    }

    fn node(&mut self, op: usize) -> NodeIndex {
        *(self.nodes.entry(op)).or_insert_with(|| self.graph.add_node(op))
    }

    fn link(&mut self, from: usize, to: usize, dep: Dep<'a>) {
        if from != to {
            let (a, b) = (self.node(from), self.node(to));
            self.graph.update_edge(a, b, dep);
        }
    }

    /// One cycle through each strongly connected component of more than one operation, in the
    /// order of their earliest operations.
    fn cycles(&self) -> Vec<Vec<(usize, Dep<'a>, usize)>> {
        let mut out = Vec::new();
        let mut components = petgraph::algo::tarjan_scc(&self.graph);
        components.iter_mut().for_each(|c| c.sort_unstable());
        components.sort_unstable_by_key(|c| c.iter().map(|n| self.graph[*n]).min());
        for component in components.iter().filter(|c| c.len() > 1) {
            out.push(self.shortest_cycle(component));
        }
        out
    }

    /// The shortest cycle from the component's earliest operation back to it; `component` is
    /// sorted by node.
    fn shortest_cycle(&self, component: &[NodeIndex]) -> Vec<(usize, Dep<'a>, usize)> {
        let start = *(component.iter())
            .min_by_key(|n| self.graph[**n])
            .expect("a component has a node");
        let mut came_from: BTreeMap<NodeIndex, (NodeIndex, Dep<'a>)> = BTreeMap::new();
        let mut queue = VecDeque::from([start]);
        'search: while let Some(n) = queue.pop_front() {
            for edge in self.graph.edges(n) {
                let next = edge.target();
                if component.binary_search(&next).is_err() || came_from.contains_key(&next) {
                    continue;
                }
                came_from.insert(next, (n, *edge.weight()));
                if next == start {
                    break 'search;
                }
                queue.push_back(next);
            }
        }
        let mut cycle = Vec::new();
        let mut at = start;
        while let Some(&(from, dep)) = came_from.get(&at) {
            cycle.push((self.graph[from], dep, self.graph[at]));
            at = from;
            if at == start {
                break;
            }
        }
        cycle.reverse();
        cycle
    }
}

/// Judges the history's transactions as wholes: `g1c` reported, `g0` counted.
/// Only for a history with transactions: without one, no operation both sends and reads, and no
/// cycle can form.
pub(super) fn check(ops: &[Op], lines: Option<&[usize]>, found: &mut Found) {
    let e = effects(ops);
    let line = |i: usize| lines.map_or(i + 1, |l| l[i]);
    cycles(ops, &e, &line, found);
    torn(ops, &e, &line, found);
    precommitted(ops, &e, &line, found);
}

/// `precommitted-read`: another process read a transaction's record in a poll that completed
/// before the transaction's commit was even asked for (its `commit_ms`): it read uncommitted
/// data. A transaction reading its own sends before it commits is allowed.
fn precommitted(ops: &[Op], e: &Effects, line: &dyn Fn(usize) -> usize, found: &mut Found) {
    for &(reader, d) in &e.reads {
        let Some(&writer) = e.writer.get(&d.value) else {
            continue;
        };
        let (w, r) = (&ops[writer], &ops[reader]);
        let (Some(commit_ms), Some(read_ms)) = (w.commit_ms, r.time_ms) else {
            continue;
        };
        if w.process == r.process || read_ms >= commit_ms {
            continue;
        }
        found.report(
            "precommitted-read",
            Case {
                key: d.key.to_owned(),
                offsets: vec![d.offset],
                values: vec![d.value],
                lines: vec![line(writer), line(reader)],
                detail: format!(
                    "process {} read {} at {read_ms} ms, before process {}'s transaction asked to                      commit it at {commit_ms} ms",
                    r.process, d.value, w.process
                ),
            },
        );
    }
}

/// `g1c` reported, `g0` counted.
fn cycles(ops: &[Op], e: &Effects, line: &dyn Fn(usize) -> usize, found: &mut Found) {
    let mut wr = Graph::new();
    for &(reader, dep) in &e.reads {
        if let Some(&writer) = e.writer.get(&dep.value) {
            wr.link(writer, reader, dep);
        }
    }
    for cycle in wr.cycles() {
        found.report("g1c", cycle_case(ops, &cycle, line, Edge::WriteRead));
    }
    let mut ww = Graph::new();
    for pair in e.versions.windows(2) {
        let ((key, _, before), (next_key, offset, value)) = (pair[0], pair[1]);
        if key != next_key {
            continue;
        }
        if let (Some(&a), Some(&b)) = (e.writer.get(&before), e.writer.get(&value)) {
            ww.link(a, b, Dep { key, offset, value });
        }
    }
    for cycle in ww.cycles() {
        found.count("g0", cycle_case(ops, &cycle, line, Edge::WriteWrite));
    }
}

/// Who reads: a consumer group's members as one (a rebalance hands a partition over mid-way, and
/// each member reads only its part), a lone consumer by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Reader<'a> {
    Group(&'a str),
    Process(u64),
}

impl std::fmt::Display for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reader::Group(g) => write!(f, "group {g}"),
            Reader::Process(p) => write!(f, "process {p}"),
        }
    }
}

/// `torn-transaction`: a reader saw some of a committed transaction's records on a partition
/// and read on past the others without them. A read_committed fetch hands out a transaction's
/// records whole, up to the last stable offset; a poll may still end inside a transaction (its
/// record limit), so only a reader that read up to or past the transaction's last record there
/// is judged.
fn torn(ops: &[Op], e: &Effects, line: &dyn Fn(usize) -> usize, found: &mut Found) {
    let group_of: BTreeMap<u64, &str> = (ops.iter().filter(|o| o.f == OpFn::Assign))
        .filter_map(|o| Some((o.process, o.group.as_deref()?)))
        .collect();
    let reader_of = |process: u64| match group_of.get(&process) {
        Some(g) => Reader::Group(g),
        None => Reader::Process(process),
    };
    // Per key and reader: the values read, the furthest offset read, and the operation that
    // read it.
    type Read = (BTreeSet<u64>, i64, usize);
    let mut read: BTreeMap<&str, BTreeMap<Reader, Read>> = BTreeMap::new();
    for &(reader, d) in &e.reads {
        let r = (read.entry(d.key).or_default())
            .entry(reader_of(ops[reader].process))
            .or_insert_with(|| (BTreeSet::new(), i64::MIN, reader));
        r.0.insert(d.value);
        if d.offset > r.1 {
            (r.1, r.2) = (d.offset, reader);
        }
    }
    let committed = (ops.iter().enumerate()).filter(|(_, o)| o.kind == OpType::Ok && has_steps(o));
    for (i, op) in committed {
        let mut by_key: BTreeMap<&str, Vec<(i64, u64)>> = BTreeMap::new();
        for (key, value, offset) in sends(op) {
            by_key.entry(key).or_default().extend(offset.map(|o| (o, value)));
        }
        for (key, mut sent) in by_key.into_iter().filter(|(_, s)| s.len() > 1) {
            sent.sort_unstable();
            let last = sent[sent.len() - 1].0;
            for (reader, (values, furthest, at)) in read.get(key).into_iter().flatten() {
                let missing: Vec<&(i64, u64)> =
                    sent.iter().filter(|(_, v)| !values.contains(v)).collect();
                if missing.is_empty() || missing.len() == sent.len() || *furthest < last {
                    continue;
                }
                found.report(
                    "torn-transaction",
                    Case {
                        key: key.to_owned(),
                        offsets: missing.iter().map(|(o, _)| *o).collect(),
                        values: missing.iter().map(|(_, v)| *v).collect(),
                        lines: vec![line(i), line(*at)],
                        detail: format!(
                            "{reader} read {} of the {} records process {}'s \
                             transaction committed to {key} and read on to offset {furthest} \
                             without the others",
                            sent.len() - missing.len(),
                            sent.len(),
                            op.process
                        ),
                    },
                );
            }
        }
    }
}

/// The kind of a cycle's edges.
#[derive(Clone, Copy)]
enum Edge {
    /// The later operation read what the earlier one sent.
    WriteRead,
    /// The later operation sent the next value of a partition after the earlier one's.
    WriteWrite,
}

/// A case naming every operation of `cycle` and the value that links each to the next.
fn cycle_case(
    ops: &[Op],
    cycle: &[(usize, Dep, usize)],
    line: &dyn Fn(usize) -> usize,
    kind: Edge,
) -> Case {
    let name = |i: usize| format!("process {}'s {:?} (line {})", ops[i].process, ops[i].f, line(i));
    let edges: Vec<String> = (cycle.iter())
        .map(|(from, d, to)| {
            let (to, from, (k, o, v)) = (name(*to), name(*from), (d.key, d.offset, d.value));
            match kind {
                Edge::WriteRead => format!("{to} read {k} at {o} (value {v}) sent by {from}"),
                Edge::WriteWrite => {
                    format!("{to} sent {k} at {o} (value {v}), next after a send of {from}")
                }
            }
        })
        .collect();
    Case {
        key: cycle.first().map_or(String::new(), |(_, d, _)| d.key.to_owned()),
        offsets: cycle.iter().map(|(_, d, _)| d.offset).collect(),
        values: cycle.iter().map(|(_, d, _)| d.value).collect(),
        lines: cycle.iter().map(|(from, _, _)| line(*from)).collect(),
        detail: format!("a cycle of {} operations: {}", cycle.len(), edges.join("; ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{check, parse, Analysis, Gates, ProducerPromises};

    /// Checks a history written as Jepsen writes it, one JSON object per line.
    fn judge(lines: &[&str]) -> Analysis {
        let (ops, at) = parse(&lines.join("\n")).expect("a valid history");
        check(&ops, Some(&at), Gates::default(), ProducerPromises::default())
    }

    fn kinds(a: &Analysis) -> Vec<&'static str> {
        a.anomalies.keys().copied().collect()
    }

    const T1_INVOKE: &str =
        r#"{"process":1,"type":"invoke","f":"txn","value":[["send","x/0",1],["poll"]]}"#;
    const T2_INVOKE: &str =
        r#"{"process":2,"type":"invoke","f":"txn","value":[["send","y/0",2],["poll"]]}"#;

    #[test]
    fn a_transaction_reads_and_writes_back_as_jepsen_writes_it() {
        let line = r#"{"process":3,"type":"ok","f":"txn","value":[["send","x/0",[0,1]],["poll",{"y/0":[[4,7]]}],["send","y/0",2]]}"#;
        let (ops, _) = parse(line).expect("valid");
        let back = serde_json::to_string(&ops[0]).expect("serializes");
        let (again, _) = parse(&back).expect("reads back");
        assert_eq!(ops, again);
        assert!(back.contains(r#"["send","x/0",[0,1]]"#), "{back}");
        assert!(back.contains(r#"["send","y/0",2]"#), "{back}");
        assert!(back.contains(r#"["poll",{"y/0":[[4,7]]}]"#), "{back}");
    }

    #[test]
    fn a_malformed_step_is_refused_with_its_line() {
        let bad = [
            T1_INVOKE,
            r#"{"process":1,"type":"ok","f":"txn","value":[["send","x/0"]]}"#,
        ];
        let error = parse(&bad.join("\n")).expect_err("refused");
        assert!(error.starts_with("line 2:"), "{error}");
        assert!(error.contains("a transaction step is"), "{error}");
    }

    #[test]
    fn a_value_that_does_not_fit_its_operation_is_refused() {
        let error = parse(r#"{"process":1,"type":"ok","f":"txn","value":5}"#).expect_err("refused");
        assert!(error.contains("line 1: a txn's value is its list of steps"), "{error}");
        let error = parse(r#"{"process":1,"type":"ok","f":"commit","value":5}"#).expect_err("no");
        assert!(error.contains("line 1: a commit carries no value"), "{error}");
    }

    #[test]
    fn sends_and_polls_written_as_lists_of_one_step_count_as_flat_ones() {
        let a = judge(&[
            r#"{"process":1,"type":"invoke","f":"send","value":[["send","x/0",1]]}"#,
            r#"{"process":1,"type":"ok","f":"send","value":[["send","x/0",[0,1]]]}"#,
            r#"{"process":2,"type":"ok","f":"poll","value":[["poll",{"x/0":[[0,1]]}]]}"#,
        ]);
        assert!(a.valid, "{:?} {:?}", a.anomalies, a.gates);
        assert_eq!((a.ops, a.acked, a.polled), (3, 1, 1));
    }

    #[test]
    fn two_transactions_that_read_each_others_sends_are_g1c_and_one_way_is_clean() {
        let cycle = judge(&[
            T1_INVOKE,
            T2_INVOKE,
            r#"{"process":1,"type":"ok","f":"txn","value":[["send","x/0",[0,1]],["poll",{"y/0":[[0,2]]}]]}"#,
            r#"{"process":2,"type":"ok","f":"txn","value":[["send","y/0",[0,2]],["poll",{"x/0":[[0,1]]}]]}"#,
        ]);
        assert_eq!(kinds(&cycle), ["g1c"], "{:?}", cycle.anomalies);
        let case = &cycle.anomalies["g1c"][0];
        assert_eq!(case.lines, [3, 4]);
        assert!(case.detail.contains("a cycle of 2 operations"), "{}", case.detail);
        assert!(case.detail.contains("process 2's Txn (line 4) read x/0 at 0"), "{}", case.detail);

        let one_way = judge(&[
            T1_INVOKE,
            T2_INVOKE,
            r#"{"process":1,"type":"ok","f":"txn","value":[["send","x/0",[0,1]],["poll",{}]]}"#,
            r#"{"process":2,"type":"ok","f":"txn","value":[["send","y/0",[0,2]],["poll",{"x/0":[[0,1]]}]]}"#,
            r#"{"process":3,"type":"ok","f":"poll","msgs":{"y/0":[[0,2]]}}"#,
        ]);
        assert!(one_way.valid, "{:?}", one_way.anomalies);
    }

    #[test]
    fn a_read_of_an_aborted_transaction_is_g1a_and_of_a_committed_one_is_not() {
        let read = r#"{"process":3,"type":"ok","f":"poll","msgs":{"x/0":[[0,1]]}}"#;
        let end = |kind: &str| {
            format!(r#"{{"process":1,"type":"{kind}","f":"txn","value":[["send","x/0",[0,1]]]}}"#)
        };
        let invoke = r#"{"process":1,"type":"invoke","f":"txn","value":[["send","x/0",1]]}"#;
        let aborted = judge(&[invoke, &end("fail"), read]);
        assert_eq!(kinds(&aborted), ["g1a"], "{:?}", aborted.anomalies);
        assert_eq!(aborted.anomalies["g1a"][0].lines, [2, 3], "the abort and the read");
        let committed = judge(&[invoke, &end("ok"), read]);
        assert!(committed.valid, "{:?}", committed.anomalies);
    }

    /// Process 1's transaction of two sends to x/0 (values 1 and 2, at offsets 0 and 1) that
    /// ended `kind`, process 2's send of 9 at offset 2 after it, and then `reads`, judged.
    fn two_sends_then(kind: &str, reads: &[&str]) -> Analysis {
        let end = format!(
            r#"{{"process":1,"type":"{kind}","f":"txn","value":[["send","x/0",[0,1]],["send","x/0",[1,2]]]}}"#
        );
        let mut history = vec![
            r#"{"process":1,"type":"invoke","f":"txn","value":[["send","x/0",1],["send","x/0",2]]}"#,
            &end,
            r#"{"process":2,"type":"ok","f":"send","key":"x/0","value":9,"offset":2}"#,
        ];
        history.extend_from_slice(reads);
        judge(&history)
    }

    #[test]
    fn a_read_of_one_send_of_a_crashed_transaction_proves_all_its_sends_committed() {
        let past = r#"{"process":3,"type":"ok","f":"poll","msgs":{"x/0":[[1,2],[2,9]]}}"#;
        let lost = two_sends_then("info", &[past]);
        let case = &lost.anomalies.get("lost-write").expect("lost")[0];
        assert_eq!(case.values, [1], "{:?}", lost.anomalies);
        // Nothing of it read: it may never have committed, and nothing of it is lost.
        let unread = r#"{"process":3,"type":"ok","f":"poll","msgs":{"x/0":[[2,9]]}}"#;
        let maybe = two_sends_then("info", &[unread]);
        assert!(!maybe.anomalies.contains_key("lost-write"), "{:?}", maybe.anomalies);
    }

    #[test]
    fn a_committed_send_never_read_below_what_was_read_is_a_lost_write() {
        let skipped = r#"{"process":3,"type":"ok","f":"poll","msgs":{"x/0":[[1,2],[2,9]]}}"#;
        let lost = two_sends_then("ok", &[skipped]);
        assert!(kinds(&lost).contains(&"lost-write"), "{:?}", lost.anomalies);
        let whole = r#"{"process":3,"type":"ok","f":"poll","msgs":{"x/0":[[0,1],[1,2],[2,9]]}}"#;
        assert!(two_sends_then("ok", &[whole]).valid);
    }

    #[test]
    fn a_consumer_that_reads_part_of_a_committed_transaction_and_moves_past_it_sees_it_torn() {
        let torn = two_sends_then(
            "ok",
            &[r#"{"process":3,"type":"ok","f":"poll","msgs":{"x/0":[[0,1],[2,9]]}}"#],
        );
        assert!(kinds(&torn).contains(&"torn-transaction"), "{:?}", torn.anomalies);
        let case = &torn.anomalies["torn-transaction"][0];
        assert_eq!(
            (case.offsets.clone(), case.values.clone(), case.lines.clone()),
            (vec![1], vec![2], vec![2, 4])
        );
        assert!(case.detail.contains("process 3 read 1 of the 2 records"), "{}", case.detail);

        let whole = two_sends_then(
            "ok",
            &[r#"{"process":3,"type":"ok","f":"poll","msgs":{"x/0":[[0,1],[1,2],[2,9]]}}"#],
        );
        assert!(whole.valid, "{:?}", whole.anomalies);
        // A poll may end inside a transaction (its record limit): the next one reads on.
        let split = two_sends_then(
            "ok",
            &[
                r#"{"process":3,"type":"ok","f":"poll","msgs":{"x/0":[[0,1]]}}"#,
                r#"{"process":3,"type":"ok","f":"poll","msgs":{"x/0":[[1,2],[2,9]]}}"#,
            ],
        );
        assert!(split.valid, "{:?}", split.anomalies);
    }

    #[test]
    fn another_process_reading_a_send_before_its_commit_was_asked_is_a_precommitted_read() {
        let invoke = r#"{"process":1,"type":"invoke","f":"txn","value":[["send","x/0",1]]}"#;
        let commit = r#"{"process":1,"type":"ok","f":"txn","value":[["send","x/0",[0,1]]],"commit_ms":50,"time_ms":60}"#;
        let early = r#"{"process":2,"type":"ok","f":"poll","msgs":{"x/0":[[0,1]]},"time_ms":40}"#;
        let late = r#"{"process":2,"type":"ok","f":"poll","msgs":{"x/0":[[0,1]]},"time_ms":55}"#;
        let caught = judge(&[invoke, early, commit]);
        assert_eq!(kinds(&caught), ["precommitted-read"], "{:?}", caught.anomalies);
        assert_eq!(caught.anomalies["precommitted-read"][0].lines, [3, 2]);
        let clean = judge(&[invoke, late, commit]);
        assert!(clean.anomalies.is_empty(), "{:?}", clean.anomalies);
    }

    #[test]
    fn transactions_interleaved_in_opposite_orders_on_two_partitions_are_g0_counted() {
        let a = judge(&[
            r#"{"process":1,"type":"invoke","f":"txn","value":[["send","x/0",1],["send","y/0",2]]}"#,
            r#"{"process":2,"type":"invoke","f":"txn","value":[["send","x/0",3],["send","y/0",4]]}"#,
            r#"{"process":1,"type":"ok","f":"txn","value":[["send","x/0",[0,1]],["send","y/0",[1,2]]]}"#,
            r#"{"process":2,"type":"ok","f":"txn","value":[["send","x/0",[1,3]],["send","y/0",[0,4]]]}"#,
            r#"{"process":3,"type":"ok","f":"poll","msgs":{"x/0":[[0,1],[1,3]],"y/0":[[0,4],[1,2]]}}"#,
        ]);
        assert!(a.valid, "{:?}", a.anomalies);
        assert_eq!(a.allowed.get("g0"), Some(&1));
    }
}
