//! Leader completeness: a broker that takes up leadership of a partition holds every record that
//! was acknowledged with acks=all before the controller elected it. Content is compared by the
//! committed-data check; this one asks that the new leader's log reaches past every such offset.
//!
//! "Elected" is the controller's decision, not the moment the broker takes the leadership up. A
//! broker that learns of its election late (it froze, or its metadata lagged) still takes it up,
//! as a Kafka broker applies its metadata log in order; by then later leaders may have acknowledged
//! records the stale leader never saw, which it is not required to hold. Its completeness is owed
//! to what was acknowledged when the controller chose it from the ISR.

use crate::record::history::AckedSend;
use super::Check;
use super::view::NodeView;
use super::Violation;
use model::env::Event;
use model::BrokerId;
use std::collections::BTreeMap;
use std::sync::Arc;

/// An election to verify at the next step: who, what, and when the controller made it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Election {
    /// The broker that took up the leadership.
    pub node: BrokerId,
    /// The partition (`events-2`).
    pub partition: String,
    /// The epoch it leads.
    pub leader_epoch: i32,
    /// When the controller decided it, in simulated milliseconds (when it was taken up, if no
    /// decision was seen).
    pub time_ms: u64,
}

/// When each controller first named each leader of each epoch, from its partition-change events.
#[derive(Default)]
pub struct ElectedAt {
    /// (cluster, partition, leader epoch, leader) -> the first time a controller named it.
    named: BTreeMap<(u8, String, i32, BrokerId), u64>,
}

impl ElectedAt {
    /// Notes a controller's decision that `leader` leads `partition` in `leader_epoch`; an ISR
    /// change in the same epoch keeps the first time.
    pub fn named(
        &mut self,
        cluster: u8,
        partition: &str,
        leader_epoch: i32,
        leader: BrokerId,
        time_ms: u64,
    ) {
        self.named
            .entry((cluster, partition.to_string(), leader_epoch, leader))
            .or_insert(time_ms);
    }

    /// The election of `node` that it takes up at `took_up_ms`: dated by the controller's
    /// decision when one was seen, else by the taking up.
    pub fn election(
        &self,
        cluster: u8,
        node: BrokerId,
        partition: &str,
        leader_epoch: i32,
        took_up_ms: u64,
    ) -> Election {
        let key = (cluster, partition.to_string(), leader_epoch, node);
        let decided = self.named.get(&key).copied().unwrap_or(took_up_ms);
        Election {
            node,
            partition: partition.to_string(),
            leader_epoch,
            time_ms: decided.min(took_up_ms),
        }
    }
}

/// The highest offset acknowledged on each partition by each moment, built as acknowledgements
/// arrive, so that checking an election does not walk every acknowledgement of the run.
#[derive(Default)]
pub struct AckedBefore {
    /// How many of the run's acknowledgements are taken in.
    seen: usize,
    /// partition -> (time, highest offset acknowledged by then), in time order.
    by_partition: BTreeMap<Arc<str>, Vec<(u64, i64)>>,
}

impl AckedBefore {
    /// Takes in the acknowledgements that came after those seen before: `acked` only grows, in
    /// the order of simulated time.
    fn catch_up(&mut self, acked: &[AckedSend]) {
        for a in acked.get(self.seen..).unwrap_or_default() {
            let steps = self.by_partition.entry(a.partition.clone()).or_default();
            match steps.last_mut() {
                Some((time, highest)) if *time == a.time_ms => *highest = (*highest).max(a.offset),
                Some(&mut (time, highest)) => {
                    assert!(time < a.time_ms, "{}: acknowledged back in time", a.partition);
                    steps.push((a.time_ms, highest.max(a.offset)));
                }
                None => steps.push((a.time_ms, a.offset)),
            }
        }
        self.seen = acked.len();
    }

    /// The highest offset of `partition` acknowledged before `time_ms`.
    fn highest_before(&self, partition: &str, time_ms: u64) -> Option<i64> {
        let steps = self.by_partition.get(partition)?;
        let before = steps.partition_point(|(time, _)| *time < time_ms);
        before.checked_sub(1).map(|i| steps[i].1)
    }
}

/// The rule of this module as an invariant: elections are heard as they are taken up (dated by
/// the controller's decision, from its partition-change events) and judged at the next step.
#[derive(Default)]
pub struct LeaderCompleteness {
    /// Elections whose leaders the next step checks.
    elections: Vec<Election>,
    /// When the controllers made each election, to date the elections above.
    elected_at: ElectedAt,
    /// The acknowledgements the elections are compared with, taken in as they come.
    acked_before: AckedBefore,
}

impl super::Invariant for LeaderCompleteness {
    /// An election waiting for its step looks for its leader among all replicas.
    fn incremental(&self) -> bool {
        self.elections.is_empty()
    }

    fn name(&self) -> &'static str {
        super::Check::LeaderCompleteness.name()
    }

    fn check(&mut self, step: &super::Step<'_>) -> super::invariant::Judgment {
        if self.elections.is_empty() {
            return None;
        }
        Some(check(
            step.time_ms,
            &mut self.elections,
            step.nodes,
            step.acked,
            &mut self.acked_before,
        ))
    }

    fn observe(&mut self, heard: &super::invariant::Heard<'_>) -> super::invariant::Judgment {
        let (node, now) = (heard.node, heard.time_ms);
        let cluster = crate::scenario::cluster_of(node);
        match heard.event {
            Event::BecameLeader {
                partition,
                leader_epoch,
                ..
            } => {
                let partition = partition.to_string();
                let election =
                    self.elected_at
                        .election(cluster, node, &partition, *leader_epoch, now);
                self.elections.push(election);
            }
            Event::PartitionChanged {
                partition,
                leader,
                leader_epoch,
                ..
            } if *leader != model::metadata::NO_LEADER => {
                self.elected_at
                    .named(cluster, &partition.to_string(), *leader_epoch, *leader, now);
            }
            _ => {}
        }
        None
    }
}

/// Checks pending elections against the acknowledgements made before each.
/// Elections whose leader is gone or moved on are dropped.
pub fn check(
    time_ms: u64,
    elections: &mut Vec<Election>,
    nodes: &[NodeView],
    acked: &[AckedSend],
    index: &mut AckedBefore,
) -> Vec<Violation> {
    index.catch_up(acked);
    let mut out = Vec::new();
    for e in elections.drain(..) {
        let replica = nodes
            .iter()
            .filter(|n| n.node == e.node)
            .flat_map(|n| &n.replicas)
            .find(|r| {
                *r.partition == *e.partition && r.is_leader && r.leader_epoch == e.leader_epoch
            });
        let Some(r) = replica else { continue };
        let needed = index.highest_before(&e.partition, e.time_ms);
        if let Some(offset) = needed.filter(|o| r.log_end_offset <= *o) {
            out.push(Violation {
                check: Check::LeaderCompleteness,
                time_ms,
                node: Some(e.node),
                partition: Some(e.partition.clone()),
                offsets: vec![offset],
                message: format!(
                    "the leader of epoch {} ends at {} but offset {offset} was acknowledged before its election",
                    e.leader_epoch, r.log_end_offset
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::view::tests::node;
    use super::super::view::ReplicaView;
    use super::*;

    fn sent(offset: i64, time_ms: u64) -> AckedSend {
        AckedSend {
            partition: "t-0".into(),
            offset,
            value: bytes::Bytes::new(),
            time_ms,
        }
    }

    #[test]
    fn a_leader_that_takes_up_its_election_late_owes_only_what_came_before_the_decision() {
        let mut elected = ElectedAt::default();
        elected.named(0, "t-0", 1, 3, 100);
        elected.named(0, "t-0", 1, 3, 400); // an ISR change in the same epoch
        elected.named(0, "t-0", 2, 1, 500);
        let late = elected.election(0, 3, "t-0", 1, 900);
        assert_eq!(late.time_ms, 100, "dated by the controller's decision");
        let r = ReplicaView {
            partition: "t-0".into(),
            leader_epoch: 1,
            is_leader: true,
            log_end_offset: 5,
            ..Default::default()
        };
        let nodes = vec![node(3, r)];
        // Offsets 0-4 before epoch 1 was decided; 5-9 acknowledged later, by epoch 2's leader.
        let acked = vec![sent(4, 50), sent(9, 600)];
        let judge = |e: &Election| {
            check(950, &mut vec![e.clone()], &nodes, &acked, &mut AckedBefore::default())
        };
        assert!(judge(&late).is_empty(), "not owed offset 9");
        let taken_up_time = Election {
            time_ms: 900,
            ..late.clone()
        };
        assert_eq!(judge(&taken_up_time)[0].offsets, vec![9], "the old dating");
        // The same late leader missing an offset acknowledged before its election is caught.
        let acked = vec![sent(5, 50)];
        let v = check(950, &mut vec![late], &nodes, &acked, &mut AckedBefore::default());
        assert_eq!(v[0].offsets, vec![5]);
        // Another cluster's decision, or another leader's, does not date this one.
        assert_eq!(elected.election(1, 3, "t-0", 1, 900).time_ms, 900);
        assert_eq!(elected.election(0, 2, "t-0", 1, 900).time_ms, 900);
    }

    #[test]
    fn a_new_leader_missing_an_acknowledged_record_is_caught() {
        let r = ReplicaView {
            partition: "t-0".into(),
            leader_epoch: 2,
            is_leader: true,
            log_end_offset: 5,
            ..Default::default()
        };
        let nodes = vec![node(3, r)];
        let election = Election {
            node: 3,
            partition: "t-0".into(),
            leader_epoch: 2,
            time_ms: 100,
        };
        let acked = vec![sent(4, 50), sent(9, 150)];
        let mut index = AckedBefore::default();
        assert!(
            check(200, &mut vec![election.clone()], &nodes, &acked, &mut index).is_empty(),
            "offset 9 came after"
        );
        let acked = vec![sent(5, 90)];
        let v = check(
            200,
            &mut vec![election.clone()],
            &nodes,
            &acked,
            &mut AckedBefore::default(),
        );
        assert_eq!(
            (v[0].check, v[0].offsets.clone()),
            (Check::LeaderCompleteness, vec![5])
        );
        // Taken in step by step, as a run does: the highest before the election counts, from
        // whichever step it arrived in.
        let mut acked = vec![sent(3, 10), sent(5, 60)];
        let mut index = AckedBefore::default();
        assert!(check(70, &mut vec![], &nodes, &acked, &mut index).is_empty());
        acked.extend([sent(2, 60), sent(8, 100), sent(9, 120)]);
        let v = check(200, &mut vec![election], &nodes, &acked, &mut index);
        assert_eq!(v[0].offsets, vec![5]);
    }
}
