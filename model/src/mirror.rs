//! MirrorMaker: copies a topic from a source cluster to `source.TOPIC` on a target cluster, one
//! partition to the same partition, in order, and translates consumer groups' committed offsets
//! from source to target.
//!
//! Per partition, it reads a bounded batch from the source (the queue between its consumer and its
//! producer), writes each record to the target with acks=all, notes each (source offset, target
//! offset) pair it wrote (an offset sync), and every `checkpoint_interval` commits how far it got
//! to its own group on the source (`mirror-maker`, a standalone commit), then translates each
//! watched group's committed offset: to the target offset of the last synced record at or below it
//! (one past it when below), so that a consumer failing over to the target re-reads rather than
//! skips. A restart forgets everything but what it committed: it resumes there, and what it wrote
//! since is written again (at least once).
//!
//! The `mirror-skip-on-restart` bug switch commits how far it read, before writing it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use tracing::{debug, trace};

use crate::bugs;
use crate::client::{Client, PollOutcome, SendOutcome, EARLIEST};
use crate::group_client::GroupMember;
use crate::TopicPartition;

/// MirrorMaker's own group on the source cluster, where it keeps its progress.
pub const GROUP: &str = "mirror-maker";

/// Where MirrorMaker's checkpoints go: a consumer failing over to the target starts from them.
pub trait MirrorSink: Send + Sync {
    /// `group`'s committed `source_offset` translates to `target_offset`.
    fn checkpoint(&self, group: &str, partition: i32, source_offset: i64, target_offset: i64);
}

#[derive(Clone)]
pub struct MirrorConfig {
    pub source: Vec<SocketAddr>,
    pub target: Vec<SocketAddr>,
    pub topic: String,
    pub partitions: i32,
    /// Records read from the source at most before they are written to the target.
    pub queue: usize,
    pub checkpoint_interval: Duration,
    /// Source groups whose committed offsets are translated.
    pub groups: Vec<String>,
    pub bugs: Vec<bugs::Switch>,
    pub timeout: Duration,
}

impl MirrorConfig {
    pub fn target_topic(&self) -> String {
        target_topic(&self.topic)
    }
}

/// The name a mirrored topic has on the target, as MirrorMaker 2's default policy names it.
pub fn target_topic(topic: &str) -> String {
    format!("source.{topic}")
}

/// Translates `committed` with the offset syncs `syncs` (source -> target offset), or `None` when
/// no record at or below it has been synced.
pub fn translate(syncs: &BTreeMap<i64, i64>, committed: i64) -> Option<i64> {
    let (&source, &target) = syncs.range(..=committed).next_back()?;
    Some(if source == committed {
        target
    } else {
        target + 1
    })
}

/// One life of MirrorMaker, until `stop()` says so or `restart()` says to start over; returns
/// whether it was asked to restart.
pub async fn run(
    config: &MirrorConfig,
    sink: &dyn MirrorSink,
    stop: &(dyn Fn() -> bool + Sync),
    restart: &mut (dyn FnMut() -> bool + Send),
) -> bool {
    let name = "mirror-maker";
    let mut source = Client::new(config.source.clone(), name, config.timeout);
    let mut target = Client::new(config.target.clone(), name, config.timeout);
    let mut progress = GroupMember::new(config.source.clone(), name, GROUP, config.timeout, 10_000);
    let mut watched: Vec<GroupMember> = config
        .groups
        .iter()
        .map(|g| {
            GroupMember::new(
                config.source.clone(),
                name,
                g.clone(),
                config.timeout,
                10_000,
            )
        })
        .collect();
    let skip_bug = config.bugs.contains(&bugs::Switch::MirrorSkipOnRestart);
    let tps: Vec<TopicPartition> = (0..config.partitions)
        .map(|p| TopicPartition::new(config.topic.clone(), p))
        .collect();
    let target_topic = config.target_topic();
    // Where to read next, per partition: from the last commit, else the start.
    let mut next: BTreeMap<i32, i64> = loop {
        if stop() {
            return false;
        }
        match progress.committed(&tps).await {
            Ok(c) => break c.into_iter().map(|(tp, o)| (tp.partition, o)).collect(),
            Err(error) => {
                trace!(%error, "MirrorMaker cannot read its committed progress yet");
                madsim::time::sleep(Duration::from_millis(100)).await
            }
        }
    };
    debug!(topic = %config.topic, resume_from = ?next, "MirrorMaker starts");
    let mut syncs: BTreeMap<i32, BTreeMap<i64, i64>> = BTreeMap::new();
    let mut checkpoint_at = madsim::time::Instant::now() + config.checkpoint_interval;
    while !stop() {
        if restart() {
            debug!(topic = %config.topic, "MirrorMaker restarts");
            return true;
        }
        for tp in &tps {
            let p = tp.partition;
            let from = match next.get(&p) {
                Some(o) => *o,
                None => match source.list_offset(tp, EARLIEST).await {
                    Ok(o) => *next.entry(p).or_insert(o),
                    Err(_) => continue,
                },
            };
            let PollOutcome::Records { mut records, .. } = source.poll(tp, from, 50).await else {
                continue;
            };
            records.truncate(config.queue);
            let Some(&(last, _)) = records.last() else {
                continue;
            };
            if skip_bug {
                // The wrong rule: how far it read is committed as how far it got.
                let _ = progress.commit(&[(tp.clone(), last + 1)]).await;
            }
            // A crash can strike with records in the queue, read and not yet written: they are lost
            // with it, and only what was committed says where to read again.
            if restart() {
                debug!(
                    topic = %config.topic,
                    partition = p,
                    lost_from_queue = records.len(),
                    "MirrorMaker restarts with records read and not written"
                );
                return true;
            }
            let out = TopicPartition::new(target_topic.clone(), p);
            let batch: Vec<(Option<bytes::Bytes>, bytes::Bytes)> =
                records.iter().map(|(_, v)| (None, v.clone())).collect();
            // Not written, or not known to be: it is read again from where it was.
            match target.send_batch(&out, -1, &batch).await {
                SendOutcome::Acked { offset: base } => {
                    trace!(
                        partition = p,
                        from,
                        to = last,
                        target_base = base,
                        "MirrorMaker wrote a batch"
                    );
                    for (i, (offset, _)) in records.iter().enumerate() {
                        let written = base + i as i64;
                        syncs.entry(p).or_default().insert(*offset, written);
                    }
                    next.insert(p, last + 1);
                }
                outcome => debug!(
                    partition = p,
                    from,
                    ?outcome,
                    "MirrorMaker batch not known written: it is read again"
                ),
            }
        }
        if madsim::time::Instant::now() >= checkpoint_at {
            checkpoint_at = madsim::time::Instant::now() + config.checkpoint_interval;
            let done: Vec<(TopicPartition, i64)> = next
                .iter()
                .map(|(p, o)| (TopicPartition::new(config.topic.clone(), *p), *o))
                .collect();
            if !skip_bug && !done.is_empty() {
                let committed = progress.commit(&done).await;
                debug!(
                    topic = %config.topic,
                    progress = ?next,
                    ok = committed.is_ok(),
                    "MirrorMaker commits its progress"
                );
            }
            for group in watched.iter_mut() {
                let Ok(committed) = group.committed(&tps).await else {
                    continue;
                };
                for (tp, c) in committed {
                    if let Some(t) = syncs.get(&tp.partition).and_then(|s| translate(s, c)) {
                        debug!(
                            group = %group.group,
                            partition = tp.partition,
                            source_offset = c,
                            target_offset = t,
                            "MirrorMaker translates a committed offset"
                        );
                        sink.checkpoint(&group.group, tp.partition, c, t);
                    }
                }
            }
        }
        madsim::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_offset_translates_to_its_record_or_one_past_the_last_synced_below_it() {
        let syncs = BTreeMap::from([(0, 0), (1, 1), (5, 9)]);
        assert_eq!(translate(&syncs, 1), Some(1));
        assert_eq!(translate(&syncs, 3), Some(2));
        assert_eq!(translate(&syncs, 5), Some(9));
        assert_eq!(translate(&syncs, 7), Some(10));
        assert_eq!(translate(&BTreeMap::new(), 3), None);
    }
}
