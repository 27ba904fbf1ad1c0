//! `logsim explore`: guided exploration of one scenario, until a check fails or the budget ends.

use std::io::Write;
use std::path::{Path, PathBuf};

use logsim::scenario::Scenario;
use logsim::tools::explore::{Budget, Exploration, Explorer};

use super::args::{load_scenario, Source};

/// `10m`, `90s` (wall-clock) or a number of runs.
pub(super) fn parse_budget(text: &str) -> Result<Budget, String> {
    if let Ok(runs) = text.parse::<usize>() {
        return Ok(Budget::Runs(runs));
    }
    logsim::scenario::parse_duration(text)
        .map(Budget::Wall)
        .map_err(|_| {
            format!("`{text}` is not a budget: expected a number of runs or a duration like 10m")
        })
}

/// What `explore` and `hunt --guided` share: explore `scenario`, print as it goes, write the
/// shrunk finding. Returns the exploration and the finding's file.
pub(super) fn explore_scenario(
    scenario: &Scenario,
    name: &str,
    budget: Budget,
    (jobs, seed): (Option<usize>, u64),
    corpus: Option<&Path>,
) -> Result<(Exploration, Option<PathBuf>), String> {
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let explorer = Explorer {
        scenario,
        jobs,
        seed,
        starting_seeds: 8,
        corpus_file: corpus,
    };
    let progress = |runs, corpus, features| {
        eprint!("\r{runs} runs, corpus {corpus}, {features} features ");
    };
    let found = explorer.explore(budget, &progress)?;
    eprintln!();
    let Some(finding) = &found.finding else {
        return Ok((found, None));
    };
    let out = PathBuf::from(format!("reports/explore-{}.toml", finding.seed));
    std::fs::create_dir_all("reports").map_err(|e| format!("reports: {e}"))?;
    let header = format!(
        "# found by logsim explore on {name}: {}\n# replay: logsim run --seed {} --scenario {}\n",
        finding.violation,
        finding.seed,
        out.display()
    );
    let text = toml::to_string(&finding.shrunk.scenario).map_err(|e| e.to_string())?;
    std::fs::write(&out, header + &text).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok((found, Some(out)))
}

pub(super) fn explore_command(
    source: &Source,
    budget: Budget,
    (jobs, seed): (Option<usize>, u64),
    corpus: Option<PathBuf>,
    json: bool,
) -> Result<bool, String> {
    let (scenario, name) = load_scenario(source)?;
    let corpus = corpus.unwrap_or_else(|| {
        let stem = Path::new(&name)
            .file_stem()
            .map_or("default".into(), |s| s.to_string_lossy());
        PathBuf::from(format!("reports/corpus-{stem}.jsonl"))
    });
    let (found, file) = explore_scenario(&scenario, &name, budget, (jobs, seed), Some(&corpus))?;
    if json {
        let value = serde_json::json!({
            "scenario": name,
            "runs": found.runs,
            "corpus": found.corpus,
            "loaded": found.loaded,
            "features": found.features,
            "marks": found.marks,
            "sim_seconds": found.sim_seconds,
            "finding": found.finding.as_ref().map(|f| serde_json::json!({
                "seed": f.seed,
                "violation": f.violation,
                "after_runs": f.after_runs,
                "faults_before": f.shrunk.faults_before,
                "faults_after": f.shrunk.faults_after,
                "file": file.as_ref().map(|p| p.display().to_string()),
            })),
        });
        outln!("{value}");
    } else {
        outln!("scenario      {name}");
        outln!(
            "runs          {} ({:.0} simulated seconds)",
            found.runs,
            found.sim_seconds
        );
        outln!(
            "corpus        {} entries ({} loaded from {}), {} features, {} of {} marks",
            found.corpus,
            found.loaded,
            corpus.display(),
            found.features,
            found.marks.len(),
            model::coverage::Mark::ALL.len()
        );
        match (&found.finding, &file) {
            (Some(f), Some(file)) => {
                outln!("FOUND         {} after {} runs", f.violation, f.after_runs);
                outln!(
                    "shrunk        {} faults to {} in {} runs: {}",
                    f.shrunk.faults_before,
                    f.shrunk.faults_after,
                    f.shrunk.runs,
                    file.display()
                );
                outln!(
                    "replay        cargo run --release -p logsim -- run --seed {} --scenario {}",
                    f.seed,
                    file.display()
                );
            }
            _ => outln!("no violation within the budget"),
        }
    }
    Ok(found.finding.is_none())
}

/// `hunt --guided` spends as many runs as its seed range holds.
pub(super) fn runs_budget(seeds: (u64, u64)) -> Budget {
    Budget::Runs(seeds.1.saturating_sub(seeds.0) as usize)
}
