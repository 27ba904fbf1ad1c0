//! `group-skip`: an acknowledged value at or below the highest offset a group read on its key,
//! which no member of the group ever read: the group skipped it across a rebalance. An `info` send
//! a read proved written counts as an acknowledged one (`Index::written_at`).

use super::consumers::Consumed;
use super::index::Index;
use super::{Case, Found};

pub fn check(index: &Index, consumed: &Consumed, found: &mut Found) {
    for (value, send) in &index.sends {
        let Some(offset) = index.written_at(*value, send) else {
            continue;
        };
        if !send.counts {
            continue;
        }
        let key = index.names[send.key as usize];
        for (group, read) in &consumed.group_reads {
            let high = consumed
                .group_high
                .get(&(*group, send.key))
                .copied()
                .unwrap_or(-1);
            if offset <= high && !read.contains(value) {
                let case = Case {
                    key: key.to_string(),
                    offsets: vec![offset, high],
                    values: vec![*value],
                    lines: vec![send.line],
                    detail: format!(
                        "group {group} read {key} up to {high} but never {value} at {offset}"
                    ),
                };
                found.report("group-skip", case);
            }
        }
    }
}
