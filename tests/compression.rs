//! Compressed record batches through the embedded broker's public API: the producer's
//! `compression.type`, the topic's `compression.type`, consumers (read_uncommitted and
//! read_committed), compaction and reopening a data dir.

use std::collections::BTreeMap;
use std::time::Duration;

use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, Compression, Consumer, ConsumerConfig, IsolationLevel,
    NewTopic, Producer, ProducerConfig, ProducerRecord,
};

fn consumer_config(isolation: IsolationLevel) -> ConsumerConfig {
    ConsumerConfig {
        auto_offset_reset: AutoOffsetReset::Earliest,
        isolation_level: isolation,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    }
}

/// `(partition, offset, key, value, headers)` of every record a fresh consumer reads.
type Seen = Vec<(
    u32,
    u64,
    Option<String>,
    Option<String>,
    Vec<(String, String)>,
)>;

async fn read_all(broker: &Broker, topic: &str, isolation: IsolationLevel) -> Seen {
    let text = |b: Option<bytes::Bytes>| b.map(|b| String::from_utf8(b.to_vec()).unwrap());
    let mut consumer = Consumer::new(broker, consumer_config(isolation));
    consumer.assign_topic(topic).await.unwrap();
    let mut out = Vec::new();
    loop {
        let records = consumer
            .poll_up_to(100_000, Duration::from_millis(50))
            .await
            .unwrap();
        if records.is_empty() {
            out.sort();
            return out;
        }
        for r in records {
            let headers = r
                .headers
                .iter()
                .map(|h| (h.key.clone(), text(h.value.clone()).unwrap_or_default()))
                .collect();
            out.push((r.partition, r.offset, text(r.key), text(r.value), headers));
        }
    }
}

/// The codec of every stored batch of `topic`, by partition.
async fn stored_codecs(broker: &Broker, topic: &str) -> BTreeMap<u32, Vec<Compression>> {
    let mut out = BTreeMap::new();
    for p in 0..broker.partition_count(topic).await.unwrap() {
        let batches = broker.fetch(topic, p, 0, usize::MAX, None).await.unwrap();
        out.insert(p, batches.iter().map(|b| b.info.compression).collect());
    }
    out
}

fn records(topic: &str, n: usize) -> Vec<ProducerRecord> {
    (0..n)
        .map(|i| {
            let mut r = ProducerRecord::new(topic, format!("value {i} ").repeat(1 + i % 7))
                .key(format!("key-{}", i % 23))
                .timestamp(1_000 + i as i64);
            if i % 3 == 0 {
                r = r.header("n", i.to_string());
            }
            if i % 11 == 0 {
                r = r.tombstone();
            }
            r
        })
        .collect()
}

#[tokio::test]
async fn each_codec_from_the_producer_reads_back_the_same_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut expected: Option<Seen> = None;
    // The broker, its producers and consumers are dropped before the reopen below.
    {
        let broker = Broker::open(dir.path(), BrokerConfig::default())
            .await
            .unwrap();
        for codec in Compression::ALL {
            let topic = format!("t-{codec}");
            broker
                .create_topic(NewTopic::new(topic.as_str(), 3).config("segment.bytes", "2048"))
                .await
                .unwrap();
            let producer = Producer::with_config(
                &broker,
                ProducerConfig {
                    compression_type: codec.name().parse().unwrap(),
                    ..ProducerConfig::default()
                },
            );
            for chunk in records(&topic, 400).chunks(50) {
                producer.send_batch(chunk.to_vec()).await.unwrap();
            }
            let seen = read_all(&broker, &topic, IsolationLevel::ReadUncommitted).await;
            assert_eq!(seen.len(), 400, "{codec}");
            // Every codec stores the same records at the same offsets.
            match &expected {
                None => expected = Some(seen),
                Some(want) => assert_eq!(&seen, want, "{codec}"),
            }
            for (p, codecs) in stored_codecs(&broker, &topic).await {
                assert!(!codecs.is_empty(), "{codec} partition {p}");
                assert!(codecs.iter().all(|c| *c == codec), "{codec}: {codecs:?}");
            }
        }
        broker.close().await.unwrap();
    }

    // Reopened, the compressed active segments are checked batch by batch and read back.
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    for codec in Compression::ALL {
        let seen = read_all(
            &broker,
            &format!("t-{codec}"),
            IsolationLevel::ReadUncommitted,
        )
        .await;
        assert_eq!(Some(&seen), expected.as_ref(), "{codec} after reopen");
    }
}

#[tokio::test]
async fn read_committed_filters_compressed_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let values = |seen: Seen| -> Vec<String> {
        let mut v: Vec<String> = seen.into_iter().filter_map(|r| r.3).collect();
        v.sort();
        v
    };
    // The broker and its producer are dropped before the reopen below.
    let committed = {
        let broker = Broker::open(dir.path(), BrokerConfig::default())
            .await
            .unwrap();
        broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
        let producer = Producer::with_config(
            &broker,
            ProducerConfig {
                transactional_id: Some("tx".to_owned()),
                compression_type: Compression::Lz4,
                ..ProducerConfig::default()
            },
        );
        producer.init_transactions().await.unwrap();
        for (round, commit) in [(0, true), (1, false), (2, true)] {
            producer.begin_transaction().unwrap();
            let batch: Vec<ProducerRecord> = (0..20)
                .map(|i| ProducerRecord::new("t", format!("r{round}-{i}")).key(format!("k{i}")))
                .collect();
            producer.send_batch(batch).await.unwrap();
            if commit {
                producer.commit_transaction().await.unwrap();
            } else {
                producer.abort_transaction().await.unwrap();
            }
        }
        let committed = values(read_all(&broker, "t", IsolationLevel::ReadCommitted).await);
        assert_eq!(committed.len(), 40);
        assert!(committed.iter().all(|v| !v.starts_with("r1-")));
        let everything = values(read_all(&broker, "t", IsolationLevel::ReadUncommitted).await);
        assert_eq!(everything.len(), 60);
        // Data batches are lz4; the markers are not compressed.
        for codecs in stored_codecs(&broker, "t").await.values() {
            assert!(codecs.contains(&Compression::Lz4));
        }
        broker.close().await.unwrap();
        committed
    };

    // The producer state rebuilt from the compressed log agrees.
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    let again = values(read_all(&broker, "t", IsolationLevel::ReadCommitted).await);
    assert_eq!(again, committed);
}

#[tokio::test]
async fn the_topics_compression_type_decides_what_is_stored() {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("t", 1).config("compression.type", "zstd"))
        .await
        .unwrap();
    let gzip_producer = Producer::with_config(
        &broker,
        ProducerConfig {
            compression_type: Compression::Gzip,
            ..ProducerConfig::default()
        },
    );
    gzip_producer
        .send(ProducerRecord::new("t", "a").key("k"))
        .await
        .unwrap();
    broker
        .alter_topic_config("t", &[("compression.type", "producer")])
        .await
        .unwrap();
    gzip_producer
        .send(ProducerRecord::new("t", "b").key("k"))
        .await
        .unwrap();
    broker
        .alter_topic_config("t", &[("compression.type", "uncompressed")])
        .await
        .unwrap();
    gzip_producer
        .send(ProducerRecord::new("t", "c").key("k"))
        .await
        .unwrap();
    assert_eq!(
        stored_codecs(&broker, "t").await[&0],
        vec![Compression::Zstd, Compression::Gzip, Compression::None]
    );
    let values: Vec<Option<String>> = read_all(&broker, "t", IsolationLevel::ReadUncommitted)
        .await
        .into_iter()
        .map(|r| r.3)
        .collect();
    assert_eq!(values, ["a", "b", "c"].map(|v| Some(v.to_owned())));
    let described = broker.describe_topic("t").await.unwrap();
    assert_eq!(
        described.config.to_pairs()["compression.type"],
        "uncompressed"
    );
    assert!(broker
        .alter_topic_config("t", &[("compression.type", "brotli")])
        .await
        .is_err());
}

#[tokio::test]
async fn compaction_of_a_compressed_topic_keeps_the_latest_values() {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(
            NewTopic::new("c", 1)
                .config("cleanup.policy", "compact")
                .config("segment.bytes", "1024"),
        )
        .await
        .unwrap();
    let producer = Producer::with_config(
        &broker,
        ProducerConfig {
            compression_type: Compression::Snappy,
            ..ProducerConfig::default()
        },
    );
    let mut latest = BTreeMap::new();
    for round in 0..30 {
        let batch: Vec<ProducerRecord> = (0..10)
            .map(|i| {
                let key = format!("k{}", (round * 7 + i) % 13);
                let value = format!("{round}-{i} ").repeat(12);
                latest.insert(key.clone(), value.clone());
                ProducerRecord::new("c", value).key(key)
            })
            .collect();
        producer.send_batch(batch).await.unwrap();
    }
    let stats = broker.compact_topic("c").await.unwrap();
    assert!(stats.records_removed > 0);
    let seen = read_all(&broker, "c", IsolationLevel::ReadUncommitted).await;
    let mut last_seen = BTreeMap::new();
    for (_, _, key, value, _) in seen {
        last_seen.insert(key.unwrap(), value.unwrap());
    }
    assert_eq!(last_seen, latest);
    // Every batch, rewritten or kept whole, is still snappy.
    assert!(stored_codecs(&broker, "c").await[&0]
        .iter()
        .all(|c| *c == Compression::Snappy));
}
