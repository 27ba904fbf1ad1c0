//! `nonmonotonic-send`: one producer's acknowledged (acks=all) offsets on a key go back, taken in
//! the order its sends were invoked.
//!
//! A producer with several requests in flight sees their acknowledgements come back in any order,
//! so the order that counts is the one the sends were made in: Kafka's idempotent producer (and a
//! producer that never retries) writes one partition's records in that order. A send whose
//! invocation the history lacks is placed by its completion. Stricter than Jepsen, which compares
//! completions only: the offsets themselves must rise, whatever any consumer read.

use super::index::{Index, Key, Outcome};
use super::{Case, Found};

/// One acknowledged send, as this check orders it.
struct Acked {
    process: u64,
    key: Key,
    invoked_at: usize,
    offset: i64,
    value: u64,
    line: usize,
}

pub fn check(index: &Index, found: &mut Found) {
    let mut acked: Vec<Acked> = index
        .sends
        .iter()
        .filter(|(_, send)| send.counts)
        .filter_map(|(value, send)| match send.outcome {
            Outcome::Acked(offset) => Some(Acked {
                process: send.process,
                key: send.key,
                invoked_at: send.invoked_at,
                offset,
                value: *value,
                line: send.line,
            }),
            _ => None,
        })
        .collect();
    acked.sort_unstable_by_key(|a| (a.process, a.key, a.invoked_at));
    for sends in acked.chunk_by(|a, b| (a.process, a.key) == (b.process, b.key)) {
        for pair in sends.windows(2) {
            if pair[1].offset < pair[0].offset {
                found.report("nonmonotonic-send", went_back(index, &pair[0], &pair[1]));
            }
        }
    }
}

fn went_back(index: &Index, before: &Acked, after: &Acked) -> Case {
    Case {
        key: index.names[after.key as usize].to_string(),
        offsets: vec![before.offset, after.offset],
        values: vec![before.value, after.value],
        lines: vec![before.line, after.line],
        detail: format!(
            "process {} sent {} after {}, but it was acknowledged at {} after {}",
            after.process, after.value, before.value, after.offset, before.offset
        ),
    }
}
