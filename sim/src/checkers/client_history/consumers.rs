//! What consumers did, in history order: commits (`commit-backwards`), assigns that start a
//! consumer on keys from a commit, and reads that go back (`nonmonotonic-poll`), skip offsets known
//! to exist (`poll-skip`), or reverse one producer's order for one record key (`key-order`).
//!
//! An `assign` or `subscribe` replaces the keys a process holds (those it was assigned or read),
//! as Kafka's client and Jepsen's checker read it: a key it keeps keeps the process's position, so
//! reading back on it is `nonmonotonic-poll`; a key it drops is forgotten; a key new to it starts
//! afresh, at or before the last commit that may have been made of it. A consumer that restarts is
//! a new process, as in Jepsen. One naming a `group` is a rebalance's outcome: Kafka's eager
//! rebalance revokes every partition before it hands them out, so every key in it starts afresh
//! from the group's commit.
//!
//! A poll that completed `fail` or `info` is checked like any other, but leaves the process where
//! it was, as Jepsen's `poll-skip` does: what it returned counts as read, not as a move.

use std::collections::{BTreeMap, BTreeSet};

use super::index::{Index, Key, Outcome};
use super::{Case, Found};
use crate::record::history::{Op, OpFn, OpType};

/// Who a commit belongs to: a consumer group, or a consumer alone.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Scope<'a> {
    Group(&'a str),
    Process(u64),
}

impl std::fmt::Display for Scope<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Group(g) => f.write_str(g),
            Scope::Process(p) => write!(f, "process {p}"),
        }
    }
}

fn scope(op: &Op) -> Scope<'_> {
    match &op.group {
        Some(g) => Scope::Group(g),
        None => Scope::Process(op.process),
    }
}

/// Keeps in `map` the higher of what it holds for `slot` and `offset` (seen at `line`).
fn raise<K: Ord>(map: &mut BTreeMap<K, (i64, usize)>, slot: K, offset: i64, line: usize) {
    if map.get(&slot).is_none_or(|(o, _)| *o < offset) {
        map.insert(slot, (offset, line));
    }
}

/// What the groups read, for `group_skip`, and how often a value was read again.
#[derive(Default)]
pub struct Consumed<'a> {
    /// Every value each group's members read.
    pub group_reads: BTreeMap<&'a str, BTreeSet<u64>>,
    /// The highest offset each group read of each key.
    pub group_high: BTreeMap<(&'a str, Key), i64>,
    /// Values a reader (a group, or a process alone) read again at an offset it had read before:
    /// what resuming from a commit costs.
    pub rereads: u64,
}

/// Where one process is on one key it holds.
#[derive(Clone, Default)]
struct Position<'a> {
    /// The last offset read, and its line.
    last_read: Option<(i64, usize)>,
    /// Until the first read after an assign: the highest commit that reading may resume from.
    resume: Option<(i64, usize)>,
    /// (producer, record key) -> (invoked_at, value, line) of the last acknowledged value of
    /// theirs read here: Kafka keeps one producer's order per record key within a partition.
    last_of_key: BTreeMap<(u64, &'a str), (usize, u64, usize)>,
}

/// The consumers' state as the history unfolds.
#[derive(Default)]
struct Consumers<'a> {
    /// (process, key) -> where the process is on each key it holds.
    positions: BTreeMap<(u64, Key), Position<'a>>,
    /// (group, or the process alone, key) -> the last acknowledged commit and its line.
    committed: BTreeMap<(Scope<'a>, Key), (i64, usize)>,
    /// The highest commit that may have been made, acknowledged or of unknown outcome.
    possible: BTreeMap<(Scope<'a>, Key), (i64, usize)>,
    /// (process, key) -> a commit sent and not yet answered: it may take effect at any moment
    /// from its sending, so a member resuming meanwhile may start from it.
    in_flight: BTreeMap<(u64, Key), (Scope<'a>, i64, usize)>,
    /// (process, key) -> the highest acknowledged commit when the process sent its pending one.
    floor: BTreeMap<(u64, Key), Option<(i64, usize)>>,
    group_of: BTreeMap<u64, &'a str>,
    /// (reader: the group, or the process alone; key) -> the highest offset it read.
    highest_read_by: BTreeMap<(Scope<'a>, Key), i64>,
    consumed: Consumed<'a>,
}

/// One value a poll returned.
struct Read<'o> {
    op: &'o Op,
    key: &'o str,
    key_id: Key,
    offset: i64,
    value: u64,
    line: usize,
}

pub fn check<'a>(index: &Index<'a>, ops: &'a [Op], found: &mut Found) -> Consumed<'a> {
    let mut c = Consumers::default();
    for (i, op) in ops.iter().enumerate() {
        let line = index.line_of(i);
        match (op.f, op.kind) {
            (OpFn::Commit, OpType::Invoke) => c.commit_sent(index, op, line),
            (OpFn::Commit, OpType::Fail) => {
                for key in op.committed().map(|(k, _)| k) {
                    c.in_flight.remove(&(op.process, index.id(key)));
                }
            }
            (OpFn::Commit, OpType::Info) => {
                for (key, offset) in op.committed() {
                    c.in_flight.remove(&(op.process, index.id(key)));
                    raise(&mut c.possible, (scope(op), index.id(key)), *offset, line);
                }
            }
            (OpFn::Commit, OpType::Ok) => c.commit_acked(index, op, line, found),
            // As Jepsen: an assign that may have taken effect replaces the keys.
            (OpFn::Assign | OpFn::Subscribe, OpType::Ok | OpType::Info) => c.assign(index, op),
            (OpFn::Poll, OpType::Invoke) => {}
            (OpFn::Poll, _) => c.poll(index, op, line, found),
            _ => {}
        }
    }
    c.consumed
}

impl<'a> Consumers<'a> {
    fn commit_sent(&mut self, index: &Index, op: &'a Op, line: usize) {
        for (key, offset) in op.committed() {
            let acked = self.committed.get(&(scope(op), index.id(key))).copied();
            self.floor.insert((op.process, index.id(key)), acked);
            self.in_flight
                .insert((op.process, index.id(key)), (scope(op), *offset, line));
        }
    }

    fn commit_acked(&mut self, index: &Index, op: &'a Op, line: usize, found: &mut Found) {
        for (key, offset) in op.committed() {
            self.in_flight.remove(&(op.process, index.id(key)));
            let slot = (scope(op), index.id(key));
            raise(&mut self.possible, slot, *offset, line);
            // Against what was acknowledged before this commit was sent, when its sending is in
            // the history; else against every earlier acknowledgement.
            let before = match self.floor.remove(&(op.process, index.id(key))) {
                Some(f) => f,
                None => self.committed.get(&slot).copied(),
            };
            if let Some((before, before_line)) = before.filter(|(b, _)| *offset < *b) {
                let case = Case {
                    key: key.to_string(),
                    offsets: vec![before, *offset],
                    values: Vec::new(),
                    lines: vec![before_line, line],
                    detail: format!("{} committed {offset} after {before} was committed", slot.0),
                };
                found.report("commit-backwards", case);
            }
            raise(&mut self.committed, slot, *offset, line);
        }
    }

    /// `op`'s keys replace the ones its process holds: those it keeps keep their positions (none,
    /// for a group's rebalance), those it drops are forgotten, and the others start afresh.
    fn assign(&mut self, index: &Index, op: &'a Op) {
        if let Some(g) = &op.group {
            self.group_of.insert(op.process, g);
        }
        let keys: BTreeSet<Key> = op.keys.iter().flatten().map(|k| index.id(k)).collect();
        let rebalance = op.group.is_some();
        self.forget(op.process, |key| rebalance || !keys.contains(&key));
        for key in keys {
            let slot = (op.process, key);
            if !self.positions.contains_key(&slot) {
                let resume = self.ceiling(scope(op), key);
                let fresh = Position {
                    resume,
                    ..Position::default()
                };
                self.positions.insert(slot, fresh);
            }
        }
    }

    /// Forgets where `process` is on each key it holds that `dropped` picks.
    fn forget(&mut self, process: u64, dropped: impl Fn(Key) -> bool) {
        let held: Vec<Key> = self
            .positions
            .range((process, Key::MIN)..=(process, Key::MAX))
            .map(|((_, key), _)| *key)
            .collect();
        for key in held.into_iter().filter(|k| dropped(*k)) {
            self.positions.remove(&(process, key));
        }
    }

    /// The highest commit of `key` by `scope` that may have been made, or that is still in
    /// flight: a consumer starting on the key resumes at or before it, the next offset to read.
    fn ceiling(&self, scope: Scope<'a>, key: Key) -> Option<(i64, usize)> {
        let sent = self
            .in_flight
            .iter()
            .filter(|((_, k), (s, ..))| *k == key && *s == scope)
            .map(|(_, &(_, offset, line))| (offset, line));
        let made = self.possible.get(&(scope, key)).copied();
        made.into_iter().chain(sent).max()
    }

    /// A poll's reads, key by key. One that failed or timed out is judged on a copy of the
    /// position, which it leaves as it was.
    fn poll(&mut self, index: &Index<'a>, op: &'a Op, line: usize, found: &mut Found) {
        let moves = op.kind == OpType::Ok;
        for (key, msgs) in op.polled() {
            let key_id = index.id(key);
            let slot = (op.process, key_id);
            let mut position = if moves {
                self.positions.remove(&slot).unwrap_or_default()
            } else {
                self.positions.get(&slot).cloned().unwrap_or_default()
            };
            for &(offset, value) in msgs {
                let read = Read {
                    op,
                    key,
                    key_id,
                    offset,
                    value,
                    line,
                };
                self.read(index, &read, &mut position, found);
            }
            if moves {
                self.positions.insert(slot, position);
            }
        }
    }

    /// Who reads for `process`: its group, or the process alone. Re-reads are counted per reader,
    /// so that a consumer restarted as a new process (in its group) counts what it reads again.
    fn reader(&self, process: u64) -> Scope<'a> {
        self.group_of
            .get(&process)
            .map_or(Scope::Process(process), |g| Scope::Group(g))
    }

    fn read(&mut self, index: &Index<'a>, r: &Read, position: &mut Position<'a>, found: &mut Found) {
        if let Some(&g) = self.group_of.get(&r.op.process) {
            self.consumed.group_reads.entry(g).or_default().insert(r.value);
            let h = self.consumed.group_high.entry((g, r.key_id)).or_insert(-1);
            *h = (*h).max(r.offset);
        }
        let high = self
            .highest_read_by
            .entry((self.reader(r.op.process), r.key_id))
            .or_insert(-1);
        if r.offset <= *high {
            self.consumed.rereads += 1;
        }
        *high = (*high).max(r.offset);
        key_order(index, r, position, found);
        if let Some(resume) = position.resume.take() {
            resume_skip(index, r, resume, found);
        }
        if let Some(prev) = position.last_read {
            read_order(index, r, prev, found);
        }
        position.last_read = Some((r.offset, r.line));
    }
}

/// `key-order`: two acknowledged values of one producer and one record key, read on one key in
/// the opposite order to their sends' invocations.
fn key_order<'a>(index: &Index<'a>, r: &Read, position: &mut Position<'a>, found: &mut Found) {
    let Some(send) = index
        .send_of(r.value)
        .filter(|s| s.counts && matches!(s.outcome, Outcome::Acked(_)))
    else {
        return;
    };
    let Some(record_key) = send.record_key else {
        return;
    };
    let order = (send.process, record_key);
    if let Some(&(at, before, before_line)) = position.last_of_key.get(&order) {
        if send.invoked_at < at {
            let case = Case {
                key: r.key.to_string(),
                offsets: vec![r.offset],
                values: vec![before, r.value],
                lines: vec![before_line, r.line],
                detail: format!(
                    "process {} read {} after {before}, though process {} sent them the \
                     other way round, both with key {record_key}",
                    r.op.process, r.value, send.process
                ),
            };
            found.report("key-order", case);
        }
    }
    position
        .last_of_key
        .insert(order, (send.invoked_at, r.value, r.line));
}

/// `poll-skip` on resuming: the first read after an assign lies past the commit it resumes from,
/// over an offset known to exist.
fn resume_skip(index: &Index, r: &Read, (ceiling, commit_line): (i64, usize), found: &mut Found) {
    if r.offset <= ceiling {
        return;
    }
    if let Some(missed) = index.known_between(r.key_id, ceiling, r.offset) {
        let case = Case {
            key: r.key.to_string(),
            offsets: vec![ceiling, r.offset],
            values: vec![r.value],
            lines: vec![commit_line, r.line],
            detail: format!(
                "process {} resumed at {}, past the commit of {ceiling}, over {missed}",
                r.op.process, r.offset
            ),
        };
        found.report("poll-skip", case);
    }
}

/// `nonmonotonic-poll` and `poll-skip` between two reads of one consumer: back, or over an offset
/// known to exist.
fn read_order(index: &Index, r: &Read, (prev, prev_line): (i64, usize), found: &mut Found) {
    let (offset, line) = (r.offset, r.line);
    let case = |detail: String| Case {
        key: r.key.to_string(),
        offsets: vec![prev, offset],
        values: vec![r.value],
        lines: if prev_line == line {
            vec![line]
        } else {
            vec![prev_line, line]
        },
        detail,
    };
    let process = r.op.process;
    if offset <= prev {
        let detail = format!("process {process} read {offset} after {prev}");
        found.report("nonmonotonic-poll", case(detail));
    } else if offset > prev + 1 {
        if let Some(missed) = index.known_between(r.key_id, prev + 1, offset) {
            let detail = format!("process {process} jumped from {prev} to {offset}, over {missed}");
            found.report("poll-skip", case(detail));
        }
    }
}
