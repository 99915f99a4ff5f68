//! Loading an input into a topic so that each record is written exactly once, however
//! often the load is killed and run again ([`load`]), on any broker that offers the few
//! operations it needs ([`LoadTarget`]: the embedded broker, a Kafka cluster).

use anyhow::{bail, Context as _};
use broker_embedded::ProducerRecord;
use bytes::Bytes;

/// What [`crate::load_input`] found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLoad {
    /// Records of the input that the topic held already (from an earlier
    /// run, complete or interrupted).
    pub held: u64,
    /// Records this call appended.
    pub produced: u64,
}

/// A record's key and value, as a broker holds them.
pub(crate) type KeyValue = (Option<Bytes>, Option<Bytes>);

/// What [`load`] needs of a broker.
pub(crate) trait LoadTarget {
    /// The partition count of `topic`, which exists.
    async fn partitions(&self, topic: &str) -> anyhow::Result<u32>;

    /// The log start offset and the log end offset (the high watermark) of a partition.
    async fn offsets(&self, topic: &str, partition: u32) -> anyhow::Result<(u64, u64)>;

    /// The key and value of the record at `offset` of a partition, if the log still
    /// has it.
    async fn record_at(
        &self,
        topic: &str,
        partition: u32,
        offset: u64,
    ) -> anyhow::Result<Option<KeyValue>>;

    /// Appends `records` (each naming its partition, possibly none) with one idempotent
    /// producer, in order within each partition, and returns once every one is
    /// acknowledged (and, on the embedded broker, after a commit point of the topic).
    async fn append(&self, topic: &str, records: Vec<ProducerRecord>) -> anyhow::Result<()>;
}

/// Loads the `len` records `record(0)`, `record(1)`, ... into `topic` of `target`, so
/// that a load killed at any moment (SIGKILL included, in the middle of a batch) and run
/// again with the same input completes it, each record written exactly once.
///
/// Each record goes to a fixed partition: its own if it names one, else murmur2 of its
/// key (the Java producer's placement of a keyed record), else its index modulo the
/// partition count. A partition's records are appended in index order by one idempotent
/// producer: the broker appends a producer's batches of a partition in their sequence
/// order and refuses one that would leave a gap, so after a kill each partition holds a
/// prefix of its records. The load counts what each partition holds (its log end offset:
/// the topic must be written by this loader only, without transactions) and appends the
/// rest. Nothing depends on what the killed run acknowledged or on which producer wrote
/// what: a restart resumes where the log ends. An input that grows (the same records
/// and more after them) is completed the same way.
///
/// Before appending, the last record held in each partition is compared with the input
/// record that belongs there: a topic that holds another input, or more records than the
/// input has, is an error rather than a silent mix.
pub(crate) async fn load(
    target: &impl LoadTarget,
    topic: &str,
    len: usize,
    record: impl Fn(usize) -> ProducerRecord,
) -> anyhow::Result<InputLoad> {
    let partitions = target.partitions(topic).await?;
    if partitions == 0 {
        bail!("topic {topic} has no partitions");
    }
    // The index of each input record, by partition, in index order.
    let mut of_partition: Vec<Vec<usize>> = vec![Vec::new(); partitions as usize];
    let mut records: Vec<Option<ProducerRecord>> = Vec::with_capacity(len);
    for i in 0..len {
        let mut r = record(i);
        let partition = match (r.partition, &r.key) {
            (Some(p), _) => p,
            (None, Some(key)) => broker_embedded::partitioner::partition_for_key(key, partitions),
            (None, None) => (i % partitions as usize) as u32,
        };
        let Some(list) = of_partition.get_mut(partition as usize) else {
            bail!(
                "input record {i} names partition {partition} of {topic}, which has {partitions}"
            );
        };
        list.push(i);
        r.partition = Some(partition);
        records.push(Some(r));
    }

    let mut held_total = 0u64;
    let mut missing: Vec<usize> = Vec::new();
    for (partition, indexes) in (0u32..).zip(&of_partition) {
        let (log_start, held) = target
            .offsets(topic, partition)
            .await
            .with_context(|| format!("cannot read the offsets of {topic}-{partition}"))?;
        let expected = indexes.len() as u64;
        if held > expected {
            bail!(
                "{topic}-{partition} holds {held} records, more than the {expected} of this \
                 input that belong there: the topic holds another input; use a fresh one"
            );
        }
        let held_len = held as usize;
        if held > log_start {
            let last = held - 1;
            let index = indexes[held_len - 1];
            let found = target.record_at(topic, partition, last).await?;
            let same = match (&found, records[index].as_ref()) {
                (Some((key, value)), Some(w)) => *key == w.key && *value == w.value,
                _ => true,
            };
            if !same {
                bail!(
                    "{topic}-{partition} does not hold the start of this input: its record at \
                     offset {last} is not input record {index} (a topic loaded with another \
                     input, or by an older version that spread records differently); use a \
                     fresh data dir or topic"
                );
            }
        }
        held_total += held;
        missing.extend_from_slice(&indexes[held_len..]);
    }
    missing.sort_unstable();

    let append: Vec<ProducerRecord> = missing.iter().filter_map(|&i| records[i].take()).collect();
    // Called with nothing to append too: on the embedded broker it ends with a commit
    // point, which makes what an earlier run appended durable.
    target.append(topic, append).await?;
    if held_total > 0 && !missing.is_empty() {
        tracing::info!(
            topic,
            held = held_total,
            produced = missing.len(),
            "resumed an interrupted input load"
        );
    }
    Ok(InputLoad {
        held: held_total,
        produced: missing.len() as u64,
    })
}
