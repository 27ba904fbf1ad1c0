//! One partition replica on a broker: its log, and what it knows as leader or follower.
//!
//! The leader owns the rules that keep acknowledged data safe: the high watermark moves only when
//! every member of the maximal ISR (the committed one, plus a member being added, minus none being
//! removed until the controller agrees) has the offset; followers count only once they fetch in the
//! leader's current epoch (KIP-320); a follower joins the ISR only after it reaches the start of the
//! leader's epoch.

use std::collections::BTreeMap;

use crate::coverage::{self, Mark};
use crate::log::Log;
use crate::metadata::{MetadataImage, PartitionState};
use crate::{BrokerId, TopicPartition};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FollowerProgress {
    pub log_end_offset: i64,
    pub last_caught_up_ms: u64,
    /// When the follower last fetched (None: not in this leadership).
    pub last_fetch_ms: Option<u64>,
    /// Whether it has fetched in this leadership (its old report may stand in for one, under the
    /// `hw-advance-old-epoch` switch).
    pub fetched_in_epoch: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderState {
    pub isr: Vec<BrokerId>,
    pub partition_epoch: i32,
    pub followers: BTreeMap<BrokerId, FollowerProgress>,
    /// An ISR this leader asked the controller for, whose fate it does not know yet. It counts
    /// toward the high watermark (see `maximal_isr`) until a success, a definite refusal, or a
    /// metadata update with a newer partition epoch settles it: an AlterPartition whose answer was
    /// lost may still commit later, under a new controller.
    pub pending_isr: Option<Vec<BrokerId>>,
    /// An AlterPartition for `pending_isr` is on its way.
    pub alter_in_flight: bool,
    /// Where this leader's epoch starts in its log.
    pub epoch_start_offset: i64,
    /// In a leadership regained without a restart: what the ISR's reports from the earlier one
    /// would let the high watermark reach, kept for coverage (`hw-advance-old-epoch` takes them).
    pub old_words: Option<OldWords>,
}

/// What a regained leader's high watermark could reach on the reports of its earlier leadership.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OldWords {
    /// The least of the leader's synced end and the reports of `isr`.
    pub high_watermark: i64,
    /// The leader's high watermark when it regained the partition.
    pub regained_high_watermark: i64,
    /// The ISR members the leader regained the partition with, less itself.
    pub isr: Vec<BrokerId>,
}

impl OldWords {
    /// How far the old words alone would lift the high watermark at the regain.
    fn lift(&self) -> i64 {
        self.high_watermark - self.regained_high_watermark
    }
}

impl LeaderState {
    /// The members of the maximal ISR (see `Partition::maximal_isr`), one listed twice when it is
    /// both committed and pending.
    fn maximal_isr(&self) -> impl Iterator<Item = &BrokerId> {
        self.isr.iter().chain(self.pending_isr.iter().flatten())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    Leader(LeaderState),
    /// Following `leader`, or no one (offline) when it is `NO_LEADER`.
    Follower {
        leader: BrokerId,
    },
}

pub struct Partition {
    pub topic_partition: TopicPartition,
    pub log: Log,
    pub replicas: Vec<BrokerId>,
    pub leader_epoch: i32,
    pub role: Role,
    /// Bumped each time the follower role starts, so an old fetcher sees it is stale.
    pub fetcher_generation: u64,
    /// What each follower last reported, in whichever epoch: read only when the
    /// `hw-advance-old-epoch` switch lets a new leader start from it.
    last_reports: BTreeMap<BrokerId, FollowerProgress>,
}

impl Partition {
    pub fn new(topic_partition: TopicPartition, log: Log) -> Self {
        Partition {
            topic_partition,
            log,
            replicas: Vec::new(),
            leader_epoch: -1,
            role: Role::Follower {
                leader: crate::metadata::NO_LEADER,
            },
            fetcher_generation: 0,
            last_reports: BTreeMap::new(),
        }
    }

    pub fn leader_state(&self) -> Option<&LeaderState> {
        match &self.role {
            Role::Leader(l) => Some(l),
            Role::Follower { .. } => None,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader_state().is_some()
    }

    /// Takes up leadership. Followers count from their first fetch in this epoch, unless
    /// `old_reports` brings back the wrong rule of counting what they said in an older one.
    pub fn become_leader(&mut self, state: &PartitionState, now_ms: u64, old_reports: bool) {
        let old_words = self.old_words(state);
        self.mark_leadership_change(old_words.as_ref());
        self.log.assign_epoch(state.leader_epoch);
        let epoch_start_offset = self
            .log
            .epochs()
            .start_offset_of(state.leader_epoch)
            .unwrap_or(self.log.log_end_offset());
        let followers = state
            .replicas
            .iter()
            .filter(|r| **r != state.leader)
            .map(|r| {
                let reported = self.last_reports.get(r).filter(|_| old_reports);
                let progress = FollowerProgress {
                    log_end_offset: reported.map_or(-1, |p| p.log_end_offset),
                    last_caught_up_ms: now_ms,
                    last_fetch_ms: reported.and_then(|p| p.last_fetch_ms),
                    fetched_in_epoch: false,
                };
                (*r, progress)
            })
            .collect();
        self.replicas = state.replicas.clone();
        self.leader_epoch = state.leader_epoch;
        self.role = Role::Leader(LeaderState {
            isr: state.isr.clone(),
            partition_epoch: state.partition_epoch,
            followers,
            pending_isr: None,
            alter_in_flight: false,
            epoch_start_offset,
            old_words,
        });
    }

    /// What the old words would let the high watermark reach at once, were this replica, led
    /// before and deposed without a restart, to lead `state` now (None: it leads, or never led).
    fn old_words(&self, state: &PartitionState) -> Option<OldWords> {
        if !self.deposed() {
            return None;
        }
        let isr: Vec<BrokerId> = (state.isr.iter().filter(|r| **r != state.leader))
            .copied()
            .collect();
        Some(OldWords {
            high_watermark: self.old_words_high_watermark(&isr),
            regained_high_watermark: self.log.high_watermark(),
            isr,
        })
    }

    /// The least of this log's synced end and what each of `others` reported in this replica's
    /// earlier leadership (one that said nothing, or none at all: nothing moves, -1).
    fn old_words_high_watermark<'a>(&self, others: impl IntoIterator<Item = &'a BrokerId>) -> i64 {
        let remembered = (others.into_iter())
            .map(|r| self.last_reports.get(r).map_or(-1, |p| p.log_end_offset))
            .min()
            .unwrap_or(-1);
        remembered.min(self.log.durable_end_offset())
    }

    /// Names, for coverage, the way this replica comes to lead, given what the old words would
    /// let its high watermark reach.
    fn mark_leadership_change(&self, old_words: Option<&OldWords>) {
        if self.is_leader() {
            crate::mark!(LeaderReelectedInPlace);
            return;
        }
        crate::mark!(FollowerBecomesLeader);
        if let Some(words) = old_words {
            // Lost it without a restart.
            crate::mark!(LeaderRegainsLeadership);
            let end = self.log.log_end_offset();
            if self.last_reports.values().any(|p| p.log_end_offset < end) {
                crate::mark!(RegainedLeaderRemembersLaggingFollower);
            }
            coverage::near(
                Mark::RegainedLeaderRemembersReportsAboveHighWatermark,
                words.lift(),
            );
        }
    }

    /// Weighs, for coverage, the high watermark of a deposed leader `me` that follows again, as
    /// `image` shows the partition's ISR: one below what every other ISR member told it as leader
    /// is what a new leader's stalled high watermark leaves behind, one election away from
    /// `hw-advance-old-epoch`'s violation. Its log's end moves the margin too, so it is weighed at
    /// every fetch answer; in real mode, where marks count nothing, it is not weighed at all.
    pub fn mark_deposed_leader_high_watermark(&self, image: &MetadataImage, me: BrokerId) {
        if !cfg!(madsim) || !self.deposed() {
            return;
        }
        let tp = &self.topic_partition;
        if let Some(state) = image.partition(&tp.topic, tp.partition) {
            // An election that gives it back the lead takes the ISR less the leader it deposes.
            let others = (state.isr.iter()).filter(|r| **r != me && **r != state.leader);
            coverage::near(
                Mark::DeposedLeaderBelowRememberedReports,
                self.old_words_high_watermark(others) - self.log.high_watermark(),
            );
        }
    }

    /// Whether this replica led the partition before in this incarnation (it remembers what
    /// followers reported to it) and follows it now.
    fn deposed(&self) -> bool {
        !self.last_reports.is_empty() && !self.is_leader()
    }

    pub fn become_follower(&mut self, state: &PartitionState) {
        if self.is_leader() {
            crate::mark!(LeaderBecomesFollower);
        }
        self.replicas = state.replicas.clone();
        self.leader_epoch = state.leader_epoch;
        self.role = Role::Follower {
            leader: state.leader,
        };
        self.fetcher_generation += 1;
    }

    /// The ISR the high watermark must wait for: the committed ISR together with a member that is
    /// being added. A member being removed still counts until the controller has agreed.
    pub fn maximal_isr(&self) -> Vec<BrokerId> {
        let mut isr = Vec::new();
        for r in self
            .leader_state()
            .into_iter()
            .flat_map(LeaderState::maximal_isr)
        {
            if !isr.contains(r) {
                isr.push(*r);
            }
        }
        isr
    }

    /// Moves the leader's high watermark to the smallest offset every maximal-ISR member holds;
    /// the leader counts only what it has synced, unless `unsynced` brings back the wrong rule.
    /// Returns the new value if it moved.
    pub fn maybe_advance_high_watermark(&mut self, me: BrokerId, unsynced: bool) -> Option<i64> {
        let l = self.leader_state()?;
        let mut low = if unsynced {
            self.log.log_end_offset()
        } else {
            self.log.durable_end_offset()
        };
        // A member counted twice changes no minimum.
        for r in l.maximal_isr() {
            if *r == me {
                continue;
            }
            let progress = l.followers.get(r);
            let follower = progress.map_or(-1, |f| f.log_end_offset);
            let committed = l.isr.contains(r);
            if follower < low && !committed {
                crate::mark!(HighWatermarkWaitsForJoiningReplica);
            }
            if progress.is_some_and(|f| !f.fetched_in_epoch) && committed {
                // Counted at every step while it lasts: long silences stand out to exploration.
                crate::mark!(HighWatermarkWaitsForFirstFetchInEpoch);
            }
            low = low.min(follower);
        }
        if low > self.log.high_watermark() {
            crate::mark!(LeaderAdvancesHighWatermark);
            self.log.set_high_watermark(low);
            return Some(low);
        }
        None
    }

    /// Takes note of a follower's fetch in the current epoch at `fetch_offset`.
    pub fn record_follower_fetch(&mut self, follower: BrokerId, fetch_offset: i64, now_ms: u64) {
        let log_end = self.log.log_end_offset();
        let Role::Leader(l) = &mut self.role else {
            return;
        };
        let progress = l.followers.entry(follower).or_insert(FollowerProgress {
            log_end_offset: -1,
            last_caught_up_ms: now_ms,
            last_fetch_ms: None,
            fetched_in_epoch: false,
        });
        let first_in_epoch = !progress.fetched_in_epoch;
        if let Some(words) =
            (l.old_words.as_ref()).filter(|w| first_in_epoch && w.isr.contains(&follower))
        {
            // Harm needs both: the old words lift the high watermark, and past this member.
            coverage::near(
                Mark::IsrMemberReturnsBelowOldWords,
                (words.high_watermark - fetch_offset).min(words.lift()),
            );
        }
        progress.log_end_offset = fetch_offset;
        progress.fetched_in_epoch = true;
        progress.last_fetch_ms = Some(now_ms);
        if fetch_offset >= log_end {
            progress.last_caught_up_ms = now_ms;
        }
        self.last_reports.insert(follower, *progress);
    }

    /// The ISR the leader should ask for now, if it differs from the current one: lagging members
    /// out, caught-up replicas in. A replica joins only while it fetches (within the lag time) and
    /// while `eligible` says its broker may (KIP-841: not fenced): Kafka weighs an expansion as a
    /// fetch arrives, so a follower's position from before it crashed never puts it back, and the
    /// controller would refuse a fenced broker anyway.
    pub fn wanted_isr(
        &self,
        me: BrokerId,
        now_ms: u64,
        lag_max_ms: u64,
        eligible: impl Fn(BrokerId) -> bool,
    ) -> Option<Vec<BrokerId>> {
        let l = self.leader_state()?;
        if l.pending_isr.is_some() {
            return None;
        }
        let high_watermark = self.log.high_watermark();
        let stays = |r: &BrokerId| {
            *r == me
                || l.followers
                    .get(r)
                    .is_some_and(|f| now_ms.saturating_sub(f.last_caught_up_ms) <= lag_max_ms)
        };
        let joins = |r: &BrokerId, f: &FollowerProgress| {
            let caught_up =
                f.log_end_offset >= high_watermark && f.log_end_offset >= l.epoch_start_offset;
            let fetching = f
                .last_fetch_ms
                .is_some_and(|t| now_ms.saturating_sub(t) <= lag_max_ms);
            !l.isr.contains(r) && caught_up && fetching && eligible(*r)
        };
        // Asked of every led partition at every tick, and nearly always the answer is no change:
        // found without building the wanted set.
        if l.isr.iter().all(stays) && !l.followers.iter().any(|(r, f)| joins(r, f)) {
            return None;
        }
        let mut wanted: Vec<BrokerId> = l.isr.iter().copied().filter(stays).collect();
        for (r, f) in &l.followers {
            if joins(r, f) {
                wanted.push(*r);
            }
        }
        wanted.sort_unstable();
        let mut current = l.isr.clone();
        current.sort_unstable();
        (wanted != current).then_some(wanted)
    }
}
