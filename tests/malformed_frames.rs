//! Bad bytes on a broker's port, sent in the middle of a live run: an absurd or negative length,
//! a torn frame, an unknown API, a request of a version nobody knows, a produce of two batches or
//! of garbage, a Vote for a partition that is not the metadata log's. Each gets an error answer or
//! a closed connection, and the brokers serve everyone else on: the run, with its producers and
//! consumers, passes every check.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::vote_request::{self, VoteRequest};
use kafka_protocol::messages::{BrokerId, ProduceRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use logsim::run::{run_with_hooks, Hook};
use logsim::scenario::Scenario;
use logsim::world::cluster::Cluster;
use madsim::net::TcpStream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What each bad input got, filled in by the attacker during the run.
static OUTCOMES: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());

enum Answer {
    Closed,
    Bytes(Vec<u8>),
    Silence,
}

async fn send_raw(to: std::net::SocketAddr, payload: &[u8], wait: bool) -> Answer {
    let mut s = TcpStream::connect(to).await.expect("connect");
    s.write_all(payload).await.expect("write");
    s.flush().await.expect("flush");
    if !wait {
        return Answer::Silence;
    }
    let mut buf = vec![0u8; 4096];
    match madsim::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
        Ok(Ok(0)) | Ok(Err(_)) => Answer::Closed,
        Ok(Ok(n)) => Answer::Bytes(buf[..n].to_vec()),
        Err(_) => Answer::Silence,
    }
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

/// Header v1: api key, version, correlation id, a null client id.
fn header(key: i16, version: i16, correlation: i32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&key.to_be_bytes());
    h.extend_from_slice(&version.to_be_bytes());
    h.extend_from_slice(&correlation.to_be_bytes());
    h.extend_from_slice(&(-1i16).to_be_bytes());
    h
}

impl Answer {
    fn describe(&self) -> String {
        match self {
            Answer::Closed => "Closed".into(),
            Answer::Bytes(b) => format!("Bytes({b:?})"),
            Answer::Silence => "Silence".into(),
        }
    }
}

fn record(name: &str, what: Answer) {
    OUTCOMES
        .lock()
        .unwrap()
        .push((name.to_owned(), what.describe()));
}

fn produce(records: Bytes) -> ProduceRequest {
    let mut data = PartitionProduceData::default();
    data.index = 0;
    data.records = Some(records);
    let mut topic = TopicProduceData::default();
    topic.name = TopicName(StrBytes::from_static_str("events"));
    topic.partition_data = vec![data];
    let mut request = ProduceRequest::default();
    request.acks = -1;
    request.timeout_ms = 2000;
    request.topic_data = vec![topic];
    request
}

/// A Vote that names a partition of `events`, from voter 1 in a far epoch with a far longer log:
/// were it decided as the metadata log's, every voter would move to epoch 1000 and vote.
fn vote_for_another_log() -> VoteRequest {
    let mut p = vote_request::PartitionData::default();
    p.partition_index = 0;
    p.replica_epoch = 1000;
    p.replica_id = BrokerId(1);
    p.last_offset_epoch = 1000;
    p.last_offset = 1 << 40;
    let mut topic = vote_request::TopicData::default();
    topic.topic_name = TopicName(StrBytes::from_static_str("events"));
    topic.partitions = vec![p];
    let mut request = VoteRequest::default();
    request.topics = vec![topic];
    request
}

fn attack(cluster: &mut Cluster) {
    let brokers = cluster.bootstrap();
    let node = madsim::runtime::Handle::current()
        .create_node()
        .name("attacker")
        .ip("10.0.2.1".parse().expect("an address"))
        .build();
    node.spawn(async move {
        for to in brokers {
            record(
                "absurd length",
                send_raw(to, &i32::MAX.to_be_bytes(), true).await,
            );
            record(
                "negative length",
                send_raw(to, &(-5i32).to_be_bytes(), true).await,
            );
            let mut torn = 100i32.to_be_bytes().to_vec();
            torn.extend_from_slice(&[0, 3, 0]);
            record("torn frame", send_raw(to, &torn, false).await);
            let mut unknown = header(9999, 0, 1);
            unknown.extend_from_slice(&[0, 0]);
            record("unknown api", send_raw(to, &frame(&unknown), true).await);
            record(
                "produce without a body",
                send_raw(to, &frame(&header(0, 9, 7)), true).await,
            );
            // ApiVersions v99: header v2 (a tagged-field count after the client id).
            let mut versions = header(18, 99, 42);
            versions.push(0);
            versions.extend_from_slice(&[0, 0, 0]);
            record(
                "ApiVersions v99",
                send_raw(to, &frame(&versions), true).await,
            );

            let mut conn = model::wire::Connection::connect(to, "attacker", Duration::from_secs(2))
                .await
                .expect("connect");
            let one = model::batch::encode(&[(None, Bytes::from_static(b"x"))], 0);
            let two = Bytes::from([one.as_ref(), one.as_ref()].concat());
            let garbage = Bytes::from_static(&[7u8; 80]);
            let code = conn
                .call(&vote_for_another_log(), 0, Duration::from_secs(3))
                .await
                .map(|r| r.error_code);
            record(
                "vote for another log",
                Answer::Bytes(format!("{code:?}").into_bytes()),
            );
            for (name, records) in [("two batches", two), ("garbage records", garbage)] {
                let answer = conn
                    .call(&produce(records), 9, Duration::from_secs(3))
                    .await;
                let code = answer.map(|r| r.responses[0].partition_responses[0].error_code);
                record(name, Answer::Bytes(format!("{code:?}").into_bytes()));
            }
        }
    });
}

#[test]
fn bad_frames_are_refused_and_the_brokers_serve_on() {
    let scenario = Scenario::parse(
        Path::new("malformed.toml"),
        "[run]\nduration = \"20s\"\nquiet_period = \"5s\"\n",
    )
    .expect("valid");
    let report = run_with_hooks(
        &scenario,
        3,
        false,
        vec![Hook::new(Duration::from_secs(8), attack)],
    )
    .report;
    assert!(report.pass, "{:?}", report.violations);
    assert!(report.acked > 0);
    let outcomes = OUTCOMES.lock().unwrap().clone();
    assert_eq!(
        outcomes.len(),
        3 * 9,
        "every attack ran on every broker: {outcomes:#?}"
    );
    let answer = |code: &[u8]| Answer::Bytes(code.to_vec()).describe();
    for name in ["two batches", "garbage records"] {
        assert!(
            outcomes
                .iter()
                .any(|(n, got)| n == name && *got == answer(b"Ok(2)")),
            "the leader refused no {name}: {outcomes:#?}"
        );
    }
    for (name, got) in &outcomes {
        match name.as_str() {
            "torn frame" => {}
            "ApiVersions v99" => {
                // Size, correlation id 42, error 35 (UNSUPPORTED_VERSION).
                assert!(got.starts_with("Bytes([0, 0, 0"), "{name}: {got}");
                assert!(got.contains("0, 0, 0, 42, 0, 35"), "{name}: {got}");
            }
            // CORRUPT_MESSAGE (2) from the leader, NOT_LEADER_OR_FOLLOWER (6) from the others;
            // never a panic.
            "two batches" | "garbage records" => {
                assert!(
                    *got == answer(b"Ok(2)") || *got == answer(b"Ok(6)"),
                    "{name}: {got}"
                )
            }
            // INVALID_REQUEST (42): the quorum has one log, and decides nothing for another.
            "vote for another log" => assert_eq!(*got, answer(b"Ok(42)"), "{name}"),
            _ => assert_eq!(got, "Closed", "{name}"),
        }
    }
}
