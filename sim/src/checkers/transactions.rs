//! Transactions after the heal: once faults stop and the quiet period has run, every
//! transaction has ended and every partition's last stable offset has caught up with its high
//! watermark. A transaction open on a partition that its coordinator will never end there is a
//! hanging transaction (KAFKA-12671): it holds every read_committed reader back for good. A
//! transaction its coordinator still holds open past its timeout, or decided and unfinished, is a
//! coordinator that stopped working. Either fails the run as a liveness failure; neither hangs it.

use std::collections::BTreeMap;

use model::BrokerId;

use super::{Check, Violation};

/// A led partition whose last stable offset lags its high watermark at the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unstable {
    /// `topic-partition`.
    pub partition: String,
    /// Its leader.
    pub leader: BrokerId,
    /// The leader's last stable offset.
    pub last_stable_offset: i64,
    /// The leader's high watermark.
    pub high_watermark: i64,
    /// The transactions open on it: producer id and first offset.
    pub open: Vec<(i64, i64)>,
}

/// A transaction as its coordinator holds it at the end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// The transactional id.
    pub id: String,
    /// The coordinator.
    pub coordinator: BrokerId,
    /// Its producer id.
    pub producer_id: i64,
    /// `Ongoing`, `PrepareCommit`, ... as the coordinator names it.
    pub state: String,
    /// Whether the transaction is still to end: ongoing, or decided and its markers unwritten.
    pub open: bool,
    /// The partitions it writes, `topic-partition`.
    pub partitions: Vec<String>,
    /// How long past its timeout it is, on the coordinator's clock (0: not past it).
    pub overdue_ms: u64,
}

/// How long past its timeout a transaction may still be open: the coordinator looks at every
/// tick, and its abort takes a write and a round of markers.
pub const GRACE_MS: u64 = 5_000;

/// The transactions left open: on partitions, by producers whose coordinator will not end them
/// there; at coordinators, past their timeout.
pub fn check(time_ms: u64, unstable: &[Unstable], held: &[Held]) -> Vec<Violation> {
    let mut found = Vec::new();
    let open_at: BTreeMap<i64, &Held> = (held.iter())
        .filter(|h| h.open)
        .map(|h| (h.producer_id, h))
        .collect();
    for u in unstable {
        for (producer_id, first) in &u.open {
            let ends_here = open_at
                .get(producer_id)
                .is_some_and(|h| h.partitions.contains(&u.partition));
            if ends_here {
                continue;
            }
            let message = format!(
                "producer {producer_id}'s transaction is open from offset {first} and its coordinator will write no marker here: the last stable offset stays at {} below the high watermark {}",
                u.last_stable_offset, u.high_watermark
            );
            let v = Violation::new(Check::HangingTransaction.name(), time_ms, message)
                .on(u.leader)
                .partition(u.partition.clone())
                .offsets(vec![*first]);
            found.push(v);
        }
    }
    for h in held.iter().filter(|h| h.open && h.overdue_ms > GRACE_MS) {
        let message = format!(
            "transaction of `{}` (producer {}) is still {} {} ms past its timeout",
            h.id, h.producer_id, h.state, h.overdue_ms
        );
        found.push(Violation::new(Check::UnfinishedTransaction.name(), time_ms, message).on(h.coordinator));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unstable(producer_id: i64) -> Unstable {
        Unstable {
            partition: "t-0".into(),
            leader: 1,
            last_stable_offset: 4,
            high_watermark: 9,
            open: vec![(producer_id, 4)],
        }
    }

    fn held(open: bool, partitions: &[&str], overdue_ms: u64) -> Held {
        Held {
            id: "txn-0".into(),
            coordinator: 2,
            producer_id: 7,
            state: if open { "Ongoing" } else { "CompleteCommit" }.into(),
            open,
            partitions: partitions.iter().map(|p| p.to_string()).collect(),
            overdue_ms,
        }
    }

    #[test]
    fn a_transaction_open_where_no_marker_will_come_hangs_and_one_still_ongoing_does_not() {
        let v = check(9, &[unstable(7)], &[held(false, &[], 0)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].check, "hanging-transaction");
        assert_eq!(v[0].offsets, [4]);
        assert!(check(9, &[unstable(7)], &[held(true, &["t-0"], 0)]).is_empty());
        let elsewhere = check(9, &[unstable(7)], &[held(true, &["t-1"], 0)]);
        assert_eq!(elsewhere.len(), 1, "its coordinator will not write a marker on t-0");
    }

    #[test]
    fn a_transaction_open_past_its_timeout_and_the_grace_is_unfinished() {
        let v = check(9, &[], &[held(true, &["t-0"], GRACE_MS + 1)]);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].check, "unfinished-transaction");
        assert!(check(9, &[], &[held(true, &["t-0"], GRACE_MS)]).is_empty());
    }
}
