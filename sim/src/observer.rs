//! The run's observer: it receives every event the brokers emit and every fault the harness
//! injects, stamps each with simulated time, writes it to the trace (one JSON object per line) and
//! hashes it, counts what the run exercised, and runs the event-driven invariants as events arrive.

use std::sync::Arc;

use model::sync::Lock;

use madsim::time::Instant;
use model::env::{Event, EventSink};
use model::BrokerId;
use serde::Serialize;

use crate::checkers::committed_data::CommittedData;
use crate::checkers::invariant::{self, Heard, Invariant, Judgment, Step};
use crate::checkers::view::{ControllerView, NodeView};
use crate::record::history::AckedSend;
use crate::checkers::Violation;
use crate::record::journal::{HarnessEvent, Journal};
use crate::scenario::FaultKind;
use std::collections::BTreeMap;

/// What a run exercised; a green run that exercised nothing proves nothing.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Counters {
    /// Trace lines written: broker events, harness events and violations.
    pub events: u64,
    /// Messages madsim's network carried (each TCP flush or datagram is one).
    pub messages: u64,
    /// Partition leaderships taken up.
    pub elections: u64,
    /// Quorum leaderships won.
    pub quorum_elections: u64,
    /// Logs truncated.
    pub truncations: u64,
    /// Offsets removed by those truncations.
    pub truncated_offsets: i64,
    /// ISR changes committed.
    pub isr_changes: u64,
    /// Brokers fenced by a controller.
    pub fenced: u64,
    /// Brokers crashed or shut down.
    pub crashes: u64,
    /// Brokers restarted.
    pub restarts: u64,
    /// Faults injected, by kind.
    pub faults: std::collections::BTreeMap<&'static str, u64>,
    /// How often each invariant was evaluated.
    pub invariants: std::collections::BTreeMap<&'static str, u64>,
    /// How often the system under test reached each coverage mark it reached (see
    /// `model::coverage`), by the mark's name.
    pub marks: std::collections::BTreeMap<&'static str, u64>,
    /// When each of those marks was first reached, in simulated milliseconds since the start.
    pub marks_first_ms: std::collections::BTreeMap<&'static str, u64>,
    /// For each mark whose condition is weighed as a margin, the largest margin the run reached
    /// (positive: the mark was reached; see `model::coverage::near`).
    pub marks_nearest: std::collections::BTreeMap<&'static str, i64>,
}

/// The trace hash. FNV-1a's multiply per byte made hashing the trace, a byte at a time in one
/// chain of dependent multiplies, a fifth of the observer's cost; this takes eight bytes per
/// multiply. Each step is a bijection of the state for a given word (xor, multiply by an odd
/// constant, rotate), so a trace that differs from another in one word always hashes differently.
/// Every line ends with its length, so where lines part is part of the hash. Defined here in full,
/// it is the same on every platform and release, unlike std's hasher.
#[derive(Clone, Copy)]
struct TraceHash(u64);

impl TraceHash {
    fn new() -> Self {
        TraceHash(0xcbf29ce484222325)
    }

    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29);
    }

    fn line(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            self.mix(u64::from_le_bytes(word.try_into().expect("eight bytes")));
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let mut word = [0u8; 8];
            word[..tail.len()].copy_from_slice(tail);
            self.mix(u64::from_le_bytes(word));
        }
        self.mix(bytes.len() as u64);
    }
}

/// What watches a run: it writes and hashes the trace, counts what the run exercised, and judges
/// the invariants as events and steps come.
pub struct Observer {
    start: Instant,
    hash: TraceHash,
    /// The line being written: one buffer for every event, since most runs only hash them.
    line: Vec<u8>,
    lines: Option<Vec<String>>,
    /// Each replica's log end and high watermark every `SAMPLE_EVERY`, when the trace is kept:
    /// for plots, outside the trace and its hash.
    samples: Option<Vec<ReplicaSample>>,
    /// The `committed-data-identical` check, run in the step's own walk over every replica.
    pub committed: CommittedData,
    /// The per-step invariants, built-in and added, in the order each step judges them.
    invariants: Vec<Box<dyn Invariant>>,
    /// The highest high watermark each partition showed a consumer (the workload writes it).
    pub shown_high_watermarks: Arc<Lock<BTreeMap<String, i64>>>,
    /// Every violation so far, in the order found.
    pub violations: Vec<Violation>,
    /// What the run exercised so far.
    pub counters: Counters,
    partition_names: BTreeMap<model::TopicPartition, Arc<str>>,
    /// What changed since the last step, so that a step judges only those partitions.
    pub changes: crate::checkers::changes::StepChanges,
    /// Fires when a replica becomes leader, for a step at once (see `run::step_checks_until`).
    pub elections: model::signal::Signal<()>,
}

/// How often replicas are sampled for plots.
pub const SAMPLE_EVERY_MS: u64 = 250;

/// One replica's log at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaSample {
    /// When, in simulated milliseconds.
    pub t_ms: u64,
    /// The broker.
    pub node: BrokerId,
    /// The partition (`events-2`).
    pub partition: String,
    /// The offset after its last record.
    pub log_end_offset: i64,
    /// Its high watermark.
    pub high_watermark: i64,
}

impl Observer {
    /// `keep_lines`: hold the trace's lines for writing out; otherwise only hash them.
    pub fn new(keep_lines: bool) -> Self {
        let shown_high_watermarks: Arc<Lock<BTreeMap<String, i64>>> = Arc::default();
        Observer {
            start: Instant::now(),
            hash: TraceHash::new(),
            line: Vec::with_capacity(256),
            lines: keep_lines.then(Vec::new),
            samples: keep_lines.then(Vec::new),
            committed: CommittedData::default(),
            invariants: invariant::built_in(shown_high_watermarks.clone()),
            shown_high_watermarks,
            violations: Vec::new(),
            counters: Counters::default(),
            partition_names: BTreeMap::new(),
            changes: Default::default(),
            elections: Default::default(),
        }
    }

    /// Simulated milliseconds since the run started.
    pub fn now_ms(&self) -> u64 {
        (model::env::now() - self.start).as_millis() as u64
    }

    /// The hash of every trace line so far: equal hashes, equal runs.
    pub fn trace_hash(&self) -> u64 {
        self.hash.0
    }

    /// The trace's lines, when they were kept; empty otherwise.
    pub fn take_lines(&mut self) -> Vec<String> {
        self.lines.take().unwrap_or_default()
    }

    /// `tp` as reports name it (`events-2`), made once per partition: every step names every
    /// replica.
    pub fn partition_name(&mut self, tp: &model::TopicPartition) -> Arc<str> {
        crate::slot(&mut self.partition_names, tp, || tp.to_string().into()).clone()
    }

    /// Whether the step at `t_ms` should sample replicas.
    pub fn samples_at(&self, t_ms: u64) -> bool {
        self.samples.is_some() && t_ms % SAMPLE_EVERY_MS < 50
    }

    /// Keeps one replica sample, when the trace is kept.
    pub fn sample(&mut self, s: ReplicaSample) {
        if let Some(samples) = &mut self.samples {
            samples.push(s);
        }
    }

    /// The replica samples, when the trace was kept; empty otherwise.
    pub fn take_samples(&mut self) -> Vec<ReplicaSample> {
        self.samples.take().unwrap_or_default()
    }

    fn write<T: Serialize>(&mut self, node: BrokerId, body: &T) {
        let now = self.now_ms();
        self.write_with(|line| model::env::write_event_line(line, now, node, body));
    }

    /// Has `fill` write one line into the reused buffer, then hashes, counts and (when the trace
    /// is kept) keeps it.
    fn write_with(&mut self, fill: impl FnOnce(&mut Vec<u8>)) {
        let mut line = std::mem::take(&mut self.line);
        fill(&mut line);
        self.hash.line(&line);
        self.counters.events += 1;
        if let Some(lines) = &mut self.lines {
            lines.push(String::from_utf8(line.clone()).expect("JSON is UTF-8"));
        }
        self.line = line;
    }

    /// Counts one evaluation of an invariant, for the run's coverage.
    pub fn evaluated(&mut self, invariant: &'static str) {
        *self.counters.invariants.entry(invariant).or_default() += 1;
    }

    /// Adds a per-step invariant, judged after the built-in ones.
    pub fn add_invariant(&mut self, invariant: Box<dyn Invariant>) {
        self.invariants.push(invariant);
    }

    /// Judges every per-step invariant, in order, and counts each as evaluated.
    pub fn judge_step(
        &mut self,
        time_ms: u64,
        nodes: &[NodeView],
        controller: &ControllerView,
        acked: &[AckedSend],
    ) -> Vec<Violation> {
        let step = Step {
            time_ms,
            nodes,
            controller,
            acked,
        };
        self.judge_each(|invariant| invariant.check(&step))
    }

    /// Whether every per-step invariant may be shown only the partitions that changed.
    pub fn incremental(&self) -> bool {
        self.invariants.iter().all(|i| i.incremental())
    }

    /// Asks every invariant, in order, for a judgment; counts those that judged.
    fn judge_each(
        &mut self,
        mut judge: impl FnMut(&mut dyn Invariant) -> Judgment,
    ) -> Vec<Violation> {
        let mut invariants = std::mem::take(&mut self.invariants);
        let mut found = Vec::new();
        for invariant in &mut invariants {
            if let Some(v) = judge(invariant.as_mut()) {
                found.extend(v);
                self.evaluated(invariant.name());
            }
        }
        self.invariants = invariants;
        found
    }

    /// Records a violation: traced, then kept for the report.
    pub fn violation(&mut self, v: Violation) {
        let node = v.node.unwrap_or(-1);
        self.write(
            node,
            &HarnessEvent::Violation {
                check: v.check.name().to_owned(),
                message: v.message.clone(),
            },
        );
        self.violations.push(v);
    }

    /// Takes in a harness event: counted, then traced.
    pub fn harness(&mut self, node: BrokerId, event: HarnessEvent) {
        if let HarnessEvent::Fault { fault, .. } = &event {
            *self.counters.faults.entry(fault.name()).or_default() += 1;
            match *fault {
                FaultKind::Crash | FaultKind::Shutdown => {
                    self.counters.crashes += 1;
                    self.committed.forget_node(node);
                }
                FaultKind::Restart => self.counters.restarts += 1,
                _ => {}
            }
        }
        self.write(node, &event);
    }

    /// Takes in a broker's event: counted, traced, then heard by every invariant.
    pub fn model(&mut self, node: BrokerId, event: Event) {
        let now = self.now_ms();
        match &event {
            Event::QuorumLeader { .. } => self.counters.quorum_elections += 1,
            Event::Truncated {
                partition, from, to, ..
            } => {
                self.counters.truncations += 1;
                self.counters.truncated_offsets += from - to;
                self.committed.forget_from(node, partition, *to);
            }
            Event::BecameLeader { .. } => {
                self.counters.elections += 1;
                self.elections.notify();
            }
            Event::IsrChanged { .. } => self.counters.isr_changes += 1,
            Event::BrokerFenced { .. } => self.counters.fenced += 1,
            Event::BrokerStarted { .. } => self.committed.forget_node(node),
            _ => {}
        }
        self.write_with(|line| model::env::write_model_event_line(line, now, node, &event));
        let heard = Heard {
            time_ms: now,
            node,
            event: &event,
        };
        for v in self.judge_each(|invariant| invariant.observe(&heard)) {
            self.violation(v);
        }
    }
}

/// The brokers' event sink, feeding the observer.
pub struct ObserverSink(pub Arc<Lock<Observer>>);

impl EventSink for ObserverSink {
    fn emit(&self, node: BrokerId, event: Event) {
        self.0.lock().model(node, event);
    }
}

impl Journal for ObserverSink {
    fn harness(&self, node: BrokerId, event: HarnessEvent) {
        self.0.lock().harness(node, event);
    }
}
