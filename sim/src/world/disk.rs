//! The simulated disk each broker writes through, owned by the harness so it outlives the node.
//!
//! Fault model:
//! - Bytes written since a file's last sync are volatile: a crash puts every file back to its last
//!   synced contents, and a file never synced disappears. `write_atomic` (write, sync, rename) and
//!   `remove` are durable at once, as a journaling file system's rename is once the directory is
//!   synced.
//! - A crash may tear the last write: part of the unsynced bytes of the file written last survive.
//! - A bit may flip at rest in a synced segment of a partition log, found by the CRC when the log is
//!   read back at recovery. Corruption is applied only while the broker is down, and the fault
//!   injector keeps it (and wipes) away from any replica that is the last of its ISR, so a correct
//!   system can always recover from the other replicas.
//! - The disk may be full (appends and atomic writes fail; truncation, removal and sync work) or
//!   slow to sync.
//! - The data directories may be wiped; the metadata directory (`__cluster_metadata`, the quorum
//!   state and the broker's incarnation) is a disk of its own and survives, as with Kafka's
//!   `metadata.log.dir`.

use std::collections::BTreeMap;
use std::io;
use model::sync::Lock;
use std::time::Duration;

use model::env::{BoxFuture, Disk};

/// A file, kept once: what a reader sees, and what a crash would return to as the part of it below
/// `changed_from` plus `durable_tail`. Appends and truncations are the only writes, so the synced
/// contents differ from the visible ones only past that point, and a sync copies nothing.
#[derive(Default)]
struct SimFile {
    data: Vec<u8>,
    /// The synced bytes past `changed_from` that a truncation since the last sync cut from `data`;
    /// `None` until the first sync, when a crash loses the whole file.
    durable_tail: Option<Vec<u8>>,
    /// The lowest byte changed since the last sync.
    changed_from: usize,
    /// When it was last appended to, in appends to this disk.
    appended_at: u64,
}

impl SimFile {
    fn unsynced(&self) -> usize {
        self.data.len().saturating_sub(self.changed_from)
    }

    /// A file written and synced at once.
    fn synced(data: Vec<u8>) -> SimFile {
        SimFile {
            changed_from: data.len(),
            data,
            durable_tail: Some(Vec::new()),
            appended_at: 0,
        }
    }

    fn durable_len(&self) -> Option<usize> {
        let tail = self.durable_tail.as_ref()?;
        Some(self.changed_from + tail.len())
    }

    /// The contents a crash would return to, `None` if never synced.
    fn durable(&self) -> Option<std::borrow::Cow<'_, [u8]>> {
        let tail = self.durable_tail.as_ref()?;
        let head = &self.data[..self.changed_from];
        Some(if tail.is_empty() {
            head.into()
        } else {
            [head, tail].concat().into()
        })
    }

    fn sync(&mut self) {
        self.durable_tail = Some(Vec::new());
        self.changed_from = self.data.len();
    }

    fn truncate(&mut self, len: usize) {
        if len >= self.data.len() {
            return;
        }
        if len < self.changed_from {
            if let Some(tail) = &mut self.durable_tail {
                // The synced bytes being cut go to the front of what a crash would bring back.
                tail.splice(0..0, self.data[len..self.changed_from].iter().copied());
            }
            self.changed_from = len;
        }
        self.data.truncate(len);
    }

    /// A crash that keeps `kept` of the unsynced bytes (a torn write) and loses the rest. False if
    /// the file, never synced and not torn, is gone.
    fn crash(&mut self, kept: usize) -> bool {
        let Some(tail) = self.durable_tail.take() else {
            if kept == 0 {
                return false;
            }
            self.data.truncate(kept);
            self.sync();
            return true;
        };
        if kept > 0 {
            // The torn write overwrote whatever synced bytes lay past the change.
            self.data.truncate(self.changed_from + kept);
        } else {
            self.data.truncate(self.changed_from);
            self.data.extend_from_slice(&tail);
        }
        self.sync();
        true
    }
}

#[derive(Default)]
struct Faults {
    full: bool,
    /// What every sync takes: a disk's flush is never free, and records wait unsynced meanwhile.
    sync_latency: Duration,
    /// A slow disk's extra wait, on top of the latency.
    sync_delay: Duration,
    /// Appends so far, to order files by their last append.
    appends: u64,
}

#[derive(Default)]
/// A broker's simulated disk: synced and unsynced bytes, and the faults that strike them.
pub struct SimDisk {
    files: Lock<BTreeMap<String, SimFile>>,
    faults: Lock<Faults>,
}

/// What a crash did to the disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CrashDamage {
    /// The unsynced bytes this crash lost.
    pub lost_bytes: u64,
    /// A torn write: the file and how many of its unsynced bytes survived.
    pub torn: Option<(String, u64)>,
}

fn not_found(path: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file"))
}

fn no_space(path: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::StorageFull,
        format!("{path}: no space left on device"),
    )
}

/// Whether a path lives in the metadata directory, which wipes spare.
pub fn is_metadata_path(path: &str) -> bool {
    path.starts_with("__cluster_metadata") || path == "quorum-state" || path == "broker-incarnation"
}

impl SimDisk {
    fn files(&self) -> model::sync::LockGuard<'_, BTreeMap<String, SimFile>> {
        self.files.lock()
    }

    fn faults(&self) -> model::sync::LockGuard<'_, Faults> {
        self.faults.lock()
    }

    /// A power loss: every unsynced byte is gone. Returns how many bytes were lost.
    pub fn crash(&self) -> u64 {
        self.crash_tearing(None).lost_bytes
    }

    /// A power loss during a write: of the unsynced bytes of the file appended to last, a strict,
    /// non-empty prefix survives (`keep` picks its length); everything else unsynced is lost.
    pub fn crash_tearing(&self, keep: Option<u64>) -> CrashDamage {
        let mut files = self.files();
        let last = files
            .iter()
            .filter(|(_, f)| f.unsynced() > 1)
            .max_by_key(|(_, f)| f.appended_at)
            .map(|(p, _)| p.clone());
        let mut damage = CrashDamage::default();
        files.retain(|path, f| {
            let unsynced = f.unsynced();
            let kept = match (keep, &last) {
                (Some(k), Some(l)) if l == path => 1 + (k % (unsynced as u64 - 1)) as usize,
                _ => 0,
            };
            if kept > 0 {
                damage.torn = Some((path.clone(), kept as u64));
            }
            if !f.crash(kept) {
                damage.lost_bytes += unsynced as u64;
                return false;
            }
            damage.lost_bytes += (unsynced - kept) as u64;
            true
        });
        damage
    }

    /// Flips one bit at rest in a synced partition-log segment, in bytes a batch's CRC covers, so
    /// that reading it back finds the damage (the base offset and leader epoch lie outside the CRC,
    /// in Kafka's format as here). `pick` chooses the file and the byte. Returns the file and byte
    /// position, or `None` when there is no such segment.
    /// Only files that `allowed` accepts are candidates.
    pub fn corrupt(&self, pick: u64, allowed: impl Fn(&str) -> bool) -> Option<(String, u64)> {
        let mut files = self.files();
        let candidates: Vec<String> = files
            .iter()
            .filter(|(p, f)| {
                p.ends_with(".log")
                    && !is_metadata_path(p)
                    && allowed(p)
                    && f.durable_len().is_some_and(|len| len > 0)
            })
            .map(|(p, _)| p.clone())
            .collect();
        if candidates.is_empty() {
            return None;
        }
        let path = candidates[(pick % candidates.len() as u64) as usize].clone();
        let f = files.get_mut(&path).expect("a candidate");
        let mut covered = Vec::new();
        let mut at = 0usize;
        for h in model::batch::parse_all(&f.durable().expect("synced")).0 {
            covered.push(at + model::batch::CRC_COVERED_FROM..at + h.size);
            at += h.size;
        }
        let total: usize = covered.iter().map(|r| r.len()).sum();
        if total == 0 {
            return None;
        }
        let mut nth = ((pick >> 16) % total as u64) as usize;
        let position = covered
            .iter()
            .find_map(|r| {
                if nth < r.len() {
                    Some(r.start + nth)
                } else {
                    nth -= r.len();
                    None
                }
            })
            .expect("within the covered bytes");
        let bit = 1u8 << ((pick >> 8) % 8);
        match position.checked_sub(f.changed_from) {
            None => f.data[position] ^= bit,
            Some(in_tail) => f.durable_tail.as_mut().expect("synced")[in_tail] ^= bit,
        }
        Some((path, position as u64))
    }

    /// Removes every file of the data directories. Returns how many bytes went.
    pub fn wipe_data(&self) -> u64 {
        let mut gone = 0u64;
        self.files().retain(|path, f| {
            let keep = is_metadata_path(path);
            if !keep {
                gone += f.data.len() as u64;
            }
            keep
        });
        gone
    }

    /// Makes appends and atomic writes fail as on a full disk (truncation, removal and sync still
    /// work), or stops doing so.
    pub fn set_full(&self, full: bool) {
        self.faults().full = full;
    }

    /// How long each sync takes from now on.
    pub fn set_sync_latency(&self, latency: Duration) {
        self.faults().sync_latency = latency;
    }

    /// A slow disk's extra wait on every sync from now on, on top of the latency.
    pub fn set_sync_delay(&self, delay: Duration) {
        self.faults().sync_delay = delay;
    }

    /// Bytes written and not yet synced, across all files.
    pub fn unsynced_bytes(&self) -> u64 {
        self.files().values().map(|f| f.unsynced() as u64).sum()
    }

    fn sync_now(&self, path: &str) -> io::Result<()> {
        self.files()
            .get_mut(path)
            .ok_or_else(|| not_found(path))?
            .sync();
        Ok(())
    }
}

impl Disk for SimDisk {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.files()
            .get(path)
            .map(|f| f.data.clone())
            .ok_or_else(|| not_found(path))
    }

    fn read_with(&self, path: &str, f: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        f(&self.files().get(path).ok_or_else(|| not_found(path))?.data);
        Ok(())
    }

    fn read_at(&self, path: &str, position: u64, len: usize) -> io::Result<Vec<u8>> {
        let files = self.files();
        let f = files.get(path).ok_or_else(|| not_found(path))?;
        let start = position as usize;
        let end = start
            .checked_add(len)
            .filter(|e| *e <= f.data.len())
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{path}: read of {len} at {position} past end {}",
                        f.data.len()
                    ),
                )
            })?;
        Ok(f.data[start..end].to_vec())
    }

    fn append(&self, path: &str, data: &[u8]) -> io::Result<u64> {
        let mut faults = self.faults();
        if faults.full {
            return Err(no_space(path));
        }
        faults.appends += 1;
        let appended_at = faults.appends;
        drop(faults);
        let write = |f: &mut SimFile| {
            f.appended_at = appended_at;
            let position = f.data.len() as u64;
            f.data.extend_from_slice(data);
            position
        };
        let mut files = self.files();
        // Every record's every copy is appended here: one lookup for a file that exists, which
        // `crate::slot` (a lookup to test, another to get) would double.
        if let Some(f) = files.get_mut(path) {
            return Ok(write(f));
        }
        Ok(write(files.entry(path.to_owned()).or_default()))
    }

    fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        let mut files = self.files();
        let f = files.get_mut(path).ok_or_else(|| not_found(path))?;
        f.truncate(len as usize);
        Ok(())
    }

    fn sync<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<()>> {
        let delay = {
            let f = self.faults();
            f.sync_latency + f.sync_delay
        };
        if delay.is_zero() {
            let result = self.sync_now(path);
            return Box::pin(async move { result });
        }
        Box::pin(async move {
            madsim::time::sleep(delay).await;
            self.sync_now(path)
        })
    }

    fn write_atomic(&self, path: &str, data: &[u8]) -> io::Result<()> {
        if self.faults().full {
            return Err(no_space(path));
        }
        let file = SimFile::synced(data.to_vec());
        self.files().insert(path.to_owned(), file);
        Ok(())
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        self.files().remove(path);
        Ok(())
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        Ok(self
            .files()
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }

    fn exists(&self, path: &str) -> bool {
        self.files().contains_key(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        madsim::runtime::Runtime::new().block_on(f)
    }

    #[test]
    fn a_crash_keeps_synced_bytes_and_drops_the_rest() {
        let disk = SimDisk::default();
        disk.append("a.log", b"synced").unwrap();
        block_on(disk.sync("a.log")).unwrap();
        disk.append("a.log", b"+lost").unwrap();
        disk.append("never-synced.log", b"gone").unwrap();
        assert_eq!(disk.unsynced_bytes(), 9);
        assert_eq!(disk.crash(), 9);
        assert_eq!(disk.read("a.log").unwrap(), b"synced");
        assert!(!disk.exists("never-synced.log"));
    }

    #[test]
    fn an_unsynced_truncation_is_undone_by_a_crash() {
        let disk = SimDisk::default();
        disk.append("a.log", b"0123456789").unwrap();
        block_on(disk.sync("a.log")).unwrap();
        disk.truncate("a.log", 4).unwrap();
        disk.append("a.log", b"xy").unwrap();
        disk.crash();
        assert_eq!(disk.read("a.log").unwrap(), b"0123456789");
        disk.truncate("a.log", 4).unwrap();
        disk.append("a.log", b"xy").unwrap();
        block_on(disk.sync("a.log")).unwrap();
        disk.crash();
        assert_eq!(disk.read("a.log").unwrap(), b"0123xy");
        // Truncations one below another, and an append between them, are all undone.
        disk.truncate("a.log", 5).unwrap();
        disk.append("a.log", b"ab").unwrap();
        disk.truncate("a.log", 2).unwrap();
        assert_eq!(disk.read("a.log").unwrap(), b"01");
        assert_eq!(disk.crash(), 0, "nothing unsynced is left past the cut");
        assert_eq!(disk.read("a.log").unwrap(), b"0123xy");
    }

    #[test]
    fn a_torn_crash_keeps_part_of_the_last_write() {
        let disk = SimDisk::default();
        disk.append("a.log", b"base").unwrap();
        block_on(disk.sync("a.log")).unwrap();
        disk.append("b.log", b"other").unwrap();
        disk.append("a.log", b"0123456789").unwrap();
        let damage = disk.crash_tearing(Some(2));
        assert_eq!(damage.torn, Some(("a.log".to_owned(), 3)));
        assert_eq!(disk.read("a.log").unwrap(), b"base012");
        assert!(!disk.exists("b.log"));
        assert_eq!(damage.lost_bytes, 7 + 5);
    }

    #[test]
    fn a_full_disk_refuses_writes_and_a_slow_one_delays_syncs() {
        let disk = SimDisk::default();
        disk.set_full(true);
        assert_eq!(
            disk.append("a.log", b"x").unwrap_err().kind(),
            io::ErrorKind::StorageFull
        );
        assert!(disk.write_atomic("cp", b"x").is_err());
        disk.set_full(false);
        disk.append("a.log", b"x").unwrap();
        disk.set_sync_delay(Duration::from_millis(250));
        let took = block_on(async {
            let start = madsim::time::Instant::now();
            disk.sync("a.log").await.unwrap();
            start.elapsed()
        });
        assert!(took >= Duration::from_millis(250), "{took:?}");
    }

    #[test]
    fn corruption_flips_a_synced_bit_a_crc_covers_and_wipes_spare_metadata() {
        let batch =
            model::batch::encode(&[(None, bytes::Bytes::from_static(b"value"))], 0).to_vec();
        let disk_with_a_batch = || {
            let disk = SimDisk::default();
            disk.append("t-0/0.log", &batch).unwrap();
            block_on(disk.sync("t-0/0.log")).unwrap();
            disk.append("__cluster_metadata-0/0.log", &batch).unwrap();
            block_on(disk.sync("__cluster_metadata-0/0.log")).unwrap();
            disk.write_atomic("quorum-state", b"q").unwrap();
            disk
        };
        for pick in [0u64, 0x1234_5678_9abc, u64::MAX] {
            let disk = disk_with_a_batch();
            let (path, position) = disk.corrupt(pick, |_| true).unwrap();
            assert_eq!(path, "t-0/0.log");
            assert!(position as usize >= model::batch::CRC_COVERED_FROM);
            let bytes = disk.read(&path).unwrap();
            assert!(
                model::batch::parse(&bytes).is_err(),
                "the CRC finds the flip at {position}"
            );
        }
        let disk = disk_with_a_batch();
        disk.corrupt(7, |_| true);
        disk.crash();
        assert!(
            model::batch::parse(&disk.read("t-0/0.log").unwrap()).is_err(),
            "the flip is at rest"
        );
        assert_eq!(disk.wipe_data() as usize, batch.len());
        assert!(disk.exists("quorum-state") && disk.exists("__cluster_metadata-0/0.log"));
    }
}
