//! Per partition: who led in which epoch over time (from the controller's decisions), and each
//! replica's high watermark as a line, with truncations marked where a replica cut its log back.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{esc, Ev, Scale};
use crate::observer::ReplicaSample;

pub const LEADER_ROW: f64 = 22.0;
pub const PLOT_HEIGHT: f64 = 160.0;

/// Colours for brokers 1, 2, 3, ... (repeating).
pub fn colour(node: i64) -> &'static str {
    const C: &[&str] = &[
        "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    ];
    C[(node.max(1) as usize - 1) % C.len()]
}

/// One row of leader segments for `partition`, labelled with leader and epoch.
pub fn leaders(events: &[Ev], partition: &str, scale: &Scale) -> String {
    let mut out = String::new();
    let mut current: Option<(u64, i64, i64)> = None;
    let segment = |out: &mut String, from: u64, to: u64, leader: i64, epoch: i64| {
        let (x0, x1) = (scale.x(from), scale.x(to));
        let fill = if leader < 0 { "#ccc" } else { colour(leader) };
        let label = if leader < 0 {
            format!("no leader, epoch {epoch}")
        } else {
            format!("broker {leader} leads epoch {epoch}")
        };
        let _ = write!(
            out,
            r#"<rect x="{x0:.1}" y="2" width="{:.1}" height="{:.1}" fill="{fill}" opacity="0.75"><title>{partition}: {} from {:.3}s</title></rect>"#,
            (x1 - x0).max(0.5),
            LEADER_ROW - 4.0,
            esc(&label),
            from as f64 / 1000.0
        );
    };
    for e in events
        .iter()
        .filter(|e| e.kind == "partition_changed" && e.partition.as_deref() == Some(partition))
    {
        let leader = e.v["leader"].as_i64().unwrap_or(-1);
        let epoch = e.v["leader_epoch"].as_i64().unwrap_or(-1);
        if current.is_some_and(|(_, l, ep)| l == leader && ep == epoch) {
            continue;
        }
        if let Some((from, l, ep)) = current {
            segment(&mut out, from, e.t, l, ep);
        }
        current = Some((e.t, leader, epoch));
    }
    if let Some((from, l, ep)) = current {
        segment(&mut out, from, scale.end_ms, l, ep);
    }
    out
}

/// The high watermark of each replica of `partition` over time, one solid line per broker; its
/// log end, sampled, as a dashed line; and a red mark for each truncation. Returns the SVG body
/// and the highest offset on the scale.
pub fn high_watermarks(
    events: &[Ev],
    samples: &[ReplicaSample],
    partition: &str,
    scale: &Scale,
) -> (String, i64) {
    let mine = || {
        events
            .iter()
            .filter(move |e| e.partition.as_deref() == Some(partition))
    };
    let top = mine()
        .filter_map(|e| match e.kind.as_str() {
            "high_watermark" => e.v["high_watermark"].as_i64(),
            "truncated" => e.v["from"].as_i64(),
            _ => None,
        })
        .chain(
            samples
                .iter()
                .filter(|s| s.partition == partition)
                .map(|s| s.log_end_offset),
        )
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let y = |offset: i64| PLOT_HEIGHT - 4.0 - (offset as f64 / top) * (PLOT_HEIGHT - 8.0);
    // Steps every 0.25 px at most: a long run has tens of thousands of moves.
    let mut lines: BTreeMap<i64, Vec<(f64, f64)>> = BTreeMap::new();
    let mut out = String::new();
    for e in mine() {
        let x = scale.x(e.t);
        match e.kind.as_str() {
            "high_watermark" => {
                let hw = e.v["high_watermark"].as_i64().unwrap_or(0);
                let points = lines.entry(e.node).or_default();
                match points.last_mut() {
                    Some(last) if x - last.0 < 0.25 => last.1 = y(hw),
                    _ => points.push((x, y(hw))),
                }
            }
            "truncated" => {
                let (from, to) = (
                    e.v["from"].as_i64().unwrap_or(0),
                    e.v["to"].as_i64().unwrap_or(0),
                );
                let _ = write!(
                    out,
                    r#"<line class="cut" x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}"><title>{:.3}s broker {} truncates {partition} from {from} to {to}</title></line>"#,
                    y(from),
                    y(to),
                    e.t as f64 / 1000.0,
                    e.node
                );
            }
            _ => {}
        }
    }
    let mut ends: BTreeMap<i64, String> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.partition == partition) {
        let _ = write!(
            ends.entry(s.node as i64).or_default(),
            "{:.1},{:.1} ",
            scale.x(s.t_ms),
            y(s.log_end_offset)
        );
    }
    for (node, points) in ends {
        let _ = write!(
            out,
            r#"<polyline class="leo" stroke="{}" points="{points}"><title>broker {node}: log end of {partition}</title></polyline>"#,
            colour(node)
        );
    }
    for (node, points) in lines {
        let path: String = points
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1} "))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="hw" stroke="{}" points="{path}"><title>broker {node}: high watermark of {partition}</title></polyline>"#,
            colour(node)
        );
    }
    (out, top as i64)
}
