//! The timeline: one lane per broker and one for the network, as SVG. Bands show faults (down,
//! paused, cut off, skewed clock, disk trouble); marks show elections, truncations, fencing and
//! violations; arrows show the controller's decisions reaching the new leader (a Lamport-style
//! view of who learned what from whom).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{esc, Ev, Scale};

pub const LANE: f64 = 34.0;

/// Lane of `node`: 0 is the network, then brokers in id order.
fn lane_y(node: i64) -> f64 {
    (node.max(0) as f64) * LANE + LANE / 2.0
}

/// Open fault intervals per (lane, fault kind), closed by the matching heal or restart.
struct Bands {
    open: BTreeMap<(i64, String), (u64, String)>,
    out: String,
}

impl Bands {
    fn open(&mut self, node: i64, kind: &str, t: u64, title: String) {
        self.open
            .entry((node, kind.to_owned()))
            .or_insert((t, title));
    }

    fn close(&mut self, node: i64, kind: &str, t: u64, scale: &Scale) {
        if let Some((from, title)) = self.open.remove(&(node, kind.to_owned())) {
            self.band(node, kind, from, t, &title, scale);
        }
    }

    fn band(&mut self, node: i64, kind: &str, from: u64, to: u64, title: &str, scale: &Scale) {
        let (x0, x1) = (scale.x(from), scale.x(to.max(from + 1)));
        let kind = kind.split(' ').next().unwrap_or(kind);
        let y = lane_y(node) - LANE / 2.0 + 3.0;
        let _ = write!(
            self.out,
            r#"<rect class="band {kind}" x="{x0:.1}" y="{y:.1}" width="{:.1}" height="{:.1}"><title>{} {:.3}s-{:.3}s</title></rect>"#,
            x1 - x0,
            LANE - 6.0,
            esc(title),
            from as f64 / 1000.0,
            to as f64 / 1000.0
        );
    }
}

fn band_kind(fault: &str) -> &'static str {
    match fault {
        "crash" | "shutdown" => "down",
        "pause" => "paused",
        "clock-skew" => "skew",
        "partition" | "clog" | "packet-loss" | "latency" => "net",
        _ => "disk",
    }
}

/// The links a network fault names (`1->2 2->1`), as the brokers involved.
fn linked(target: &str) -> Vec<i64> {
    let mut nodes: Vec<i64> = target
        .split([' ', ','])
        .filter_map(|l| l.split_once("->"))
        .flat_map(|(a, b)| [a.trim().parse().ok(), b.trim().parse().ok()])
        .flatten()
        .collect();
    nodes.sort_unstable();
    nodes.dedup();
    nodes
}

/// The timeline's SVG body (without the outer element) for `brokers` lanes.
pub fn render(events: &[Ev], brokers: i64, scale: &Scale) -> String {
    let mut bands = Bands {
        open: BTreeMap::new(),
        out: String::new(),
    };
    let mut marks = String::new();
    let mut decided: BTreeMap<(String, i64), (u64, i64)> = BTreeMap::new();
    for (i, e) in events.iter().enumerate() {
        let (x, y) = (scale.x(e.t), lane_y(e.node));
        let text = e.told.as_deref().unwrap_or("");
        let title = format!("{:.3}s broker {}: {}", e.t as f64 / 1000.0, e.node, text);
        match e.kind.as_str() {
            "fault" => {
                let fault = e.v["fault"].as_str().unwrap_or("");
                let target = e.v["target"].as_str().unwrap_or("");
                match fault {
                    "restart" => bands.close(e.node, "down", e.t, scale),
                    "partition" | "clog" => {
                        bands.open(0, &format!("net {target}"), e.t, text.to_owned());
                        for n in linked(target) {
                            bands.open(n, &format!("net {target}"), e.t, text.to_owned());
                        }
                    }
                    "disk-loss" | "disk-torn" | "disk-corrupt" | "disk-wipe" => {
                        let _ = write!(
                            marks,
                            r#"<path class="mark disk" d="M{x:.1} {:.1} l4 8 l-8 0 z"><title>{}</title></path>"#,
                            y - 12.0,
                            esc(&title)
                        );
                    }
                    _ => {
                        let node = if e.node < 0 { 0 } else { e.node };
                        bands.open(node, band_kind(fault), e.t, text.to_owned());
                    }
                }
            }
            "heal" => {
                let fault = e.v["fault"].as_str().unwrap_or("");
                let target = e.v["target"].as_str().unwrap_or("");
                if fault == "partition" || fault == "clog" {
                    let key = format!("net {target}");
                    bands.close(0, &key, e.t, scale);
                    for n in linked(target) {
                        bands.close(n, &key, e.t, scale);
                    }
                } else {
                    let node = if e.node < 0 { 0 } else { e.node };
                    bands.close(node, band_kind(fault), e.t, scale);
                }
            }
            "partition_changed" => {
                let p = e.partition.clone().unwrap_or_default();
                let epoch = e.v["leader_epoch"].as_i64().unwrap_or(-1);
                decided.insert((p, epoch), (e.t, e.node));
            }
            "became_leader" => {
                let p = e.partition.clone().unwrap_or_default();
                let epoch = e.v["leader_epoch"].as_i64().unwrap_or(-1);
                if let Some((t0, controller)) = decided.get(&(p, epoch)) {
                    let _ = write!(
                        marks,
                        r#"<line class="arrow" x1="{:.1}" y1="{:.1}" x2="{x:.1}" y2="{y:.1}" marker-end="url(#head)"/>"#,
                        scale.x(*t0),
                        lane_y(*controller)
                    );
                }
                let _ = write!(
                    marks,
                    r#"<circle class="mark leader" cx="{x:.1}" cy="{y:.1}" r="5"><title>{}</title></circle>"#,
                    esc(&title)
                );
            }
            "became_follower" => {
                let leader = e.v["leader"].as_i64().unwrap_or(-1);
                if leader > 0 {
                    let _ = write!(
                        marks,
                        r#"<line class="follows" x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}" marker-end="url(#head)"><title>{}</title></line>"#,
                        lane_y(leader),
                        esc(&title)
                    );
                }
            }
            "truncated" => {
                let _ = write!(
                    marks,
                    r#"<path class="mark truncated" d="M{x:.1} {:.1} l5 -9 l-10 0 z"><title>{}</title></path>"#,
                    y + 4.0,
                    esc(&title)
                );
            }
            "quorum_leader" => {
                let _ = write!(
                    marks,
                    r#"<path class="mark quorum" d="M{x:.1} {:.1} l5 5 l-5 5 l-5 -5 z"><title>{}</title></path>"#,
                    y - 5.0,
                    esc(&title)
                );
            }
            "broker_fenced" => {
                let fenced = e.v["broker"].as_i64().unwrap_or(0);
                let fy = lane_y(fenced);
                let _ = write!(
                    marks,
                    r#"<path class="mark fenced" d="M{:.1} {:.1} l8 8 m0 -8 l-8 8"><title>{}</title></path>"#,
                    x - 4.0,
                    fy - 4.0,
                    esc(&title)
                );
            }
            "violation" => {
                let _ = write!(
                    marks,
                    r#"<line id="v-{i}" class="violation" x1="{x:.1}" y1="0" x2="{x:.1}" y2="{:.1}"><title>{}</title></line>"#,
                    (brokers + 1) as f64 * LANE,
                    esc(&title)
                );
            }
            _ => {}
        }
    }
    let end = scale.end_ms;
    let open: Vec<_> = bands.open.keys().cloned().collect();
    for (node, kind) in open {
        bands.close(node, &kind, end, scale);
    }
    let mut lanes = String::new();
    for n in 0..=brokers {
        let _ = write!(
            lanes,
            r#"<line class="lane" x1="0" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#,
            scale.width,
            y = lane_y(n)
        );
    }
    format!("{lanes}{}{marks}", bands.out)
}
