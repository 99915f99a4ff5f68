//! The config and cluster admin APIs over a real connection: DescribeConfigs,
//! AlterConfigs, IncrementalAlterConfigs and DescribeCluster at low and high versions,
//! their error codes and `validate_only`.

mod common;

use broker_embedded::{BrokerConfig, NewTopic, TopicConfig};
use broker_wire::WireConfig;
use common::{request, start};
use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request as inc;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, ApiKey, DescribeClusterRequest,
    DescribeClusterResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use tokio::net::TcpStream;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

async fn describe(
    stream: &mut TcpStream,
    version: i16,
    resource_type: i8,
    name: &str,
    keys: Option<Vec<&str>>,
) -> DescribeConfigsResult {
    let req = DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configuration_keys(keys.map(|k| k.into_iter().map(s).collect()))])
        .with_include_synonyms(true);
    let r: DescribeConfigsResponse = request(stream, ApiKey::DescribeConfigs, version, &req).await;
    r.results.into_iter().next().unwrap()
}

fn value(result: &DescribeConfigsResult, key: &str) -> (String, i8) {
    let c = result
        .configs
        .iter()
        .find(|c| c.name.as_str() == key)
        .unwrap_or_else(|| panic!("{key} missing"));
    (c.value.as_deref().unwrap_or("").to_owned(), c.config_source)
}

#[tokio::test]
async fn describe_configs_lists_every_kafka_topic_config_with_its_source() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    broker
        .create_topic(NewTopic::new("t", 1).config("retention.ms", "1000"))
        .await
        .unwrap();
    for version in [1i16, 4] {
        let r = describe(&mut stream, version, TOPIC, "t", None).await;
        assert_eq!(r.error_code, 0);
        for key in [
            "cleanup.policy",
            "compression.type",
            "retention.bytes",
            "segment.bytes",
            "segment.ms",
            "max.message.bytes",
            "message.timestamp.type",
            "min.insync.replicas",
            "min.compaction.lag.ms",
            "delete.retention.ms",
            "unclean.leader.election.enable",
        ] {
            assert_eq!(value(&r, key).1, 5, "{key} is a default");
        }
        assert_eq!(value(&r, "retention.ms"), ("1000".to_owned(), 1));
        assert_eq!(value(&r, "compression.type").0, "producer");
        assert_eq!(value(&r, "min.insync.replicas").0, "1");
        assert_eq!(value(&r, "message.timestamp.after.max.ms").0, "3600000");
        let retention = r
            .configs
            .iter()
            .find(|c| c.name.as_str() == "retention.ms")
            .unwrap();
        assert!(!retention.read_only && !retention.is_sensitive);
        assert_eq!(retention.synonyms[0].source, 1);
        assert_eq!(retention.synonyms[1].name.as_str(), "log.retention.ms");
        let expected_type = if version >= 3 { 5 } else { 0 };
        assert_eq!(retention.config_type, expected_type, "LONG from v3");
    }
    // A key list: those keys only.
    let r = describe(
        &mut stream,
        2,
        TOPIC,
        "t",
        Some(vec!["cleanup.policy", "nope"]),
    )
    .await;
    let names: Vec<&str> = r.configs.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, vec!["cleanup.policy"]);
    // Unknown and invalid topics.
    assert_eq!(
        describe(&mut stream, 4, TOPIC, "nope", None)
            .await
            .error_code,
        3
    );
    assert_eq!(
        describe(&mut stream, 4, TOPIC, "a b", None)
            .await
            .error_code,
        17
    );
}

#[tokio::test]
async fn describe_configs_of_the_broker() {
    let config = BrokerConfig {
        num_partitions: 3,
        default_topic_config: TopicConfig::from_pairs([("segment.bytes", "4096")]).unwrap(),
        ..BrokerConfig::default()
    };
    let (_broker, addr) = start(config, WireConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let r = describe(&mut stream, 4, BROKER, "0", None).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(value(&r, "num.partitions"), ("3".to_owned(), 4));
    assert_eq!(
        value(&r, "auto.create.topics.enable"),
        ("true".to_owned(), 5)
    );
    assert_eq!(value(&r, "log.retention.ms"), ("604800000".to_owned(), 5));
    assert_eq!(value(&r, "log.segment.bytes"), ("4096".to_owned(), 4));
    assert!(r.configs.iter().all(|c| c.read_only));
    // A topic created without settings shows the broker's default as a static broker config.
    _broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
    let t = describe(&mut stream, 4, TOPIC, "t", Some(vec!["segment.bytes"])).await;
    assert_eq!(value(&t, "segment.bytes"), ("4096".to_owned(), 4));
    // The cluster-wide defaults: none. Another broker id: refused.
    let r = describe(&mut stream, 4, BROKER, "", None).await;
    assert_eq!((r.error_code, r.configs.len()), (0, 0));
    assert_eq!(
        describe(&mut stream, 4, BROKER, "7", None).await.error_code,
        42
    );
    assert_eq!(describe(&mut stream, 4, 8, "0", None).await.error_code, 42);
}

fn alterable(key: &str, value: &str) -> AlterableConfig {
    AlterableConfig::default()
        .with_name(s(key))
        .with_value(Some(s(value)))
}

async fn alter(
    stream: &mut TcpStream,
    version: i16,
    resource_type: i8,
    name: &str,
    configs: Vec<AlterableConfig>,
    validate_only: bool,
) -> (i16, String) {
    let req = AlterConfigsRequest::default()
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(configs)])
        .with_validate_only(validate_only);
    let r: AlterConfigsResponse = request(stream, ApiKey::AlterConfigs, version, &req).await;
    let r = &r.responses[0];
    (
        r.error_code,
        r.error_message.as_deref().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn alter_configs_replaces_the_whole_topic_config() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    broker
        .create_topic(NewTopic::new("t", 1).config("retention.ms", "1000"))
        .await
        .unwrap();
    // validate_only: checked, not applied.
    let ok = alter(
        &mut stream,
        0,
        TOPIC,
        "t",
        vec![alterable("segment.ms", "5000")],
        true,
    )
    .await;
    assert_eq!(ok.0, 0);
    assert_eq!(
        broker.describe_topic("t").await.unwrap().config.segment_ms,
        604_800_000
    );
    // The given configs become the topic's; retention.ms goes back to its default.
    let ok = alter(
        &mut stream,
        2,
        TOPIC,
        "t",
        vec![
            alterable("segment.ms", "5000"),
            alterable("min.insync.replicas", "2"),
        ],
        false,
    )
    .await;
    assert_eq!(ok.0, 0, "{}", ok.1);
    let config = broker.describe_topic("t").await.unwrap().config;
    assert_eq!(config.segment_ms, 5000);
    assert_eq!(config.retention_ms, Some(604_800_000));
    assert_eq!(
        config
            .unenforced
            .get("min.insync.replicas")
            .map(String::as_str),
        Some("2")
    );
    // Errors: a bad value, an unknown key, a duplicate key, an unknown topic, the broker.
    let (code, message) = alter(
        &mut stream,
        1,
        TOPIC,
        "t",
        vec![alterable("retention.ms", "x")],
        false,
    )
    .await;
    assert_eq!(
        (code, message.as_str()),
        (
            40,
            "Invalid value x for configuration retention.ms: not an integer"
        )
    );
    let (code, message) = alter(
        &mut stream,
        1,
        TOPIC,
        "t",
        vec![alterable("no.such", "1")],
        false,
    )
    .await;
    assert_eq!(
        (code, message.as_str()),
        (40, "Unknown topic config name: no.such")
    );
    let dup = vec![alterable("segment.ms", "1"), alterable("segment.ms", "2")];
    assert_eq!(alter(&mut stream, 1, TOPIC, "t", dup, false).await.0, 42);
    assert_eq!(
        alter(&mut stream, 1, TOPIC, "nope", vec![], false).await.0,
        3
    );
    let (code, message) = alter(
        &mut stream,
        1,
        BROKER,
        "0",
        vec![alterable("num.partitions", "4")],
        false,
    )
    .await;
    assert_eq!(code, 42);
    assert!(message.starts_with("Cannot update these configs dynamically: Set(num.partitions)"));
    // Nothing of the refused changes was applied.
    assert_eq!(
        broker.describe_topic("t").await.unwrap().config.segment_ms,
        5000
    );
}

fn op(key: &str, operation: i8, value: Option<&str>) -> inc::AlterableConfig {
    inc::AlterableConfig::default()
        .with_name(s(key))
        .with_config_operation(operation)
        .with_value(value.map(s))
}

async fn incremental(
    stream: &mut TcpStream,
    version: i16,
    resource_type: i8,
    name: &str,
    configs: Vec<inc::AlterableConfig>,
    validate_only: bool,
) -> (i16, String) {
    let req = IncrementalAlterConfigsRequest::default()
        .with_resources(vec![inc::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(configs)])
        .with_validate_only(validate_only);
    let r: IncrementalAlterConfigsResponse =
        request(stream, ApiKey::IncrementalAlterConfigs, version, &req).await;
    let r = &r.responses[0];
    (
        r.error_code,
        r.error_message.as_deref().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn incremental_alter_configs_sets_deletes_appends_and_subtracts() {
    let (broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    broker
        .create_topic(NewTopic::new("t", 1).config("retention.ms", "1000"))
        .await
        .unwrap();
    const SET: i8 = 0;
    const DELETE: i8 = 1;
    const APPEND: i8 = 2;
    const SUBTRACT: i8 = 3;
    let config = || async { broker.describe_topic("t").await.unwrap().config };
    let r = incremental(
        &mut stream,
        0,
        TOPIC,
        "t",
        vec![
            op("segment.ms", SET, Some("7000")),
            op("cleanup.policy", APPEND, Some("compact")),
        ],
        true,
    )
    .await;
    assert_eq!(r.0, 0);
    assert_eq!(config().await.segment_ms, 604_800_000, "validate only");
    let r = incremental(
        &mut stream,
        1,
        TOPIC,
        "t",
        vec![
            op("segment.ms", SET, Some("7000")),
            op("cleanup.policy", APPEND, Some("compact")),
            op("retention.ms", DELETE, None),
        ],
        false,
    )
    .await;
    assert_eq!(r.0, 0, "{}", r.1);
    let c = config().await;
    assert_eq!(c.segment_ms, 7000);
    assert_eq!(c.cleanup_policy.to_string(), "compact,delete");
    assert_eq!(c.retention_ms, Some(604_800_000));
    let r = incremental(
        &mut stream,
        1,
        TOPIC,
        "t",
        vec![op("cleanup.policy", SUBTRACT, Some("delete"))],
        false,
    )
    .await;
    assert_eq!(r.0, 0);
    assert_eq!(config().await.cleanup_policy.to_string(), "compact");
    // APPEND to a non-list config: INVALID_REQUEST, in Kafka's words.
    let (code, message) = incremental(
        &mut stream,
        1,
        TOPIC,
        "t",
        vec![op("retention.ms", APPEND, Some("1"))],
        false,
    )
    .await;
    assert_eq!(
        (code, message.as_str()),
        (
            42,
            "Config value append is not allowed for config key: retention.ms"
        )
    );
    // Subtracting every policy leaves an invalid value: nothing applied.
    let (code, _) = incremental(
        &mut stream,
        1,
        TOPIC,
        "t",
        vec![
            op("segment.ms", SET, Some("9000")),
            op("cleanup.policy", SUBTRACT, Some("compact")),
        ],
        false,
    )
    .await;
    assert_eq!(code, 40);
    assert_eq!(config().await.segment_ms, 7000);
    let (code, _) = incremental(
        &mut stream,
        0,
        BROKER,
        "0",
        vec![op("log.retention.ms", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, 42);
    let (code, _) = incremental(
        &mut stream,
        0,
        TOPIC,
        "nope",
        vec![op("segment.ms", SET, Some("1"))],
        false,
    )
    .await;
    assert_eq!(code, 3);
    // DescribeConfigs sees the changes.
    let r = describe(
        &mut stream,
        4,
        TOPIC,
        "t",
        Some(vec!["segment.ms", "retention.ms"]),
    )
    .await;
    assert_eq!(value(&r, "segment.ms"), ("7000".to_owned(), 1));
    assert_eq!(value(&r, "retention.ms"), ("604800000".to_owned(), 5));
}

#[tokio::test]
async fn describe_cluster_names_the_one_broker() {
    let (_broker, addr) = start(BrokerConfig::default(), WireConfig::default()).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    for version in [0i16, 1, 2] {
        let r: DescribeClusterResponse = request(
            &mut stream,
            ApiKey::DescribeCluster,
            version,
            &DescribeClusterRequest::default(),
        )
        .await;
        assert_eq!(r.error_code, 0);
        assert_eq!(r.cluster_id.as_str(), "rill-embedded");
        assert_eq!(r.controller_id.0, 0);
        assert_eq!(r.brokers.len(), 1);
        assert_eq!(r.brokers[0].broker_id.0, 0);
        assert_eq!(r.brokers[0].port, i32::from(addr.port()));
        assert_eq!(r.cluster_authorized_operations, i32::MIN);
    }
    let req = DescribeClusterRequest::default().with_include_cluster_authorized_operations(true);
    let r: DescribeClusterResponse = request(&mut stream, ApiKey::DescribeCluster, 2, &req).await;
    assert!(r.cluster_authorized_operations > 0);
    assert_ne!(
        r.cluster_authorized_operations & (1 << 10),
        0,
        "DESCRIBE_CONFIGS"
    );
    let req = DescribeClusterRequest::default().with_endpoint_type(2);
    let r: DescribeClusterResponse = request(&mut stream, ApiKey::DescribeCluster, 1, &req).await;
    assert_eq!(r.error_code, 115);
}
