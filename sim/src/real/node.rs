//! One real broker in this process: the model's broker on tokio, with a file disk under
//! DIR/broker-N, the system clock, and its events as JSON lines in DIR/broker-N.events.jsonl.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use model::config::{BrokerConfig, TopicSpec};
use model::env::{Clock, Env, Event, EventSink};
use model::file_disk::FileDisk;
use model::BrokerId;

use super::ServeArgs;

struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// Events as JSON lines, each flushed at once: a broker that is killed keeps its last words.
struct EventLog(Mutex<BufWriter<File>>);

impl EventSink for EventLog {
    fn emit(&self, node: BrokerId, event: Event) {
        let line = model::env::event_line(SystemClock.now_ms(), node, &event);
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

pub fn config(args: &ServeArgs, node: i32) -> Result<BrokerConfig, String> {
    let ids: Vec<BrokerId> = (1..=i32::from(args.brokers)).collect();
    let addresses: BTreeMap<_, _> = ids.iter().map(|id| (*id, args.address(*id))).collect();
    let mut c = BrokerConfig::new(node, addresses, ids);
    c.min_insync_replicas = args.min_insync_replicas;
    // Consumer groups are coordinated, with their offsets in __consumer_offsets.
    c.offsets_partitions = 3;
    // Transactions are coordinated, with their state in __transaction_state.
    c.transaction_partitions = 3;
    c.topics = args
        .topic_specs()?
        .into_iter()
        .map(|(name, partitions)| TopicSpec {
            name,
            partitions,
            replication_factor: args.replication_factor,
            assignment: Vec::new(),
        })
        .collect();
    Ok(c)
}

pub fn run(args: &ServeArgs, node: i32) -> Result<(), String> {
    let dir = args.data_dir.join(format!("broker-{node}"));
    let disk = FileDisk::open(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let events_path = args.data_dir.join(format!("broker-{node}.events.jsonl"));
    let events = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&events_path)
        .map_err(|e| format!("{}: {e}", events_path.display()))?;
    let env = Env {
        clock: Arc::new(SystemClock),
        disk: Arc::new(disk),
        events: Arc::new(EventLog(Mutex::new(BufWriter::new(events)))),
    };
    let config = config(args, node)?;
    let address = args.address(node);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("a runtime for broker {node}: {e}"))?;
    // The runtime runs every task on this thread, so each line of the broker's log is in this span.
    let _broker = tracing::info_span!("broker", id = node).entered();
    runtime.block_on(async move {
        let shared = model::broker::start(config, env)
            .map_err(|e| format!("broker {node} could not recover {}: {e}", dir.display()))?;
        eprintln!(
            "broker {node}: serving on {address}, data in {}",
            dir.display()
        );
        model::broker::serve(shared)
            .await
            .map_err(|e| format!("broker {node} on {address}: {e}"))?;
        eprintln!("broker {node}: stopped");
        Ok(())
    })
}
