//! A broker process: its state, its start-up (recovery), and the tasks it runs.
//!
//! All of a broker's state sits behind one lock (`crate::sync`), never held across an await; a
//! watch channel wakes whoever waits for the state to move (a long-polling fetch, an acks=all
//! produce).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, info, trace, warn};

use crate::config::BrokerConfig;
use crate::controller::ControllerState;
use crate::env::{Env, Event};
use crate::fault_point;
use crate::fetch_session::cache::SessionCache;
use crate::log::{checkpoint, Log, SyncTicket};
use crate::metadata::{MetadataImage, MetadataRecord, PartitionState, METADATA_TOPIC, NO_LEADER};
use crate::partition::{Partition, Role};
use crate::raft::Quorum;
use crate::signal::{Listener, Signal};
use crate::sync::{Lock, LockGuard};
use crate::{batch, bugs, replica_fetcher, serve, BrokerId, TopicPartition};

const INCARNATION_PATH: &str = "broker-incarnation";
const HIGH_WATERMARK_CHECKPOINT_PATH: &str = "replication-offset-checkpoint";
pub const TICK: Duration = Duration::from_millis(50);
/// How long a log waits before it tries a failed sync again.
const SYNC_RETRY: Duration = Duration::from_millis(100);

/// What a waiter waits to see move in a partition: its log's end (a follower's fetch waits for
/// records to copy) or its high watermark (an acks=all produce and a consumer's fetch wait for
/// that). A waiter for one sleeps through moves of the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Watch {
    LogEnd,
    HighWatermark,
}

/// Which log a task works on.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogRef {
    Metadata,
    Partition(TopicPartition),
}

impl std::fmt::Display for LogRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogRef::Metadata => write!(f, "{METADATA_TOPIC}-0"),
            LogRef::Partition(tp) => tp.fmt(f),
        }
    }
}

pub struct State {
    pub incarnation: u64,
    pub quorum: Quorum,
    pub metadata_log: Log,
    pub image: MetadataImage,
    pub partitions: BTreeMap<TopicPartition, Partition>,
    pub controller: Option<ControllerState>,
    /// High watermarks read at start-up, for logs not opened yet.
    recovered_high_watermarks: BTreeMap<TopicPartition, i64>,
    last_checkpoint_ms: u64,
    /// (epoch, leader, generation) of the running metadata fetcher, if any.
    pub metadata_fetcher: Option<(i32, BrokerId, u64)>,
    metadata_fetcher_generation: u64,
    /// Idempotent producers this incarnation has given an id.
    pub producers_started: u64,
    /// The fetch sessions this broker keeps as a leader, lost with it in a crash.
    pub fetch_sessions: SessionCache,
    /// The leaders this broker runs a replica fetcher for: one each, carrying every partition it
    /// follows from that leader.
    pub replica_fetchers: BTreeSet<BrokerId>,
    /// Counts partitions opened and roles taken up: a replica fetcher looks through every
    /// partition for those it gained or lost only after this moves.
    pub role_changes: u64,
    /// Partitions of this broker whose log could not be opened: every reconcile tries them again.
    unopened: BTreeSet<TopicPartition>,
    /// Consumer groups and offsets this broker coordinates.
    pub coordinator: crate::group::Coordinator,
    /// Transactions this broker coordinates.
    pub transactions: crate::txn::coordinator::Coordinator,
}

impl State {
    /// Whether this broker's own image shows its current incarnation registered and unfenced.
    pub fn in_service(&self, me: BrokerId) -> bool {
        (self.image.brokers.get(&me))
            .is_some_and(|b| b.incarnation == self.incarnation && !b.fenced)
    }

    pub fn log(&self, which: &LogRef) -> Option<&Log> {
        match which {
            LogRef::Metadata => Some(&self.metadata_log),
            LogRef::Partition(tp) => self.partitions.get(tp).map(|p| &p.log),
        }
    }
    pub fn log_mut(&mut self, which: &LogRef) -> Option<&mut Log> {
        match which {
            LogRef::Metadata => Some(&mut self.metadata_log),
            LogRef::Partition(tp) => self.partitions.get_mut(tp).map(|p| &mut p.log),
        }
    }
}

pub struct Shared {
    pub config: BrokerConfig,
    pub env: Env,
    state: Lock<State>,
    /// Keyed by partition and what moved in it; the metadata log is `METADATA_TOPIC`-0.
    changed: Signal<(TopicPartition, Watch)>,
}

impl Shared {
    pub fn id(&self) -> BrokerId {
        self.config.id
    }
    pub fn lock(&self) -> LockGuard<'_, State> {
        self.state.lock()
    }
    /// Read-only access for tools that watch a broker from outside.
    pub fn inspect<R>(&self, f: impl FnOnce(&State) -> R) -> R {
        f(&self.lock())
    }
    pub fn now_ms(&self) -> u64 {
        self.env.clock.now_ms()
    }
    pub fn emit(&self, event: Event) {
        self.env.events.emit(self.config.id, event);
    }
    /// Anything may have changed: roles, epochs, the metadata image.
    pub fn notify(&self) {
        self.changed.notify();
    }
    /// Only `tp`'s log or high watermark moved, to values unsaid: every waiter on it wakes.
    pub fn notify_partition(&self, tp: &TopicPartition) {
        self.notify_moved_to(tp, Watch::LogEnd, i64::MAX);
        self.notify_moved_to(tp, Watch::HighWatermark, i64::MAX);
    }
    /// Only `tp`'s `what` moved, to `value`: a waiter for more sleeps on.
    pub fn notify_moved_to(&self, tp: &TopicPartition, what: Watch, value: i64) {
        self.changed.notify_key_at(&(tp.clone(), what), value);
    }
    /// Wakes for changes to everything only.
    pub fn subscribe(&self) -> Listener<(TopicPartition, Watch)> {
        self.changed.subscribe()
    }
    /// Wakes for changes to everything and to any move in `partitions`.
    pub fn subscribe_to(
        &self,
        partitions: Vec<TopicPartition>,
    ) -> Listener<(TopicPartition, Watch)> {
        let keys: Vec<_> = partitions
            .into_iter()
            .flat_map(|tp| [(tp.clone(), Watch::LogEnd), (tp, Watch::HighWatermark)])
            .collect();
        self.changed.subscribe_to(keys)
    }
    /// Wakes for changes to everything and to the named moves.
    pub fn subscribe_to_moves(
        &self,
        moves: impl Into<crate::signal::Keys<(TopicPartition, Watch)>>,
    ) -> Listener<(TopicPartition, Watch)> {
        self.changed.subscribe_to(moves)
    }
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.config.request_timeout_ms)
    }
}

/// Where this incarnation's fetch session ids start: a fetcher that still holds an id from before
/// a restart must find no session under it, not someone else's.
fn first_session_id(incarnation: u64) -> i32 {
    ((incarnation as i32).wrapping_mul(1 << 20) & i32::MAX) | 1
}

/// Recovers a broker's state from its disk. Nothing runs yet.
pub fn start(config: BrokerConfig, env: Env) -> std::io::Result<Arc<Shared>> {
    let disk = env.disk.clone();
    let incarnation = match checkpoint::read(disk.as_ref(), INCARNATION_PATH) {
        Ok(Some(lines)) => {
            lines
                .first()
                .and_then(|l| l.parse::<u64>().ok())
                .unwrap_or(0)
                + 1
        }
        _ => 1,
    };
    checkpoint::write(disk.as_ref(), INCARNATION_PATH, &[incarnation.to_string()])?;
    let (metadata_log, recovery) = Log::open(
        disk.clone(),
        &format!("{METADATA_TOPIC}-0"),
        config.segment_bytes,
    )?;
    let quorum = Quorum::load(disk.as_ref(), config.id, config.voters.clone());
    let recovered_high_watermarks =
        match checkpoint::read(disk.as_ref(), HIGH_WATERMARK_CHECKPOINT_PATH) {
            Ok(Some(lines)) => lines
                .iter()
                .filter_map(|l| parse_high_watermark(l))
                .collect(),
            _ => BTreeMap::new(),
        };
    let now = env.clock.now_ms();
    let shared_config_slots = config.fetch_session_cache_slots;
    let shared = Arc::new(Shared {
        config,
        env,
        state: Lock::new(State {
            incarnation,
            quorum,
            metadata_log,
            image: MetadataImage::default(),
            partitions: BTreeMap::new(),
            controller: None,
            recovered_high_watermarks,
            last_checkpoint_ms: now,
            metadata_fetcher: None,
            metadata_fetcher_generation: 0,
            producers_started: 0,
            fetch_sessions: SessionCache::new(shared_config_slots, first_session_id(incarnation)),
            replica_fetchers: BTreeSet::new(),
            role_changes: 0,
            unopened: BTreeSet::new(),
            coordinator: Default::default(),
            transactions: Default::default(),
        }),
        changed: Signal::default(),
    });
    shared.emit(Event::BrokerStarted { incarnation });
    {
        let mut s = shared.lock();
        let (log_end_offset, timeout) = (
            s.metadata_log.log_end_offset(),
            shared.config.election_timeout_ms,
        );
        s.quorum.reset_election_timer(now, timeout);
        info!(
            broker = shared.id(),
            incarnation,
            metadata_log_end = log_end_offset,
            dropped_bytes = recovery.dropped_bytes,
            "broker started"
        );
        shared.emit(Event::LogRecovered {
            partition: TopicPartition::new(METADATA_TOPIC, 0),
            log_end_offset,
            high_watermark: 0,
            dropped_bytes: recovery.dropped_bytes,
        });
    }
    Ok(shared)
}

fn parse_high_watermark(line: &str) -> Option<(TopicPartition, i64)> {
    let mut parts = line.split(' ');
    let topic = parts.next()?;
    let partition = parts.next()?.parse().ok()?;
    let hw = parts.next()?.parse().ok()?;
    Some((TopicPartition::new(topic, partition), hw))
}

/// Runs a started broker until its node dies: the listener and every background task.
pub async fn serve(shared: Arc<Shared>) -> std::io::Result<()> {
    let address = shared
        .config
        .address(shared.id())
        .ok_or_else(|| std::io::Error::other(format!("broker {} has no address", shared.id())))?;
    let listener = crate::net::TcpListener::bind(address).await?;
    madsim::task::spawn(crate::raft_driver::run(shared.clone()));
    madsim::task::spawn(crate::controller::run(shared.clone()));
    madsim::task::spawn(crate::controller::heartbeat_loop(shared.clone()));
    madsim::task::spawn(replica_tick(shared.clone()));
    let acceptor = shared.clone();
    madsim::task::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            madsim::task::spawn(serve::connection(acceptor.clone(), stream));
        }
    });
    let _ = madsim::signal::ctrl_c().await;
    controlled_shutdown(&shared).await;
    Ok(())
}

/// Applies newly committed metadata and brings partitions in line with it.
pub fn apply_committed(shared: &Arc<Shared>, s: &mut State) {
    let commit = s.quorum.high_watermark.min(s.metadata_log.log_end_offset());
    if s.image.next_offset >= commit {
        return;
    }
    let bytes = match s.metadata_log.read(s.image.next_offset, commit, usize::MAX) {
        Ok(b) => b,
        Err(_) => return,
    };
    let records = match batch::decode(bytes) {
        Ok(r) => r,
        Err(e) => panic!(
            "broker {}: committed metadata does not decode: {e}",
            shared.id()
        ),
    };
    // Partition records change one partition each: only those need bringing in line. Any other
    // record (a broker registered or fenced, a topic made) may change every partition's role.
    let mut scope = Some(BTreeSet::new());
    for (offset, _key, value) in records {
        if offset < s.image.next_offset {
            continue;
        }
        let value = value.unwrap_or_default();
        let record = MetadataRecord::decode(&value)
            .unwrap_or_else(|e| panic!("broker {}: metadata record at {offset}: {e}", shared.id()));
        trace!(offset, ?record, "applying committed metadata");
        s.image.apply(offset, &record);
        match (&record, &mut scope) {
            (MetadataRecord::LeaderChange { .. }, _) | (_, None) => {}
            (MetadataRecord::Partition(state), Some(only)) => {
                only.insert(state.topic_partition());
            }
            _ => scope = None,
        }
    }
    reconcile_in(shared, s, scope);
}

/// Every record in a partition's log was written in an epoch this broker's image once held (as
/// leader, or as the follower of that epoch's leader), and committed metadata never goes back; so
/// an image naming an older epoch than the log's last means this incarnation took up metadata
/// older than what an earlier one acted on: it would follow a deposed leader, and truncate what
/// the newer epochs acknowledged.
fn assert_image_not_older_than_log(
    me: BrokerId,
    tp: &TopicPartition,
    state: &PartitionState,
    p: &Partition,
) {
    let logged = p.log.latest_epoch();
    assert!(
        state.leader_epoch >= logged,
        "broker {me}: {tp}: takes up leader epoch {} from its metadata image, but its log already \
         holds records of epoch {logged}",
        state.leader_epoch
    );
}

/// Takes up the partition roles the metadata image assigns to this broker: for the partitions
/// `only` names (with those whose log could not be opened yet), or, with `None`, for every
/// partition of the image.
///
/// A broker leads only once the image shows this incarnation registered and unfenced. Before that,
/// the image may still name it leader of an epoch it led before a restart, with an ISR the old
/// incarnation's in-memory state vouched for; leading that epoch again would let the high
/// watermark move on a view of the ISR that a still-uncommitted AlterPartition may overturn. The
/// controller answers a new incarnation by moving its leaderships to a new epoch.
fn reconcile_in(shared: &Arc<Shared>, s: &mut State, only: Option<BTreeSet<TopicPartition>>) {
    let me = shared.id();
    let now = shared.now_ms();
    let in_service = s.in_service(me);
    // The loop reads the image while it changes the partitions: borrowed apart, rather than every
    // partition of the image copied at every tick.
    let State {
        image,
        partitions,
        recovered_high_watermarks,
        replica_fetchers,
        role_changes,
        unopened,
        ..
    } = s;
    let mut changed = false;
    let mut start_fetchers = Vec::new();
    // In the image's order either way: topic, then partition.
    let states: Box<dyn Iterator<Item = &PartitionState>> = match only {
        None => Box::new(image.partitions()),
        Some(mut only) => {
            only.extend(unopened.iter().cloned());
            let states: Vec<_> = (only.iter())
                .filter_map(|tp| image.partition(&tp.topic, tp.partition))
                .collect();
            Box::new(states.into_iter())
        }
    };
    for state in states.filter(|p| p.replicas.contains(&me)) {
        let tp = state.topic_partition();
        if !partitions.contains_key(&tp) {
            match open_partition(shared, recovered_high_watermarks, &tp) {
                Ok(p) => {
                    partitions.insert(tp.clone(), p);
                    unopened.remove(&tp);
                    *role_changes += 1;
                }
                // A disk that cannot be read now is tried again at the next reconcile.
                Err(error) => {
                    warn!(partition = %tp, %error, "cannot open the partition's log; will try again");
                    crate::mark!(PartitionLogUnreadable);
                    unopened.insert(tp);
                    continue;
                }
            }
        }
        let p = partitions.get_mut(&tp).expect("opened above");
        if state.leader == me && !in_service {
            continue;
        }
        if state.leader == me {
            let newer_epoch = state.leader_epoch > p.leader_epoch;
            if !p.is_leader() || newer_epoch {
                assert!(
                    state.leader_epoch >= p.leader_epoch,
                    "{tp}: leader epoch went back"
                );
                assert_image_not_older_than_log(me, &tp, state, p);
                let old_reports = shared.config.bug(bugs::Switch::HwAdvanceOldEpoch);
                p.become_leader(state, now, old_reports);
                *role_changes += 1;
                if shared.config.bug(bugs::Switch::ProducerStateNotRebuilt) {
                    p.log.forget_producers();
                }
                debug!(
                    partition = %tp,
                    epoch = state.leader_epoch,
                    partition_epoch = state.partition_epoch,
                    isr = ?state.isr,
                    log_end = p.log.log_end_offset(),
                    high_watermark = p.log.high_watermark(),
                    "became leader"
                );
                shared.emit(Event::BecameLeader {
                    partition: tp.clone(),
                    leader_epoch: state.leader_epoch,
                    log_end_offset: p.log.log_end_offset(),
                    high_watermark: p.log.high_watermark(),
                });
                // Weighed at once, as Kafka's `makeLeader` does, not at the next tick: an ISR of
                // the leader alone commits what it synced, and what followers are believed to
                // hold counts from the first moment of the leadership.
                advance_high_watermark_of(shared, &tp, p);
                changed = true;
            } else if let Role::Leader(l) = &mut p.role {
                if state.partition_epoch > l.partition_epoch {
                    debug!(
                        partition = %tp,
                        epoch = state.leader_epoch,
                        partition_epoch = state.partition_epoch,
                        isr = ?state.isr,
                        old_isr = ?l.isr,
                        "leader takes up the ISR from committed metadata"
                    );
                    l.isr = state.isr.clone();
                    l.partition_epoch = state.partition_epoch;
                    // The image holds every record before this one, so whatever became of an
                    // earlier AlterPartition is settled.
                    l.pending_isr = None;
                    changed = true;
                }
            }
        } else {
            let same_leader = matches!(p.role, Role::Follower { leader } if leader == state.leader);
            if same_leader
                && state.leader_epoch > p.leader_epoch
                && shared.config.bug(bugs::Switch::SameLeaderNoTruncate)
            {
                // The fetcher carries on into the new epoch, so the truncation that a new epoch
                // calls for never happens.
                debug!(
                    partition = %tp,
                    epoch = state.leader_epoch,
                    leader = state.leader,
                    "same leader in a new epoch: following on without truncating (bug switch)"
                );
                p.leader_epoch = state.leader_epoch;
                p.replicas = state.replicas.clone();
            }
            let same = same_leader && p.leader_epoch == state.leader_epoch;
            if !same {
                assert!(
                    state.leader_epoch >= p.leader_epoch,
                    "{tp}: leader epoch went back"
                );
                assert_image_not_older_than_log(me, &tp, state, p);
                p.become_follower(state);
                *role_changes += 1;
                debug!(
                    partition = %tp,
                    epoch = state.leader_epoch,
                    leader = state.leader,
                    log_end = p.log.log_end_offset(),
                    high_watermark = p.log.high_watermark(),
                    "became follower"
                );
                shared.emit(Event::BecameFollower {
                    partition: tp.clone(),
                    leader_epoch: state.leader_epoch,
                    leader: state.leader,
                });
                if shared.config.bug(bugs::Switch::HwTruncation) {
                    truncate_to_own_high_watermark(shared, &tp, p);
                }
                if state.leader != NO_LEADER {
                    start_fetchers.push(state.leader);
                }
                changed = true;
            }
        }
    }
    for leader in start_fetchers {
        replica_fetcher::ensure_running(shared, replica_fetchers, leader);
    }
    if changed {
        shared.notify();
    }
}

/// The rule before leader epochs: a follower cut its log back to its own high watermark when its
/// role started, and fetched the rest again. Its high watermark lags the leader's by a fetch, so
/// this drops records the leader has already counted as committed.
fn truncate_to_own_high_watermark(shared: &Arc<Shared>, tp: &TopicPartition, p: &mut Partition) {
    let (from, high_watermark) = (p.log.log_end_offset(), p.log.high_watermark());
    if let Ok(to) = p.log.truncate_to(high_watermark) {
        if to < from {
            debug!(
                partition = %tp,
                from,
                to,
                high_watermark,
                reason = "new follower role cuts back to its own high watermark (bug switch)",
                "truncated"
            );
            shared.emit(Event::Truncated {
                partition: tp.clone(),
                from,
                to,
                high_watermark,
            });
        }
    }
}

fn open_partition(
    shared: &Arc<Shared>,
    recovered_high_watermarks: &mut BTreeMap<TopicPartition, i64>,
    tp: &TopicPartition,
) -> std::io::Result<Partition> {
    let (mut log, recovery) = Log::open(
        shared.env.disk.clone(),
        &tp.to_string(),
        shared.config.segment_bytes,
    )?;
    let checkpointed = recovered_high_watermarks.remove(tp).unwrap_or(0);
    log.set_high_watermark(checkpointed.clamp(0, log.log_end_offset()));
    debug!(
        partition = %tp,
        log_end = log.log_end_offset(),
        high_watermark = log.high_watermark(),
        checkpointed,
        dropped_bytes = recovery.dropped_bytes,
        "opened partition log"
    );
    shared.emit(Event::LogRecovered {
        partition: tp.clone(),
        log_end_offset: log.log_end_offset(),
        high_watermark: log.high_watermark(),
        dropped_bytes: recovery.dropped_bytes,
    });
    Ok(Partition::new(tp.clone(), log))
}

/// Syncs a log without holding the state lock across the disk wait.
pub async fn sync_log(shared: &Arc<Shared>, which: &LogRef) -> std::io::Result<()> {
    let ticket = match shared.lock().log_mut(which) {
        Some(log) => log.sync_ticket(),
        None => return Ok(()),
    };
    while let Err(error) = sync_files(shared, &ticket).await {
        // What the failed sync covered is written but not durable, and nothing else may come to
        // sync it: the ticket took its files off the dirty list, a retried produce is answered
        // from the log without an append, and a follower's next fetch asks from its durable end,
        // below records it cannot append again. The high watermark would wait for ever.
        warn!(log = %which, %error, "sync failed; trying again");
        madsim::time::sleep(SYNC_RETRY).await;
        let s = shared.lock();
        if !s.log(which).is_some_and(|log| ticket.covers(log)) {
            return Err(error);
        }
    }
    if fault_point::fires(fault_point::Point::SlowSync) {
        madsim::time::sleep(fault_point::delay(Duration::from_millis(200))).await;
    }
    let mut s = shared.lock();
    if let Some(log) = s.log_mut(which) {
        log.complete_sync(&ticket);
    }
    Ok(())
}

/// Syncs a ticket's files, once.
async fn sync_files(shared: &Shared, ticket: &SyncTicket) -> std::io::Result<()> {
    if fault_point::fires(fault_point::Point::FailSync) {
        return Err(std::io::Error::other("sync failed (fault point)"));
    }
    for path in ticket.paths() {
        shared.env.disk.sync(path).await?;
    }
    Ok(())
}

/// Moves a leader's high watermark after its followers or its own sync moved, and tells waiters.
pub fn advance_high_watermark(shared: &Arc<Shared>, s: &mut State, tp: &TopicPartition) {
    if let Some(p) = s.partitions.get_mut(tp) {
        advance_high_watermark_of(shared, tp, p);
    }
}

/// `advance_high_watermark` for a partition already at hand: a fetch looks each of its
/// partitions up once.
pub fn advance_high_watermark_of(shared: &Shared, tp: &TopicPartition, p: &mut Partition) {
    let before = p.log.high_watermark();
    let unsynced = shared.config.bug(bugs::Switch::NoFsyncBeforeAck);
    if let Some(high_watermark) = p.maybe_advance_high_watermark(shared.id(), unsynced) {
        assert!(
            high_watermark > before,
            "{tp}: leader high watermark went back"
        );
        trace!(partition = %tp, high_watermark, "leader's high watermark advanced");
        shared.emit(Event::HighWatermark {
            partition: tp.clone(),
            high_watermark,
        });
        shared.notify_moved_to(tp, Watch::HighWatermark, high_watermark);
    }
}

/// The leader's periodic duties: ISR changes, and the high-watermark checkpoint.
async fn replica_tick(shared: Arc<Shared>) {
    loop {
        madsim::time::sleep(TICK * 2).await;
        let now = shared.now_ms();
        let me = shared.id();
        let mut s = shared.lock();
        let lag = shared.config.replica_lag_time_max_ms;
        // Partitions whose log could not be opened at the last metadata change get another try.
        // The others are in line with the image: every change to it reconciles what it touched.
        reconcile_in(&shared, &mut s, Some(BTreeSet::new()));
        let mut requests = Vec::new();
        let State {
            partitions, image, ..
        } = &mut *s;
        for (tp, p) in partitions.iter_mut() {
            let wanted = p.wanted_isr(me, now, lag, |r| image.is_unfenced(r));
            let Role::Leader(l) = &mut p.role else {
                continue;
            };
            if let Some(wanted) = wanted {
                debug!(
                    partition = %tp,
                    epoch = p.leader_epoch,
                    partition_epoch = l.partition_epoch,
                    isr = ?l.isr,
                    wanted = ?wanted,
                    change = isr_change(&l.isr, &wanted),
                    "proposing an ISR change"
                );
                l.pending_isr = Some(wanted);
            }
            // A proposal whose answer was lost is sent again, unchanged, until it is settled.
            if let (Some(pending), false) = (&l.pending_isr, l.alter_in_flight) {
                trace!(partition = %tp, isr = ?pending, "sending AlterPartition");
                l.alter_in_flight = true;
                requests.push(crate::controller::IsrProposal {
                    tp: tp.clone(),
                    leader_epoch: p.leader_epoch,
                    partition_epoch: l.partition_epoch,
                    isr: pending.clone(),
                });
            }
        }
        for (tp, p) in s.partitions.iter_mut() {
            advance_high_watermark_of(&shared, tp, p);
        }
        crate::group::expire(&shared, &mut s, now);
        let txn_due = crate::txn::coordinator::due(&shared, &mut s, now);
        if now.saturating_sub(s.last_checkpoint_ms)
            >= shared.config.high_watermark_checkpoint_interval_ms
        {
            s.last_checkpoint_ms = now;
            write_high_watermark_checkpoint(&shared, &s);
        }
        drop(s);
        crate::txn::coordinator::run_due(&shared, txn_due);
        if !requests.is_empty() {
            madsim::task::spawn(crate::controller::alter_partitions(
                shared.clone(),
                requests,
            ));
        }
    }
}

/// How a wanted ISR differs from the current one, in a word for the log.
fn isr_change(isr: &[BrokerId], wanted: &[BrokerId]) -> &'static str {
    let (out, into) = (
        isr.iter().any(|r| !wanted.contains(r)),
        wanted.iter().any(|r| !isr.contains(r)),
    );
    match (out, into) {
        (true, false) => "shrink",
        (false, true) => "expand",
        _ => "shrink and expand",
    }
}

/// Saves every partition's high watermark. A failed write (a full disk) is tried again later.
fn write_high_watermark_checkpoint(shared: &Shared, s: &State) {
    let mut lines: Vec<String> = s
        .partitions
        .iter()
        .map(|(tp, p)| format!("{} {} {}", tp.topic, tp.partition, p.log.high_watermark()))
        .collect();
    lines.extend(
        s.recovered_high_watermarks
            .iter()
            .map(|(tp, hw)| format!("{} {} {hw}", tp.topic, tp.partition)),
    );
    if let Err(error) = checkpoint::write(
        shared.env.disk.as_ref(),
        HIGH_WATERMARK_CHECKPOINT_PATH,
        &lines,
    ) {
        warn!(%error, "cannot write the high-watermark checkpoint; will try again");
    }
}

/// A controlled shutdown, on Ctrl-C: the controller moves this broker's leaderships away first,
/// then every log is synced and the high watermarks saved, so that nothing is lost and no
/// partition waits for a session to expire.
async fn controlled_shutdown(shared: &Arc<Shared>) {
    info!(
        broker = shared.id(),
        "controlled shutdown: asking the controller to move leaderships"
    );
    let deadline = madsim::time::Instant::now() + shared.request_timeout() * 3;
    let mut connection = None;
    let mut released = false;
    while !released && madsim::time::Instant::now() < deadline {
        let response = crate::controller::send_heartbeat(shared, &mut connection, true).await;
        released = response.is_some_and(|r| r.should_shut_down);
        if !released {
            madsim::time::sleep(TICK * 2).await;
        }
    }
    let mut logs = vec![LogRef::Metadata];
    logs.extend(
        shared
            .lock()
            .partitions
            .keys()
            .cloned()
            .map(LogRef::Partition),
    );
    for which in &logs {
        let _ = sync_log(shared, which).await;
    }
    write_high_watermark_checkpoint(shared, &shared.lock());
    info!(
        broker = shared.id(),
        leaderships_moved = released,
        "controlled shutdown done"
    );
    shared.emit(Event::ShutDown {
        leaderships_moved: released,
    });
}

/// The next metadata fetcher generation, to start a fetcher that stops when a newer one starts.
pub fn next_metadata_fetcher(s: &mut State, epoch: i32, leader: BrokerId) -> u64 {
    s.metadata_fetcher_generation += 1;
    s.metadata_fetcher = Some((epoch, leader, s.metadata_fetcher_generation));
    s.metadata_fetcher_generation
}
