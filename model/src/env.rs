//! The three doors through which the model meets the world (clock, disk, event sink), and the
//! events it reports. The network is `crate::net`: madsim's TCP in simulation, tokio's in real mode.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{BrokerId, TopicPartition};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The runtime's monotonic clock, as `Instant::now` reads it. Under madsim it is read from the
/// runtime's time handle: `Instant::now` reaches the same clock through madsim's `clock_gettime`
/// override and back, and deadlines and node clocks read it at nearly every turn of every task.
/// Looking the handle up clones two `Arc`s and drops them again, four atomic operations that cost
/// more than the read itself, twenty times per replicated record: a runtime's driver binds its
/// clock once (`bind_clock`) so that `now` reads it in place.
#[cfg(madsim)]
pub fn now() -> madsim::time::Instant {
    BOUND_CLOCK.with(|bound| match &*bound.borrow() {
        Some(clock) => clock.now_instant(),
        None => madsim::time::TimeHandle::current().now_instant(),
    })
}

#[cfg(not(madsim))]
pub fn now() -> madsim::time::Instant {
    madsim::time::Instant::now()
}

#[cfg(madsim)]
thread_local! {
    static BOUND_CLOCK: std::cell::RefCell<Option<madsim::time::TimeHandle>> =
        const { std::cell::RefCell::new(None) };
}

/// While held, `now` on this thread reads the clock of the runtime that was current when it was
/// made. A runtime runs on one thread, so its driver takes this at the start of `block_on`'s future
/// and keeps it to the end; dropping it gives back whatever was bound before. In real mode time is
/// the system's and there is nothing to bind.
#[must_use = "the clock stays bound only while this is held"]
pub struct BoundClock {
    #[cfg(madsim)]
    previous: Option<madsim::time::TimeHandle>,
}

/// Binds the current runtime's clock for `now` on this thread (see `BoundClock`). Must be called
/// inside a runtime.
pub fn bind_clock() -> BoundClock {
    #[cfg(madsim)]
    {
        let clock = madsim::time::TimeHandle::current();
        BoundClock {
            previous: BOUND_CLOCK.with(|bound| bound.replace(Some(clock))),
        }
    }
    #[cfg(not(madsim))]
    BoundClock {}
}

#[cfg(madsim)]
impl Drop for BoundClock {
    fn drop(&mut self) {
        let previous = self.previous.take();
        // The thread may be ending, its locals gone: then nothing is left to read the clock.
        let _ = BOUND_CLOCK.try_with(|bound| bound.replace(previous));
    }
}

/// A node's own view of time. Timeouts, leases and lag decisions read it; it may be skewed or drift
/// against other nodes' clocks, so nothing may assume two nodes agree on it.
pub trait Clock: Send + Sync {
    /// Milliseconds since an arbitrary epoch of this clock.
    fn now_ms(&self) -> u64;
}

/// Files in a flat namespace of `/`-separated paths. Written bytes are not durable until `sync`:
/// a crash may drop anything written since the last sync of that file. `write_atomic` replaces a
/// whole file durably (write, sync, rename), as checkpoint files do.
pub trait Disk: Send + Sync {
    fn read(&self, path: &str) -> io::Result<Vec<u8>>;
    /// Lends a whole file to `f`. A disk that holds its files in memory lends them without a copy;
    /// `f` must not call back into the disk.
    fn read_with(&self, path: &str, f: &mut dyn FnMut(&[u8])) -> io::Result<()> {
        f(&self.read(path)?);
        Ok(())
    }
    fn read_at(&self, path: &str, position: u64, len: usize) -> io::Result<Vec<u8>>;
    /// Appends and returns the position the data starts at. Creates the file if it is absent.
    fn append(&self, path: &str, data: &[u8]) -> io::Result<u64>;
    fn truncate(&self, path: &str, len: u64) -> io::Result<()>;
    fn sync<'a>(&'a self, path: &'a str) -> BoxFuture<'a, io::Result<()>>;
    fn write_atomic(&self, path: &str, data: &[u8]) -> io::Result<()>;
    fn remove(&self, path: &str) -> io::Result<()>;
    /// Paths that start with `prefix`, sorted.
    fn list(&self, prefix: &str) -> io::Result<Vec<String>>;
    fn exists(&self, path: &str) -> bool;
}

/// Where the model's observable events go. A real deployment logs them; the simulator traces and
/// checks them.
pub trait EventSink: Send + Sync {
    fn emit(&self, node: BrokerId, event: Event);
}

/// Everything a broker tells the outside world about its replication and quorum state.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    BrokerStarted {
        incarnation: u64,
    },
    /// A controlled shutdown finished; `leaderships_moved` says whether the controller released
    /// the broker before it stopped.
    ShutDown {
        leaderships_moved: bool,
    },
    /// A log was opened after a start: what recovery kept and what it dropped.
    LogRecovered {
        partition: TopicPartition,
        log_end_offset: i64,
        high_watermark: i64,
        dropped_bytes: u64,
    },
    QuorumCandidate {
        epoch: i32,
    },
    QuorumLeader {
        epoch: i32,
    },
    QuorumFollower {
        epoch: i32,
        leader: BrokerId,
    },
    QuorumVote {
        epoch: i32,
        candidate: BrokerId,
        granted: bool,
    },
    ControllerActive {
        epoch: i32,
    },
    BrokerRegistered {
        broker: BrokerId,
        incarnation: u64,
    },
    BrokerFenced {
        broker: BrokerId,
        reason: String,
    },
    BrokerUnfenced {
        broker: BrokerId,
    },
    /// A change of a partition's leader or ISR, written to the metadata log by the active controller
    /// (it takes effect once committed). `unclean`: the leader comes from outside the ISR.
    PartitionChanged {
        partition: TopicPartition,
        leader: BrokerId,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<BrokerId>,
        unclean: bool,
    },
    /// A broker took up leadership of a partition for an epoch.
    BecameLeader {
        partition: TopicPartition,
        leader_epoch: i32,
        log_end_offset: i64,
        high_watermark: i64,
    },
    BecameFollower {
        partition: TopicPartition,
        leader_epoch: i32,
        leader: BrokerId,
    },
    IsrChanged {
        partition: TopicPartition,
        leader_epoch: i32,
        partition_epoch: i32,
        isr: Vec<BrokerId>,
    },
    /// A follower cut its log from `from` back to `to`; `high_watermark` is what it had taken as
    /// committed just before.
    Truncated {
        partition: TopicPartition,
        from: i64,
        to: i64,
        high_watermark: i64,
    },
    HighWatermark {
        partition: TopicPartition,
        high_watermark: i64,
    },
    /// A transaction coordinator wrote its decision on a transaction (`PrepareCommit` or
    /// `PrepareAbort`), for `why`: the producer's EndTxn, its timeout, or a new producer of its
    /// transactional id. Its markers go out next.
    TxnDecided {
        transactional_id: String,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        partitions: Vec<TopicPartition>,
        why: String,
    },
    /// Every marker of a decided transaction is written; the coordinator recorded it complete.
    TxnCompleted {
        transactional_id: String,
        producer_id: i64,
        commit: bool,
    },
}

/// One event as a line of JSON: `{"t":T,"node":N,` and the event's own fields. Simulated traces
/// and real mode's event logs are written alike, so the same tools read both.
pub fn event_line<T: Serialize>(time_ms: u64, node: BrokerId, event: &T) -> String {
    let mut line = Vec::with_capacity(128);
    write_event_line(&mut line, time_ms, node, event);
    String::from_utf8(line).expect("JSON is UTF-8")
}

/// `event_line` into `line`, which it clears first: a caller that only hashes the line can keep
/// one buffer for every event.
pub fn write_event_line<T: Serialize>(line: &mut Vec<u8>, time_ms: u64, node: BrokerId, event: &T) {
    start_line(line, time_ms, node);
    let fields = line.len();
    serde_json::to_writer(&mut *line, event).expect("events serialize");
    // The event is an object: its own opening brace gives way to the two fields before it.
    assert_eq!(line[fields], b'{', "an event serializes as a JSON object");
    line.remove(fields);
}

/// `write_event_line` for the model's own events. A high-watermark move, most of any trace, is
/// written here by hand: serde's derive writes the same bytes (a test holds them to it), at
/// several times the cost.
pub fn write_model_event_line(line: &mut Vec<u8>, time_ms: u64, node: BrokerId, event: &Event) {
    let Event::HighWatermark {
        partition,
        high_watermark,
    } = event
    else {
        return write_event_line(line, time_ms, node, event);
    };
    start_line(line, time_ms, node);
    line.extend_from_slice(b"\"kind\":\"high_watermark\",\"partition\":{\"topic\":");
    serde_json::to_writer(&mut *line, &*partition.topic).expect("a string serializes");
    line.extend_from_slice(b",\"partition\":");
    push_decimal(line, i64::from(partition.partition));
    line.extend_from_slice(b"},\"high_watermark\":");
    push_decimal(line, *high_watermark);
    line.push(b'}');
}

/// Clears `line` and writes its first two fields, the time and the node.
fn start_line(line: &mut Vec<u8>, time_ms: u64, node: BrokerId) {
    line.clear();
    line.extend_from_slice(b"{\"t\":");
    push_unsigned(line, time_ms);
    line.extend_from_slice(b",\"node\":");
    push_decimal(line, i64::from(node));
    line.push(b',');
}

/// Writes `n` in decimal: every event line starts with two numbers, and `write!` would cost more
/// than the rest of a short line.
fn push_decimal(line: &mut Vec<u8>, n: i64) {
    if n < 0 {
        line.push(b'-');
    }
    push_unsigned(line, n.unsigned_abs());
}

/// Appends `n` in decimal to `line`.
pub fn push_unsigned(line: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    line.extend_from_slice(&digits[at..]);
}

/// What a broker process is given to run.
#[derive(Clone)]
pub struct Env {
    pub clock: Arc<dyn Clock>,
    pub disk: Arc<dyn Disk>,
    pub events: Arc<dyn EventSink>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_line_is_its_time_and_node_then_the_events_own_json() {
        let events = [
            Event::HighWatermark {
                partition: TopicPartition::new("events", 2),
                high_watermark: 1953,
            },
            Event::HighWatermark {
                partition: TopicPartition::new("a \"quoted\" topic\\", -1),
                high_watermark: i64::MIN,
            },
            Event::QuorumLeader { epoch: 4 },
        ];
        for event in &events {
            for (time_ms, node) in [(0, 0), (20_981, 3), (u64::MAX, -1), (7, i32::MIN)] {
                let body = serde_json::to_string(event).unwrap();
                let expected = format!("{{\"t\":{time_ms},\"node\":{node},{}", &body[1..]);
                assert_eq!(event_line(time_ms, node, event), expected);
                let mut line = Vec::new();
                write_model_event_line(&mut line, time_ms, node, event);
                assert_eq!(String::from_utf8(line).unwrap(), expected);
            }
        }
    }
}
