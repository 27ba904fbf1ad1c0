//! Fetch requests and responses, read and written by hand.
//!
//! Fetches carry nearly every replicated record (followers) and every consumed one, so they are the
//! hottest messages a broker handles. `kafka-protocol` builds each as nested structures, each with
//! its own map of unknown tagged fields, and dropping them cost as much as building them. These
//! functions read straight into the few fields the broker and its fetchers use, and write straight
//! from them. What they write is byte for byte what `kafka-protocol` writes for the same values
//! (the tests below hold them to it), at every version the broker serves.

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{put_bytes, put_len, put_str, read_topics, write_topics, Reader};
use crate::log::epoch_cache::EpochEnd;
use crate::{BrokerId, TopicPartition};

/// The Fetch versions this broker answers; from 12 on, the message is flexible (compact arrays and
/// strings, tagged fields), and 13 names topics by id, which this broker does not.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 4..=12;
const FLEXIBLE: i16 = 12;

/// One partition of a fetch, as the leader reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionQuery {
    pub tp: TopicPartition,
    /// Whether this partition opens a topic of the request: the answer groups partitions as the
    /// request did.
    pub first_of_topic: bool,
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    /// -1 when the fetcher asks for no divergence check (and before version 12).
    pub last_fetched_epoch: i32,
    pub partition_max_bytes: i32,
}

/// A fetch request: its partitions in the request's order, and its place in a fetch session
/// (KIP-227). The leader reads requests into it; fetchers write theirs from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchQuery {
    /// The fetching broker, or -1 for a consumer.
    pub replica_id: BrokerId,
    pub max_wait_ms: i32,
    /// The most record bytes the whole answer should carry (its first batch goes whatever its
    /// size, so that a fetch always makes progress).
    pub max_bytes: i32,
    /// 0 reads uncommitted records, up to the high watermark; 1 reads committed ones, up to the
    /// last stable offset, and learns the aborted transactions among them.
    pub isolation_level: i8,
    /// 0 outside a session, or to ask for a new one.
    pub session_id: i32,
    /// 0 to open a session, -1 for none (a full fetch that keeps no state), else the session's
    /// next epoch: an incremental fetch.
    pub session_epoch: i32,
    pub partitions: Vec<PartitionQuery>,
    /// Partitions an incremental fetch drops from its session.
    pub forgotten: Vec<TopicPartition>,
}

impl Default for FetchQuery {
    fn default() -> Self {
        FetchQuery {
            replica_id: -1,
            max_wait_ms: 0,
            max_bytes: i32::MAX,
            isolation_level: 0,
            session_id: 0,
            session_epoch: -1,
            partitions: Vec::new(),
            forgotten: Vec::new(),
        }
    }
}

/// The answer for one partition of a fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionAnswer {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Where the fetcher's log leaves the leader's (KIP-279); (-1, -1) when it does not.
    pub diverging_epoch: EpochEnd,
    /// The leader the answering broker knows, and its epoch; (-1, -1) when it does not say.
    pub current_leader: (BrokerId, i32),
    /// For a read_committed fetch, the aborted transactions with records in the answer: producer
    /// id and first offset.
    pub aborted: Vec<(i64, i64)>,
    pub records: Bytes,
}

impl PartitionAnswer {
    /// An answer that says nothing yet, with `kafka-protocol`'s defaults.
    pub fn new(partition_index: i32) -> Self {
        PartitionAnswer {
            partition_index,
            error_code: 0,
            high_watermark: 0,
            last_stable_offset: -1,
            log_start_offset: -1,
            diverging_epoch: EpochEnd::UNDEFINED,
            current_leader: (-1, -1),
            aborted: Vec::new(),
            records: Bytes::new(),
        }
    }

    /// Whether the leader reported a divergence.
    pub fn diverges(&self) -> bool {
        self.diverging_epoch.epoch >= 0 || self.diverging_epoch.end_offset >= 0
    }
}

/// A fetch response as a fetcher reads it: the session's verdict and each partition answered.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchAnswer {
    /// An error of the whole fetch: a session the leader does not know, or a wrong epoch.
    pub error_code: i16,
    /// The session the leader keeps for this fetcher; 0 for none.
    pub session_id: i32,
    /// Each partition answered and its topic. An incremental answer leaves out the partitions
    /// with nothing new.
    pub partitions: Vec<(std::sync::Arc<str>, PartitionAnswer)>,
}

impl FetchQuery {
    /// A fetch of one partition outside any session, as the quorum's fetchers send them.
    #[allow(clippy::too_many_arguments)]
    pub fn single(
        replica_id: BrokerId,
        tp: TopicPartition,
        current_leader_epoch: i32,
        fetch_offset: i64,
        last_fetched_epoch: i32,
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> FetchQuery {
        FetchQuery {
            replica_id,
            max_wait_ms,
            max_bytes,
            partitions: vec![PartitionQuery {
                tp,
                first_of_topic: true,
                current_leader_epoch,
                fetch_offset,
                last_fetched_epoch,
                partition_max_bytes: max_bytes,
            }],
            ..FetchQuery::default()
        }
    }

    /// Writes the request's body at `version`. Before version 7 there are no sessions: the
    /// session fields and forgotten partitions are not written.
    pub fn encode(&self, buf: &mut BytesMut, version: i16) {
        let flexible = version >= FLEXIBLE;
        buf.put_i32(self.replica_id);
        buf.put_i32(self.max_wait_ms);
        buf.put_i32(1); // min bytes
        buf.put_i32(self.max_bytes);
        buf.put_i8(self.isolation_level);
        if version >= 7 {
            buf.put_i32(self.session_id);
            buf.put_i32(self.session_epoch);
        }
        write_topics(
            buf,
            &self.partitions,
            flexible,
            |p| p.first_of_topic,
            |p| &p.tp.topic,
            |buf, i| put_query(buf, &self.partitions[i], version),
        );
        if version >= 7 {
            put_forgotten(buf, &self.forgotten, flexible);
        }
        if version >= 11 {
            put_str(buf, "", flexible); // rack id
        }
        if flexible {
            buf.put_u8(0);
        }
    }
}

#[inline]
fn put_query(buf: &mut BytesMut, p: &PartitionQuery, version: i16) {
    buf.put_i32(p.tp.partition);
    if version >= 9 {
        buf.put_i32(p.current_leader_epoch);
    }
    buf.put_i64(p.fetch_offset);
    if version >= 12 {
        buf.put_i32(p.last_fetched_epoch);
    }
    if version >= 5 {
        buf.put_i64(-1); // log start offset: a follower's matters only to deleting records
    }
    buf.put_i32(p.partition_max_bytes);
    if version >= FLEXIBLE {
        buf.put_u8(0);
    }
}

/// Writes forgotten partitions as topics, each run of one topic's partitions under its name.
fn put_forgotten(buf: &mut BytesMut, forgotten: &[TopicPartition], flexible: bool) {
    let runs = forgotten.chunk_by(|a, b| a.topic == b.topic);
    put_len(buf, runs.clone().count(), flexible);
    for run in runs {
        put_str(buf, &run[0].topic, flexible);
        put_len(buf, run.len(), flexible);
        for tp in run {
            buf.put_i32(tp.partition);
        }
        if flexible {
            buf.put_u8(0);
        }
    }
}

/// Reads a fetch request's body at `version` (one of [`VERSIONS`]) into `query`, whose
/// partitions' room and first topic name it reuses: a connection reads one fetch after another.
pub fn decode_request(buf: &mut Bytes, version: i16, query: &mut FetchQuery) -> Result<(), String> {
    let flexible = version >= FLEXIBLE;
    let mut r = Reader(buf);
    let known = query.partitions.first().map(|p| p.tp.topic.clone());
    query.partitions.clear();
    query.forgotten.clear();
    query.replica_id = r.i32()?;
    query.max_wait_ms = r.i32()?;
    r.skip(4)?; // min bytes: always one, as the fetchers of this code base ask
    query.max_bytes = if version >= 3 { r.i32()? } else { i32::MAX };
    query.isolation_level = r.i8()?;
    (query.session_id, query.session_epoch) = if version >= 7 {
        (r.i32()?, r.i32()?)
    } else {
        (0, -1)
    };
    let partitions = &mut query.partitions;
    read_topics(&mut r, flexible, known.as_ref(), |r, topic, first| {
        let partition = r.i32()?;
        let current_leader_epoch = if version >= 9 { r.i32()? } else { -1 };
        let fetch_offset = r.i64()?;
        let last_fetched_epoch = if version >= 12 { r.i32()? } else { -1 };
        if version >= 5 {
            r.skip(8)?; // log start offset
        }
        partitions.push(PartitionQuery {
            tp: TopicPartition::new(topic.clone(), partition),
            first_of_topic: first,
            current_leader_epoch,
            fetch_offset,
            last_fetched_epoch,
            partition_max_bytes: r.i32()?,
        });
        Ok(())
    })?;
    if version >= 7 {
        for _ in 0..r.len(flexible)? {
            let topic = r.str_reusing(flexible, known.as_ref())?;
            for _ in 0..r.len(flexible)? {
                let partition = r.i32()?;
                query
                    .forgotten
                    .push(TopicPartition::new(topic.clone(), partition));
            }
            r.tagged_fields(flexible)?;
        }
    }
    // The rack id and the request's tagged fields (the cluster id) matter only to rack-aware
    // reads, which this broker does not do: checked, not kept.
    if version >= 11 {
        r.skip_str(flexible)?;
    }
    r.tagged_fields(flexible)
}

/// Writes an answer at `version`: the session's error code and id, then, for each index in
/// `chosen`, that partition of `partitions` and its answer in `answers`. An incremental fetch
/// answers only the partitions with something new; a full one answers every one.
pub fn encode_response(
    (error_code, session_id): (i16, i32),
    partitions: &[PartitionQuery],
    answers: &[PartitionAnswer],
    chosen: &[usize],
    version: i16,
    buf: &mut BytesMut,
) {
    debug_assert_eq!(partitions.len(), answers.len());
    let flexible = version >= FLEXIBLE;
    buf.put_i32(0); // throttle time
    if version >= 7 {
        buf.put_i16(error_code);
        buf.put_i32(session_id);
    }
    // A chosen partition opens a topic when it is the first chosen or the one before it chosen
    // was of another topic: the partitions left out may have opened them in the request.
    let items: Vec<(&PartitionQuery, &PartitionAnswer, bool)> = (chosen.iter().enumerate())
        .map(|(k, &i)| {
            let opens = k == 0 || partitions[chosen[k - 1]].tp.topic != partitions[i].tp.topic;
            (&partitions[i], &answers[i], opens)
        })
        .collect();
    write_topics(
        buf,
        &items,
        flexible,
        |item| item.2,
        |item| &item.0.tp.topic,
        |buf, k| put_answer(buf, items[k].1, version),
    );
    if flexible {
        buf.put_u8(0);
    }
}

#[inline]
fn put_answer(buf: &mut BytesMut, a: &PartitionAnswer, version: i16) {
    let flexible = version >= FLEXIBLE;
    buf.put_i32(a.partition_index);
    buf.put_i16(a.error_code);
    buf.put_i64(a.high_watermark);
    buf.put_i64(a.last_stable_offset);
    if version >= 5 {
        buf.put_i64(a.log_start_offset);
    }
    put_len(buf, a.aborted.len(), flexible);
    for (producer_id, first_offset) in &a.aborted {
        buf.put_i64(*producer_id);
        buf.put_i64(*first_offset);
        if flexible {
            buf.put_u8(0);
        }
    }
    if version >= 11 {
        buf.put_i32(-1); // preferred read replica: none
    }
    put_bytes(buf, &a.records, flexible);
    if flexible {
        let diverges = a.diverging_epoch != EpochEnd::UNDEFINED;
        let leads = a.current_leader != (-1, -1);
        buf.put_u8(u8::from(diverges) + u8::from(leads));
        if diverges {
            buf.put_slice(&[0, 4 + 8 + 1]);
            buf.put_i32(a.diverging_epoch.epoch);
            buf.put_i64(a.diverging_epoch.end_offset);
            buf.put_u8(0);
        }
        if leads {
            buf.put_slice(&[1, 4 + 4 + 1]);
            buf.put_i32(a.current_leader.0);
            buf.put_i32(a.current_leader.1);
            buf.put_u8(0);
        }
    }
}

/// Reads a fetch response's body at `version` into `out`, whose room it reuses; a topic named
/// `known` shares that name rather than copying it.
pub fn decode_response(
    buf: &mut Bytes,
    version: i16,
    known: Option<&std::sync::Arc<str>>,
    out: &mut FetchAnswer,
) -> Result<(), String> {
    let flexible = version >= FLEXIBLE;
    let mut r = Reader(buf);
    out.partitions.clear();
    r.skip(4)?; // throttle time
    (out.error_code, out.session_id) = if version >= 7 {
        (r.i16()?, r.i32()?)
    } else {
        (0, 0)
    };
    // Not `read_topics`: a partition's tagged fields hold the divergence and the leader, which
    // `read_answer` reads itself.
    for _ in 0..r.len(flexible)? {
        let topic = r.str_reusing(flexible, known)?;
        for _ in 0..r.len(flexible)? {
            out.partitions
                .push((topic.clone(), read_answer(&mut r, version)?));
        }
        r.tagged_fields(flexible)?;
    }
    r.tagged_fields(flexible)
}

fn read_answer(r: &mut Reader<'_>, version: i16) -> Result<PartitionAnswer, String> {
    let flexible = version >= FLEXIBLE;
    let mut a = PartitionAnswer::new(r.i32()?);
    a.error_code = r.i16()?;
    a.high_watermark = r.i64()?;
    a.last_stable_offset = r.i64()?;
    if version >= 5 {
        a.log_start_offset = r.i64()?;
    }
    for _ in 0..r.nullable_len(flexible)?.unwrap_or(0) {
        a.aborted.push((r.i64()?, r.i64()?));
        r.tagged_fields(flexible)?;
    }
    if version >= 11 {
        r.skip(4)?; // preferred read replica
    }
    a.records = r.nullable_bytes(flexible)?.unwrap_or_default();
    if flexible {
        for _ in 0..r.uvarint()? {
            let tag = r.uvarint()?;
            let size = r.uvarint()? as usize;
            match tag {
                0 => {
                    a.diverging_epoch = EpochEnd {
                        epoch: r.i32()?,
                        end_offset: r.i64()?,
                    };
                    r.tagged_fields(true)?;
                }
                1 => {
                    a.current_leader = (r.i32()?, r.i32()?);
                    r.tagged_fields(true)?;
                }
                _ => r.skip(size)?, // the snapshot id, or a field newer than this code
            }
        }
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    //! `kafka-protocol` is the oracle: what these functions write, it must write too, and what it
    //! writes, they must read.

    use super::*;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    /// A small deterministic source of test values.
    struct Values(u64);

    impl Values {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
        fn i32(&mut self) -> i32 {
            self.next() as i32 % 1000 - 1
        }
        fn i64(&mut self) -> i64 {
            (self.next() % 100_000) as i64 - 1
        }
        fn chance(&mut self) -> bool {
            self.next().is_multiple_of(2)
        }
        fn bytes(&mut self) -> Bytes {
            let n = (self.next() % 300) as usize;
            (0..n).map(|_| self.next() as u8).collect::<Vec<_>>().into()
        }
    }

    fn kafka_encode<T: Encodable>(message: &T, version: i16) -> BytesMut {
        let mut buf = BytesMut::new();
        message
            .encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("version {version}: {e}"));
        buf
    }

    /// A fetch of a few partitions of a few topics, in a session or not, as a fetcher writes
    /// one, and `kafka-protocol`'s form of it.
    fn fetch(v: &mut Values, version: i16) -> (FetchQuery, FetchRequest) {
        let mut ours = FetchQuery {
            replica_id: v.i32(),
            max_wait_ms: v.i32(),
            max_bytes: v.i32(),
            ..FetchQuery::default()
        };
        let mut r = FetchRequest::default();
        r.replica_id = ours.replica_id.into();
        r.max_wait_ms = ours.max_wait_ms;
        r.min_bytes = 1;
        r.max_bytes = ours.max_bytes;
        if version >= 7 {
            (ours.session_id, ours.session_epoch) = (v.i32(), v.i32());
            (r.session_id, r.session_epoch) = (ours.session_id, ours.session_epoch);
            for topic in ["gone", "left"].iter().take(v.next() as usize % 3) {
                let mut f = ForgottenTopic::default();
                f.topic = TopicName(StrBytes::from_static_str(topic));
                for _ in 0..1 + v.next() % 3 {
                    let partition = v.i32();
                    f.partitions.push(partition);
                    ours.forgotten.push(TopicPartition::new(*topic, partition));
                }
                r.forgotten_topics_data.push(f);
            }
        }
        for topic in ["events", "__cluster_metadata", "t"]
            .iter()
            .take(1 + v.next() as usize % 3)
        {
            let mut t = FetchTopic::default();
            t.topic = TopicName(StrBytes::from_static_str(topic));
            for i in 0..1 + v.next() % 3 {
                let query = PartitionQuery {
                    tp: TopicPartition::new(*topic, v.i32()),
                    first_of_topic: i == 0,
                    current_leader_epoch: if version >= 9 { v.i32() } else { -1 },
                    fetch_offset: v.i64(),
                    last_fetched_epoch: if version >= 12 { v.i32() } else { -1 },
                    partition_max_bytes: v.i32(),
                };
                let mut p = FetchPartition::default();
                p.partition = query.tp.partition;
                p.current_leader_epoch = query.current_leader_epoch;
                p.fetch_offset = query.fetch_offset;
                p.last_fetched_epoch = query.last_fetched_epoch;
                p.partition_max_bytes = query.partition_max_bytes;
                t.partitions.push(p);
                ours.partitions.push(query);
            }
            r.topics.push(t);
        }
        (ours, r)
    }

    #[test]
    fn a_fetch_is_written_as_kafka_protocol_writes_it() {
        let mut v = Values(1);
        for version in VERSIONS {
            for _ in 0..30 {
                let (query, expected) = fetch(&mut v, version);
                let mut ours = BytesMut::new();
                query.encode(&mut ours, version);
                assert_eq!(ours, kafka_encode(&expected, version), "version {version}");
            }
        }
    }

    #[test]
    fn a_fetch_this_code_writes_is_read_back_whole() {
        let mut v = Values(11);
        let mut read = FetchQuery::default();
        for version in VERSIONS {
            for _ in 0..30 {
                let (mut query, _) = fetch(&mut v, version);
                let mut wire = BytesMut::new();
                query.encode(&mut wire, version);
                decode_request(&mut wire.freeze(), version, &mut read)
                    .unwrap_or_else(|e| panic!("version {version}: {e}"));
                if version < 7 {
                    (query.session_id, query.session_epoch) = (0, -1);
                }
                assert_eq!(read, query, "version {version}");
            }
        }
    }

    #[test]
    fn a_fetch_request_is_read_as_kafka_protocol_wrote_it() {
        let mut v = Values(2);
        // One query read into again and again, as a connection does.
        let mut query = FetchQuery::default();
        for version in VERSIONS {
            for _ in 0..20 {
                let mut r = FetchRequest::default();
                r.replica_id = v.i32().into();
                r.max_wait_ms = v.i32();
                r.min_bytes = v.i32();
                r.max_bytes = v.i32();
                r.isolation_level = (v.next() % 2) as i8;
                if version >= 7 {
                    r.session_id = v.i32();
                    r.session_epoch = v.i32();
                    let mut f = ForgottenTopic::default();
                    f.topic = TopicName(StrBytes::from_static_str("gone"));
                    f.partitions = vec![v.i32(), v.i32()];
                    r.forgotten_topics_data = vec![f];
                }
                if version >= 11 {
                    r.rack_id = StrBytes::from_static_str("rack-a");
                }
                if version >= 12 && v.chance() {
                    r.cluster_id = Some(StrBytes::from_static_str("logsim"));
                    r.unknown_tagged_fields
                        .insert(7, Bytes::from_static(b"xyz"));
                }
                let mut expected = Vec::new();
                for topic in ["a", "b", "a"].iter().take(1 + v.next() as usize % 3) {
                    let mut t = FetchTopic::default();
                    t.topic = TopicName(StrBytes::from_static_str(topic));
                    for i in 0..(v.next() % 3) {
                        let mut p = FetchPartition::default();
                        p.partition = v.i32();
                        if version >= 9 {
                            p.current_leader_epoch = v.i32();
                        }
                        p.fetch_offset = v.i64();
                        if version >= 12 {
                            p.last_fetched_epoch = v.i32();
                            if v.chance() {
                                p.unknown_tagged_fields.insert(9, Bytes::from_static(b"q"));
                            }
                        }
                        if version >= 5 {
                            p.log_start_offset = v.i64();
                        }
                        p.partition_max_bytes = v.i32();
                        expected.push(PartitionQuery {
                            tp: TopicPartition::new(*topic, p.partition),
                            first_of_topic: i == 0,
                            current_leader_epoch: p.current_leader_epoch,
                            fetch_offset: p.fetch_offset,
                            last_fetched_epoch: p.last_fetched_epoch,
                            partition_max_bytes: p.partition_max_bytes,
                        });
                        t.partitions.push(p);
                    }
                    r.topics.push(t);
                }
                let mut wire = kafka_encode(&r, version).freeze();
                decode_request(&mut wire, version, &mut query)
                    .unwrap_or_else(|e| panic!("version {version}: {e}"));
                assert_eq!(query.replica_id, r.replica_id.0);
                assert_eq!(query.max_wait_ms, r.max_wait_ms);
                assert_eq!(query.max_bytes, r.max_bytes);
                assert_eq!(query.session_id, r.session_id);
                assert_eq!(query.session_epoch, r.session_epoch);
                let forgotten: Vec<TopicPartition> = r
                    .forgotten_topics_data
                    .iter()
                    .flat_map(|f| f.partitions.iter().map(|p| TopicPartition::new("gone", *p)))
                    .collect();
                assert_eq!(query.forgotten, forgotten, "version {version}");
                assert_eq!(query.partitions, expected, "version {version}");
                assert!(
                    wire.is_empty(),
                    "version {version}: {} bytes unread",
                    wire.len()
                );
            }
        }
    }

    /// `kafka-protocol`'s form of an answer, as the broker built it before these functions.
    fn kafka_partition(a: &PartitionAnswer, version: i16) -> PartitionData {
        let mut p = PartitionData::default();
        p.partition_index = a.partition_index;
        p.error_code = a.error_code;
        p.high_watermark = a.high_watermark;
        p.last_stable_offset = a.last_stable_offset;
        p.log_start_offset = a.log_start_offset;
        p.records = Some(a.records.clone());
        p.aborted_transactions = Some(
            (a.aborted.iter())
                .map(|(producer_id, first_offset)| {
                    let mut t = AbortedTransaction::default();
                    t.producer_id = (*producer_id).into();
                    t.first_offset = *first_offset;
                    t
                })
                .collect(),
        );
        if version >= 12 {
            p.diverging_epoch.epoch = a.diverging_epoch.epoch;
            p.diverging_epoch.end_offset = a.diverging_epoch.end_offset;
            p.current_leader.leader_id = a.current_leader.0.into();
            p.current_leader.leader_epoch = a.current_leader.1;
        }
        p
    }

    fn answer(v: &mut Values, version: i16, partition_index: i32) -> PartitionAnswer {
        let mut a = PartitionAnswer::new(partition_index);
        a.error_code = (v.next() % 80) as i16;
        a.high_watermark = v.i64();
        a.last_stable_offset = v.i64();
        if version >= 5 {
            a.log_start_offset = v.i64();
        }
        if version >= 12 && v.chance() {
            a.diverging_epoch = EpochEnd {
                epoch: v.i32(),
                end_offset: v.i64(),
            };
        }
        if version >= 12 && v.chance() {
            a.current_leader = (v.i32(), v.i32());
        }
        if v.chance() {
            a.records = v.bytes();
        }
        if v.chance() {
            a.aborted = vec![(v.i64(), v.i64()), (v.i64(), v.i64())];
        }
        a
    }

    #[test]
    fn an_answer_is_written_as_kafka_protocol_writes_it() {
        let mut v = Values(3);
        for version in VERSIONS {
            for _ in 0..30 {
                let mut partitions = Vec::new();
                let mut answers = Vec::new();
                let mut expected = FetchResponse::default();
                for topic in ["a", "b", "a"].iter().take(1 + v.next() as usize % 3) {
                    let mut t = FetchableTopicResponse::default();
                    t.topic = TopicName(StrBytes::from_static_str(topic));
                    for i in 0..1 + v.next() % 3 {
                        let index = v.i32();
                        let a = answer(&mut v, version, index);
                        partitions.push(PartitionQuery {
                            tp: TopicPartition::new(*topic, a.partition_index),
                            first_of_topic: i == 0,
                            current_leader_epoch: -1,
                            fetch_offset: 0,
                            last_fetched_epoch: -1,
                            partition_max_bytes: 0,
                        });
                        t.partitions.push(kafka_partition(&a, version));
                        answers.push(a);
                    }
                    expected.responses.push(t);
                }
                if version >= 7 {
                    expected.error_code = (v.next() % 80) as i16;
                    expected.session_id = v.i32();
                }
                let session = (expected.error_code, expected.session_id);
                let all: Vec<usize> = (0..answers.len()).collect();
                let mut ours = BytesMut::new();
                encode_response(session, &partitions, &answers, &all, version, &mut ours);
                assert_eq!(ours, kafka_encode(&expected, version), "version {version}");
            }
        }
    }

    #[test]
    fn an_incremental_answer_lists_only_the_chosen_partitions_under_their_topics() {
        let mut v = Values(6);
        let version = *VERSIONS.end();
        let names = [("a", 0), ("a", 1), ("b", 0), ("a", 2), ("b", 1)];
        let partitions: Vec<PartitionQuery> = names
            .iter()
            .enumerate()
            .map(|(i, (topic, partition))| PartitionQuery {
                tp: TopicPartition::new(*topic, *partition),
                first_of_topic: i == 0 || names[i - 1].0 != *topic,
                current_leader_epoch: -1,
                fetch_offset: 0,
                last_fetched_epoch: -1,
                partition_max_bytes: 0,
            })
            .collect();
        let answers: Vec<PartitionAnswer> = names
            .iter()
            .map(|(_, p)| answer(&mut v, version, *p))
            .collect();
        let mut expected = FetchResponse::default();
        expected.session_id = 9;
        for (topic, chosen) in [("a", &[1, 3][..]), ("b", &[4][..])] {
            let mut t = FetchableTopicResponse::default();
            t.topic = TopicName(StrBytes::from_static_str(topic));
            t.partitions = chosen
                .iter()
                .map(|i| kafka_partition(&answers[*i], version))
                .collect();
            expected.responses.push(t);
        }
        let mut ours = BytesMut::new();
        encode_response(
            (0, 9),
            &partitions,
            &answers,
            &[1, 3, 4],
            version,
            &mut ours,
        );
        assert_eq!(ours, kafka_encode(&expected, version));
    }

    #[test]
    fn an_answer_is_read_as_kafka_protocol_wrote_it() {
        let mut v = Values(4);
        for version in VERSIONS {
            for _ in 0..30 {
                let index = v.i32();
                let mut a = answer(&mut v, version, index);
                let mut p = kafka_partition(&a, version);
                if a.aborted.is_empty() && v.chance() {
                    // A read_uncommitted answer may carry none at all.
                    p.aborted_transactions = None;
                    a.aborted.clear();
                }
                if version >= 11 {
                    p.preferred_read_replica = v.i32().into();
                }
                if version >= 12 && v.chance() {
                    p.snapshot_id.end_offset = v.i64();
                    p.snapshot_id.epoch = v.i32();
                    p.unknown_tagged_fields
                        .insert(5, Bytes::from_static(b"new"));
                }
                let records_null = a.records.is_empty() && v.chance();
                if records_null {
                    p.records = None;
                }
                let mut t = FetchableTopicResponse::default();
                t.topic = TopicName(StrBytes::from_static_str("events"));
                t.partitions.push(p);
                let mut response = FetchResponse::default();
                response.responses.push(t);
                let mut t = FetchableTopicResponse::default();
                t.topic = TopicName(StrBytes::from_static_str("other"));
                let b = answer(&mut v, version, 7);
                t.partitions.push(kafka_partition(&b, version));
                response.responses.push(t);
                if version >= 7 {
                    response.error_code = 70;
                    response.session_id = 12;
                }
                let mut wire = kafka_encode(&response, version).freeze();
                let mut read = FetchAnswer::default();
                decode_response(&mut wire, version, None, &mut read)
                    .unwrap_or_else(|e| panic!("version {version}: {e}"));
                let expected = FetchAnswer {
                    error_code: if version >= 7 { 70 } else { 0 },
                    session_id: if version >= 7 { 12 } else { 0 },
                    partitions: vec![("events".into(), a), ("other".into(), b)],
                };
                assert_eq!(read, expected, "version {version}");
                assert!(wire.is_empty(), "version {version}");
            }
            let mut empty = kafka_encode(&FetchResponse::default(), version).freeze();
            let mut read = FetchAnswer::default();
            decode_response(&mut empty, version, None, &mut read).expect("an empty answer");
            assert_eq!(read, FetchAnswer::default());
        }
    }

    #[test]
    fn a_cut_message_is_refused_not_read_past() {
        let mut v = Values(5);
        let version = *VERSIONS.end();
        let mut a = answer(&mut v, version, 3);
        a.diverging_epoch = EpochEnd::UNDEFINED;
        a.current_leader = (-1, -1);
        a.records = Bytes::from_static(b"records");
        let mut t = FetchableTopicResponse::default();
        t.topic = TopicName(StrBytes::from_static_str("events"));
        t.partitions.push(kafka_partition(&a, version));
        let mut response = FetchResponse::default();
        response.responses.push(t);
        let whole = kafka_encode(&response, version).freeze();
        let request = {
            let mut buf = BytesMut::new();
            let (query, _) = fetch(&mut v, version);
            query.encode(&mut buf, version);
            buf.freeze()
        };
        let mut query = FetchQuery::default();
        assert!(decode_request(&mut request.clone(), version, &mut query).is_ok());
        for cut in 0..request.len() {
            let mut short = request.slice(..cut);
            let read = decode_request(&mut short, version, &mut query);
            assert!(read.is_err(), "cut at {cut}");
        }
        let mut answer = FetchAnswer::default();
        for cut in 0..whole.len() {
            let read = decode_response(&mut whole.slice(..cut), version, None, &mut answer);
            assert!(read.is_err(), "cut at {cut}: {read:?}");
        }
        decode_response(&mut whole.clone(), version, None, &mut answer).expect("the whole answer");
        assert_eq!(answer.partitions, vec![("events".into(), a)]);
    }
}
