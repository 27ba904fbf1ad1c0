//! Scenario files: the cluster's shape, the workload, the run's length, and the faults, in TOML.
//! A file is refused before any run starts if it does not parse, names an unknown key, or holds a
//! value out of range; the error names the file, line and column, and what was expected.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::SeedableRng;
use serde::{Deserialize, Serialize};

mod dur;
mod fault_kind;
mod fault_profile;
mod knobs;
pub mod seeds;
mod target;
pub mod timeline;
mod validate;

pub use dur::{parse_duration, parse_offset, Dur};
pub use fault_kind::FaultKind;
pub use fault_profile::FaultProfile;
pub use knobs::{KnobMode, Knobs};
pub use target::{Shape, Target, SHAPE_FORMS, TARGET_FORMS};
pub use timeline::{Fault, Scheduled};
use validate::Problem;

/// `[cluster]`: the brokers and the rules they run by.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    /// How many brokers, numbered from 1; 1 to 64, default 3.
    #[serde(default = "defaults::brokers")]
    pub brokers: i32,
    /// How many of the brokers (the first ones) also vote in the controller quorum; when absent,
    /// every broker up to three.
    #[serde(default)]
    pub controller_voters: Option<i32>,
    /// Kafka's `min.insync.replicas`: an acks=all write is refused while the ISR is smaller; 1 to
    /// every topic's replication factor, default 2.
    #[serde(default = "defaults::min_insync_replicas")]
    pub min_insync_replicas: i32,
    /// Kafka's `unclean.leader.election.enable`: a replica outside the ISR may become leader, and
    /// acknowledged writes may be lost. Default false.
    #[serde(default)]
    pub unclean_leader_election: bool,
    /// How long each fsync takes on every broker's disk.
    #[serde(default = "defaults::fsync_latency")]
    pub fsync_latency: Dur,
    /// Kafka's `max.incremental.fetch.session.cache.slots`: the fetch sessions each broker keeps
    /// (default 1000). A new session beyond them evicts the one used least recently, whose
    /// fetcher is refused and starts over with a full fetch; 0 keeps none, and every fetch is
    /// full.
    #[serde(default = "defaults::fetch_session_slots")]
    pub fetch_session_slots: u32,
    /// Kafka's `replica.lag.time.max.ms`: a follower that has not caught up for this long leaves
    /// the ISR; default `3s` (Kafka's 30 s, scaled to a simulated minute).
    #[serde(default = "defaults::replica_lag_time_max")]
    pub replica_lag_time_max: Dur,
    /// Kafka's `broker.session.timeout.ms`: a broker silent this long is fenced; default `3s`
    /// (heartbeats go every 500 ms).
    #[serde(default = "defaults::broker_session_timeout")]
    pub broker_session_timeout: Dur,
    /// Kafka's `request.timeout.ms` on brokers' requests to one another; default `2s`.
    #[serde(default = "defaults::request_timeout")]
    pub request_timeout: Dur,
    /// Kafka's `replica.fetch.wait.max.ms`: how long a leader holds a follower's fetch that has
    /// nothing new; default `500ms`, below half of `replica_lag_time_max`.
    #[serde(default = "defaults::fetch_max_wait")]
    pub fetch_max_wait: Dur,
    /// Kafka's `replica.fetch.max.bytes`: record bytes a follower asks for per partition (a
    /// first batch larger still comes whole); default 1 MiB.
    #[serde(default = "defaults::replica_fetch_max_bytes")]
    pub replica_fetch_max_bytes: u32,
    /// Kafka's `log.segment.bytes`: where a log rolls to a new segment file; default 256 KiB.
    #[serde(default = "defaults::segment_bytes")]
    pub segment_bytes: u32,
    /// Kafka's `transaction.version`: 1 ends transactions without bumping the producer's epoch,
    /// 2 (the default) bumps it with every end (KIP-890 part 2). Both verify a transactional
    /// produce with the coordinator (part 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transaction_version: Option<i16>,
}

impl Cluster {
    /// How many brokers vote in the controller quorum: `controller_voters`, or `min(brokers, 3)`.
    pub fn voters(&self) -> i32 {
        self.controller_voters.unwrap_or(self.brokers.min(3))
    }
}

/// A `[[topics]]` table: a topic created before the load starts.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Topic {
    /// Letters, digits, `.`, `_` or `-`, not starting with `__`; unique among the topics.
    pub name: String,
    /// How many partitions; 1 to 1000, default 3.
    #[serde(default = "defaults::partitions")]
    pub partitions: i32,
    /// Replicas of each partition; 1 to the number of brokers, default 3.
    #[serde(default = "defaults::replication_factor")]
    pub replication_factor: i32,
    /// Replicas of each partition, preferred leader first (`[[2, 3, 4]]`); round-robin when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<Vec<i32>>,
}

/// The producers' `acks`, as files write it: `"0"`, `"1"` or `"all"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
pub enum Acks {
    /// `"0"`: the broker sends no answer; the write may be lost by design.
    #[serde(rename = "0")]
    None,
    /// `"1"`: the leader answers once it has appended; a failover may lose the write (counted,
    /// not failed).
    #[serde(rename = "1")]
    Leader,
    /// `"all"`: the leader answers once the whole ISR has the write; it must never be lost.
    #[serde(rename = "all")]
    All,
}

impl Acks {
    /// The `acks` field of a Produce request: 0, 1, or -1 for all.
    pub fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// `[workload]`: the clients that write and read the workload's topic during the run.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Producers writing to the topic; default 2, at most 1000.
    #[serde(default = "defaults::producers")]
    pub producers: u32,
    /// Lone consumers, each reading every partition from the earliest offset; default 1, at most
    /// 1000. Producers and consumers cannot both be 0.
    #[serde(default = "defaults::consumers")]
    pub consumers: u32,
    /// What each send waits for; default `"all"`.
    #[serde(default = "defaults::acks")]
    pub acks: Acks,
    /// Each producer waits a time drawn from this range between sends.
    #[serde(default = "defaults::send_interval")]
    pub send_interval: [Dur; 2],
    /// How long a consumer or group member sleeps after polling every partition it reads; more
    /// than zero, default `50ms`.
    #[serde(default = "defaults::poll_interval")]
    pub poll_interval: Dur,
    /// The topic the workload uses; the first topic when absent.
    #[serde(default)]
    pub topic: Option<String>,
    /// Distinct record keys (`user-0`, `user-1`, ...) the producers draw from; a key's partition is
    /// Kafka's partitioner's choice. 0 (the default) sends unkeyed records to random partitions.
    #[serde(default)]
    pub keys: u32,
    /// Consumers restart after a time drawn from this range, resuming from their last commit.
    #[serde(default)]
    pub consumer_restarts: Option<[Dur; 2]>,
    /// How often a restarting consumer commits its positions.
    #[serde(default = "defaults::commit_interval")]
    pub commit_interval: Dur,
    /// Consumer groups reading the topic, each independently of the others.
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    /// The producers' `enable.idempotence`: each gets a producer id and stamps its batches with
    /// sequence numbers, so a retry is never written twice. Needs acks = "all". When absent, on
    /// with acks = "all" and off otherwise, as Kafka 3.2 and later decide when it is not set.
    #[serde(default)]
    pub idempotence: Option<bool>,
    /// The producers' `linger.ms`: how long a batch waits for more records before it goes;
    /// default `0ms` (Kafka 3.0's).
    #[serde(default = "defaults::linger")]
    pub linger: Dur,
    /// The producers' `batch.size` in bytes: a batch goes once it holds this much; 1 to 1048576,
    /// default 16384.
    #[serde(default = "defaults::batch_size")]
    pub batch_size: u32,
    /// The producers' `max.in.flight.requests.per.connection`: requests sent to a broker and not
    /// yet answered; 1 to 5 with idempotence, 1 to 100 without; default 5.
    #[serde(default = "defaults::max_in_flight")]
    pub max_in_flight: u32,
    /// The producers' `retries`: how many times a failed batch is sent again; at least 1 with
    /// idempotence; default 2147483647 (Kafka's, so that `delivery_timeout` decides).
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    /// The producers' `delivery.timeout.ms`: a record not acknowledged this long after it was
    /// handed to its producer fails; longer than `linger`, default `120s`.
    #[serde(default = "defaults::delivery_timeout")]
    pub delivery_timeout: Dur,
    /// The consumers' `isolation.level`: `"read_uncommitted"` (the default) reads up to the high
    /// watermark, `"read_committed"` only what committed transactions wrote, up to the last
    /// stable offset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<Isolation>,
    /// Transactional producers, writing to the workload's topic beside the others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<TransactionsSpec>,
    /// A consume-transform-produce pipeline reading the workload's topic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<PipelineSpec>,
}

/// `[workload.pipeline]`: workers that read the workload's topic as members of one consumer group
/// (read_committed), and for each batch of records read write one output record each to the
/// output topic and commit the consumed offsets, all in one transaction (Kafka's exactly-once
/// read-process-write loop, with KIP-447's group fencing). Each worker is a transactional
/// producer of its own (`pipeline-0`, ...). Read_committed readers read the output topic.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// The topic outputs go to: a listed topic other than the workload's. Input partition `p`
    /// goes to output partition `p` modulo the output's partitions.
    pub output: String,
    /// Workers; 1 to 100, default 2.
    #[serde(default = "defaults::txn_producers")]
    pub workers: u32,
    /// The workers' consumer group; default `pipeline`.
    #[serde(default = "defaults::pipeline_group")]
    pub group: String,
    /// At most this many records of each input partition read (and written) per transaction; 1
    /// to 1000, default 10.
    #[serde(default = "defaults::pipeline_records")]
    pub max_records: u32,
    /// The share of transactions a worker aborts by choice, 0 to 1; default 0.2.
    #[serde(default = "defaults::abort_rate")]
    pub abort_rate: f64,
    /// `transaction.timeout.ms`; default `10s`.
    #[serde(default = "defaults::txn_timeout")]
    pub timeout: Dur,
    /// The group's session timeout; at least `100ms`, default `3s`.
    #[serde(default = "defaults::session_timeout")]
    pub session_timeout: Dur,
    /// Read_committed consumers of the output topic, each reading every partition; 1 to 100,
    /// default 1.
    #[serde(default = "defaults::pipeline_readers")]
    pub readers: u32,
}

/// The consumers' `isolation.level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Isolation {
    /// Up to the high watermark, whatever transactions it belongs to.
    ReadUncommitted,
    /// Only what committed transactions wrote, up to the last stable offset.
    ReadCommitted,
}

/// `[workload.transactions]`: producers that write in transactions, each with a transactional
/// id of its own (`txn-0`, ...).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TransactionsSpec {
    /// Transactional producers; 1 to 100, default 2.
    #[serde(default = "defaults::txn_producers")]
    pub producers: u32,
    /// Sends per transaction, drawn from this range; 1 to 100, default `[1, 4]`.
    #[serde(default = "defaults::txn_sends")]
    pub sends: [u32; 2],
    /// The share of transactions the producer aborts by choice, 0 to 1; default 0.2.
    #[serde(default = "defaults::abort_rate")]
    pub abort_rate: f64,
    /// `transaction.timeout.ms`: the coordinator aborts a transaction open longer; default `10s`.
    #[serde(default = "defaults::txn_timeout")]
    pub timeout: Dur,
    /// A producer crashes after a time drawn from this range and a new one with its
    /// transactional id starts, while the old one goes on as a zombie for a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<[Dur; 2]>,
    /// How long a restarted producer's old incarnation goes on, drawn from this range; default
    /// `["500ms", "3s"]`.
    #[serde(default = "defaults::zombie")]
    pub zombie: [Dur; 2],
}

impl Workload {
    /// Whether the producers are idempotent: `idempotence`, or by default whether acks is all.
    pub fn idempotent(&self) -> bool {
        self.idempotence.unwrap_or(self.acks == Acks::All)
    }

    /// Whether the producers are the one-shot client: `retries = 0`, `idempotence = false`,
    /// `max_in_flight = 1`, `linger = "0ms"`. Each send is then one Produce request, awaited
    /// before the next, tried once; scenarios that show a durability rule with one write at a
    /// time keep it.
    pub fn one_shot(&self) -> bool {
        self.retries == 0 && !self.idempotent() && self.max_in_flight == 1 && self.linger.0.is_zero()
    }

    /// Selects the one-shot client: the four settings [`Workload::one_shot`] names.
    pub fn set_one_shot(&mut self) {
        self.retries = 0;
        self.idempotence = Some(false);
        self.max_in_flight = 1;
        self.linger = Dur(Duration::ZERO);
    }
}

/// A consumer group: its members share the topic's partitions, as the leader assigns them.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The group's id; unique among the groups.
    pub name: String,
    /// Members of the group; 1 to 100.
    pub consumers: u32,
    /// `range` or `roundrobin`.
    #[serde(default = "defaults::assignment")]
    pub assignment: String,
    /// How long the coordinator waits for a member's heartbeat before it drops the member and
    /// rebalances; at least `100ms`, default `3s`.
    #[serde(default = "defaults::session_timeout")]
    pub session_timeout: Dur,
    /// How often each member commits its positions; more than zero, default `1s`.
    #[serde(default = "defaults::commit_interval")]
    pub commit_interval: Dur,
    /// A member crashes (and a new one starts) after a time drawn from this range.
    #[serde(default)]
    pub restarts: Option<[Dur; 2]>,
    /// A member stalls (no heartbeats for two session timeouts, then it goes on as it was) after
    /// a time drawn from this range.
    #[serde(default)]
    pub stalls: Option<[Dur; 2]>,
}

/// `[run]`: how long each phase of a run lasts, in simulated time.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// The load phase: producers, consumers and faults run this long; more than zero and at most
    /// `24h`, default `60s`.
    #[serde(default = "defaults::duration")]
    pub duration: Dur,
    /// After faults stop and everything heals, how long the cluster gets to converge.
    #[serde(default = "defaults::quiet_period")]
    pub quiet_period: Dur,
}

/// `[faults]`: what faults the load phase injects; by default none.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Draw a fault profile from each seed (swarm testing) instead of `profile`.
    #[serde(default)]
    pub swarm: bool,
    /// Probabilities per 100 ms step, see [`FaultProfile`].
    #[serde(default)]
    pub profile: Option<FaultProfile>,
    /// Faults at set times, see [`timeline`].
    #[serde(default)]
    pub timeline: Vec<Scheduled>,
}

/// A whole scenario file; every table is optional.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// What the scenario exercises, in a line (`logsim explain` prints it).
    #[serde(default)]
    pub description: String,
    /// `[cluster]`.
    #[serde(default = "defaults::cluster")]
    pub cluster: Cluster,
    /// `[[topics]]`, at least one; when absent, `events` with the default partitions and
    /// replication factor.
    #[serde(default = "defaults::topics")]
    pub topics: Vec<Topic>,
    /// `[workload]`.
    #[serde(default = "defaults::workload")]
    pub workload: Workload,
    /// `[run]`.
    #[serde(default = "defaults::run")]
    pub run: Run,
    /// `[faults]`; none when absent.
    #[serde(default)]
    pub faults: Faults,
    /// Wrong rules to switch on in the brokers (see `model::bugs`); none for the correct system.
    #[serde(default)]
    pub bugs: Vec<model::bugs::Switch>,
    /// A second cluster of the same shape (brokers 101, 102, ...), and MirrorMaker copying the
    /// workload's topic to it.
    #[serde(default)]
    pub mirror: Option<Mirror>,
    /// Turns the system's fault points on (`model::fault_point`, FoundationDB's BUGGIFY): a
    /// reply held back or lost after its request took effect, a fetch answered short, a slow
    /// sync, each where the code decides it, drawn from the seed. Default false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub buggify: bool,
    /// Fault points active in every run, by name (`delay-txn-request`): a scenario that shows
    /// what one does asks for it rather than leave it to the seed. Without `buggify`, the points
    /// not named stay off.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fault_points: Vec<String>,
    /// `"swarm"`: each seed draws the timing settings (see [`Knobs`]) over the file's; default
    /// `"scenario"`, the file's settings.
    #[serde(default, skip_serializing_if = "is_scenario_knobs")]
    pub knobs: KnobMode,
    /// Coverage marks (`logsim marks` lists them) that a swarm of this scenario must reach at
    /// least once, as Antithesis's `sometimes` assertions: a swarm in which no seed reaches one
    /// fails as vacuous, so a scenario cannot pass by never getting where it means to test.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sometimes: Vec<model::coverage::Mark>,
}

fn is_scenario_knobs(mode: &KnobMode) -> bool {
    *mode == KnobMode::Scenario
}

/// The first broker id of the mirror's target cluster; source brokers are numbered from 1.
pub const TARGET_FIRST_ID: model::BrokerId = 101;

/// Which cluster a broker belongs to: 0, the scenario's own; 1, the mirror's target.
pub fn cluster_of(id: model::BrokerId) -> u8 {
    u8::from(id >= TARGET_FIRST_ID)
}

/// MirrorMaker between the scenario's cluster and a second one.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    /// Records read from the source at most before they are written to the target.
    #[serde(default = "defaults::queue")]
    pub queue: u32,
    /// How often MirrorMaker commits its progress and translates the groups' offsets.
    #[serde(default = "defaults::commit_interval")]
    pub checkpoint_interval: Dur,
    /// MirrorMaker crashes and starts again after a time drawn from this range.
    #[serde(default)]
    pub restarts: Option<[Dur; 2]>,
    /// The WAN link fails (MirrorMaker loses the source cluster, both ways) after a time drawn
    /// from this range, for a time drawn from `wan_outage`; until the quiet period.
    #[serde(default)]
    pub wan_partitions: Option<[Dur; 2]>,
    /// How long each WAN failure lasts: a time drawn from this range; default `["1s", "5s"]`.
    #[serde(default = "defaults::wan_outage")]
    pub wan_outage: [Dur; 2],
}

mod defaults {
    use super::*;
    pub fn txn_producers() -> u32 {
        2
    }
    pub fn txn_sends() -> [u32; 2] {
        [1, 4]
    }
    pub fn abort_rate() -> f64 {
        0.2
    }
    pub fn txn_timeout() -> Dur {
        Dur(Duration::from_secs(10))
    }
    pub fn pipeline_group() -> String {
        "pipeline".to_owned()
    }
    pub fn pipeline_records() -> u32 {
        10
    }
    pub fn pipeline_readers() -> u32 {
        1
    }
    pub fn zombie() -> [Dur; 2] {
        [Dur(Duration::from_millis(500)), Dur(Duration::from_secs(3))]
    }
    pub fn brokers() -> i32 {
        3
    }
    pub fn min_insync_replicas() -> i32 {
        2
    }
    pub fn fetch_session_slots() -> u32 {
        1000
    }
    pub fn fsync_latency() -> Dur {
        Dur(Duration::from_millis(2))
    }
    pub fn replica_lag_time_max() -> Dur {
        Dur(Duration::from_secs(3))
    }
    pub fn broker_session_timeout() -> Dur {
        Dur(Duration::from_secs(3))
    }
    pub fn request_timeout() -> Dur {
        Dur(Duration::from_secs(2))
    }
    pub fn fetch_max_wait() -> Dur {
        Dur(Duration::from_millis(500))
    }
    pub fn replica_fetch_max_bytes() -> u32 {
        1 << 20
    }
    pub fn segment_bytes() -> u32 {
        256 << 10
    }
    pub fn partitions() -> i32 {
        3
    }
    pub fn replication_factor() -> i32 {
        3
    }
    pub fn producers() -> u32 {
        2
    }
    pub fn consumers() -> u32 {
        1
    }
    pub fn acks() -> Acks {
        Acks::All
    }
    pub fn wan_outage() -> [Dur; 2] {
        [
            Dur(Duration::from_secs(1)),
            Dur(Duration::from_secs(5)),
        ]
    }
    pub fn queue() -> u32 {
        100
    }
    pub fn assignment() -> String {
        "range".into()
    }
    pub fn session_timeout() -> Dur {
        Dur(Duration::from_secs(3))
    }
    pub fn commit_interval() -> Dur {
        Dur(Duration::from_secs(1))
    }
    pub fn send_interval() -> [Dur; 2] {
        [
            Dur(Duration::from_millis(5)),
            Dur(Duration::from_millis(25)),
        ]
    }
    pub fn linger() -> Dur {
        Dur(Duration::ZERO)
    }
    pub fn batch_size() -> u32 {
        16_384
    }
    pub fn max_in_flight() -> u32 {
        5
    }
    pub fn retries() -> u32 {
        i32::MAX as u32
    }
    pub fn delivery_timeout() -> Dur {
        Dur(Duration::from_secs(120))
    }
    pub fn poll_interval() -> Dur {
        Dur(Duration::from_millis(50))
    }
    pub fn duration() -> Dur {
        Dur(Duration::from_secs(60))
    }
    pub fn quiet_period() -> Dur {
        Dur(Duration::from_secs(20))
    }
    pub fn cluster() -> Cluster {
        Cluster {
            brokers: brokers(),
            controller_voters: None,
            min_insync_replicas: min_insync_replicas(),
            unclean_leader_election: false,
            fsync_latency: fsync_latency(),
            fetch_session_slots: fetch_session_slots(),
            replica_lag_time_max: replica_lag_time_max(),
            broker_session_timeout: broker_session_timeout(),
            request_timeout: request_timeout(),
            fetch_max_wait: fetch_max_wait(),
            replica_fetch_max_bytes: replica_fetch_max_bytes(),
            segment_bytes: segment_bytes(),
            transaction_version: None,
        }
    }
    pub fn topics() -> Vec<Topic> {
        vec![Topic {
            name: "events".into(),
            partitions: partitions(),
            replication_factor: replication_factor(),
            replicas: Vec::new(),
        }]
    }
    pub fn workload() -> Workload {
        Workload {
            producers: producers(),
            consumers: consumers(),
            acks: acks(),
            send_interval: send_interval(),
            poll_interval: poll_interval(),
            topic: None,
            keys: 0,
            consumer_restarts: None,
            commit_interval: commit_interval(),
            groups: Vec::new(),
            idempotence: None,
            linger: linger(),
            batch_size: batch_size(),
            max_in_flight: max_in_flight(),
            retries: retries(),
            delivery_timeout: delivery_timeout(),
            isolation: None,
            transactions: None,
            pipeline: None,
        }
    }
    pub fn run() -> Run {
        Run {
            duration: duration(),
            quiet_period: quiet_period(),
        }
    }
}

/// A scenario that cannot run, and where it says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The scenario file.
    pub file: PathBuf,
    /// The line, from 1; 0 when the error has no place in the file (it cannot be read).
    pub line: usize,
    /// The column, from 1; 0 when the line is.
    pub column: usize,
    /// What is wrong, and what was expected.
    pub message: String,
}

impl std::fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file.display(), self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file.display(),
                self.line,
                self.column,
                self.message
            )
        }
    }
}

impl std::error::Error for ScenarioError {}

fn line_column(text: &str, byte: usize) -> (usize, usize) {
    let before = &text[..byte.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, column)
}

/// Where `key = ...` is set inside the `nth` (from 0) `[table]` or `[[table]]`, for errors found
/// after parsing; where the table starts when the key is not set there (a key it lacks).
fn locate_nth(text: &str, table: &str, nth: usize, key: &str) -> (usize, usize) {
    let mut in_table = table.is_empty();
    let mut seen = 0;
    let mut header = (0, 0);
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            if in_table && header != (0, 0) {
                break;
            }
            let name = trimmed.trim_matches(|c| c == '[' || c == ']').trim();
            in_table = name == table && seen == nth;
            if in_table {
                header = (i + 1, line.len() - line.trim_start().len() + 1);
            }
            if name == table {
                seen += 1;
            }
            continue;
        }
        if in_table && trimmed.split('=').next().is_some_and(|k| k.trim() == key) {
            return (i + 1, line.len() - line.trim_start().len() + 1);
        }
    }
    header
}

impl Default for Scenario {
    /// The shipped default scenario (`scenarios/default.toml`): three brokers that are also the
    /// controller quorum, topic `events` (three partitions, three replicas, min.insync.replicas 2),
    /// four acks=all producers and a consumer for a simulated minute, brokers crashing.
    fn default() -> Scenario {
        Scenario::builtin_default()
    }
}

impl Scenario {
    /// Reads and checks the scenario file at `path`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|e| ScenarioError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            message: format!("cannot read scenario file: {e}"),
        })?;
        Scenario::parse(path, &text)
    }

    /// Parses and checks `text`, the contents of a scenario file; `path` only names it in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let error = |(line, column), message| ScenarioError {
            file: path.to_owned(),
            line,
            column,
            message,
        };
        let located = |p: Problem| error(locate_nth(text, p.table, p.nth, p.key), p.message);
        let scenario: Scenario = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().replace('\n', " ");
            // A timeline entry that makes no fault is named by its key, not its table.
            match timeline::first_bad_entry(text) {
                Some((nth, key, bad)) if bad == message => located(Problem::timeline(nth, key, bad)),
                _ => error(
                    e.span().map_or((0, 0), |s| line_column(text, s.start)),
                    message,
                ),
            }
        })?;
        scenario.first_problem().map_err(located)?;
        Ok(scenario)
    }

    /// Checks a scenario built or changed in Rust as a file's would be checked when loaded: every
    /// value in range, every fault aimed at brokers and partitions that exist.
    pub fn check(&self) -> Result<(), String> {
        self.first_problem().map_err(|p| p.message)
    }

    /// The default scenario, as shipped in `scenarios/default.toml`.
    pub fn builtin_default() -> Scenario {
        Scenario::parse(
            Path::new("scenarios/default.toml"),
            include_str!("../../../scenarios/default.toml"),
        )
        .expect("the shipped default scenario is valid")
    }

    /// Draws a profile per seed (`swarm`), or injects no faults at all (`none`), whatever the file
    /// says; `scenario` keeps the file's faults.
    pub fn with_faults(mut self, mode: &str) -> Result<Scenario, String> {
        match mode {
            "scenario" => {}
            "swarm" => {
                self.faults.swarm = true;
                self.faults.timeline.clear();
            }
            "none" => self.faults = Faults::default(),
            other => {
                return Err(format!(
                    "`{other}` is not a fault mode: expected scenario, swarm or none"
                ))
            }
        }
        Ok(self)
    }

    /// Draws the timing settings from each seed (`swarm`), or keeps the file's (`scenario`).
    pub fn with_knobs(mut self, mode: &str) -> Result<Scenario, String> {
        self.knobs = KnobMode::parse(mode)?;
        Ok(self)
    }

    /// This scenario as a run with `seed` plays it: with `knobs = "swarm"`, the seed's draw
    /// written into its settings (and the draw, to report); otherwise as it is.
    pub fn for_seed(&self, seed: u64) -> (Scenario, Option<Knobs>) {
        let mut scenario = self.clone();
        if self.knobs != KnobMode::Swarm {
            return (scenario, None);
        }
        let knobs = Knobs::draw(self, seed);
        knobs.apply(&mut scenario);
        scenario.knobs = KnobMode::Scenario;
        (scenario, Some(knobs))
    }

    /// The profile a run with `seed` injects faults from.
    pub fn fault_profile(&self, seed: u64) -> FaultProfile {
        if self.faults.swarm {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seeds::swarm(seed));
            FaultProfile::swarm(&mut rng)
        } else {
            self.faults.profile.clone().unwrap_or_default()
        }
    }

    /// The pipeline's output topic, when the scenario has a pipeline and the topic is listed.
    pub fn pipeline_output(&self) -> Option<&Topic> {
        let p = self.workload.pipeline.as_ref()?;
        self.topics.iter().find(|t| t.name == p.output)
    }

    /// The topic the workload writes and reads: `workload.topic`, or the first topic.
    pub fn workload_topic(&self) -> &Topic {
        let name = self.workload.topic.as_deref();
        self.topics
            .iter()
            .find(|t| Some(t.name.as_str()) == name)
            .unwrap_or(&self.topics[0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(Path::new("s.toml"), text)
    }

    #[test]
    fn the_shipped_default_parses() {
        let s = Scenario::builtin_default();
        assert_eq!(s.cluster.brokers, 3);
        assert!(s.faults.profile.is_some_and(|p| p.crash_probability > 0.0));
    }

    #[test]
    fn an_unknown_key_is_refused_with_its_line_and_column() {
        let e = parse("[cluster]\nbrokers = 3\nbrokerz = 4\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.message.contains("unknown field `brokerz`"), "{e}");
    }

    #[test]
    fn malformed_toml_is_refused_with_its_line() {
        let e = parse("[cluster\nbrokers = 3\n").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
    }

    #[test]
    fn a_value_out_of_range_is_refused_where_it_is_set() {
        let e =
            parse("[cluster]\nbrokers = 3\n\n[[topics]]\nname = \"t\"\nreplication_factor = 5\n")
                .unwrap_err();
        assert_eq!((e.line, e.column), (6, 1), "{e}");
        assert!(
            e.to_string()
                .starts_with("s.toml:6:1: replication_factor = 5"),
            "{e}"
        );
    }

    #[test]
    fn a_topic_listed_twice_is_refused_at_its_second_listing() {
        let twice = "[[topics]]\nname = \"t\"\n\n[[topics]]\npartitions = 2\nname = \"t\"\n";
        let e = parse(twice).unwrap_err();
        assert_eq!((e.line, e.column), (6, 1), "{e}");
        assert!(e.message.contains("topic `t` is listed twice"), "{e}");
        assert!(parse(&twice.replace("name = \"t\"\n\n", "name = \"u\"\n\n")).is_ok());
    }

    #[test]
    fn a_bad_value_in_a_later_topic_is_refused_at_that_topic() {
        let text = "[[topics]]\nname = \"a\"\npartitions = 2\n\n[[topics]]\nname = \"b\"\npartitions = 0\n";
        let e = parse(text).unwrap_err();
        assert_eq!((e.line, e.column), (7, 1), "{e}");
        assert!(e.message.starts_with("partitions = 0"), "{e}");
    }

    #[test]
    fn a_mirror_that_could_copy_nothing_is_refused() {
        let e = parse("[mirror]\ncheckpoint_interval = \"1s\"\nqueue = 0\n").unwrap_err();
        assert_eq!((e.line, e.column), (3, 1), "{e}");
        assert!(e.message.starts_with("queue = 0: expected 1 to 100000"), "{e}");
        let e = parse("[mirror]\nrestarts = [\"5s\", \"1s\"]\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "restarts: expected [min, max] with min <= max and max > 0"));
        assert!(parse("[mirror]\nqueue = 1\n").is_ok());
    }

    #[test]
    fn a_timeline_entry_lacking_a_key_it_needs_is_refused_at_its_table() {
        let text = "[[faults.timeline]]\nat = \"5s\"\nkind = \"crash\"\n\n  [[faults.timeline]]\nat = \"6s\"\nkind = \"packet-loss\"\n";
        let e = parse(text).unwrap_err();
        assert_eq!((e.line, e.column), (5, 3), "{e}");
        assert_eq!(e.message, "faults.timeline[1]: a PacketLoss fault needs `rate`");
    }

    #[test]
    fn producer_settings_default_to_kafka_3_and_only_the_exact_one_shot_settings_name_the_one_shot_client(
    ) {
        let w = parse("").unwrap().workload;
        assert!(w.idempotent() && !w.one_shot());
        assert_eq!((w.max_in_flight, w.retries, w.batch_size), (5, i32::MAX as u32, 16_384));
        assert_eq!((w.linger.0, w.delivery_timeout.0), (Duration::ZERO, Duration::from_secs(120)));
        assert!(!parse("[workload]\nacks = \"1\"\n").unwrap().workload.idempotent());
        let one_shot = "[workload]\nretries = 0\nidempotence = false\nmax_in_flight = 1\nlinger = \"0ms\"\n";
        assert!(parse(one_shot).unwrap().workload.one_shot());
        let lingering = one_shot.replace("\"0ms\"", "\"5ms\"");
        assert!(!parse(&lingering).unwrap().workload.one_shot());
    }

    #[test]
    fn producer_settings_kafka_refuses_are_refused_where_they_are_set() {
        let cases = [
            ("[workload]\nacks = \"1\"\nidempotence = true\n", 3, "idempotence = true: expected acks = \"all\""),
            ("[workload]\nmax_in_flight = 6\n", 2, "max_in_flight = 6: expected 1 to 5 with idempotence"),
            ("[workload]\nretries = 0\n", 2, "retries = 0: idempotence needs retries"),
            ("[workload]\nbatch_size = 0\n", 2, "batch_size = 0: expected 1 to 1048576"),
            ("[workload]\nlinger = \"5s\"\ndelivery_timeout = \"1s\"\n", 3, "delivery_timeout: expected longer than linger"),
        ];
        for (text, line, start) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{e}");
            assert!(e.message.starts_with(start), "{e}");
        }
        assert!(parse("[workload]\nidempotence = false\nmax_in_flight = 50\n").is_ok());
    }

    #[test]
    fn a_bad_duration_is_refused() {
        let e = parse("[run]\nduration = \"ten seconds\"\n").unwrap_err();
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.contains("not a duration"), "{e}");
        assert_eq!(parse_duration("12.5s"), Ok(Duration::from_millis(12_500)));
    }
}
