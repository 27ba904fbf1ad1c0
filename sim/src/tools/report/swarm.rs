//! The swarm's summary page: a square per seed (red where a check failed, with what caught it and
//! the command that replays it), faults injected by kind, invariants evaluated, coverage marks
//! reached and never reached, sometimes-properties, slowest seeds.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::esc;
use crate::tools::coverage::Coverage;
use crate::tools::swarm::SwarmSummary;
use model::coverage::Mark;

/// The page for a swarm's `summary`. The runs are taken to be the seeds from `first_seed` on, one
/// square each; `replay` gives the command line that replays a seed.
pub fn render(summary: &SwarmSummary, first_seed: u64, replay: &dyn Fn(u64) -> String) -> String {
    let failed: BTreeMap<u64, String> = summary
        .failures
        .iter()
        .map(|f| {
            let why = f
                .violation
                .as_ref()
                .map_or("a failed run".to_owned(), |v| v.to_string());
            (f.seed, why)
        })
        .collect();
    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>swarm {seeds}</title><style>{STYLE}</style></head><body>
<h1>Swarm of {scenario}, seeds {seeds}</h1>
<p>{runs} runs: {passed} passed, {failed} failed, in {wall:.1} s ({rpm:.0} runs/minute); {acked} records acknowledged, {elections} leader elections, {truncations} truncations.</p>
<h2>Seeds</h2><div class="grid">"#,
        scenario = esc(&summary.scenario),
        seeds = esc(&summary.seeds),
        runs = summary.runs,
        passed = summary.passed,
        failed = summary.failures.len(),
        wall = summary.wall_seconds,
        rpm = summary.runs_per_minute,
        acked = summary.acked,
        elections = summary.elections,
        truncations = summary.truncations,
    );
    for seed in first_seed..first_seed + summary.runs as u64 {
        match failed.get(&seed) {
            Some(why) => {
                let _ = write!(
                    html,
                    r##"<a class="s fail" href="#seed-{seed}" title="seed {seed}: {}"></a>"##,
                    esc(why)
                );
            }
            None => {
                let _ = write!(html, r#"<span class="s pass" title="seed {seed}"></span>"#);
            }
        }
    }
    html.push_str("</div>");
    if !failed.is_empty() {
        html.push_str("<h2>Failing seeds</h2><ol>");
        for (seed, why) in &failed {
            let _ = write!(
                html,
                r#"<li id="seed-{seed}"><b>seed {seed}</b>: {}<br><code>{}</code></li>"#,
                esc(why),
                esc(&replay(*seed))
            );
        }
        html.push_str("</ol>");
    }
    table(&mut html, "Faults injected", "kind", &summary.faults);
    table(
        &mut html,
        "Invariants evaluated",
        "invariant",
        &summary.invariants,
    );
    coverage(&mut html, &summary.coverage);
    html.push_str("<h2>Slowest seeds</h2><table><tr><th>seed</th><th>wall s</th></tr>");
    for (seed, wall) in &summary.slowest {
        let _ = write!(html, "<tr><td>{seed}</td><td>{wall:.2}</td></tr>");
    }
    html.push_str("</table></body></html>\n");
    html
}

/// Every mark, reached or not (the unreached shaded, with what each would have meant), then the
/// sometimes-properties' verdicts.
fn coverage(html: &mut String, coverage: &Coverage) {
    let _ = write!(
        html,
        "<h2>Coverage: {} of {} marks reached</h2><table><tr><th>mark</th><th>seeds</th><th>hits</th><th>what it means</th></tr>",
        coverage.reached(),
        coverage.marks.len()
    );
    for (m, about) in coverage.marks.iter().zip(Mark::ALL.iter().map(|m| m.about())) {
        let class = if m.runs == 0 { r#" class="never""# } else { "" };
        let _ = write!(
            html,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(m.mark),
            m.runs,
            m.hits,
            esc(about)
        );
    }
    html.push_str("</table>");
    if !coverage.sometimes.is_empty() {
        html.push_str("<h2>Sometimes-properties</h2><ul>");
        for mark in &coverage.sometimes {
            let verdict = if coverage.vacuous.contains(mark) {
                r#"<b class="vacuous">vacuous: never reached</b>"#
            } else {
                "reached"
            };
            let _ = write!(html, "<li>{}: {verdict}</li>", esc(mark));
        }
        html.push_str("</ul>");
    }
}

fn table(html: &mut String, title: &str, what: &str, rows: &BTreeMap<String, u64>) {
    let _ = write!(
        html,
        "<h2>{title}</h2><table><tr><th>{what}</th><th>count</th></tr>"
    );
    for (k, n) in rows {
        let _ = write!(html, "<tr><td>{}</td><td>{n}</td></tr>", esc(k));
    }
    html.push_str("</table>");
}

const STYLE: &str = "body{font:14px sans-serif;margin:1em 2em;color:#222}
.grid{display:flex;flex-wrap:wrap;gap:2px;max-width:900px}.s{width:10px;height:10px;display:inline-block}
.pass{background:#2a2}.fail{background:#c22}td,th{padding:0 10px;text-align:left}
.never{color:#999}.vacuous{color:#c22}";
