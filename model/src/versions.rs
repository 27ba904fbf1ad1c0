//! Responses are built once, with what the newest supported version carries. An older version
//! lacks some fields, and `kafka-protocol` refuses to encode a set field that the version lacks,
//! so a response is fitted to the version its request came in before it is encoded. (Fetch
//! answers are written by `fetch_codec`, which writes only what each version carries.)

use kafka_protocol::messages::ResponseKind;

pub fn fit(response: &mut ResponseKind, version: i16) {
    if let ResponseKind::ListOffsets(r) = response {
        if version < 4 {
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                p.leader_epoch = -1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::list_offsets_response::{
        ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
    };
    use kafka_protocol::messages::ListOffsetsResponse;

    fn encodes(response: &ResponseKind, version: i16) -> bool {
        response.encode(&mut BytesMut::new(), version).is_ok()
    }

    #[test]
    fn a_newest_style_answer_encodes_at_every_supported_version_once_fitted() {
        let mut o = ListOffsetsPartitionResponse::default();
        o.leader_epoch = 3;
        let mut ot = ListOffsetsTopicResponse::default();
        ot.partitions.push(o);
        let mut offsets = ListOffsetsResponse::default();
        offsets.topics.push(ot);
        let mut refused_unfitted = 0;
        let response = ResponseKind::ListOffsets(offsets);
        for version in 1..=7 {
            refused_unfitted += usize::from(!encodes(&response, version));
            let mut fitted = response.clone();
            fit(&mut fitted, version);
            assert!(encodes(&fitted, version), "version {version}");
        }
        assert!(refused_unfitted > 0, "the test plants nothing");
    }
}
