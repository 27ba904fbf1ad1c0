//! Network faults, through madsim's network: partitions (random halves, one node isolated, a
//! majority ring, or groups a scenario names), a one-way clogged link, packet loss, and latency
//! spikes. Clogged TCP links queue their bytes and deliver them once healed, so late frames arrive
//! after a heal, as they do after a real partition.
//!
//! Partitions cut links between brokers only; clients keep reaching every broker, so a cut-off
//! leader still hears from producers, the case leader epochs exist for.

use std::sync::Arc;
use std::time::Duration;

use madsim::net::NetSim;
use model::BrokerId;
use rand::RngExt;
use rand_chacha::ChaCha8Rng;

use super::{Nemesis, NORMAL_LATENCY};
use crate::scenario::{FaultKind, Shape};
use crate::record::journal::HarnessEvent;

/// The one-way links (from, to) a shape cuts among `ids`.
pub fn cut_links(
    shape: &Shape,
    ids: &[BrokerId],
    isolated: &[BrokerId],
    rng: &mut ChaCha8Rng,
) -> Vec<(BrokerId, BrokerId)> {
    let n = ids.len();
    if let Shape::Links(links) = shape {
        return links.clone();
    }
    if let Shape::OffController(_) = shape {
        // `isolated` holds the controller first, then the brokers that lose it.
        let Some((controller, cut)) = isolated.split_first() else {
            return Vec::new();
        };
        return cut
            .iter()
            .filter(|b| *b != controller)
            .flat_map(|b| [(*b, *controller), (*controller, *b)])
            .collect();
    }
    let side: Vec<usize> = match shape {
        Shape::Links(_) | Shape::OffController(_) => unreachable!("returned above"),
        Shape::Halves => {
            let mut order = ids.to_vec();
            for i in (1..n).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            let small: Vec<BrokerId> = order[..n / 2].to_vec();
            ids.iter().map(|b| usize::from(small.contains(b))).collect()
        }
        Shape::Isolate(_) => ids
            .iter()
            .map(|b| usize::from(isolated.contains(b)))
            .collect(),
        Shape::Groups(groups) => ids
            .iter()
            .map(|b| {
                groups
                    .iter()
                    .position(|g| g.contains(b))
                    .unwrap_or(groups.len())
            })
            .collect(),
        Shape::MajorityRing => {
            // Each broker keeps its n/2 nearest ring neighbours on either side: with itself, a
            // majority. For three brokers that is everyone, and nothing is cut.
            let reach = n / 2 / 2 + n / 2 % 2;
            let mut links = Vec::new();
            for (i, a) in ids.iter().enumerate() {
                for (j, b) in ids.iter().enumerate() {
                    let d = (i as isize - j as isize).unsigned_abs();
                    let ring = d.min(n - d);
                    if i != j && ring > reach {
                        links.push((*a, *b));
                    }
                }
            }
            return links;
        }
    };
    let mut links = Vec::new();
    for (i, a) in ids.iter().enumerate() {
        for (j, b) in ids.iter().enumerate() {
            if side[i] != side[j] {
                links.push((*a, *b));
            }
        }
    }
    links
}

fn describe(links: &[(BrokerId, BrokerId)]) -> String {
    links
        .iter()
        .map(|(a, b)| format!("{a}->{b}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Cuts `links` for `duration` (or until the heal); `kind` names the fault in the trace.
pub fn cut(
    nemesis: &Arc<Nemesis>,
    kind: FaultKind,
    links: Vec<(BrokerId, BrokerId)>,
    duration: Option<Duration>,
) {
    if links.is_empty() {
        return;
    }
    let net = NetSim::current();
    {
        let cluster = nemesis.cluster();
        let mut active = nemesis.active();
        for (a, b) in &links {
            let count = active.links.entry((*a, *b)).or_default();
            if *count == 0 {
                net.clog_link(cluster.node_id(*a), cluster.node_id(*b));
            }
            *count += 1;
        }
    }
    let text = describe(&links);
    nemesis.trace(-1, HarnessEvent::fault(kind, &text, String::new()));
    if let Some(duration) = duration {
        nemesis.heal_later(duration, move |n| {
            let net = NetSim::current();
            let cluster = n.cluster();
            let mut active = n.active();
            for link in &links {
                if let Some(count) = active.links.get_mut(link) {
                    *count -= 1;
                    if *count == 0 {
                        active.links.remove(link);
                        net.unclog_link(cluster.node_id(link.0), cluster.node_id(link.1));
                    }
                }
            }
            drop((cluster, active));
            n.healed(-1, kind, text);
        });
    }
}

/// Loses `rate` of all packets for `duration` (TCP retransmits, so this delays more than it loses).
pub fn packet_loss(nemesis: &Arc<Nemesis>, rate: f64, duration: Option<Duration>) {
    assert!((0.0..=1.0).contains(&rate));
    nemesis.active().packet_loss += 1;
    NetSim::current().update_config(|c| c.packet_loss_rate = rate);
    nemesis.trace(
        -1,
        HarnessEvent::fault(FaultKind::PacketLoss, "network", format!("rate {rate}")),
    );
    if let Some(duration) = duration {
        nemesis.heal_later(duration, |n| {
            let mut active = n.active();
            active.packet_loss = active.packet_loss.saturating_sub(1);
            if active.packet_loss == 0 {
                NetSim::current().update_config(|c| c.packet_loss_rate = 0.0);
            }
            drop(active);
            n.healed(-1, FaultKind::PacketLoss, "network");
        });
    }
}

/// Every message takes between `latency.start` and `latency.end` for `duration`.
pub fn latency(
    nemesis: &Arc<Nemesis>,
    latency: std::ops::Range<Duration>,
    duration: Option<Duration>,
) {
    assert!(latency.start < latency.end);
    nemesis.active().latency += 1;
    let text = format!("{:?}..{:?}", latency.start, latency.end);
    NetSim::current().update_config(|c| c.send_latency = latency);
    nemesis.trace(-1, HarnessEvent::fault(FaultKind::Latency, "network", text));
    if let Some(duration) = duration {
        nemesis.heal_later(duration, |n| {
            let mut active = n.active();
            active.latency = active.latency.saturating_sub(1);
            if active.latency == 0 {
                NetSim::current().update_config(|c| c.send_latency = NORMAL_LATENCY);
            }
            drop(active);
            n.healed(-1, FaultKind::Latency, "network");
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn rng() -> ChaCha8Rng {
        ChaCha8Rng::seed_from_u64(1)
    }

    #[test]
    fn groups_cut_every_link_between_them_both_ways() {
        let shape: Shape = "1,2|3".parse().unwrap();
        let links = cut_links(&shape, &[1, 2, 3], &[], &mut rng());
        assert_eq!(links, vec![(1, 3), (2, 3), (3, 1), (3, 2)]);
    }

    #[test]
    fn halves_leave_a_majority_together() {
        let links = cut_links(&Shape::Halves, &[1, 2, 3, 4, 5], &[], &mut rng());
        assert_eq!(links.len(), 2 * 2 * 3, "a 2|3 split cuts 6 links each way");
    }

    #[test]
    fn a_majority_ring_of_five_cuts_each_broker_from_its_two_far_neighbours() {
        let links = cut_links(&Shape::MajorityRing, &[1, 2, 3, 4, 5], &[], &mut rng());
        assert_eq!(links.len(), 5 * 2);
        assert!(links.contains(&(1, 3)) && links.contains(&(1, 4)) && !links.contains(&(1, 2)));
        assert!(cut_links(&Shape::MajorityRing, &[1, 2, 3], &[], &mut rng()).is_empty());
    }
}
