//! What changed since the last step. A step's invariants judge the state of a partition across its
//! replicas and the controller's record of it; where none of those changed since the last step,
//! the judgment cannot change either. With hundreds of partitions most are idle at any one step,
//! so a step looks at every replica only to see whether it moved, and judges the partitions where
//! something did.
//!
//! A partition is changed when one of its replicas moved (epoch, role, offsets, ISR, a
//! truncation), appeared or went, when its broker restarted, changed quorum epoch or came into or
//! out of service, or when the controller's record of it (or which controller holds the record)
//! changed.

use std::collections::{BTreeMap, BTreeSet};

use model::partition::Partition;
use model::{BrokerId, TopicPartition};

/// One replica, as far as the step's invariants can tell it apart from the last step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaSeen {
    leader_epoch: i32,
    is_leader: bool,
    high_watermark: i64,
    log_end_offset: i64,
    durable_end_offset: i64,
    truncations: u64,
    partition_epoch: i32,
    /// The leader's ISR and proposed ISR, folded into one number.
    isr: u64,
}

impl ReplicaSeen {
    /// What a step sees of `p`.
    pub fn of(p: &Partition) -> Self {
        let log = &p.log;
        let (partition_epoch, isr) = p.leader_state().map_or((0, 0), |l| {
            let members = l.isr.iter().chain(l.pending_isr.iter().flatten());
            // Members in order, with a marker between the ISR and the proposal.
            let fold = |h: u64, b: &BrokerId| (h ^ (*b as u64 + 1)).wrapping_mul(0x100000001b3);
            let isr = members.fold(l.isr.len() as u64, fold);
            (l.partition_epoch, isr)
        });
        ReplicaSeen {
            leader_epoch: p.leader_epoch,
            is_leader: p.is_leader(),
            high_watermark: log.high_watermark(),
            log_end_offset: log.log_end_offset(),
            durable_end_offset: log.durable_end_offset(),
            truncations: log.truncations(),
            partition_epoch,
            isr,
        }
    }
}

/// A broker as the last step saw it: (quorum epoch, in service, incarnation), and its replicas in
/// the order its state holds them.
struct NodeSeen {
    state: (i32, bool, u64),
    replicas: Vec<(TopicPartition, ReplicaSeen)>,
    step: u64,
}

/// The controller's record of one partition: leader, leader epoch, partition epoch.
pub type ControllerSeen = (BrokerId, i32, i32);

/// What the last step saw, and what changed since.
#[derive(Default)]
pub struct StepChanges {
    nodes: BTreeMap<BrokerId, NodeSeen>,
    /// Each controller's records (one per cluster), by the broker that holds them, with the step
    /// that last saw them.
    controllers: BTreeMap<BrokerId, (u64, Vec<(TopicPartition, ControllerSeen)>)>,
    changed: BTreeSet<TopicPartition>,
    step: u64,
}

impl StepChanges {
    /// Starts a step: nothing changed yet.
    pub fn begin(&mut self) {
        self.changed.clear();
        self.step += 1;
    }

    /// Compares broker `id` (its state and its replicas, in its order) with the last step.
    pub fn node<'a>(
        &mut self,
        id: BrokerId,
        state: (i32, bool, u64),
        replicas: impl Iterator<Item = (&'a TopicPartition, ReplicaSeen)>,
    ) {
        let step = self.step;
        let seen = self.nodes.entry(id).or_insert_with(|| NodeSeen {
            state,
            replicas: Vec::new(),
            step,
        });
        let all = seen.state != state || seen.step + 1 != step;
        (seen.state, seen.step) = (state, step);
        let mut i = 0;
        for (tp, now) in replicas {
            match seen.replicas.get_mut(i) {
                Some((was_tp, was)) if was_tp == tp => {
                    if all || *was != now {
                        self.changed.insert(tp.clone());
                        *was = now;
                    }
                }
                _ => {
                    // A replica came or went here: the rest of the list is taken afresh.
                    for (gone, _) in seen.replicas.drain(i..) {
                        self.changed.insert(gone);
                    }
                    self.changed.insert(tp.clone());
                    seen.replicas.push((tp.clone(), now));
                }
            }
            i += 1;
        }
        for (gone, _) in seen.replicas.drain(i..) {
            self.changed.insert(gone);
        }
    }

    /// Compares the records of the controller that broker `holder` is with what it held at the
    /// last step; a broker that just became a controller holds records all new.
    pub fn controller(
        &mut self,
        holder: BrokerId,
        partitions: impl Iterator<Item = (TopicPartition, ControllerSeen)>,
    ) {
        let now: Vec<_> = partitions.collect();
        let step = self.step;
        match self.controllers.get(&holder) {
            Some((seen, was)) if seen + 1 == step && was.len() == now.len() => {
                for ((was_tp, a), (tp, b)) in was.iter().zip(&now) {
                    if was_tp != tp || a != b {
                        self.changed.insert(was_tp.clone());
                        self.changed.insert(tp.clone());
                    }
                }
            }
            was => {
                let was = was.into_iter().flat_map(|(_, w)| w);
                self.changed.extend(was.map(|(tp, _)| tp.clone()));
                self.changed.extend(now.iter().map(|(tp, _)| tp.clone()));
            }
        }
        self.controllers.insert(holder, (step, now));
    }

    /// Ends a step: brokers not seen in it (down or paused) count as changed, all their replicas.
    pub fn end(&mut self) {
        let step = self.step;
        let gone: Vec<BrokerId> = (self.nodes.iter())
            .filter(|(_, n)| n.step != step)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            if let Some(n) = self.nodes.remove(&id) {
                self.changed.extend(n.replicas.into_iter().map(|(tp, _)| tp));
            }
        }
        // A broker no longer a controller: what its records said no longer holds.
        let (kept, gone): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.controllers)
            .into_iter()
            .partition(|(_, (seen, _))| *seen == step);
        self.controllers = kept;
        for (_, (_, records)) in gone {
            self.changed.extend(records.into_iter().map(|(tp, _)| tp));
        }
    }

    /// Whether anything about `tp` changed in this step.
    pub fn changed(&self, tp: &TopicPartition) -> bool {
        self.changed.contains(tp)
    }

    /// How many partitions changed in this step.
    pub fn count(&self) -> usize {
        self.changed.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(n: i32) -> TopicPartition {
        TopicPartition::new("t", n)
    }

    fn seen(high_watermark: i64) -> ReplicaSeen {
        ReplicaSeen {
            leader_epoch: 1,
            is_leader: false,
            high_watermark,
            log_end_offset: high_watermark,
            durable_end_offset: high_watermark,
            truncations: 0,
            partition_epoch: 0,
            isr: 0,
        }
    }

    fn step(c: &mut StepChanges, nodes: &[(BrokerId, Vec<(TopicPartition, ReplicaSeen)>)]) {
        c.begin();
        for (id, replicas) in nodes {
            c.node(*id, (1, true, 1), replicas.iter().map(|(t, s)| (t, *s)));
        }
        c.end();
    }

    #[test]
    fn only_what_moved_is_changed_and_a_vanished_broker_changes_all_it_held() {
        let mut c = StepChanges::default();
        step(&mut c, &[(1, vec![(tp(0), seen(5)), (tp(1), seen(5))])]);
        assert_eq!(c.count(), 2, "the first step sees everything as new");
        step(&mut c, &[(1, vec![(tp(0), seen(5)), (tp(1), seen(5))])]);
        assert_eq!(c.count(), 0, "nothing moved");
        step(&mut c, &[(1, vec![(tp(0), seen(5)), (tp(1), seen(6))])]);
        assert!(c.changed(&tp(1)) && !c.changed(&tp(0)));
        step(&mut c, &[]);
        assert!(c.changed(&tp(0)) && c.changed(&tp(1)), "the broker went");
        step(&mut c, &[(1, vec![(tp(0), seen(5)), (tp(1), seen(6))])]);
        assert_eq!(c.count(), 2, "and came back");
    }

    #[test]
    fn two_clusters_controllers_are_compared_each_with_itself() {
        let mut c = StepChanges::default();
        let (a, b) = (TopicPartition::new("a", 0), TopicPartition::new("b", 0));
        for _ in 0..2 {
            c.begin();
            c.controller(1, [(a.clone(), (1, 1, 1))].into_iter());
            c.controller(101, [(b.clone(), (101, 1, 1))].into_iter());
            c.end();
        }
        assert_eq!(c.count(), 0, "neither cluster's records moved");
        c.begin();
        c.controller(1, [(a.clone(), (1, 1, 1))].into_iter());
        c.end();
        assert!(c.changed(&b) && !c.changed(&a), "cluster b's controller went");
    }

    #[test]
    fn a_controller_change_marks_its_partition() {
        let mut c = StepChanges::default();
        c.begin();
        c.controller(1, [(tp(0), (1, 1, 1)), (tp(1), (2, 1, 1))].into_iter());
        c.end();
        c.begin();
        c.controller(1, [(tp(0), (1, 1, 1)), (tp(1), (2, 1, 2))].into_iter());
        c.end();
        assert!(c.changed(&tp(1)) && !c.changed(&tp(0)));
        c.begin();
        c.controller(2, [(tp(0), (1, 1, 1)), (tp(1), (2, 1, 2))].into_iter());
        c.end();
        assert_eq!(c.count(), 2, "another controller's record is new throughout");
    }
}
