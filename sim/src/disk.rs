//! The simulated disk each broker writes through, owned by the harness so it outlives the node.
//!
//! Fault model: bytes written since a file's last sync are volatile. A crash (`crash`) puts every
//! file back to its last synced contents, and a file never synced disappears. `write_atomic` (write,
//! sync, rename) and `remove` are durable at once, as a journaling file system's rename is once the
//! directory is synced. Left out for now: torn writes, bit flips, full disks and slow syncs, which
//! the fault-injection work adds through this same layer.

use std::collections::BTreeMap;
use std::io;
use std::sync::Mutex;

use model::env::{BoxFuture, Disk};

#[derive(Default)]
struct SimFile {
    data: Vec<u8>,
    /// The contents a crash returns to; `None` until the first sync.
    durable: Option<Vec<u8>>,
    /// The lowest byte changed since the last sync.
    changed_from: usize,
}

#[derive(Default)]
pub struct SimDisk {
    files: Mutex<BTreeMap<String, SimFile>>,
    lost_bytes: Mutex<u64>,
}

fn not_found(path: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{path}: no such file"))
}

impl SimDisk {
    fn files(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SimFile>> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A power loss: every unsynced byte is gone. Returns how many bytes were lost.
    pub fn crash(&self) -> u64 {
        let mut lost = 0u64;
        self.files().retain(|_, f| match &f.durable {
            None => {
                lost += f.data.len() as u64;
                false
            }
            Some(d) => {
                lost += f.data.len().saturating_sub(f.changed_from) as u64;
                f.data = d.clone();
                f.changed_from = f.data.len();
                true
            }
        });
        *self.lost_bytes.lock().unwrap_or_else(|p| p.into_inner()) += lost;
        lost
    }

    pub fn lost_bytes(&self) -> u64 {
        *self.lost_bytes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes written and not yet synced, across all files.
    pub fn unsynced_bytes(&self) -> u64 {
        self.files()
            .values()
            .map(|f| f.data.len().saturating_sub(f.changed_from) as u64)
            .sum()
    }
}

impl Disk for SimDisk {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        self.files()
            .get(path)
            .map(|f| f.data.clone())
            .ok_or_else(|| not_found(path))
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
        let mut files = self.files();
        let f = files.entry(path.to_owned()).or_default();
        let position = f.data.len() as u64;
        f.data.extend_from_slice(data);
        Ok(position)
    }

    fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        let mut files = self.files();
        let f = files.get_mut(path).ok_or_else(|| not_found(path))?;
        let len = len as usize;
        if len < f.data.len() {
            f.data.truncate(len);
            f.changed_from = f.changed_from.min(len);
        }
        Ok(())
    }

    fn sync<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<()>> {
        let result = (|| {
            let mut files = self.files();
            let f = files.get_mut(path).ok_or_else(|| not_found(path))?;
            match &mut f.durable {
                None => f.durable = Some(f.data.clone()),
                Some(d) => {
                    d.truncate(f.changed_from);
                    d.extend_from_slice(&f.data[f.changed_from.min(f.data.len())..]);
                }
            }
            f.changed_from = f.data.len();
            Ok(())
        })();
        Box::pin(async move { result })
    }

    fn write_atomic(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let file = SimFile {
            data: data.to_vec(),
            durable: Some(data.to_vec()),
            changed_from: data.len(),
        };
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
    }
}
