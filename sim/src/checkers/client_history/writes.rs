//! What became of each acknowledged or failed write: `lost-write` (acknowledged, never read, though
//! reads of its key went past it), `unseen` (acknowledged, never read, above every read) and `g1a`
//! (read, though its send definitely failed). A read in a poll that failed or timed out counts.
//!
//! An `info` send that a read proved written stands as an acknowledged one would (see
//! `Index::written_at`); being read, it is never lost itself, but it is judged by the same rule.

use super::index::{Index, Outcome, Send};
use super::offsets::Places;
use super::{Case, Found};

pub fn check(index: &Index, places: &Places, found: &mut Found) {
    for (value, send) in &index.sends {
        if send.outcome == Outcome::Failed {
            read_though_failed(index, places, *value, send, found);
        } else if let Some(offset) = index.written_at(*value, send) {
            if send.counts && index.read_of(*value).is_none() {
                unread(index, *value, send, offset, found);
            }
        }
    }
}

/// `g1a`: a read of a value whose send definitely failed.
fn read_though_failed(index: &Index, places: &Places, value: u64, send: &Send, found: &mut Found) {
    let Some(read_line) = index.read_of(value) else {
        return;
    };
    let case = Case {
        key: index.names[send.key as usize].to_string(),
        offsets: places.of(value).iter().map(|p| p.2).collect(),
        values: vec![value],
        lines: vec![send.line, read_line],
        detail: format!("value {value} was read though its send failed"),
    };
    found.report("g1a", case);
}

/// An acknowledged value no read returned: lost if reads went past it, else unseen.
fn unread(index: &Index, value: u64, send: &Send, offset: i64, found: &mut Found) {
    let highest = index.highest_read.get(&send.key).copied();
    let key = index.names[send.key as usize];
    let kind = if highest.is_some_and(|h| offset <= h) {
        "lost-write"
    } else {
        "unseen"
    };
    let detail = match highest {
        Some(h) => format!("acknowledged at offset {offset}, never read; reads of {key} reached {h}"),
        None => format!("acknowledged at offset {offset}, never read; {key} was never read"),
    };
    let case = Case {
        key: key.to_string(),
        offsets: vec![offset],
        values: vec![value],
        lines: vec![send.line],
        detail,
    };
    found.report(kind, case);
}
