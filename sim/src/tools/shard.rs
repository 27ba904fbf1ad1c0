//! Swarms split across machines: shard K of N runs its share of a seed range and writes its
//! results as JSON lines; `merge` joins the shards' files into the summary one unsharded swarm
//! prints, and refuses (naming what is wrong) when a shard is missing, doubled or cut short.
//!
//! The split is by stride: shard K (counted from 0) of N runs the seeds `START + K`,
//! `START + K + N`, `START + K + 2N`, ... below END. Neighbouring seeds land on different shards,
//! so a run of slow seeds does not make one shard the straggler.
//!
//! A shard file holds one `shard` line (what was asked), one `result` line per seed, written as
//! each run ends so a killed shard keeps what it finished, and a `done` line at the end.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::tools::swarm::{summarize, SeedResult, SwarmSummary};

/// Shard `index` of `count`, counted from 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    /// This shard's index, below `count`.
    pub index: u64,
    /// How many shards the swarm is split into (at least 1).
    pub count: u64,
}

impl Shard {
    /// Reads `K/N`.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not a shard: expected K/N, like 0/4"))?;
        let index = k
            .trim()
            .parse()
            .map_err(|_| format!("shard `{text}`: `{k}` is not a number"))?;
        let count = n
            .trim()
            .parse()
            .map_err(|_| format!("shard `{text}`: `{n}` is not a number"))?;
        Shard::new(index, count).map_err(|e| format!("shard `{text}`: {e}"))
    }

    /// Shard `index` of `count`; an error unless `index < count`.
    pub fn new(index: u64, count: u64) -> Result<Shard, String> {
        if count == 0 {
            return Err("a swarm has at least one shard".into());
        }
        if index >= count {
            return Err(format!(
                "shard index {index} is not below the shard count {count} (indices count from 0)"
            ));
        }
        Ok(Shard { index, count })
    }

    /// The shard whose index is in environment variable `var` (as Kubernetes Indexed Jobs set
    /// JOB_COMPLETION_INDEX), minus `base` for schedulers that count from 1.
    pub fn from_env(var: &str, count: u64, base: u64) -> Result<Shard, String> {
        let text =
            std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))?;
        let raw: u64 = text
            .trim()
            .parse()
            .map_err(|_| format!("{var}={text} is not a shard index (a number)"))?;
        let index = raw
            .checked_sub(base)
            .ok_or_else(|| format!("{var}={raw} is below the index base {base}"))?;
        Shard::new(index, count).map_err(|e| format!("{var}={raw}: {e}"))
    }

    /// This shard's seeds of `start..end`.
    pub fn seeds(&self, start: u64, end: u64) -> Vec<u64> {
        (start..end)
            .skip(self.index as usize)
            .step_by(self.count as usize)
            .collect()
    }
}

/// What a shard was asked to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardHeader {
    /// The scenario's name (its file's path), as the summary gives it.
    pub scenario: String,
    /// The faults option (`scenario`, `swarm`, `none`).
    pub faults: String,
    /// The knobs option (`scenario`, `swarm`).
    #[serde(default = "scenario_knobs")]
    pub knobs: String,
    /// The first seed of the whole swarm's range.
    pub start: u64,
    /// The end of the whole swarm's range, itself excluded.
    pub end: u64,
    /// Which shard this is.
    pub shard: Shard,
    /// The version of logsim that ran the shard.
    pub logsim: String,
    /// The scenario's sometimes-properties, judged once the shards are merged.
    #[serde(default)]
    pub sometimes: Vec<model::coverage::Mark>,
}

fn scenario_knobs() -> String {
    "scenario".into()
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Shard(ShardHeader),
    Result(SeedResult),
    Done { runs: usize, wall_seconds: f64 },
}

/// Writes a shard's file as it runs.
pub struct ShardWriter {
    out: std::io::BufWriter<std::fs::File>,
}

impl ShardWriter {
    /// Creates the file at `path`, and any folders it needs, with `header` as its first line.
    pub fn create(path: &Path, header: ShardHeader) -> Result<ShardWriter, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut w = ShardWriter {
            out: std::io::BufWriter::new(file),
        };
        w.line(&Line::Shard(header))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(w)
    }

    fn line(&mut self, line: &Line) -> std::io::Result<()> {
        let text = serde_json::to_string(line).map_err(std::io::Error::other)?;
        writeln!(self.out, "{text}")?;
        self.out.flush()
    }

    /// Writes one seed's result, flushed at once so that a killed shard keeps it.
    pub fn result(&mut self, r: &SeedResult) -> std::io::Result<()> {
        self.line(&Line::Result(r.clone()))
    }

    /// Writes the closing line: `runs` seeds run in `wall_seconds` wall-clock seconds.
    pub fn done(&mut self, runs: usize, wall_seconds: f64) -> std::io::Result<()> {
        self.line(&Line::Done { runs, wall_seconds })
    }
}

/// One shard file, read back.
#[derive(Debug)]
pub struct ShardFile {
    /// The file's path, as messages name it.
    pub path: String,
    /// What the shard was asked to run.
    pub header: ShardHeader,
    /// Each seed's result, in the order written.
    pub results: Vec<SeedResult>,
    /// The shard's wall time, when it finished.
    pub done: Option<f64>,
}

/// Reads a shard file back. A file cut short reads (its `done` is `None`); an error names the
/// first line that is not a shard line, or a header missing or given twice.
pub fn read(path: &Path) -> Result<ShardFile, String> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let mut header = None;
    let mut results = Vec::new();
    let mut done = None;
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let at = format!("{name}:{}", i + 1);
        let line: Line =
            serde_json::from_str(raw).map_err(|e| format!("{at}: not a shard line: {e}"))?;
        match (line, &header) {
            (Line::Shard(h), None) => header = Some(h),
            (Line::Shard(_), Some(_)) => return Err(format!("{at}: a second shard header")),
            (_, None) => return Err(format!("{at}: results before the shard header")),
            (Line::Result(r), Some(_)) => results.push(r),
            (Line::Done { wall_seconds, .. }, Some(_)) => done = Some(wall_seconds),
        }
    }
    let header = header.ok_or_else(|| format!("{name}: empty, not a shard file"))?;
    Ok(ShardFile {
        path: name,
        header,
        results,
        done,
    })
}

/// Joins shard files into one summary, or says every way in which they do not add up to one
/// whole swarm: different swarms mixed, a shard missing or given twice, a shard cut short, a seed
/// missing, doubled or not the shard's own.
pub fn merge(files: &[ShardFile]) -> Result<SwarmSummary, Vec<String>> {
    let Some(first) = files.first() else {
        return Err(vec!["no shard files given".into()]);
    };
    let h = &first.header;
    let mut problems = Vec::new();
    for f in &files[1..] {
        let o = &f.header;
        if (&o.scenario, &o.faults, &o.knobs, o.start, o.end, o.shard.count)
            != (&h.scenario, &h.faults, &h.knobs, h.start, h.end, h.shard.count)
        {
            problems.push(format!(
                "{} is shard {}/{} of {} (faults {}) seeds {}..{}, but {} is of {} (faults {}) seeds {}..{} in {} shards",
                f.path, o.shard.index, o.shard.count, o.scenario, o.faults, o.start, o.end,
                first.path, h.scenario, h.faults, h.start, h.end, h.shard.count
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut by_index: BTreeMap<u64, Vec<&ShardFile>> = BTreeMap::new();
    for f in files {
        by_index.entry(f.header.shard.index).or_default().push(f);
    }
    for index in 0..h.shard.count {
        match by_index.get(&index).map(Vec::as_slice) {
            None | Some([]) => problems.push(format!("shard {index}/{} is missing", h.shard.count)),
            Some([_]) => {}
            Some(many) => problems.push(format!(
                "shard {index}/{} is given {} times: {}",
                h.shard.count,
                many.len(),
                many.iter()
                    .map(|f| f.path.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    for f in files {
        let shard = f.header.shard;
        let expected = shard.seeds(h.start, h.end);
        let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
        for r in &f.results {
            *seen.entry(r.seed).or_default() += 1;
        }
        let doubled: Vec<u64> = seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(s, _)| *s)
            .collect();
        if !doubled.is_empty() {
            problems.push(format!("{}: seeds run twice: {doubled:?}", f.path));
        }
        let stray: Vec<u64> = seen
            .keys()
            .filter(|s| expected.binary_search(s).is_err())
            .copied()
            .collect();
        if !stray.is_empty() {
            problems.push(format!(
                "{}: seeds that are not shard {}/{}'s: {stray:?}",
                f.path, shard.index, shard.count
            ));
        }
        let missing: Vec<u64> = expected
            .iter()
            .filter(|s| !seen.contains_key(s))
            .copied()
            .collect();
        if !missing.is_empty() || f.done.is_none() {
            problems.push(format!(
                "{}: shard {}/{} {} with {} of its {} seeds{}",
                f.path,
                shard.index,
                shard.count,
                if f.done.is_some() {
                    "ended"
                } else {
                    "was cut short"
                },
                expected.len() - missing.len(),
                expected.len(),
                if missing.is_empty() {
                    String::new()
                } else {
                    format!("; missing {}", list_some(&missing))
                }
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut results: Vec<SeedResult> = files.iter().flat_map(|f| f.results.clone()).collect();
    results.sort_by_key(|r| r.seed);
    // Shards run side by side: the swarm took as long as the slowest.
    let wall = files.iter().filter_map(|f| f.done).fold(0.0, f64::max);
    Ok(summarize(
        &h.scenario,
        &format!("{}..{}", h.start, h.end),
        &results,
        wall,
        &h.sometimes,
    ))
}

fn list_some(seeds: &[u64]) -> String {
    if seeds.len() <= 8 {
        format!("{seeds:?}")
    } else {
        format!("{:?} and {} more", &seeds[..8], seeds.len() - 8)
    }
}
