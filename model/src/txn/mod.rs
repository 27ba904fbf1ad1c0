//! Transactions (KIP-98): the transaction coordinator and what partition leaders do for it.
//!
//! A transactional id's coordinator is the leader of partition `abs(javaHash(id)) % partitions` of
//! `__transaction_state`, placed as consumer groups are. Every change of a transaction's state is
//! written to that partition as an acks=all record keyed by the id, and applied only once it is
//! acknowledged, so a new leader of the partition reads every transaction back from its log
//! ([`coordinator`]) and finishes those it finds half ended.
//!
//! A transaction's life: InitProducerId gives the id its producer id and a new epoch (fencing any
//! older producer with that id); AddPartitionsToTxn makes it `Ongoing` and names the partitions
//! it writes; EndTxn writes `PrepareCommit` or `PrepareAbort`, answers, and then has each
//! partition's leader write a marker ([`markers`]); once every marker is written the state is
//! `CompleteCommit` or `CompleteAbort`. A transaction left `Ongoing` past its timeout is aborted,
//! with the producer's epoch bumped so that the producer cannot go on writing into it.
//!
//! `transaction_version` 2 (KIP-890 part 2) bumps the epoch with every EndTxn, so a request of
//! the ended transaction that arrives late, an EndTxn above all, is fenced rather than taken for
//! the next transaction's. Both versions verify (KIP-890 part 1, [`verify`]): a partition leader
//! appends a batch that would open a transaction only once the coordinator confirms the
//! partition is in the producer's ongoing transaction.

pub mod coordinator;
pub mod markers;
pub mod verify;

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::TopicPartition;

pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Where a transaction stands, as the coordinator records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TxnState {
    /// A producer id and epoch, and no transaction.
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

impl TxnState {
    fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
        }
    }

    fn parse(name: &str) -> Option<TxnState> {
        [
            TxnState::Empty,
            TxnState::Ongoing,
            TxnState::PrepareCommit,
            TxnState::PrepareAbort,
            TxnState::CompleteCommit,
            TxnState::CompleteAbort,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Whether the transaction is decided and its markers are being written.
    pub fn preparing(self) -> bool {
        matches!(self, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }
}

impl std::fmt::Display for TxnState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One transactional id's state, as written to `__transaction_state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnMeta {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last EndTxn bumped it (transaction version 2), so a retried EndTxn
    /// of the transaction just ended is recognised; -1 when the last end did not bump.
    pub previous_epoch: i16,
    pub timeout_ms: u64,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    /// When the ongoing transaction began, on the coordinator's clock.
    pub started_ms: u64,
}

impl TxnMeta {
    /// The record's value: fields separated by spaces, partitions as `topic:partition`.
    fn encode(&self) -> Bytes {
        let partitions: Vec<String> = (self.partitions.iter())
            .map(|tp| format!("{}:{}", tp.topic, tp.partition))
            .collect();
        Bytes::from(format!(
            "v1 {} {} {} {} {} {} {}",
            self.producer_id,
            self.producer_epoch,
            self.previous_epoch,
            self.timeout_ms,
            self.state,
            self.started_ms,
            partitions.join(",")
        ))
    }

    fn decode(value: &[u8]) -> Option<TxnMeta> {
        let text = std::str::from_utf8(value).ok()?;
        let mut f = text.split(' ');
        if f.next()? != "v1" {
            return None;
        }
        let mut meta = TxnMeta {
            producer_id: f.next()?.parse().ok()?,
            producer_epoch: f.next()?.parse().ok()?,
            previous_epoch: f.next()?.parse().ok()?,
            timeout_ms: f.next()?.parse().ok()?,
            state: TxnState::parse(f.next()?)?,
            started_ms: f.next()?.parse().ok()?,
            partitions: BTreeSet::new(),
        };
        for p in f.next().unwrap_or("").split(',').filter(|p| !p.is_empty()) {
            let (topic, partition) = p.rsplit_once(':')?;
            meta.partitions
                .insert(TopicPartition::new(topic, partition.parse().ok()?));
        }
        Some(meta)
    }
}

/// The `__transaction_state` partition that holds `transactional_id`.
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    crate::group::partition_for(transactional_id, partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transactions_state_reads_back_as_written() {
        let meta = TxnMeta {
            producer_id: 1 << 48 | 7,
            producer_epoch: 3,
            previous_epoch: 2,
            timeout_ms: 10_000,
            state: TxnState::PrepareCommit,
            partitions: [TopicPartition::new("x", 0), TopicPartition::new("y.z-1", 4)]
                .into_iter()
                .collect(),
            started_ms: 1234,
        };
        assert_eq!(TxnMeta::decode(&meta.encode()), Some(meta.clone()));
        let empty = TxnMeta {
            partitions: BTreeSet::new(),
            state: TxnState::Empty,
            ..meta
        };
        assert_eq!(TxnMeta::decode(&empty.encode()), Some(empty));
        assert_eq!(TxnMeta::decode(b"v2 junk"), None);
        assert_eq!(TxnMeta::decode(b"v1 1 2 3"), None);
    }
}
