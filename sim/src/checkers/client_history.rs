//! The client-history checker, after Jepsen's Kafka checker: it reads a history (see
//! `crate::history`) and reports anomalies by kind, each with the key, offsets, values and history
//! lines involved.
//!
//! - `lost-write`: an acknowledged value at or below the highest offset read on its key, never read.
//! - `unseen`: an acknowledged value above it, never read (after a quiet period, a liveness gap).
//! - `duplicate`: one value at more than one offset.
//! - `inconsistent-offsets`: one offset of one key seen with two values.
//! - `nonmonotonic-poll`: a consumer's reads of a key go back (between polls or within one).
//! - `poll-skip`: a consumer's reads of a key jump over offsets known to exist (between polls or
//!   within one), without an `assign` in between.
//! - `nonmonotonic-send`: one producer's acknowledged offsets on a key go back.
//! - `g1a`: a read of a value whose send definitely failed.
//! - `key-order`: a consumer reads two acknowledged values of one producer and one record key in
//!   the opposite order to their sends (Kafka promises order per key, from one producer).
//!
//! An `assign` (a consumer starting over, as after its own crash) resumes from the process's last
//! `commit` of each key, or from the start without one: reads from there on must not skip, and
//! reading again what was read before the crash is allowed but counted (`rereads`).
//!
//! Consumer groups: an `assign` or `commit` that names a `group` is the group's, so a member that
//! takes over a partition resumes from whatever member committed it last, counting a commit still
//! in flight (sent, not yet answered): the coordinator may have written it already.
//! - `commit-backwards`: a group's (or a lone consumer's) commit of a key, acknowledged, is below
//!   one acknowledged before it was sent. Commits in flight at once may land in either order.
//! - `group-skip`: an acknowledged value at or below the highest offset a group read on its key,
//!   which no member of the group ever read: the group skipped it across a rebalance.
//!
//! Sends made with acks 0 or 1 (an `acks` field other than -1) may be lost by design, so they do not
//! count toward `lost-write` and `unseen`, and their acknowledged offsets (which a failover may give
//! to another value) not toward `inconsistent-offsets`, `duplicate` or `nonmonotonic-send`; reads
//! of them still do. One pass builds indexes in ordered maps, so the result
//! is the same on every run and a 100,000-operation history takes well under a second.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::history::{Op, OpFn, OpType};

pub const KINDS: &[&str] = &[
    "lost-write",
    "unseen",
    "duplicate",
    "inconsistent-offsets",
    "nonmonotonic-poll",
    "poll-skip",
    "nonmonotonic-send",
    "g1a",
    "key-order",
    "commit-backwards",
    "group-skip",
];

/// One anomaly: where, and which history lines (1-based) show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Case {
    pub key: String,
    pub offsets: Vec<i64>,
    pub values: Vec<u64>,
    pub lines: Vec<usize>,
    pub detail: String,
}

#[derive(Clone, Copy, Debug)]
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

#[derive(Clone, Debug, Serialize)]
pub struct Analysis {
    pub valid: bool,
    pub anomalies: BTreeMap<&'static str, Vec<Case>>,
    pub ops: usize,
    pub acked: u64,
    pub polled: u64,
    /// Values a consumer read again at an offset it had read before (after an `assign`).
    pub rereads: u64,
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
        ops.push(op);
        lines.push(i + 1);
    }
    Ok((ops, lines))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Acked(i64),
    Failed,
    Unknown,
}

struct Send<'a> {
    key: Key,
    outcome: Outcome,
    counts: bool,
    line: usize,
    process: u64,
    record_key: Option<&'a str>,
    /// Position among the sends of its process.
    index: usize,
}

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

/// A key (`topic/partition`) by number: the maps below compare numbers, not strings.
type Key = u32;

/// Numbers every key in `ops`, in order of name; returns the numbers and the names.
fn number_keys(ops: &[Op]) -> (BTreeMap<&str, Key>, Vec<&str>) {
    // A history names few keys many times: a set of them, not a sort of every mention.
    let mut names: BTreeSet<&str> = BTreeSet::new();
    for op in ops {
        names.extend(op.key.as_deref());
        names.extend(op.polled().map(|(k, _)| k.as_str()));
        names.extend(op.keys.iter().flatten().map(String::as_str));
        names.extend(op.committed().map(|(k, _)| k.as_str()));
    }
    let names: Vec<&str> = names.into_iter().collect();
    let ids = names.iter().enumerate().map(|(i, n)| (*n, i as Key)).collect();
    (ids, names)
}

/// What `sorted`, sorted by value with one entry per value, holds for `value`.
fn by_value<T>(sorted: &[(u64, T)], value: u64) -> Option<&T> {
    let at = sorted.binary_search_by_key(&value, |(v, _)| *v).ok()?;
    Some(&sorted[at].1)
}

/// Keeps in `map` the higher of what it holds for `slot` and `offset` (seen at `line`).
fn raise<K: Ord>(map: &mut BTreeMap<K, (i64, usize)>, slot: K, offset: i64, line: usize) {
    if map.get(&slot).is_none_or(|(o, _)| *o < offset) {
        map.insert(slot, (offset, line));
    }
}

/// Checks `ops`; `lines[i]` is the history line of `ops[i]` (or pass `None` for `i + 1`).
pub fn check(ops: &[Op], lines: Option<&[usize]>, gates: Gates) -> Analysis {
    let line_of = |i: usize| lines.map_or(i + 1, |l| l[i]);
    let (ids, names) = number_keys(ops);
    let id = |key: &str| ids[key];
    let mut anomalies: BTreeMap<&'static str, Vec<Case>> = BTreeMap::new();
    let mut report = |kind: &'static str, case: Case| anomalies.entry(kind).or_default().push(case);

    // Sends by value, and every sighting of (key, offset) -> value.
    // Keys are borrowed from the history: a history of many operations has few keys.
    // Sends, reads and sightings are gathered in history order and sorted once, rather than kept
    // in maps that every one of many operations would have to insert into.
    let mut sends: Vec<(u64, Send)> = Vec::new();
    // (key, offset, value, line) of every sighting.
    let mut sightings: Vec<(Key, i64, u64, usize)> = Vec::new();
    let mut reads: Vec<(u64, usize)> = Vec::new();
    let mut highest_read: BTreeMap<Key, i64> = BTreeMap::new();
    let mut acked = 0u64;
    let mut polled = 0u64;
    let mut sends_by_process: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let line = line_of(i);
        match (op.f, op.kind) {
            (OpFn::Send, OpType::Invoke) => {}
            (OpFn::Send, kind) => {
                let (Some(key), Some(value)) = (&op.key, op.value) else {
                    continue;
                };
                let key = id(key);
                let outcome = match (kind, op.offset) {
                    (OpType::Ok, Some(offset)) => Outcome::Acked(offset),
                    (OpType::Fail, _) => Outcome::Failed,
                    _ => Outcome::Unknown,
                };
                let counts = op.acks.is_none_or(|a| a == -1);
                if let Outcome::Acked(offset) = outcome {
                    acked += 1;
                    // An acks=1 acknowledgement promises nothing durable: its offset may be
                    // reused after a failover, so only acks=all offsets count as sightings.
                    if counts {
                        sightings.push((key, offset, value, line));
                    }
                }
                let index = sends_by_process.entry(op.process).or_default();
                *index += 1;
                sends.push((
                    value,
                    Send {
                        key,
                        outcome,
                        counts,
                        line,
                        process: op.process,
                        record_key: op.record_key.as_deref(),
                        index: *index,
                    },
                ));
            }
            (OpFn::Poll, OpType::Ok) => {
                for (key, msgs) in op.polled() {
                    let key = id(key);
                    for (offset, value) in msgs {
                        polled += 1;
                        sightings.push((key, *offset, *value, line));
                        reads.push((*value, line));
                        let h = highest_read.entry(key).or_insert(*offset);
                        *h = (*h).max(*offset);
                    }
                }
            }
            _ => {}
        }
    }

    // A value's last completion stands, and its first read.
    // Lines are unique and rise through the history, so sorting by line within a value puts a
    // value's completions in order without a stable sort's scratch copy of every send.
    sends.sort_unstable_by_key(|(value, send)| (*value, std::cmp::Reverse(send.line)));
    sends.dedup_by_key(|(value, _)| *value);
    let sends = sends;
    reads.sort_unstable();
    reads.dedup_by_key(|(value, _)| *value);
    let send_of = |value: u64| by_value(&sends, value);
    let read_of = |value: u64| by_value(&reads, value).copied();

    // Each value seen at each offset of each key once, with the first line that showed it.
    sightings.sort_unstable();
    sightings.dedup_by_key(|(key, offset, value, _)| (*key, *offset, *value));
    // Every (key, offset) some operation saw, in order.
    let mut seen: Vec<(Key, i64)> = sightings.iter().map(|s| (s.0, s.1)).collect();
    seen.dedup();

    // inconsistent-offsets and duplicate.
    // (value, key, offset, line) of every sighting, sorted by value: a value's places in a run.
    let mut where_value: Vec<(u64, Key, i64, usize)> = Vec::with_capacity(sightings.len());
    for at in sightings.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (key, offset) = (at[0].0, at[0].1);
        if at.len() > 1 {
            let key = names[key as usize];
            report(
                "inconsistent-offsets",
                Case {
                    key: key.to_string(),
                    offsets: vec![offset],
                    values: at.iter().map(|s| s.2).collect(),
                    lines: at.iter().map(|s| s.3).collect(),
                    detail: format!(
                        "offset {offset} of {key} holds {} different values",
                        at.len()
                    ),
                },
            );
        }
        for &(_, _, value, line) in at {
            where_value.push((value, key, offset, line));
        }
    }
    where_value.sort_unstable();
    let places_of = |value: u64| {
        let from = where_value.partition_point(|p| p.0 < value);
        let to = where_value.partition_point(|p| p.0 <= value);
        &where_value[from..to]
    };
    for places in where_value.chunk_by(|a, b| a.0 == b.0) {
        if places.len() > 1 {
            let value = places[0].0;
            report(
                "duplicate",
                Case {
                    key: names[places[0].1 as usize].to_string(),
                    offsets: places.iter().map(|p| p.2).collect(),
                    values: vec![value],
                    lines: places.iter().map(|p| p.3).collect(),
                    detail: format!("value {value} is at {} offsets", places.len()),
                },
            );
        }
    }

    // lost-write, unseen, g1a.
    for (value, send) in &sends {
        match send.outcome {
            Outcome::Acked(offset) if send.counts && read_of(*value).is_none() => {
                let highest = highest_read.get(&send.key).copied();
                let key = names[send.key as usize];
                let kind = if highest.is_some_and(|h| offset <= h) {
                    "lost-write"
                } else {
                    "unseen"
                };
                let detail = match highest {
                    Some(h) => format!(
                        "acknowledged at offset {offset}, never read; reads of {key} reached {h}"
                    ),
                    None => format!("acknowledged at offset {offset}, never read; {key} was never read"),
                };
                report(
                    kind,
                    Case {
                        key: key.to_string(),
                        offsets: vec![offset],
                        values: vec![*value],
                        lines: vec![send.line],
                        detail,
                    },
                );
            }
            Outcome::Failed => {
                if let Some(read_line) = read_of(*value) {
                    report(
                        "g1a",
                        Case {
                            key: names[send.key as usize].to_string(),
                            offsets: places_of(*value).iter().map(|p| p.2).collect(),
                            values: vec![*value],
                            lines: vec![send.line, read_line],
                            detail: format!("value {value} was read though its send failed"),
                        },
                    );
                }
            }
            _ => {}
        }
    }

    // Per process and key: sends that go back, polls that go back or skip.
    let mut last_send: BTreeMap<(u64, Key), (i64, usize)> = BTreeMap::new();
    let mut last_read: BTreeMap<(u64, Key), (i64, usize)> = BTreeMap::new();
    // (group, or the process alone, key) -> the last acknowledged commit and its line.
    let mut committed: BTreeMap<(Scope, Key), (i64, usize)> = BTreeMap::new();
    fn scope(op: &Op) -> Scope<'_> {
        match &op.group {
            Some(g) => Scope::Group(g),
            None => Scope::Process(op.process),
        }
    }
    // The highest commit that may have been made, acknowledged or of unknown outcome.
    let mut possible: BTreeMap<(Scope, Key), (i64, usize)> = BTreeMap::new();
    // (process, key) -> a commit sent and not yet answered: it may take effect at any moment
    // from its sending, so a member resuming meanwhile may start from it.
    let mut in_flight: BTreeMap<(u64, Key), (Scope, i64, usize)> = BTreeMap::new();
    // (process, key) -> where an assign lets its reading resume at most.
    let mut resume: BTreeMap<(u64, Key), (i64, usize)> = BTreeMap::new();
    // (process, key) -> the highest acknowledged commit when the process sent its pending one.
    let mut floor: BTreeMap<(u64, Key), Option<(i64, usize)>> = BTreeMap::new();
    let mut group_of: BTreeMap<u64, &str> = BTreeMap::new();
    let mut group_reads: BTreeMap<&str, std::collections::BTreeSet<u64>> = BTreeMap::new();
    let mut group_high: BTreeMap<(&str, Key), i64> = BTreeMap::new();
    let mut highest_read_by: BTreeMap<(u64, Key), i64> = BTreeMap::new();
    // The first offset of `key` in `from..to` that some operation saw: a read past it skipped it.
    let known_between = |key: Key, from: i64, to: i64| {
        let at = seen.partition_point(|k| *k < (key, from));
        seen.get(at)
            .filter(|k| **k < (key, to))
            .map(|(_, offset)| *offset)
    };
    let mut rereads = 0u64;
    // (consumer, producer, record key) -> (send index, value, line) of the last acked value read.
    let mut last_of_key: BTreeMap<(u64, u64, &str), (usize, u64, usize)> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        let line = line_of(i);
        match (op.f, op.kind) {
            (OpFn::Send, OpType::Ok) => {
                let (Some(key), Some(offset)) = (&op.key, op.offset) else {
                    continue;
                };
                if op.acks.is_some_and(|a| a != -1) {
                    continue;
                }
                let slot = (op.process, id(key));
                if let Some((prev, prev_line)) = last_send.get(&slot) {
                    if offset < *prev {
                        report(
                            "nonmonotonic-send",
                            Case {
                                key: key.to_string(),
                                offsets: vec![*prev, offset],
                                values: op.value.into_iter().collect(),
                                lines: vec![*prev_line, line],
                                detail: format!(
                                    "process {} was acknowledged at {offset} after {prev}",
                                    op.process
                                ),
                            },
                        );
                    }
                }
                last_send.insert(slot, (offset, line));
            }
            (OpFn::Commit, OpType::Invoke) => {
                for (key, offset) in op.committed() {
                    let acked = committed.get(&(scope(op), id(key))).copied();
                    floor.insert((op.process, id(key)), acked);
                    in_flight.insert((op.process, id(key)), (scope(op), *offset, line));
                }
            }
            (OpFn::Commit, OpType::Fail) => {
                for key in op.committed().map(|(k, _)| k) {
                    in_flight.remove(&(op.process, id(key)));
                }
            }
            (OpFn::Commit, OpType::Info) => {
                for (key, offset) in op.committed() {
                    in_flight.remove(&(op.process, id(key)));
                    raise(&mut possible, (scope(op), id(key)), *offset, line);
                }
            }
            (OpFn::Commit, OpType::Ok) => {
                for (key, offset) in op.committed() {
                    in_flight.remove(&(op.process, id(key)));
                    let slot = (scope(op), id(key));
                    raise(&mut possible, slot, *offset, line);
                    // Against what was acknowledged before this commit was sent, when its sending
                    // is in the history; else against every earlier acknowledgement.
                    let before = match floor.remove(&(op.process, id(key))) {
                        Some(f) => f,
                        None => committed.get(&slot).copied(),
                    };
                    if let Some((before, before_line)) = before {
                        if *offset < before {
                            report(
                                "commit-backwards",
                                Case {
                                    key: key.to_string(),
                                    offsets: vec![before, *offset],
                                    values: Vec::new(),
                                    lines: vec![before_line, line],
                                    detail: format!(
                                        "{} committed {offset} after {before} was committed",
                                        slot.0
                                    ),
                                },
                            );
                        }
                    }
                    raise(&mut committed, slot, *offset, line);
                }
            }
            (OpFn::Assign, OpType::Ok) => {
                if let Some(g) = &op.group {
                    group_of.insert(op.process, g);
                }
                for key in op.keys.iter().flatten() {
                    let slot = (op.process, id(key));
                    // Reading resumes at or before the committed offset, the next one to read.
                    last_read.remove(&slot);
                    let sent = in_flight
                        .iter()
                        .filter(|((_, k), (s, ..))| *k == id(key) && *s == scope(op))
                        .map(|(_, &(_, offset, line))| (offset, line));
                    let made = possible.get(&(scope(op), id(key))).copied();
                    match made.into_iter().chain(sent).max() {
                        Some(ceiling) => {
                            resume.insert(slot, ceiling);
                        }
                        None => {
                            resume.remove(&slot);
                        }
                    }
                }
                last_of_key.retain(|(consumer, ..), _| *consumer != op.process);
            }
            (OpFn::Poll, OpType::Ok) => {
                for (key, msgs) in op.polled() {
                    let key_id = id(key);
                    for (offset, value) in msgs {
                        if let Some(&g) = group_of.get(&op.process) {
                            group_reads.entry(g).or_default().insert(*value);
                            let h = group_high.entry((g, key_id)).or_insert(-1);
                            *h = (*h).max(*offset);
                        }
                        let slot = (op.process, key_id);
                        let high = highest_read_by.entry(slot).or_insert(-1);
                        if *offset <= *high {
                            rereads += 1;
                        }
                        *high = (*high).max(*offset);
                        if let Some(send) = send_of(*value)
                            .filter(|s| s.counts && matches!(s.outcome, Outcome::Acked(_)))
                        {
                            if let Some(record_key) = send.record_key {
                                let order = (op.process, send.process, record_key);
                                if let Some(&(index, before, before_line)) = last_of_key.get(&order)
                                {
                                    if send.index < index {
                                        report(
                                            "key-order",
                                            Case {
                                                key: key.to_string(),
                                                offsets: vec![*offset],
                                                values: vec![before, *value],
                                                lines: vec![before_line, line],
                                                detail: format!(
                                                    "process {} read {value} after {before}, though \
                                                     process {} sent them the other way round, \
                                                     both with key {record_key}",
                                                    op.process, send.process
                                                ),
                                            },
                                        );
                                    }
                                }
                                last_of_key.insert(order, (send.index, *value, line));
                            }
                        }
                        if let Some((ceiling, commit_line)) = resume.remove(&slot) {
                            if *offset > ceiling {
                                if let Some(missed) = known_between(key_id, ceiling, *offset) {
                                    report(
                                        "poll-skip",
                                        Case {
                                            key: key.to_string(),
                                            offsets: vec![ceiling, *offset],
                                            values: vec![*value],
                                            lines: vec![commit_line, line],
                                            detail: format!(
                                                "process {} resumed at {offset}, past the commit \
                                                 of {ceiling}, over {missed}",
                                                op.process
                                            ),
                                        },
                                    );
                                }
                            }
                        }
                        if let Some((prev, prev_line)) = last_read.get(&slot).copied() {
                            let case = |detail: String| Case {
                                key: key.to_string(),
                                offsets: vec![prev, *offset],
                                values: vec![*value],
                                lines: if prev_line == line {
                                    vec![line]
                                } else {
                                    vec![prev_line, line]
                                },
                                detail,
                            };
                            if *offset <= prev {
                                report(
                                    "nonmonotonic-poll",
                                    case(format!(
                                        "process {} read {offset} after {prev}",
                                        op.process
                                    )),
                                );
                            } else if *offset > prev + 1 {
                                if let Some(missed) = known_between(key_id, prev + 1, *offset)
                                {
                                    let detail = format!(
                                        "process {} jumped from {prev} to {offset}, over {missed}",
                                        op.process
                                    );
                                    report("poll-skip", case(detail));
                                }
                            }
                        }
                        last_read.insert(slot, (*offset, line));
                    }
                }
            }
            _ => {}
        }
    }

    for (value, send) in &sends {
        let Outcome::Acked(offset) = send.outcome else {
            continue;
        };
        if !send.counts {
            continue;
        }
        let key = names[send.key as usize];
        for (group, read) in &group_reads {
            let high = group_high
                .get(&(*group, send.key))
                .copied()
                .unwrap_or(-1);
            if offset <= high && !read.contains(value) {
                report(
                    "group-skip",
                    Case {
                        key: key.to_string(),
                        offsets: vec![offset, high],
                        values: vec![*value],
                        lines: vec![send.line],
                        detail: format!(
                            "group {group} read {key} up to {high} but never {value} at {offset}"
                        ),
                    },
                );
            }
        }
    }

    let mut gate_failures = Vec::new();
    if acked < gates.min_acked {
        gate_failures.push(format!(
            "{acked} sends acknowledged, fewer than the {} required",
            gates.min_acked
        ));
    }
    if polled < gates.min_polled {
        gate_failures.push(format!(
            "{polled} values read, fewer than the {} required",
            gates.min_polled
        ));
    }
    Analysis {
        valid: anomalies.is_empty() && gate_failures.is_empty(),
        anomalies,
        ops: ops.len(),
        acked,
        polled,
        rereads,
        gates: gate_failures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A history from compact lines: `p send k v` (invoke), `p ok k v o [record-key]`,
    /// `p fail k v`, `p info k v`, `p poll k o:v o:v ...`, `p assign k`, `p commit k o`.
    fn history(text: &str) -> Vec<Op> {
        let mut ops = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let w: Vec<&str> = line.split_whitespace().collect();
            let process: u64 = w[0].parse().unwrap();
            let key = Some(w[2].to_owned());
            let op = match w[1] {
                "send" | "ok" | "fail" | "info" => {
                    let kind = match w[1] {
                        "send" => OpType::Invoke,
                        "ok" => OpType::Ok,
                        "fail" => OpType::Fail,
                        _ => OpType::Info,
                    };
                    let mut op = Op::new(process, kind, OpFn::Send);
                    op.key = key.map(Into::into);
                    op.value = Some(w[3].parse().unwrap());
                    op.offset = w.get(4).map(|o| o.parse().unwrap());
                    op.record_key = w.get(5).map(|k| Box::from(*k));
                    op
                }
                "commit" => {
                    let mut op = Op::new(process, OpType::Ok, OpFn::Commit);
                    op.offsets = Some(Box::new(BTreeMap::from([(w[2].to_owned(), w[3].parse().unwrap())])));
                    op
                }
                // A group member's: `p gassign group k`, `p gcommit group k o`.
                "gassign" => {
                    let mut op = Op::new(process, OpType::Ok, OpFn::Assign);
                    op.group = Some(w[2].into());
                    op.keys = Some(vec![w[3].to_owned()].into());
                    op
                }
                "gcommit" | "gcommit-send" | "gcommit-fail" => {
                    let kind = match w[1] {
                        "gcommit" => OpType::Ok,
                        "gcommit-send" => OpType::Invoke,
                        _ => OpType::Fail,
                    };
                    let mut op = Op::new(process, kind, OpFn::Commit);
                    op.group = Some(w[2].into());
                    op.offsets = Some(Box::new(BTreeMap::from([(w[3].to_owned(), w[4].parse().unwrap())])));
                    op
                }
                "poll" => {
                    let mut op = Op::new(process, OpType::Ok, OpFn::Poll);
                    let msgs = w[3..]
                        .iter()
                        .map(|m| {
                            let (o, v) = m.split_once(':').unwrap();
                            (o.parse().unwrap(), v.parse().unwrap())
                        })
                        .collect();
                    op.msgs = Some(Box::new(BTreeMap::from([(w[2].to_owned(), msgs)])));
                    op
                }
                "assign" => {
                    let mut op = Op::new(process, OpType::Ok, OpFn::Assign);
                    op.keys = Some(vec![w[2].to_owned()].into());
                    op
                }
                other => panic!("{other}"),
            };
            ops.push(op);
        }
        ops
    }

    #[test]
    fn a_consumer_reading_one_keys_values_out_of_send_order_is_caught() {
        let sends = "
            0 ok t/0 10 0 user-1
            0 ok t/0 11 1 user-2
            0 ok t/0 12 2 user-1
        ";
        assert!(kinds(&format!("{sends} 9 poll t/0 0:10 1:11 2:12")).is_empty());
        // The partition shows 12 before 10: offsets rise, but user-1's order is broken.
        let swapped = "
            0 ok t/0 10 2 user-1
            0 ok t/0 11 1 user-2
            0 ok t/0 12 0 user-1
            9 poll t/0 0:12 1:11 2:10
        ";
        assert!(
            kinds(swapped).contains(&"key-order"),
            "{:?}",
            kinds(swapped)
        );
    }

    #[test]
    fn a_restart_resumes_at_the_commit_rereads_are_counted_and_a_skip_past_it_is_caught() {
        let sends = "
            0 ok t/0 10 0
            0 ok t/0 11 1
            0 ok t/0 12 2
            0 ok t/0 13 3
        ";
        let reread = format!(
            "{sends}
            9 assign t/0
            9 poll t/0 0:10 1:11 2:12
            9 commit t/0 1
            9 assign t/0
            9 poll t/0 1:11 2:12 3:13"
        );
        let a = check(&history(&reread), None, Gates::default());
        assert!(a.valid, "{:?}", a.anomalies);
        assert_eq!(a.rereads, 2);
        let skipped = format!(
            "{sends}
            9 assign t/0
            9 poll t/0 0:10
            9 commit t/0 1
            9 assign t/0
            9 poll t/0 2:12 3:13
            9 poll t/0 1:11"
        );
        assert!(
            kinds(&skipped).contains(&"poll-skip"),
            "{:?}",
            kinds(&skipped)
        );
    }

    const GROUP_SENDS: &str = "
        0 ok t/0 10 0
        0 ok t/0 11 1
        0 ok t/0 12 2
        0 ok t/0 13 3
        0 ok t/0 14 4
    ";

    #[test]
    fn a_group_handing_a_partition_over_at_its_commit_is_clean() {
        let handover = format!(
            "{GROUP_SENDS}
            5 gassign g t/0
            5 poll t/0 0:10 1:11 2:12
            5 gcommit g t/0 2
            6 gassign g t/0
            6 poll t/0 2:12 3:13 4:14
            6 gcommit g t/0 5"
        );
        let a = check(&history(&handover), None, Gates::default());
        assert!(a.valid, "{:?}", a.anomalies);
        assert_eq!(a.rereads, 0, "another member's reads are not re-reads");
    }

    #[test]
    fn a_member_may_resume_from_a_commit_still_in_flight_but_not_from_one_that_failed() {
        // Seen in consumer-groups seeds 1440 and 18020: the member handing over had sent its
        // commit, the successor started from it, and the commit was acknowledged just after.
        let in_flight = format!(
            "{GROUP_SENDS}
            5 gassign g t/0
            5 poll t/0 0:10 1:11 2:12
            5 gcommit g t/0 2
            5 gcommit-send g t/0 3
            6 gassign g t/0
            6 poll t/0 3:13 4:14
            5 gcommit g t/0 3"
        );
        assert!(kinds(&in_flight).is_empty(), "{:?}", kinds(&in_flight));
        let failed = in_flight.replace(
            "5 gcommit-send g t/0 3\n",
            "5 gcommit-send g t/0 3\n 5 gcommit-fail g t/0 3\n",
        );
        assert_eq!(kinds(&failed), vec!["poll-skip"], "resumed past 2, the last commit made");
    }

    #[test]
    fn a_commit_that_goes_back_and_a_record_the_group_skipped_are_caught() {
        // A stalled member commits its old position after its successor committed further.
        let backwards = format!(
            "{GROUP_SENDS}
            5 gassign g t/0
            5 poll t/0 0:10 1:11
            6 gassign g t/0
            6 poll t/0 0:10 1:11 2:12 3:13
            6 gcommit g t/0 4
            5 gcommit g t/0 2"
        );
        assert!(
            kinds(&backwards).contains(&"commit-backwards"),
            "{:?}",
            kinds(&backwards)
        );
        // Two commits in flight at once may be acknowledged in either order.
        let concurrent = format!(
            "{GROUP_SENDS}
            5 gassign g t/0
            5 poll t/0 0:10 1:11
            5 gcommit-send g t/0 2
            6 gassign g t/0
            6 poll t/0 0:10 1:11 2:12 3:13 4:14
            6 gcommit-send g t/0 5
            6 gcommit g t/0 5
            5 gcommit g t/0 2"
        );
        assert!(kinds(&concurrent).is_empty(), "{:?}", kinds(&concurrent));
        // Sent after the other was acknowledged, it is not concurrent.
        let after = concurrent.replace("5 gcommit-send g t/0 2\n", "")
            + "\n 5 gcommit-send g t/0 2\n 5 gcommit g t/0 2";
        assert!(
            kinds(&after).contains(&"commit-backwards"),
            "{:?}",
            kinds(&after)
        );
        // The successor starts past the commit: 12 is read by nobody in the group.
        let skipped = format!(
            "{GROUP_SENDS}
            5 gassign g t/0
            5 poll t/0 0:10 1:11
            5 gcommit g t/0 2
            6 gassign g t/0
            6 poll t/0 3:13 4:14"
        );
        let k = kinds(&skipped);
        assert!(
            k.contains(&"group-skip") && k.contains(&"poll-skip"),
            "{k:?}"
        );
        // Another group reading everything does not hide it, nor is it blamed.
        let other = format!(
            "{skipped}
 7 gassign h t/0
 7 poll t/0 0:10 1:11 2:12 3:13 4:14"
        );
        let a = check(&history(&other), None, Gates::default());
        assert_eq!(a.anomalies["group-skip"].len(), 1, "{:?}", a.anomalies);
    }

    fn kinds(text: &str) -> Vec<&'static str> {
        let a = check(&history(text), None, Gates::default());
        a.anomalies.keys().copied().collect()
    }

    const CLEAN: &str = "
        0 send t/0 10
        0 ok t/0 10 0
        0 send t/0 11
        0 ok t/0 11 1
        1 send t/0 20
        1 fail t/0 20
        1 send t/0 21
        1 info t/0 21
        5 assign t/0
        5 poll t/0 0:10
        5 poll t/0 1:11 2:21
    ";

    #[test]
    fn a_clean_history_is_valid() {
        let a = check(&history(CLEAN), None, Gates::default());
        assert!(a.valid, "{:?}", a.anomalies);
        assert_eq!((a.acked, a.polled), (2, 3));
    }

    #[test]
    fn a_lost_write_and_an_unseen_one_are_told_apart() {
        let a = check(
            &history("0 ok t/0 10 0\n0 ok t/0 11 1\n0 ok t/0 12 2\n5 poll t/0 1:11"),
            None,
            Gates::default(),
        );
        assert_eq!(a.anomalies["lost-write"][0].values, vec![10]);
        assert_eq!(a.anomalies["unseen"][0].values, vec![12]);
        assert_eq!(a.anomalies["unseen"][0].lines, vec![3]);
    }

    #[test]
    fn acks_1_losses_reused_offsets_and_rewound_sends_are_allowed() {
        let mut ops = history("0 ok t/0 10 0\n0 ok t/0 11 1\n5 poll t/0 1:11");
        ops[0].acks = Some(1);
        assert!(check(&ops, None, Gates::default()).valid);
        let mut ops = history("0 ok t/0 10 5\n0 ok t/0 11 5\n5 poll t/0 5:11");
        ops[0].acks = Some(1);
        ops[1].acks = Some(1);
        assert!(
            check(&ops, None, Gates::default()).valid,
            "a lost acks=1 write's offset went to another"
        );
    }

    #[test]
    fn duplicates_and_inconsistent_offsets_are_caught() {
        assert_eq!(
            kinds("0 ok t/0 10 0\n5 poll t/0 0:10 1:10"),
            vec!["duplicate"]
        );
        let k = kinds("0 ok t/0 10 0\n0 ok t/0 11 1\n5 poll t/0 0:11 1:10");
        assert!(
            k.contains(&"inconsistent-offsets") && k.contains(&"duplicate"),
            "{k:?}"
        );
    }

    #[test]
    fn polls_that_go_back_or_skip_are_caught_between_and_within_polls() {
        let base = "0 ok t/0 10 0\n0 ok t/0 11 1\n0 ok t/0 12 2\n";
        assert_eq!(
            kinds(&format!("{base}5 poll t/0 0:10 1:11 2:12\n5 poll t/0 1:11")),
            vec!["nonmonotonic-poll"]
        );
        assert_eq!(
            kinds(&format!("{base}5 poll t/0 0:10 2:12\n6 poll t/0 1:11")),
            vec!["poll-skip"]
        );
        assert_eq!(
            kinds(&format!(
                "{base}5 poll t/0 0:10\n5 poll t/0 2:12\n6 poll t/0 1:11"
            )),
            vec!["poll-skip"]
        );
        assert!(
            kinds(&format!(
                "{base}5 poll t/0 0:10 1:11 2:12\n5 assign t/0\n5 poll t/0 0:10"
            ))
            .is_empty(),
            "an assign restarts the reads"
        );
    }

    #[test]
    fn sends_that_go_back_and_reads_of_failed_sends_are_caught() {
        assert_eq!(
            kinds("0 ok t/0 10 5\n0 ok t/0 11 3\n5 poll t/0 3:11 4:99 5:10"),
            vec!["nonmonotonic-send"]
        );
        assert_eq!(
            kinds("0 ok t/0 10 0\n1 fail t/0 20\n5 poll t/0 0:10 1:20"),
            vec!["g1a"]
        );
    }

    #[test]
    fn a_history_that_acked_or_read_nothing_fails_its_gates() {
        let a = check(&history("0 fail t/0 10"), None, Gates::default());
        assert!(!a.valid && a.anomalies.is_empty());
        assert_eq!(a.gates.len(), 2);
    }

    #[test]
    fn a_line_that_is_not_valid_is_named() {
        let e = parse("{\"process\":1,\"type\":\"invoke\",\"f\":\"poll\"}\n\n{\"process\":1,\"type\":\"ok\"}\n").unwrap_err();
        assert!(e.starts_with("line 3: missing field `f`"), "{e}");
    }

    #[test]
    fn a_hundred_thousand_operations_check_clean() {
        let mut ops = Vec::new();
        for v in 0..50_000u64 {
            let key = format!("t/{}", v % 8);
            let offset = (v / 8) as i64;
            let mut send = Op::new(v % 16, OpType::Ok, OpFn::Send);
            send.key = Some(key.as_str().into());
            send.value = Some(v);
            send.offset = Some(offset);
            ops.push(send);
            let mut poll = Op::new(100, OpType::Ok, OpFn::Poll);
            poll.msgs = Some(Box::new(BTreeMap::from([(key, vec![(offset, v)])])));
            ops.push(poll);
        }
        let a = check(&ops, None, Gates::default());
        assert!(a.valid, "{:?}", a.anomalies.keys().collect::<Vec<_>>());
        assert_eq!((a.ops, a.acked, a.polled), (100_000, 50_000, 50_000));
    }
}
