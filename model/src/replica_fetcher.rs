//! A follower's replica fetcher, one per leader broker, as Kafka's are: one Fetch request carries
//! every partition this broker follows from that leader, in a fetch session (KIP-227), so that
//! a follower of hundreds of partitions sends one request per round trip, not hundreds, and the
//! leader's long poll wakes on a move of any of them. Epochs, divergence and truncation stay per
//! partition (`crate::fetcher`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tracing::{debug, trace};

use crate::broker::{self, LogRef, Shared, State};
use crate::fetch_codec::{FetchAnswer, FetchQuery, PartitionQuery};
use crate::fetch_session::handler::SessionHandler;
use crate::fetcher::{self, error_code, Applied};
use crate::partition::{Partition, Role};
use crate::wire::Connection;
use crate::{bugs, BrokerId, TopicPartition};

const BACKOFF: Duration = Duration::from_millis(100);

/// Starts a fetcher for `leader` unless one runs (`running` names those that do).
pub fn ensure_running(shared: &Arc<Shared>, running: &mut BTreeSet<BrokerId>, leader: BrokerId) {
    if leader >= 0 && running.insert(leader) {
        madsim::task::spawn(run(shared.clone(), leader));
    }
}

/// What the fetcher keeps of one partition from one fetch to the next.
struct Fetching {
    /// The follower role it serves: a new role (a new epoch, a restart) starts afresh.
    generation: u64,
    /// Whether a fetch of this role has come back with no divergence yet.
    validated: bool,
    /// After an error, the partition sits out of fetches until then (ms).
    delayed_until: u64,
    /// The fetch that last named it.
    round: u64,
}

impl Fetching {
    fn new(generation: u64, round: u64) -> Fetching {
        Fetching {
            generation,
            validated: false,
            delayed_until: 0,
            round,
        }
    }
}

/// One leader's fetcher and what it keeps between fetches.
struct Fetcher {
    shared: Arc<Shared>,
    leader: BrokerId,
    partitions: BTreeMap<TopicPartition, Fetching>,
    session: SessionHandler,
    /// The partitions of the next fetch, as the session's full list.
    wanted: Vec<PartitionQuery>,
    query: FetchQuery,
    answer: FetchAnswer,
    rounds: u64,
    /// The broker's `role_changes` when the fetcher last looked through every partition.
    roles_seen: Option<u64>,
    every_fetch: bool,
    unsynced: bool,
    fences: bool,
}

/// A partition's answer taken without divergence.
struct Taken {
    which: LogRef,
    /// The high watermark the leader reported.
    high_watermark: i64,
    /// Whether records were appended, to sync before the high watermark is taken.
    appended: bool,
}

/// What the fetcher should do next.
enum Next {
    Fetch,
    /// Every partition sits out after an error: wait.
    Wait(Duration),
    /// This broker follows nothing from the leader any more.
    Stop,
}

async fn run(shared: Arc<Shared>, leader: BrokerId) {
    // One fetcher per leader: a twin's appends would land out of order behind this one's, and
    // each would refuse the other's answers, a follower that stalls while it looks busy.
    assert!(
        shared.lock().replica_fetchers.contains(&leader),
        "broker {}: a replica fetcher for {leader} started unregistered",
        shared.id()
    );
    let any = LogRef::Partition(TopicPartition::new("", 0));
    let config = &shared.config;
    let mut f = Fetcher {
        leader,
        partitions: BTreeMap::new(),
        session: SessionHandler::default(),
        wanted: Vec::new(),
        query: FetchQuery::default(),
        answer: FetchAnswer::default(),
        rounds: 0,
        roles_seen: None,
        every_fetch: fetcher::checks_every_fetch(config, &any),
        unsynced: fetcher::counts_unsynced(config, &any),
        fences: !config.bug(bugs::Switch::ZombieFollower),
        shared: shared.clone(),
    };
    let wait = Duration::from_millis(config.fetch_max_wait_ms);
    let mut connection: Option<Connection> = None;
    debug!(leader, "replica fetcher started");
    loop {
        match f.next_fetch() {
            Next::Stop => {
                debug!(
                    leader,
                    "replica fetcher stops: no partition follows this leader"
                );
                return;
            }
            Next::Wait(pause) => {
                madsim::time::sleep(pause).await;
                continue;
            }
            Next::Fetch => {}
        }
        if connection.is_none() {
            let Some(address) = config.address(leader) else {
                return;
            };
            let client = format!("replica-{}", shared.id());
            match Connection::connect(address, &client, shared.request_timeout()).await {
                Ok(c) => connection = Some(c),
                Err(error) => {
                    trace!(leader, %error, "cannot reach the leader");
                    f.session.lost_answer();
                    madsim::time::sleep(BACKOFF).await;
                    continue;
                }
            }
        }
        let conn = connection.as_mut().expect("connected above");
        let limit = wait + shared.request_timeout();
        let known = f.wanted.first().map(|p| p.tp.topic.clone());
        if let Err(error) = conn
            .fetch(&f.query, known.as_ref(), &mut f.answer, limit)
            .await
        {
            trace!(leader, %error, "fetch failed; reconnecting");
            connection = None;
            f.session.lost_answer();
            madsim::time::sleep(BACKOFF).await;
            continue;
        }
        if !f.session.take_answer(&f.answer) {
            debug!(
                leader,
                error_code = f.answer.error_code,
                "fetch session refused: starting over with a full fetch"
            );
            crate::mark!(FetchSessionRefused);
            continue;
        }
        f.take_answer().await;
    }
}

impl Fetcher {
    /// Writes the next fetch into `self.query`, from every partition this broker follows from
    /// the leader that is not sitting out.
    fn next_fetch(&mut self) -> Next {
        let shared = self.shared.clone();
        let mut s = shared.lock();
        let now = shared.now_ms();
        self.rounds += 1;
        let round = self.rounds;
        self.wanted.clear();
        let mut resume_at = u64::MAX;
        let config = &shared.config;
        let mut want = |tp: &TopicPartition, p: &Partition, f: &mut Fetching| {
            if f.generation != p.fetcher_generation {
                *f = Fetching::new(p.fetcher_generation, round);
            }
            f.round = round;
            if f.delayed_until > now {
                resume_at = resume_at.min(f.delayed_until);
                return;
            }
            let log = &p.log;
            self.wanted.push(PartitionQuery {
                tp: tp.clone(),
                first_of_topic: false,
                current_leader_epoch: if self.fences { p.leader_epoch } else { -1 },
                fetch_offset: if self.unsynced {
                    log.log_end_offset()
                } else {
                    log.durable_end_offset()
                },
                last_fetched_epoch: if self.every_fetch || !f.validated {
                    log.latest_epoch()
                } else {
                    -1
                },
                partition_max_bytes: config.replica_fetch_max_bytes,
            });
        };
        if self.roles_seen == Some(s.role_changes) {
            // The same partitions follow this leader as at the last look: only theirs are read.
            for (tp, f) in &mut self.partitions {
                want(tp, &s.partitions[tp], f);
            }
        } else {
            self.roles_seen = Some(s.role_changes);
            let leader = self.leader;
            let followed = (s.partitions.iter())
                .filter(|(_, p)| matches!(p.role, Role::Follower { leader: l } if l == leader));
            for (tp, p) in followed {
                let f = (self.partitions.entry(tp.clone()))
                    .or_insert_with(|| Fetching::new(p.fetcher_generation, round));
                want(tp, p, f);
            }
        }
        self.partitions.retain(|_, f| f.round == round);
        if self.partitions.is_empty() {
            s.replica_fetchers.remove(&self.leader);
            return Next::Stop;
        }
        if self.wanted.is_empty() {
            return Next::Wait(Duration::from_millis(resume_at.saturating_sub(now).max(1)));
        }
        drop(s);
        self.query.replica_id = shared.id();
        self.query.max_wait_ms = config.fetch_max_wait_ms as i32;
        self.query.max_bytes = config.replica_fetch_response_max_bytes;
        self.session.build(&self.wanted, &mut self.query);
        Next::Fetch
    }

    /// Whether this broker still follows `tp` from this leader in the role the fetcher knows.
    fn still_following(&self, s: &State, tp: &TopicPartition) -> bool {
        let (Some(p), Some(f)) = (s.partitions.get(tp), self.partitions.get(tp)) else {
            return false;
        };
        matches!(p.role, Role::Follower { leader } if leader == self.leader)
            && p.fetcher_generation == f.generation
    }

    /// Takes every partition's answer: truncates or appends under the lock, syncs what was
    /// appended (every log at once), then takes up the high watermarks of the logs that are
    /// whole.
    async fn take_answer(&mut self) {
        let shared = self.shared.clone();
        let now = shared.now_ms();
        let mut taken: Vec<Taken> = Vec::new();
        let answer = std::mem::take(&mut self.answer);
        {
            let mut s = shared.lock();
            for (topic, a) in &answer.partitions {
                let tp = TopicPartition::new(topic.clone(), a.partition_index);
                if !self.still_following(&s, &tp) {
                    continue;
                }
                let which = LogRef::Partition(tp.clone());
                if a.error_code != error_code::NONE {
                    let epoch = s.partitions.get(&tp).map_or(-1, |p| p.leader_epoch);
                    fetcher::refused(&which, self.leader, epoch, a.error_code);
                    self.delay(&tp, now);
                    continue;
                }
                let applied = fetcher::take_records(&shared, &mut s, &which, self.leader, a);
                match applied {
                    Applied::Appended | Applied::Fetched => taken.push(Taken {
                        which,
                        high_watermark: a.high_watermark,
                        appended: applied == Applied::Appended,
                    }),
                    Applied::BackOff => self.delay(&tp, now),
                    Applied::Truncated | Applied::Stale => {}
                }
            }
        }
        self.answer = answer;
        if !self.unsynced {
            // A sync fails only once its log was truncated or removed beneath it (`sync_log`
            // tries again otherwise), which only a newer follower role does: `still_following`
            // below then skips the log.
            let appended = || taken.iter().filter(|t| t.appended);
            match appended().count() {
                0 => {}
                // One log, the common case under light load: no futures to gather.
                1 => {
                    let _ = broker::sync_log(&shared, &appended().next().expect("one").which).await;
                }
                _ => {
                    let syncs = appended().map(|t| broker::sync_log(&shared, &t.which));
                    futures_util::future::join_all(syncs).await;
                }
            }
        }
        let mut s = shared.lock();
        for t in &taken {
            let LogRef::Partition(tp) = &t.which else {
                continue;
            };
            if !self.still_following(&s, tp) {
                continue;
            }
            fetcher::take_high_watermark(&shared, &mut s, &t.which, t.high_watermark);
            if let Some(f) = self.partitions.get_mut(tp) {
                f.validated = true;
            }
        }
    }

    /// Sits `tp` out of fetches for a while after an error.
    fn delay(&mut self, tp: &TopicPartition, now: u64) {
        if let Some(f) = self.partitions.get_mut(tp) {
            f.delayed_until = now + BACKOFF.as_millis() as u64;
        }
    }
}
