//! Kafka's v2 record batch, as it sits in a log segment and on the wire.
//!
//! The broker never decodes the records inside a batch: it reads the 61-byte header, checks the
//! CRC32C (which covers everything from `attributes` on), and stamps `base_offset` and
//! `partition_leader_epoch`, which lie outside the CRC so that stamping needs no re-hash.
//! Clients build and read the records with the `kafka-protocol` crate.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

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
}

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
    let computed = crc32c::crc32c(&bytes[ATTRIBUTES_OFFSET..size]);
    if stored != computed {
        return Err(BatchError::CrcMismatch { stored, computed });
    }
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
    })
}

/// Splits a buffer of whole batches, stopping at the first bad one. Returns the good headers and
/// the error that stopped the walk, if any.
pub fn parse_all(bytes: &[u8]) -> (Vec<BatchHeader>, Option<BatchError>) {
    let mut headers = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        match parse(&bytes[at..]) {
            Ok(h) => {
                at += h.size;
                headers.push(h);
            }
            Err(e) => return (headers, Some(e)),
        }
    }
    (headers, None)
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
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Stamps the fields the leader assigns. Neither is covered by the CRC.
pub fn stamp(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    assert!(batch.len() >= HEADER_LEN);
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[EPOCH_OFFSET..EPOCH_OFFSET + 4].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Encodes values as one uncompressed batch at offset 0; the leader stamps the real offset.
pub fn encode(entries: &[(Option<Bytes>, Bytes)], timestamp: i64) -> Bytes {
    assert!(!entries.is_empty(), "a batch holds at least one record");
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
            // A sequence per record keeps the encoder from splitting the batch per record.
            sequence: i as i32,
            timestamp,
            key: key.clone(),
            value: Some(value.clone()),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encoding in-memory records cannot fail");
    buf.freeze()
}

/// One record as a client sees it.
pub type DecodedRecord = (i64, Option<Bytes>, Option<Bytes>);

/// Decodes every record of every batch in `bytes` into (offset, key, value).
pub fn decode(bytes: Bytes) -> Result<Vec<DecodedRecord>, String> {
    let mut buf = bytes;
    let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(|e| e.to_string())?;
    Ok(sets
        .into_iter()
        .flat_map(|s| s.records)
        .map(|r| (r.offset, r.key, r.value))
        .collect())
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
}
