//! Transactional producers: each runs transactions of a few sends to drawn partitions of the
//! workload's topic, and commits them, or aborts them at the drawn rate. A transaction is one
//! `txn` operation in the history (Jepsen's shape): `ok` when it committed, `fail` when it was
//! aborted, `info` when a commit may or may not have taken effect.
//!
//! With `restarts`, a producer crashes now and then and a new one with the same transactional id
//! takes over (a new history process, one stride on), while the old one goes on for a drawn
//! while as a zombie: the new one's InitProducerId must fence it.
//!
//! Draw order (changing it changes every seed): the supervisor draws each incarnation's seed,
//! then (with restarts) the time to the restart and the zombie's time; each incarnation draws, per
//! transaction, the number of sends, then each send's partition, then whether to abort, then the
//! pause before the next transaction.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use model::client::SendOutcome;
use model::transactional::{TransactionalProducer, TxnEnd};
use model::TopicPartition;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::record::history::{key, Micro, Op, OpFn, OpType, Steps, Value};
use crate::scenario::TransactionsSpec;
use crate::world::workload::Workload;

const CLIENT_TIMEOUT: Duration = Duration::from_secs(3);
const BACKOFF: Duration = Duration::from_millis(100);

/// Where transactional producers' values start: `TXN_VALUES + sequence * producers + index`,
/// apart from every other producer's.
const TXN_VALUES: u64 = 1 << 40;

/// Transactional producer `index`: its first incarnation is history process `process`, each
/// restart's `stride` further on.
pub async fn run(
    w: Workload,
    spec: TransactionsSpec,
    index: u32,
    process: u64,
    stride: u64,
    seed: u64,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let Some([lo, hi]) = spec.restarts else {
        instance(w, spec, index, process, 0, rng.random(), None).await;
        return;
    };
    for incarnation in 0u64.. {
        let stop = Arc::new(AtomicBool::new(false));
        let me = process + incarnation * stride;
        let run = instance(w.clone(), spec.clone(), index, me, incarnation, rng.random(), Some(stop.clone()));
        madsim::task::spawn(run);
        let restart = Duration::from_millis(rng.random_range(lo.ms()..=hi.ms()));
        let [zlo, zhi] = spec.zombie;
        let zombie = Duration::from_millis(rng.random_range(zlo.ms()..=zhi.ms()));
        madsim::time::sleep(restart).await;
        if w.stop_producers.load(Ordering::Relaxed) {
            return;
        }
        tracing::debug!(producer = index, incarnation, zombie_ms = zombie.as_millis() as u64, "transactional producer restarts; the old one lingers");
        madsim::task::spawn(async move {
            madsim::time::sleep(zombie).await;
            stop.store(true, Ordering::Relaxed);
        });
    }
}

/// One incarnation of transactional producer `index`, history process `process`, running until
/// the producers stop or `stop` is set.
async fn instance(
    w: Workload,
    spec: TransactionsSpec,
    index: u32,
    process: u64,
    incarnation: u64,
    seed: u64,
    stop: Option<Arc<AtomicBool>>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let client_id = format!("txn-producer-{index}-{incarnation}");
    let mut producer = TransactionalProducer::new(
        w.bootstrap.clone(),
        client_id,
        format!("txn-{index}"),
        CLIENT_TIMEOUT,
        spec.timeout.0,
    );
    let topic: Arc<str> = w.topic.as_str().into();
    // Each incarnation's values apart from every other's.
    let mut sequence = incarnation << 24;
    let stopped = |stop: &Option<Arc<AtomicBool>>| {
        w.stop_producers.load(Ordering::Relaxed) || stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
    };
    while !stopped(&stop) {
        if let Err(error) = producer.begin().await {
            tracing::debug!(producer = index, %error, "cannot begin a transaction: backing off");
            madsim::time::sleep(BACKOFF).await;
            continue;
        }
        let sends = rng.random_range(spec.sends[0]..=spec.sends[1]);
        let planned: Vec<(TopicPartition, u64)> = (0..sends)
            .map(|_| {
                let partition = rng.random_range(0..w.partitions);
                let value = TXN_VALUES + sequence * u64::from(spec.producers) + u64::from(index);
                sequence += 1;
                (TopicPartition::new(topic.clone(), partition), value)
            })
            .collect();
        let abort = rng.random_bool(spec.abort_rate);
        let pause = rng.random_range(w.send_interval_ms.0..=w.send_interval_ms.1);
        // The steps of the sends made, each with its offset once known; those after a failure
        // never went.
        let steps = |offsets: &[Option<i64>]| {
            let micro = (planned.iter().zip(offsets))
                .map(|((tp, value), offset)| Micro::Send {
                    key: key(&w.topic, tp.partition).into(),
                    value: *value,
                    offset: *offset,
                })
                .collect();
            Some(Value::Steps(Box::new(Steps(micro))))
        };
        let mut invoke = w.op(process, OpType::Invoke, OpFn::Txn);
        invoke.value = steps(&vec![None; planned.len()]);
        w.history.push(invoke);
        w.stats().produced += planned.len() as u64;
        let mut offsets = Vec::with_capacity(planned.len());
        let mut failed = None;
        for (tp, value) in &planned {
            let outcome = producer.send(tp, Bytes::from(value.to_string())).await;
            failed = note_send(&w, tp, outcome, 1, &mut offsets);
            if failed.is_some() {
                break;
            }
        }
        let commit = !abort && failed.is_none();
        let commit_ms = commit.then(|| w.now_ms());
        let end = producer.end(commit).await;
        let mut done = w.op(process, OpType::Ok, OpFn::Txn);
        done.commit_ms = commit_ms;
        done.value = steps(&offsets);
        note_end(&w, &mut done, end, failed, abort);
        w.history.push(done);
        madsim::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// Notes a transactional send of `records` records to `tp`: each one's offset once known goes
/// into `offsets`, and what made it fail, if it did, comes back. One of unknown fate may be
/// written: it stays in the transaction, whose end decides it.
pub(super) fn note_send(
    w: &Workload,
    tp: &TopicPartition,
    outcome: SendOutcome,
    records: usize,
    offsets: &mut Vec<Option<i64>>,
) -> Option<String> {
    match outcome {
        SendOutcome::Acked { offset } => {
            w.stats().acked += records as u64;
            offsets.extend((offset..).take(records).map(Some));
            None
        }
        SendOutcome::Sent => {
            offsets.extend(std::iter::repeat_n(None, records));
            None
        }
        SendOutcome::Refused { error } => Some(format!("{tp}: error code {error}")),
        SendOutcome::Unknown { reason } => {
            offsets.extend(std::iter::repeat_n(None, records));
            Some(format!("{tp}: {reason}"))
        }
    }
}

/// Completes a transaction's operation `done` with how it ended, and counts it: `ok` committed,
/// `fail` aborted (because of `failed`, or by choice when `abort`), `info` unknown.
pub(super) fn note_end(
    w: &Workload,
    done: &mut Op,
    end: TxnEnd,
    failed: Option<String>,
    abort: bool,
) {
    let mut stats = w.stats();
    match end {
        TxnEnd::Committed => stats.txn_committed += 1,
        TxnEnd::Aborted => {
            done.kind = OpType::Fail;
            let why = failed.or(abort.then(|| "aborted by choice".to_owned()));
            done.error = why.map(Into::into);
            stats.txn_aborted += 1;
        }
        TxnEnd::Unknown(reason) => {
            done.kind = OpType::Info;
            done.error = Some(reason.into());
            stats.txn_unknown += 1;
        }
    }
}
