//! The leader's side of fetch sessions: each session's partitions, as its fetcher last sent them,
//! and what the leader last told of each, so that an incremental answer carries only news.

use std::collections::BTreeMap;

use super::{
    next_epoch, FETCH_SESSION_ID_NOT_FOUND, FINAL_EPOCH, INITIAL_EPOCH,
    INVALID_FETCH_SESSION_EPOCH, NO_SESSION,
};
use crate::fetch_codec::{FetchQuery, PartitionAnswer, PartitionQuery};
use crate::TopicPartition;

/// What the leader last told a session of one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Told {
    high_watermark: i64,
    log_start_offset: i64,
}

struct Session {
    /// The partitions in the order they joined, as the fetcher last sent each.
    partitions: Vec<PartitionQuery>,
    /// Where each partition is in `partitions`.
    index: BTreeMap<TopicPartition, usize>,
    /// What was last told of each partition, beside `partitions`; `None` before any answer.
    told: Vec<Option<Told>>,
    next_epoch: i32,
    last_used: u64,
}

impl Session {
    fn new(partitions: &[PartitionQuery], used: u64) -> Session {
        let mut session = Session {
            partitions: Vec::with_capacity(partitions.len()),
            index: BTreeMap::new(),
            told: Vec::with_capacity(partitions.len()),
            next_epoch: next_epoch(INITIAL_EPOCH),
            last_used: used,
        };
        session.update(partitions, &[]);
        session
    }

    /// Takes up an incremental request: partitions sent are new or changed, forgotten ones leave.
    fn update(&mut self, sent: &[PartitionQuery], forgotten: &[TopicPartition]) {
        for p in sent {
            match self.index.get(&p.tp) {
                Some(&i) => self.partitions[i] = p.clone(),
                None => {
                    self.index.insert(p.tp.clone(), self.partitions.len());
                    self.partitions.push(p.clone());
                    self.told.push(None);
                }
            }
        }
        if forgotten.iter().any(|tp| self.index.contains_key(tp)) {
            let gone: std::collections::BTreeSet<&TopicPartition> = forgotten.iter().collect();
            let keep: Vec<bool> = self
                .partitions
                .iter()
                .map(|p| !gone.contains(&p.tp))
                .collect();
            let mut k = keep.iter();
            self.told.retain(|_| *k.next().expect("one flag each"));
            self.partitions.retain(|p| !gone.contains(&p.tp));
            self.index = (self.partitions.iter().enumerate())
                .map(|(i, p)| (p.tp.clone(), i))
                .collect();
        }
    }
}

/// How the leader takes a fetch request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// Outside any session: answer every partition, keep nothing.
    Sessionless,
    /// A new session: answer every partition and remember what was told.
    Full { id: i32 },
    /// A known session at the expected epoch: its partitions are the request's; answer the news.
    Incremental { id: i32 },
    /// The whole request is refused with this error code.
    Refused { error: i16 },
}

impl Context {
    /// The session id the answer names.
    pub fn session_id(self) -> i32 {
        match self {
            Context::Full { id } | Context::Incremental { id } => id,
            Context::Sessionless | Context::Refused { .. } => NO_SESSION,
        }
    }

    /// The answer's top-level error code.
    pub fn error_code(self) -> i16 {
        match self {
            Context::Refused { error } => error,
            _ => 0,
        }
    }
}

/// A broker's fetch sessions, at most `slots` of them: making room for a new one evicts the one
/// used least recently.
pub struct SessionCache {
    slots: usize,
    sessions: BTreeMap<i32, Session>,
    /// Ids are handed out from here on; it starts where the broker's incarnation says, so that a
    /// fetcher holding an id from before a restart does not find someone else's session under it.
    next_id: i32,
    uses: u64,
}

impl SessionCache {
    /// A cache of `slots` sessions whose ids start from `first_id`.
    pub fn new(slots: usize, first_id: i32) -> SessionCache {
        SessionCache {
            slots,
            sessions: BTreeMap::new(),
            next_id: first_id,
            uses: 0,
        }
    }

    /// How many sessions the cache holds.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Takes up `query`. For an incremental fetch, `query.partitions` becomes every partition of
    /// the session, with the request's changes applied.
    pub fn open(&mut self, query: &mut FetchQuery) -> Context {
        self.uses += 1;
        let (id, epoch) = (query.session_id, query.session_epoch);
        if epoch == FINAL_EPOCH || epoch == INITIAL_EPOCH {
            if id != NO_SESSION {
                self.sessions.remove(&id);
            }
            if epoch == FINAL_EPOCH || self.slots == 0 {
                return Context::Sessionless;
            }
            return Context::Full {
                id: self.create(&query.partitions),
            };
        }
        let Some(session) = self.sessions.get_mut(&id) else {
            return Context::Refused {
                error: FETCH_SESSION_ID_NOT_FOUND,
            };
        };
        if session.next_epoch != epoch {
            return Context::Refused {
                error: INVALID_FETCH_SESSION_EPOCH,
            };
        }
        session.next_epoch = next_epoch(epoch);
        session.last_used = self.uses;
        session.update(&query.partitions, &query.forgotten);
        query.partitions.clone_from(&session.partitions);
        Context::Incremental { id }
    }

    fn create(&mut self, partitions: &[PartitionQuery]) -> i32 {
        while self.sessions.len() >= self.slots {
            let oldest = (self.sessions.iter())
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id)
                .expect("a full cache holds a session");
            self.sessions.remove(&oldest);
            crate::mark!(FetchSessionEvicted);
        }
        let mut id = self.next_id;
        while id == NO_SESSION || self.sessions.contains_key(&id) {
            id = id.wrapping_add(1) & i32::MAX;
        }
        self.next_id = id.wrapping_add(1) & i32::MAX;
        self.sessions
            .insert(id, Session::new(partitions, self.uses));
        id
    }

    /// Picks the answers that go out into `chosen` (indexes into `answers`, which follow
    /// `partitions`) and remembers what they tell. A full answer carries every partition; an
    /// incremental one those with records, an error, a divergence, or a high watermark or log
    /// start the session has not been told.
    pub fn choose(
        &mut self,
        context: Context,
        partitions: &[PartitionQuery],
        answers: &[PartitionAnswer],
        chosen: &mut Vec<usize>,
    ) {
        chosen.clear();
        let session = match context {
            Context::Refused { .. } => return,
            Context::Sessionless => None,
            Context::Full { id } | Context::Incremental { id } => self.sessions.get_mut(&id),
        };
        // A session evicted while its fetch waited is answered in full: the next incremental
        // fetch will learn it is gone.
        let Some(session) = session.filter(|s| s.partitions.len() == answers.len()) else {
            chosen.extend(0..answers.len());
            return;
        };
        let full = matches!(context, Context::Full { .. });
        for (i, (p, a)) in partitions.iter().zip(answers).enumerate() {
            // A session's fetch lists its partitions in the session's own order (`open` copies
            // them from it), so the index is read only for a request that does not.
            let in_place = session.partitions.get(i).is_some_and(|q| q.tp == p.tp);
            let Some(at) = in_place
                .then_some(i)
                .or_else(|| session.index.get(&p.tp).copied())
            else {
                continue;
            };
            let told = Told {
                high_watermark: a.high_watermark,
                log_start_offset: a.log_start_offset,
            };
            let news = !a.records.is_empty()
                || a.error_code != 0
                || a.diverges()
                || session.told[at] != Some(told);
            if full || news {
                chosen.push(i);
                session.told[at] = Some(told);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(partition: i32, fetch_offset: i64) -> PartitionQuery {
        PartitionQuery {
            tp: TopicPartition::new("events", partition),
            first_of_topic: partition == 0,
            current_leader_epoch: 1,
            fetch_offset,
            last_fetched_epoch: 1,
            partition_max_bytes: 1 << 20,
        }
    }

    fn request(id: i32, epoch: i32, partitions: Vec<PartitionQuery>) -> FetchQuery {
        FetchQuery {
            replica_id: 2,
            session_id: id,
            session_epoch: epoch,
            partitions,
            ..FetchQuery::default()
        }
    }

    fn answer(partition: i32, high_watermark: i64, records: &'static [u8]) -> PartitionAnswer {
        let mut a = PartitionAnswer::new(partition);
        a.high_watermark = high_watermark;
        a.records = bytes::Bytes::from_static(records);
        a
    }

    #[test]
    fn an_incremental_fetch_sends_changes_and_is_answered_with_news() {
        let mut cache = SessionCache::new(4, 7);
        let mut full = request(
            0,
            INITIAL_EPOCH,
            vec![query(0, 5), query(1, 9), query(2, 3)],
        );
        let context = cache.open(&mut full);
        assert_eq!(context, Context::Full { id: 7 });
        let answers = [answer(0, 5, b""), answer(1, 9, b""), answer(2, 3, b"")];
        let mut chosen = Vec::new();
        cache.choose(context, &full.partitions, &answers, &mut chosen);
        assert_eq!(chosen, [0, 1, 2], "a full answer carries every partition");
        // Partition 1 moved on; partition 2 leaves; partition 3 joins.
        let mut next = request(7, 1, vec![query(1, 12), query(3, 0)]);
        next.forgotten = vec![TopicPartition::new("events", 2)];
        let context = cache.open(&mut next);
        assert_eq!(context, Context::Incremental { id: 7 });
        let offsets: Vec<(i32, i64)> = (next.partitions.iter())
            .map(|p| (p.tp.partition, p.fetch_offset))
            .collect();
        assert_eq!(
            offsets,
            [(0, 5), (1, 12), (3, 0)],
            "the whole session, updated"
        );
        // Nothing new for 0; records for 1; 3 has never been answered.
        let answers = [answer(0, 5, b""), answer(1, 12, b"r"), answer(3, 0, b"")];
        cache.choose(context, &next.partitions, &answers, &mut chosen);
        assert_eq!(chosen, [1, 2]);
        // Only a high watermark moves: that is news too.
        let mut again = request(7, 2, vec![]);
        let context = cache.open(&mut again);
        let answers = [answer(0, 6, b""), answer(1, 12, b""), answer(3, 0, b"")];
        cache.choose(context, &again.partitions, &answers, &mut chosen);
        assert_eq!(chosen, [0]);
    }

    #[test]
    fn a_wrong_epoch_or_an_unknown_session_is_refused_and_a_full_fetch_starts_over() {
        let mut cache = SessionCache::new(4, 1);
        let context = cache.open(&mut request(0, INITIAL_EPOCH, vec![query(0, 0)]));
        assert_eq!(context, Context::Full { id: 1 });
        assert_eq!(
            cache.open(&mut request(1, 2, vec![])),
            Context::Refused {
                error: INVALID_FETCH_SESSION_EPOCH
            }
        );
        assert_eq!(
            cache.open(&mut request(99, 1, vec![])),
            Context::Refused {
                error: FETCH_SESSION_ID_NOT_FOUND
            }
        );
        // Asking for a new session under the old id closes the old one.
        let context = cache.open(&mut request(1, INITIAL_EPOCH, vec![query(0, 0)]));
        assert_eq!(context, Context::Full { id: 2 });
        assert_eq!(cache.len(), 1);
        assert_eq!(
            cache.open(&mut request(1, 1, vec![])),
            Context::Refused {
                error: FETCH_SESSION_ID_NOT_FOUND
            }
        );
    }

    #[test]
    fn a_full_cache_evicts_the_session_used_least_recently() {
        let mut cache = SessionCache::new(2, 1);
        let a = cache.open(&mut request(0, INITIAL_EPOCH, vec![query(0, 0)]));
        let b = cache.open(&mut request(0, INITIAL_EPOCH, vec![query(1, 0)]));
        assert_eq!((a, b), (Context::Full { id: 1 }, Context::Full { id: 2 }));
        assert_eq!(
            cache.open(&mut request(1, 1, vec![])),
            Context::Incremental { id: 1 }
        );
        let c = cache.open(&mut request(0, INITIAL_EPOCH, vec![query(2, 0)]));
        assert_eq!(c, Context::Full { id: 3 });
        assert_eq!(
            cache.open(&mut request(2, 1, vec![])),
            Context::Refused {
                error: FETCH_SESSION_ID_NOT_FOUND
            },
            "session 2 was the one used least recently"
        );
        assert_eq!(
            cache.open(&mut request(1, 2, vec![])),
            Context::Incremental { id: 1 }
        );
        let mut none = SessionCache::new(0, 1);
        let context = none.open(&mut request(0, INITIAL_EPOCH, vec![query(0, 0)]));
        assert_eq!(context, Context::Sessionless, "no slots: no sessions");
    }
}
