//! The partition log over the simulated disk: appends, segments, truncation, and recovery from
//! lost, torn and corrupt tails.

mod logs;

use std::sync::Arc;

use bytes::Bytes;
use logsim::world::disk::SimDisk;
use model::batch;
use model::env::Disk;
use model::log::Log;

use logs::{record, sync, sync_files};

fn open(disk: &Arc<SimDisk>, segment_bytes: u64) -> (Log, model::log::Recovery) {
    Log::open(disk.clone(), "t-0", segment_bytes).unwrap()
}

/// A fresh log on a fresh disk (1 MiB segments) holding `count` one-record batches of `epoch`,
/// `v0`, `v1`, ...
fn log_of(count: usize, epoch: i32) -> (Arc<SimDisk>, Log) {
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = open(&disk, 1 << 20);
    for i in 0..count {
        log.append_as_leader(&record(&format!("v{i}")), epoch)
            .unwrap();
    }
    (disk, log)
}

/// `log_of(5, 1)` synced, then `v5` to `v7` appended in epoch 1 and not synced: a crash now keeps
/// offsets 0 to 4 only.
fn log_with_unsynced_tail() -> (Arc<SimDisk>, Log) {
    let (disk, mut log) = log_of(5, 1);
    sync(&mut log, &disk);
    for i in 5..8 {
        log.append_as_leader(&record(&format!("v{i}")), 1).unwrap();
    }
    (disk, log)
}

#[test]
fn appends_roll_segments_and_read_back_in_order() {
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = open(&disk, 300);
    for i in 0..20 {
        let epoch = if i < 10 { 0 } else { 2 };
        assert_eq!(
            log.append_as_leader(&record(&format!("v{i}")), epoch)
                .unwrap(),
            (i, i)
        );
    }
    assert!(log.segment_count() > 1, "300-byte segments must roll");
    assert_eq!(log.epochs().entries(), &[(0, 0), (2, 10)]);
    let values = batch::decode(log.read(5, 20, usize::MAX).unwrap()).unwrap();
    assert_eq!(values.first().map(|r| r.0), Some(5));
    assert_eq!(values.len(), 15);
    assert_eq!(values[14].2.as_deref(), Some(&b"v19"[..]));
}

#[test]
fn recovery_keeps_what_was_synced_and_loses_the_rest() {
    let (disk, _log) = log_with_unsynced_tail();
    disk.crash();
    let (log, recovery) = open(&disk, 1 << 20);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(
        recovery.dropped_bytes, 0,
        "the lost bytes were never on disk"
    );
    assert_eq!(log.epochs().entries(), &[(1, 0)]);
}

#[test]
fn recovery_drops_a_torn_tail() {
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = open(&disk, 1 << 20);
    for i in 0..3 {
        log.append_as_leader(&record(&format!("v{i}")), 0).unwrap();
    }
    let path = "t-0/00000000000000000000.log";
    let torn = record("torn");
    disk.append(path, &torn[..torn.len() / 2]).unwrap();
    let (log, recovery) = open(&disk, 1 << 20);
    assert_eq!(log.log_end_offset(), 3);
    assert_eq!(recovery.dropped_bytes, (torn.len() / 2) as u64);
    assert!(recovery.reason.unwrap().contains("truncated"));
}

#[test]
fn recovery_drops_everything_from_a_corrupt_batch_on() {
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = open(&disk, 1 << 20);
    for i in 0..4 {
        log.append_as_leader(&record(&format!("value-{i}")), 0)
            .unwrap();
    }
    let path = "t-0/00000000000000000000.log";
    let mut bytes = disk.read(path).unwrap();
    let second = log.batches()[1];
    bytes[(second.position + second.size as u64 - 1) as usize] ^= 0x40;
    disk.write_atomic(path, &bytes).unwrap();
    let (log, recovery) = open(&disk, 1 << 20);
    assert_eq!(
        log.log_end_offset(),
        1,
        "the batch at offset 1 is corrupt; 2 and 3 follow it"
    );
    assert!(recovery.reason.unwrap().contains("crc mismatch"));
    assert_eq!(disk.read(path).unwrap().len() as u64, second.position);
}

#[test]
fn recovery_drops_the_segments_after_a_missing_one() {
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = open(&disk, 200);
    for i in 0..12 {
        log.append_as_leader(&record(&format!("value-{i}")), 0)
            .unwrap();
    }
    sync(&mut log, &disk);
    let segments = disk.list("t-0/").unwrap();
    let logs: Vec<&String> = segments.iter().filter(|p| p.ends_with(".log")).collect();
    assert!(logs.len() >= 3, "{segments:?}");
    disk.remove(logs[1]).unwrap();
    let first_len = disk.read(logs[0]).unwrap().len() as u64;
    let later: u64 = logs[2..]
        .iter()
        .map(|p| disk.read(p).unwrap().len() as u64)
        .sum();
    let (log, recovery) = open(&disk, 200);
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_end_offset(), log.batches().len() as i64);
    let reason = recovery.reason.expect("a reason");
    assert!(reason.contains("does not start at offset"), "{reason}");
    assert_eq!(recovery.dropped_bytes, later);
    assert_eq!(disk.read(logs[0]).unwrap().len() as u64, first_len);
    for p in &logs[2..] {
        let index = p.replace(".log", ".index");
        assert!(
            !disk.exists(p) && !disk.exists(&index),
            "{p} and its index are gone"
        );
    }
}

#[test]
fn truncation_cuts_batches_segments_and_epochs() {
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = open(&disk, 200);
    for i in 0..12 {
        log.append_as_leader(&record(&format!("v{i}")), i / 4)
            .unwrap();
    }
    sync(&mut log, &disk);
    log.set_high_watermark(12);
    let segments = log.segment_count();
    assert_eq!(log.truncate_to(5).unwrap(), 5);
    assert!(log.segment_count() < segments);
    assert_eq!(log.high_watermark(), 5);
    assert_eq!(log.epochs().entries(), &[(0, 0), (1, 4)]);
    assert_eq!(log.end_offset_for_epoch(2).end_offset, 5);
    log.append_as_leader(&record("after"), 3).unwrap();
    sync(&mut log, &disk);
    disk.crash();
    let (log, _) = open(&disk, 200);
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.epochs().entries(), &[(0, 0), (1, 4), (3, 5)]);
}

#[test]
fn replicated_batches_must_follow_on() {
    let disk = Arc::new(SimDisk::default());
    let (mut leader, _) = Log::open(disk.clone(), "a-0", 1 << 20).unwrap();
    let (mut follower, _) = Log::open(disk.clone(), "b-0", 1 << 20).unwrap();
    for i in 0..3 {
        leader
            .append_as_leader(&record(&format!("v{i}")), 7)
            .unwrap();
    }
    let bytes = leader.read(0, 3, usize::MAX).unwrap();
    assert_eq!(follower.append_replicated(&bytes).unwrap(), 3);
    assert_eq!(follower.batches(), leader.batches());
    let again = leader.read(1, 3, usize::MAX).unwrap();
    assert!(
        follower.append_replicated(&again).is_err(),
        "a gap or overlap is refused"
    );
}

/// Two records from idempotent producer 7 (epoch 0) starting at sequence `seq`.
fn idempotent(seq: i32) -> Vec<u8> {
    idempotent_as(7, 0, seq)
}

/// Two records from idempotent producer `id` in `epoch`, starting at sequence `seq`.
fn idempotent_as(id: i64, epoch: i16, seq: i32) -> Vec<u8> {
    let mut b = batch::encode(
        &[
            (None, Bytes::from_static(b"a")),
            (None, Bytes::from_static(b"b")),
        ],
        0,
    )
    .to_vec();
    batch::set_producer(&mut b, id, epoch, seq);
    b
}

#[test]
fn given_six_batches_of_a_producer_among_others_the_last_five_are_answered_as_retries_and_the_sixth_back_is_refused(
) {
    use model::log::Sequence;
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = open(&disk, 1 << 20);
    for i in 0..6 {
        log.append_as_leader(&idempotent(2 * i), 0).unwrap();
        // Another producer's batches in between do not push producer 7's out of the window.
        log.append_as_leader(&idempotent_as(8, 0, 2 * i), 0)
            .unwrap();
    }
    let sequence = |seq| log.sequence(&batch::parse(&idempotent(seq)).unwrap());
    for i in 1..6 {
        let base_offset = 4 * i64::from(i);
        let retry = Sequence::Duplicate {
            base_offset,
            last_offset: base_offset + 1,
        };
        assert_eq!(sequence(2 * i), retry, "batch {i}");
    }
    assert_eq!(
        sequence(0),
        Sequence::OutOfOrder,
        "older than the last five"
    );
    assert_eq!(sequence(14), Sequence::OutOfOrder, "a gap");
    assert_eq!(sequence(12), Sequence::New, "the next in sequence");
}

#[test]
fn given_a_producer_epoch_bump_an_older_epoch_is_fenced_and_the_new_one_starts_at_zero() {
    use model::log::Sequence;
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = open(&disk, 1 << 20);
    log.append_as_leader(&idempotent_as(7, 0, 0), 0).unwrap();
    let sequence = |log: &model::log::Log, epoch, seq| {
        log.sequence(&batch::parse(&idempotent_as(7, epoch, seq)).unwrap())
    };
    assert_eq!(
        sequence(&log, 1, 4),
        Sequence::OutOfOrder,
        "a new epoch starts at 0"
    );
    assert_eq!(sequence(&log, 1, 0), Sequence::New);
    log.append_as_leader(&idempotent_as(7, 1, 0), 0).unwrap();
    assert_eq!(
        sequence(&log, 0, 2),
        Sequence::Fenced,
        "the old epoch's next batch"
    );
    assert_eq!(
        sequence(&log, 0, 0),
        Sequence::Fenced,
        "the old epoch's retry"
    );
    // Truncating the new epoch's batch away brings the old epoch back, as the log now says.
    log.truncate_to(2).unwrap();
    assert_eq!(sequence(&log, 0, 2), Sequence::New);
}

#[test]
fn an_idempotent_retry_is_recognised_from_the_log_across_truncation_and_recovery() {
    use model::log::Sequence;
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = open(&disk, 1 << 20);
    let first = batch::parse(&idempotent(0)).unwrap();
    assert_eq!(log.sequence(&first), Sequence::New, "an unknown producer");
    assert_eq!(log.append_as_leader(&idempotent(0), 0).unwrap(), (0, 1));
    let retry = Sequence::Duplicate {
        base_offset: 0,
        last_offset: 1,
    };
    assert_eq!(log.sequence(&first), retry);
    let next = batch::parse(&idempotent(2)).unwrap();
    assert_eq!(log.sequence(&next), Sequence::New);
    let gap = batch::parse(&idempotent(5)).unwrap();
    assert_eq!(log.sequence(&gap), Sequence::OutOfOrder);
    assert_eq!(log.append_as_leader(&idempotent(2), 0).unwrap(), (2, 3));
    assert_eq!(
        log.sequence(&next),
        Sequence::Duplicate {
            base_offset: 2,
            last_offset: 3
        }
    );
    // Truncation forgets the cut batch: its retry is new again.
    log.truncate_to(2).unwrap();
    assert_eq!(log.sequence(&next), Sequence::New);
    // Recovery rebuilds what the log holds.
    sync(&mut log, &disk);
    drop(log);
    let (log, _) = open(&disk, 1 << 20);
    assert_eq!(log.sequence(&first), retry);
}

#[test]
fn a_produce_of_two_batches_is_refused_not_a_panic() {
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = open(&disk, 1 << 20);
    let mut two = record("a");
    two.extend_from_slice(&record("b"));
    assert!(log.append_as_leader(&two, 0).is_err());
    assert_eq!(log.log_end_offset(), 0);
}

/// A sync that a truncation overtakes made durable only records the truncation cut: the records
/// written in their place since are not durable, however far the sync's ticket reached.
#[test]
fn a_sync_overtaken_by_a_truncation_makes_nothing_after_it_durable() {
    let (disk, mut log) = log_of(5, 0);
    let ticket = log.sync_ticket();
    assert_eq!(ticket.end_offset, 5);
    sync_files(&ticket, &disk);
    // A divergence answer cuts the log while the sync is out; a new leader's records follow.
    log.truncate_to(2).unwrap();
    for i in 2..5 {
        log.append_as_leader(&record(&format!("new-{i}")), 1)
            .unwrap();
    }
    assert_eq!(log.log_end_offset(), 5);
    assert!(
        log.complete_sync(&ticket) <= 2,
        "epoch 1's records at 2 to 4 were never synced, yet count as durable"
    );
    sync(&mut log, &disk);
    assert_eq!(
        log.durable_end_offset(),
        5,
        "a sync after the truncation covers them"
    );
}

/// Each segment's offset index, as Kafka lays it out (4-byte offset from the segment's base,
/// 4-byte position, one entry per 4 KiB or so of batches): what it holds, read from the disk.
fn indexes(disk: &SimDisk) -> Vec<(String, Vec<(i64, u64)>)> {
    let mut paths: Vec<String> = (disk.list("t-0/").unwrap().into_iter())
        .filter(|p| p.ends_with(".index"))
        .collect();
    paths.sort();
    (paths.into_iter())
        .map(|path| {
            let base: i64 = path["t-0/".len()..path.len() - ".index".len()]
                .parse()
                .expect("named by its base offset");
            let bytes = disk.read(&path).unwrap();
            let entries = (bytes.chunks(8))
                .map(|e| {
                    let relative = u32::from_be_bytes(e[..4].try_into().unwrap());
                    let position = u32::from_be_bytes(e[4..].try_into().unwrap());
                    (base + i64::from(relative), u64::from(position))
                })
                .collect();
            (path, entries)
        })
        .collect()
}

/// The offset index on disk points at batch starts in its own segment, one entry per 4 KiB or so,
/// and recovery rebuilds the very index that appends wrote (it is derived from the batches, so a
/// lost index loses nothing); a truncation leaves no entry past what it kept.
#[test]
fn each_segment_indexes_its_batches_and_recovery_rebuilds_the_same_index() {
    let disk = Arc::new(SimDisk::default());
    let (mut log, _) = open(&disk, 12 << 10);
    let value = "x".repeat(300);
    for i in 0..120 {
        log.append_as_leader(&record(&format!("{i}-{value}")), 0)
            .unwrap();
    }
    sync(&mut log, &disk);
    assert!(log.segment_count() >= 3, "12 KiB segments roll");
    let written = indexes(&disk);
    assert_eq!(
        written.len(),
        log.segment_count(),
        "one index per segment: {written:?}"
    );
    for (segment, (path, entries)) in written.iter().enumerate() {
        assert!(entries.len() >= 2, "{path}: {entries:?}");
        assert!(
            entries.windows(2).all(|w| w[1].1 >= w[0].1 + 4096),
            "{path}: sparse"
        );
        for (offset, position) in entries {
            let batch = log.batches().iter().find(|b| b.base_offset == *offset);
            let batch = batch.map(|b| (b.segment, b.position));
            assert_eq!(batch, Some((segment, *position)), "{path}: entry {offset}");
        }
    }
    drop(log);
    for (path, _) in &written {
        disk.remove(path).unwrap();
    }
    let (mut log, recovery) = open(&disk, 12 << 10);
    assert_eq!(recovery.dropped_bytes, 0, "{:?}", recovery.reason);
    assert_eq!(indexes(&disk), written, "recovery rebuilt another index");
    // Cut at the first segment's second indexed batch: that entry must go, and later segments.
    let cut = written[0].1[1].0;
    log.truncate_to(cut).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(
        indexes(&disk),
        vec![(written[0].0.clone(), vec![written[0].1[0]])]
    );
}

/// A follower's append that does not start at its log end is refused whole, and the error names
/// both offsets (the replica fetcher logs it and backs off).
#[test]
fn a_replicated_batch_off_the_log_end_is_refused_with_both_offsets() {
    let (_, mut log) = log_of(3, 0);
    let error = log.append_replicated(&record("at zero")).unwrap_err();
    assert_eq!(
        error,
        model::log::AppendError::OutOfOrder {
            expected: 3,
            found: 0
        }
    );
    assert_eq!(error.to_string(), "batch at 0, log end is 3");
    assert_eq!(log.log_end_offset(), 3);
}

/// The epoch checkpoint adds to recovery only an epoch taken up at the recovered log's end: one
/// whose first records a crash took (unsynced) started past that end, and to keep it would tell
/// followers the epoch began at an offset the log no longer reaches.
#[test]
fn recovery_keeps_no_checkpointed_epoch_that_starts_past_the_recovered_end() {
    let (disk, mut log) = log_with_unsynced_tail();
    log.append_as_leader(&record("v8"), 3).unwrap();
    assert_eq!(log.epochs().entries(), &[(1, 0), (3, 8)]);
    disk.crash();
    let (log, _) = open(&disk, 1 << 20);
    assert_eq!(log.log_end_offset(), 5);
    assert_eq!(
        log.epochs().entries(),
        &[(1, 0)],
        "epoch 3 began at 8, past the end"
    );
}

/// Truncation rebuilds each producer's state from the batches it kept: the last data batch of
/// each idempotent producer, never a transaction marker (whose sequence is -1), so a retry of a
/// kept batch is still a duplicate and the next batch still follows on.
#[test]
fn truncation_rebuilds_producer_state_from_the_data_batches_it_kept() {
    use model::log::Sequence;
    let (_disk, mut log) = log_of(0, 0);
    log.append_as_leader(&idempotent(0), 0).unwrap();
    log.append_as_leader(&idempotent(2), 0).unwrap();
    let commit = batch::encode_marker(7, 0, batch::Marker::Commit, 0, 0);
    assert_eq!(log.append_as_leader(&commit, 0).unwrap(), (4, 4));
    log.append_as_leader(&idempotent_as(8, 0, 0), 0).unwrap();
    log.truncate_to(5).unwrap();
    let sequence = |seq| log.sequence(&batch::parse(&idempotent(seq)).unwrap());
    let retry = Sequence::Duplicate {
        base_offset: 2,
        last_offset: 3,
    };
    assert_eq!(sequence(2), retry, "a kept batch's retry");
    assert_eq!(
        sequence(4),
        Sequence::New,
        "the batch after the last data batch"
    );
}

/// A marker from a coordinator older than the one whose marker the log holds is a zombie's:
/// fenced, though its producer epoch is current.
#[test]
fn a_marker_from_an_older_coordinator_is_fenced() {
    use model::log::Sequence;
    let (_disk, mut log) = log_of(0, 0);
    log.append_as_leader(&idempotent(0), 0).unwrap();
    let marker = |coordinator| batch::encode_marker(7, 0, batch::Marker::Commit, coordinator, 0);
    log.append_as_leader(&marker(5), 0).unwrap();
    let sequence = |coordinator| log.sequence(&batch::parse(&marker(coordinator)).unwrap());
    assert_eq!(sequence(4), Sequence::Fenced, "an older coordinator");
    assert_eq!(sequence(5), Sequence::New, "the same coordinator");
}

/// Producer id 0 is a producer like any other (Kafka hands out ids from 0): its retries are
/// answered as duplicates.
#[test]
fn producer_id_zero_is_deduplicated() {
    use model::log::Sequence;
    let (_disk, mut log) = log_of(0, 0);
    log.append_as_leader(&idempotent_as(0, 0, 0), 0).unwrap();
    let retry = batch::parse(&idempotent_as(0, 0, 0)).unwrap();
    let duplicate = Sequence::Duplicate {
        base_offset: 0,
        last_offset: 1,
    };
    assert_eq!(log.sequence(&retry), duplicate);
}

/// Every truncation counts, whether it cut anything or not, and a log opened afresh has none: the
/// checkers tell a truncation from a rewrite by this count.
#[test]
fn a_log_counts_its_truncations_since_it_was_opened() {
    let (disk, mut log) = log_of(4, 0);
    assert_eq!(log.truncations(), 0);
    log.truncate_to(2).unwrap();
    log.truncate_to(9).unwrap();
    assert_eq!(log.truncations(), 2);
    sync(&mut log, &disk);
    drop(log);
    let (log, _) = open(&disk, 1 << 20);
    assert_eq!(log.truncations(), 0);
}
