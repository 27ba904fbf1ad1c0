//! Guided exploration: a corpus of fault schedules that reached something new, and new schedules
//! made from them, until a check fails or the budget is spent.
//!
//! A run's coverage is its features: each coverage mark it reached, each mark's hit count in
//! powers of two (as AFL buckets edge counts), and each pair of marks it reached together. The
//! corpus starts from swarm seeds, their faults taken as the timelines the runs recorded of them
//! (`RunOutput::struck`). Each new candidate takes a corpus entry and changes it: a fault moved,
//! added, dropped, retargeted or lengthened, two schedules spliced at a time, or the run's seed
//! (madsim's schedule, and the knobs under `knobs = "swarm"`) redrawn. A candidate that reaches a
//! feature no earlier run did joins the corpus. Candidates go out in batches, one per core; each
//! is deterministic, and so is the corpus's growth for a given explorer seed and batch size.
//!
//! The first violation stops the exploration. Its schedule is a timeline already, so it always
//! shrinks (`shrink::shrink_timeline`), into a scenario file that replays it.
//!
//! The corpus is written to disk as JSON lines, one entry each, so a later exploration continues
//! from it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use model::TopicPartition;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::checkers::Violation;
use crate::run::{run, RunReport};
use crate::scenario::{Fault, Scenario, Scheduled, Shape, Target};
use crate::tools::shrink::{shrink_timeline, with_timeline, Shrunk};

/// A schedule that reached something new.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// The run's seed.
    pub seed: u64,
    /// Its faults.
    pub timeline: Vec<Scheduled>,
    /// Every feature the run reached (see the module's doc).
    pub features: Vec<u64>,
    /// When the run first reached each mark it reached: (mark, simulated ms).
    #[serde(default)]
    pub first_ms: Vec<(u64, u64)>,
}

/// When to stop, short of a violation.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    /// After this many runs.
    Runs(usize),
    /// After this much wall-clock time (the batch under way finishes).
    Wall(Duration),
}

/// What an exploration found.
pub struct Exploration {
    /// Runs made (the corpus's starting seeds included).
    pub runs: usize,
    /// Entries in the corpus at the end, loaded ones included.
    pub corpus: usize,
    /// Entries the corpus started with, from disk.
    pub loaded: usize,
    /// Features reached over all runs.
    pub features: usize,
    /// Coverage marks reached over all runs.
    pub marks: BTreeSet<&'static str>,
    /// Simulated seconds run, over all runs.
    pub sim_seconds: f64,
    /// The first violation, its run's seed and schedule, and the schedule shrunk.
    pub finding: Option<Finding>,
}

/// A violation exploration found.
pub struct Finding {
    /// The run that failed.
    pub seed: u64,
    /// What caught it.
    pub violation: Violation,
    /// Runs made before it, itself included.
    pub after_runs: usize,
    /// Its schedule, shrunk.
    pub shrunk: Shrunk,
}

/// How an exploration goes.
pub struct Explorer<'a> {
    /// The scenario explored; its own faults are replaced by the schedules tried.
    pub scenario: &'a Scenario,
    /// Runs at once.
    pub jobs: usize,
    /// The explorer's own seed: which schedules it makes.
    pub seed: u64,
    /// Swarm seeds the corpus starts from when it is empty.
    pub starting_seeds: u64,
    /// Where the corpus lives (JSON lines), when it is kept.
    pub corpus_file: Option<&'a Path>,
}

/// The most faults a schedule holds: beyond it, a schedule is noise.
const MAX_FAULTS: usize = 40;

/// How often a child forks from its parent (see `fork_time`): half the time did better than a
/// quarter on `hw-advance-old-epoch`.
const FORK_RATE: f64 = 0.5;

impl Explorer<'_> {
    /// Explores until a violation or the budget; `progress` hears of each batch (runs so far,
    /// corpus size, features).
    pub fn explore(
        &self,
        budget: Budget,
        progress: &dyn Fn(usize, usize, usize),
    ) -> Result<Exploration, String> {
        let wall = std::time::Instant::now();
        let (mut shared, mut corpus) = match self.corpus_file {
            Some(path) => {
                let (file, entries) = CorpusFile::open(path)?;
                (Some(file), entries)
            }
            None => (None, Vec::new()),
        };
        let loaded = corpus.len();
        let mut seen: BTreeSet<u64> = corpus.iter().flat_map(|e| e.features.clone()).collect();
        // A continued exploration makes other schedules than the first did.
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ ((loaded as u64) << 32));
        let mut out = Exploration {
            runs: 0,
            corpus: 0,
            loaded,
            features: 0,
            marks: BTreeSet::new(),
            sim_seconds: 0.0,
            finding: None,
        };
        let spent = |out: &Exploration| match budget {
            Budget::Runs(n) => out.runs >= n,
            Budget::Wall(limit) => wall.elapsed() >= limit,
        };
        let mut starting = 0;
        while !spent(&out) {
            let batch: Vec<(u64, Option<Vec<Scheduled>>)> = (0..self.jobs.max(1))
                .map(|_| {
                    if corpus.is_empty() || (loaded == 0 && starting < self.starting_seeds) {
                        starting += 1;
                        (self.seed.wrapping_add(starting - 1), None)
                    } else {
                        let (seed, timeline) = mutate(&mut rng, &corpus, self.scenario);
                        (seed, Some(timeline))
                    }
                })
                .collect();
            let results = self.run_batch(&batch);
            let before = corpus.len();
            for (seed, timeline, report) in results {
                out.runs += 1;
                out.sim_seconds += report.sim_seconds;
                out.marks.extend(report.counters.marks.keys().copied());
                if let Some(v) = report.violations.first() {
                    // The seed's knobs, if drawn, written in: the shrunk file stands alone.
                    let (base, _) = self.scenario.for_seed(seed);
                    let shrunk = shrink_timeline(&base, seed, v.check, timeline, 1, &|_, _| {});
                    out.finding = Some(Finding {
                        seed,
                        violation: v.clone(),
                        after_runs: out.runs,
                        shrunk,
                    });
                    break;
                }
                let features = features(&report);
                if features.iter().any(|f| !seen.contains(f)) {
                    seen.extend(features.iter().copied());
                    let entry = Entry {
                        seed,
                        timeline,
                        features,
                        first_ms: first_ms(&report),
                    };
                    corpus.push(entry);
                }
            }
            if let Some(file) = &mut shared {
                for theirs in file.sync(&corpus[before..])? {
                    seen.extend(theirs.features.iter().copied());
                    corpus.push(theirs);
                }
            }
            progress(out.runs, corpus.len(), seen.len());
            if out.finding.is_some() {
                break;
            }
        }
        out.corpus = corpus.len();
        out.features = seen.len();
        Ok(out)
    }

    /// Runs a batch side by side. A starting seed (no timeline) runs its swarm mix, whose
    /// recorded faults are run again as a timeline: what is judged, kept and shrunk is always a
    /// timeline's run, the one its features came from.
    fn run_batch(
        &self,
        batch: &[(u64, Option<Vec<Scheduled>>)],
    ) -> Vec<(u64, Vec<Scheduled>, RunReport)> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (batch.iter())
                .map(|(seed, timeline)| {
                    scope.spawn(move || {
                        let timeline = match timeline {
                            Some(t) => t.clone(),
                            None => {
                                let swarm = self.scenario.clone().with_faults("swarm");
                                let swarm = swarm.expect("swarm is a fault mode");
                                let drawn = run(&swarm, *seed, false).struck;
                                drawn.into_iter().map(within_fault_model).collect()
                            }
                        };
                        let candidate = with_timeline(self.scenario, &timeline);
                        (*seed, timeline, run(&candidate, *seed, false).report)
                    })
                })
                .collect();
            (handles.into_iter())
                .map(|h| h.join().expect("a run thread"))
                .collect()
        })
    }
}

/// A run's features: marks, marks' hit counts in powers of two, pairs of marks, and for each mark
/// weighed as a margin but not reached, how near the run came to it, in powers of two.
pub fn features(report: &RunReport) -> Vec<u64> {
    use model::coverage::Mark;
    let all = Mark::ALL.len() as u64;
    let reached: Vec<u64> = (Mark::ALL.iter())
        .filter(|m| report.counters.marks.contains_key(m.name()))
        .map(|m| *m as u64)
        .collect();
    let mut out = Vec::new();
    for &i in &reached {
        let hits = report.counters.marks[Mark::ALL[i as usize].name()];
        out.push(i);
        out.push(all + i * 64 + u64::from(hits.ilog2()));
    }
    for (n, &a) in reached.iter().enumerate() {
        for &b in &reached[n + 1..] {
            out.push(all * 65 + a * all + b);
        }
    }
    let unreached = (report.counters.marks_nearest.iter()).filter(|(_, margin)| **margin <= 0);
    for (name, margin) in unreached {
        if let Some(mark) = Mark::named(name) {
            let short = 1 + margin.unsigned_abs();
            out.push(near_base() + mark as u64 * 64 + u64::from(short.ilog2()));
        }
    }
    out
}

/// When a run first reached each mark it reached, by the mark's feature.
fn first_ms(report: &RunReport) -> Vec<(u64, u64)> {
    (report.counters.marks_first_ms.iter())
        .filter_map(|(name, ms)| Some((model::coverage::Mark::named(name)? as u64, *ms)))
        .collect()
}

/// Where the features of nearness begin, past the marks, their buckets and their pairs.
fn near_base() -> u64 {
    let all = model::coverage::Mark::ALL.len() as u64;
    all * 65 + all * all
}

/// The features that stand for a state: a mark reached, or a distance from a mark not reached.
fn landmarks(entry: &Entry) -> impl Iterator<Item = u64> + '_ {
    let marks = model::coverage::Mark::ALL.len() as u64;
    (entry.features.iter().copied()).filter(move |f| *f < marks || *f >= near_base())
}

/// How many corpus entries reached each landmark.
fn reach_counts(corpus: &[Entry]) -> BTreeMap<u64, u32> {
    let mut reached: BTreeMap<u64, u32> = BTreeMap::new();
    for e in corpus {
        for f in landmarks(e) {
            *reached.entry(f).or_default() += 1;
        }
    }
    reached
}

/// Picks a parent for the next candidate, favouring entries that reached what few others did (the
/// energy of AFL's favoured entries): an entry weighs the sum, over the landmarks it reached (marks,
/// and distances from marks not reached), of one over the square of the number of entries that
/// reached the landmark too. Squared, the one entry that reached a rare mark, or came nearer to
/// one than any other, outweighs a hundred that reached only common ones: it is the way on
/// toward the states past it (a regained leader that remembers reports above its high watermark
/// is one fault away from `hw-advance-old-epoch`'s violation).
fn pick_parent<'c>(
    rng: &mut ChaCha8Rng,
    corpus: &'c [Entry],
    reached: &BTreeMap<u64, u32>,
) -> &'c Entry {
    let weights: Vec<f64> = (corpus.iter())
        .map(|e| {
            (landmarks(e).map(|f| f64::from(reached[&f]).powi(-2)))
                .sum::<f64>()
                .max(1e-6)
        })
        .collect();
    let mut point = rng.random_range(0.0..weights.iter().sum::<f64>());
    for (e, w) in corpus.iter().zip(&weights) {
        if point < *w {
            return e;
        }
        point -= w;
    }
    &corpus[corpus.len() - 1]
}

/// Now and then (`FORK_RATE`), where a child forks from its parent (moonpool's fork at first
/// hit): when the parent first reached the rarest mark it reached. The child keeps the parent's
/// seed and every fault before that time, so it comes to the same state again, and varies only
/// what follows.
fn fork_time(
    rng: &mut ChaCha8Rng,
    parent: &Entry,
    reached: &BTreeMap<u64, u32>,
) -> Option<Duration> {
    if !rng.random_bool(FORK_RATE) {
        return None;
    }
    let rarest = (parent.first_ms.iter()).min_by_key(|(mark, ms)| (reached.get(mark), *ms))?;
    Some(Duration::from_millis(rarest.1))
}

/// A new candidate from the corpus: one to three changes to an entry's schedule, or, when it
/// forks, to the part of it after the fork.
fn mutate(rng: &mut ChaCha8Rng, corpus: &[Entry], scenario: &Scenario) -> (u64, Vec<Scheduled>) {
    let reached = reach_counts(corpus);
    let parent = pick_parent(rng, corpus, &reached);
    let fork = fork_time(rng, parent, &reached);
    vary(rng, parent, fork, corpus, scenario)
}

/// One to three changes to `parent`'s schedule, after `fork` if it forks (then its seed stays).
fn vary(
    rng: &mut ChaCha8Rng,
    parent: &Entry,
    fork: Option<Duration>,
    corpus: &[Entry],
    scenario: &Scenario,
) -> (u64, Vec<Scheduled>) {
    let from = fork.unwrap_or_default().as_millis() as u64;
    let load = (scenario.run.duration.0.as_millis() as u64).max(from + 1);
    let mut timeline = parent.timeline.clone();
    let mut seed = parent.seed;
    for _ in 0..rng.random_range(1..=3) {
        let after: Vec<usize> = (0..timeline.len())
            .filter(|i| timeline[*i].at.as_millis() as u64 >= from)
            .collect();
        let pick = (!after.is_empty()).then(|| after[rng.random_range(0..after.len())]);
        match (rng.random_range(0..7), pick) {
            (0, Some(pick)) => {
                let shift = rng.random_range(-5_000i64..=5_000);
                let at = timeline[pick].at.as_millis() as i64 + shift;
                timeline[pick].at = Duration::from_millis(at.clamp(from as i64, load as i64) as u64);
            }
            (3, Some(pick)) => {
                timeline.remove(pick);
            }
            (4, Some(pick)) => retarget(rng, &mut timeline[pick].fault, scenario),
            (5, _) => {
                // Splice: this schedule up to a time, another's after it.
                let other = &corpus[rng.random_range(0..corpus.len())].timeline;
                let cut = Duration::from_millis(rng.random_range(from..load));
                timeline.retain(|s| s.at < cut);
                timeline.extend(other.iter().filter(|s| s.at >= cut).cloned());
                timeline.truncate(MAX_FAULTS);
            }
            (6, _) if fork.is_none() => seed = rng.random(),
            _ if timeline.len() < MAX_FAULTS => {
                let at = Duration::from_millis(rng.random_range(from..load));
                timeline.push(Scheduled {
                    at,
                    duration: Some(Duration::from_millis(rng.random_range(200..=8_000))),
                    fault: new_fault(rng, scenario),
                    seed: None,
                });
            }
            _ => {}
        }
    }
    timeline.sort_by_key(|s| s.at);
    (seed, timeline)
}

/// A fault from the mix a swarm draws, naming its victims: a child must inherit its parent's
/// faults as they struck, and a victim drawn only at strike time (a random broker, a random
/// link, the leader of a random partition) is drawn anew whenever the faults before it or the
/// run's seed change. Data loss at rest (a wiped or bit-flipped disk) is left out: two of those on
/// one partition's replicas lose acknowledged data in any system, and exploration must not find
/// what the fault model forbids.
fn new_fault(rng: &mut ChaCha8Rng, scenario: &Scenario) -> Fault {
    let target = target(rng, scenario);
    let brokers = scenario.cluster.brokers;
    match rng.random_range(0..11) {
        0 => Fault::Crash(target),
        1 => Fault::DiskTorn(target),
        2 => Fault::Shutdown(target),
        3 => Fault::Pause(target),
        4 => Fault::Partition(match rng.random_range(0..5) {
            0 => halves(rng, brokers),
            1 => Shape::MajorityRing,
            2 => Shape::Isolate(target),
            3 => Shape::OffController(target),
            _ => Shape::Links((0..rng.random_range(1..=4)).filter_map(|_| link(rng, brokers)).collect()),
        }),
        5 => Fault::Clog(link(rng, brokers)),
        6 => Fault::PacketLoss {
            rate: rng.random_range(0.05..0.5),
        },
        7 => Fault::Latency {
            min: Duration::from_millis(1),
            max: Duration::from_millis(rng.random_range(10..=500)),
        },
        8 => Fault::ClockSkew {
            target,
            step_ms: rng.random_range(-2_000..=2_000),
        },
        9 => Fault::DiskFull(target),
        _ => Fault::DiskSlow {
            target,
            delay: Duration::from_millis(rng.random_range(10..=500)),
        },
    }
}

/// A swarm's damage at rest becomes a plain crash of the same broker: the swarm spaces such damage
/// out so that no two copies of a record suffer it, and schedules moved about would not.
fn within_fault_model(mut s: Scheduled) -> Scheduled {
    if let Fault::DiskWipe(t) | Fault::DiskCorrupt(t) = &s.fault {
        s.fault = Fault::Crash(t.clone());
        s.seed = None;
    }
    s
}

/// A broker by its number, a partition's leader, or the controller: who a role names may change
/// from run to run, but a child aims where its parent did.
fn target(rng: &mut ChaCha8Rng, scenario: &Scenario) -> Target {
    let partitions: Vec<TopicPartition> = (scenario.topics.iter())
        .flat_map(|t| (0..t.partitions).map(|p| TopicPartition::new(t.name.as_str(), p)))
        .collect();
    match rng.random_range(0..3) {
        0 if !partitions.is_empty() => {
            Target::Leader(Some(partitions[rng.random_range(0..partitions.len())].clone()))
        }
        1 => Target::Controller,
        _ => Target::Broker(rng.random_range(1..=scenario.cluster.brokers)),
    }
}

/// A one-way link between two brokers (none in a cluster of one).
fn link(rng: &mut ChaCha8Rng, brokers: i32) -> Option<(i32, i32)> {
    if brokers < 2 {
        return None;
    }
    let from = rng.random_range(1..=brokers);
    let to = rng.random_range(1..brokers);
    Some((from, if to >= from { to + 1 } else { to }))
}

/// The brokers split in two, the smaller half of n/2 of them.
fn halves(rng: &mut ChaCha8Rng, brokers: i32) -> Shape {
    let mut all: Vec<i32> = (1..=brokers).collect();
    all.shuffle(rng);
    let rest = all.split_off((brokers / 2) as usize);
    Shape::Groups(vec![all, rest])
}

/// Points a fault at another target, or a link fault at other links.
fn retarget(rng: &mut ChaCha8Rng, fault: &mut Fault, scenario: &Scenario) {
    let brokers = scenario.cluster.brokers;
    match fault {
        Fault::Partition(Shape::Isolate(t) | Shape::OffController(t)) => *t = target(rng, scenario),
        Fault::Partition(Shape::Links(links)) if !links.is_empty() => {
            let pick = rng.random_range(0..links.len());
            if let Some(l) = link(rng, brokers) {
                links[pick] = l;
            }
        }
        Fault::Clog(l) => *l = link(rng, brokers).or(*l),
        aimed => {
            if let Some(t) = aimed.target_mut() {
                *t = target(rng, scenario);
            }
        }
    }
}

/// The corpus on disk, which any number of explorations of one scenario may share (one per
/// process, say, on a machine with many cores): each appends what it found and takes in what
/// the others found since it last looked, both under the file's lock, so lines never interleave.
/// An exploration alone on its file makes the same schedules as ever; beside others, what it
/// tries depends on when their entries arrive, but each finding still replays from its own file.
struct CorpusFile<'a> {
    path: &'a Path,
    /// Bytes of the file already read (or written) by this exploration.
    read_upto: u64,
    /// Lines in those bytes: a bad line is named by its number.
    lines: usize,
}

impl<'a> CorpusFile<'a> {
    /// The file at `path` and the entries it holds (none if it does not exist yet).
    fn open(path: &'a Path) -> Result<(CorpusFile<'a>, Vec<Entry>), String> {
        let mut file = CorpusFile {
            path,
            read_upto: 0,
            lines: 0,
        };
        let entries = if path.exists() { file.sync(&[])? } else { Vec::new() };
        Ok((file, entries))
    }

    /// Appends `ours` and returns the entries others appended since the last look.
    fn sync(&mut self, ours: &[Entry]) -> Result<Vec<Entry>, String> {
        use std::io::{Read, Seek, SeekFrom, Write};
        let at = |e: std::io::Error| format!("{}: {e}", self.path.display());
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let mut file = (std::fs::OpenOptions::new().read(true).append(true).create(true))
            .open(self.path)
            .map_err(at)?;
        file.lock().map_err(at)?;
        let mut text = String::new();
        file.seek(SeekFrom::Start(self.read_upto)).map_err(at)?;
        file.read_to_string(&mut text).map_err(at)?;
        let theirs = parse_entries(self.path, &text, self.lines)?;
        self.lines += text.lines().count() + ours.len();
        let mut lines = String::new();
        for entry in ours {
            lines += &serde_json::to_string(entry).expect("entries serialize");
            lines.push('\n');
        }
        file.write_all(lines.as_bytes()).map_err(at)?;
        self.read_upto = file.seek(SeekFrom::End(0)).map_err(at)?;
        Ok(theirs)
    }
}

/// The entries in `text`, which follows line `before` of the corpus file at `path`.
fn parse_entries(path: &Path, text: &str, before: usize) -> Result<Vec<Entry>, String> {
    (text.lines().enumerate())
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| {
                let line = before + n + 1;
                format!("{} line {line}: not a corpus entry: {e}", path.display())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutations_stay_in_the_fault_model_the_load_phase_and_the_size_limit() {
        let scenario = Scenario::default();
        let load = scenario.run.duration.0;
        let corpus = vec![Entry {
            seed: 1,
            timeline: vec![Fault::Crash(Target::Broker(1)).at(Duration::from_secs(5))],
            features: vec![0, 1],
            first_ms: vec![(0, 3_000)],
        }];
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut seeds = BTreeSet::new();
        for _ in 0..2_000 {
            let (seed, timeline) = mutate(&mut rng, &corpus, &scenario);
            seeds.insert(seed);
            assert!(timeline.len() <= MAX_FAULTS);
            assert!(timeline.windows(2).all(|w| w[0].at <= w[1].at), "sorted");
            for s in &timeline {
                assert!(s.at <= load, "{s:?} after the load phase");
                assert!(
                    !matches!(s.fault, Fault::DiskWipe(_) | Fault::DiskCorrupt(_)),
                    "{s:?}: data lost at rest is outside what exploration may add"
                );
                let drawn_at_strike = matches!(
                    s.fault.target(),
                    Some(Target::Random | Target::Leader(None))
                ) || matches!(
                    s.fault,
                    Fault::Clog(None) | Fault::Partition(Shape::Halves)
                );
                assert!(!drawn_at_strike, "{s:?}: a child could not inherit its victims");
            }
        }
        assert!(seeds.len() > 100, "the run seed is redrawn too");
    }

    /// Some children fork where their parent first reached its rarest mark; a fork keeps the
    /// parent's seed and every fault before, so it reaches that state again, and changes only
    /// what follows.
    #[test]
    fn a_fork_keeps_the_seed_and_the_faults_before_the_rarest_marks_first_reach() {
        let scenario = Scenario::default();
        let crash = |s| Fault::Crash(Target::Broker(1)).at(Duration::from_secs(s));
        let parent = Entry {
            seed: 7,
            timeline: vec![crash(2), crash(4), crash(6), crash(9)],
            // Mark 1 is the parent's alone (first reached at 5 s); mark 0 everyone's.
            features: vec![0, 1],
            first_ms: vec![(0, 1_000), (1, 5_000)],
        };
        let common = Entry {
            features: vec![0],
            first_ms: vec![(0, 1_000)],
            ..parent.clone()
        };
        let corpus = vec![parent.clone(), common.clone(), common];
        let reached = reach_counts(&corpus);
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let forks: Vec<_> = (0..1_000)
            .map(|_| fork_time(&mut rng, &parent, &reached))
            .collect();
        let at_five = forks.iter().filter(|f| **f == Some(Duration::from_secs(5)));
        assert_eq!(at_five.count(), forks.iter().flatten().count(), "the rarest mark's");
        let expected = (FORK_RATE * 1_000.0) as usize;
        let forked = forks.iter().flatten().count();
        assert!(forked.abs_diff(expected) < 60, "{forked} forks in 1000");
        let before = |t: &[Scheduled]| -> Vec<Scheduled> {
            (t.iter().filter(|s| s.at < Duration::from_secs(5)).cloned()).collect()
        };
        let (mut changed_before, mut changed_after) = (0, 0);
        for fork in [Some(Duration::from_secs(5)), None] {
            for _ in 0..1_000 {
                let (seed, timeline) = vary(&mut rng, &parent, fork, &corpus, &scenario);
                let kept = seed == 7 && before(&timeline) == before(&parent.timeline);
                match fork {
                    Some(_) => {
                        assert!(kept, "a fork changed its prefix: {seed} {timeline:?}");
                        changed_after += usize::from(timeline != parent.timeline);
                    }
                    None => changed_before += usize::from(!kept),
                }
            }
        }
        assert!(changed_after > 800, "forks changed {changed_after} of 1000");
        assert!(changed_before > 300, "unforked children changed the prefix {changed_before} times");
    }

    #[test]
    fn features_name_marks_their_hit_buckets_and_their_pairs() {
        let mut report = RunReport::default();
        report.counters.marks.insert("broker-fenced", 5);
        report.counters.marks.insert("vote-granted", 1);
        let f = features(&report);
        // Two marks, two buckets, one pair.
        assert_eq!(f.len(), 5);
        let mut more = report.clone();
        more.counters.marks.insert("broker-fenced", 9);
        assert_ne!(features(&more), f, "a hit count past a power of two is new");
    }

    #[test]
    fn a_run_nearer_a_weighed_mark_than_any_before_has_a_new_feature() {
        let mark = "regained-leader-remembers-reports-above-high-watermark";
        let at = |margin| {
            let mut report = RunReport::default();
            report.counters.marks_nearest.insert(mark, margin);
            if margin > 0 {
                report.counters.marks.insert(mark, 1);
            }
            features(&report)
        };
        assert_eq!(at(-900), at(-1000), "as far, within a power of two");
        assert_ne!(at(-900), at(-30), "nearer");
        assert_eq!(at(0).len(), 1);
        assert_eq!(at(3).len(), 2, "reached: the mark and its hit bucket, no distance");
        let entry = |features| Entry {
            seed: 0,
            timeline: Vec::new(),
            features,
            first_ms: Vec::new(),
        };
        let (far, near) = (entry(at(-900)), entry(at(-30)));
        assert_eq!(landmarks(&near).count(), 1, "a distance is a landmark");
        // The nearer entry's distance is rare; the far one's is shared with nine others.
        let mut corpus = vec![near];
        corpus.extend(std::iter::repeat_n(far, 10));
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let reached = reach_counts(&corpus);
        let picks = (0..1_000)
            .filter(|_| pick_parent(&mut rng, &corpus, &reached).features == corpus[0].features)
            .count();
        assert!(picks > 800, "the nearest entry picked {picks} times in 1000");
    }
}
