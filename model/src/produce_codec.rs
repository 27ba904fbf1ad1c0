//! Produce requests and responses, read and written by hand, as `fetch_codec` does for fetches
//! and for the same reason: every acknowledged record crosses the wire in one. What they write is
//! byte for byte what `kafka-protocol` writes for the same values (the tests below hold them to
//! it).

use bytes::{BufMut, Bytes, BytesMut};

use crate::codec::{put_bytes, put_len, put_null_str, put_str, read_topics, write_topics, Reader};
use crate::TopicPartition;

/// The Produce versions this broker reads: those that carry record batches (v2 and older carry the
/// old message format); from 9 on, the message is flexible.
pub const VERSIONS: std::ops::RangeInclusive<i16> = 3..=9;
const FLEXIBLE: i16 = 9;

/// One partition's records in a produce request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProducePart {
    pub tp: TopicPartition,
    /// Whether this partition opens a topic of the request: the answer groups partitions as the
    /// request did.
    pub first_of_topic: bool,
    /// Empty when the request held none (null).
    pub records: Bytes,
}

/// A produce request, as the leader reads it: its partitions in the request's order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProduceQuery {
    /// A transactional producer's id: the leader asks its coordinator whether a batch that would
    /// open a transaction here belongs to one (KIP-890 part 1).
    pub transactional_id: Option<String>,
    pub acks: i16,
    pub timeout_ms: i32,
    pub partitions: Vec<ProducePart>,
}

/// The answer for one partition: the offset of its batch's first record, or an error code.
pub type ProduceAnswer = Result<i64, i16>;

/// A produce of one batch to one partition, as the one-shot client sends it.
pub struct SingleProduce<'a> {
    pub transactional_id: Option<&'a str>,
    pub topic: &'a str,
    pub partition: i32,
    pub acks: i16,
    pub timeout_ms: i32,
    pub records: &'a [u8],
}

impl SingleProduce<'_> {
    /// Writes the request's body at `version` (one of [`VERSIONS`]).
    pub fn encode(&self, buf: &mut BytesMut, version: i16) {
        let part = [(self.topic, self.partition, self.records)];
        let id = self.transactional_id;
        encode_parts(buf, version, id, self.acks, self.timeout_ms, &part);
    }
}

/// A produce of one batch to each of several partitions of one leader, as the producer's sender
/// sends it: Kafka's sender gathers every ready partition of a broker into one request.
pub struct MultiProduce<'a> {
    pub acks: i16,
    pub timeout_ms: i32,
    /// (topic, partition, batch). Neighbours with the same topic are written as one topic entry,
    /// so a caller that wants one entry per topic lists a topic's partitions together.
    pub parts: &'a [(&'a str, i32, &'a [u8])],
}

impl MultiProduce<'_> {
    /// Writes the request's body at `version` (one of [`VERSIONS`]).
    pub fn encode(&self, buf: &mut BytesMut, version: i16) {
        encode_parts(buf, version, None, self.acks, self.timeout_ms, self.parts);
    }
}

/// Writes a produce request's body: the transactional id, then `parts` grouped by runs of one
/// topic.
fn encode_parts(
    buf: &mut BytesMut,
    version: i16,
    transactional_id: Option<&str>,
    acks: i16,
    timeout_ms: i32,
    parts: &[(&str, i32, &[u8])],
) {
    let flexible = version >= FLEXIBLE;
    match transactional_id {
        Some(id) => put_str(buf, id, flexible),
        None => put_null_str(buf, flexible),
    }
    buf.put_i16(acks);
    buf.put_i32(timeout_ms);
    let opens = |i: usize| i == 0 || parts[i - 1].0 != parts[i].0;
    put_len(
        buf,
        (0..parts.len()).filter(|i| opens(*i)).count(),
        flexible,
    );
    for (i, (topic, partition, records)) in parts.iter().enumerate() {
        if opens(i) {
            put_str(buf, topic, flexible);
            let run = parts[i..].iter().take_while(|p| p.0 == *topic).count();
            put_len(buf, run, flexible);
        }
        buf.put_i32(*partition);
        put_bytes(buf, records, flexible);
        if flexible {
            buf.put_u8(0); // the partition's tags
        }
        let closes = i + 1 == parts.len() || parts[i + 1].0 != *topic;
        if flexible && closes {
            buf.put_u8(0); // the topic's tags
        }
    }
    if flexible {
        buf.put_u8(0); // the request's tags
    }
}

/// Reads a produce request's body at `version` into `query`, whose partitions' room and first
/// topic name it reuses, as `fetch_codec::decode_request` does.
pub fn decode_request(
    buf: &mut Bytes,
    version: i16,
    query: &mut ProduceQuery,
) -> Result<(), String> {
    if !VERSIONS.contains(&version) {
        return Err(format!("produce version {version} is not read"));
    }
    let flexible = version >= FLEXIBLE;
    let mut r = Reader(buf);
    let known = query.partitions.first().map(|p| p.tp.topic.clone());
    query.partitions.clear();
    query.transactional_id = match r.nullable_size(flexible, 2)? {
        None => None,
        Some(n) => {
            r.need(n)?;
            let id = r.0.split_to(n);
            Some(String::from_utf8(id.to_vec()).map_err(|e| format!("transactional id: {e}"))?)
        }
    };
    query.acks = r.i16()?;
    query.timeout_ms = r.i32()?;
    let partitions = &mut query.partitions;
    read_topics(&mut r, flexible, known.as_ref(), |r, topic, first| {
        let partition = r.i32()?;
        partitions.push(ProducePart {
            tp: TopicPartition::new(topic.clone(), partition),
            first_of_topic: first,
            records: r.nullable_bytes(flexible)?.unwrap_or_default(),
        });
        Ok(())
    })?;
    r.tagged_fields(flexible)
}

/// Writes the answer to `query` at `version`: `answers` follow its partitions, one for each.
pub fn encode_response(
    query: &ProduceQuery,
    answers: &[ProduceAnswer],
    version: i16,
    buf: &mut BytesMut,
) {
    debug_assert_eq!(query.partitions.len(), answers.len());
    let flexible = version >= FLEXIBLE;
    let parts = &query.partitions;
    write_topics(
        buf,
        parts,
        flexible,
        |p| p.first_of_topic,
        |p| &p.tp.topic,
        |buf, i| {
            let (error_code, base_offset) = match answers[i] {
                Ok(base_offset) => (0, base_offset),
                Err(code) => (code, -1),
            };
            buf.put_i32(parts[i].tp.partition);
            buf.put_i16(error_code);
            buf.put_i64(base_offset);
            buf.put_i64(-1); // log append time: the records carry create times
            if version >= 5 {
                buf.put_i64(-1); // log start offset
            }
            if version >= 8 {
                put_len(buf, 0, flexible); // record errors
                put_null_str(buf, flexible); // the error message
            }
            if flexible {
                buf.put_u8(0);
            }
        },
    );
    buf.put_i32(0); // throttle time
    if flexible {
        buf.put_u8(0);
    }
}

/// Reads a produce response's body at `version` and returns its first partition's error code and
/// base offset, the answer to a [`SingleProduce`]; `None` when it has none.
pub fn decode_single(buf: &mut Bytes, version: i16) -> Result<Option<(i16, i64)>, String> {
    let flexible = version >= FLEXIBLE;
    let mut r = Reader(buf);
    if !r.enter_first_partition(flexible)? {
        return Ok(None);
    }
    r.skip(4)?; // the partition's index
    let error_code = r.i16()?;
    let base_offset = r.i64()?;
    // The rest answers what a single produce did not ask.
    Ok(Some((error_code, base_offset)))
}

/// One partition's answer in a produce response: its topic and partition, and the batch's base
/// offset or the error code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartitionProduced {
    pub topic: String,
    pub partition: i32,
    pub answer: ProduceAnswer,
}

/// Reads a produce response's body at `version` and returns every partition's answer, in the
/// response's order: the answer to a [`MultiProduce`].
pub fn decode_all(buf: &mut Bytes, version: i16) -> Result<Vec<PartitionProduced>, String> {
    let flexible = version >= FLEXIBLE;
    let mut r = Reader(buf);
    let mut out = Vec::new();
    for _ in 0..r.len(flexible)? {
        let topic = r.peek_str(flexible)?.to_owned();
        r.skip(topic.len())?;
        for _ in 0..r.len(flexible)? {
            let partition = r.i32()?;
            let error_code = r.i16()?;
            let base_offset = r.i64()?;
            r.skip(8)?; // log append time
            if version >= 5 {
                r.skip(8)?; // log start offset
            }
            if version >= 8 {
                for _ in 0..r.len(flexible)? {
                    r.skip(4)?; // the record's index in its batch
                    if let Some(n) = r.nullable_size(flexible, 2)? {
                        r.skip(n)?;
                    }
                    r.tagged_fields(flexible)?;
                }
                if let Some(n) = r.nullable_size(flexible, 2)? {
                    r.skip(n)?;
                }
            }
            r.tagged_fields(flexible)?;
            let answer = if error_code == 0 {
                Ok(base_offset)
            } else {
                Err(error_code)
            };
            out.push(PartitionProduced {
                topic: topic.clone(),
                partition,
                answer,
            });
        }
        r.tagged_fields(flexible)?;
    }
    r.skip(4)?; // throttle time
    r.tagged_fields(flexible)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! `kafka-protocol` is the oracle, as for `fetch_codec`.

    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::produce_response::{
        BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};

    fn kafka_encode<T: Encodable>(message: &T, version: i16) -> Bytes {
        let mut buf = BytesMut::new();
        message
            .encode(&mut buf, version)
            .unwrap_or_else(|e| panic!("version {version}: {e}"));
        buf.freeze()
    }

    fn records(n: usize) -> Bytes {
        (0..n).map(|i| (i * 7) as u8).collect::<Vec<_>>().into()
    }

    #[test]
    fn a_single_produce_is_written_as_kafka_protocol_writes_it() {
        for version in VERSIONS {
            for (acks, n) in [(-1, 0), (1, 61), (0, 300)] {
                let batch = records(n);
                let produce = SingleProduce {
                    transactional_id: (acks == 1).then_some("txn-1"),
                    topic: "events",
                    partition: 2,
                    acks,
                    timeout_ms: 30_000,
                    records: &batch,
                };
                let mut data = PartitionProduceData::default();
                data.index = 2;
                data.records = Some(batch.clone());
                let mut topic = TopicProduceData::default();
                topic.name = TopicName(StrBytes::from_static_str("events"));
                topic.partition_data = vec![data];
                let mut request = ProduceRequest::default();
                request.transactional_id = produce
                    .transactional_id
                    .map(|id| StrBytes::from_string(id.to_owned()).into());
                request.acks = acks;
                request.timeout_ms = 30_000;
                request.topic_data = vec![topic];
                let mut ours = BytesMut::new();
                produce.encode(&mut ours, version);
                assert_eq!(ours.freeze(), kafka_encode(&request, version), "v{version}");
            }
        }
    }

    #[test]
    fn a_multi_partition_produce_is_written_as_kafka_protocol_writes_it() {
        for version in VERSIONS {
            let batches: Vec<Bytes> = (0..4).map(|i| records(10 * i + 1)).collect();
            let parts = [
                ("a", 0, &batches[0][..]),
                ("a", 3, &batches[1][..]),
                ("b", 1, &batches[2][..]),
                ("a", 2, &batches[3][..]),
            ];
            let produce = MultiProduce {
                acks: -1,
                timeout_ms: 3000,
                parts: &parts,
            };
            let mut request = ProduceRequest::default();
            request.acks = -1;
            request.timeout_ms = 3000;
            for (topic, partitions) in [("a", &parts[..2]), ("b", &parts[2..3]), ("a", &parts[3..])]
            {
                let mut t = TopicProduceData::default();
                t.name = TopicName(StrBytes::from_static_str(topic));
                for (_, partition, batch) in partitions {
                    let mut data = PartitionProduceData::default();
                    data.index = *partition;
                    data.records = Some(Bytes::copy_from_slice(batch));
                    t.partition_data.push(data);
                }
                request.topic_data.push(t);
            }
            let mut ours = BytesMut::new();
            produce.encode(&mut ours, version);
            assert_eq!(ours.freeze(), kafka_encode(&request, version), "v{version}");
        }
    }

    #[test]
    fn every_partitions_answer_is_read_as_kafka_protocol_wrote_it() {
        for version in VERSIONS {
            let mut response = ProduceResponse::default();
            response.throttle_time_ms = 7;
            let mut expected = Vec::new();
            for (topic, count) in [("a", 2), ("b", 3)] {
                let mut t = TopicProduceResponse::default();
                t.name = TopicName(StrBytes::from_static_str(topic));
                for i in 0..count {
                    let mut r = PartitionProduceResponse::default();
                    r.index = i;
                    r.log_append_time_ms = 11;
                    r.log_start_offset = 3;
                    let answer = if i == 1 {
                        r.error_code = 45;
                        r.base_offset = -1;
                        if version >= 8 {
                            let mut e = BatchIndexAndErrorMessage::default();
                            e.batch_index = 2;
                            e.batch_index_error_message = Some(StrBytes::from_static_str("gap"));
                            r.record_errors = vec![e];
                            r.error_message = Some(StrBytes::from_static_str("out of order"));
                        }
                        Err(45)
                    } else {
                        r.base_offset = 40 + i as i64;
                        Ok(40 + i as i64)
                    };
                    t.partition_responses.push(r);
                    expected.push(PartitionProduced {
                        topic: topic.to_owned(),
                        partition: i,
                        answer,
                    });
                }
                response.responses.push(t);
            }
            let mut wire = kafka_encode(&response, version);
            assert_eq!(decode_all(&mut wire, version), Ok(expected), "v{version}");
            assert!(wire.is_empty(), "v{version}: {} bytes unread", wire.len());
            let mut empty = kafka_encode(&ProduceResponse::default(), version);
            assert_eq!(decode_all(&mut empty, version), Ok(Vec::new()));
        }
    }

    #[test]
    fn a_produce_request_is_read_as_kafka_protocol_wrote_it() {
        // One query read into again and again, as a connection does.
        let mut query = ProduceQuery::default();
        for version in VERSIONS {
            let mut request = ProduceRequest::default();
            request.acks = -1;
            request.timeout_ms = 1500;
            let mut expected = Vec::new();
            for (topic, count) in [("a", 2), ("b", 1), ("a", 1), ("c", 0)] {
                let mut t = TopicProduceData::default();
                t.name = TopicName(StrBytes::from_static_str(topic));
                for i in 0..count {
                    let mut data = PartitionProduceData::default();
                    data.index = 10 + i as i32;
                    data.records = (i != 1).then(|| records(5 * i + 3));
                    if version >= 9 && i == 0 {
                        data.unknown_tagged_fields
                            .insert(3, Bytes::from_static(b"x"));
                    }
                    expected.push(ProducePart {
                        tp: TopicPartition::new(topic, data.index),
                        first_of_topic: i == 0,
                        records: data.records.clone().unwrap_or_default(),
                    });
                    t.partition_data.push(data);
                }
                request.topic_data.push(t);
            }
            let mut wire = kafka_encode(&request, version);
            decode_request(&mut wire, version, &mut query).expect("readable");
            assert_eq!(query.acks, -1);
            assert_eq!(query.timeout_ms, 1500);
            assert_eq!(query.partitions, expected, "v{version}");
            assert!(wire.is_empty(), "v{version}: {} bytes unread", wire.len());
            // A transactional id is passed over.
            request.transactional_id = Some(StrBytes::from_static_str("tx").into());
            let mut wire = kafka_encode(&request, version);
            decode_request(&mut wire, version, &mut query).expect("readable");
            assert_eq!(query.partitions, expected, "v{version}");
        }
        let mut old = Bytes::from_static(&[0xff, 0xff, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(decode_request(&mut old, 2, &mut query).is_err());
    }

    #[test]
    fn an_answer_is_written_as_kafka_protocol_writes_it_and_read_back() {
        for version in VERSIONS {
            let mut partitions = Vec::new();
            let mut answers = Vec::new();
            let mut expected = ProduceResponse::default();
            for (topic, count) in [("a", 2), ("b", 1), ("a", 3)] {
                let mut t = TopicProduceResponse::default();
                t.name = TopicName(StrBytes::from_static_str(topic));
                for i in 0..count {
                    let answer = if i == 1 { Err(6) } else { Ok(100 * i as i64) };
                    let mut r = PartitionProduceResponse::default();
                    r.index = i;
                    match answer {
                        Ok(offset) => r.base_offset = offset,
                        Err(code) => {
                            r.error_code = code;
                            r.base_offset = -1;
                        }
                    }
                    t.partition_responses.push(r);
                    partitions.push(ProducePart {
                        tp: TopicPartition::new(topic, i),
                        first_of_topic: i == 0,
                        records: Bytes::new(),
                    });
                    answers.push(answer);
                }
                expected.responses.push(t);
            }
            let query = ProduceQuery {
                transactional_id: None,
                acks: -1,
                timeout_ms: 0,
                partitions,
            };
            let mut ours = BytesMut::new();
            encode_response(&query, &answers, version, &mut ours);
            let mut ours = ours.freeze();
            assert_eq!(ours, kafka_encode(&expected, version), "v{version}");
            assert_eq!(decode_single(&mut ours, version), Ok(Some((0, 0))));

            // What a newer broker adds after the offsets is passed over.
            let mut first = expected.responses[0].partition_responses[1].clone();
            first.log_append_time_ms = 5;
            if version >= 8 {
                let mut e = BatchIndexAndErrorMessage::default();
                e.batch_index = 1;
                first.record_errors = vec![e];
                first.error_message = Some(StrBytes::from_static_str("no"));
            }
            let mut t = TopicProduceResponse::default();
            t.partition_responses = vec![first];
            let mut only = ProduceResponse::default();
            only.responses = vec![t];
            let mut wire = kafka_encode(&only, version);
            assert_eq!(decode_single(&mut wire, version), Ok(Some((6, -1))));
            let mut empty = kafka_encode(&ProduceResponse::default(), version);
            assert_eq!(decode_single(&mut empty, version), Ok(None));
        }
    }
}
