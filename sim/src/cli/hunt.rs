//! `logsim hunt`: a bug switch on, seeds run until a check catches it.

use super::args::{load_scenario, Source};
use super::explore::{explore_scenario, runs_budget};
use logsim::scenario::Scenario;
use logsim::tools::hunt::Hunt;
use std::io::Write;
use std::path::PathBuf;

/// Hunts `bug` by guided exploration of `scenario` with the switch on, for as many runs as the
/// seed range holds; the finding's shrunk scenario goes where the swarm hunt's would.
fn hunt_guided(
    (ground, scenario): (&str, &Scenario),
    bug: model::bugs::Switch,
    seeds: (u64, u64),
    jobs: Option<usize>,
) -> Result<(Hunt, Option<Scenario>), String> {
    let wall = std::time::Instant::now();
    let mut buggy = scenario.clone();
    buggy.bugs = vec![bug];
    let name = format!("{bug}");
    let (found, _) = explore_scenario(&buggy, &name, runs_budget(seeds), (jobs, seeds.0), None)?;
    let finding = found.finding.as_ref();
    let hunt = Hunt {
        bug,
        ground: format!("guided:{ground}"),
        found: finding.is_some(),
        seed: finding.map(|f| f.seed),
        seeds_tried: finding.map_or(found.runs, |f| f.after_runs) as u64,
        caught_by: finding.map(|f| f.violation.check.name().to_owned()),
        message: finding.map(|f| f.violation.to_string()),
        wall_seconds: wall.elapsed().as_secs_f64(),
        sim_seconds: found.sim_seconds,
        shrunk_faults: finding.map(|f| f.shrunk.faults_after),
        faults_before_shrink: finding.map(|f| f.shrunk.faults_before),
    };
    Ok((hunt, found.finding.map(|f| f.shrunk.scenario)))
}

pub(super) fn hunt_command(
    bugs: Vec<String>,
    source: &Source,
    seeds: (u64, u64),
    (jobs, guided): (Option<usize>, bool),
    json: bool,
) -> Result<bool, String> {
    let (scenario, _) = load_scenario(source)?;
    let swarm_default = source.scenario.is_none() && source.faults == "swarm";
    let bugs = bugs
        .iter()
        .map(|b| b.parse())
        .collect::<Result<Vec<model::bugs::Switch>, String>>()?;
    let jobs = jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let mut all_found = true;
    let mut rows = Vec::new();
    for &bug in &bugs {
        let (result, replay) = if guided && source.scenario.is_none() {
            let (ground, scenario) = logsim::tools::hunt::guided_ground(bug)?;
            hunt_guided((ground, &scenario), bug, seeds, Some(jobs))?
        } else if guided {
            let ground = source.scenario.as_ref().and_then(|p| p.file_stem());
            let ground = ground.map_or("scenario".into(), |g| g.to_string_lossy());
            hunt_guided((&ground, &scenario), bug, seeds, Some(jobs))?
        } else if swarm_default {
            let grounds = logsim::tools::hunt::default_grounds(&scenario, bug)?;
            logsim::tools::hunt::hunt_grounds(&grounds, bug, seeds.0..seeds.1, jobs)
        } else {
            logsim::tools::hunt::hunt(&scenario, bug, seeds.0..seeds.1, jobs)
        };
        all_found &= result.found;
        if let (Some(replay), Some(seed), Some(check)) = (&replay, result.seed, &result.caught_by) {
            let out = PathBuf::from(format!("reports/hunt-{bug}-{seed}.toml"));
            std::fs::create_dir_all("reports").map_err(|e| format!("reports: {e}"))?;
            let header =
                format!("# {bug}: seed {seed}, caught by {check}; replay with --seed {seed}\n");
            let text = header + &toml::to_string(replay).map_err(|e| e.to_string())?;
            std::fs::write(&out, text).map_err(|e| format!("{}: {e}", out.display()))?;
        }
        rows.push(result);
    }
    if json {
        let value = if rows.len() == 1 {
            serde_json::to_value(&rows[0])
        } else {
            serde_json::to_value(&rows)
        };
        outln!("{}", value.expect("hunts serialize"));
        return Ok(all_found);
    }
    // Wide enough for the longest switch's name, so that the columns line up.
    let width = (rows.iter())
        .map(|r| r.bug.to_string().len())
        .max()
        .unwrap_or(0)
        .max(3);
    outln!(
        "{:<width$} {:<6} {:<26} {:<42} {:>6} {:>8} {:>8} {:>9}",
        "bug",
        "found",
        "where",
        "caught by",
        "seeds",
        "sim s",
        "wall s",
        "shrunk"
    );
    for r in &rows {
        let shrunk = match (r.faults_before_shrink, r.shrunk_faults) {
            (Some(a), Some(b)) => format!("{a} -> {b}"),
            _ => "-".into(),
        };
        outln!(
            "{:<width$} {:<6} {:<26} {:<42} {:>6} {:>8.0} {:>8.1} {:>9}",
            r.bug.to_string(),
            if r.found { "yes" } else { "NO" },
            r.ground,
            r.caught_by.as_deref().unwrap_or("-"),
            r.seeds_tried,
            r.sim_seconds,
            r.wall_seconds,
            shrunk
        );
        if let (Some(seed), Some(message)) = (r.seed, &r.message) {
            outln!("    seed {seed}: {message}");
            outln!("    replay: cargo run --release -p logsim -- run --seed {seed} --scenario reports/hunt-{}-{seed}.toml", r.bug);
        }
    }
    Ok(all_found)
}
