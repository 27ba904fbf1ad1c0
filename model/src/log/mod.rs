//! A partition's log: record batches in segment files with a sparse offset index, a leader-epoch
//! cache, and a high watermark. Recovery on open scans every segment, keeps the longest prefix of
//! whole batches whose CRCs hold and whose offsets follow on, and drops the rest.

pub mod checkpoint;
pub mod epoch_cache;
pub mod transactions;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::batch::{self, BatchHeader};
use crate::env::Disk;
use epoch_cache::{EpochCache, EpochEnd};
use transactions::Transactions;

/// One index entry every this many bytes of segment.
const INDEX_INTERVAL_BYTES: u64 = 4096;

/// Where one batch lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchMeta {
    pub base_offset: i64,
    pub last_offset: i64,
    pub leader_epoch: i32,
    pub crc: u32,
    pub segment: usize,
    pub position: u64,
    pub size: u32,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    /// Part of a transaction: its records are visible to read_committed readers only once a
    /// commit marker follows.
    pub transactional: bool,
    /// A control batch's marker.
    pub control: Option<batch::Marker>,
    /// A marker's coordinator epoch; -1 for any other batch.
    pub coordinator_epoch: i32,
}

impl BatchMeta {
    /// The sequence number of the batch's last record (sequences wrap at `i32::MAX`).
    pub fn last_sequence(&self) -> i32 {
        let count = (self.last_offset - self.base_offset) as i32;
        self.base_sequence.wrapping_add(count) & i32::MAX
    }
}

/// Where an idempotent producer's batch stands against what its producer already wrote here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sequence {
    /// Not idempotent, a producer unknown here, or the next batch in sequence: append it.
    New,
    /// Already in the log (a retry whose answer was lost): answer with where it went.
    Duplicate { base_offset: i64, last_offset: i64 },
    /// A gap, an old batch this log no longer remembers, or a newer epoch that does not start at
    /// sequence 0: refuse it.
    OutOfOrder,
    /// An epoch older than the producer's latest here: a batch of a producer that has since bumped
    /// its epoch (its sequences start again), which could only be written twice. Refuse it.
    Fenced,
}

/// How far back a retry is looked for; Kafka keeps five batches in flight per producer.
pub const DUPLICATE_LOOKBACK_BATCHES: usize = 5;

#[derive(Debug)]
struct Segment {
    base_offset: i64,
    size: u64,
    last_indexed_position: Option<u64>,
    /// The file names, made once: every append and read names the segment, and a sync ticket
    /// carries the name off without copying it.
    path: std::sync::Arc<str>,
    index_path: String,
}

impl Segment {
    fn new(dir: &str, base_offset: i64) -> Segment {
        Segment {
            base_offset,
            size: 0,
            last_indexed_position: None,
            path: segment_path(dir, base_offset).into(),
            index_path: index_path(dir, base_offset),
        }
    }
}

/// What recovery found when a log was opened.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    pub dropped_bytes: u64,
    pub reason: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum AppendError {
    /// A replicated batch does not start at the log end.
    OutOfOrder {
        expected: i64,
        found: i64,
    },
    Corrupt(String),
    Io(String),
}

impl std::fmt::Display for AppendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppendError::OutOfOrder { expected, found } => {
                write!(f, "batch at {found}, log end is {expected}")
            }
            AppendError::Corrupt(e) => write!(f, "corrupt batch: {e}"),
            AppendError::Io(e) => write!(f, "disk: {e}"),
        }
    }
}

pub struct Log {
    disk: Arc<dyn Disk>,
    dir: String,
    segment_bytes: u64,
    segments: Vec<Segment>,
    batches: Vec<BatchMeta>,
    epochs: EpochCache,
    log_end_offset: i64,
    /// Offsets below this are synced to disk.
    durable_end_offset: i64,
    high_watermark: i64,
    /// Segments written since their last sync.
    dirty_segments: Vec<usize>,
    /// Counts truncations, so a sync that straddles one can tell.
    truncations: u64,
    /// Each idempotent producer's last data batch, by index into `batches`.
    producers: BTreeMap<i64, usize>,
    /// Open and aborted transactions, and the last stable offset.
    transactions: Transactions,
    /// Room an append works in, kept between appends: every produce and every fetch appends.
    scratch: Scratch,
}

#[derive(Default)]
struct Scratch {
    /// A produce's batch, stamped with its offset and epoch.
    stamped: Vec<u8>,
    /// The headers of a fetch's batches, all read before any is appended.
    headers: Vec<BatchHeader>,
}

/// A sync in progress; see [`Log::sync_ticket`].
#[derive(Debug)]
pub struct SyncTicket {
    /// The first file to sync: nearly always the only one, and then the ticket allocates nothing.
    first: Option<std::sync::Arc<str>>,
    /// The others, when appends crossed into a new segment since the last sync.
    more: Vec<std::sync::Arc<str>>,
    pub end_offset: i64,
    truncations: u64,
}

impl SyncTicket {
    /// The files to sync.
    pub fn paths(&self) -> impl Iterator<Item = &std::sync::Arc<str>> {
        self.first.iter().chain(&self.more)
    }

    /// Whether `log` still holds what the ticket covers: a truncation since may have cut it.
    pub fn covers(&self, log: &Log) -> bool {
        self.truncations == log.truncations
    }
}

fn segment_path(dir: &str, base_offset: i64) -> String {
    format!("{dir}/{base_offset:020}.log")
}

fn index_path(dir: &str, base_offset: i64) -> String {
    format!("{dir}/{base_offset:020}.index")
}

fn epoch_checkpoint_path(dir: &str) -> String {
    format!("{dir}/leader-epoch-checkpoint")
}

impl Log {
    /// Opens (and recovers) the log under `dir`, creating it when absent.
    pub fn open(
        disk: Arc<dyn Disk>,
        dir: &str,
        segment_bytes: u64,
    ) -> std::io::Result<(Log, Recovery)> {
        let mut log = Log {
            disk: disk.clone(),
            dir: dir.to_owned(),
            segment_bytes,
            segments: Vec::new(),
            batches: Vec::new(),
            epochs: EpochCache::default(),
            log_end_offset: 0,
            durable_end_offset: 0,
            high_watermark: 0,
            dirty_segments: Vec::new(),
            truncations: 0,
            producers: BTreeMap::new(),
            transactions: Transactions::default(),
            scratch: Scratch::default(),
        };
        let mut recovery = Recovery::default();
        let mut paths: Vec<String> = disk
            .list(&format!("{dir}/"))?
            .into_iter()
            .filter(|p| p.ends_with(".log"))
            .collect();
        paths.sort();
        let mut broken = false;
        for path in paths {
            let base_offset = log.log_end_offset;
            if !broken && path != segment_path(dir, base_offset) {
                // The file does not start where the log ends: everything from here on is unusable.
                recovery.reason = Some(format!(
                    "{path}: segment does not start at offset {base_offset}"
                ));
                broken = true;
            }
            if broken {
                let mut len = 0;
                disk.read_with(&path, &mut |bytes| len = bytes.len() as u64)?;
                recovery.dropped_bytes += len;
                disk.remove(&path)?;
                let base = path
                    .trim_start_matches(&format!("{dir}/"))
                    .trim_end_matches(".log");
                let _ = disk.remove(&format!("{dir}/{base}.index"));
                continue;
            }
            let segment = log.segments.len();
            log.segments.push(Segment::new(dir, base_offset));
            // The file is scanned where it lies; what the scan finds wrong is mended after.
            let (mut position, mut len) = (0, 0);
            disk.read_with(&path, &mut |bytes| {
                len = bytes.len() as u64;
                (position, broken) = log.scan_segment(segment, &path, bytes, &mut recovery);
            })?;
            if position < len {
                recovery.dropped_bytes += len - position;
                disk.truncate(&path, position)?;
                broken = true;
            }
            log.segments[segment].size = position;
            log.rebuild_index(segment);
        }
        if log.segments.is_empty() {
            log.segments.push(Segment::new(dir, 0));
        }
        // The scan rebuilt the epoch cache from the batches themselves. The checkpoint adds only
        // what no batch can tell: an epoch a leader took up at the log end without writing in it.
        let saved = match checkpoint::read(disk.as_ref(), &epoch_checkpoint_path(dir)) {
            Ok(Some(lines)) => EpochCache::from_lines(&lines).unwrap_or_default(),
            _ => EpochCache::default(),
        };
        if let Some(&(epoch, start)) = saved.entries().last() {
            if start == log.log_end_offset {
                // Taken only if newer than the batches' last epoch (`assign`'s rule).
                log.epochs.assign(epoch, start);
            }
        }
        log.durable_end_offset = log.log_end_offset;
        log.write_epoch_checkpoint();
        if let Some(reason) = &recovery.reason {
            tracing::warn!(
                log = dir,
                %reason,
                dropped_bytes = recovery.dropped_bytes,
                log_end = log.log_end_offset,
                "recovery found damaged data and dropped it"
            );
            crate::mark!(RecoveryDropsDamagedTail);
        }
        Ok((log, recovery))
    }

    /// Takes in the batches of one segment file's bytes, stopping at the first that is bad or out
    /// of place (and saying why in `recovery`). Returns the length of the good prefix and whether
    /// the scan stopped at a bad batch.
    fn scan_segment(
        &mut self,
        segment: usize,
        path: &str,
        bytes: &[u8],
        recovery: &mut Recovery,
    ) -> (u64, bool) {
        let mut position = 0u64;
        for h in batch::headers(bytes) {
            let h = match h {
                Ok(h) => h,
                Err(e) => {
                    recovery.reason = Some(format!("{path}: {e} at byte {position}"));
                    return (position, true);
                }
            };
            if h.base_offset != self.log_end_offset {
                recovery.reason = Some(format!(
                    "{path}: batch at {} where {} was due",
                    h.base_offset, self.log_end_offset
                ));
                return (position, true);
            }
            // Leader epochs never go down along a log; the epoch field lies outside the CRC.
            if h.leader_epoch < self.batches.last().map_or(-1, |m| m.leader_epoch) {
                recovery.reason = Some(format!(
                    "{path}: batch at {} has leader epoch {} after a later one",
                    h.base_offset, h.leader_epoch
                ));
                return (position, true);
            }
            self.push_meta(segment, position, &h);
            position += h.size as u64;
        }
        (position, false)
    }

    #[inline]
    fn push_meta(&mut self, segment: usize, position: u64, h: &BatchHeader) {
        self.batches.push(BatchMeta {
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            leader_epoch: h.leader_epoch,
            crc: h.crc,
            segment,
            position,
            size: h.size as u32,
            producer_id: h.producer_id,
            producer_epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            transactional: h.transactional,
            control: h.control,
            coordinator_epoch: h.coordinator_epoch,
        });
        let meta = self.batches.last().expect("pushed");
        if meta.producer_id >= 0 && meta.control.is_none() {
            self.producers.insert(h.producer_id, self.batches.len() - 1);
        }
        self.transactions.on_batch(meta);
        self.log_end_offset = h.next_offset();
        // A batch of a new epoch starts it; one of the latest epoch changes nothing.
        self.epochs.assign(h.leader_epoch, h.base_offset);
    }

    /// Rewrites a segment's index. The index and the epoch checkpoint are derived from the batches
    /// and rebuilt by recovery, so failing to write them (a full disk) loses nothing.
    fn rebuild_index(&mut self, segment: usize) {
        let base = self.segments[segment].base_offset;
        let mut index = Vec::new();
        let mut last: Option<u64> = None;
        // A segment's batches lie together, in segment order.
        let from = self.batches.partition_point(|m| m.segment < segment);
        let to = self.batches.partition_point(|m| m.segment <= segment);
        for m in &self.batches[from..to] {
            if last.is_none_or(|l| m.position >= l + INDEX_INTERVAL_BYTES) {
                index.extend_from_slice(&((m.base_offset - base) as u32).to_be_bytes());
                index.extend_from_slice(&(m.position as u32).to_be_bytes());
                last = Some(m.position);
            }
        }
        self.segments[segment].last_indexed_position = last;
        let _ = self
            .disk
            .write_atomic(&self.segments[segment].index_path, &index);
    }

    fn write_epoch_checkpoint(&self) {
        let path = epoch_checkpoint_path(&self.dir);
        let _ = checkpoint::write(self.disk.as_ref(), &path, &self.epochs.to_lines());
    }

    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }
    pub fn durable_end_offset(&self) -> i64 {
        self.durable_end_offset
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    pub fn epochs(&self) -> &EpochCache {
        &self.epochs
    }
    pub fn latest_epoch(&self) -> i32 {
        self.epochs.latest_epoch()
    }
    /// Forgets every idempotent producer this log holds batches of, until it appends or truncates
    /// again: the `producer-state-not-rebuilt` switch's wrong rule, for a new leader.
    pub fn forget_producers(&mut self) {
        self.producers.clear();
    }

    /// Producer and transaction state, read again from the batches (after a truncation).
    fn rebuild_producers(&mut self) {
        self.producers.clear();
        self.transactions = Transactions::default();
        for (i, m) in self.batches.iter().enumerate() {
            if m.producer_id >= 0 && m.control.is_none() {
                self.producers.insert(m.producer_id, i);
            }
            self.transactions.on_batch(m);
        }
    }

    /// Open and aborted transactions.
    pub fn transactions(&self) -> &Transactions {
        &self.transactions
    }

    /// The last stable offset: read_committed readers stop here (see [`Transactions`]).
    pub fn last_stable_offset(&self) -> i64 {
        self.transactions.last_stable_offset(self.high_watermark)
    }

    /// Checks an idempotent producer's batch against the producer's batches in this log, which
    /// every replica has, so a new leader dedups a retry as the old one would have. The rules are
    /// Kafka's (`ProducerAppendInfo`): a producer unknown here may start at any sequence (its
    /// state may have gone with truncation); an older epoch is fenced; a newer epoch starts at 0;
    /// within an epoch a batch is the next in sequence, one of the last five (a retry), or a gap.
    pub fn sequence(&self, h: &BatchHeader) -> Sequence {
        self.sequence_within(h, DUPLICATE_LOOKBACK_BATCHES)
    }

    /// `sequence`, remembering the producer's last `lookback` batches. Fewer than five is the
    /// `dedup-window-of-one` switch's wrong rule: a batch behind the ones remembered has no state
    /// to be checked against, and is taken as for a producer unknown here.
    pub fn sequence_within(&self, h: &BatchHeader, lookback: usize) -> Sequence {
        assert!(lookback >= 1);
        assert!(lookback <= DUPLICATE_LOOKBACK_BATCHES);
        if h.control.is_some() && h.producer_id >= 0 {
            let data_epoch =
                (self.producers.get(&h.producer_id)).map(|&i| self.batches[i].producer_epoch);
            return if self.transactions.fences_marker(h, data_epoch) {
                Sequence::Fenced
            } else {
                Sequence::New
            };
        }
        if h.producer_id < 0 {
            return Sequence::New;
        }
        if self
            .transactions
            .marker_epoch(h.producer_id)
            .is_some_and(|e| h.producer_epoch < e)
        {
            // A marker of a newer epoch ended this producer's transaction: it was fenced. So is
            // a batch without sequences (a transactional offset commit) that comes too late:
            // swarm seed 713 of exactly-once.toml had one land after its transaction's abort
            // marker and count at the producer's next commit.
            return Sequence::Fenced;
        }
        let last = self.producers.get(&h.producer_id).copied();
        if last.is_some_and(|i| h.producer_epoch < self.batches[i].producer_epoch) {
            return Sequence::Fenced;
        }
        let Some(last) = last.filter(|_| h.base_sequence >= 0) else {
            return Sequence::New;
        };
        let tail = &self.batches[last];
        if h.producer_epoch > tail.producer_epoch {
            return if h.base_sequence == 0 {
                Sequence::New
            } else {
                Sequence::OutOfOrder
            };
        }
        if h.base_sequence == tail.last_sequence().wrapping_add(1) & i32::MAX {
            return Sequence::New;
        }
        self.batches[..=last]
            .iter()
            .rev()
            .filter(|m| m.producer_id == h.producer_id && m.producer_epoch == h.producer_epoch)
            .take(lookback)
            .find(|m| m.base_sequence == h.base_sequence)
            .map_or_else(
                || {
                    let behind = h.base_sequence < tail.base_sequence;
                    if lookback < DUPLICATE_LOOKBACK_BATCHES && behind {
                        Sequence::New
                    } else {
                        Sequence::OutOfOrder
                    }
                },
                |m| Sequence::Duplicate {
                    base_offset: m.base_offset,
                    last_offset: m.last_offset,
                },
            )
    }

    pub fn batches(&self) -> &[BatchMeta] {
        &self.batches
    }
    /// How many times this log was truncated since it was opened.
    pub fn truncations(&self) -> u64 {
        self.truncations
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    pub fn end_offset_for_epoch(&self, epoch: i32) -> EpochEnd {
        self.epochs.end_offset_for(epoch, self.log_end_offset)
    }

    /// Sets the high watermark. It may not pass the log end; a leader's never goes back (its callers
    /// assert that), a follower's may after truncation.
    pub fn set_high_watermark(&mut self, high_watermark: i64) {
        assert!(high_watermark >= 0);
        assert!(
            high_watermark <= self.log_end_offset,
            "{}: high watermark {high_watermark} past log end {}",
            self.dir,
            self.log_end_offset
        );
        self.high_watermark = high_watermark;
        self.transactions.on_high_watermark(high_watermark);
    }

    /// Makes an epoch known before any batch of it is written, as a new leader does so that
    /// end-offset questions about its own epoch have an answer.
    pub fn assign_epoch(&mut self, epoch: i32) {
        if self.epochs.assign(epoch, self.log_end_offset) {
            self.write_epoch_checkpoint();
        }
    }

    /// Appends one batch as leader: stamps its offset and epoch. Returns (base, last) offsets.
    pub fn append_as_leader(
        &mut self,
        bytes: &[u8],
        leader_epoch: i32,
    ) -> Result<(i64, i64), AppendError> {
        let first = batch::parse(bytes).map_err(|e| AppendError::Corrupt(e.to_string()))?;
        if first.size != bytes.len() {
            return Err(AppendError::Corrupt(format!(
                "a produce carries one batch; this one has {} bytes after it",
                bytes.len() - first.size
            )));
        }
        let mut owned = std::mem::take(&mut self.scratch.stamped);
        owned.clear();
        owned.extend_from_slice(bytes);
        batch::stamp(&mut owned, self.log_end_offset, leader_epoch);
        let appended = batch::parse(&owned)
            .map_err(|e| AppendError::Corrupt(e.to_string()))
            .and_then(|h| {
                self.append_checked(&owned, &h)?;
                Ok((h.base_offset, h.last_offset()))
            });
        self.scratch.stamped = owned;
        appended
    }

    /// Appends batches fetched from a leader, offsets and epochs as they are.
    pub fn append_replicated(&mut self, bytes: &[u8]) -> Result<usize, AppendError> {
        let mut headers = std::mem::take(&mut self.scratch.headers);
        let appended = self.append_each(bytes, &mut headers);
        self.scratch.headers = headers;
        appended
    }

    /// `append_replicated`, with `headers` to read the batches' headers into.
    fn append_each(
        &mut self,
        bytes: &[u8],
        headers: &mut Vec<BatchHeader>,
    ) -> Result<usize, AppendError> {
        if let Some(e) = batch::parse_all_into(bytes, headers) {
            return Err(AppendError::Corrupt(e.to_string()));
        }
        let mut at = 0;
        for h in headers.iter() {
            if h.base_offset != self.log_end_offset {
                return Err(AppendError::OutOfOrder {
                    expected: self.log_end_offset,
                    found: h.base_offset,
                });
            }
            self.append_checked(&bytes[at..at + h.size], h)?;
            at += h.size;
        }
        Ok(headers.len())
    }

    fn append_checked(&mut self, bytes: &[u8], h: &BatchHeader) -> Result<(), AppendError> {
        assert_eq!(h.base_offset, self.log_end_offset);
        assert_eq!(h.size, bytes.len());
        let active = self.segments.len() - 1;
        if self.segments[active].size > 0
            && self.segments[active].size + bytes.len() as u64 > self.segment_bytes
        {
            self.segments
                .push(Segment::new(&self.dir, self.log_end_offset));
        }
        let segment = self.segments.len() - 1;
        let base = self.segments[segment].base_offset;
        let io = |e: std::io::Error| AppendError::Io(e.to_string());
        let position = self
            .disk
            .append(&self.segments[segment].path, bytes)
            .map_err(io)?;
        assert_eq!(
            position, self.segments[segment].size,
            "{}: segment size drifted",
            self.dir
        );
        let seg = &mut self.segments[segment];
        seg.size += bytes.len() as u64;
        if seg
            .last_indexed_position
            .is_none_or(|l| position >= l + INDEX_INTERVAL_BYTES)
        {
            seg.last_indexed_position = Some(position);
            let mut entry = [0u8; 8];
            entry[..4].copy_from_slice(&((h.base_offset - base) as u32).to_be_bytes());
            entry[4..].copy_from_slice(&(position as u32).to_be_bytes());
            let _ = self.disk.append(&seg.index_path, &entry);
        }
        if !self.dirty_segments.contains(&segment) {
            self.dirty_segments.push(segment);
        }
        let epoch_before = self.epochs.latest_epoch();
        self.push_meta(segment, position, h);
        if self.epochs.latest_epoch() != epoch_before {
            self.write_epoch_checkpoint();
        }
        Ok(())
    }

    /// Starts making everything appended so far durable: the files to sync, and the offset they
    /// will make durable. The sync itself runs without holding the log.
    pub fn sync_ticket(&mut self) -> SyncTicket {
        let segments = &self.segments;
        let mut paths = self
            .dirty_segments
            .drain(..)
            .filter_map(|s| segments.get(s).map(|s| s.path.clone()));
        let first = paths.next();
        let more = paths.collect::<Vec<_>>();
        // With nothing dirty, either all is synced already or a sync in flight took the dirty
        // segments: this ticket must not claim what that sync has yet to make durable.
        let end_offset = if first.is_none() {
            self.durable_end_offset
        } else {
            self.log_end_offset
        };
        SyncTicket {
            first,
            more,
            end_offset,
            truncations: self.truncations,
        }
    }

    /// Finishes a sync. A truncation in between voids it: the bytes it covered may be gone.
    pub fn complete_sync(&mut self, ticket: &SyncTicket) -> i64 {
        if ticket.covers(self) {
            self.durable_end_offset = self
                .durable_end_offset
                .max(ticket.end_offset.min(self.log_end_offset));
        }
        self.durable_end_offset
    }

    fn batch_index_at(&self, offset: i64) -> usize {
        self.batches.partition_point(|m| m.last_offset < offset)
    }

    /// Batches from the one holding `from`, whole, ending at or below `upper`, at most `max_bytes`
    /// (but always at least one batch when one fits below `upper`).
    pub fn read(&self, from: i64, upper: i64, max_bytes: usize) -> std::io::Result<Bytes> {
        if from >= upper {
            // The batch holding `from` ends at or past `upper`: nothing to read, and a follower
            // caught up asks this on nearly every fetch.
            return Ok(Bytes::new());
        }
        let start = self.batch_index_at(from);
        let mut end = start;
        let mut size = 0usize;
        while end < self.batches.len() {
            let m = &self.batches[end];
            if m.last_offset >= upper || (end > start && size + m.size as usize > max_bytes) {
                break;
            }
            size += m.size as usize;
            end += 1;
        }
        if start == end {
            return Ok(Bytes::new());
        }
        let (mut i, first) = self.read_run(start, end)?;
        if i == end {
            // One segment, one read: its bytes are the answer, with no copy into a buffer.
            return Ok(Bytes::from(first));
        }
        let mut out = BytesMut::with_capacity(size);
        out.extend_from_slice(&first);
        while i < end {
            let (next, bytes) = self.read_run(i, end)?;
            out.extend_from_slice(&bytes);
            i = next;
        }
        Ok(out.freeze())
    }

    /// Reads, in one call, the batches from index `from` on (below `end`) that share its segment.
    /// Returns the index after them, and their bytes.
    fn read_run(&self, from: usize, end: usize) -> std::io::Result<(usize, Vec<u8>)> {
        let segment = self.batches[from].segment;
        let mut to = from;
        while to < end && self.batches[to].segment == segment {
            to += 1;
        }
        let (first, last) = (&self.batches[from], &self.batches[to - 1]);
        let len = (last.position + last.size as u64 - first.position) as usize;
        let bytes = self
            .disk
            .read_at(&self.segments[segment].path, first.position, len)?;
        Ok((to, bytes))
    }

    /// Cuts the log back to `offset` (rounded down to a batch boundary). Returns the new log end.
    pub fn truncate_to(&mut self, offset: i64) -> std::io::Result<i64> {
        let offset = offset.max(0);
        self.truncations += 1;
        // A batch that straddles `offset` goes whole: batches are never split.
        let keep = self.batch_index_at(offset);
        if keep < self.batches.len() {
            let first_dropped = self.batches[keep];
            self.batches.truncate(keep);
            self.rebuild_producers();
            while self.segments.len() > first_dropped.segment + 1 {
                let s = self.segments.pop().expect("segment");
                self.disk.remove(&s.path)?;
                self.disk.remove(&s.index_path)?;
            }
            let seg = first_dropped.segment;
            self.disk
                .truncate(&self.segments[seg].path, first_dropped.position)?;
            self.segments[seg].size = first_dropped.position;
            self.dirty_segments.retain(|s| *s <= seg);
            if !self.dirty_segments.contains(&seg) {
                self.dirty_segments.push(seg);
            }
            self.log_end_offset = first_dropped.base_offset;
            self.rebuild_index(seg);
        }
        self.durable_end_offset = self.durable_end_offset.min(self.log_end_offset);
        self.high_watermark = self.high_watermark.min(self.log_end_offset);
        self.transactions.on_high_watermark(self.high_watermark);
        if self.epochs.truncate_from_end(self.log_end_offset) {
            self.write_epoch_checkpoint();
        }
        Ok(self.log_end_offset)
    }
}
