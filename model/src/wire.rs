//! Kafka's framing: a 4-byte big-endian length, then a request or response header and body,
//! encoded by the `kafka-protocol` crate. A broker answers a connection's requests in order: a
//! [`Connection`] sends one at a time and waits for each answer; split into a [`RequestSender`] and
//! a [`ResponseReceiver`], it pipelines, as Kafka's producer does with
//! `max.in.flight.requests.per.connection`.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::codec::Reader;
use crate::fetch_codec::{self, FetchAnswer, FetchQuery, PartitionAnswer};
use crate::net::{ReadHalf, TcpStream, WriteHalf};
use crate::produce_codec::{self, MultiProduce, PartitionProduced, SingleProduce};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
use kafka_protocol::protocol::{Decodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Frames larger than this are refused rather than allocated.
pub const MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug)]
pub enum CallError {
    Io(io::Error),
    Timeout,
    Protocol(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Io(e) => write!(f, "io: {e}"),
            CallError::Timeout => write!(f, "timed out"),
            CallError::Protocol(e) => write!(f, "protocol: {e}"),
        }
    }
}

impl From<io::Error> for CallError {
    fn from(e: io::Error) -> Self {
        CallError::Io(e)
    }
}

/// Reads frames through one buffer: a read takes whatever the stream has (often a whole frame, or
/// several), where reading the length and then the body would cost a read each.
#[derive(Default)]
pub struct FrameReader {
    buf: BytesMut,
}

/// What one read asks the stream for at least; a frame's body raises it.
const READ_CHUNK: usize = 8 * 1024;

impl FrameReader {
    pub async fn next<S: AsyncRead + Unpin>(&mut self, stream: &mut S) -> io::Result<Bytes> {
        loop {
            let mut wanted = 4;
            if self.buf.len() >= 4 {
                let len = u32::from_be_bytes(self.buf[..4].try_into().expect("4 bytes")) as usize;
                if len > MAX_FRAME_BYTES {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("frame of {len} bytes"),
                    ));
                }
                if self.buf.len() >= 4 + len {
                    self.buf.advance(4);
                    return Ok(self.buf.split_to(len).freeze());
                }
                wanted = 4 + len;
            }
            self.buf.reserve((wanted - self.buf.len()).max(READ_CHUNK));
            if stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

pub async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, frame: &[u8]) -> io::Result<()> {
    stream.write_all(frame).await?;
    // madsim sends nothing until a flush.
    stream.flush().await
}

fn protocol<E: std::fmt::Display>(e: E) -> CallError {
    CallError::Protocol(e.to_string())
}

/// The Produce version clients send.
pub const PRODUCE_VERSION: i16 = 9;
/// The Fetch version every fetcher sends: followers, the quorum and consumers.
pub const FETCH_VERSION: i16 = 12;

/// A client connection that sends one request at a time and waits for its answer.
pub struct Connection {
    stream: TcpStream,
    reader: FrameReader,
    framer: Framer,
    pub peer: SocketAddr,
}

/// Frames a client's requests: the header, with the next correlation id, then the body.
struct Framer {
    /// Requests are encoded here, so its capacity is kept from one request to the next.
    out: BytesMut,
    next_correlation_id: i32,
    client_id: String,
}

impl Framer {
    /// Encodes a request header for `key` at `version`, then the body `body` writes, into
    /// `self.out`; returns its correlation id.
    fn frame(
        &mut self,
        key: ApiKey,
        version: i16,
        body: impl FnOnce(&mut BytesMut) -> Result<(), CallError>,
    ) -> Result<i32, CallError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let buf = &mut self.out;
        buf.clear();
        buf.put_u32(0);
        put_request_header(buf, key, version, correlation_id, &self.client_id);
        body(buf)?;
        finish_frame(buf);
        Ok(correlation_id)
    }

    /// Frames a produce request from `produce`'s encoding and writes it to `stream`, waiting at
    /// most `limit` for the stream to take it; returns its correlation id.
    async fn write_produce<S: AsyncWrite + Unpin>(
        &mut self,
        stream: &mut S,
        produce: impl FnOnce(&mut BytesMut, i16),
        limit: Duration,
    ) -> Result<i32, CallError> {
        let correlation_id = self.frame(ApiKey::Produce, PRODUCE_VERSION, |buf| {
            produce(buf, PRODUCE_VERSION);
            Ok(())
        })?;
        crate::deadline::within(limit, write_frame(stream, &self.out))
            .await
            .map_err(|_| CallError::Timeout)??;
        Ok(correlation_id)
    }
}

/// The body of a response frame to `key` at `version`, after its header, which must answer
/// `correlation_id`: the broker answers in order, so any other id means the stream is lost.
fn response_body(
    mut frame: Bytes,
    correlation_id: i32,
    key: ApiKey,
    version: i16,
) -> Result<Bytes, CallError> {
    let response_header_version = key.response_header_version(version);
    let mut r = Reader(&mut frame);
    let answered = r.i32().map_err(CallError::Protocol)?;
    if response_header_version >= 1 {
        r.tagged_fields(true).map_err(CallError::Protocol)?;
    }
    if answered != correlation_id {
        return Err(CallError::Protocol(format!(
            "correlation id {answered} where {correlation_id} was due"
        )));
    }
    Ok(frame)
}

impl Connection {
    pub async fn connect(
        peer: SocketAddr,
        client_id: &str,
        limit: Duration,
    ) -> Result<Self, CallError> {
        let stream = crate::deadline::within(limit, TcpStream::connect(peer))
            .await
            .map_err(|_| CallError::Timeout)??;
        stream.set_nodelay(true)?;
        Ok(Connection {
            stream,
            reader: FrameReader::default(),
            framer: Framer {
                out: BytesMut::new(),
                next_correlation_id: 0,
                client_id: client_id.to_owned(),
            },
            peer,
        })
    }

    /// Splits the connection in two, for two tasks: one writes requests without waiting for the
    /// answers to earlier ones, the other reads the answers, which come in the order the requests
    /// went out.
    pub fn into_pipeline(self) -> (RequestSender, ResponseReceiver) {
        let (read, write) = self.stream.into_split();
        let sender = RequestSender {
            stream: write,
            framer: self.framer,
            peer: self.peer,
        };
        let receiver = ResponseReceiver {
            stream: read,
            reader: self.reader,
        };
        (sender, receiver)
    }

    /// Sends a produce that gets no answer (acks=0).
    pub async fn produce_unanswered(
        &mut self,
        produce: &SingleProduce<'_>,
        limit: Duration,
    ) -> Result<(), CallError> {
        let encode = |buf: &mut BytesMut, version| produce.encode(buf, version);
        (self
            .framer
            .write_produce(&mut self.stream, encode, limit)
            .await)
            .map(drop)
    }

    /// Sends a produce and waits at most `limit` for the answer: the partition's error code and
    /// the batch's base offset, or `None` when the answer names no partition.
    pub async fn produce(
        &mut self,
        produce: &SingleProduce<'_>,
        limit: Duration,
    ) -> Result<Option<(i16, i64)>, CallError> {
        let encode = |buf: &mut BytesMut| produce.encode(buf, PRODUCE_VERSION);
        self.call_by_hand(
            ApiKey::Produce,
            PRODUCE_VERSION,
            limit,
            encode,
            produce_codec::decode_single,
        )
        .await
    }

    /// Sends a request its module writes by hand (`encode`) and reads its answer the same way
    /// (`decode`); after an error the connection must be dropped, as for `call`.
    async fn call_by_hand<T>(
        &mut self,
        key: ApiKey,
        version: i16,
        limit: Duration,
        encode: impl FnOnce(&mut BytesMut),
        decode: impl FnOnce(&mut Bytes, i16) -> Result<T, String>,
    ) -> Result<T, CallError> {
        let correlation_id = self.framer.frame(key, version, |buf| {
            encode(buf);
            Ok(())
        })?;
        let mut body = self.exchange(correlation_id, key, version, limit).await?;
        decode(&mut body, version).map_err(CallError::Protocol)
    }

    /// Sends `request` at `version` and waits at most `limit` for its response. After an error the
    /// connection is in an unknown state and must be dropped.
    pub async fn call<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        limit: Duration,
    ) -> Result<R::Response, CallError> {
        let key = api_key(R::KEY)?;
        let correlation_id = self.framer.frame(key, version, |buf| {
            request.encode(buf, version).map_err(protocol)
        })?;
        let mut body = self.exchange(correlation_id, key, version, limit).await?;
        R::Response::decode(&mut body, version).map_err(protocol)
    }

    /// Sends a fetch and waits at most `limit` for the answer, read into `answer`; a topic named
    /// `known` shares that name rather than copying it (an incremental fetch may name none of its
    /// partitions). After an error the connection must be dropped, as for `call`.
    pub async fn fetch(
        &mut self,
        query: &FetchQuery,
        known: Option<&std::sync::Arc<str>>,
        answer: &mut FetchAnswer,
        limit: Duration,
    ) -> Result<(), CallError> {
        let known = known.or(query.partitions.first().map(|p| &p.tp.topic));
        self.call_by_hand(
            ApiKey::Fetch,
            FETCH_VERSION,
            limit,
            |buf| query.encode(buf, FETCH_VERSION),
            |body, version| fetch_codec::decode_response(body, version, known, answer),
        )
        .await
    }

    /// Sends a fetch of one partition, outside any session; its answer, or `None` when the answer
    /// names no partition.
    pub async fn fetch_one(
        &mut self,
        query: &FetchQuery,
        limit: Duration,
    ) -> Result<Option<PartitionAnswer>, CallError> {
        let mut answer = FetchAnswer::default();
        self.fetch(query, None, &mut answer, limit).await?;
        Ok(answer.partitions.into_iter().next().map(|(_, a)| a))
    }

    /// Sends the request framed in `self.out` and waits at most `limit` for the response to
    /// `correlation_id`; returns its body, after the response header.
    async fn exchange(
        &mut self,
        correlation_id: i32,
        key: ApiKey,
        version: i16,
        limit: Duration,
    ) -> Result<Bytes, CallError> {
        let exchange = async {
            write_frame(&mut self.stream, &self.framer.out).await?;
            self.reader.next(&mut self.stream).await
        };
        let frame = crate::deadline::within(limit, exchange)
            .await
            .map_err(|_| CallError::Timeout)??;
        response_body(frame, correlation_id, key, version)
    }
}

/// One request on a connection of its own, as brokers ask one another now and then: connects
/// to `peer` within `connect_limit`, sends `request` at `version` and waits at most
/// `call_limit` for the answer; the connection goes with it.
pub async fn call_once<R: Request>(
    peer: SocketAddr,
    client_id: &str,
    request: &R,
    version: i16,
    connect_limit: Duration,
    call_limit: Duration,
) -> Result<R::Response, CallError> {
    let mut conn = Connection::connect(peer, client_id, connect_limit).await?;
    conn.call(request, version, call_limit).await
}

/// The writing half of a pipelined connection (see [`Connection::into_pipeline`]).
pub struct RequestSender {
    stream: WriteHalf,
    framer: Framer,
    pub peer: SocketAddr,
}

impl RequestSender {
    /// Writes a produce request, waiting at most `limit` for the stream to take it but not for
    /// the answer; returns its correlation id, for [`ResponseReceiver::produce_answers`]. With
    /// acks=0 no answer comes. After an error the connection must be dropped.
    pub async fn send_produce(
        &mut self,
        produce: &MultiProduce<'_>,
        limit: Duration,
    ) -> Result<i32, CallError> {
        let encode = |buf: &mut BytesMut, version| produce.encode(buf, version);
        self.framer
            .write_produce(&mut self.stream, encode, limit)
            .await
    }
}

/// The reading half of a pipelined connection (see [`Connection::into_pipeline`]).
pub struct ResponseReceiver {
    stream: ReadHalf,
    reader: FrameReader,
}

impl ResponseReceiver {
    /// Reads the next answer, which must be the one to the produce request `correlation_id` (the
    /// oldest unanswered), and returns every partition's answer in it. The caller bounds the wait.
    /// After an error the connection must be dropped.
    pub async fn produce_answers(
        &mut self,
        correlation_id: i32,
    ) -> Result<Vec<PartitionProduced>, CallError> {
        let frame = self.reader.next(&mut self.stream).await?;
        let mut body = response_body(frame, correlation_id, ApiKey::Produce, PRODUCE_VERSION)?;
        produce_codec::decode_all(&mut body, PRODUCE_VERSION).map_err(CallError::Protocol)
    }
}

fn api_key(key: i16) -> Result<ApiKey, CallError> {
    ApiKey::try_from(key).map_err(|_| CallError::Protocol(format!("api key {key}")))
}

/// Writes a frame's length into its first four bytes, left for it, once the rest is written.
pub fn finish_frame(buf: &mut BytesMut) {
    let len = (buf.len() - 4) as u32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
}

/// A request the server cannot read; `header` when at least the header could be read.
#[derive(Debug)]
pub struct Undecodable {
    pub header: Option<RequestHeader>,
    pub reason: String,
}

/// Decodes a request frame's header on the server side; returns it and the body after it.
pub fn decode_request_header(mut frame: Bytes) -> Result<(RequestHeader, Bytes), Undecodable> {
    let fail = |reason: String| Undecodable {
        header: None,
        reason,
    };
    let mut r = Reader(&mut frame);
    let key = r.i16().map_err(fail)?;
    let version = r.i16().map_err(fail)?;
    let api_key = ApiKey::try_from(key).map_err(|_| fail(format!("unknown api key {key}")))?;
    let header_version = api_key.request_header_version(version);
    if !(1..=2).contains(&header_version) {
        return Err(fail(format!("request header version {header_version}")));
    }
    let correlation_id = r.i32().map_err(fail)?;
    let client_id = match r.nullable_size(false, 2).map_err(fail)? {
        None => None,
        Some(n) => {
            r.need(n).map_err(fail)?;
            let id = r.0.split_to(n);
            Some(StrBytes::from_utf8(id).map_err(|e| fail(format!("client id: {e}")))?)
        }
    };
    if header_version >= 2 {
        r.tagged_fields(true).map_err(fail)?;
    }
    let mut header = RequestHeader::default();
    header.request_api_key = key;
    header.request_api_version = version;
    header.correlation_id = correlation_id;
    header.client_id = client_id;
    Ok((header, frame))
}

/// Writes a request header as `kafka-protocol` does: version 1, or 2 with (no) tagged fields.
fn put_request_header(
    buf: &mut BytesMut,
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    client_id: &str,
) {
    buf.put_i16(key as i16);
    buf.put_i16(version);
    buf.put_i32(correlation_id);
    buf.put_i16(client_id.len() as i16);
    buf.put_slice(client_id.as_bytes());
    if key.request_header_version(version) >= 2 {
        buf.put_u8(0);
    }
}

/// Decodes a request's body on the server side, after its header.
pub fn decode_request(
    header: RequestHeader,
    mut body: Bytes,
) -> Result<(RequestHeader, RequestKind), Undecodable> {
    let api_key = match ApiKey::try_from(header.request_api_key) {
        Ok(key) => key,
        Err(_) => {
            return Err(Undecodable {
                reason: format!("unknown api key {}", header.request_api_key),
                header: Some(header),
            })
        }
    };
    // Bytes left over after the request are ignored, as Kafka's brokers ignore them: librdkafka
    // 2.16 sends three after a Metadata v12 request for all topics.
    match RequestKind::decode(api_key, &mut body, header.request_api_version) {
        Ok(request) => Ok((header, request)),
        Err(e) => Err(Undecodable {
            reason: e.to_string(),
            header: Some(header),
        }),
    }
}

/// Starts a response frame for `header`'s request in `buf`, which it clears first: the length,
/// left for [`finish_frame`], and the response header.
pub fn start_response(header: &RequestHeader, buf: &mut BytesMut) -> Result<(), String> {
    let api_key =
        ApiKey::try_from(header.request_api_key).map_err(|_| "unknown api key".to_owned())?;
    buf.clear();
    buf.put_u32(0);
    buf.put_i32(header.correlation_id);
    if api_key.response_header_version(header.request_api_version) >= 1 {
        buf.put_u8(0); // no tagged fields
    }
    Ok(())
}

/// Encodes a response frame for `header`'s request into `buf`, which it clears first.
pub fn encode_response(
    header: &RequestHeader,
    response: &ResponseKind,
    buf: &mut BytesMut,
) -> Result<(), String> {
    start_response(header, buf)?;
    response
        .encode(buf, header.request_api_version)
        .map_err(|e| e.to_string())?;
    finish_frame(buf);
    Ok(())
}

#[cfg(test)]
mod tests {
    //! Headers are written and read by hand, held to `kafka-protocol`'s bytes.

    use super::*;
    use kafka_protocol::messages::ResponseHeader;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn headers_are_written_and_read_as_kafka_protocol_does() {
        let cases = [
            (ApiKey::Produce, 3),
            (ApiKey::Produce, 9),
            (ApiKey::Fetch, 4),
            (ApiKey::Fetch, 12),
            (ApiKey::Metadata, 12),
            (ApiKey::ApiVersions, 3),
        ];
        for (key, version) in cases {
            let mut ours = BytesMut::new();
            put_request_header(&mut ours, key, version, 77, "replica-2");
            let mut header = RequestHeader::default();
            header.request_api_key = key as i16;
            header.request_api_version = version;
            header.correlation_id = 77;
            header.client_id = Some(StrBytes::from_static_str("replica-2"));
            let mut theirs = BytesMut::new();
            header
                .encode(&mut theirs, key.request_header_version(version))
                .expect("encodes");
            assert_eq!(ours, theirs, "{key:?} v{version}");
            ours.put_slice(b"body");
            let (read, body) = decode_request_header(ours.freeze()).expect("reads");
            assert_eq!(read, header, "{key:?} v{version}");
            assert_eq!(&body[..], b"body");

            let mut ours = BytesMut::new();
            start_response(&header, &mut ours).expect("known key");
            let mut response = ResponseHeader::default();
            response.correlation_id = 77;
            let mut theirs = BytesMut::new();
            theirs.put_u32(0);
            response
                .encode(&mut theirs, key.response_header_version(version))
                .expect("encodes");
            assert_eq!(ours, theirs, "{key:?} v{version}");
        }
    }

    #[test]
    fn a_short_or_unknown_header_is_refused() {
        for frame in [
            &b""[..],
            &[0, 1],
            &[0, 1, 0, 12, 0],
            &[0x7f, 0, 0, 1, 0, 0, 0, 0],
        ] {
            assert!(decode_request_header(Bytes::copy_from_slice(frame)).is_err());
        }
        // A client id that runs past the frame.
        let frame = [0, 1, 0, 12, 0, 0, 0, 1, 0, 9, b'a'];
        assert!(decode_request_header(Bytes::copy_from_slice(&frame)).is_err());
    }
}
