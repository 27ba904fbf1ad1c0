//! `logsim report`: one seed as a self-contained HTML report.

use super::args::{load_scenario, Source};
use super::run::replay_command_line;
use std::io::Write;
use std::path::PathBuf;

pub(super) fn report_command(
    seed: u64,
    source: &Source,
    out: Option<PathBuf>,
) -> Result<bool, String> {
    let (scenario, name) = load_scenario(source)?;
    let output = logsim::run::run(&scenario, seed, true);
    let replay = replay_command_line(seed, &name, &source.flags());
    let page = logsim::tools::report::Page {
        title: &name,
        seed,
        brokers: scenario.cluster.brokers as i64,
        replay: &replay,
    };
    let html = logsim::tools::report::render(&page, &output);
    let out = out.unwrap_or_else(|| PathBuf::from(format!("reports/report-{seed}.html")));
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(&out, html).map_err(|e| format!("{}: {e}", out.display()))?;
    outln!(
        "{} {} ({} violations)",
        if output.report.pass { "PASS" } else { "FAIL" },
        out.display(),
        output.report.violations.len()
    );
    Ok(output.report.pass)
}
