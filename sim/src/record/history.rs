//! The client history: every operation as an invocation and a completion, one JSON object per
//! line, in the shape Jepsen's Kafka checker reads:
//!
//! ```text
//! {"process":3,"type":"invoke","f":"send","key":"events/0","value":17}
//! {"process":3,"type":"ok","f":"send","key":"events/0","value":17,"offset":42}
//! {"process":5,"type":"ok","f":"poll","msgs":{"events/0":[[41,16],[42,17]]}}
//! {"process":5,"type":"ok","f":"assign","keys":["events/0"]}
//! ```
//!
//! `subscribe` has the shape of `assign`. A poll's `msgs` count as read whatever its `type`: a
//! poll that failed or timed out still saw what it returned.
//!
//! A transaction is one operation, `f` `txn`, whose `value` lists its steps ([`Micro`]) as Jepsen
//! writes them: `["send", key, value]` and `["poll"]` when invoked, `["send", key, [offset,
//! value]]` (the bare value while its offset is unknown) and `["poll", {key: [[offset, value],
//! ...]}]` when completed. `ok` is a commit, `fail` an abort, `info` either.
//!
//! ```text
//! {"process":3,"type":"invoke","f":"txn","value":[["send","x/0",1],["poll"],["send","y/0",2]]}
//! {"process":3,"type":"ok","f":"txn","value":[["send","x/0",[0,1]],["poll",{"y/0":[[4,7]]}],["send","y/0",[5,2]]]}
//! ```
//!
//! `type` is invoke, ok, fail or info (info: the outcome is unknown). Keys are `topic/partition`;
//! values are unique per send. Extra fields (`time_ms`, `acks`, `error`) are for people.

use std::collections::BTreeMap;
use std::sync::Arc;

use model::sync::Lock;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// How an operation ended, as Jepsen names it.
pub enum OpType {
    /// It started.
    Invoke,
    /// It succeeded.
    Ok,
    /// It definitely failed: it took no effect.
    Fail,
    /// Its outcome is unknown: it may have taken effect.
    Info,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// What an operation does.
pub enum OpFn {
    /// A producer sends one value.
    Send,
    /// A consumer reads.
    Poll,
    /// A consumer takes partitions up by name: its `keys` replace the ones it read before. A key
    /// it keeps keeps its position; a key new to it starts from its commit.
    Assign,
    /// A consumer subscribes: read as an `assign` of its `keys` (Jepsen's histories name both).
    Subscribe,
    /// A consumer commits the offsets it reached.
    Commit,
    /// A transaction: sends and polls, committed together or not at all.
    Txn,
}

/// An operation's `value`: a send's value, or a transaction's steps (Jepsen names both so).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// A send's value, unique in a run.
    One(u64),
    /// A transaction's steps, in order.
    Steps(Box<Steps>),
}

/// A number is a send's value, a list a transaction's steps; a bad step is named as such (an
/// untagged enum would only say that nothing matched).
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = Value;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a send's value (a number) or a transaction's steps (a list)")
            }

            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
                Ok(Value::One(v))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
                let steps = Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Value::Steps(Box::new(Steps(steps))))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

/// A transaction's steps, in the order it took them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Steps(pub Vec<Micro>);

/// One step of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "serde_json::Value", into = "serde_json::Value")]
pub enum Micro {
    /// A send of `value` (unique in a run) to `key`, at `offset` once known.
    Send {
        /// The partition, `topic/partition`.
        key: Arc<str>,
        /// The value sent.
        value: u64,
        /// Where it was written, once acknowledged.
        offset: Option<i64>,
    },
    /// A poll, with what it read once completed (`None` when invoked).
    Poll(Option<Box<PolledMsgs>>),
}

const STEP_SHAPE: &str = "a transaction step is [\"send\", key, value], [\"send\", key, [offset, \
                          value]], [\"poll\"] or [\"poll\", {key: [[offset, value], ...]}]";

impl TryFrom<serde_json::Value> for Micro {
    type Error = String;

    fn try_from(v: serde_json::Value) -> Result<Micro, String> {
        use serde_json::Value as Json;
        let Json::Array(parts) = v else {
            return Err(format!("{STEP_SHAPE}; got {v}"));
        };
        match (parts.first().and_then(Json::as_str), &parts[1.min(parts.len())..]) {
            (Some("send"), [Json::String(key), sent]) => {
                let (offset, value) = match sent {
                    Json::Array(pair) => match &pair[..] {
                        [offset, value] => (offset.as_i64().map(Some), value.as_u64()),
                        _ => (None, None),
                    },
                    value => (Some(None), value.as_u64()),
                };
                match (offset, value) {
                    (Some(offset), Some(value)) => Ok(Micro::Send {
                        key: key.as_str().into(),
                        value,
                        offset,
                    }),
                    _ => Err(format!("{STEP_SHAPE}; got a send of {sent}")),
                }
            }
            (Some("poll"), []) => Ok(Micro::Poll(None)),
            (Some("poll"), [msgs]) => serde_json::from_value(msgs.clone())
                .map(|m| Micro::Poll(Some(Box::new(m))))
                .map_err(|e| format!("a transaction's poll: {e}")),
            _ => Err(format!("{STEP_SHAPE}; got {}", Json::Array(parts))),
        }
    }
}

impl From<Micro> for serde_json::Value {
    fn from(m: Micro) -> serde_json::Value {
        use serde_json::json;
        match m {
            Micro::Send {
                key,
                value,
                offset: Some(offset),
            } => json!(["send", &*key, [offset, value]]),
            Micro::Send { key, value, .. } => json!(["send", &*key, value]),
            Micro::Poll(None) => json!(["poll"]),
            Micro::Poll(Some(msgs)) => json!(["poll", msgs]),
        }
    }
}

/// An acknowledged send, as the checks hold it: acks=all sends must survive, acks=1 sends are
/// counted when lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckedSend {
    /// Shared by every send to the partition.
    pub partition: Arc<str>,
    /// The offset it was acknowledged at.
    pub offset: i64,
    /// The value sent.
    pub value: bytes::Bytes,
    /// When the acknowledgement came, in simulated milliseconds.
    pub time_ms: u64,
}

/// What one poll read: per key, the (offset, value) pairs, in order.
pub type PolledMsgs = BTreeMap<String, Vec<(i64, u64)>>;

/// One operation. A history holds thousands, nearly all sends: what only polls, assigns, commits
/// and failures carry is boxed, so that a send takes 160 bytes, not 240.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// The client that did it.
    pub process: u64,
    #[serde(rename = "type")]
    /// How it ended (or that it started).
    pub kind: OpType,
    /// What it did.
    pub f: OpFn,
    /// Shared with every other operation on the partition: histories hold many of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// A send's value (unique in a run), or a transaction's steps.
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// An acknowledged send's offset.
    pub offset: Option<i64>,
    /// Polls: per key, the (offset, value) pairs read, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msgs: Option<Box<PolledMsgs>>,
    /// Assigns and subscribes: the keys the consumer reads from now on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Box<[String]>>,
    /// Commits: per key, the offset committed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offsets: Option<Box<BTreeMap<String, i64>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// When it happened, in simulated milliseconds.
    pub time_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// A send's acks setting (-1 for all); absent means all.
    pub acks: Option<i16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    /// The error a failed or unknown operation met.
    pub error: Option<Box<str>>,
    /// Sends: the record's own key (a user id, say), which chose its partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_key: Option<Box<str>>,
    /// Assigns and commits of a consumer group's member: the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Box<str>>,
    /// A transaction's completion: when its commit was first asked for (EndTxn), in simulated
    /// milliseconds. Another process that read its records before then read them uncommitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_ms: Option<u64>,
}

impl Op {
    /// A send's value; `None` for other operations.
    pub fn sent(&self) -> Option<u64> {
        match self.value {
            Some(Value::One(v)) => Some(v),
            _ => None,
        }
    }

    /// A transaction's steps; none for other operations.
    pub fn steps(&self) -> &[Micro] {
        match &self.value {
            Some(Value::Steps(steps)) => &steps.0,
            _ => &[],
        }
    }

    /// A poll's reads, by key; nothing for other operations.
    pub fn polled(&self) -> impl Iterator<Item = (&String, &Vec<(i64, u64)>)> {
        self.msgs.as_deref().into_iter().flatten()
    }

    /// A commit's offsets, by key; nothing for other operations.
    pub fn committed(&self) -> impl Iterator<Item = (&String, &i64)> {
        self.offsets.as_deref().into_iter().flatten()
    }

    /// An operation of `process` with no fields but its kind and function.
    pub fn new(process: u64, kind: OpType, f: OpFn) -> Op {
        Op {
            process,
            kind,
            f,
            key: None,
            value: None,
            offset: None,
            msgs: None,
            keys: None,
            offsets: None,
            time_ms: None,
            acks: None,
            error: None,
            record_key: None,
            group: None,
            commit_ms: None,
        }
    }
}

/// Every value polls read, by partition (as `topic-N`), as (offset, value) in the order first read;
/// a second sighting of an offset is left out. A poll that completed `fail` or `info` counts too:
/// what it returned was on the partition, as Jepsen reads it.
pub fn reads(ops: &[Op]) -> BTreeMap<String, Vec<(i64, u64)>> {
    let mut by_key: BTreeMap<&str, Vec<(i64, u64)>> = BTreeMap::new();
    for op in ops
        .iter()
        .filter(|o| o.f == OpFn::Poll && o.kind != OpType::Invoke)
    {
        for (key, msgs) in op.polled() {
            by_key.entry(key).or_default().extend_from_slice(msgs);
        }
    }
    by_key
        .into_iter()
        .map(|(key, all)| (key.replacen('/', "-", 1), first_reads(all)))
        .collect()
}

/// `reads`, in order, without those of an offset read before. Consumers read mostly forward, and
/// an offset above every one before it is new: the set of offsets read is only built once one
/// is read again or out of order.
fn first_reads(reads: Vec<(i64, u64)>) -> Vec<(i64, u64)> {
    let mut out = Vec::with_capacity(reads.len());
    let mut highest = i64::MIN;
    let mut read: Option<std::collections::BTreeSet<i64>> = None;
    for (offset, value) in reads {
        let new = if offset > highest {
            highest = offset;
            if let Some(read) = &mut read {
                read.insert(offset);
            }
            true
        } else {
            read.get_or_insert_with(|| out.iter().map(|(o, _)| *o).collect())
                .insert(offset)
        };
        if new {
            out.push((offset, value));
        }
    }
    out
}

/// The history key of a partition.
pub fn key(topic: &str, partition: i32) -> String {
    format!("{topic}/{partition}")
}

#[derive(Clone, Default)]
/// The run's history, shared by every client; operations in the order they happened.
pub struct History {
    ops: Arc<Lock<Vec<Op>>>,
}

impl History {
    /// Appends an operation.
    pub fn push(&self, op: Op) {
        self.ops.lock().push(op);
    }

    /// Lends the operations so far, without copying them.
    pub fn with_ops<R>(&self, f: impl FnOnce(&[Op]) -> R) -> R {
        f(&self.ops.lock())
    }

    /// Takes the operations, leaving none.
    pub fn take(&self) -> Vec<Op> {
        std::mem::take(&mut *self.ops.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::{first_reads, Op};

    /// A history holds every operation of a run: an op's size is its memory. A transaction's
    /// commit time (`commit_ms`) took it from 160 to 176 bytes.
    #[test]
    fn an_op_stays_small() {
        assert!(std::mem::size_of::<Op>() <= 176, "{}", std::mem::size_of::<Op>());
    }

    #[test]
    fn first_reads_keep_each_offset_once_in_the_order_first_read() {
        assert_eq!(
            first_reads(vec![(0, 10), (1, 11), (1, 11), (3, 13), (2, 12), (0, 99), (4, 14), (2, 12)]),
            vec![(0, 10), (1, 11), (3, 13), (2, 12), (4, 14)]
        );
        assert_eq!(first_reads(vec![(5, 1), (6, 2)]), vec![(5, 1), (6, 2)]);
    }
}
