//! A client for the tests: a server on an ephemeral port, and requests sent and answered
//! with `kafka-protocol`'s client side.

#![allow(dead_code, reason = "each test file uses some of these")]

pub(crate) mod clients;

use broker_embedded::{Broker, BrokerConfig};
use broker_wire::{Server, WireConfig};
use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An in-memory broker served on `127.0.0.1:0`: the broker and the address.
pub(crate) async fn start(
    config: BrokerConfig,
    wire: WireConfig,
) -> (Broker, std::net::SocketAddr) {
    let broker = Broker::in_memory_with(config).await.unwrap();
    serve(broker, wire).await
}

/// Serves `broker` on `127.0.0.1:0`.
pub(crate) async fn serve(broker: Broker, wire: WireConfig) -> (Broker, std::net::SocketAddr) {
    let server = Server::bind(
        broker.clone(),
        WireConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..wire
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    tokio::spawn(server.run(std::future::pending()));
    (broker, addr)
}

/// Writes one frame.
pub(crate) async fn send_raw(stream: &mut TcpStream, body: &[u8]) {
    stream
        .write_all(&(body.len() as i32).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(body).await.unwrap();
}

/// Reads one frame; `None` when the server closed the connection.
pub(crate) async fn read_response(stream: &mut TcpStream) -> Option<Bytes> {
    let mut size = [0u8; 4];
    if stream.read_exact(&mut size).await.is_err() {
        return None;
    }
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut body).await.ok()?;
    Some(Bytes::from(body))
}

/// Encodes `request` as `key` at `version` with its header.
pub(crate) fn encode_request<Req: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &Req,
) -> BytesMut {
    let mut buf = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(StrBytes::from_static_str("wire-test")))
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    request.encode(&mut buf, version).unwrap();
    buf
}

/// Sends `request` as `key` at `version`, checks the response's correlation id and returns
/// the response body.
pub(crate) async fn call<Req: Encodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    request: &Req,
) -> Bytes {
    let buf = encode_request(key, version, correlation_id, request);
    send_raw(stream, &buf).await;
    let mut response = read_response(stream).await.expect("a response");
    let header =
        ResponseHeader::decode(&mut response, key.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, correlation_id);
    response
}

/// [`call`], decoding the response as `Resp`, all of it.
pub(crate) async fn request<Req: Encodable, Resp: Decodable>(
    stream: &mut TcpStream,
    key: ApiKey,
    version: i16,
    request: &Req,
) -> Resp {
    use bytes::Buf;
    let mut body = call(stream, key, version, 1, request).await;
    let response = Resp::decode(&mut body, version).unwrap();
    assert!(
        !body.has_remaining(),
        "{key:?} v{version}: {} bytes left after the response",
        body.remaining()
    );
    response
}
