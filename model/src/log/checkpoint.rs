//! Small text checkpoint files (high watermarks, leader epochs, quorum state), in Kafka's shape:
//! a version line, a count line, then one entry per line. Replaced whole and durably.

use crate::env::Disk;

const VERSION: &str = "0";

pub fn write(disk: &dyn Disk, path: &str, lines: &[String]) -> std::io::Result<()> {
    let mut text = format!("{VERSION}\n{}\n", lines.len());
    for line in lines {
        text.push_str(line);
        text.push('\n');
    }
    disk.write_atomic(path, text.as_bytes())
}

/// The entries of a checkpoint, `None` when absent, `Err` when it does not parse.
pub fn read(disk: &dyn Disk, path: &str) -> Result<Option<Vec<String>>, String> {
    if !disk.exists(path) {
        return Ok(None);
    }
    let bytes = disk.read(path).map_err(|e| format!("{path}: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| format!("{path}: not UTF-8"))?;
    let mut lines = text.lines();
    if lines.next() != Some(VERSION) {
        return Err(format!("{path}: unknown checkpoint version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| format!("{path}: bad entry count"))?;
    let entries: Vec<String> = lines.map(str::to_owned).collect();
    if entries.len() != count {
        return Err(format!(
            "{path}: {count} entries announced, {} present",
            entries.len()
        ));
    }
    Ok(Some(entries))
}
