//! Responses are built once, with what the newest supported version carries. An older version
//! lacks some fields, and `kafka-protocol` refuses to encode a set field that the version lacks,
//! so a response is fitted to the version its request came in before it is encoded.

use kafka_protocol::messages::fetch_response::{EpochEndOffset, LeaderIdAndEpoch};
use kafka_protocol::messages::ResponseKind;

pub fn fit(response: &mut ResponseKind, version: i16) {
    match response {
        ResponseKind::Fetch(r) => {
            for p in r.responses.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                if version < 12 {
                    p.diverging_epoch = EpochEndOffset::default();
                    p.current_leader = LeaderIdAndEpoch::default();
                }
                if version < 11 {
                    p.preferred_read_replica = (-1).into();
                }
                if version < 5 {
                    p.log_start_offset = -1;
                }
            }
        }
        ResponseKind::ListOffsets(r) if version < 4 => {
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.leader_epoch = -1;
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_protocol::messages::{FetchResponse, ListOffsetsResponse};

    fn encodes(response: &ResponseKind, version: i16) -> bool {
        response.encode(&mut BytesMut::new(), version).is_ok()
    }

    #[test]
    fn a_newest_style_answer_encodes_at_every_supported_version_once_fitted() {
        let mut p = PartitionData::default();
        p.diverging_epoch.epoch = 3;
        p.diverging_epoch.end_offset = 10;
        p.current_leader.leader_id = 1.into();
        p.current_leader.leader_epoch = 3;
        p.log_start_offset = 0;
        let mut t = FetchableTopicResponse::default();
        t.partitions.push(p);
        let mut fetch = FetchResponse::default();
        fetch.responses.push(t);
        let mut o = ListOffsetsPartitionResponse::default();
        o.leader_epoch = 3;
        let mut ot = ListOffsetsTopicResponse::default();
        ot.partitions.push(o);
        let mut offsets = ListOffsetsResponse::default();
        offsets.topics.push(ot);
        let mut refused_unfitted = 0;
        for (response, versions) in [
            (ResponseKind::Fetch(fetch), 4..=12),
            (ResponseKind::ListOffsets(offsets), 1..=7),
        ] {
            for version in versions {
                refused_unfitted += usize::from(!encodes(&response, version));
                let mut fitted = response.clone();
                fit(&mut fitted, version);
                assert!(encodes(&fitted, version), "version {version}");
            }
        }
        assert!(refused_unfitted > 0, "the test plants nothing");
    }
}
