//! The controller quorum's state, in KRaft's shape: an epoch (Raft's term), a vote, a role, and a
//! high watermark (Raft's commit index) over the `__cluster_metadata` log. Elections go by Vote
//! requests, a winner announces itself with BeginQuorumEpoch, and followers pull the log with Fetch,
//! so that the leader learns their positions from their fetch offsets.
//!
//! Epoch and vote are persisted (and synced) before any answer that depends on them.

use std::collections::{BTreeMap, BTreeSet};

use crate::env::Disk;
use crate::log::{checkpoint, Log};
use crate::BrokerId;

const QUORUM_STATE_PATH: &str = "quorum-state";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuorumRole {
    /// Knows the epoch but no leader, and has not voted in it (or has, see `voted_for`).
    Unattached,
    Candidate {
        votes: BTreeSet<BrokerId>,
    },
    Follower {
        leader: BrokerId,
    },
    Leader {
        positions: BTreeMap<BrokerId, i64>,
        last_fetch_ms: BTreeMap<BrokerId, u64>,
        announced: BTreeSet<BrokerId>,
    },
}

#[derive(Clone, Debug)]
pub struct Quorum {
    pub me: BrokerId,
    pub voters: Vec<BrokerId>,
    pub epoch: i32,
    pub voted_for: Option<BrokerId>,
    pub role: QuorumRole,
    pub high_watermark: i64,
    pub election_deadline_ms: u64,
}

impl Quorum {
    pub fn load(disk: &dyn Disk, me: BrokerId, voters: Vec<BrokerId>) -> Self {
        let (epoch, voted_for) = match checkpoint::read(disk, QUORUM_STATE_PATH) {
            Ok(Some(lines)) => parse_state(&lines).unwrap_or((0, None)),
            _ => (0, None),
        };
        Quorum {
            me,
            voters,
            epoch,
            voted_for,
            role: QuorumRole::Unattached,
            high_watermark: 0,
            election_deadline_ms: 0,
        }
    }

    /// Makes an epoch and vote durable. Callers save before they adopt them, so that a failed
    /// write (a full disk) leaves the node in the state its disk holds.
    fn save(disk: &dyn Disk, epoch: i32, voted_for: Option<BrokerId>) -> std::io::Result<()> {
        let vote = voted_for.map_or("-1".to_owned(), |v| v.to_string());
        let saved = checkpoint::write(disk, QUORUM_STATE_PATH, &[format!("{epoch} {vote}")]);
        if let Err(error) = &saved {
            tracing::warn!(epoch, ?voted_for, %error, "cannot save the quorum state; not adopted");
        }
        saved
    }

    pub fn is_voter(&self) -> bool {
        self.voters.contains(&self.me)
    }

    pub fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    pub fn leader(&self) -> Option<BrokerId> {
        match &self.role {
            QuorumRole::Leader { .. } => Some(self.me),
            QuorumRole::Follower { leader } => Some(*leader),
            _ => None,
        }
    }

    pub fn is_leader(&self) -> bool {
        matches!(self.role, QuorumRole::Leader { .. })
    }

    pub fn reset_election_timer(&mut self, now_ms: u64, timeout_ms: u64) {
        let jitter =
            madsim::rand::Rng::gen_range(&mut madsim::rand::thread_rng(), 0..timeout_ms.max(1));
        self.election_deadline_ms = now_ms + timeout_ms + jitter;
    }

    /// Moves to a higher epoch learned from a peer, as follower of `leader` when it is known.
    /// Returns whether anything changed.
    pub fn observe(
        &mut self,
        disk: &dyn Disk,
        epoch: i32,
        leader: Option<BrokerId>,
    ) -> std::io::Result<bool> {
        if epoch < self.epoch {
            return Ok(false);
        }
        let mut changed = false;
        if epoch > self.epoch {
            Self::save(disk, epoch, None)?;
            tracing::debug!(
                epoch,
                old_epoch = self.epoch,
                ?leader,
                "quorum moves to a newer epoch"
            );
            self.epoch = epoch;
            self.voted_for = None;
            self.role = QuorumRole::Unattached;
            changed = true;
        }
        match leader {
            Some(l) if l >= 0 && l != self.me && self.leader() != Some(l) => {
                assert!(
                    !self.is_leader(),
                    "broker {} leads epoch {epoch} but hears of leader {l}",
                    self.me
                );
                self.role = QuorumRole::Follower { leader: l };
                tracing::debug!(epoch, leader = l, "quorum follower of a known leader");
                Ok(true)
            }
            _ => Ok(changed),
        }
    }

    pub fn become_candidate(&mut self, disk: &dyn Disk) -> std::io::Result<i32> {
        assert!(self.is_voter());
        Self::save(disk, self.epoch + 1, Some(self.me))?;
        self.epoch += 1;
        self.voted_for = Some(self.me);
        self.role = QuorumRole::Candidate {
            votes: BTreeSet::from([self.me]),
        };
        Ok(self.epoch)
    }

    /// Decides a vote request. The candidate's log must be at least as up to date as ours.
    pub fn grant_vote(
        &mut self,
        disk: &dyn Disk,
        epoch: i32,
        candidate: BrokerId,
        candidate_last: (i32, i64),
        own_last: (i32, i64),
    ) -> std::io::Result<bool> {
        self.observe(disk, epoch, None)?;
        if epoch < self.epoch || !self.voters.contains(&candidate) {
            return Ok(false);
        }
        if self.leader().is_some() {
            return Ok(false);
        }
        if self.voted_for.is_some_and(|v| v != candidate) {
            crate::mark!(VoteRefusedAlreadyVoted);
            return Ok(false);
        }
        if candidate_last < own_last {
            tracing::debug!(
                epoch,
                candidate,
                ?candidate_last,
                ?own_last,
                "vote refused: the candidate's log is behind"
            );
            crate::mark!(VoteRefusedStaleLog);
            return Ok(false);
        }
        Self::save(disk, self.epoch, Some(candidate))?;
        self.voted_for = Some(candidate);
        crate::mark!(VoteGranted);
        Ok(true)
    }

    /// Counts a granted vote. Returns true when it makes this node leader-elect.
    pub fn count_vote(&mut self, epoch: i32, voter: BrokerId) -> bool {
        let majority = self.majority();
        if epoch != self.epoch {
            return false;
        }
        let QuorumRole::Candidate { votes } = &mut self.role else {
            return false;
        };
        votes.insert(voter);
        votes.len() >= majority
    }

    pub fn become_leader(&mut self, now_ms: u64) {
        assert!(matches!(self.role, QuorumRole::Candidate { .. }));
        let last_fetch_ms = self.voters.iter().map(|v| (*v, now_ms)).collect();
        self.role = QuorumRole::Leader {
            positions: BTreeMap::new(),
            last_fetch_ms,
            announced: BTreeSet::new(),
        };
    }

    /// The leader's commit rule: the offset a majority of voters hold, and only once an entry of the
    /// current epoch is among them (Raft's rule against committing an old term's entries by count).
    pub fn advance_high_watermark(&mut self, log: &Log) -> bool {
        let QuorumRole::Leader { positions, .. } = &self.role else {
            return false;
        };
        let mut held: Vec<i64> = self
            .voters
            .iter()
            .map(|v| {
                if *v == self.me {
                    log.durable_end_offset()
                } else {
                    positions.get(v).copied().unwrap_or(0)
                }
            })
            .collect();
        held.sort_unstable_by(|a, b| b.cmp(a));
        let candidate = held[self.majority() - 1];
        let epoch_start = log.epochs().start_offset_of(self.epoch).unwrap_or(i64::MAX);
        if candidate > self.high_watermark && candidate > epoch_start {
            tracing::trace!(
                epoch = self.epoch,
                high_watermark = candidate,
                "metadata committed"
            );
            self.high_watermark = candidate;
            return true;
        }
        false
    }

    /// The high watermark a leader tells its followers: none (-1) until an entry of its own epoch is
    /// committed, as KRaft's leader does. Before that its high watermark is what it learned as a
    /// follower, possibly far behind what the quorum had committed; a voter restarting with an
    /// empty image would take it up and act on an old committed state (a partition leader it had
    /// itself replaced), where waiting gives it every committed record at once.
    pub fn advertised_high_watermark(&self, log: &Log) -> i64 {
        let established = log
            .epochs()
            .start_offset_of(self.epoch)
            .is_some_and(|start| self.high_watermark > start);
        if self.is_leader() && !established {
            return -1;
        }
        self.high_watermark
    }

    /// The high watermark a leader's answer tells a voter fetching at `fetch_offset`: the advertised
    /// one, marked when it withholds what it learned as a follower from a voter already past it.
    pub fn high_watermark_for(&self, log: &Log, fetch_offset: i64) -> i64 {
        let advertised = self.advertised_high_watermark(log);
        if advertised < 0 && self.high_watermark > 0 && fetch_offset > self.high_watermark {
            crate::mark!(QuorumLeaderWithholdsHighWatermark);
        }
        advertised
    }

    /// Whether a leader has heard from a majority recently enough to keep leading.
    pub fn leader_has_quorum(&self, now_ms: u64, limit_ms: u64) -> bool {
        let QuorumRole::Leader { last_fetch_ms, .. } = &self.role else {
            return true;
        };
        let fresh = self
            .voters
            .iter()
            .filter(|v| {
                **v == self.me
                    || last_fetch_ms
                        .get(v)
                        .is_some_and(|t| now_ms.saturating_sub(*t) <= limit_ms)
            })
            .count();
        fresh >= self.majority()
    }

    pub fn resign(&mut self) {
        self.role = QuorumRole::Unattached;
    }
}

fn parse_state(lines: &[String]) -> Option<(i32, Option<BrokerId>)> {
    let (epoch, vote) = lines.first()?.split_once(' ')?;
    let vote: BrokerId = vote.parse().ok()?;
    Some((epoch.parse().ok()?, (vote >= 0).then_some(vote)))
}
