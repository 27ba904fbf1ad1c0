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
/// The timeline of `events`; of the violations, only those `firsts` names (by event index) are
/// drawn, the first of each check on each partition.
pub fn render(
    events: &[Ev],
    firsts: &BTreeMap<usize, usize>,
    brokers: i64,
    scale: &Scale,
) -> String {
    let mut canvas = Canvas {
        bands: Bands {
            open: BTreeMap::new(),
            out: String::new(),
        },
        marks: String::new(),
        decided: BTreeMap::new(),
        scale,
        brokers,
    };
    for (i, e) in events.iter().enumerate() {
        match e.kind.as_str() {
            "fault" => canvas.fault(e),
            "heal" => canvas.heal(e),
            "partition_changed" => {
                let p = e.partition.clone().unwrap_or_default();
                let epoch = e.v["leader_epoch"].as_i64().unwrap_or(-1);
                canvas.decided.insert((p, epoch), (e.t, e.node));
            }
            "violation" if !firsts.contains_key(&i) => {}
            _ => canvas.mark(i, e),
        }
    }
    canvas.finish()
}

/// What the timeline has drawn so far.
struct Canvas<'a> {
    bands: Bands,
    marks: String,
    /// When and by which node each (partition, epoch) was decided, for the arrow to its leader.
    decided: BTreeMap<(String, i64), (u64, i64)>,
    scale: &'a Scale,
    brokers: i64,
}

/// A fault's target and the narration of its event.
fn fault_fields(e: &Ev) -> (&str, &str, &str) {
    let fault = e.v["fault"].as_str().unwrap_or("");
    let target = e.v["target"].as_str().unwrap_or("");
    (fault, target, e.told.as_deref().unwrap_or(""))
}

impl Canvas<'_> {
    fn fault(&mut self, e: &Ev) {
        let (fault, target, text) = fault_fields(e);
        match fault {
            "restart" => self.bands.close(e.node, "down", e.t, self.scale),
            "partition" | "clog" => {
                let key = format!("net {target}");
                for n in std::iter::once(0).chain(linked(target)) {
                    self.bands.open(n, &key, e.t, text.to_owned());
                }
            }
            "disk-loss" | "disk-torn" | "disk-corrupt" | "disk-wipe" => {
                let (x, y) = (self.scale.x(e.t), lane_y(e.node));
                let _ = write!(
                    self.marks,
                    r#"<path class="mark disk" d="M{x:.1} {:.1} l4 8 l-8 0 z"><title>{}</title></path>"#,
                    y - 12.0,
                    esc(&title(e))
                );
            }
            _ => {
                let node = e.node.max(0);
                self.bands.open(node, band_kind(fault), e.t, text.to_owned());
            }
        }
    }

    fn heal(&mut self, e: &Ev) {
        let (fault, target, _) = fault_fields(e);
        if fault == "partition" || fault == "clog" {
            let key = format!("net {target}");
            for n in std::iter::once(0).chain(linked(target)) {
                self.bands.close(n, &key, e.t, self.scale);
            }
        } else {
            self.bands
                .close(e.node.max(0), band_kind(fault), e.t, self.scale);
        }
    }

    /// The mark of event `i`, if its kind has one.
    fn mark(&mut self, i: usize, e: &Ev) {
        let (x, y) = (self.scale.x(e.t), lane_y(e.node));
        let title = esc(&title(e));
        let m = &mut self.marks;
        let _ = match e.kind.as_str() {
            "became_leader" => {
                let p = e.partition.clone().unwrap_or_default();
                let epoch = e.v["leader_epoch"].as_i64().unwrap_or(-1);
                if let Some((t0, controller)) = self.decided.get(&(p, epoch)) {
                    let _ = write!(
                        m,
                        r#"<line class="arrow" x1="{:.1}" y1="{:.1}" x2="{x:.1}" y2="{y:.1}" marker-end="url(#head)"/>"#,
                        self.scale.x(*t0),
                        lane_y(*controller)
                    );
                }
                write!(
                    m,
                    r#"<circle class="mark leader" cx="{x:.1}" cy="{y:.1}" r="5"><title>{title}</title></circle>"#
                )
            }
            "became_follower" => match e.v["leader"].as_i64().unwrap_or(-1) {
                leader if leader > 0 => write!(
                    m,
                    r#"<line class="follows" x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}" marker-end="url(#head)"><title>{title}</title></line>"#,
                    lane_y(leader)
                ),
                _ => Ok(()),
            },
            "truncated" => write!(
                m,
                r#"<path class="mark truncated" d="M{x:.1} {:.1} l5 -9 l-10 0 z"><title>{title}</title></path>"#,
                y + 4.0
            ),
            "quorum_leader" => write!(
                m,
                r#"<path class="mark quorum" d="M{x:.1} {:.1} l5 5 l-5 5 l-5 -5 z"><title>{title}</title></path>"#,
                y - 5.0
            ),
            "broker_fenced" => {
                let fy = lane_y(e.v["broker"].as_i64().unwrap_or(0));
                write!(
                    m,
                    r#"<path class="mark fenced" d="M{:.1} {:.1} l8 8 m0 -8 l-8 8"><title>{title}</title></path>"#,
                    x - 4.0,
                    fy - 4.0
                )
            }
            "violation" => write!(
                m,
                r#"<line id="v-{i}" class="violation" x1="{x:.1}" y1="0" x2="{x:.1}" y2="{:.1}"><title>{title}</title></line>"#,
                (self.brokers + 1) as f64 * LANE
            ),
            _ => Ok(()),
        };
    }

    /// Closes the bands still open at the end of the run and lays the lanes under everything.
    fn finish(mut self) -> String {
        let end = self.scale.end_ms;
        let open: Vec<_> = self.bands.open.keys().cloned().collect();
        for (node, kind) in open {
            self.bands.close(node, &kind, end, self.scale);
        }
        let mut lanes = String::new();
        for n in 0..=self.brokers {
            let _ = write!(
                lanes,
                r#"<line class="lane" x1="0" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#,
                self.scale.width,
                y = lane_y(n)
            );
        }
        format!("{lanes}{}{}", self.bands.out, self.marks)
    }
}

/// A tick on the top lane where each coverage mark was first reached, named in its title.
pub fn marks_reached(first_ms: &BTreeMap<&'static str, u64>, scale: &Scale) -> String {
    let mut out = String::new();
    for (mark, t) in first_ms {
        let about = model::coverage::Mark::named(mark).map_or("", |m| m.about());
        let _ = write!(
            out,
            r#"<line class="reached" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"><title>{:.3}s first reached {}: {}</title></line>"#,
            lane_y(0) - 10.0,
            lane_y(0) - 2.0,
            *t as f64 / 1000.0,
            esc(mark),
            esc(about),
            x = scale.x(*t),
        );
    }
    out
}

fn title(e: &Ev) -> String {
    let text = e.told.as_deref().unwrap_or("");
    format!("{:.3}s broker {}: {}", e.t as f64 / 1000.0, e.node, text)
}
