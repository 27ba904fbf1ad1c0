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

/// A fetch request, as the leader reads it: its partitions in the request's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchQuery {
    /// The fetching broker, or -1 for a consumer.
    pub replica_id: BrokerId,
    pub max_wait_ms: i32,
    pub partitions: Vec<PartitionQuery>,
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
            records: Bytes::new(),
        }
    }

    /// Whether the leader reported a divergence.
    pub fn diverges(&self) -> bool {
        self.diverging_epoch.epoch >= 0 || self.diverging_epoch.end_offset >= 0
    }
}

/// A fetch of one partition, the only kind this code base sends (followers, the quorum, consumers).
pub struct SingleFetch<'a> {
    /// The fetching broker, or -1 for a consumer.
    pub replica_id: BrokerId,
    pub topic: &'a str,
    pub partition: i32,
    pub current_leader_epoch: i32,
    pub fetch_offset: i64,
    /// -1 when the fetcher asks for no divergence check.
    pub last_fetched_epoch: i32,
    pub max_wait_ms: i32,
    pub max_bytes: i32,
}

impl SingleFetch<'_> {
    /// Writes the request's body at `version`.
    pub fn encode(&self, buf: &mut BytesMut, version: i16) {
        let flexible = version >= FLEXIBLE;
        buf.put_i32(self.replica_id);
        buf.put_i32(self.max_wait_ms);
        buf.put_i32(1); // min bytes
        buf.put_i32(self.max_bytes);
        buf.put_i8(0); // isolation level: read uncommitted
        if version >= 7 {
            buf.put_i32(0); // session id
            buf.put_i32(-1); // session epoch: no session
        }
        put_len(buf, 1, flexible); // topics
        put_str(buf, self.topic, flexible);
        put_len(buf, 1, flexible); // partitions
        buf.put_i32(self.partition);
        if version >= 9 {
            buf.put_i32(self.current_leader_epoch);
        }
        buf.put_i64(self.fetch_offset);
        if version >= 12 {
            buf.put_i32(self.last_fetched_epoch);
        }
        if version >= 5 {
            buf.put_i64(-1); // log start offset: a consumer's, unknown
        }
        buf.put_i32(self.max_bytes);
        if flexible {
            buf.put_u8(0); // the partition's tagged fields
            buf.put_u8(0); // the topic's
        }
        if version >= 7 {
            put_len(buf, 0, flexible); // forgotten topics
        }
        if version >= 11 {
            put_str(buf, "", flexible); // rack id
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
    query.replica_id = r.i32()?;
    query.max_wait_ms = r.i32()?;
    r.skip(4 + 4 + 1)?; // min bytes, max bytes, isolation level
    if version >= 7 {
        r.skip(4 + 4)?; // session id and epoch
    }
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
    // Forgotten topics, the rack id and the request's tagged fields (the cluster id) matter only to
    // fetch sessions and rack-aware reads, which this broker does not keep: checked, not kept.
    if version >= 7 {
        for _ in 0..r.len(flexible)? {
            r.skip_str(flexible)?;
            let count = r.len(flexible)?;
            r.skip(4 * count)?;
            r.tagged_fields(flexible)?;
        }
    }
    if version >= 11 {
        r.skip_str(flexible)?;
    }
    r.tagged_fields(flexible)
}

/// Writes the answer to `query` at `version`: `answers` follow its partitions, one for each.
pub fn encode_response(
    query: &FetchQuery,
    answers: &[PartitionAnswer],
    version: i16,
    buf: &mut BytesMut,
) {
    debug_assert_eq!(query.partitions.len(), answers.len());
    let flexible = version >= FLEXIBLE;
    buf.put_i32(0); // throttle time
    if version >= 7 {
        buf.put_i16(0); // error code
        buf.put_i32(0); // session id
    }
    write_topics(
        buf,
        &query.partitions,
        flexible,
        |p| p.first_of_topic,
        |p| &p.tp.topic,
        |buf, i| put_answer(buf, &answers[i], version),
    );
    if flexible {
        buf.put_u8(0);
    }
}

fn put_answer(buf: &mut BytesMut, a: &PartitionAnswer, version: i16) {
    let flexible = version >= FLEXIBLE;
    buf.put_i32(a.partition_index);
    buf.put_i16(a.error_code);
    buf.put_i64(a.high_watermark);
    buf.put_i64(a.last_stable_offset);
    if version >= 5 {
        buf.put_i64(a.log_start_offset);
    }
    put_len(buf, 0, flexible); // aborted transactions
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

/// Reads a fetch response's body at `version` and returns its first partition's answer, the one a
/// [`SingleFetch`] asked for; `None` when it has none.
pub fn decode_single(buf: &mut Bytes, version: i16) -> Result<Option<PartitionAnswer>, String> {
    let flexible = version >= FLEXIBLE;
    let mut r = Reader(buf);
    r.skip(4)?; // throttle time
    if version >= 7 {
        r.skip(2 + 4)?; // error code, session id
    }
    if !r.enter_first_partition(flexible)? {
        return Ok(None);
    }
    let mut a = PartitionAnswer::new(r.i32()?);
    a.error_code = r.i16()?;
    a.high_watermark = r.i64()?;
    a.last_stable_offset = r.i64()?;
    if version >= 5 {
        a.log_start_offset = r.i64()?;
    }
    for _ in 0..r.nullable_len(flexible)?.unwrap_or(0) {
        r.skip(8 + 8)?; // an aborted transaction's producer id and first offset
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
    // The rest of the response answers partitions a single fetch did not ask for.
    Ok(Some(a))
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

    #[test]
    fn a_single_fetch_is_written_as_kafka_protocol_writes_it() {
        let mut v = Values(1);
        for version in VERSIONS {
            for _ in 0..20 {
                let fetch = SingleFetch {
                    replica_id: v.i32(),
                    topic: ["events", "__cluster_metadata", "t"][v.next() as usize % 3],
                    partition: v.i32(),
                    current_leader_epoch: if version >= 9 { v.i32() } else { -1 },
                    fetch_offset: v.i64(),
                    last_fetched_epoch: if version >= 12 { v.i32() } else { -1 },
                    max_wait_ms: v.i32(),
                    max_bytes: v.i32(),
                };
                let mut p = FetchPartition::default();
                p.partition = fetch.partition;
                p.current_leader_epoch = fetch.current_leader_epoch;
                p.fetch_offset = fetch.fetch_offset;
                p.last_fetched_epoch = fetch.last_fetched_epoch;
                p.partition_max_bytes = fetch.max_bytes;
                let mut t = FetchTopic::default();
                t.topic = TopicName(StrBytes::from_string(fetch.topic.to_owned()));
                t.partitions = vec![p];
                let mut r = FetchRequest::default();
                r.replica_id = fetch.replica_id.into();
                r.max_wait_ms = fetch.max_wait_ms;
                r.min_bytes = 1;
                r.max_bytes = fetch.max_bytes;
                r.topics = vec![t];
                let mut ours = BytesMut::new();
                fetch.encode(&mut ours, version);
                assert_eq!(ours, kafka_encode(&r, version), "version {version}");
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
                let query = FetchQuery {
                    replica_id: 1,
                    max_wait_ms: 0,
                    partitions,
                };
                let mut ours = BytesMut::new();
                encode_response(&query, &answers, version, &mut ours);
                assert_eq!(ours, kafka_encode(&expected, version), "version {version}");
            }
        }
    }

    #[test]
    fn an_answer_is_read_as_kafka_protocol_wrote_it() {
        let mut v = Values(4);
        for version in VERSIONS {
            for _ in 0..30 {
                let index = v.i32();
                let a = answer(&mut v, version, index);
                let mut p = kafka_partition(&a, version);
                if v.chance() {
                    let mut aborted = AbortedTransaction::default();
                    aborted.producer_id = v.i64().into();
                    aborted.first_offset = v.i64();
                    p.aborted_transactions = Some(vec![aborted.clone(), aborted]);
                } else if v.chance() {
                    p.aborted_transactions = None;
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
                let mut wire = kafka_encode(&response, version).freeze();
                let read = decode_single(&mut wire, version)
                    .unwrap_or_else(|e| panic!("version {version}: {e}"));
                assert_eq!(read, Some(a), "version {version}");
            }
            let mut empty = kafka_encode(&FetchResponse::default(), version).freeze();
            assert_eq!(decode_single(&mut empty, version), Ok(None));
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
            SingleFetch {
                replica_id: 1,
                topic: "events",
                partition: 0,
                current_leader_epoch: 2,
                fetch_offset: 10,
                last_fetched_epoch: 2,
                max_wait_ms: 500,
                max_bytes: 1 << 20,
            }
            .encode(&mut buf, version);
            buf.freeze()
        };
        let mut query = FetchQuery::default();
        assert!(decode_request(&mut request.clone(), version, &mut query).is_ok());
        for cut in 0..request.len() {
            let mut short = request.slice(..cut);
            let read = decode_request(&mut short, version, &mut query);
            assert!(read.is_err(), "cut at {cut}");
        }
        // The last two bytes, the topic's and the response's tagged-field counts, come after the
        // one partition a single fetch reads.
        for cut in 0..whole.len() {
            let read = decode_single(&mut whole.slice(..cut), version);
            if cut < whole.len() - 2 {
                assert!(read.is_err(), "cut at {cut}: {read:?}");
            } else {
                assert_eq!(read, Ok(Some(a.clone())), "cut at {cut}");
            }
        }
    }
}
