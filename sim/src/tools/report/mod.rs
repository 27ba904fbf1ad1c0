//! `logsim report`: one self-contained HTML file for a run (no network fetches): a timeline per
//! broker with fault bands and elections, who led each partition in which epoch, each replica's
//! high watermark with truncations, the violations linked to where they struck, the client history
//! lines the anomalies name, and the command that replays the run.

mod plot;
pub mod swarm;
mod timeline;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use serde_json::Value;

use crate::tools::narrate;
use crate::run::RunOutput;

/// Width of the time axis in SVG units; the page scales it to the window.
const WIDTH: f64 = 1200.0;

/// One trace event, parsed once for every view.
pub struct Ev {
    /// Simulated milliseconds since the run started.
    pub t: u64,
    /// The broker it happened on; -1 for the harness.
    pub node: i64,
    /// The trace's kind (`became_leader`, `fault`, ...); empty when the line has none.
    pub kind: String,
    /// `topic-partition`, for events about one.
    pub partition: Option<String>,
    /// The whole line, parsed.
    pub v: Value,
    /// The event in plain words ([`narrate::tell`]); `None` when the line has no kind.
    pub told: Option<String>,
}

/// Simulated time to SVG x.
pub struct Scale {
    /// The simulated millisecond at the right edge; later times are drawn there.
    pub end_ms: u64,
    /// The axis's width, in SVG units.
    pub width: f64,
}

impl Scale {
    /// The x of simulated millisecond `t`, held to the right edge.
    pub fn x(&self, t: u64) -> f64 {
        t.min(self.end_ms) as f64 / self.end_ms.max(1) as f64 * self.width
    }
}

/// `s` escaped for HTML text and attribute values (`&`, `<`, `>`, `"`).
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn parse(trace: &[String]) -> Vec<Ev> {
    trace
        .iter()
        .filter_map(|line| {
            let v: Value = serde_json::from_str(line).ok()?;
            let told = narrate::tell(line);
            Some(Ev {
                t: v["t"].as_u64().unwrap_or(0),
                node: v["node"].as_i64().unwrap_or(-1),
                kind: v["kind"].as_str().unwrap_or("").to_owned(),
                partition: told.as_ref().and_then(|t| t.partition.clone()),
                told: told.map(|t| t.text),
                v,
            })
        })
        .collect()
}

/// What the page needs besides the run itself.
pub struct Page<'a> {
    /// The page's title and heading: the scenario's name.
    pub title: &'a str,
    /// The run's seed.
    pub seed: u64,
    /// Brokers in the cluster, numbered from 1: one timeline lane each.
    pub brokers: i64,
    /// The command line that replays the run, shown as given.
    pub replay: &'a str,
}

/// The history lines (1-based) an anomaly message names, as `history lines [3, 9]` writes them.
fn history_lines(message: &str) -> Vec<usize> {
    let Some(start) = message.find("history lines [") else {
        return Vec::new();
    };
    let rest = &message[start + "history lines [".len()..];
    let end = rest.find(']').unwrap_or(rest.len());
    rest[..end]
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect()
}

/// The page for `output`, which must have kept its trace: a run without one draws no events.
pub fn render(page: &Page, output: &RunOutput) -> String {
    let events = parse(&output.trace);
    let end_ms = events.iter().map(|e| e.t).max().unwrap_or(1).max(1);
    let scale = Scale {
        end_ms,
        width: WIDTH,
    };
    let report = &output.report;
    let mut html = String::new();
    let verdict = if report.pass { "PASS" } else { "FAIL" };
    let _ = write!(
        html,
        r#"<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title} seed {seed}</title><style>{STYLE}</style></head><body>
<h1>{title}, seed {seed} <span class="verdict {verdict}">{verdict}</span></h1>
<p>{sim:.1} simulated s, {produced} records produced, {acked} acked, {elections} leader elections, {truncations} truncations, {crashes} crashes; trace hash <code>{hash}</code>.</p>
<p>Replay: <code>{replay}</code></p>
{{FIRST}}<div class="controls">Window from <input id="from" type="number" step="0.5" value="0"> s to <input id="to" type="number" step="0.5" value="{end:.1}"> s <button onclick="zoom()">show</button> <button onclick="all()">all</button></div>
"#,
        title = esc(page.title),
        seed = page.seed,
        sim = report.sim_seconds,
        produced = report.produced,
        acked = report.acked,
        elections = report.elections,
        truncations = report.truncations,
        crashes = report.crashes,
        hash = report.trace_hash,
        replay = esc(page.replay),
        end = end_ms as f64 / 1000.0,
    );
    let lanes_height = (page.brokers + 1) as f64 * timeline::LANE;
    let mut labels = String::from("<div>net</div>");
    for b in 1..=page.brokers {
        let _ = write!(
            labels,
            r#"<div style="color:{}">broker {b}</div>"#,
            plot::colour(b)
        );
    }
    let _ = write!(
        html,
        r##"<h2>Timeline</h2><p class="legend"><span class="k down"></span>down <span class="k paused"></span>paused <span class="k net"></span>cut off <span class="k skew"></span>clock <span class="k disk"></span>disk &nbsp; ● leads an epoch &nbsp; ◆ leads the quorum &nbsp; ▼ truncates &nbsp; ✕ fenced &nbsp; → the controller's decision reaching the leader &nbsp; ⇣ dashed: starts following &nbsp; <span style="color:#d00">|</span> violation &nbsp; <span style="color:#080">╵</span> a coverage mark first reached</p>
<div class="row"><div class="labels" style="height:{lanes_height}px">{labels}</div><div class="plot">{axis}<svg class="zoomable" data-h="{lanes_height}" viewBox="0 0 {WIDTH} {lanes_height}" preserveAspectRatio="none" height="{lanes_height}"><defs><marker id="head" markerWidth="6" markerHeight="6" refX="5" refY="3" orient="auto"><path d="M0,0 L6,3 L0,6 z" fill="#555"/></marker></defs>{body}</svg></div></div>
"##,
        axis = axis(),
        body = timeline::render(&events, &first_violations(&events), page.brokers, &scale)
            + &timeline::marks_reached(&report.counters.marks_first_ms, &scale)
    );
    let partitions: BTreeSet<String> = events
        .iter()
        .filter(|e| e.kind == "partition_changed")
        .filter_map(|e| e.partition.clone())
        .collect();
    html.push_str("<h2>Partitions: leaders, epochs and high watermarks</h2>");
    for p in &partitions {
        let (hw, top) = plot::high_watermarks(&events, &output.samples, p, &scale);
        let _ = write!(
            html,
            r#"<h3>{p}</h3><div class="row"><div class="labels" style="height:{row}px"><div>leader</div></div><div class="plot"><svg class="zoomable" data-h="{row}" viewBox="0 0 {WIDTH} {row}" preserveAspectRatio="none" height="{row}">{leaders}</svg></div></div>
<div class="row"><div class="labels" style="height:{ph}px"><div>offsets 0..{top}</div><div>solid: HW</div><div>dashed: log end</div></div><div class="plot"><svg class="zoomable" data-h="{ph}" viewBox="0 0 {WIDTH} {ph}" preserveAspectRatio="none" height="{ph}">{hw}</svg></div></div>
"#,
            p = esc(p),
            row = plot::LEADER_ROW,
            ph = plot::PLOT_HEIGHT,
            leaders = plot::leaders(&events, p, &scale),
        );
    }
    violations(&mut html, &events, output);
    html.push_str(&format!("<script>{SCRIPT}</script></body></html>\n"));
    html.replace("{END_MS}", &end_ms.to_string())
        .replace("{FIRST}", &first_violation(&events))
}

/// Where the run first broke, at the top of the page, with a link that zooms to it.
fn first_violation(events: &[Ev]) -> String {
    let Some((i, e)) = events
        .iter()
        .enumerate()
        .find(|(_, e)| e.kind == "violation")
    else {
        return String::new();
    };
    format!(
        r##"<p class="first">First broken at <a href="#v-{i}" onclick="around({t})">{s:.3}s</a> on broker {node}: <b>{check}</b>: {message}</p>"##,
        t = e.t,
        s = e.t as f64 / 1000.0,
        node = e.node,
        check = esc(e.v["check"].as_str().unwrap_or("?")),
        message = esc(e.v["message"].as_str().unwrap_or(""))
    )
}

/// The time axis; the script redraws its ticks for the window shown.
fn axis() -> String {
    format!(
        r#"<svg id="axis" viewBox="0 0 {WIDTH} 18" preserveAspectRatio="none" height="18"></svg>"#
    )
}

/// The first violation of each check on each partition (or on none), by event index, with how
/// many violations of that check on that partition the run recorded in all: a check that fails
/// every step from some time on is one finding, not a thousand.
pub(crate) fn first_violations(events: &[Ev]) -> BTreeMap<usize, usize> {
    let mut first: BTreeMap<(&str, &str), (usize, usize)> = BTreeMap::new();
    for (i, e) in events.iter().enumerate().filter(|(_, e)| e.kind == "violation") {
        let check = e.v["check"].as_str().unwrap_or("?");
        let partition = e.v["partition"].as_str().unwrap_or("");
        first.entry((check, partition)).or_insert((i, 0)).1 += 1;
    }
    first.into_values().collect()
}

/// The first violation of each check on each partition, linked to its mark on the timeline, with
/// the count of its repeats; and the history lines that the client-history anomalies name.
fn violations(html: &mut String, events: &[Ev], output: &RunOutput) {
    html.push_str("<h2>Violations</h2>");
    let mut list = String::new();
    let mut lines = BTreeSet::new();
    for e in events.iter().filter(|e| e.kind == "violation") {
        lines.extend(history_lines(e.v["message"].as_str().unwrap_or("")));
    }
    for (i, count) in first_violations(events) {
        let e = &events[i];
        let check = e.v["check"].as_str().unwrap_or("?");
        let message = e.v["message"].as_str().unwrap_or("");
        let repeats = match count {
            1 => String::new(),
            n => format!(" <i>({} more of this check here)</i>", n - 1),
        };
        let _ = write!(
            list,
            r##"<li><a href="#v-{i}" onclick="around({t})">{t_s:.3}s</a> broker {node} <b>{check}</b>: {m}{repeats}</li>"##,
            t = e.t,
            t_s = e.t as f64 / 1000.0,
            node = e.node,
            check = esc(check),
            m = esc(message)
        );
    }
    if list.is_empty() {
        html.push_str("<p>None: every check held.</p>");
    } else {
        let _ = write!(html, "<ol>{list}</ol>");
    }
    if lines.is_empty() {
        return;
    }
    html.push_str("<h2>History lines the anomalies name</h2><table class=\"history\">");
    let shown: BTreeSet<usize> = lines
        .iter()
        .flat_map(|l| l.saturating_sub(2)..=l + 2)
        .filter(|l| *l >= 1 && *l <= output.history.len())
        .collect();
    for l in shown {
        let op = serde_json::to_string(&output.history[l - 1]).unwrap_or_default();
        let class = if lines.contains(&l) {
            " class=\"hit\""
        } else {
            ""
        };
        let _ = write!(
            html,
            "<tr{class}><td>{l}</td><td><code>{}</code></td></tr>",
            esc(&op)
        );
    }
    html.push_str("</table>");
}

const STYLE: &str = "body{font:14px sans-serif;margin:1em 2em;color:#222}code{font-size:12px}
.verdict{padding:2px 8px;border-radius:4px;color:#fff}.PASS{background:#2a2}.FAIL{background:#c22}
.row{display:flex;align-items:flex-start}.labels{width:90px;flex:none;font-size:12px}
.labels div{height:34px;line-height:34px}.plot{flex:1;min-width:0}.plot svg{width:100%;display:block;background:#fafafa}
.lane{stroke:#ddd;stroke-width:1;vector-effect:non-scaling-stroke}
.band{opacity:.35}.band.down{fill:#555}.band.paused{fill:#999}.band.net{fill:#f90}.band.skew{fill:#a4c}.band.disk{fill:#963}
.k{display:inline-block;width:12px;height:10px;opacity:.5}.k.down{background:#555}.k.paused{background:#999}.k.net{background:#f90}.k.skew{background:#a4c}.k.disk{background:#963}
.mark.leader{fill:#2a2}.mark.quorum{fill:#27c}.mark.truncated{fill:#d22}.mark.disk{fill:#963}.mark.fenced{stroke:#000;stroke-width:2;fill:none;vector-effect:non-scaling-stroke}
.follows{stroke:#8ab;stroke-width:1;stroke-dasharray:3 2;vector-effect:non-scaling-stroke}
.first{border:2px solid #d00;padding:6px 10px;background:#fff5f5}
.arrow{stroke:#555;stroke-width:1;vector-effect:non-scaling-stroke;opacity:.6}
.violation{stroke:#d00;stroke-width:2;vector-effect:non-scaling-stroke}
.reached{stroke:#080;stroke-width:1.5;vector-effect:non-scaling-stroke}
.hw{fill:none;stroke-width:1.5;vector-effect:non-scaling-stroke}.leo{fill:none;stroke-width:1;stroke-dasharray:4 3;opacity:.7;vector-effect:non-scaling-stroke}.cut{stroke:#d00;stroke-width:3;vector-effect:non-scaling-stroke}
.history td{padding:0 6px;vertical-align:top}.history tr.hit{background:#fdd}
.tick{font-size:10px;fill:#555}";

const SCRIPT: &str = "const END={END_MS},W=1200;
function ticks(a,b){const ax=document.getElementById('axis');let s='';const span=(b-a)/1000;
const step=[0.1,0.2,0.5,1,2,5,10,20,30,60].find(x=>span/x<=12)||120;
for(let t=Math.ceil(a/1000/step)*step;t<=b/1000;t+=step){const x=(t*1000-a)/(b-a)*W;
s+=`<line x1=\"${x}\" y1=\"12\" x2=\"${x}\" y2=\"18\" stroke=\"#555\" vector-effect=\"non-scaling-stroke\"/><text class=\"tick\" x=\"${x+2}\" y=\"10\">${t.toFixed(1)}s</text>`;}
ax.innerHTML=s;}
function show(a,b){a=Math.max(0,a);b=Math.min(END,Math.max(b,a+1));
for(const s of document.querySelectorAll('svg.zoomable')){const h=s.dataset.h;
s.setAttribute('viewBox',`${a/END*W} 0 ${(b-a)/END*W} ${h}`);}ticks(a,b);
document.getElementById('from').value=(a/1000).toFixed(1);document.getElementById('to').value=(b/1000).toFixed(1);}
function zoom(){show(+document.getElementById('from').value*1000,+document.getElementById('to').value*1000);}
function all(){show(0,END);}
function around(t){show(t-3000,t+2000);}
all();";
