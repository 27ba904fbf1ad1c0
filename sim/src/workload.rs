//! The workload: producers sending unique values to the partitions of one topic, and consumers
//! reading every partition from the start. Every operation goes into the history.
//!
//! Draw order (changing it changes every seed): each producer draws, per send, first the partition
//! and then the pause before its next send.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use madsim::time::Instant;
use model::client::{Client, PollOutcome, SendOutcome, EARLIEST};
use model::TopicPartition;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checkers::acked_durability::AckedSend;
use crate::history::{History, Op, OpFn, OpType};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
const POLL_MAX_WAIT_MS: i32 = 100;
const BACKOFF: Duration = Duration::from_millis(100);

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct WorkloadStats {
    pub produced: u64,
    pub acked: u64,
    pub refused: u64,
    pub unknown: u64,
    pub polls: u64,
    pub consumed: u64,
}

#[derive(Clone)]
pub struct Workload {
    pub topic: String,
    pub partitions: i32,
    pub acks: i16,
    pub send_interval_ms: (u64, u64),
    pub poll_interval: Duration,
    pub bootstrap: Vec<SocketAddr>,
    pub history: History,
    pub start: Instant,
    pub stop_producers: Arc<AtomicBool>,
    pub stop_consumers: Arc<AtomicBool>,
    pub acked: Arc<Mutex<Vec<AckedSend>>>,
    pub stats: Arc<Mutex<WorkloadStats>>,
}

impl Workload {
    fn op(&self, process: &str, kind: OpType, f: OpFn, partition: i32) -> Op {
        Op {
            index: 0,
            time_ms: self.start.elapsed().as_millis() as u64,
            process: process.to_owned(),
            kind,
            f,
            partition,
            acks: None,
            value: None,
            offset: None,
            records: Vec::new(),
            error: None,
        }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, WorkloadStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub async fn producer(w: Workload, id: u32, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let process = format!("producer-{id}");
    let mut client = Client::new(w.bootstrap.clone(), process.clone(), CLIENT_TIMEOUT);
    let mut sequence = 0u64;
    while !w.stop_producers.load(Ordering::Relaxed) {
        let partition = rng.random_range(0..w.partitions);
        let pause = rng.random_range(w.send_interval_ms.0..=w.send_interval_ms.1);
        let value = format!("{id}-{sequence}");
        sequence += 1;
        let tp = TopicPartition::new(w.topic.clone(), partition);
        let mut invoke = w.op(&process, OpType::Invoke, OpFn::Send, partition);
        invoke.acks = Some(w.acks);
        invoke.value = Some(value.clone());
        w.history.push(invoke.clone());
        w.stats().produced += 1;
        let outcome = client
            .send(&tp, w.acks, None, Bytes::from(value.clone()))
            .await;
        let mut done = w.op(&process, OpType::Ok, OpFn::Send, partition);
        done.acks = invoke.acks;
        done.value = Some(value.clone());
        let mut backoff = false;
        match outcome {
            SendOutcome::Acked { offset } => {
                done.offset = Some(offset);
                w.stats().acked += 1;
                if w.acks == -1 {
                    let acked = AckedSend {
                        partition: tp.to_string(),
                        offset,
                        value: Bytes::from(value),
                    };
                    w.acked
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(acked);
                }
            }
            SendOutcome::Sent => done.kind = OpType::Info,
            SendOutcome::Refused { error } => {
                done.kind = OpType::Fail;
                done.error = Some(format!("error code {error}"));
                w.stats().refused += 1;
                backoff = true;
            }
            SendOutcome::Unknown { reason } => {
                done.kind = OpType::Info;
                done.error = Some(reason);
                w.stats().unknown += 1;
                backoff = true;
            }
        }
        w.history.push(done);
        let pause = if backoff {
            BACKOFF
        } else {
            Duration::from_millis(pause)
        };
        madsim::time::sleep(pause).await;
    }
}

pub async fn consumer(w: Workload, id: u32) {
    let process = format!("consumer-{id}");
    let mut client = Client::new(w.bootstrap.clone(), process.clone(), CLIENT_TIMEOUT);
    // Where each partition starts, asked of its leader with ListOffsets (earliest), as a consumer
    // with auto.offset.reset=earliest does.
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    while !w.stop_consumers.load(Ordering::Relaxed) {
        for partition in 0..w.partitions {
            let tp = TopicPartition::new(w.topic.clone(), partition);
            let offset = match positions.get(&partition) {
                Some(offset) => *offset,
                None => match client.list_offset(&tp, EARLIEST).await {
                    Ok(offset) => *positions.entry(partition).or_insert(offset),
                    Err(_) => continue,
                },
            };
            let mut invoke = w.op(&process, OpType::Invoke, OpFn::Poll, partition);
            invoke.offset = Some(offset);
            w.history.push(invoke);
            let outcome = client.poll(&tp, offset, POLL_MAX_WAIT_MS).await;
            let mut done = w.op(&process, OpType::Ok, OpFn::Poll, partition);
            done.offset = Some(offset);
            match outcome {
                PollOutcome::Records { records, .. } => {
                    if let Some((last, _)) = records.last() {
                        positions.insert(partition, last + 1);
                    }
                    let mut stats = w.stats();
                    stats.polls += 1;
                    stats.consumed += records.len() as u64;
                    drop(stats);
                    done.records = records
                        .into_iter()
                        .map(|(o, v)| (o, String::from_utf8_lossy(&v).into_owned()))
                        .collect();
                }
                PollOutcome::Failed { reason } => {
                    done.kind = OpType::Fail;
                    done.error = Some(reason);
                }
            }
            w.history.push(done);
        }
        madsim::time::sleep(w.poll_interval).await;
    }
}
