//! How far a consumer group on a Kafka broker has got, through librdkafka: whether it has
//! committed every record of its input topics, which tells a benchmark or an example that
//! a streams application (ours on Kafka, or Kafka Streams) has processed all its input
//! and that all its output is written ([`group_caught_up`], [`GroupWatch`]). The broker
//! is any Kafka: Apache Kafka, or `streams serve`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message as _;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::kafka_context::Ctx;
use crate::progress::GroupProgress;

/// How long one request to the broker may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The widest gap between a committed offset and the log end that is read to see whether
/// it holds only transaction markers; a wider one is taken as unprocessed.
const INSPECT_BELOW: i64 = 64;

/// Whether the consumer group `group` has committed, on every partition of `topics`, the
/// end of the partition: the group has processed every record that they hold.
///
/// The group's committed offsets are read first, then each partition's high watermark and
/// last stable offset. A partition is caught up when its committed offset reaches the high
/// watermark, or when no committed offset is needed (an empty partition). Under
/// exactly-once a transaction's commit marker takes an offset after its last record, so a
/// group that has processed everything can sit one offset (or a few) short of the log end:
/// such a short gap is read `read_committed`, and only data records count. A transaction
/// still open on a partition (its last stable offset below its high watermark) is not
/// caught up.
///
/// An unknown topic is an error. For a Kafka Streams application, `group` is its
/// application id and `topics` are its source topics and its repartition topics (see
/// [`repartition_topics`]); since such an application commits its input offsets only
/// after its outputs are written (in the same transaction under exactly-once), a group
/// that is caught up has all its outputs on the broker.
///
/// Each call makes its own clients; [`GroupWatch`] keeps them for repeated questions.
pub fn group_caught_up<S: AsRef<str>>(
    bootstrap: &str,
    group: &str,
    topics: &[S],
) -> anyhow::Result<bool> {
    GroupWatch::new(bootstrap, group)?.caught_up(topics)
}

/// The clients that answer how far one consumer group is on a Kafka cluster, kept for
/// repeated questions ([`GroupWatch::progress`], [`GroupWatch::caught_up`]). The
/// clients block their caller for up to a request's time limit (10 s).
pub struct GroupWatch {
    group: String,
    /// `read_committed`, with the group's id (it never joins the group nor commits): its
    /// watermark query answers the last stable offset, and the gaps are read as the
    /// application reads them.
    committed_reader: BaseConsumer<Ctx>,
    /// `read_uncommitted`, with the group's id too: metadata, high watermarks and the
    /// group's committed offsets. Asked by a `read_committed` consumer, the offsets would
    /// wait (librdkafka asks for stable offsets only, and the broker answers
    /// UNSTABLE_OFFSET_COMMIT while a transaction of the group is open, for up to the
    /// transaction timeout after a member's crash); asked this way they are the offsets
    /// committed so far, a transaction's once it commits.
    uncommitted: BaseConsumer<Ctx>,
}

impl std::fmt::Debug for GroupWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupWatch")
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

/// Whether a question about a topic the cluster does not have fails or leaves it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MissingTopic {
    Fail,
    Skip,
}

impl GroupWatch {
    /// Clients for the group `group` on the cluster at `bootstrap`. Nothing is asked yet.
    pub fn new(bootstrap: &str, group: &str) -> anyhow::Result<Self> {
        let committed_reader: BaseConsumer<Ctx> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("enable.partition.eof", "true")
            .set("fetch.wait.max.ms", "10")
            .create_with_context(Ctx::default())?;
        let uncommitted: BaseConsumer<Ctx> = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_uncommitted")
            .create_with_context(Ctx::default())?;
        Ok(Self {
            group: group.to_owned(),
            committed_reader,
            uncommitted,
        })
    }

    /// Whether the group has processed every record of `topics`: see [`group_caught_up`].
    /// An unknown topic is an error.
    pub fn caught_up<S: AsRef<str>>(&self, topics: &[S]) -> anyhow::Result<bool> {
        Ok(self.measure(topics, MissingTopic::Fail)?.remaining == 0)
    }

    /// The group's committed offsets and the records it has still to process over
    /// `topics`, counted as [`group_caught_up`] judges them (a short gap of transaction
    /// markers is no record; an open transaction's records are). A topic the cluster does
    /// not have yet (an internal topic before its application starts) is left out.
    pub fn progress<S: AsRef<str>>(&self, topics: &[S]) -> anyhow::Result<GroupProgress> {
        self.measure(topics, MissingTopic::Skip)
    }

    fn measure<S: AsRef<str>>(
        &self,
        topics: &[S],
        missing: MissingTopic,
    ) -> anyhow::Result<GroupProgress> {
        let group = &self.group;
        let mut progress = GroupProgress::default();
        let mut partitions = TopicPartitionList::new();
        for topic in topics {
            let topic = topic.as_ref();
            let metadata = self
                .uncommitted
                .fetch_metadata(Some(topic), REQUEST_TIMEOUT)
                .with_context(|| format!("cannot read the metadata of {topic}"))?;
            let found = metadata.topics().iter().find(|t| t.name() == topic);
            let unknown = match found.and_then(|t| t.error()).map(RDKafkaErrorCode::from) {
                None => found.is_none(),
                Some(RDKafkaErrorCode::UnknownTopicOrPartition) => true,
                Some(code) => anyhow::bail!("topic {topic}: {code}"),
            };
            match (unknown, found, missing) {
                (true, _, MissingTopic::Skip) => continue,
                (true, _, MissingTopic::Fail) | (false, None, _) => {
                    anyhow::bail!("the broker does not name topic {topic}")
                }
                (false, Some(found), _) => {
                    progress.committed_per_topic.insert(topic.to_owned(), 0);
                    for partition in found.partitions() {
                        partitions.add_partition(topic, partition.id());
                    }
                }
            }
        }
        if partitions.count() == 0 {
            return Ok(progress);
        }
        // Committed offsets first: a later watermark is at least as far as what they covered.
        let committed = committed_offsets(&self.uncommitted, &partitions)
            .with_context(|| format!("cannot read the committed offsets of group {group}"))?;

        let mut gaps: HashMap<String, Vec<(i32, i64, i64)>> = HashMap::new();
        for element in committed.elements() {
            let (topic, partition) = (element.topic(), element.partition());
            let (low, high) = self
                .uncommitted
                .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
                .with_context(|| format!("cannot read the offsets of {topic}-{partition}"))?;
            let (_, stable) = self
                .committed_reader
                .fetch_watermarks(topic, partition, REQUEST_TIMEOUT)
                .with_context(|| format!("cannot read the offsets of {topic}-{partition}"))?;
            let at = match element.offset() {
                Offset::Offset(at) => at,
                // Nothing committed: what the partition holds is still to process.
                _ => {
                    progress.remaining += u64::try_from(high - low).unwrap_or(0);
                    continue;
                }
            };
            let done = u64::try_from(at).unwrap_or(0);
            progress.committed += done;
            *progress
                .committed_per_topic
                .entry(topic.to_owned())
                .or_insert(0) += done;
            if at >= high {
                continue;
            }
            if stable < high || high - at > INSPECT_BELOW {
                progress.remaining += u64::try_from(high - at).unwrap_or(0);
                continue;
            }
            gaps.entry(topic.to_owned())
                .or_default()
                .push((partition, at, high));
        }
        for (topic, ranges) in &gaps {
            progress.remaining += records_in_gaps(&self.committed_reader, topic, ranges)?;
        }
        Ok(progress)
    }
}

/// The group's committed offsets of `partitions`, asked again while the group's
/// coordinator is not ready (on a new broker the first request creates
/// `__consumer_offsets`, and the answer is NOT_COORDINATOR for a moment).
fn committed_offsets(
    consumer: &BaseConsumer<Ctx>,
    partitions: &TopicPartitionList,
) -> KafkaResult<TopicPartitionList> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    loop {
        match consumer.committed_offsets(partitions.clone(), REQUEST_TIMEOUT) {
            Err(e)
                if Instant::now() < deadline
                    && matches!(
                        e.rdkafka_error_code(),
                        Some(
                            RDKafkaErrorCode::NotCoordinator
                                | RDKafkaErrorCode::CoordinatorLoadInProgress
                                | RDKafkaErrorCode::CoordinatorNotAvailable
                        )
                    ) =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            result => return result,
        }
    }
}

/// How many data records of `topic` lie in the `(partition, from, end)` ranges, read with
/// `consumer` (`read_committed`, partition EOF on): transaction markers and aborted
/// records are not counted.
fn records_in_gaps(
    consumer: &BaseConsumer<Ctx>,
    topic: &str,
    ranges: &[(i32, i64, i64)],
) -> anyhow::Result<u64> {
    let mut assignment = TopicPartitionList::new();
    for &(partition, from, _) in ranges {
        assignment.add_partition_offset(topic, partition, Offset::Offset(from))?;
    }
    consumer.assign(&assignment)?;
    let mut open: HashMap<i32, i64> = ranges.iter().map(|&(p, _, end)| (p, end)).collect();
    let mut records = 0;
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    while !open.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "reading {topic} up to its end took more than {} s",
            REQUEST_TIMEOUT.as_secs()
        );
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(message)) => {
                let Some(&end) = open.get(&message.partition()) else {
                    continue;
                };
                if message.offset() < end {
                    // A record below the end that the group has not committed.
                    records += 1;
                } else {
                    // Past the end seen before: what came later is not this question's.
                    open.remove(&message.partition());
                }
            }
            // The end of what read_committed may read, which was the high watermark.
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                open.remove(&partition);
            }
            Some(Err(e)) => return Err(e).with_context(|| format!("cannot read {topic}")),
        }
    }
    consumer.unassign()?;
    Ok(records)
}

/// The repartition topics of the Kafka Streams application `app_id` on the broker at
/// `bootstrap` (`<app_id>-...-repartition`; for the word count,
/// `<app_id>-word-counts-repartition`), sorted. Kafka Streams creates them in its first
/// rebalance, before it reports `RUNNING`.
pub fn repartition_topics(bootstrap: &str, app_id: &str) -> anyhow::Result<Vec<String>> {
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()?;
    let metadata = client
        .fetch_metadata(None, REQUEST_TIMEOUT)
        .context("cannot list the broker's topics")?;
    let prefix = format!("{app_id}-");
    let mut topics: Vec<String> = metadata
        .topics()
        .iter()
        .map(|t| t.name())
        .filter(|name| name.starts_with(&prefix) && name.ends_with("-repartition"))
        .map(str::to_owned)
        .collect();
    topics.sort();
    Ok(topics)
}
