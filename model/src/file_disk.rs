//! The disk of real mode: the model's flat `/`-separated paths as files under one directory.
//! `sync` is `fsync`, and `write_atomic` writes a temporary file, syncs it and renames it over the
//! old one, so a crash leaves either file whole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::env::{BoxFuture, Disk};

pub struct FileDisk {
    root: PathBuf,
}

impl FileDisk {
    /// A disk rooted at `root`, which is created when absent.
    pub fn open(root: &Path) -> io::Result<FileDisk> {
        fs::create_dir_all(root)?;
        Ok(FileDisk {
            root: root.to_owned(),
        })
    }

    fn path(&self, path: &str) -> io::Result<PathBuf> {
        // The model names its own files; a name that climbs out of the root is a bug, not input.
        if path.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{path}` is not a path under the data directory"),
            ));
        }
        Ok(self.root.join(path))
    }

    fn with_parent(&self, path: &str) -> io::Result<PathBuf> {
        let full = self.path(path)?;
        if let Some(parent) = full.parent() {
            fs::create_dir_all(parent)?;
        }
        Ok(full)
    }

    fn walk(&self, dir: &Path, out: &mut Vec<String>) -> io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                self.walk(&path, out)?;
            } else if path.extension().is_none_or(|e| e != "tmp") {
                let relative = path.strip_prefix(&self.root).map_err(io::Error::other)?;
                let parts: Vec<_> = relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.push(parts.join("/"));
            }
        }
        Ok(())
    }
}

impl Disk for FileDisk {
    fn read(&self, path: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(path)?)
    }

    fn read_at(&self, path: &str, position: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut file = File::open(self.path(path)?)?;
        file.seek(SeekFrom::Start(position))?;
        let mut out = vec![0u8; len];
        file.read_exact(&mut out)?;
        Ok(out)
    }

    fn append(&self, path: &str, data: &[u8]) -> io::Result<u64> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.with_parent(path)?)?;
        let position = file.metadata()?.len();
        file.write_all(data)?;
        Ok(position)
    }

    fn truncate(&self, path: &str, len: u64) -> io::Result<()> {
        OpenOptions::new()
            .write(true)
            .open(self.path(path)?)?
            .set_len(len)
    }

    fn sync<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<()>> {
        let result = self
            .path(path)
            .and_then(|p| OpenOptions::new().write(true).open(p))
            .and_then(|f| f.sync_all());
        Box::pin(async move { result })
    }

    fn write_atomic(&self, path: &str, data: &[u8]) -> io::Result<()> {
        let full = self.with_parent(path)?;
        let tmp = full.with_extension("tmp");
        let mut file = File::create(&tmp)?;
        file.write_all(data)?;
        file.sync_all()?;
        fs::rename(&tmp, &full)?;
        if let Some(parent) = full.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    }

    fn remove(&self, path: &str) -> io::Result<()> {
        match fs::remove_file(self.path(path)?) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }

    fn list(&self, prefix: &str) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        self.walk(&self.root, &mut out)?;
        out.retain(|p| p.starts_with(prefix));
        out.sort();
        Ok(out)
    }

    fn exists(&self, path: &str) -> bool {
        self.path(path).is_ok_and(|p| p.is_file())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> (FileDisk, PathBuf) {
        let root =
            std::env::temp_dir().join(format!("logsim-file-disk-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        (FileDisk::open(&root).expect("a scratch directory"), root)
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn appends_reads_truncates_and_lists_like_the_simulated_disk() {
        let (disk, root) = scratch("basics");
        assert_eq!(disk.append("events-0/0.log", b"hello").unwrap(), 0);
        assert_eq!(disk.append("events-0/0.log", b" world").unwrap(), 5);
        block_on(disk.sync("events-0/0.log")).unwrap();
        assert_eq!(disk.read_at("events-0/0.log", 6, 5).unwrap(), b"world");
        disk.truncate("events-0/0.log", 5).unwrap();
        assert_eq!(disk.read("events-0/0.log").unwrap(), b"hello");
        disk.write_atomic("checkpoint", b"1").unwrap();
        disk.write_atomic("checkpoint", b"2").unwrap();
        assert_eq!(disk.read("checkpoint").unwrap(), b"2");
        assert_eq!(
            disk.list("").unwrap(),
            vec!["checkpoint".to_owned(), "events-0/0.log".to_owned()]
        );
        assert_eq!(disk.list("events-0/").unwrap(), vec!["events-0/0.log"]);
        disk.remove("events-0/0.log").unwrap();
        disk.remove("events-0/0.log").unwrap();
        assert!(!disk.exists("events-0/0.log"));
        assert!(disk.exists("checkpoint"));
        assert!(disk.read("../escape").is_err());
        let _ = fs::remove_dir_all(root);
    }
}
