//! The embedded broker through its public API: topics, producer and consumer, partitioning,
//! offsets reset, seeks, waiting polls, the data dir lock, and reopening.

use std::time::Duration;

use broker_embedded::partitioner::partition_for_key;
use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, BrokerError, Consumer, ConsumerConfig, MockTime,
    NewTopic, OutgoingRef, Producer, ProducerRecord, TopicPartition,
};

fn earliest() -> ConsumerConfig {
    ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        ..ConsumerConfig::default()
    }
}

async fn drain(consumer: &mut Consumer) -> Vec<broker_embedded::ConsumerRecord> {
    let mut out = Vec::new();
    loop {
        let batch = consumer
            .poll_up_to(1000, Duration::from_millis(50))
            .await
            .unwrap();
        if batch.is_empty() {
            return out;
        }
        out.extend(batch);
    }
}

#[tokio::test]
async fn produce_consume_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let broker = Broker::open(dir.path(), BrokerConfig::default())
            .await
            .unwrap();
        broker
            .create_topic(NewTopic::new("lines", 3).config("segment.bytes", "1024"))
            .await
            .unwrap();
        let producer = Producer::new(&broker);
        let records: Vec<_> = (0..500)
            .map(|i| {
                ProducerRecord::new("lines", format!("value-{i}"))
                    .key(format!("key-{}", i % 37))
                    .timestamp(1_000 + i)
                    .header("n", i.to_string())
            })
            .collect();
        // Several batches, so that 1 KiB segments roll.
        let mut metas = Vec::new();
        for chunk in records.chunks(10) {
            metas.extend(producer.send_batch(chunk.to_vec()).await.unwrap());
        }
        assert_eq!(metas.len(), 500);
        for (i, m) in metas.iter().enumerate() {
            let key = format!("key-{}", i % 37);
            assert_eq!(m.partition, partition_for_key(key.as_bytes(), 3));
            assert_eq!(m.timestamp, 1_000 + i as i64);
        }
        broker.close().await.unwrap();
        assert!(matches!(
            broker.list_topics().await,
            Err(BrokerError::Closed)
        ));
    }
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    assert_eq!(
        broker.list_topics().await.unwrap(),
        vec!["lines".to_owned()]
    );
    let description = broker.describe_topic("lines").await.unwrap();
    assert_eq!(description.config.segment_bytes, 1024);
    let total: u64 = description
        .partitions
        .iter()
        .map(|p| p.log_end_offset)
        .sum();
    assert_eq!(total, 500);
    assert!(description.partitions.iter().any(|p| p.segment_count > 1));

    let mut consumer = Consumer::new(&broker, earliest());
    consumer.assign_topic("lines").await.unwrap();
    let mut got = drain(&mut consumer).await;
    assert_eq!(got.len(), 500);
    got.sort_by_key(|r| r.timestamp);
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.value.as_deref(), Some(format!("value-{i}").as_bytes()));
        assert_eq!(r.key.as_deref(), Some(format!("key-{}", i % 37).as_bytes()));
        assert_eq!(
            r.headers[0].value.as_deref(),
            Some(i.to_string().as_bytes())
        );
    }
    // Within a partition, offsets are dense and in order.
    for p in 0..3 {
        let offsets: Vec<u64> = {
            let mut v: Vec<_> = got
                .iter()
                .filter(|r| r.partition == p)
                .map(|r| r.offset)
                .collect();
            v.sort();
            v
        };
        assert_eq!(offsets, (0..offsets.len() as u64).collect::<Vec<_>>());
    }
}

#[tokio::test]
async fn second_opener_gets_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let _broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    let err = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::DirLocked { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn the_lock_holds_whatever_files_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    // Whatever a user deletes in the dir, no file name carries the lock.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let err = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::DirLocked { .. }), "{err:?}");
    broker.close().await.unwrap();
    drop(broker);
    // Released with the broker.
    let reopened = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    reopened.close().await.unwrap();
}

#[tokio::test]
async fn partition_counts_are_bounded_and_long_names_fit_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    // Refused before anything is allocated or created.
    for count in [u32::MAX, 10_001] {
        let err = broker
            .create_topic(NewTopic::new("huge", count))
            .await
            .unwrap_err();
        assert!(
            matches!(err, BrokerError::InvalidConfig { ref key, .. } if key == "partitions"),
            "{err:?}"
        );
        assert!(
            err.to_string().contains("max.partitions.per.topic"),
            "{err}"
        );
    }
    assert!(!dir.path().join("huge-0").exists());
    // Kafka's longest name, with every file the layout adds.
    let long = "t".repeat(249);
    broker
        .create_topic(NewTopic::new(long.clone(), 3))
        .await
        .unwrap();
    broker
        .append(
            &long,
            2,
            &[broker_embedded::NewRecord {
                timestamp: 1,
                key: None,
                value: Some("v".into()),
                headers: Vec::new(),
            }],
            broker_embedded::ProducerFields::NONE,
        )
        .await
        .unwrap();
    broker
        .alter_topic_config(&long, &[("retention.ms", "1000")])
        .await
        .unwrap();
    broker.close().await.unwrap();
    drop(broker);
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    assert_eq!(broker.offsets(&long, 2).await.unwrap(), (0, 1));
    assert_eq!(
        broker
            .describe_topic(&long)
            .await
            .unwrap()
            .config
            .retention_ms,
        Some(1000)
    );
    broker.delete_topic(&long).await.unwrap();
    let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    // A name whose partition dirs would not fit fails and leaves nothing behind.
    let config = BrokerConfig {
        max_partitions_per_topic: 1_000_000,
        ..BrokerConfig::default()
    };
    broker.close().await.unwrap();
    drop(broker);
    let broker = Broker::open(dir.path(), config).await.unwrap();
    let err = broker
        .create_topic(NewTopic::new(long.clone(), 1_000_000))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::InvalidTopicName { .. }),
        "{err:?}"
    );
    let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(before.len(), after.len());
}

#[tokio::test]
async fn metadata_naming_a_huge_partition_count_is_an_error_not_an_allocation() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
    broker.close().await.unwrap();
    drop(broker);
    let meta = dir.path().join("meta/topics/t/properties");
    let text = std::fs::read_to_string(&meta).unwrap();
    std::fs::write(&meta, text.replace("partitions=1", "partitions=4294967295")).unwrap();
    let err = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::CorruptMetadata { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&meta.display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn admin_errors_are_typed() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
    assert!(matches!(
        broker.create_topic(NewTopic::new("t", 2)).await,
        Err(BrokerError::TopicExists { .. })
    ));
    assert!(matches!(
        broker.create_topic(NewTopic::new("bad name", 1)).await,
        Err(BrokerError::InvalidTopicName { .. })
    ));
    assert!(matches!(
        broker
            .create_topic(NewTopic::new("u", 1).config("retention.ms", "x"))
            .await,
        Err(BrokerError::InvalidConfig { .. })
    ));
    assert!(matches!(
        broker.describe_topic("missing").await,
        Err(BrokerError::UnknownTopic { .. })
    ));
    let producer = Producer::new(&broker);
    assert!(matches!(
        producer
            .send(ProducerRecord::new("t", "v").partition(5))
            .await,
        Err(BrokerError::UnknownPartition { .. })
    ));
    assert!(matches!(
        producer.send(ProducerRecord::new("missing", "v")).await,
        Err(BrokerError::UnknownTopic { .. })
    ));
    broker.delete_topic("t").await.unwrap();
    assert!(broker.list_topics().await.unwrap().is_empty());
    // A re-created topic starts empty.
    broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
    assert_eq!(broker.offsets("t", 0).await.unwrap(), (0, 0));
}

#[tokio::test]
async fn compacted_topics_refuse_null_keys() {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("c", 1).config("cleanup.policy", "compact"))
        .await
        .unwrap();
    let producer = Producer::new(&broker);
    let err = producer
        .send(ProducerRecord::new("c", "v"))
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::InvalidRecord { .. }), "{err:?}");
    producer
        .send(ProducerRecord::new("c", "v").key("k"))
        .await
        .unwrap();
}

#[tokio::test]
async fn null_keys_spread_over_partitions() {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("spread", 4))
        .await
        .unwrap();
    let producer = Producer::new(&broker);
    for _ in 0..50 {
        let batch = (0..100)
            .map(|i| ProducerRecord::new("spread", format!("{i:0100}")))
            .collect();
        producer.send_batch(batch).await.unwrap();
    }
    let mut used = 0;
    for p in 0..4 {
        let (_, end) = broker.offsets("spread", p).await.unwrap();
        if end > 0 {
            used += 1;
        }
    }
    assert_eq!(used, 4, "null-key records should reach every partition");
}

#[tokio::test]
async fn auto_offset_reset_and_seeks() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
    let producer = Producer::new(&broker);
    let batch = (0..10)
        .map(|i| ProducerRecord::new("t", format!("v{i}")).timestamp(100 * i))
        .collect();
    producer.send_batch(batch).await.unwrap();
    let tp = TopicPartition::new("t", 0);

    let mut latest = Consumer::new(&broker, ConsumerConfig::default());
    latest.assign(vec![tp.clone()]).await.unwrap();
    assert!(drain(&mut latest).await.is_empty());
    assert_eq!(latest.position(&tp), Some(10));

    let mut none = Consumer::new(
        &broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::None,
            ..ConsumerConfig::default()
        },
    );
    none.assign(vec![tp.clone()]).await.unwrap();
    assert!(matches!(
        none.poll(Duration::from_millis(10)).await,
        Err(BrokerError::NoOffsetForPartition { .. })
    ));
    none.seek(&tp, 50).unwrap();
    assert!(matches!(
        none.poll(Duration::from_millis(10)).await,
        Err(BrokerError::OffsetOutOfRange { .. })
    ));

    let mut c = Consumer::new(&broker, earliest());
    c.assign(vec![tp.clone()]).await.unwrap();
    c.seek(&tp, 50).unwrap();
    // Out of range: reset to earliest.
    let got = drain(&mut c).await;
    assert_eq!(got.first().map(|r| r.offset), Some(0));
    c.seek_to_timestamp(&tp, 450).await.unwrap();
    let got = drain(&mut c).await;
    assert_eq!(got.first().map(|r| r.offset), Some(5));
    assert_eq!(got.first().map(|r| r.timestamp), Some(500));
    c.seek_to_timestamp(&tp, 10_000).await.unwrap();
    assert!(drain(&mut c).await.is_empty());
    c.seek(&tp, 7).unwrap();
    let got = drain(&mut c).await;
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![7, 8, 9]
    );
}

#[tokio::test(start_paused = true)]
async fn poll_wakes_when_data_arrives() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
    let mut consumer = Consumer::new(&broker, ConsumerConfig::default());
    consumer.assign_topic("t").await.unwrap();
    // Resolve positions (latest) before anything is written.
    assert!(consumer
        .poll(Duration::from_millis(1))
        .await
        .unwrap()
        .is_empty());
    let producer = Producer::new(&broker);
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        producer
            .send(ProducerRecord::new("t", "hello").partition(1))
            .await
            .unwrap();
    });
    let start = tokio::time::Instant::now();
    let got = consumer.poll(Duration::from_secs(3600)).await.unwrap();
    let waited = start.elapsed();
    sender.await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value.as_deref(), Some(&b"hello"[..]));
    // Woken by the append at 5 s, not by the hour-long timeout.
    assert!(
        waited >= Duration::from_secs(5) && waited < Duration::from_secs(60),
        "{waited:?}"
    );
}

#[tokio::test]
async fn log_append_time_replaces_producer_timestamps() {
    let time = MockTime::new(1_700_000_000_000);
    let broker = Broker::in_memory_with(BrokerConfig {
        time: time.clone(),
        retention_check_interval_ms: None,
        ..BrokerConfig::default()
    })
    .await
    .unwrap();
    broker
        .create_topic(NewTopic::new("t", 1).config("message.timestamp.type", "LogAppendTime"))
        .await
        .unwrap();
    let producer = Producer::new(&broker);
    let m = producer
        .send(ProducerRecord::new("t", "v").timestamp(5))
        .await
        .unwrap();
    assert_eq!(m.timestamp, 1_700_000_000_000);
    let mut c = Consumer::new(&broker, earliest());
    c.assign_topic("t").await.unwrap();
    let got = drain(&mut c).await;
    assert_eq!(got[0].timestamp, 1_700_000_000_000);
    assert_eq!(
        got[0].timestamp_type,
        broker_embedded::TimestampType::LogAppendTime
    );
}

#[tokio::test]
async fn retention_through_the_broker() {
    let time = MockTime::new(1_000_000);
    let broker = Broker::in_memory_with(BrokerConfig {
        time: time.clone(),
        retention_check_interval_ms: None,
        ..BrokerConfig::default()
    })
    .await
    .unwrap();
    broker
        .create_topic(
            NewTopic::new("r", 1)
                .config("segment.bytes", "1000")
                .config("retention.ms", "60000"),
        )
        .await
        .unwrap();
    let producer = Producer::new(&broker);
    for i in 0..100 {
        producer
            .send(ProducerRecord::new("r", format!("{i:050}")).timestamp(1_000_000 + i))
            .await
            .unwrap();
    }
    assert_eq!(broker.run_retention().unwrap(), 0);
    time.advance(120_000);
    producer
        .send(ProducerRecord::new("r", "new").timestamp(broker_embedded::Time::now_ms(&*time)))
        .await
        .unwrap();
    assert!(broker.run_retention().unwrap() > 0);
    let (start, end) = broker.offsets("r", 0).await.unwrap();
    assert!(start > 0 && end == 101, "start {start}, end {end}");
    let mut c = Consumer::new(&broker, earliest());
    c.assign_topic("r").await.unwrap();
    let got = drain(&mut c).await;
    assert_eq!(got.first().map(|r| r.offset), Some(start));
}

fn read_ahead(max_partition_fetch_bytes: usize) -> ConsumerConfig {
    ConsumerConfig {
        background_fetch: true,
        max_partition_fetch_bytes,
        ..earliest()
    }
}

/// `(partition, offset, value)` of each record, in the order polled.
fn positions(records: &[broker_embedded::ConsumerRecord]) -> Vec<(u32, u64, Vec<u8>)> {
    records
        .iter()
        .map(|r| {
            (
                r.partition,
                r.offset,
                r.value.as_deref().unwrap_or_default().to_vec(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_ahead_returns_every_record_in_order_while_a_producer_appends() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("t", 3)).await.unwrap();
    let producer = Producer::new(&broker);
    let total = 6_000u64;
    let writer = tokio::spawn(async move {
        for chunk in 0..total / 50 {
            let batch = (chunk * 50..(chunk + 1) * 50)
                .map(|i| ProducerRecord::new("t", format!("v{i}")).key(format!("k{}", i % 11)))
                .collect();
            producer.send_batch(batch).await.unwrap();
            if chunk % 10 == 0 {
                tokio::task::yield_now().await;
            }
        }
    });
    // Small fetches, so that the read-ahead runs many times beside the appends.
    let mut consumer = Consumer::new(&broker, read_ahead(2_048));
    consumer.assign_topic("t").await.unwrap();
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while (got.len() as u64) < total {
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {total}",
            got.len()
        );
        got.extend(consumer.poll(Duration::from_millis(100)).await.unwrap());
    }
    writer.await.unwrap();
    assert!(
        drain(&mut consumer).await.is_empty(),
        "nothing past the end"
    );

    // Each partition in offset order with no gap or repeat, and the same
    // records as a consumer that reads in its polling task.
    let mut plain = Consumer::new(&broker, earliest());
    plain.assign_topic("t").await.unwrap();
    let expected = drain(&mut plain).await;
    let by_partition = |records: &[broker_embedded::ConsumerRecord]| {
        let mut parts = vec![Vec::new(); 3];
        for (partition, offset, value) in positions(records) {
            parts[partition as usize].push((offset, value));
        }
        parts
    };
    let got = by_partition(&got);
    for (partition, records) in got.iter().enumerate() {
        let offsets: Vec<u64> = records.iter().map(|(o, _)| *o).collect();
        assert_eq!(
            offsets,
            (0..records.len() as u64).collect::<Vec<_>>(),
            "partition {partition}"
        );
    }
    assert_eq!(got, by_partition(&expected));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_drops_what_was_read_ahead() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
    let producer = Producer::new(&broker);
    for chunk in 0..20 {
        let batch = (chunk * 10..(chunk + 1) * 10)
            .map(|i| ProducerRecord::new("t", format!("v{i}")))
            .collect();
        producer.send_batch(batch).await.unwrap();
    }
    let tp = TopicPartition::new("t", 0);
    let mut consumer = Consumer::new(&broker, read_ahead(256));
    consumer.assign(vec![tp.clone()]).await.unwrap();
    let first = consumer
        .poll_up_to(5, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|r| r.offset).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4]
    );
    // Let the read-ahead of the next fetch finish, then move away from it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    consumer.seek(&tp, 150).unwrap();
    let after = drain(&mut consumer).await;
    assert_eq!(
        after.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (150..200).collect::<Vec<_>>()
    );
    consumer.seek(&tp, 3).unwrap();
    let again = drain(&mut consumer).await;
    assert_eq!(
        again.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (3..200).collect::<Vec<_>>()
    );
    assert_eq!(again[0].value.as_deref(), Some(&b"v3"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_ahead_waiting_at_the_end_wakes_the_poll() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
    let producer = Producer::new(&broker);
    producer
        .send(ProducerRecord::new("t", "first").partition(0))
        .await
        .unwrap();
    let mut consumer = Consumer::new(&broker, read_ahead(1024 * 1024));
    consumer.assign_topic("t").await.unwrap();
    let got = consumer.poll(Duration::from_secs(5)).await.unwrap();
    assert_eq!(got.len(), 1);
    // Both partitions now have a read-ahead waiting at their end.
    let sender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        producer
            .send(ProducerRecord::new("t", "second").partition(1))
            .await
            .unwrap();
    });
    let got = consumer.poll(Duration::from_secs(3600)).await.unwrap();
    sender.await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].partition, 1);
    assert_eq!(got[0].value.as_deref(), Some(&b"second"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_read_ahead_consumer_ends_its_thread() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
    Producer::new(&broker)
        .send(ProducerRecord::new("t", "v"))
        .await
        .unwrap();
    let mut consumer = Consumer::new(&broker, read_ahead(1024 * 1024));
    consumer.assign_topic("t").await.unwrap();
    assert_eq!(drain(&mut consumer).await.len(), 1);
    // The read-ahead waits at the end of the partition, then comes back
    // empty; with no poll to ask again, the thread waits for a job, holding
    // a handle on the broker. It must let go of it once the consumer is
    // gone, or the data dir stays locked.
    tokio::time::sleep(Duration::from_millis(800)).await;
    drop(consumer);
    drop(broker);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Broker::open(dir.path(), BrokerConfig::default()).await {
            Ok(reopened) => {
                assert_eq!(reopened.offsets("t", 0).await.unwrap(), (0, 1));
                break;
            }
            Err(e) => {
                assert!(std::time::Instant::now() < deadline, "still locked: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Every record of `topics`, as (topic, partition, offset, timestamp, key, value, headers).
type Stored = Vec<(
    String,
    u32,
    u64,
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
)>;

async fn stored(broker: &Broker, topics: &[&str]) -> Stored {
    let mut c = Consumer::new(broker, earliest());
    let mut parts = Vec::new();
    for topic in topics {
        let n = broker.partition_count(topic).await.unwrap();
        parts.extend((0..n).map(|p| TopicPartition::new(*topic, p)));
    }
    c.assign(parts).await.unwrap();
    let mut out: Stored = drain(&mut c)
        .await
        .into_iter()
        .map(|r| {
            (
                r.topic.to_string(),
                r.partition,
                r.offset,
                r.timestamp,
                r.key.map(|k| k.to_vec()),
                r.value.map(|v| v.to_vec()),
                r.headers
                    .into_iter()
                    .map(|h| (h.key, h.value.map(|v| v.to_vec())))
                    .collect(),
            )
        })
        .collect();
    out.sort();
    out
}

/// `send_refs` writes what `send_batch` writes, record for record: partitions (murmur2 of
/// the key, pinned, sticky for null keys), offsets, timestamps, keys, values and headers,
/// with batches split under `max.message.bytes`; its batch ranges cover the records sent.
#[tokio::test]
async fn borrowed_sends_write_what_owned_sends_write() {
    let mut records = Vec::new();
    for i in 0..300u32 {
        let topic = if i % 7 == 0 { "b" } else { "a" };
        let mut r =
            ProducerRecord::new(topic, format!("value-{i}-{}", "x".repeat(i as usize % 40)))
                .timestamp(1_000 + i64::from(i % 13));
        match i % 5 {
            0 => {}
            1 => r = r.key(format!("k{}", i % 17)).partition(i % 3),
            2 => r = r.key(format!("k{}", i % 17)).tombstone(),
            _ => r = r.key(format!("k{}", i % 17)),
        }
        if i % 11 == 0 {
            r = r.header("h", format!("{i}"));
        }
        records.push(r);
    }
    let open = || async {
        let broker = Broker::in_memory_with(BrokerConfig {
            time: MockTime::new(1_700_000_000_000),
            retention_check_interval_ms: None,
            ..BrokerConfig::default()
        })
        .await
        .unwrap();
        for topic in ["a", "b"] {
            broker
                .create_topic(NewTopic::new(topic, 3).config("max.message.bytes", "700"))
                .await
                .unwrap();
        }
        broker
    };

    let owned = open().await;
    let metadata = Producer::new(&owned)
        .send_batch(records.clone())
        .await
        .unwrap();
    assert_eq!(metadata.len(), records.len());

    let borrowed = open().await;
    // Every record has its timestamp: the clock's is never used.
    let refs: Vec<OutgoingRef<'_>> = records.iter().map(|r| r.as_outgoing(-1)).collect();
    let appended = Producer::new(&borrowed).send_refs(&refs).await.unwrap();

    let written = stored(&borrowed, &["a", "b"]).await;
    assert_eq!(written, stored(&owned, &["a", "b"]).await);
    assert_eq!(written.len(), records.len());
    // Split under max.message.bytes: more batches than partitions written.
    assert!(appended.len() > 6, "{} batches", appended.len());
    let mut covered: Vec<(String, u32, u64)> = appended
        .iter()
        .flat_map(|b| {
            (b.base_offset..=b.last_offset).map(move |o| (b.topic.to_owned(), b.partition, o))
        })
        .collect();
    covered.sort();
    let mut positions: Vec<(String, u32, u64)> = written
        .iter()
        .map(|(t, p, o, ..)| (t.clone(), *p, *o))
        .collect();
    positions.sort();
    assert_eq!(covered, positions);
    for m in &metadata {
        assert!(written.iter().any(|w| w.0 == *m.topic
            && w.1 == m.partition
            && w.2 == m.offset
            && w.3 == m.timestamp));
    }
}
