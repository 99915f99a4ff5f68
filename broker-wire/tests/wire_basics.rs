//! The server over a real TCP connection: ApiVersions and Metadata as a client asks for them,
//! and hostile frames that close the connection without hurting the server.

mod common;

use std::time::Duration;

use broker_embedded::{BrokerConfig, NewTopic};
use broker_wire::WireConfig;
use bytes::{Buf, BytesMut};
use common::{call, read_response, send_raw, start};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
    ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

#[tokio::test]
async fn api_versions_lists_what_is_served_and_answers_unknown_versions_at_v0() {
    let (_broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for version in 0..=4 {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("test"))
            .with_client_software_version(StrBytes::from_static_str("1"));
        let mut body = call(
            &mut stream,
            ApiKey::ApiVersions,
            version,
            version as i32,
            &request,
        )
        .await;
        let response = ApiVersionsResponse::decode(&mut body, version).unwrap();
        assert_eq!(response.error_code, 0);
        assert!(
            !body.has_remaining(),
            "v{version}: the whole response was read"
        );
        let served: Vec<(i16, i16, i16)> = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, k.min_version, k.max_version))
            .collect();
        assert!(
            served.contains(&(ApiKey::ApiVersions as i16, 0, 4)),
            "{served:?}"
        );
        assert!(
            served.contains(&(ApiKey::Metadata as i16, 0, 13)),
            "{served:?}"
        );
    }
    // A version the server does not serve: a v0 answer with UNSUPPORTED_VERSION (35).
    let mut header = BytesMut::new();
    header.extend_from_slice(&(ApiKey::ApiVersions as i16).to_be_bytes());
    header.extend_from_slice(&99i16.to_be_bytes());
    header.extend_from_slice(&42i32.to_be_bytes());
    header.extend_from_slice(&(-1i16).to_be_bytes());
    send_raw(&mut stream, &header).await;
    let mut body = read_response(&mut stream).await.unwrap();
    assert_eq!(
        ResponseHeader::decode(&mut body, 0).unwrap().correlation_id,
        42
    );
    let response = ApiVersionsResponse::decode(&mut body, 0).unwrap();
    assert_eq!(response.error_code, 35);
    let listed: Vec<(i16, i16, i16)> = response
        .api_keys
        .iter()
        .map(|k| (k.api_key, k.min_version, k.max_version))
        .collect();
    assert_eq!(listed, vec![(ApiKey::ApiVersions as i16, 0, 4)]);
}

#[tokio::test]
async fn metadata_names_the_one_broker_every_topic_and_creates_on_request() {
    let config = BrokerConfig {
        num_partitions: 2,
        ..BrokerConfig::default()
    };
    let (broker, addr) = start(config, WireConfig::default()).await;
    broker
        .create_topic(NewTopic::new("orders", 3))
        .await
        .unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for version in [0, 1, 4, 9, 12] {
        // Every topic: null (an empty list at v0).
        let request = MetadataRequest::default().with_topics(if version == 0 {
            Some(Vec::new())
        } else {
            None
        });
        let mut body = call(&mut stream, ApiKey::Metadata, version, 7, &request).await;
        let response = MetadataResponse::decode(&mut body, version).unwrap();
        assert!(!body.has_remaining());
        assert_eq!(response.brokers.len(), 1);
        assert_eq!(response.brokers[0].node_id.0, 0);
        assert_eq!(response.brokers[0].port, i32::from(addr.port()));
        let orders = response
            .topics
            .iter()
            .find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("orders"))
            .unwrap_or_else(|| panic!("v{version}: {response:?}"));
        assert_eq!(orders.error_code, 0);
        assert_eq!(orders.partitions.len(), 3);
        assert!(orders.partitions.iter().all(|p| p.leader_id.0 == 0));
    }
    // An unknown topic is created with num.partitions when the client allows it...
    let ask = |name: &'static str, allow: bool| {
        MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str(name))))]))
            .with_allow_auto_topic_creation(allow)
    };
    let mut body = call(&mut stream, ApiKey::Metadata, 9, 8, &ask("created", true)).await;
    let response = MetadataResponse::decode(&mut body, 9).unwrap();
    assert_eq!(response.topics[0].error_code, 0);
    assert_eq!(response.topics[0].partitions.len(), 2);
    assert_eq!(broker.partition_count("created").await.unwrap(), 2);
    // ...and is UNKNOWN_TOPIC_OR_PARTITION (3) when it does not; a bad name is
    // INVALID_TOPIC_EXCEPTION (17).
    let mut body = call(&mut stream, ApiKey::Metadata, 9, 9, &ask("absent", false)).await;
    assert_eq!(
        MetadataResponse::decode(&mut body, 9).unwrap().topics[0].error_code,
        3
    );
    let mut body = call(
        &mut stream,
        ApiKey::Metadata,
        9,
        10,
        &ask("bad name!", true),
    )
    .await;
    assert_eq!(
        MetadataResponse::decode(&mut body, 9).unwrap().topics[0].error_code,
        17
    );
    assert!(broker.partition_count("absent").await.is_err());
}

#[tokio::test]
async fn hostile_frames_close_their_connection_and_nothing_else() {
    let wire = WireConfig {
        socket_request_max_bytes: 1024,
        ..WireConfig::default()
    };
    let (_broker, addr) = start(BrokerConfig::default(), wire).await;
    let frames: Vec<(&str, Vec<u8>)> = vec![
        (
            "a size above socket.request.max.bytes",
            (1i32 << 30).to_be_bytes().to_vec(),
        ),
        ("a negative size", (-5i32).to_be_bytes().to_vec()),
        (
            "a frame shorter than a header",
            [&4i32.to_be_bytes()[..], &[0, 18, 0, 3]].concat(),
        ),
        (
            "an unknown API key",
            [
                &10i32.to_be_bytes()[..],
                &[0x7f, 0x00, 0, 1, 0, 0, 0, 1, 0, 0],
            ]
            .concat(),
        ),
        (
            "an API that is not served",
            [&10i32.to_be_bytes()[..], &[0, 0, 0, 9, 0, 0, 0, 1, 0, 0]].concat(),
        ),
        (
            "garbage after a valid header",
            [
                &12i32.to_be_bytes()[..],
                &[0, 3, 0, 9, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff],
            ]
            .concat(),
        ),
    ];
    for (what, frame) in frames {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&frame).await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(10), read_response(&mut stream))
            .await
            .expect("the server answers or closes at once");
        assert!(closed.is_none(), "{what}: the connection was not closed");
    }
    // The server still serves.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut body = call(
        &mut stream,
        ApiKey::ApiVersions,
        3,
        1,
        &ApiVersionsRequest::default(),
    )
    .await;
    assert_eq!(
        ApiVersionsResponse::decode(&mut body, 3)
            .unwrap()
            .error_code,
        0
    );
}
