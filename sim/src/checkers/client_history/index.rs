//! One pass over the history that every family of anomalies reads: keys numbered, each value's
//! send (its last completion, and where it was invoked) and first read, and every (key, offset,
//! value) some operation saw.
//!
//! A send is known by its value, unique in a run, never by its process: a producer that batches
//! may have several sends of one process outstanding at once, completing in any order. A poll's
//! reads count whatever its completion (`ok`, `fail` or `info`), as Jepsen reads them: a poll that
//! failed still saw what it returned.
//!
//! Sends, reads and sightings are gathered in history order and sorted once, rather than kept in
//! maps that every one of many operations would have to insert into; keys are borrowed from the
//! history, which names few keys many times.

use std::collections::{BTreeMap, BTreeSet};

use crate::record::history::{Op, OpFn, OpType};

/// A key (`topic/partition`) by number: the maps compare numbers, not strings.
pub type Key = u32;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Acked(i64),
    Failed,
    /// `info`: it may or may not have been written; the offset it carries, if any, is only
    /// believed once a read proves the value was written.
    Unknown(Option<i64>),
}

/// A value's send, as its last completion left it.
pub struct Send<'a> {
    pub key: Key,
    pub outcome: Outcome,
    /// Sent with acks=all (or without `acks`): only these promise durability.
    pub counts: bool,
    pub line: usize,
    pub process: u64,
    pub record_key: Option<&'a str>,
    /// The history position of its invocation (of its completion when the history has none): the
    /// order a producer's sends were made in, which completions need not keep.
    pub invoked_at: usize,
}

/// What the first pass learns.
pub struct Index<'a> {
    lines: Option<&'a [usize]>,
    ids: BTreeMap<&'a str, Key>,
    /// Key names by number.
    pub names: Vec<&'a str>,
    /// Each value's send, sorted by value.
    pub sends: Vec<(u64, Send<'a>)>,
    /// Each value's first invocation (its history position), sorted by value.
    invokes: Vec<(u64, usize)>,
    /// Each value's first read, sorted by value: its line and offset.
    reads: Vec<(u64, (usize, i64))>,
    /// (key, offset, value, line): each value seen at each offset once, with the first line that
    /// showed it, in order.
    pub sightings: Vec<(Key, i64, u64, usize)>,
    /// Every (key, offset) some operation saw, in order.
    seen: Vec<(Key, i64)>,
    /// The highest offset read of each key.
    pub highest_read: BTreeMap<Key, i64>,
    pub acked: u64,
    pub polled: u64,
}

impl<'a> Index<'a> {
    /// Indexes `ops`; `lines[i]` is the history line of `ops[i]` (`None`: `i + 1`).
    pub fn build(ops: &'a [Op], lines: Option<&'a [usize]>) -> Index<'a> {
        let (ids, names) = number_keys(ops);
        let mut index = Index {
            lines,
            ids,
            names,
            sends: Vec::new(),
            invokes: Vec::new(),
            reads: Vec::new(),
            sightings: Vec::new(),
            seen: Vec::new(),
            highest_read: BTreeMap::new(),
            acked: 0,
            polled: 0,
        };
        for (i, op) in ops.iter().enumerate() {
            let line = index.line_of(i);
            match (op.f, op.kind) {
                (OpFn::Send, OpType::Invoke) => index.invokes.extend(op.sent().map(|v| (v, i))),
                (OpFn::Send, kind) => index.note_send(op, kind, i, line),
                (OpFn::Poll, OpType::Invoke) => {}
                (OpFn::Poll, _) => index.note_poll(op, line),
                _ => {}
            }
        }
        index.settle();
        index
    }

    /// The history line of `ops[i]`.
    pub fn line_of(&self, i: usize) -> usize {
        self.lines.map_or(i + 1, |l| l[i])
    }

    /// The number of a key the history names.
    pub fn id(&self, key: &str) -> Key {
        self.ids[key]
    }

    /// The send of `value`, if the history holds its completion.
    pub fn send_of(&self, value: u64) -> Option<&Send<'a>> {
        by_value(&self.sends, value)
    }

    /// The line of the first read of `value`, if any read it.
    pub fn read_of(&self, value: u64) -> Option<usize> {
        by_value(&self.reads, value).map(|(line, _)| *line)
    }

    /// Where `send` (of `value`) was written, if that is known: an acknowledged send at its
    /// offset; an `info` one that a read proved, at the offset it carries or else where it was
    /// first read. Failed sends and unproven `info` ones: `None`.
    pub fn written_at(&self, value: u64, send: &Send) -> Option<i64> {
        match send.outcome {
            Outcome::Acked(offset) => Some(offset),
            Outcome::Failed => None,
            Outcome::Unknown(offset) => {
                let (_, read_offset) = by_value(&self.reads, value)?;
                Some(offset.unwrap_or(*read_offset))
            }
        }
    }

    /// The first offset of `key` in `from..to` that some operation saw: a read past it skipped it.
    pub fn known_between(&self, key: Key, from: i64, to: i64) -> Option<i64> {
        let at = self.seen.partition_point(|k| *k < (key, from));
        self.seen
            .get(at)
            .filter(|k| **k < (key, to))
            .map(|(_, offset)| *offset)
    }

    /// A send's completion, `ops[i]`; `invoked_at` is filled in once every invocation is known.
    fn note_send(&mut self, op: &'a Op, kind: OpType, i: usize, line: usize) {
        let (Some(key), Some(value)) = (&op.key, op.sent()) else {
            return;
        };
        let key = self.id(key);
        let outcome = match (kind, op.offset) {
            (OpType::Ok, Some(offset)) => Outcome::Acked(offset),
            (OpType::Fail, _) => Outcome::Failed,
            (_, offset) => Outcome::Unknown(offset),
        };
        let counts = op.acks.is_none_or(|a| a == -1);
        if let Outcome::Acked(offset) = outcome {
            self.acked += 1;
            // An acks=1 acknowledgement promises nothing durable: its offset may be reused after
            // a failover, so only acks=all offsets count as sightings.
            if counts {
                self.sightings.push((key, offset, value, line));
            }
        }
        let send = Send {
            key,
            outcome,
            counts,
            line,
            process: op.process,
            record_key: op.record_key.as_deref(),
            invoked_at: i,
        };
        self.sends.push((value, send));
    }

    fn note_poll(&mut self, op: &Op, line: usize) {
        for (key, msgs) in op.polled() {
            let key = self.id(key);
            for (offset, value) in msgs {
                self.polled += 1;
                self.sightings.push((key, *offset, *value, line));
                self.reads.push((*value, (line, *offset)));
                let h = self.highest_read.entry(key).or_insert(*offset);
                *h = (*h).max(*offset);
            }
        }
    }

    /// Sorts what the pass gathered: a value's last completion stands, its first invocation and
    /// its first read; then the offsets `info` sends carry, where a read proved them written.
    fn settle(&mut self) {
        // Lines are unique and rise through the history, so sorting by line within a value puts
        // a value's completions in order without a stable sort's scratch copy of every send.
        self.sends
            .sort_unstable_by_key(|(value, send)| (*value, std::cmp::Reverse(send.line)));
        self.sends.dedup_by_key(|(value, _)| *value);
        self.invokes.sort_unstable();
        self.invokes.dedup_by_key(|(value, _)| *value);
        for (value, send) in &mut self.sends {
            if let Some(at) = by_value(&self.invokes, *value) {
                send.invoked_at = *at;
            }
        }
        self.reads.sort_unstable();
        self.reads.dedup_by_key(|(value, _)| *value);
        self.sight_proven_sends();
        self.sightings.sort_unstable();
        self.sightings
            .dedup_by_key(|(key, offset, value, _)| (*key, *offset, *value));
        self.seen = self.sightings.iter().map(|s| (s.0, s.1)).collect();
        self.seen.dedup();
    }

    /// An `info` send that carries an offset, once a read proves its value was written, says
    /// where as an acknowledged one would (Jepsen's `must-have-committed?`): its offset joins the
    /// sightings, for `inconsistent-offsets` and `duplicate`.
    fn sight_proven_sends(&mut self) {
        for (value, send) in &self.sends {
            let Outcome::Unknown(Some(offset)) = send.outcome else {
                continue;
            };
            if send.counts && by_value(&self.reads, *value).is_some() {
                self.sightings.push((send.key, offset, *value, send.line));
            }
        }
    }
}

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
