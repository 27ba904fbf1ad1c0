//! The fetcher's side of a fetch session: what the leader's session holds, as this fetcher last
//! sent it, so that the next request carries only what changed.

use super::{next_epoch, FETCH_SESSION_ID_NOT_FOUND, INITIAL_EPOCH, NO_SESSION};
use crate::fetch_codec::{FetchAnswer, FetchQuery, PartitionQuery};
use crate::TopicPartition;

/// One fetcher's session with one leader.
#[derive(Debug)]
pub struct SessionHandler {
    id: i32,
    /// The epoch the next request carries; [`INITIAL_EPOCH`] asks for a full fetch and a new
    /// session.
    epoch: i32,
    /// Each partition as the leader's session holds it, and the request that last named it.
    /// Hashed: it is looked up for every partition of every request, and walked in no order
    /// that leaves it (the forgotten are sorted).
    sent: rustc_hash::FxHashMap<TopicPartition, (PartitionQuery, u64)>,
    requests: u64,
}

impl Default for SessionHandler {
    fn default() -> Self {
        SessionHandler {
            id: NO_SESSION,
            epoch: INITIAL_EPOCH,
            sent: Default::default(),
            requests: 0,
        }
    }
}

/// Whether two queries of one partition ask the same: if so, an incremental fetch leaves it out.
fn same_ask(a: &PartitionQuery, b: &PartitionQuery) -> bool {
    a.fetch_offset == b.fetch_offset
        && a.current_leader_epoch == b.current_leader_epoch
        && a.last_fetched_epoch == b.last_fetched_epoch
        && a.partition_max_bytes == b.partition_max_bytes
}

impl SessionHandler {
    /// Writes the next request for `wanted` into `query`'s session fields, partitions and
    /// forgotten partitions: all of `wanted` for a full fetch, else those that are new or ask
    /// something new, and those that left.
    pub fn build(&mut self, wanted: &[PartitionQuery], query: &mut FetchQuery) {
        query.session_id = self.id;
        query.session_epoch = self.epoch;
        query.partitions.clear();
        query.forgotten.clear();
        self.requests += 1;
        let round = self.requests;
        if self.epoch == INITIAL_EPOCH {
            self.sent.clear();
        }
        for p in wanted {
            match self.sent.get_mut(&p.tp) {
                Some((held, named)) if same_ask(held, p) => *named = round,
                _ => {
                    self.sent.insert(p.tp.clone(), (p.clone(), round));
                    query.partitions.push(p.clone());
                }
            }
        }
        self.sent.retain(|tp, (_, named)| {
            let stays = *named == round;
            if !stays {
                query.forgotten.push(tp.clone());
            }
            stays
        });
        query.forgotten.sort_unstable();
        for i in 0..query.partitions.len() {
            query.partitions[i].first_of_topic =
                i == 0 || query.partitions[i - 1].tp.topic != query.partitions[i].tp.topic;
        }
    }

    /// Takes the session's verdict on the last request: false when the leader refused it as a
    /// whole (its partitions answered nothing), and the next request starts over in full.
    pub fn take_answer(&mut self, answer: &FetchAnswer) -> bool {
        if answer.error_code != 0 {
            if answer.error_code == FETCH_SESSION_ID_NOT_FOUND {
                self.id = NO_SESSION;
            }
            // A wrong epoch keeps the id, so that the full fetch closes the session it names.
            self.epoch = INITIAL_EPOCH;
            return false;
        }
        if self.epoch == INITIAL_EPOCH {
            self.id = answer.session_id;
            if self.id != NO_SESSION {
                self.epoch = next_epoch(INITIAL_EPOCH);
            }
        } else {
            self.epoch = next_epoch(self.epoch);
        }
        true
    }

    /// After a request that got no answer: whatever the leader made of it is unknown, so the
    /// next one is full, and closes the session this one named.
    pub fn lost_answer(&mut self) {
        self.epoch = INITIAL_EPOCH;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(partition: i32, fetch_offset: i64) -> PartitionQuery {
        PartitionQuery {
            tp: TopicPartition::new("events", partition),
            first_of_topic: false,
            current_leader_epoch: 1,
            fetch_offset,
            last_fetched_epoch: 1,
            partition_max_bytes: 1 << 20,
        }
    }

    fn sent(q: &FetchQuery) -> Vec<(i32, i64)> {
        (q.partitions.iter())
            .map(|p| (p.tp.partition, p.fetch_offset))
            .collect()
    }

    fn ok(session_id: i32) -> FetchAnswer {
        FetchAnswer {
            session_id,
            ..FetchAnswer::default()
        }
    }

    #[test]
    fn after_a_full_fetch_only_changes_are_sent() {
        let mut h = SessionHandler::default();
        let mut q = FetchQuery::default();
        h.build(&[query(0, 5), query(1, 9)], &mut q);
        assert_eq!((q.session_id, q.session_epoch), (NO_SESSION, INITIAL_EPOCH));
        assert_eq!(sent(&q), [(0, 5), (1, 9)]);
        assert!(q.partitions[0].first_of_topic && !q.partitions[1].first_of_topic);
        assert!(h.take_answer(&ok(42)));
        h.build(&[query(0, 5), query(2, 0)], &mut q);
        assert_eq!((q.session_id, q.session_epoch), (42, 1));
        assert_eq!(sent(&q), [(2, 0)]);
        assert_eq!(q.forgotten, [TopicPartition::new("events", 1)]);
        assert!(h.take_answer(&ok(42)));
        h.build(&[query(0, 6), query(2, 0)], &mut q);
        assert_eq!((q.session_epoch, sent(&q)), (2, vec![(0, 6)]));
        assert!(q.forgotten.is_empty());
    }

    #[test]
    fn a_refused_or_lost_request_starts_over_in_full() {
        let mut h = SessionHandler::default();
        let mut q = FetchQuery::default();
        h.build(&[query(0, 5)], &mut q);
        assert!(h.take_answer(&ok(42)));
        let refused = FetchAnswer {
            error_code: FETCH_SESSION_ID_NOT_FOUND,
            ..FetchAnswer::default()
        };
        assert!(!h.take_answer(&refused));
        h.build(&[query(0, 5)], &mut q);
        assert_eq!((q.session_id, q.session_epoch), (NO_SESSION, INITIAL_EPOCH));
        assert_eq!(sent(&q), [(0, 5)]);
        assert!(h.take_answer(&ok(43)));
        h.lost_answer();
        h.build(&[query(0, 5)], &mut q);
        assert_eq!(
            (q.session_id, q.session_epoch, sent(&q)),
            (43, INITIAL_EPOCH, vec![(0, 5)]),
            "the full fetch names the old session, so that the leader closes it"
        );
    }
}
