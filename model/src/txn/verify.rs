//! KIP-890 part 1 on the partition leader: a transactional batch that would open its producer's
//! transaction on a partition is appended only once the coordinator confirms that the partition
//! is in the producer's ongoing transaction. A produce that raced its transaction's end (a retry,
//! or a request held up in the network) is refused instead of opening a transaction that no
//! marker will ever close, which would hold the last stable offset back for good (KAFKA-12671).

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use tracing::debug;

use super::coordinator::{coordinator_of, verify_here};
use crate::batch;
use crate::broker::Shared;
use crate::fetcher::error_code;
use crate::wire::call_once;
use crate::TopicPartition;

const VERIFY_VERSION: i16 = 4;

/// Checks a transactional produce's batch before it is appended to `tp`; an error code refuses it
/// (nothing was written).
pub async fn before_append(
    shared: &Arc<Shared>,
    id: &str,
    tp: &TopicPartition,
    records: &[u8],
) -> Result<(), i16> {
    let Ok(h) = batch::parse(records) else {
        return Ok(()); // the append refuses it
    };
    if !h.transactional || h.control.is_some() {
        return Ok(());
    }
    if shared.config.bug(crate::bugs::Switch::HangingTxn) {
        return Ok(());
    }
    let coordinator = {
        let mut s = shared.lock();
        let opened = (s.partitions.get(tp))
            .is_some_and(|p| p.log.transactions().open_since(h.producer_id).is_some());
        if opened {
            return Ok(());
        }
        let coordinator = coordinator_of(shared, &s, id);
        if coordinator == Some(shared.id()) {
            return verify_here(shared, &mut s, id, h.producer_id, h.producer_epoch, tp)
                .map_err(refusal);
        }
        coordinator
    };
    let Some(address) = coordinator.and_then(|c| shared.config.address(c)) else {
        return Err(error_code::NOT_ENOUGH_REPLICAS);
    };
    let mut request = AddPartitionsToTxnRequest::default();
    let mut t = AddPartitionsToTxnTransaction::default();
    t.transactional_id = StrBytes::from_string(id.to_owned()).into();
    t.producer_id = h.producer_id.into();
    t.producer_epoch = h.producer_epoch;
    t.verify_only = true;
    let mut topic = AddPartitionsToTxnTopic::default();
    topic.name = TopicName(StrBytes::from_string(tp.topic.to_string()));
    topic.partitions = vec![tp.partition];
    t.topics.push(topic);
    request.transactions.push(t);
    let timeout = shared.request_timeout();
    let client_id = format!("broker-{}-txn-verify", shared.id());
    let call = call_once(
        address,
        &client_id,
        &request,
        VERIFY_VERSION,
        timeout,
        timeout,
    );
    let response = call.await.map_err(|error| {
        debug!(partition = %tp, %error, "transaction verification not answered");
        error_code::NOT_ENOUGH_REPLICAS
    })?;
    let code = (response.results_by_transaction.first())
        .and_then(|r| r.topic_results.first())
        .and_then(|t| t.results_by_partition.first())
        .map_or(error_code::NOT_ENOUGH_REPLICAS, |p| p.partition_error_code);
    if code != 0 {
        debug!(partition = %tp, producer_id = h.producer_id, error_code = code, "transactional produce not verified");
        return Err(refusal(code));
    }
    Ok(())
}

/// The produce's answer for a verification that failed: the coordinator's own unavailability is
/// retriable for the producer, whatever the coordinator said of itself.
fn refusal(code: i16) -> i16 {
    match code {
        crate::group::error_code::NOT_COORDINATOR
        | crate::group::error_code::COORDINATOR_NOT_AVAILABLE => error_code::NOT_ENOUGH_REPLICAS,
        code => code,
    }
}
