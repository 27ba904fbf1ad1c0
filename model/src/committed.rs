//! What a read_committed reader keeps of a fetched run of batches, as Kafka's consumer decides
//! it: the leader names the aborted transactions with records in the answer (producer and first
//! offset); from a transaction's first offset on, that producer's transactional batches are
//! dropped, until its abort marker. Records of open transactions never reach the reader: the
//! leader answers only up to the last stable offset.

use std::collections::BTreeSet;

use crate::batch::{BatchHeader, Marker};

pub struct Filter {
    /// Aborted transactions not reached yet, by first offset: (first offset, producer id).
    ahead: BTreeSet<(i64, i64)>,
    /// Producers inside an aborted transaction at the batch being read.
    aborting: BTreeSet<i64>,
}

impl Filter {
    pub fn new(aborted: &[(i64, i64)]) -> Filter {
        Filter {
            ahead: aborted.iter().map(|(p, first)| (*first, *p)).collect(),
            aborting: BTreeSet::new(),
        }
    }

    /// Whether a reader keeps the batch `h`, taken in log order.
    pub fn keeps(&mut self, h: &BatchHeader) -> bool {
        while let Some(&(first, producer)) = self.ahead.first() {
            if first > h.last_offset() {
                break;
            }
            self.ahead.pop_first();
            self.aborting.insert(producer);
        }
        if !h.transactional {
            return true;
        }
        if let Some(marker) = h.control {
            if marker == Marker::Abort {
                self.aborting.remove(&h.producer_id);
            }
            return false;
        }
        !self.aborting.contains(&h.producer_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch;
    use bytes::Bytes;

    /// A producer's transactional batch of `value` at `offset`.
    fn data(producer_id: i64, offset: i64, value: &str) -> Vec<u8> {
        let mut b = batch::encode(&[(None, Bytes::from(value.to_owned()))], 0).to_vec();
        batch::set_transactional(&mut b);
        batch::set_producer(&mut b, producer_id, 0, 0);
        batch::stamp(&mut b, offset, 0);
        b
    }

    fn marker(producer_id: i64, offset: i64, marker: Marker) -> Vec<u8> {
        let mut b = batch::encode_marker(producer_id, 0, marker, 0, 0).to_vec();
        batch::stamp(&mut b, offset, 0);
        b
    }

    #[test]
    fn aborted_records_and_markers_are_dropped_and_committed_ones_kept() {
        let mut plain = batch::encode(&[(None, Bytes::from_static(b"p"))], 0).to_vec();
        batch::stamp(&mut plain, 2, 0);
        let log = [
            data(7, 0, "a1"),
            data(8, 1, "c1"),
            plain,
            data(7, 3, "a2"),
            marker(7, 4, Marker::Abort),
            data(7, 5, "next"),
            marker(8, 6, Marker::Commit),
        ]
        .concat();
        let headers: Vec<_> = batch::headers(&log).map(Result::unwrap).collect();
        assert_eq!(headers[4].control, Some(Marker::Abort));
        assert_eq!(headers[6].control, Some(Marker::Commit));
        assert!(headers[0].transactional && !headers[2].transactional);
        let mut filter = Filter::new(&[(7, 0)]);
        let read = batch::decode_where(Bytes::from(log.clone()), |h| filter.keeps(h)).unwrap();
        let values: Vec<_> = read.iter().map(|r| r.2.clone().unwrap()).collect();
        assert_eq!(values, ["c1", "p", "next"]);
        let everything = batch::decode(Bytes::from(log)).unwrap();
        assert_eq!(
            everything.len(),
            5,
            "read_uncommitted sees no markers, but all data"
        );
    }
}
