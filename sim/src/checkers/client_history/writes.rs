//! What became of each acknowledged or failed write: `lost-write` (acknowledged, never read, though
//! reads of its key went past it), `unseen` (acknowledged, never read, above every read) and `g1a`
//! (read, though its send definitely failed).

use super::index::{Index, Outcome, Send};
use super::offsets::Places;
use super::{Case, Found};

pub fn check(index: &Index, places: &Places, found: &mut Found) {
    for (value, send) in &index.sends {
        match send.outcome {
            Outcome::Acked(offset) if send.counts && index.read_of(*value).is_none() => {
                unread(index, *value, send, offset, found);
            }
            Outcome::Failed => {
                if let Some(read_line) = index.read_of(*value) {
                    let case = Case {
                        key: index.names[send.key as usize].to_string(),
                        offsets: places.of(*value).iter().map(|p| p.2).collect(),
                        values: vec![*value],
                        lines: vec![send.line, read_line],
                        detail: format!("value {value} was read though its send failed"),
                    };
                    found.report("g1a", case);
                }
            }
            _ => {}
        }
    }
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
