//! `inconsistent-offsets` (two values at one offset of one key) and `duplicate` (one value at more
//! than one offset).

use super::index::{Index, Key};
use super::{Case, Found};

/// (value, key, offset, line) of every sighting, sorted by value: each value's places in the run.
pub struct Places(Vec<(u64, Key, i64, usize)>);

impl Places {
    /// Where `value` was seen.
    pub fn of(&self, value: u64) -> &[(u64, Key, i64, usize)] {
        let from = self.0.partition_point(|p| p.0 < value);
        let to = self.0.partition_point(|p| p.0 <= value);
        &self.0[from..to]
    }
}

/// Reports both anomalies; returns where each value was seen, for the anomalies that need it.
pub fn check(index: &Index, found: &mut Found) -> Places {
    let names = &index.names;
    let mut where_value = Vec::with_capacity(index.sightings.len());
    for at in index.sightings.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
        let (key, offset) = (at[0].0, at[0].1);
        if at.len() > 1 {
            let key = names[key as usize];
            let case = Case {
                key: key.to_string(),
                offsets: vec![offset],
                values: at.iter().map(|s| s.2).collect(),
                lines: at.iter().map(|s| s.3).collect(),
                detail: format!("offset {offset} of {key} holds {} different values", at.len()),
            };
            found.report("inconsistent-offsets", case);
        }
        for &(_, _, value, line) in at {
            where_value.push((value, key, offset, line));
        }
    }
    where_value.sort_unstable();
    for places in where_value.chunk_by(|a, b| a.0 == b.0) {
        if places.len() > 1 {
            let value = places[0].0;
            let case = Case {
                key: names[places[0].1 as usize].to_string(),
                offsets: places.iter().map(|p| p.2).collect(),
                values: vec![value],
                lines: places.iter().map(|p| p.3).collect(),
                detail: format!("value {value} is at {} offsets", places.len()),
            };
            found.report("duplicate", case);
        }
    }
    Places(where_value)
}
