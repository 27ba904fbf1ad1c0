//! The active controller: the quorum leader, once its epoch's first record has committed (so its
//! image holds everything before it). It registers and fences brokers, elects partition leaders
//! from the ISR (or, if allowed, from outside it), creates the configured topics, and decides
//! AlterPartition requests. It decides only when nothing it appended is still uncommitted, so each
//! decision sees the effects of the last.
//!
//! The broker side lives here too: the heartbeat loop and the AlterPartition sender.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::alter_partition_request::{self, AlterPartitionRequest};
use kafka_protocol::messages::alter_partition_response::{self, AlterPartitionResponse};
use kafka_protocol::messages::{
    BrokerHeartbeatRequest, BrokerHeartbeatResponse, BrokerId as WireBrokerId,
};
use tracing::{debug, trace};

use crate::broker::{Shared, State, TICK};
use crate::env::Event;
use crate::fetcher::error_code;
use crate::metadata::{topic_id, MetadataImage, MetadataRecord, PartitionState, NO_LEADER};
use crate::partition::Role;
use crate::raft_driver::append_metadata;
use crate::wire::Connection;
use crate::{BrokerId, TopicPartition};

const HEARTBEAT_VERSION: i16 = 0;
const ALTER_PARTITION_VERSION: i16 = 3;

/// What the active controller keeps in memory only, rebuilt on each activation.
#[derive(Clone, Debug)]
pub struct ControllerState {
    pub epoch: i32,
    pub last_heartbeat_ms: BTreeMap<BrokerId, u64>,
    /// When this controller took over.
    pub since_ms: u64,
}

/// The controller, if this broker is the active one now.
fn active<'a>(shared: &Shared, s: &'a mut State) -> Option<&'a mut ControllerState> {
    if !s.quorum.is_leader() {
        s.controller = None;
        return None;
    }
    let epoch = s.quorum.epoch;
    let epoch_start = s.metadata_log.epochs().start_offset_of(epoch)?;
    if s.image.next_offset <= epoch_start {
        return None;
    }
    if s.controller.as_ref().is_none_or(|c| c.epoch != epoch) {
        let now = shared.now_ms();
        // Every broker gets a full session from the moment this controller takes over.
        let last_heartbeat_ms = s.image.brokers.keys().map(|b| (*b, now)).collect();
        s.controller = Some(ControllerState {
            epoch,
            last_heartbeat_ms,
            since_ms: now,
        });
        debug!(
            epoch,
            metadata_offset = s.image.next_offset,
            "controller active: every broker's session starts now"
        );
        shared.emit(Event::ControllerActive { epoch });
    }
    s.controller.as_mut()
}

/// Nothing appended by this controller is waiting to commit.
fn quiet(s: &State) -> bool {
    s.quorum.high_watermark >= s.metadata_log.log_end_offset()
        && s.image.next_offset >= s.metadata_log.log_end_offset()
}

pub async fn run(shared: Arc<Shared>) {
    loop {
        madsim::time::sleep(TICK * 2).await;
        let mut guard = shared.lock();
        let s = &mut *guard;
        let Some(controller) = active(&shared, s) else {
            continue;
        };
        let now = shared.now_ms();
        let session = shared.config.broker_session_timeout_ms;
        let expired: Vec<BrokerId> = controller
            .last_heartbeat_ms
            .iter()
            .filter(|(_, t)| now.saturating_sub(**t) > session)
            .map(|(b, _)| *b)
            .collect();
        // An administrator creates topics once the cluster is up, so that round-robin spreads
        // them over every broker. Brokers join one by one (registered, then unfenced once caught
        // up), nine in about six seconds; one that has not joined within three session timeouts
        // of this controller taking over (a broker down from the start) is not waited for.
        let spread = Spread {
            brokers: shared.config.brokers.len(),
            waited: now.saturating_sub(controller.since_ms) >= 3 * session,
        };
        if !quiet(s) {
            continue;
        }
        let mut records = Vec::new();
        let mut notes = Vec::new();
        if let Some(&broker) = expired.iter().find(|b| s.image.is_unfenced(**b)) {
            records = fence(&s.image, broker, shared.config.unclean_election());
            crate::mark!(BrokerFenced);
            let reason = "session expired".into();
            notes.push(Event::BrokerFenced { broker, reason });
        }
        if records.is_empty() {
            records = create_topics(&s.image, &shared.config.topics_to_create(), spread);
        }
        if records.is_empty() {
            records = elect_offline(&s.image, shared.config.unclean_election());
        }
        propose(&shared, s, &records, notes);
    }
}

/// Appends a decision to the metadata log; only once it is written do the events that report it
/// go out. `None` if it could not be written (not leader, or a full disk).
fn propose(
    shared: &Arc<Shared>,
    s: &mut State,
    records: &[MetadataRecord],
    mut notes: Vec<Event>,
) -> Option<i64> {
    notes.extend(change_events(&s.image, records));
    let offset = append_metadata(shared, s, records)?;
    for note in notes {
        log_decision(offset, &note);
        shared.emit(note);
    }
    Some(offset)
}

/// Logs a decision the controller has written to the metadata log at `offset`.
fn log_decision(offset: i64, note: &Event) {
    match note {
        Event::BrokerFenced { broker, reason } => {
            debug!(broker, %reason, offset, "controller fences broker");
        }
        Event::BrokerUnfenced { broker } => {
            debug!(
                broker,
                offset,
                reason = "caught up on metadata since it registered",
                "controller unfences broker"
            );
        }
        Event::BrokerRegistered {
            broker,
            incarnation,
        } => {
            debug!(
                broker,
                incarnation,
                offset,
                "controller registers a new incarnation, fenced until it catches up"
            );
        }
        Event::PartitionChanged {
            partition,
            leader,
            leader_epoch,
            partition_epoch,
            isr,
            unclean,
        } => {
            debug!(
                %partition,
                leader,
                epoch = leader_epoch,
                partition_epoch,
                ?isr,
                unclean,
                offset,
                "controller changes partition"
            );
        }
        other => debug!(?other, offset, "controller decision"),
    }
}

/// The events that report partition changes among `records`, against the image before them.
fn change_events(image: &MetadataImage, records: &[MetadataRecord]) -> Vec<Event> {
    records
        .iter()
        .filter_map(|r| match r {
            MetadataRecord::Partition(p) => Some(p),
            _ => None,
        })
        .map(|p| {
            let before = image.partition(&p.topic, p.partition);
            let unclean =
                p.leader != NO_LEADER && before.is_some_and(|b| !b.isr.contains(&p.leader));
            Event::PartitionChanged {
                partition: p.topic_partition(),
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                isr: p.isr.clone(),
                unclean,
            }
        })
        .collect()
}

/// The first replica, in assignment order, that may lead: in the ISR and unfenced; or, when unclean
/// election is allowed and no such replica exists, any unfenced replica.
fn choose_leader(
    p: &PartitionState,
    eligible: &dyn Fn(BrokerId) -> bool,
    unclean: bool,
) -> Option<(BrokerId, bool)> {
    if let Some(l) = p
        .replicas
        .iter()
        .copied()
        .find(|r| p.isr.contains(r) && eligible(*r))
    {
        return Some((l, false));
    }
    if unclean {
        let chosen = p.replicas.iter().copied().find(|r| eligible(*r));
        if chosen.is_some() {
            crate::mark!(UncleanElection);
        }
        return chosen.map(|l| (l, true));
    }
    None
}

/// Records that take `broker` out of service: fenced, out of every ISR it can leave, and no longer
/// leading. The last ISR member stays in the ISR, so the partition waits for it rather than
/// electing a replica that may lack committed data.
pub fn fence(image: &MetadataImage, broker: BrokerId, unclean: bool) -> Vec<MetadataRecord> {
    let mut records = vec![MetadataRecord::FenceBroker { broker }];
    records.extend(remove_from_partitions(image, broker, unclean));
    records
}

fn remove_from_partitions(
    image: &MetadataImage,
    broker: BrokerId,
    unclean: bool,
) -> Vec<MetadataRecord> {
    let eligible = |b: BrokerId| b != broker && image.is_unfenced(b);
    let mut records = Vec::new();
    for p in image.partitions() {
        if !p.replicas.contains(&broker) {
            continue;
        }
        let mut next = p.clone();
        if p.isr.contains(&broker) && p.isr.len() > 1 {
            next.isr.retain(|b| *b != broker);
        } else if p.isr.contains(&broker) {
            crate::mark!(LastIsrMemberKept);
        }
        if p.leader == broker {
            next.leader_epoch += 1;
            match choose_leader(&next, &eligible, unclean) {
                Some((leader, was_unclean)) => {
                    next.leader = leader;
                    if was_unclean {
                        next.isr = vec![leader];
                    }
                }
                None => {
                    crate::mark!(PartitionLeftOffline);
                    next.leader = NO_LEADER;
                }
            }
        }
        if next != *p {
            next.partition_epoch += 1;
            records.push(MetadataRecord::Partition(next));
        }
    }
    records
}

/// Leaders for partitions that have none, where an eligible replica is back.
pub fn elect_offline(image: &MetadataImage, unclean: bool) -> Vec<MetadataRecord> {
    let eligible = |b: BrokerId| image.is_unfenced(b);
    let mut records = Vec::new();
    for p in image.partitions().filter(|p| p.leader == NO_LEADER) {
        if let Some((leader, was_unclean)) = choose_leader(p, &eligible, unclean) {
            let mut next = p.clone();
            next.leader = leader;
            next.leader_epoch += 1;
            next.partition_epoch += 1;
            if was_unclean {
                next.isr = vec![leader];
            }
            crate::mark!(OfflinePartitionElected);
            records.push(MetadataRecord::Partition(next));
        }
    }
    records
}

/// When a topic without a fixed assignment may be spread over the brokers in service.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    /// The cluster's brokers, all of which are waited for.
    pub brokers: usize,
    /// Whether the wait is over, and the brokers in service are enough.
    pub waited: bool,
}

/// Creates configured topics that do not exist yet, once every broker a replica is placed on is
/// in service. Without a fixed assignment, replicas are assigned round-robin over the brokers in
/// service, as Kafka does without racks: once all of the cluster's brokers are, or, after the
/// wait, as soon as there are enough to hold every replica.
pub fn create_topics(
    image: &MetadataImage,
    topics: &[crate::config::TopicSpec],
    spread: Spread,
) -> Vec<MetadataRecord> {
    let brokers: Vec<BrokerId> = image
        .brokers
        .iter()
        .filter(|(_, b)| !b.fenced)
        .map(|(id, _)| *id)
        .collect();
    let may_spread = spread.waited || brokers.len() >= spread.brokers;
    let mut records = Vec::new();
    for spec in topics {
        let assigned_missing = spec
            .assignment
            .iter()
            .flatten()
            .any(|b| !brokers.contains(b));
        if image.topics.contains_key(spec.name.as_str())
            || brokers.len() < spec.replication_factor as usize
            || assigned_missing
            || (spec.assignment.is_empty() && !may_spread)
        {
            continue;
        }
        records.push(MetadataRecord::Topic {
            name: spec.name.clone(),
            partitions: spec.partitions,
        });
        for partition in 0..spec.partitions {
            let replicas: Vec<BrokerId> = match spec.assignment.get(partition as usize) {
                Some(assigned) => assigned.clone(),
                None => (0..spec.replication_factor as usize)
                    .map(|i| brokers[(partition as usize + i) % brokers.len()])
                    .collect(),
            };
            records.push(MetadataRecord::Partition(PartitionState {
                topic: spec.name.as_str().into(),
                partition,
                isr: replicas.clone(),
                leader: replicas[0],
                leader_epoch: 0,
                partition_epoch: 0,
                replicas,
            }));
        }
    }
    records
}

pub fn handle_heartbeat(
    shared: &Arc<Shared>,
    request: BrokerHeartbeatRequest,
) -> BrokerHeartbeatResponse {
    let mut response = BrokerHeartbeatResponse::default();
    let mut guard = shared.lock();
    let s = &mut *guard;
    let now = shared.now_ms();
    if active(shared, s).is_none() {
        response.error_code = error_code::NOT_CONTROLLER;
        return response;
    }
    let broker = request.broker_id.0;
    let incarnation = request.broker_epoch.max(0) as u64;
    let registered = s.image.brokers.get(&broker).cloned();
    if registered
        .as_ref()
        .is_some_and(|r| r.incarnation > incarnation)
    {
        debug!(
            broker,
            incarnation, "heartbeat from a stale incarnation refused"
        );
        crate::mark!(StaleIncarnationRefused);
        response.error_code = error_code::STALE_BROKER_EPOCH;
        return response;
    }
    if let Some(controller) = s.controller.as_mut() {
        controller.last_heartbeat_ms.insert(broker, now);
    }
    trace!(
        broker,
        incarnation,
        metadata_offset = request.current_metadata_offset,
        want_shut_down = request.want_shut_down,
        "heartbeat"
    );
    if request.want_shut_down {
        return shutdown_heartbeat(shared, s, broker, response);
    }
    response.is_fenced = registered.as_ref().is_none_or(|r| r.fenced);
    if !quiet(s) {
        return response;
    }
    let unclean = shared.config.unclean_election();
    let (records, note) = match registered {
        Some(r) if r.incarnation == incarnation => {
            if r.fenced && request.current_metadata_offset > r.registered_at {
                (
                    vec![MetadataRecord::UnfenceBroker { broker }],
                    Event::BrokerUnfenced { broker },
                )
            } else {
                return response;
            }
        }
        _ => {
            // A new incarnation lost whatever it had in memory: take it out of service until it
            // has caught up on metadata, as for a fenced broker.
            let mut records = vec![MetadataRecord::RegisterBroker {
                broker,
                incarnation,
            }];
            records.extend(remove_from_partitions(&s.image, broker, unclean));
            (
                records,
                Event::BrokerRegistered {
                    broker,
                    incarnation,
                },
            )
        }
    };
    propose(shared, s, &records, vec![note]);
    response
}

/// A broker asks to stop: fence it and move its leaderships away, then let it go.
fn shutdown_heartbeat(
    shared: &Arc<Shared>,
    s: &mut State,
    broker: BrokerId,
    mut response: BrokerHeartbeatResponse,
) -> BrokerHeartbeatResponse {
    let leads = s.image.partitions().any(|p| p.leader == broker);
    let unfenced = s.image.is_unfenced(broker);
    response.is_fenced = !unfenced;
    response.should_shut_down = !unfenced && !leads;
    if (unfenced || leads) && quiet(s) {
        let records = fence(&s.image, broker, shared.config.unclean_election());
        crate::mark!(ControlledShutdown);
        let reason = "controlled shutdown".into();
        propose(
            shared,
            s,
            &records,
            vec![Event::BrokerFenced { broker, reason }],
        );
    }
    response
}

/// Decides an ISR change. Only the partition's leader, in its current leader and partition epochs,
/// may change it; a replica joins only while it is in service.
fn decide_alter(
    image: &MetadataImage,
    broker: BrokerId,
    topic: &str,
    p: &alter_partition_request::PartitionData,
) -> Result<PartitionState, i16> {
    let current = image
        .partition(topic, p.partition_index)
        .ok_or(error_code::UNKNOWN_TOPIC_OR_PARTITION)?;
    if current.leader != broker || p.leader_epoch != current.leader_epoch {
        return Err(error_code::FENCED_LEADER_EPOCH);
    }
    if p.partition_epoch != current.partition_epoch {
        return Err(error_code::INVALID_UPDATE_VERSION);
    }
    let isr: Vec<BrokerId> = p
        .new_isr_with_epochs
        .iter()
        .map(|b| b.broker_id.0)
        .collect();
    if !isr.contains(&broker) || isr.iter().any(|b| !current.replicas.contains(b)) {
        return Err(error_code::INVALID_UPDATE_VERSION);
    }
    if isr
        .iter()
        .any(|b| !current.isr.contains(b) && !image.is_unfenced(*b))
    {
        return Err(error_code::INELIGIBLE_REPLICA);
    }
    let mut next = current.clone();
    next.isr = isr;
    next.partition_epoch += 1;
    Ok(next)
}

pub async fn handle_alter_partition(
    shared: &Arc<Shared>,
    request: AlterPartitionRequest,
) -> AlterPartitionResponse {
    let mut response = AlterPartitionResponse::default();
    let broker = request.broker_id.0;
    let mut waits = Vec::new();
    let mut decisions = Vec::new();
    let appended_in = shared.lock().quorum.epoch;
    {
        let mut guard = shared.lock();
        let s = &mut *guard;
        if active(shared, s).is_none() || !quiet(s) {
            response.error_code = error_code::NOT_CONTROLLER;
            return response;
        }
        for topic in &request.topics {
            let name = s
                .image
                .topics
                .keys()
                .find(|n| topic_id(n) == topic.topic_id)
                .cloned();
            let mut t = alter_partition_response::TopicData::default();
            t.topic_id = topic.topic_id;
            for p in &topic.partitions {
                let mut r = alter_partition_response::PartitionData::default();
                r.partition_index = p.partition_index;
                let decided = name
                    .as_deref()
                    .ok_or(error_code::UNKNOWN_TOPIC_OR_PARTITION)
                    .and_then(|n| decide_alter(&s.image, broker, n, p));
                trace!(
                    broker,
                    partition = p.partition_index,
                    epoch = p.leader_epoch,
                    partition_epoch = p.partition_epoch,
                    outcome = ?decided.as_ref().map(|n| &n.isr),
                    "AlterPartition decided"
                );
                match decided {
                    Ok(next) => {
                        r.leader_id = WireBrokerId(next.leader);
                        r.leader_epoch = next.leader_epoch;
                        r.isr = next.isr.iter().map(|b| WireBrokerId(*b)).collect();
                        r.partition_epoch = next.partition_epoch;
                        decisions.push(MetadataRecord::Partition(next));
                    }
                    Err(code) => r.error_code = code,
                }
                t.partitions.push(r);
            }
            response.topics.push(t);
        }
        // The request's decisions touch one partition each: written as one batch, they commit
        // together, and the controller stays quiet between requests rather than between
        // partitions.
        if !decisions.is_empty() {
            match propose(shared, s, &decisions, Vec::new()) {
                Some(offset) => waits.push(offset),
                // Not written: no leader may take up these ISRs.
                None => response.error_code = error_code::REQUEST_TIMED_OUT,
            }
        }
    }
    // Answer only once the change has committed, so the leader never acts on an ISR that a new
    // controller might not know.
    // Committed means: the high watermark passed the record, and the record at that offset is
    // still ours, of the epoch we wrote it in, not another leader's that took its place.
    let mut deadline = crate::deadline::Deadline::after(shared.request_timeout());
    let mut rx = shared.subscribe();
    while let Some(&offset) = waits.iter().max() {
        {
            let s = shared.lock();
            if s.quorum.high_watermark > offset {
                let batches = s.metadata_log.batches();
                let at = batches.partition_point(|b| b.last_offset < offset);
                if batches
                    .get(at)
                    .is_none_or(|b| b.leader_epoch != appended_in)
                {
                    response.error_code = error_code::REQUEST_TIMED_OUT;
                }
                break;
            }
        }
        if deadline.passed() || deadline.run(rx.changed()).await.is_err() {
            response.error_code = error_code::REQUEST_TIMED_OUT;
            break;
        }
    }
    response
}

/// The broker's heartbeat to the active controller, which keeps its session alive.
pub async fn heartbeat_loop(shared: Arc<Shared>) {
    let interval = Duration::from_millis(shared.config.broker_heartbeat_interval_ms);
    let mut connection = None;
    loop {
        madsim::time::sleep(interval).await;
        send_heartbeat(&shared, &mut connection, false).await;
    }
}

/// One heartbeat to the active controller over a cached connection; `None` if it got no answer.
pub async fn send_heartbeat(
    shared: &Arc<Shared>,
    connection: &mut Option<(BrokerId, Connection)>,
    want_shut_down: bool,
) -> Option<BrokerHeartbeatResponse> {
    let (controller, request) = {
        let s = shared.lock();
        let controller = s.quorum.leader()?;
        let mut r = BrokerHeartbeatRequest::default();
        r.broker_id = WireBrokerId(shared.id());
        r.broker_epoch = s.incarnation as i64;
        r.current_metadata_offset = s.image.next_offset;
        r.want_shut_down = want_shut_down;
        (controller, r)
    };
    if connection.as_ref().is_none_or(|(c, _)| *c != controller) {
        let address = shared.config.address(controller)?;
        let client_id = format!("broker-{}", shared.id());
        let c = Connection::connect(address, &client_id, shared.request_timeout())
            .await
            .ok()?;
        *connection = Some((controller, c));
    }
    let (_, conn) = connection.as_mut().expect("connected above");
    match conn
        .call(&request, HEARTBEAT_VERSION, shared.request_timeout())
        .await
    {
        Ok(response) => Some(response),
        Err(_) => {
            *connection = None;
            None
        }
    }
}

/// One partition's ISR change, as its leader proposes it.
#[derive(Clone, Debug)]
pub struct IsrProposal {
    pub tp: TopicPartition,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    pub isr: Vec<BrokerId>,
}

/// The leader's ISR change requests, all of one tick in one AlterPartition request as Kafka's
/// AlterPartitionManager batches them; on success a leader adopts the new ISR at once. Only a
/// success or a definite refusal settles a proposal; after any other outcome it stays pending.
pub async fn alter_partitions(shared: Arc<Shared>, proposals: Vec<IsrProposal>) {
    let mut answers = send_alter_partitions(&shared, &proposals).await;
    let mut s = shared.lock();
    for proposal in proposals {
        let answer = answers.as_mut().and_then(|a| a.remove(&proposal.tp));
        take_alter_answer(&shared, &mut s, proposal, answer);
    }
    drop(s);
    shared.notify();
}

/// Takes one partition's AlterPartition answer (`None`: no answer) into its leader's state.
fn take_alter_answer(
    shared: &Arc<Shared>,
    s: &mut State,
    proposal: IsrProposal,
    outcome: Option<alter_partition_response::PartitionData>,
) {
    let IsrProposal {
        tp,
        leader_epoch,
        partition_epoch,
        isr,
    } = proposal;
    let Some(p) = s.partitions.get_mut(&tp) else {
        return;
    };
    let Role::Leader(l) = &mut p.role else { return };
    if p.leader_epoch != leader_epoch {
        return;
    }
    l.alter_in_flight = false;
    if l.pending_isr.as_ref() != Some(&isr) {
        return;
    }
    debug!(
        partition = %tp,
        epoch = leader_epoch,
        partition_epoch,
        proposed = ?isr,
        error_code = outcome.as_ref().map(|r| r.error_code),
        outcome = alter_outcome(outcome.as_ref(), leader_epoch, l.partition_epoch),
        "AlterPartition answered"
    );
    match &outcome {
        None => crate::mark!(AlterPartitionUnanswered),
        Some(r) if r.error_code != error_code::NONE => crate::mark!(AlterPartitionRefused),
        Some(_) => {}
    }
    let Some(r) = outcome else { return };
    if r.error_code == error_code::INELIGIBLE_REPLICA {
        l.pending_isr = None;
    }
    if r.error_code == error_code::NONE
        && r.leader_epoch == leader_epoch
        && r.partition_epoch > l.partition_epoch
    {
        if r.isr.len() < l.isr.len() {
            crate::mark!(IsrShrinks);
        } else {
            crate::mark!(IsrExpands);
        }
        l.pending_isr = None;
        l.isr = r.isr.iter().map(|b| b.0).collect();
        l.partition_epoch = r.partition_epoch;
        debug!(
            partition = %tp,
            epoch = leader_epoch,
            partition_epoch = r.partition_epoch,
            isr = ?l.isr,
            "leader takes up the ISR the controller committed"
        );
        let isr = l.isr.clone();
        shared.emit(Event::IsrChanged {
            partition: tp,
            leader_epoch,
            partition_epoch: r.partition_epoch,
            isr,
        });
    }
}

/// What an AlterPartition answer does to the proposal, in words for the log.
fn alter_outcome(
    answer: Option<&alter_partition_response::PartitionData>,
    leader_epoch: i32,
    partition_epoch: i32,
) -> &'static str {
    match answer {
        None => "no answer: stays pending, sent again",
        Some(r) if r.error_code == error_code::INELIGIBLE_REPLICA => "refused: proposal dropped",
        Some(r)
            if r.error_code == error_code::NONE
                && r.leader_epoch == leader_epoch
                && r.partition_epoch > partition_epoch =>
        {
            "committed"
        }
        Some(_) => "refused: stays pending until newer metadata settles it",
    }
}

/// The answers by (topic, partition), or `None` when the request got no answer as a whole.
type AlterAnswers = BTreeMap<TopicPartition, alter_partition_response::PartitionData>;

async fn send_alter_partitions(
    shared: &Arc<Shared>,
    proposals: &[IsrProposal],
) -> Option<AlterAnswers> {
    let controller = shared.lock().quorum.leader()?;
    let address = shared.config.address(controller)?;
    let mut topics: BTreeMap<&str, alter_partition_request::TopicData> = BTreeMap::new();
    for proposal in proposals {
        let mut p = alter_partition_request::PartitionData::default();
        p.partition_index = proposal.tp.partition;
        p.leader_epoch = proposal.leader_epoch;
        p.partition_epoch = proposal.partition_epoch;
        p.new_isr_with_epochs = (proposal.isr.iter())
            .map(|b| {
                let mut s = alter_partition_request::BrokerState::default();
                s.broker_id = WireBrokerId(*b);
                s
            })
            .collect();
        let t = topics.entry(&proposal.tp.topic).or_insert_with(|| {
            let mut t = alter_partition_request::TopicData::default();
            t.topic_id = topic_id(&proposal.tp.topic);
            t
        });
        t.partitions.push(p);
    }
    let names: BTreeMap<_, _> = (proposals.iter())
        .map(|p| (topic_id(&p.tp.topic), p.tp.topic.clone()))
        .collect();
    let mut request = AlterPartitionRequest::default();
    request.broker_id = WireBrokerId(shared.id());
    request.broker_epoch = shared.lock().incarnation as i64;
    request.topics = topics.into_values().collect();
    let timeout = shared.request_timeout();
    let client_id = format!("broker-{}", shared.id());
    let version = ALTER_PARTITION_VERSION;
    let response =
        crate::wire::call_once(address, &client_id, &request, version, timeout, timeout * 2)
            .await
            .ok()?;
    // A request-level error (the change did not commit in time) leaves the outcome unknown,
    // whatever the partition-level answers say.
    if response.error_code != error_code::NONE {
        return None;
    }
    let mut answers = AlterAnswers::new();
    for t in response.topics {
        let Some(name) = names.get(&t.topic_id) else {
            continue;
        };
        for p in t.partitions {
            let tp = TopicPartition {
                topic: name.clone(),
                partition: p.partition_index,
            };
            answers.insert(tp, p);
        }
    }
    Some(answers)
}
