//! What each partition the sender passed over waits for, so that a turn looks only at the
//! partitions something has happened to, not at every partition with a batch queued.
//!
//! A producer writing to hundreds of partitions wakes its sender for every record and every
//! answer; most turns can send nothing, because the leaders' connections are full. A partition
//! the sender looked at and could not send from waits for one thing: room on its leader's
//! connection, a time (its batch's linger or retry backoff), an answer on the partition (its
//! batches go in sequence), or a leader in the metadata. Whatever touches a partition (a record,
//! a batch back in the queue, an answer) marks it in the accumulator, and whatever may change
//! every partition (new metadata, a new epoch or producer id, a flush) marks them all; a turn
//! looks at the marked ones and those whose wait is over. Kafka's sender scans every partition on
//! every turn instead, but it does not turn once per record.

use std::collections::{BTreeMap, BTreeSet};

use madsim::time::Instant;

use crate::{BrokerId, TopicPartition};

/// Why a partition's oldest batch cannot go now.
pub(super) enum Wait {
    /// Its leader's connection has as many requests out as it may.
    Room(BrokerId),
    /// Not before this instant (linger, retry backoff).
    Until(Instant),
    /// The metadata names no leader.
    Leader,
    /// An answer on its own partition, or a change to every partition (an epoch bump).
    Answer,
}

/// The partitions passed over on earlier turns, by what they wait for.
#[derive(Default)]
pub(super) struct Waits {
    room: BTreeMap<BrokerId, BTreeSet<TopicPartition>>,
    timed: BTreeSet<(Instant, TopicPartition)>,
    leaderless: BTreeSet<TopicPartition>,
}

impl Waits {
    /// Forgets every wait: every partition is to be looked at again.
    pub fn clear(&mut self) {
        *self = Waits::default();
    }

    /// Notes what `tp` waits for, and the instants after `now` at which its batch's linger or
    /// backoff end.
    pub fn wait(
        &mut self,
        tp: &TopicPartition,
        wait: Wait,
        times: impl Iterator<Item = Instant>,
        now: Instant,
    ) {
        for at in times.filter(|at| *at > now) {
            self.timed.insert((at, tp.clone()));
        }
        match wait {
            Wait::Room(leader) => drop(self.room.entry(leader).or_default().insert(tp.clone())),
            Wait::Until(at) => drop(self.timed.insert((at, tp.clone()))),
            Wait::Leader => drop(self.leaderless.insert(tp.clone())),
            Wait::Answer => {}
        }
    }

    /// Forgets that `tp` had no leader: it is being looked at again.
    pub fn looking_at(&mut self, tp: &TopicPartition) {
        self.leaderless.remove(tp);
    }

    /// Moves into `due` the partitions whose time has come and those whose leader has room now.
    pub fn release(
        &mut self,
        now: Instant,
        has_room: impl Fn(BrokerId) -> bool,
        due: &mut BTreeSet<TopicPartition>,
    ) {
        while let Some(first) = self.timed.first() {
            if first.0 > now {
                break;
            }
            let (_, tp) = self.timed.pop_first().expect("a first entry");
            due.insert(tp);
        }
        self.room.retain(|leader, waiting| {
            if !has_room(*leader) {
                return true;
            }
            due.append(waiting);
            false
        });
    }

    /// The partitions found without a leader, still waiting for one.
    pub fn leaderless(&self) -> impl Iterator<Item = &TopicPartition> {
        self.leaderless.iter()
    }

    /// The soonest a timed wait ends that `still` says holds (the batch it was noted for may
    /// have gone out since); those that do not are dropped.
    pub fn next_time(
        &mut self,
        still: impl Fn(&TopicPartition, Instant) -> bool,
    ) -> Option<Instant> {
        while let Some((at, tp)) = self.timed.first() {
            if still(tp, *at) {
                return Some(*at);
            }
            self.timed.pop_first();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn tp(partition: i32) -> TopicPartition {
        TopicPartition::new("t", partition)
    }

    fn released(waits: &mut Waits, now: Instant, room: &[BrokerId]) -> Vec<i32> {
        let mut due = BTreeSet::new();
        waits.release(now, |leader| room.contains(&leader), &mut due);
        due.into_iter().map(|tp| tp.partition).collect()
    }

    #[test]
    fn a_partition_comes_back_when_its_leader_has_room_or_its_time_comes_and_not_before() {
        madsim::runtime::Runtime::new().block_on(async {
            let now = madsim::time::Instant::now();
            let later = now + Duration::from_millis(100);
            let mut waits = Waits::default();
            waits.wait(&tp(0), Wait::Room(1), std::iter::empty(), now);
            waits.wait(&tp(1), Wait::Room(2), std::iter::empty(), now);
            waits.wait(&tp(2), Wait::Until(later), std::iter::empty(), now);
            waits.wait(&tp(3), Wait::Answer, std::iter::empty(), now);
            assert_eq!(released(&mut waits, now, &[]), Vec::<i32>::new());
            assert_eq!(released(&mut waits, now, &[2]), vec![1]);
            assert_eq!(waits.next_time(|_, _| true), Some(later));
            assert_eq!(released(&mut waits, later, &[]), vec![2]);
            assert_eq!(released(&mut waits, later, &[1, 2]), vec![0]);
            assert_eq!(released(&mut waits, later, &[1, 2]), Vec::<i32>::new());
        });
    }

    #[test]
    fn a_batch_time_noted_beside_another_wait_wakes_the_sender_while_it_still_holds() {
        madsim::runtime::Runtime::new().block_on(async {
            let now = madsim::time::Instant::now();
            let (soon, later) = (
                now + Duration::from_millis(5),
                now + Duration::from_millis(9),
            );
            let mut waits = Waits::default();
            waits.wait(&tp(0), Wait::Leader, [now, soon].into_iter(), now);
            waits.wait(&tp(1), Wait::Answer, [later].into_iter(), now);
            assert_eq!(
                waits.leaderless().map(|t| t.partition).collect::<Vec<_>>(),
                vec![0]
            );
            // The batch noted at `soon` has gone out since: its time no longer counts.
            assert_eq!(waits.next_time(|tp, _| tp.partition == 1), Some(later));
            assert_eq!(
                waits.next_time(|_, _| true),
                Some(later),
                "a dropped time stays dropped"
            );
            waits.looking_at(&tp(0));
            assert_eq!(waits.leaderless().count(), 0);
        });
    }
}
