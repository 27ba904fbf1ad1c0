//! The leader-epoch cache: for each leader epoch, the first offset written in it. It answers the
//! question at the heart of KIP-101 and KIP-279: where does epoch `e` end in this log?

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochCache {
    /// (epoch, start offset), both strictly increasing.
    entries: Vec<(i32, i64)>,
}

/// The answer to "where does epoch e end": the largest epoch at or below `e` that this log has,
/// and the offset where it ends. `(-1, -1)` when the log has no such epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EpochEnd {
    pub epoch: i32,
    pub end_offset: i64,
}

impl EpochEnd {
    pub const UNDEFINED: EpochEnd = EpochEnd {
        epoch: -1,
        end_offset: -1,
    };
}

impl EpochCache {
    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    pub fn latest_epoch(&self) -> i32 {
        self.entries.last().map_or(-1, |e| e.0)
    }

    pub fn start_offset_of(&self, epoch: i32) -> Option<i64> {
        self.entries.iter().find(|e| e.0 == epoch).map(|e| e.1)
    }

    /// Records that `epoch` starts at `start`. Older epochs are ignored, as a follower may append
    /// batches of an epoch it already knows.
    pub fn assign(&mut self, epoch: i32, start: i64) -> bool {
        if let Some(&(last_epoch, last_start)) = self.entries.last() {
            if epoch <= last_epoch {
                return false;
            }
            assert!(
                start >= last_start,
                "epoch {epoch} starts at {start}, before epoch {last_epoch} at {last_start}"
            );
        }
        self.entries.push((epoch, start));
        true
    }

    /// Forgets epochs that start at or after `log_end_offset`, after the log was truncated there.
    pub fn truncate_from_end(&mut self, log_end_offset: i64) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.1 < log_end_offset);
        before != self.entries.len()
    }

    /// The KIP-279 rule: the largest epoch at or below `epoch`, and its end (the next epoch's start,
    /// or the log end for the latest).
    pub fn end_offset_for(&self, epoch: i32, log_end_offset: i64) -> EpochEnd {
        let Some(i) = self.entries.iter().rposition(|e| e.0 <= epoch) else {
            return EpochEnd::UNDEFINED;
        };
        let end_offset = self
            .entries
            .get(i + 1)
            .map_or(log_end_offset, |next| next.1);
        EpochEnd {
            epoch: self.entries[i].0,
            end_offset,
        }
    }

    pub fn to_lines(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(e, s)| format!("{e} {s}"))
            .collect()
    }

    pub fn from_lines(lines: &[String]) -> Option<Self> {
        let mut cache = EpochCache::default();
        for line in lines {
            let (e, s) = line.split_once(' ')?;
            if !cache.assign(e.parse().ok()?, s.parse().ok()?) {
                return None;
            }
        }
        Some(cache)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_offset_for_an_epoch_the_log_never_had_is_the_largest_epoch_below_it() {
        let mut c = EpochCache::default();
        c.assign(1, 0);
        c.assign(3, 11);
        assert_eq!(
            c.end_offset_for(2, 21),
            EpochEnd {
                epoch: 1,
                end_offset: 11
            }
        );
        assert_eq!(
            c.end_offset_for(3, 21),
            EpochEnd {
                epoch: 3,
                end_offset: 21
            }
        );
        assert_eq!(c.end_offset_for(0, 21), EpochEnd::UNDEFINED);
        c.truncate_from_end(11);
        assert_eq!(c.latest_epoch(), 1);
        assert_eq!(EpochCache::from_lines(&c.to_lines()), Some(c));
    }
}
