//! Kafka's v2 record batch, as it sits in a log segment and on the wire.
//!
//! The broker never decodes the records inside a batch: it reads the 61-byte header, checks the
//! CRC32C (which covers everything from `attributes` on), and stamps `base_offset` and
//! `partition_leader_epoch`, which lie outside the CRC so that stamping needs no re-hash.
//! Clients build and read uncompressed batches here, in the format `kafka-protocol` writes and reads
//! (the tests hold the two to each other); compressed ones go through that crate.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::records::RecordBatchDecoder;

pub const HEADER_LEN: usize = 61;
const LENGTH_OFFSET: usize = 8;
const EPOCH_OFFSET: usize = 12;
const MAGIC_OFFSET: usize = 16;
const CRC_OFFSET: usize = 17;
const ATTRIBUTES_OFFSET: usize = 21;
/// The CRC covers a batch from here to its end.
pub const CRC_COVERED_FROM: usize = ATTRIBUTES_OFFSET;
const LAST_OFFSET_DELTA_OFFSET: usize = 23;
const PRODUCER_ID_OFFSET: usize = 43;
const PRODUCER_EPOCH_OFFSET: usize = 51;
const BASE_SEQUENCE_OFFSET: usize = 53;

/// The header fields of one batch that replication needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Length of the whole batch in bytes, header included.
    pub size: usize,
    pub leader_epoch: i32,
    pub crc: u32,
    pub last_offset_delta: i32,
    /// An idempotent producer's id, or -1.
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The first record's sequence number for its producer and partition, or -1.
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction (attribute bit 4).
    pub transactional: bool,
    /// A control batch's marker: the end of its producer's transaction on this partition.
    pub control: Option<Marker>,
    /// A marker's coordinator epoch (the transaction state partition's leader epoch of the
    /// coordinator that wrote it); -1 for any other batch.
    pub coordinator_epoch: i32,
}

/// How a transaction ended on a partition: the control record a coordinator has written there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Marker {
    Abort,
    Commit,
}

impl Marker {
    /// The control record type Kafka writes: 0 abort, 1 commit.
    fn wire_type(self) -> i16 {
        match self {
            Marker::Abort => 0,
            Marker::Commit => 1,
        }
    }
}

/// Attribute bits of a v2 batch.
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

impl BatchHeader {
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than the header or the declared length: a torn tail.
    Truncated,
    BadMagic(i8),
    BadLength(i32),
    /// The stored CRC does not match the bytes: corruption.
    CrcMismatch {
        stored: u32,
        computed: u32,
    },
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::Truncated => write!(f, "batch truncated"),
            BatchError::BadMagic(m) => write!(f, "unsupported batch magic {m}"),
            BatchError::BadLength(l) => write!(f, "bad batch length {l}"),
            BatchError::CrcMismatch { stored, computed } => {
                write!(
                    f,
                    "crc mismatch: stored {stored:#010x}, computed {computed:#010x}"
                )
            }
        }
    }
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

/// Reads and checks the batch at the front of `bytes` (which may hold more batches after it).
pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
    if bytes.len() < HEADER_LEN {
        return Err(BatchError::Truncated);
    }
    let declared = be_i32(bytes, LENGTH_OFFSET);
    if declared < (HEADER_LEN - EPOCH_OFFSET) as i32 {
        return Err(BatchError::BadLength(declared));
    }
    let size = EPOCH_OFFSET + declared as usize;
    if bytes.len() < size {
        return Err(BatchError::Truncated);
    }
    let magic = bytes[MAGIC_OFFSET] as i8;
    if magic != 2 {
        return Err(BatchError::BadMagic(magic));
    }
    let stored = u32::from_be_bytes(
        bytes[CRC_OFFSET..CRC_OFFSET + 4]
            .try_into()
            .expect("4 bytes"),
    );
    let computed = crate::crc::crc32c(&bytes[ATTRIBUTES_OFFSET..size]);
    if stored != computed {
        return Err(BatchError::CrcMismatch { stored, computed });
    }
    let attributes = i16::from_be_bytes([bytes[ATTRIBUTES_OFFSET], bytes[ATTRIBUTES_OFFSET + 1]]);
    let marker = (attributes & CONTROL_BIT != 0)
        .then(|| control_marker(&bytes[..size]))
        .flatten();
    Ok(BatchHeader {
        base_offset: i64::from_be_bytes(bytes[0..8].try_into().expect("8 bytes")),
        size,
        leader_epoch: be_i32(bytes, EPOCH_OFFSET),
        crc: stored,
        last_offset_delta: be_i32(bytes, LAST_OFFSET_DELTA_OFFSET),
        producer_id: i64::from_be_bytes(
            bytes[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8]
                .try_into()
                .expect("8 bytes"),
        ),
        producer_epoch: i16::from_be_bytes(
            bytes[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2]
                .try_into()
                .expect("2 bytes"),
        ),
        base_sequence: be_i32(bytes, BASE_SEQUENCE_OFFSET),
        transactional: attributes & TRANSACTIONAL_BIT != 0,
        control: marker.map(|(m, _)| m),
        coordinator_epoch: marker.map_or(-1, |(_, e)| e),
    })
}

/// The marker of a control batch and its coordinator epoch, read from its first record's key
/// (version, then type) and value (version, then coordinator epoch). A control record of a type
/// other than commit or abort marks nothing here.
fn control_marker(batch: &[u8]) -> Option<(Marker, i32)> {
    let mut at = HEADER_LEN;
    varint(batch, &mut at).ok()?; // record length
    at += 1; // attributes
    varint(batch, &mut at).ok()?; // timestamp delta
    varint(batch, &mut at).ok()?; // offset delta
    let key_len = usize::try_from(varint(batch, &mut at).ok()?).ok()?;
    if key_len < 4 || at + key_len > batch.len() {
        return None;
    }
    let marker = match i16::from_be_bytes([batch[at + 2], batch[at + 3]]) {
        0 => Marker::Abort,
        1 => Marker::Commit,
        _ => return None,
    };
    at += key_len;
    let value_len = varint(batch, &mut at).ok()?;
    let epoch = if value_len >= 6 && at + 6 <= batch.len() {
        be_i32(batch, at + 2)
    } else {
        -1
    };
    Some((marker, epoch))
}

/// Splits a buffer of whole batches, stopping at the first bad one. Returns the good headers and
/// the error that stopped the split, if any.
pub fn parse_all(bytes: &[u8]) -> (Vec<BatchHeader>, Option<BatchError>) {
    let mut good = Vec::new();
    let error = parse_all_into(bytes, &mut good);
    (good, error)
}

/// `parse_all` into `good`, which it clears first: a caller that parses often keeps its room.
pub fn parse_all_into(bytes: &[u8], good: &mut Vec<BatchHeader>) -> Option<BatchError> {
    good.clear();
    for h in headers(bytes) {
        match h {
            Ok(h) => good.push(h),
            Err(e) => return Some(e),
        }
    }
    None
}

/// The headers of a buffer of whole batches, in order, ending after the first bad one (its error).
pub fn headers(bytes: &[u8]) -> impl Iterator<Item = Result<BatchHeader, BatchError>> + '_ {
    let mut at = 0;
    let mut failed = false;
    std::iter::from_fn(move || {
        if failed || at >= bytes.len() {
            return None;
        }
        let h = parse(&bytes[at..]);
        match &h {
            Ok(h) => at += h.size,
            Err(_) => failed = true,
        }
        Some(h)
    })
}

/// Marks a batch as an idempotent producer's: its id, epoch and first sequence number, as the
/// producer writes them. They are covered by the CRC, which is computed again.
pub fn set_producer(batch: &mut [u8], producer_id: i64, producer_epoch: i16, base_sequence: i32) {
    assert!(batch.len() >= HEADER_LEN);
    batch[PRODUCER_ID_OFFSET..PRODUCER_ID_OFFSET + 8].copy_from_slice(&producer_id.to_be_bytes());
    batch[PRODUCER_EPOCH_OFFSET..PRODUCER_EPOCH_OFFSET + 2]
        .copy_from_slice(&producer_epoch.to_be_bytes());
    batch[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4]
        .copy_from_slice(&base_sequence.to_be_bytes());
    seal(batch);
}

/// Marks a batch as part of its producer's transaction; call before `set_producer`, which seals it.
pub fn set_transactional(batch: &mut [u8]) {
    assert!(batch.len() >= HEADER_LEN);
    let at = ATTRIBUTES_OFFSET;
    let attributes = i16::from_be_bytes([batch[at], batch[at + 1]]) | TRANSACTIONAL_BIT;
    batch[at..at + 2].copy_from_slice(&attributes.to_be_bytes());
    seal(batch);
}

/// A control batch that ends `producer_id`'s transaction on a partition, as a coordinator of
/// `coordinator_epoch` asks the partition's leader to write it: one record, keyed by the marker.
pub fn encode_marker(
    producer_id: i64,
    producer_epoch: i16,
    marker: Marker,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Bytes {
    let mut key = BytesMut::with_capacity(4);
    key.put_i16(0);
    key.put_i16(marker.wire_type());
    let mut value = BytesMut::with_capacity(6);
    value.put_i16(0);
    value.put_i32(coordinator_epoch);
    let mut batch = encode(&[(Some(key.freeze()), value.freeze())], timestamp).to_vec();
    let at = ATTRIBUTES_OFFSET;
    batch[at..at + 2].copy_from_slice(&(CONTROL_BIT | TRANSACTIONAL_BIT).to_be_bytes());
    set_producer(&mut batch, producer_id, producer_epoch, -1);
    Bytes::from(batch)
}

/// Writes the CRC of a whole batch, whose CRC-covered bytes are final.
fn seal(batch: &mut [u8]) {
    let crc = crate::crc::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Stamps the fields the leader assigns. Neither is covered by the CRC.
pub fn stamp(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    assert!(batch.len() >= HEADER_LEN);
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[EPOCH_OFFSET..EPOCH_OFFSET + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Encodes values as one uncompressed batch at offset 0; the leader stamps the real offset. The
/// bytes are what `kafka-protocol`'s encoder writes for the same records (a test holds them to
/// it); writing them directly saves that encoder's per-record structures on every send.
pub fn encode(entries: &[(Option<Bytes>, Bytes)], timestamp: i64) -> Bytes {
    assert!(!entries.is_empty(), "a batch holds at least one record");
    let body: usize = entries
        .iter()
        .map(|(k, v)| 5 + 16 + k.as_ref().map_or(0, Bytes::len) + v.len())
        .sum();
    let mut buf = BytesMut::with_capacity(HEADER_LEN + body);
    buf.put_i64(0);
    buf.put_i32(0); // length, filled in below
    buf.put_i32(-1); // partition leader epoch, stamped by the leader
    buf.put_i8(2);
    buf.put_u32(0); // CRC, filled in below
    buf.put_i16(0); // attributes: no compression, creation time, not transactional
    buf.put_i32(entries.len() as i32 - 1);
    buf.put_i64(timestamp);
    buf.put_i64(timestamp);
    buf.put_i64(-1); // producer id
    buf.put_i16(-1); // producer epoch
    buf.put_i32(0); // base sequence
    buf.put_i32(entries.len() as i32);
    // Each record goes straight into the batch, its length worked out first for the varint
    // that leads it.
    for (i, (key, value)) in entries.iter().enumerate() {
        let (index, index_used) = varint_bytes(i as i64);
        let key_len = key.as_ref().map_or(-1, |k| k.len() as i64);
        let (key_len, key_used) = varint_bytes(key_len);
        let (value_len, value_used) = varint_bytes(value.len() as i64);
        let length = 1 // attributes
            + 1 // timestamp delta, 0
            + index_used
            + key_used
            + key.as_ref().map_or(0, Bytes::len)
            + value_used
            + value.len()
            + 1; // headers, 0
        let (length, length_used) = varint_bytes(length as i64);
        buf.put_slice(&length[..length_used]);
        buf.put_u8(0); // attributes
        buf.put_u8(0); // timestamp delta
        buf.put_slice(&index[..index_used]);
        buf.put_slice(&key_len[..key_used]);
        if let Some(k) = key {
            buf.put_slice(k);
        }
        buf.put_slice(&value_len[..value_used]);
        buf.put_slice(value);
        buf.put_u8(0); // headers
    }
    let length = (buf.len() - EPOCH_OFFSET) as i32;
    buf[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&length.to_be_bytes());
    seal(&mut buf);
    buf.freeze()
}

/// A zigzag varint, as Kafka's records use for lengths and deltas: its bytes and how many.
fn varint_bytes(value: i64) -> ([u8; 10], usize) {
    let mut out = [0u8; 10];
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    let mut used = 0;
    while v >= 0x80 {
        out[used] = (v as u8) | 0x80;
        v >>= 7;
        used += 1;
    }
    out[used] = v as u8;
    (out, used + 1)
}

/// Reads a zigzag varint at `*at`, moving past it.
fn varint(bytes: &[u8], at: &mut usize) -> Result<i64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at).ok_or("record cut short")?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok((v >> 1) as i64 ^ -((v & 1) as i64));
        }
    }
    Err("varint longer than 10 bytes".into())
}

/// One record as a client sees it.
pub type DecodedRecord = (i64, Option<Bytes>, Option<Bytes>);

/// Attribute bits that send a batch to `kafka-protocol`'s decoder: compression and control.
const COMPRESSION_OR_CONTROL: i16 = 0x07 | 0x20;

/// Decodes every record of every batch in `bytes` into (offset, key, value). Each batch's CRC is
/// checked. Uncompressed batches are read here, keys and values as slices of `bytes`; compressed
/// and control batches (real clients send them) go through `kafka-protocol`.
pub fn decode(bytes: Bytes) -> Result<Vec<DecodedRecord>, String> {
    decode_where(bytes, |_| true)
}

/// A record's key or value at `pos` (its length, then its bytes; `None` for length -1), within
/// the record that ends at `end`. Inlined: it runs twice for every record a reader decodes.
#[inline(always)]
fn record_field(batch: &Bytes, pos: &mut usize, end: usize) -> Result<Option<Bytes>, String> {
    let len = varint(batch, pos)?;
    if len < 0 {
        return Ok(None);
    }
    let start = *pos;
    let stop = start
        .checked_add(len as usize)
        .filter(|stop| *stop <= end)
        .ok_or("record field past its record")?;
    *pos = stop;
    Ok(Some(batch.slice(start..stop)))
}

/// `decode`, of the batches `keep` takes, in order. Control batches are never records to a
/// reader: they are skipped, after `keep` has seen them (a read_committed reader learns from them
/// where an aborted transaction ends).
pub fn decode_where(
    bytes: Bytes,
    mut keep: impl FnMut(&BatchHeader) -> bool,
) -> Result<Vec<DecodedRecord>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    for header in headers(&bytes) {
        let header = header.map_err(|e| e.to_string())?;
        let batch = bytes.slice(at..at + header.size);
        at += header.size;
        let attributes =
            i16::from_be_bytes([batch[ATTRIBUTES_OFFSET], batch[ATTRIBUTES_OFFSET + 1]]);
        if !keep(&header) || attributes & CONTROL_BIT != 0 {
            continue;
        }
        if attributes & COMPRESSION_OR_CONTROL != 0 {
            let mut buf = batch;
            let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(|e| e.to_string())?;
            out.extend(
                sets.into_iter()
                    .flat_map(|s| s.records)
                    .map(|r| (r.offset, r.key, r.value)),
            );
            continue;
        }
        let count = be_i32(&batch, HEADER_LEN - 4);
        let mut pos = HEADER_LEN;
        for _ in 0..count.max(0) {
            let length = varint(&batch, &mut pos)?;
            let end = usize::try_from(length)
                .ok()
                .and_then(|l| pos.checked_add(l))
                .filter(|end| *end <= batch.len())
                .ok_or("record length past its batch")?;
            pos += 1; // attributes
            varint(&batch, &mut pos)?; // timestamp delta
            let offset_delta = varint(&batch, &mut pos)?;
            let key = record_field(&batch, &mut pos, end)?;
            let value = record_field(&batch, &mut pos, end)?;
            // Headers are skipped: clients here read none.
            pos = end;
            out.push((header.base_offset + offset_delta, key, value));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamped_batch_keeps_its_crc_and_decodes_at_the_new_offset() {
        let raw = encode(
            &[
                (None, Bytes::from_static(b"a")),
                (None, Bytes::from_static(b"b")),
            ],
            7,
        );
        let mut bytes = raw.to_vec();
        let before = parse(&bytes).unwrap();
        assert_eq!(before.last_offset_delta, 1);
        stamp(&mut bytes, 40, 3);
        let after = parse(&bytes).unwrap();
        assert_eq!(
            (after.base_offset, after.leader_epoch, after.crc),
            (40, 3, before.crc)
        );
        let records = decode(Bytes::from(bytes)).unwrap();
        assert_eq!(
            records.iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![40, 41]
        );
    }

    #[test]
    fn a_flipped_bit_is_caught_by_the_crc() {
        let mut bytes = encode(&[(None, Bytes::from_static(b"value"))], 1).to_vec();
        let last = bytes.len() - 1;
        bytes[last] ^= 0x10;
        assert!(matches!(parse(&bytes), Err(BatchError::CrcMismatch { .. })));
    }

    #[test]
    fn a_torn_tail_is_reported_as_truncated() {
        let bytes = encode(&[(None, Bytes::from_static(b"value"))], 1);
        assert_eq!(parse(&bytes[..bytes.len() - 3]), Err(BatchError::Truncated));
        let (good, err) = parse_all(&[bytes.to_vec(), bytes[..20].to_vec()].concat());
        assert_eq!(good.len(), 1);
        assert_eq!(err, Some(BatchError::Truncated));
    }

    /// The batch as `kafka-protocol`'s encoder writes it, with `compression`: the reference for
    /// `encode`, and a compressed batch of the kind real clients send.
    fn reference(
        entries: &[(Option<Bytes>, Bytes)],
        timestamp: i64,
        compression: kafka_protocol::records::Compression,
    ) -> Vec<u8> {
        use kafka_protocol::indexmap::IndexMap;
        use kafka_protocol::records::{
            Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
        };
        let records: Vec<Record> = entries
            .iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: -1,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp,
                key: key.clone(),
                value: Some(value.clone()),
                headers: IndexMap::new(),
            })
            .collect();
        let mut buf = BytesMut::new();
        let options = RecordEncodeOptions {
            version: 2,
            compression,
        };
        RecordBatchEncoder::encode(&mut buf, &records, &options).unwrap();
        buf.to_vec()
    }

    #[test]
    fn batches_are_byte_for_byte_what_kafka_protocol_writes_and_read_back_alike() {
        let long = Bytes::from(vec![b'x'; 300]);
        type Entries = Vec<(Option<Bytes>, Bytes)>;
        let cases: Vec<(Entries, i64)> = vec![
            (vec![(None, Bytes::from_static(b"17"))], 0),
            (
                vec![(
                    Some(Bytes::from_static(b"user-3")),
                    Bytes::from_static(b"42"),
                )],
                123_456,
            ),
            (
                (0..200)
                    .map(|i| (None, Bytes::from(format!("value-{i}"))))
                    .collect(),
                1_700_000_000_000,
            ),
            (
                vec![(Some(Bytes::new()), long.clone()), (None, Bytes::new())],
                -1,
            ),
        ];
        for (entries, timestamp) in cases {
            let ours = encode(&entries, timestamp);
            let plain = kafka_protocol::records::Compression::None;
            assert_eq!(ours.to_vec(), reference(&entries, timestamp, plain));
            let mut stamped = ours.to_vec();
            stamp(&mut stamped, 1000, 4);
            let stamped = Bytes::from(stamped);
            let theirs: Vec<DecodedRecord> = RecordBatchDecoder::decode_all(&mut stamped.clone())
                .unwrap()
                .into_iter()
                .flat_map(|s| s.records)
                .map(|r| (r.offset, r.key, r.value))
                .collect();
            assert_eq!(decode(stamped).unwrap(), theirs);
        }
    }

    #[test]
    fn a_compressed_batch_is_read_through_kafka_protocol() {
        let entries: Vec<(Option<Bytes>, Bytes)> = (0..3)
            .map(|i| (None, Bytes::from(format!("v{i}"))))
            .collect();
        let gzip = kafka_protocol::records::Compression::Gzip;
        let compressed = reference(&entries, 5, gzip);
        let plain = encode(&[(None, Bytes::from_static(b"after"))], 5);
        let mut both = compressed;
        let mut second = plain.to_vec();
        stamp(&mut second, 3, 0);
        both.extend_from_slice(&second);
        let decoded = decode(Bytes::from(both)).unwrap();
        let values: Vec<_> = decoded
            .iter()
            .map(|r| (r.0, r.2.clone().unwrap()))
            .collect();
        assert_eq!(
            values,
            vec![
                (0, Bytes::from_static(b"v0")),
                (1, Bytes::from_static(b"v1")),
                (2, Bytes::from_static(b"v2")),
                (3, Bytes::from_static(b"after")),
            ]
        );
    }

    #[test]
    fn a_record_that_claims_more_than_its_batch_is_refused_not_read_past() {
        let mut bytes = encode(&[(None, Bytes::from_static(b"value"))], 1).to_vec();
        // The record's length varint, just after the header: claim 60 bytes (zigzag 120).
        bytes[HEADER_LEN] = 120;
        seal(&mut bytes);
        assert!(decode(Bytes::from(bytes)).is_err());
    }
}
