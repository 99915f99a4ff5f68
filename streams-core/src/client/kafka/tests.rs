//! The Kafka backend against the wire protocol server, in-process: offsets
//! of a changelog with an open transaction, a restore consumer reaching
//! the end past transaction markers, the producer's placement of keyed
//! records, a send larger than the producer's queue and a failed delivery,
//! and the checks of client settings.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use broker_embedded::partitioner::partition_for_key;
use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, Consumer, ConsumerConfig, NewTopic as BrokerNewTopic,
};
use broker_wire::{Server, WireConfig};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::client::{
    ClientSupplier, ConsumerSettings, Isolation, NewTopic, OutRecord, ProducerSettings,
    TopicPartition, Watermarks,
};
use crate::config::StreamsConfig;
use crate::error::{ClientErrorKind, StreamsError};
use crate::record::Header;

use super::KafkaClients;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A broker served on an ephemeral port, with the runtime serving it.
struct Served {
    runtime: tokio::runtime::Runtime,
    broker: Broker,
    addr: String,
}

fn serve() -> Served {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = runtime
        .block_on(Broker::in_memory_with(BrokerConfig {
            group_initial_rebalance_delay_ms: 0,
            ..BrokerConfig::default()
        }))
        .unwrap();
    let server = runtime
        .block_on(Server::bind(
            broker.clone(),
            WireConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                ..WireConfig::default()
            },
        ))
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    runtime.spawn(server.run(std::future::pending()));
    Served {
        runtime,
        broker,
        addr,
    }
}

fn clients(addr: &str, extra: &[(&str, &str)]) -> KafkaClients {
    let mut config = StreamsConfig::new("kafka-backend").with_bootstrap_servers(addr);
    for (key, value) in extra {
        config.set(key, value).unwrap();
    }
    KafkaClients::new(&config).unwrap()
}

fn restore_settings(isolation: Isolation) -> ConsumerSettings {
    ConsumerSettings {
        client_id: "kafka-backend-restore".to_owned(),
        group_id: None,
        isolation,
        session_timeout_ms: 10_000,
        heartbeat_interval_ms: 1_000,
        max_poll_records: 100,
        max_partition_fetch_bytes: 1024 * 1024,
        background_fetch: false,
    }
}

fn transactional_producer(addr: &str, id: &str) -> BaseProducer {
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("transactional.id", id)
        .set("linger.ms", "1")
        .create()
        .unwrap();
    producer.init_transactions(TIMEOUT).unwrap();
    producer
}

fn send(producer: &BaseProducer, topic: &str, value: &str) {
    producer
        .send(BaseRecord::to(topic).key("k").payload(value).partition(0))
        .unwrap();
}

#[test]
fn watermarks_show_the_last_stable_offset_of_an_open_transaction() {
    let served = serve();
    served
        .runtime
        .block_on(
            served
                .broker
                .create_topic(BrokerNewTopic::new("changelog", 1)),
        )
        .unwrap();
    let producer = transactional_producer(&served.addr, "wm");
    // A committed transaction: 3 records and a marker.
    producer.begin_transaction().unwrap();
    for i in 0..3 {
        send(&producer, "changelog", &format!("c{i}"));
    }
    producer.commit_transaction(TIMEOUT).unwrap();
    // An open one: 2 records from offset 4.
    producer.begin_transaction().unwrap();
    send(&producer, "changelog", "open-0");
    send(&producer, "changelog", "open-1");
    producer.flush(TIMEOUT).unwrap();

    let clients = clients(&served.addr, &[]);
    let mut restore = clients
        .restore_consumer(restore_settings(Isolation::ReadCommitted))
        .unwrap();
    let tp = TopicPartition::new("changelog", 0);
    let marks = served.runtime.block_on(restore.watermarks(&tp)).unwrap();
    assert_eq!(
        marks,
        Watermarks {
            log_start: 0,
            high: 6,
            last_stable: 4
        }
    );

    producer.commit_transaction(TIMEOUT).unwrap();
    let marks = served.runtime.block_on(restore.watermarks(&tp)).unwrap();
    assert_eq!(
        marks,
        Watermarks {
            log_start: 0,
            high: 7,
            last_stable: 7
        }
    );
}

/// Polls `restore` until its position of `tp` reaches `end`; returns the
/// values read of `tp`.
fn restore_to_end(
    served: &Served,
    restore: &mut Box<dyn crate::client::RestoreConsumer>,
    tp: &TopicPartition,
    end: u64,
) -> Vec<String> {
    let deadline = Instant::now() + TIMEOUT;
    let mut values = Vec::new();
    while restore.position(tp).is_none_or(|p| p < end) {
        assert!(
            Instant::now() < deadline,
            "position {:?}, end {end}, read {values:?}",
            restore.position(tp)
        );
        for run in served
            .runtime
            .block_on(restore.poll(Duration::from_millis(100)))
            .unwrap()
        {
            if *run.topic != *tp.topic || run.partition != tp.partition {
                continue;
            }
            for record in run.records {
                values.push(String::from_utf8(record.value.unwrap().to_vec()).unwrap());
            }
        }
    }
    values
}

#[test]
fn a_restore_consumer_reaches_the_end_past_transaction_markers() {
    let served = serve();
    for topic in ["markers", "other"] {
        served
            .runtime
            .block_on(served.broker.create_topic(BrokerNewTopic::new(topic, 1)))
            .unwrap();
    }
    let producer = transactional_producer(&served.addr, "markers");
    producer.begin_transaction().unwrap();
    for i in 0..5 {
        send(&producer, "markers", &format!("v{i}"));
    }
    send(&producer, "other", "o0");
    producer.commit_transaction(TIMEOUT).unwrap();
    producer.begin_transaction().unwrap();
    for i in 0..3 {
        send(&producer, "markers", &format!("aborted{i}"));
    }
    producer.flush(TIMEOUT).unwrap();
    producer.abort_transaction(TIMEOUT).unwrap();
    // 5 records, a commit marker, 3 aborted records, an abort marker.
    let clients = clients(&served.addr, &[]);
    let tp = TopicPartition::new("markers", 0);
    let other = TopicPartition::new("other", 0);

    let mut restore = clients
        .restore_consumer(restore_settings(Isolation::ReadCommitted))
        .unwrap();
    let marks = served.runtime.block_on(restore.watermarks(&tp)).unwrap();
    assert_eq!((marks.high, marks.last_stable), (10, 10));
    served
        .runtime
        .block_on(restore.assign(vec![(tp.clone(), 0), (other.clone(), 0)]))
        .unwrap();
    assert_eq!(restore.position(&tp), Some(0));
    let values = restore_to_end(&served, &mut restore, &tp, 10);
    assert_eq!(values, ["v0", "v1", "v2", "v3", "v4"]);
    assert_eq!(restore.position(&tp), Some(10));
    // The other topic's partition 0 ends at its commit marker.
    restore_to_end(&served, &mut restore, &other, 2);
    assert_eq!(restore.position(&other), Some(2));
    assert!(!restore.empty_poll_is_end());

    // read_uncommitted sees the aborted records, and ends past the marker.
    let mut dirty = clients
        .restore_consumer(restore_settings(Isolation::ReadUncommitted))
        .unwrap();
    served
        .runtime
        .block_on(dirty.assign(vec![(tp.clone(), 3)]))
        .unwrap();
    let values = restore_to_end(&served, &mut dirty, &tp, 10);
    assert_eq!(values, ["v3", "v4", "aborted0", "aborted1", "aborted2"]);
}

#[test]
fn keyed_records_land_where_the_java_partitioner_puts_them() {
    let served = serve();
    let clients = clients(&served.addr, &[]);
    let admin = clients.admin().unwrap();
    let created = served
        .runtime
        .block_on(admin.create_topic(NewTopic::new("placed", 7)))
        .unwrap();
    assert!(created);
    let again = served
        .runtime
        .block_on(admin.create_topic(NewTopic::new("placed", 7)))
        .unwrap();
    assert!(!again, "an existing topic is not created again");
    assert_eq!(
        served
            .runtime
            .block_on(admin.partition_count("placed"))
            .unwrap(),
        Some(7)
    );
    assert_eq!(
        served
            .runtime
            .block_on(admin.partition_count("no-such-topic"))
            .unwrap(),
        None
    );
    assert_eq!(
        served
            .runtime
            .block_on(admin.partition_count("no-such-topic"))
            .unwrap(),
        None,
        "asking for a topic does not create it"
    );

    // Keys of many lengths and bytes, from a fixed seed.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let keys: Vec<Vec<u8>> = (0..2_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 24) as usize + 1;
            (0..len)
                .map(|i| (state >> (i % 8 * 8)) as u8 ^ i as u8)
                .collect()
        })
        .collect();
    let records: Vec<OutRecord<'_>> = keys
        .iter()
        .map(|key| OutRecord {
            topic: "placed",
            partition: None,
            timestamp: 1_000,
            key: Some(key),
            value: Some(b"v"),
            headers: &[],
        })
        .collect();
    let producer = clients
        .producer(ProducerSettings {
            client_id: "placer".to_owned(),
            transactional_id: None,
            transaction_timeout_ms: 10_000,
        })
        .unwrap();
    let written = served.runtime.block_on(producer.send(&records)).unwrap();
    let mut expected_last: HashMap<u32, u64> = HashMap::new();
    let mut counts: HashMap<u32, u64> = HashMap::new();
    for key in &keys {
        *counts.entry(partition_for_key(key, 7)).or_insert(0) += 1;
    }
    for (p, n) in &counts {
        expected_last.insert(*p, n - 1);
    }
    let got_last: HashMap<u32, u64> = written
        .iter()
        .map(|(tp, last)| {
            assert_eq!(tp.topic, "placed");
            (tp.partition, *last)
        })
        .collect();
    assert_eq!(got_last, expected_last);

    // Every record, read back from the broker, is in its key's partition.
    let placed = served.runtime.block_on(async {
        let mut consumer = Consumer::new(
            &served.broker,
            ConsumerConfig {
                auto_offset_reset: AutoOffsetReset::Earliest,
                enable_auto_commit: false,
                max_poll_records: 10_000,
                ..ConsumerConfig::default()
            },
        );
        consumer.assign_topic("placed").await.unwrap();
        let mut placed = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        while placed.len() < keys.len() && Instant::now() < deadline {
            for r in consumer.poll(Duration::from_millis(100)).await.unwrap() {
                placed.push((r.key.unwrap().to_vec(), r.partition, r.timestamp));
            }
        }
        placed
    });
    assert_eq!(placed.len(), keys.len());
    for (key, partition, timestamp) in placed {
        assert_eq!(partition, partition_for_key(&key, 7), "key {key:?}");
        assert_eq!(timestamp, 1_000);
    }
}

#[test]
fn a_send_larger_than_the_producers_queue_waits_for_room_and_tells_every_partition() {
    let served = serve();
    // Room for 20 records: the send below fills librdkafka's queue over
    // and over, and goes on as its own records are delivered.
    let clients = clients(
        &served.addr,
        &[
            ("producer.queue.buffering.max.messages", "20"),
            ("producer.linger.ms", "1"),
        ],
    );
    let admin = clients.admin().unwrap();
    assert!(served
        .runtime
        .block_on(admin.create_topic(NewTopic::new("pinned", 3)))
        .unwrap());
    let headers: Vec<Vec<Header>> = (0..3_000)
        .map(|i| vec![Header::new("n", i.to_string().into_bytes())])
        .collect();
    let records: Vec<OutRecord<'_>> = headers
        .iter()
        .enumerate()
        .map(|(i, headers)| OutRecord {
            topic: "pinned",
            partition: Some(i as u32 % 3),
            timestamp: 2_000 + i as i64,
            key: None,
            value: Some(b"v"),
            headers,
        })
        .collect();
    let settings = |id: &str| ProducerSettings {
        client_id: id.to_owned(),
        transactional_id: None,
        transaction_timeout_ms: 10_000,
    };
    let producer = clients.producer(settings("pinner")).unwrap();
    let mut written = served.runtime.block_on(producer.send(&records)).unwrap();
    written.sort_by_key(|(tp, _)| tp.partition);
    assert_eq!(
        written,
        (0..3)
            .map(|p| (TopicPartition::new("pinned", p), 999))
            .collect::<Vec<_>>()
    );
    let read = served.runtime.block_on(async {
        let mut consumer = Consumer::new(
            &served.broker,
            ConsumerConfig {
                auto_offset_reset: AutoOffsetReset::Earliest,
                enable_auto_commit: false,
                max_poll_records: 10_000,
                ..ConsumerConfig::default()
            },
        );
        consumer.assign_topic("pinned").await.unwrap();
        let mut read = Vec::new();
        let deadline = Instant::now() + TIMEOUT;
        while read.len() < records.len() && Instant::now() < deadline {
            read.extend(consumer.poll(Duration::from_millis(100)).await.unwrap());
        }
        read
    });
    assert_eq!(read.len(), records.len());
    for r in read {
        let n = r.timestamp - 2_000;
        assert_eq!(u64::try_from(n).unwrap() % 3, u64::from(r.partition));
        assert_eq!(r.offset, u64::try_from(n / 3).unwrap());
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.headers[0].key, "n");
        assert_eq!(
            r.headers[0].value.as_deref(),
            Some(n.to_string().as_bytes())
        );
    }

    // A record for a partition the topic does not have fails the send,
    // after the records before it settled.
    let mut bad = records[..10].to_vec();
    bad.push(OutRecord {
        partition: Some(9),
        ..records[0]
    });
    let producer = clients.producer(settings("stray")).unwrap();
    let failed = served.runtime.block_on(producer.send(&bad)).unwrap_err();
    assert_eq!(
        failed.client_error_kind(),
        Some(ClientErrorKind::Fatal),
        "{failed}"
    );
}

#[test]
fn bad_client_settings_are_named() {
    let config = |pairs: &[(&str, &str)]| {
        let mut config = StreamsConfig::new("app").with_bootstrap_servers("127.0.0.1:9");
        for (key, value) in pairs {
            config.set(key, value).unwrap();
        }
        KafkaClients::new(&config)
    };
    let key_of = |result: crate::Result<KafkaClients>| match result {
        Err(StreamsError::InvalidConfig { key, .. }) => key,
        other => panic!("expected an invalid config, got {other:?}"),
    };
    assert_eq!(
        key_of(config(&[("producer.no.such.setting", "1")])),
        "producer.no.such.setting"
    );
    assert_eq!(
        key_of(config(&[("main.consumer.fetch.wait.max.ms", "soon")])),
        "main.consumer.fetch.wait.max.ms"
    );
    assert_eq!(
        key_of(config(&[("admin.socket.timeout.ms", "-5")])),
        "admin.socket.timeout.ms"
    );
    assert_eq!(
        key_of(config(&[("replication.factor", "0")])),
        "replication.factor"
    );
    assert_eq!(
        key_of(KafkaClients::new(&StreamsConfig::new("app"))),
        "bootstrap.servers"
    );
    // The settings the runtime reads are not librdkafka's concern.
    assert!(config(&[
        ("consumer.max.poll.records", "10"),
        ("consumer.session.timeout.ms", "6000"),
        ("producer.transaction.timeout.ms", "5000"),
        ("producer.linger.ms", "2"),
        ("restore.consumer.fetch.wait.max.ms", "50"),
    ])
    .is_ok());
}

#[test]
fn prefixed_settings_reach_their_clients() {
    let config = StreamsConfig::from_pairs([
        ("application.id", "app"),
        ("bootstrap.servers", "127.0.0.1:9"),
        ("consumer.fetch.wait.max.ms", "100"),
        ("main.consumer.fetch.wait.max.ms", "200"),
        ("restore.consumer.queued.min.messages", "5000"),
        ("producer.linger.ms", "3"),
        ("admin.socket.timeout.ms", "7000"),
        ("consumer.max.poll.records", "10"),
    ])
    .unwrap();
    let clients = KafkaClients::new(&config).unwrap();
    let value = |role, key: &str| {
        clients
            .pass
            .of(role)
            .get(key)
            .map(|p| (p.value.clone(), p.from.clone()))
    };
    use super::Role;
    assert_eq!(
        value(Role::MainConsumer, "fetch.wait.max.ms"),
        Some((
            "200".to_owned(),
            "main.consumer.fetch.wait.max.ms".to_owned()
        ))
    );
    assert_eq!(
        value(Role::RestoreConsumer, "fetch.wait.max.ms"),
        Some(("100".to_owned(), "consumer.fetch.wait.max.ms".to_owned()))
    );
    assert_eq!(
        value(Role::RestoreConsumer, "queued.min.messages").map(|v| v.0),
        Some("5000".to_owned())
    );
    assert_eq!(value(Role::MainConsumer, "queued.min.messages"), None);
    assert_eq!(
        value(Role::Producer, "linger.ms").map(|v| v.0),
        Some("3".to_owned())
    );
    assert_eq!(
        value(Role::Admin, "socket.timeout.ms").map(|v| v.0),
        Some("7000".to_owned())
    );
    assert_eq!(value(Role::MainConsumer, "max.poll.records"), None);
}
