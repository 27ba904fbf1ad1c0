//! Transaction markers: the coordinator has each partition of a decided transaction written a
//! commit or abort marker by the partition's leader (WriteTxnMarkers), retrying until every one
//! is written, and then records the transaction as complete. A leader writes a marker as an
//! acks=all control batch and answers once it is replicated.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{TopicName, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use super::coordinator::{completed, current, write_complete};
use super::TxnState;
use crate::batch::{self, Marker};
use crate::broker::Shared;
use crate::wire::call_once;
use crate::{BrokerId, TopicPartition};

const WRITE_TXN_MARKERS_VERSION: i16 = 1;
/// The pause before markers that could not be written are tried again.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// Writes the markers of `id`'s decided transaction, then records it complete. Stops when this
/// broker no longer coordinates `id` in `epoch`: the new coordinator finishes it from the log.
pub async fn complete(shared: Arc<Shared>, id: String, tp: TopicPartition, epoch: i32) {
    let mut written: BTreeSet<TopicPartition> = BTreeSet::new();
    loop {
        let (meta, leaders) = {
            let mut s = shared.lock();
            let Some(meta) =
                current(&shared, &mut s, &id, &tp, epoch).filter(|m| m.state.preparing())
            else {
                completed(&mut s, &id, epoch);
                return;
            };
            let mut leaders: BTreeMap<BrokerId, Vec<TopicPartition>> = BTreeMap::new();
            for p in meta.partitions.iter().filter(|p| !written.contains(*p)) {
                let leader = s
                    .image
                    .partition(&p.topic, p.partition)
                    .map_or(-1, |m| m.leader);
                leaders.entry(leader).or_default().push(p.clone());
            }
            (meta, leaders)
        };
        if leaders.is_empty() && write_complete(&shared, &id, &tp, epoch).await {
            let mut s = shared.lock();
            completed(&mut s, &id, epoch);
            return;
        }
        let marker = if meta.state == TxnState::PrepareCommit {
            Marker::Commit
        } else {
            Marker::Abort
        };
        let request = MarkerRequest {
            producer_id: meta.producer_id,
            producer_epoch: meta.producer_epoch,
            marker,
            coordinator_epoch: epoch,
        };
        // Every leader at once, as Kafka's marker channel does.
        let sends = (leaders.iter())
            .filter(|(l, _)| **l >= 0)
            .map(|(leader, partitions)| send(&shared, *leader, &request, partitions));
        for done in futures_util::future::join_all(sends).await {
            written.extend(done);
        }
        madsim::time::sleep(RETRY_BACKOFF).await;
    }
}

/// One transaction's marker, as the coordinator asks for it.
struct MarkerRequest {
    producer_id: i64,
    producer_epoch: i16,
    marker: Marker,
    coordinator_epoch: i32,
}

/// Asks `leader` to write the marker on `partitions`; returns those it wrote.
async fn send(
    shared: &Arc<Shared>,
    leader: BrokerId,
    m: &MarkerRequest,
    partitions: &[TopicPartition],
) -> Vec<TopicPartition> {
    let mut request = WriteTxnMarkersRequest::default();
    let mut marker = WritableTxnMarker::default();
    marker.producer_id = m.producer_id.into();
    marker.producer_epoch = m.producer_epoch;
    marker.transaction_result = m.marker == Marker::Commit;
    marker.coordinator_epoch = m.coordinator_epoch;
    for run in partitions.chunk_by(|a, b| a.topic == b.topic) {
        let mut t = WritableTxnMarkerTopic::default();
        t.name = TopicName(StrBytes::from_string(run[0].topic.to_string()));
        t.partition_indexes = run.iter().map(|p| p.partition).collect();
        marker.topics.push(t);
    }
    request.markers.push(marker);
    let response = if leader == shared.id() {
        write_txn_markers(shared, request).await
    } else {
        let Some(address) = shared.config.address(leader) else {
            return Vec::new();
        };
        let timeout = shared.request_timeout();
        let client_id = format!("broker-{}-txn-markers", shared.id());
        let version = WRITE_TXN_MARKERS_VERSION;
        let call = call_once(address, &client_id, &request, version, timeout, timeout * 2);
        match call.await {
            Ok(r) => r,
            Err(error) => {
                debug!(leader, %error, "WriteTxnMarkers not answered");
                return Vec::new();
            }
        }
    };
    let mut done = Vec::new();
    for r in response.markers {
        for t in r.topics {
            for p in t.partitions {
                if p.error_code == 0 {
                    done.push(TopicPartition::new(t.name.0.as_str(), p.partition_index));
                } else {
                    debug!(topic = %t.name.0.as_str(), partition = p.partition_index, error_code = p.error_code, "marker not written");
                }
            }
        }
    }
    done
}

/// The leader's side: writes each marker asked for on each of its partitions, as an acks=all
/// control batch.
pub async fn write_txn_markers(
    shared: &Arc<Shared>,
    request: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    let mut response = WriteTxnMarkersResponse::default();
    let timeout = shared.config.request_timeout_ms as i32;
    for m in request.markers {
        let marker = if m.transaction_result {
            Marker::Commit
        } else {
            Marker::Abort
        };
        let mut result = WritableTxnMarkerResult::default();
        result.producer_id = m.producer_id;
        for t in &m.topics {
            let mut rt = WritableTxnMarkerTopicResult::default();
            rt.name = t.name.clone();
            // Each partition's marker is written and replicated side by side with the others.
            let writes = t.partition_indexes.iter().map(|&partition| async move {
                let tp = TopicPartition::new(t.name.0.as_str(), partition);
                let records = batch::encode_marker(
                    m.producer_id.0,
                    m.producer_epoch,
                    marker,
                    m.coordinator_epoch,
                    shared.now_ms() as i64,
                );
                let written =
                    crate::serve::produce_partition(shared, &tp, -1, timeout, records).await;
                if written.is_ok() {
                    crate::group::take_marker(shared, &tp, m.producer_id.0, marker);
                }
                let mut rp = WritableTxnMarkerPartitionResult::default();
                rp.partition_index = partition;
                rp.error_code = written.err().unwrap_or(0);
                rp
            });
            rt.partitions = futures_util::future::join_all(writes).await;
            result.topics.push(rt);
        }
        response.markers.push(result);
    }
    response
}
