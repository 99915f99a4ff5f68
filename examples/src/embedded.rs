//! The embedded broker's side of the examples' helpers: topics, the exactly-once input
//! load ([`load_input`]), a group's progress ([`group_progress`]), the wait until an
//! application has processed its input ([`wait_until_idle`]) and the committed records of
//! an output topic ([`read_committed`]). [`crate::cluster::Cluster`] offers the same on a
//! Kafka cluster.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context as _;
use broker_embedded::{
    AutoOffsetReset, Broker, BrokerError, Consumer, ConsumerConfig, ConsumerRecord, IsolationLevel,
    NewTopic, Producer, ProducerRecord, TopicPartition,
};
use streams_core::StreamsApp;

use crate::load::{load, InputLoad, KeyValue, LoadTarget};
use crate::progress::{wait_for_group, GroupProgress, ProgressSource};

/// How many input records go into one `send_batch` call of [`load_input`].
const LOAD_CHUNK: usize = 5_000;

/// Creates `topic` with `partitions` partitions and `retention.ms=-1` unless
/// it exists; returns its partition count.
///
/// The examples' records carry fixed event times (from November 2023, so
/// that a run is deterministic); a topic with a time limit on retention
/// (Kafka's default: 7 days, judged by the records' timestamps) would have
/// them deleted at its next retention check, processed or not.
pub async fn ensure_topic(broker: &Broker, topic: &str, partitions: u32) -> anyhow::Result<u32> {
    broker
        .ensure_topic(NewTopic::new(topic, partitions).config("retention.ms", "-1"))
        .await
        .with_context(|| format!("cannot create topic {topic}"))?;
    broker
        .partition_count(topic)
        .await
        .with_context(|| format!("cannot describe topic {topic}"))
}

/// Produces `values` (no key) to `topic` in batches of 5,000, with
/// increasing timestamps from `first_timestamp`.
///
/// For a topic that starts empty and is never loaded again (a benchmark, a
/// temporary data dir): a load killed half way and run again would write
/// the values twice. An input that must survive restarts is loaded with
/// [`load_input`].
pub async fn produce_values<V: AsRef<[u8]>>(
    broker: &Broker,
    topic: &str,
    values: &[V],
    first_timestamp: i64,
) -> anyhow::Result<()> {
    let mut timestamp = first_timestamp;
    let batches = values.chunks(5_000).map(|chunk| {
        chunk
            .iter()
            .map(|v| {
                timestamp += 1;
                ProducerRecord::new(topic, v.as_ref().to_vec()).timestamp(timestamp)
            })
            .collect()
    });
    send_and_flush(broker, topic, batches).await
}

/// Sends each batch in turn with one producer, then flushes `topic` (a commit point).
async fn send_and_flush(
    broker: &Broker,
    topic: &str,
    batches: impl Iterator<Item = Vec<ProducerRecord>>,
) -> anyhow::Result<()> {
    let producer = Producer::new(broker);
    for batch in batches {
        producer
            .send_batch(batch)
            .await
            .with_context(|| format!("cannot produce to {topic}"))?;
    }
    producer
        .flush(&[topic])
        .await
        .with_context(|| format!("cannot flush {topic}"))?;
    Ok(())
}

/// Loads the `len` records `record(0)`, `record(1)`, ... into `topic`, so
/// that a load killed at any moment (SIGKILL included, in the middle of a
/// batch) and run again with the same input completes it, each record
/// written exactly once.
///
/// Each record goes to a fixed partition: its own if it names one, else
/// murmur2 of its key (the producer's default for a keyed record), else its
/// index modulo the partition count. A partition's records are appended in
/// index order by one idempotent producer. The broker writes every batch to
/// its segment file before acknowledging it, and when it opens it truncates
/// a batch that a kill tore; so after a kill (the page cache survives a
/// process crash) each partition holds a prefix of its records, complete
/// batches only. The load counts what each partition holds (its log end
/// offset: the topic must be written by this loader only, without
/// transactions) and appends the rest. Nothing depends on what the killed
/// run acknowledged or on which producer wrote what, and producing an input
/// again whole, or in one transaction, is not needed: a restart resumes
/// where the log ends.
///
/// Before appending, the last record held in each partition is compared
/// with the input record that belongs there: a topic that holds another
/// input (a data dir loaded from another file, or by an older version that
/// spread records differently), or more records than the input has, is an
/// error rather than a silent mix. The load ends with a commit point of the
/// topic (an fsync under the default `log.flush.policy`), so a completed
/// load survives a power loss as well.
pub async fn load_input(
    broker: &Broker,
    topic: &str,
    len: usize,
    record: impl Fn(usize) -> ProducerRecord,
) -> anyhow::Result<InputLoad> {
    load(broker, topic, len, record).await
}

impl LoadTarget for Broker {
    async fn partitions(&self, topic: &str) -> anyhow::Result<u32> {
        self.partition_count(topic)
            .await
            .with_context(|| format!("cannot describe topic {topic}"))
    }

    async fn offsets(&self, topic: &str, partition: u32) -> anyhow::Result<(u64, u64)> {
        Ok(Broker::offsets(self, topic, partition).await?)
    }

    async fn record_at(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> anyhow::Result<Option<KeyValue>> {
        Ok(record_at(self, topic, partition, offset)
            .await?
            .map(|r| (r.key, r.value)))
    }

    async fn append(&self, topic: &str, records: Vec<ProducerRecord>) -> anyhow::Result<()> {
        let mut records = records.into_iter().peekable();
        let batches = std::iter::from_fn(|| {
            records.peek()?;
            Some(records.by_ref().take(LOAD_CHUNK).collect())
        });
        send_and_flush(self, topic, batches).await
    }
}

/// The record at `offset` of `topic`-`partition`, if the log still has it.
async fn record_at(
    broker: &Broker,
    topic: &str,
    partition: u32,
    offset: u64,
) -> anyhow::Result<Option<broker_embedded::Record>> {
    let batches = broker
        .fetch(topic, partition, offset, 1 << 20, None)
        .await
        .with_context(|| format!("cannot read {topic}-{partition} at offset {offset}"))?;
    Ok(batches
        .into_iter()
        .flat_map(|batch| batch.records)
        .find(|r| r.offset == offset))
}

/// The committed position and lag of `group` over every partition of
/// `topics`. A group the broker does not know yet has committed nothing.
pub async fn group_progress(
    broker: &Broker,
    group: &str,
    topics: &[String],
) -> anyhow::Result<GroupProgress> {
    let committed: HashMap<(String, u32), u64> = match broker.describe_group(group).await {
        Ok(description) => description
            .partitions
            .into_iter()
            .filter_map(|p| Some(((p.topic, p.partition), p.committed_offset?)))
            .collect(),
        Err(BrokerError::GroupIdNotFound { .. }) => HashMap::new(),
        Err(e) => return Err(e).with_context(|| format!("cannot describe group {group}")),
    };
    let mut progress = GroupProgress::default();
    for topic in topics {
        let partitions = match broker.partition_count(topic).await {
            Ok(n) => n,
            // Internal topics appear when the application starts.
            Err(BrokerError::UnknownTopic { .. }) => continue,
            Err(e) => return Err(e).with_context(|| format!("cannot describe topic {topic}")),
        };
        for partition in 0..partitions {
            let (_, end) = broker
                .offsets(topic, partition)
                .await
                .with_context(|| format!("cannot read the offsets of {topic}-{partition}"))?;
            let done = committed
                .get(&(topic.clone(), partition))
                .copied()
                .unwrap_or(0);
            progress.committed += done;
            *progress
                .committed_per_topic
                .entry(topic.clone())
                .or_insert(0) += done;
            progress.remaining += pending_records(broker, topic, partition, done, end).await?;
        }
    }
    Ok(progress)
}

/// The records of `topic`-`partition` in `[from, end)` that a consumer
/// still has to process. Under exactly-once a transaction's commit marker
/// takes an offset after its last record, so a group that has processed
/// everything can sit one offset short of the log end: a short gap is read
/// (`read_committed`) and only data records are counted.
async fn pending_records(
    broker: &Broker,
    topic: &str,
    partition: u32,
    from: u64,
    end: u64,
) -> anyhow::Result<u64> {
    const INSPECT_BELOW: u64 = 64;
    let gap = end.saturating_sub(from);
    if gap == 0 || gap > INSPECT_BELOW {
        return Ok(gap);
    }
    let batches = broker
        .fetch_with_isolation(
            topic,
            partition,
            from,
            1 << 20,
            broker_embedded::IsolationLevel::ReadCommitted,
        )
        .await
        .with_context(|| format!("cannot read {topic}-{partition}"))?;
    let mut pending = 0;
    let mut covered = from;
    for batch in &batches {
        covered = covered.max(batch.info.last_offset + 1);
        if batch.info.control {
            continue;
        }
        pending += batch
            .records
            .iter()
            .filter(|r| r.offset >= from && r.offset < end)
            .count() as u64;
    }
    // What the read did not reach (an open transaction) is pending too.
    Ok(pending + end.saturating_sub(covered))
}

/// Waits until `app` is [`streams_core::AppState::Running`] and its consumer group (the
/// application id) has committed every record of `topics` on `broker` (its source and
/// repartition topics: see [`crate::physical_source_topics`]). Since a stream thread
/// commits only after its outputs are sent and made durable, every output of those
/// records is then on the broker.
///
/// `on_progress` gets the group's progress after each check (every 10 ms).
/// Fails if the app stops with an error, or at `deadline` if one is given.
pub async fn wait_until_idle(
    app: &StreamsApp,
    broker: &Broker,
    group: &str,
    topics: &[String],
    deadline: Option<Duration>,
    on_progress: impl FnMut(&GroupProgress),
) -> anyhow::Result<()> {
    wait_for_group(broker, app, group, topics, deadline, on_progress).await
}

impl ProgressSource for Broker {
    async fn group_progress(
        &self,
        group: &str,
        topics: &[String],
    ) -> anyhow::Result<GroupProgress> {
        group_progress(self, group, topics).await
    }

    fn poll_interval(&self) -> Duration {
        // Often enough that the wait adds little to a measured run.
        Duration::from_millis(10)
    }
}

/// Every committed record of `topic` (read with `read_committed` up to
/// each partition's last stable offset), partition by partition in offset
/// order. Fails after `deadline`.
pub async fn read_committed(
    broker: &Broker,
    topic: &str,
    deadline: Duration,
) -> anyhow::Result<Vec<ConsumerRecord>> {
    let partitions = broker
        .partition_count(topic)
        .await
        .with_context(|| format!("cannot describe topic {topic}"))?;
    let mut ends = Vec::with_capacity(partitions as usize);
    for partition in 0..partitions {
        let end = broker
            .last_stable_offset(topic, partition)
            .await
            .with_context(|| format!("cannot read the offsets of {topic}-{partition}"))?;
        ends.push((TopicPartition::new(topic, partition), end));
    }
    let mut consumer = Consumer::new(
        broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            enable_auto_commit: false,
            isolation_level: IsolationLevel::ReadCommitted,
            max_poll_records: 10_000,
            ..ConsumerConfig::default()
        },
    );
    consumer
        .assign_topic(topic)
        .await
        .with_context(|| format!("cannot read {topic}"))?;
    let started = std::time::Instant::now();
    let mut records = Vec::new();
    while ends
        .iter()
        .any(|(tp, end)| consumer.position(tp).is_none_or(|p| p < *end))
    {
        if started.elapsed() > deadline {
            anyhow::bail!("cannot read {topic} to its end within {deadline:?}");
        }
        records.extend(
            consumer
                .poll(Duration::from_millis(100))
                .await
                .with_context(|| format!("cannot read {topic}"))?,
        );
    }
    records.sort_by_key(|r| (r.partition, r.offset));
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record of `topic`-`partition`, as (key, value).
    async fn partition_records(
        broker: &Broker,
        topic: &str,
        partition: u32,
    ) -> Vec<(Option<bytes::Bytes>, Option<bytes::Bytes>)> {
        let (_, end) = broker.offsets(topic, partition).await.unwrap();
        let mut out = Vec::new();
        while (out.len() as u64) < end {
            let batches = broker
                .fetch(topic, partition, out.len() as u64, 1 << 20, None)
                .await
                .unwrap();
            for record in batches.into_iter().flat_map(|b| b.records) {
                out.push((record.key, record.value));
            }
        }
        out
    }

    fn line(i: usize) -> ProducerRecord {
        ProducerRecord::new("in", format!("line {i}").into_bytes())
    }

    /// Each partition holds exactly its records, in order: `i % 3` for
    /// null keys.
    async fn assert_loaded(broker: &Broker, len: usize) {
        for partition in 0..3u32 {
            let held = partition_records(broker, "in", partition).await;
            let wanted: Vec<_> = (0..len)
                .filter(|i| i % 3 == partition as usize)
                .map(|i| (None, Some(bytes::Bytes::from(format!("line {i}")))))
                .collect();
            assert_eq!(held, wanted, "partition {partition}");
        }
    }

    #[tokio::test]
    async fn a_load_writes_each_record_once_and_a_second_load_nothing() {
        let broker = Broker::in_memory().await.unwrap();
        ensure_topic(&broker, "in", 3).await.unwrap();
        let load = load_input(&broker, "in", 12_001, line).await.unwrap();
        assert_eq!(
            load,
            InputLoad {
                held: 0,
                produced: 12_001
            }
        );
        assert_loaded(&broker, 12_001).await;
        let again = load_input(&broker, "in", 12_001, line).await.unwrap();
        assert_eq!(
            again,
            InputLoad {
                held: 12_001,
                produced: 0
            }
        );
        assert_loaded(&broker, 12_001).await;
    }

    /// A kill leaves each partition holding a prefix of its records, each
    /// partition its own length: the next load completes every one.
    #[tokio::test]
    async fn a_load_completes_the_prefixes_an_interrupted_one_left() {
        for held in [
            [0, 0, 1],
            [7, 3, 0],
            [4, 4, 4],
            [1_000, 2, 999],
            [3_334, 3_333, 3_333],
        ] {
            let broker = Broker::in_memory().await.unwrap();
            ensure_topic(&broker, "in", 3).await.unwrap();
            let producer = Producer::new(&broker);
            for (partition, n) in (0u32..).zip(held) {
                let batch: Vec<_> = (0..10_000)
                    .filter(|i| i % 3 == partition as usize)
                    .take(n)
                    .map(|i| line(i).partition(partition))
                    .collect();
                if !batch.is_empty() {
                    producer.send_batch(batch).await.unwrap();
                }
            }
            let load = load_input(&broker, "in", 10_000, line).await.unwrap();
            let total: u64 = held.iter().map(|&n| n as u64).sum();
            assert_eq!(load.held, total, "{held:?}");
            assert_eq!(load.produced, 10_000 - total, "{held:?}");
            assert_loaded(&broker, 10_000).await;
        }
    }

    #[tokio::test]
    async fn a_topic_holding_another_input_is_refused() {
        let broker = Broker::in_memory().await.unwrap();
        ensure_topic(&broker, "in", 3).await.unwrap();
        load_input(&broker, "in", 100, line).await.unwrap();
        let other = |i: usize| ProducerRecord::new("in", format!("other {i}").into_bytes());
        let err = load_input(&broker, "in", 200, other).await.unwrap_err();
        assert!(
            err.to_string()
                .contains("does not hold the start of this input"),
            "{err}"
        );
        let err = load_input(&broker, "in", 50, line).await.unwrap_err();
        assert!(err.to_string().contains("more than the"), "{err}");
        // Refused loads append nothing.
        assert_loaded(&broker, 100).await;
    }

    #[tokio::test]
    async fn keyed_records_go_to_their_key_partition() {
        let broker = Broker::in_memory().await.unwrap();
        ensure_topic(&broker, "in", 3).await.unwrap();
        let keyed = |i: usize| line(i).key(format!("user{}", i % 7).into_bytes());
        load_input(&broker, "in", 300, keyed).await.unwrap();
        for partition in 0..3u32 {
            for (key, _) in partition_records(&broker, "in", partition).await {
                let key = key.unwrap();
                assert_eq!(
                    broker_embedded::partitioner::partition_for_key(&key, 3),
                    partition
                );
            }
        }
        assert_eq!(
            load_input(&broker, "in", 300, keyed)
                .await
                .unwrap()
                .produced,
            0
        );
    }
}
