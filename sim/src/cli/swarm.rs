//! `logsim swarm`: a range of seeds on every core, summarised.

use std::io::Write;
use std::path::PathBuf;

use super::args::{load_scenario, ShardArgs, Source};
use super::run::replay_command_line;
use logsim::run::{self};
use logsim::tools::coverage::Coverage;
use logsim::tools::swarm::{SeedResult, SwarmSummary};
use logsim::Locked;

pub(super) fn print_swarm(summary: &SwarmSummary, flags: &str) {
    outln!("scenario      {}", summary.scenario);
    outln!(
        "runs          {} ({} passed, {} failed), seeds {}",
        summary.runs,
        summary.passed,
        summary.failures.len(),
        summary.seeds
    );
    outln!(
        "speed         {:.1} s wall, {:.1} runs/s, {:.0} runs/minute",
        summary.wall_seconds,
        summary.runs_per_second,
        summary.runs_per_minute
    );
    outln!("acked         {}", summary.acked);
    if let Some(t) = &summary.transactions {
        outln!(
            "transactions  {} committed, {} aborted, {} unknown, {} timed out",
            t.committed,
            t.aborted,
            t.unknown,
            t.timed_out
        );
    }
    outln!(
        "elections     {}, truncations {}",
        summary.elections,
        summary.truncations
    );
    if summary.lost_acks1 > 0 || summary.rereads > 0 {
        outln!(
            "allowed       {} acks=1 writes lost to failovers, {} values read again after consumer restarts and rebalances",
            summary.lost_acks1,
            summary.rereads
        );
    }
    outln!("faults        kind            count");
    for (kind, n) in &summary.faults {
        outln!("              {kind:<15} {n:>6}");
    }
    outln!("invariants    name                                        evaluated");
    for (name, n) in &summary.invariants {
        outln!("              {name:<43} {n:>9}");
    }
    print_coverage(&summary.coverage, summary.runs);
    let slowest: Vec<String> = summary
        .slowest
        .iter()
        .map(|(s, w)| format!("{s} ({w:.2}s)"))
        .collect();
    outln!("slowest       {}", slowest.join(", "));
    for f in &summary.failures {
        outln!(
            "FAIL          {}",
            replay_command_line(f.seed, &summary.scenario, flags)
        );
    }
}

/// Each mark's reach over the swarm, the marks never reached, and the sometimes-properties.
fn print_coverage(coverage: &Coverage, runs: usize) {
    outln!(
        "coverage      {} of {} marks reached          seeds   hits",
        coverage.reached(),
        coverage.marks.len()
    );
    for m in coverage.marks.iter().filter(|m| m.runs > 0) {
        outln!("              {:<44} {:>6} {:>6}", m.mark, m.runs, m.hits);
    }
    let never: Vec<&str> = coverage.never_reached().collect();
    if !never.is_empty() {
        outln!("never reached {}", never.join(", "));
    }
    for mark in &coverage.sometimes {
        let verdict = if coverage.vacuous.contains(mark) {
            format!("VACUOUS: never reached in {runs} seeds")
        } else {
            "reached".to_owned()
        };
        outln!("sometimes     {mark}: {verdict}");
    }
}

pub(super) fn swarm_command(
    seeds: (u64, u64),
    source: &Source,
    jobs: Option<usize>,
    (json, report): (bool, bool),
    shard_args: &ShardArgs,
) -> Result<bool, String> {
    let (scenario, name) = load_scenario(source)?;
    let shard = shard_args.shard()?;
    let mine = shard.seeds(seeds.0, seeds.1);
    let writer = match &shard_args.out {
        Some(path) => Some(std::sync::Mutex::new(
            logsim::tools::shard::ShardWriter::create(
                path,
                logsim::tools::shard::ShardHeader {
                    scenario: name.clone(),
                    faults: source.faults.clone(),
                    knobs: source.knobs.clone(),
                    start: seeds.0,
                    end: seeds.1,
                    shard,
                    logsim: env!("CARGO_PKG_VERSION").to_owned(),
                    sometimes: scenario.sometimes.clone(),
                },
            )?,
        )),
        None => None,
    };
    let write_failed = std::sync::atomic::AtomicBool::new(false);
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = indicatif::ProgressBar::new(mine.len() as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} seeds, {per_sec}, eta {eta} {msg}",
        )
        .expect("a valid template"),
    );
    let failed = std::sync::atomic::AtomicU64::new(0);
    let done = |r: &run::RunReport| {
        if !r.pass {
            let n = failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            bar.set_message(format!("{n} failed"));
            let first = r
                .violations
                .first()
                .map(|v| v.to_string())
                .unwrap_or_default();
            bar.println(format!(
                "FAIL seed {}: {first}\n  {}",
                r.seed,
                replay_command_line(r.seed, &name, &source.flags())
            ));
        }
        if let Some(w) = &writer {
            if w.locked().result(&SeedResult::from(r)).is_err() {
                write_failed.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        bar.inc(1);
    };
    let wall = std::time::Instant::now();
    let results = logsim::tools::swarm::run_seeds(&scenario, &mine, jobs, &done);
    let wall = wall.elapsed().as_secs_f64();
    bar.finish_and_clear();
    let label = if shard.count == 1 {
        format!("{}..{}", seeds.0, seeds.1)
    } else {
        format!(
            "{}..{} shard {}/{}",
            seeds.0, seeds.1, shard.index, shard.count
        )
    };
    let summary =
        logsim::tools::swarm::summarize(&name, &label, &results, wall, &scenario.sometimes);
    if let (Some(w), Some(path)) = (&writer, &shard_args.out) {
        if write_failed.into_inner() || w.locked().done(results.len(), wall).is_err() {
            return Err(format!("{}: could not write every result", path.display()));
        }
    }
    if report {
        let replay = |seed| replay_command_line(seed, &name, &source.flags());
        let html = logsim::tools::report::swarm::render(&summary, seeds.0, &replay);
        let out = PathBuf::from(format!("reports/swarm-{}-{}.html", seeds.0, seeds.1));
        std::fs::create_dir_all("reports").map_err(|e| format!("reports: {e}"))?;
        std::fs::write(&out, html).map_err(|e| format!("{}: {e}", out.display()))?;
        eprintln!("report: {}", out.display());
    }
    if json {
        outln!(
            "{}",
            serde_json::to_string(&summary).expect("summaries serialize")
        );
    } else {
        print_swarm(&summary, &source.flags());
    }
    Ok(summary.pass())
}
