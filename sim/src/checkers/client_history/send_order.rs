//! `nonmonotonic-send`: one producer's acknowledged (acks=all) offsets on a key go back.

use std::collections::BTreeMap;

use super::index::{Index, Key};
use super::{Case, Found};
use crate::record::history::{Op, OpFn, OpType};

pub fn check(index: &Index, ops: &[Op], found: &mut Found) {
    let mut last_send: BTreeMap<(u64, Key), (i64, usize)> = BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if (op.f, op.kind) != (OpFn::Send, OpType::Ok) {
            continue;
        }
        let (Some(key), Some(offset)) = (&op.key, op.offset) else {
            continue;
        };
        if op.acks.is_some_and(|a| a != -1) {
            continue;
        }
        let line = index.line_of(i);
        let slot = (op.process, index.id(key));
        if let Some(&(prev, prev_line)) = last_send.get(&slot) {
            if offset < prev {
                let case = Case {
                    key: key.to_string(),
                    offsets: vec![prev, offset],
                    values: op.value.into_iter().collect(),
                    lines: vec![prev_line, line],
                    detail: format!(
                        "process {} was acknowledged at {offset} after {prev}",
                        op.process
                    ),
                };
                found.report("nonmonotonic-send", case);
            }
        }
        last_send.insert(slot, (offset, line));
    }
}
