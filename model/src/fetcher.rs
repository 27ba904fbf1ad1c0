//! What a follower does with a fetched log, for a partition or for the metadata log: fetch from
//! the leader with the current leader epoch, the fetch offset and the epoch of the last fetched
//! batch; truncate to the common point when the leader reports a diverging epoch (KIP-279 and
//! KIP-320); otherwise append, sync, and only then ask again, so that a fetch offset the leader
//! sees is durable here.
//!
//! The metadata log's fetch loop is here ([`run`]); partitions are fetched many at a time, one
//! fetcher per leader (`crate::replica_fetcher`), through the same steps.

use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, trace, warn};

use crate::broker::{self, LogRef, Shared, State};
use crate::bugs;
use crate::config::BrokerConfig;
use crate::env::Event;
use crate::fetch_codec::{FetchQuery, PartitionAnswer};
use crate::metadata::METADATA_TOPIC;
use crate::raft::QuorumRole;
use crate::wire::Connection;
use crate::{BrokerId, TopicPartition};

const BACKOFF: Duration = Duration::from_millis(100);
const MAX_BYTES: i32 = 1024 * 1024;

pub mod error_code {
    pub const NONE: i16 = 0;
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const NOT_CONTROLLER: i16 = 41;
    pub const INVALID_REQUEST: i16 = 42;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    pub const INVALID_TXN_STATE: i16 = 48;
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    pub const UNKNOWN_PRODUCER_ID: i16 = 59;
    pub const FENCED_LEADER_EPOCH: i16 = 74;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 76;
    pub const STALE_BROKER_EPOCH: i16 = 77;
    pub const PRODUCER_FENCED: i16 = 90;
    pub const INVALID_UPDATE_VERSION: i16 = 95;
    pub const INELIGIBLE_REPLICA: i16 = 107;
}

/// What the follower is fetching for: the leader, its epoch, and the fetcher's generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Following {
    leader: BrokerId,
    epoch: i32,
}

fn following(s: &State, generation: u64) -> Option<Following> {
    let (epoch, leader, g) = s.metadata_fetcher?;
    let current = matches!(s.quorum.role, QuorumRole::Follower { leader: l } if l == leader)
        && s.quorum.epoch == epoch;
    (g == generation && current).then_some(Following { leader, epoch })
}

/// What one fetch response did, so the loop knows how to go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Applied {
    /// Records (or none) taken from a leader that found no divergence.
    Fetched,
    /// Records appended, not yet synced.
    Appended,
    /// The log was cut back to where it parts from the leader's.
    Truncated,
    /// The role changed while the fetch was out; the next loop sees the new one.
    Stale,
    /// An error or a failed write: wait before asking again.
    BackOff,
}

/// Whether each fetch names the epoch of the follower's last record, so the leader checks every
/// fetch for divergence (KIP-320). Before it, Kafka checked only when the follower role started,
/// which two bug switches bring back; `zombie-follower` also drops the current leader epoch that
/// lets a leader fence a stale follower. The metadata log always checks (KIP-595).
pub fn checks_every_fetch(config: &BrokerConfig, which: &LogRef) -> bool {
    matches!(which, LogRef::Metadata)
        || !(config.bug(bugs::Switch::ZombieFollower)
            || config.bug(bugs::Switch::SameLeaderNoTruncate))
}

/// Whether the follower reports records it has not synced yet, leaving durability to the other
/// copies as Kafka's replicas do. The right rule is to sync first: an unclean shutdown of a replica
/// the high watermark counted must not lose acknowledged records.
pub fn counts_unsynced(config: &BrokerConfig, which: &LogRef) -> bool {
    matches!(which, LogRef::Partition(_))
        && (config.bug(bugs::Switch::LastReplicaStanding)
            || config.bug(bugs::Switch::DoubleCrashDivergence))
}

/// The metadata log's fetch loop, while this broker follows the quorum leader of the epoch and
/// generation it started in.
pub async fn run(shared: Arc<Shared>, generation: u64) {
    let which = LogRef::Metadata;
    let mut connection: Option<(BrokerId, Connection)> = None;
    let tp = TopicPartition::new(METADATA_TOPIC, 0);
    let wait = Duration::from_millis(shared.config.fetch_max_wait_ms);
    debug!(log = %which, generation, "fetcher started");
    loop {
        let (request, follow) = {
            let s = shared.lock();
            let Some(follow) = following(&s, generation) else {
                debug!(log = %which, generation, "fetcher stops: the role it served has changed");
                return;
            };
            let log = &s.metadata_log;
            let fetch = FetchQuery::single(
                shared.id(),
                tp.clone(),
                follow.epoch,
                log.durable_end_offset(),
                log.latest_epoch(),
                wait.as_millis() as i32,
                MAX_BYTES,
            );
            (fetch, follow)
        };
        if connection.as_ref().is_none_or(|(l, _)| *l != follow.leader) {
            let Some(address) = shared.config.address(follow.leader) else {
                return;
            };
            match Connection::connect(
                address,
                &format!("replica-{}", shared.id()),
                shared.request_timeout(),
            )
            .await
            {
                Ok(c) => connection = Some((follow.leader, c)),
                Err(error) => {
                    trace!(log = %which, leader = follow.leader, %error, "cannot reach the leader");
                    madsim::time::sleep(BACKOFF).await;
                    continue;
                }
            }
        }
        let (_, conn) = connection.as_mut().expect("connected above");
        match conn
            .fetch_one(&request, wait + shared.request_timeout())
            .await
        {
            Ok(Some(data)) => {
                if handle_metadata(&shared, generation, follow, data).await == Applied::BackOff {
                    madsim::time::sleep(BACKOFF).await;
                }
            }
            Ok(None) => madsim::time::sleep(BACKOFF).await,
            Err(error) => {
                trace!(log = %which, leader = follow.leader, %error, "fetch failed; reconnecting");
                connection = None;
                madsim::time::sleep(BACKOFF).await;
            }
        }
    }
}

/// Applies one metadata fetch response.
async fn handle_metadata(
    shared: &Arc<Shared>,
    generation: u64,
    follow: Following,
    data: PartitionAnswer,
) -> Applied {
    let which = &LogRef::Metadata;
    let taken = {
        let mut s = shared.lock();
        if following(&s, generation) != Some(follow) {
            return Applied::Stale;
        }
        let (leader, epoch) = data.current_leader;
        if epoch > s.quorum.epoch {
            debug!(
                epoch,
                leader,
                own_epoch = s.quorum.epoch,
                "metadata fetch answered from a newer quorum epoch"
            );
            let known = (leader >= 0).then_some(leader);
            let _ = s.quorum.observe(shared.env.disk.as_ref(), epoch, known);
            return Applied::BackOff;
        }
        if data.error_code != error_code::NONE {
            refused(which, follow.leader, follow.epoch, data.error_code);
            return Applied::BackOff;
        }
        let (now, timeout) = (shared.now_ms(), shared.config.election_timeout_ms);
        s.quorum.reset_election_timer(now, timeout);
        take_records(shared, &mut s, which, follow.leader, &data)
    };
    if taken == Applied::Appended {
        if let Err(error) = broker::sync_log(shared, which).await {
            warn!(log = %which, %error, "cannot sync fetched records; backing off");
            return Applied::BackOff;
        }
    }
    if !matches!(taken, Applied::Appended | Applied::Fetched) {
        return taken;
    }
    let mut s = shared.lock();
    if following(&s, generation) != Some(follow) {
        return Applied::Stale;
    }
    take_high_watermark(shared, &mut s, which, data.high_watermark);
    Applied::Fetched
}

/// Logs a leader's refusal of a log's fetch.
pub(crate) fn refused(which: &LogRef, leader: BrokerId, epoch: i32, error_code: i16) {
    trace!(
        log = %which,
        leader,
        epoch,
        error_code,
        "leader refused the fetch; backing off"
    );
}

/// Takes a leader's answer for a log this broker still follows in the epoch it asked in, an answer
/// with no error: truncates where the leader reports a divergence, else appends its records
/// (syncing them is the caller's, outside the lock).
pub(crate) fn take_records(
    shared: &Arc<Shared>,
    s: &mut State,
    which: &LogRef,
    leader: BrokerId,
    data: &PartitionAnswer,
) -> Applied {
    if data.diverges() {
        return truncate(shared, s, which, leader, data);
    }
    if data.records.is_empty() {
        return Applied::Fetched;
    }
    let log = s.log_mut(which).expect("followed log exists");
    match log.append_replicated(&data.records) {
        Ok(batches) => {
            trace!(log = %which, batches, log_end = log.log_end_offset(), "appended");
            Applied::Appended
        }
        Err(error) => {
            warn!(log = %which, %error, "cannot append fetched records; backing off");
            crate::mark!(FollowerAppendFails);
            Applied::BackOff
        }
    }
}

/// Cuts a followed log back to where it parts from the leader's.
fn truncate(
    shared: &Arc<Shared>,
    s: &mut State,
    which: &LogRef,
    leader: BrokerId,
    data: &PartitionAnswer,
) -> Applied {
    let log = s.log_mut(which).expect("followed log exists");
    let ours = log.end_offset_for_epoch(data.diverging_epoch.epoch);
    let mut target = if ours.epoch < 0 {
        0
    } else {
        data.diverging_epoch.end_offset.min(ours.end_offset)
    };
    if matches!(which, LogRef::Partition(_))
        && shared.config.bug(bugs::Switch::DoubleCrashDivergence)
    {
        // Trusts that nothing below its high watermark can differ from the leader's log.
        target = target.max(log.high_watermark());
    }
    let from = log.log_end_offset();
    if which == &LogRef::Metadata {
        assert!(
            target >= s.image.next_offset,
            "broker {}: metadata truncation to {target} below applied offset {}",
            shared.id(),
            s.image.next_offset
        );
    }
    let log = s.log_mut(which).expect("followed log exists");
    let high_watermark = log.high_watermark();
    let to = log
        .truncate_to(target)
        .unwrap_or_else(|e| panic!("truncate: {e}"));
    mark_truncation(which, high_watermark, from, to);
    if to >= from {
        trace!(log = %which, target, log_end = from, "divergence reported: nothing to cut");
        return Applied::Truncated;
    }
    debug!(
        log = %which,
        leader,
        diverging_epoch = data.diverging_epoch.epoch,
        leader_end_offset = data.diverging_epoch.end_offset,
        own_end_offset_for_epoch = ours.end_offset,
        from,
        to,
        high_watermark,
        "truncated: the log diverges from the leader's"
    );
    if let LogRef::Partition(tp) = which {
        shared.emit(Event::Truncated {
            partition: tp.clone(),
            from,
            to,
            high_watermark,
        });
    }
    Applied::Truncated
}

/// Names, for coverage, what a divergence answer did to `which`: it ended at `from` with
/// `high_watermark`, and ends at `to` now.
pub fn mark_truncation(which: &LogRef, high_watermark: i64, from: i64, to: i64) {
    if high_watermark < to.min(from) {
        // Truncating to the high watermark, as before leader epochs, would have lost these.
        crate::mark!(EpochRuleKeepsRecordsAboveHighWatermark);
    }
    if to >= from {
        return;
    }
    match which {
        LogRef::Metadata => crate::mark!(MetadataLogTruncated),
        LogRef::Partition(_) if to < high_watermark => {
            crate::mark!(FollowerTruncatesBelowOwnHighWatermark)
        }
        LogRef::Partition(_) => crate::mark!(FollowerTruncatesToDivergence),
    }
}

/// Takes up the high watermark a leader reported, once what it answered is in the log.
pub(crate) fn take_high_watermark(
    shared: &Arc<Shared>,
    s: &mut State,
    which: &LogRef,
    reported: i64,
) {
    let log = s.log_mut(which).expect("followed log exists");
    let high_watermark = reported.clamp(0, log.log_end_offset());
    match which {
        LogRef::Metadata => {
            if high_watermark > s.quorum.high_watermark {
                s.quorum.high_watermark = high_watermark;
                broker::apply_committed(shared, s);
            }
        }
        LogRef::Partition(tp) => {
            if high_watermark != log.high_watermark() {
                trace!(partition = %tp, high_watermark, "follower's high watermark moved");
                log.set_high_watermark(high_watermark);
                shared.emit(Event::HighWatermark {
                    partition: tp.clone(),
                    high_watermark,
                });
            }
            if let Some(p) = s.partitions.get(tp) {
                p.mark_deposed_leader_high_watermark(&s.image, shared.id());
            }
        }
    }
}
