//! The instances exchange: every instance of an app that sets
//! `application.server` publishes the tasks it owns to the compacted topic
//! `<application.id>-instances` (key: its `application.server`) whenever
//! they change, and reads everyone else's records, so that each instance
//! knows which one owns a key (Kafka Streams hands the same map to every
//! member through its partition assignor's user data; here the embedded
//! broker's coordinator assigns partitions itself and librdkafka takes no
//! user data, so a topic carries it, on both backends alike).
//!
//! A clean close publishes a tombstone. An instance that died leaves its
//! last record; the instance that takes its tasks over publishes a newer
//! claim, and the newest claim of a task wins.
//!
//! Record value layout (version 1): `u8 version | i64 published_ms (BE) |
//! u32 task count (BE) | per task: u32 sub-topology, u32 partition (BE)`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::{
    ClientSupplier, ConsumerSettings, Isolation, NewTopic, OutRecord, ProducerSettings,
    TopicPartition,
};
use crate::error::{Result, StreamsError};
use crate::exec::TaskId;

use super::state::{lock, Shared};
use super::task_manager::wall_clock_ms;

/// The version byte of an instance record.
const RECORD_VERSION: u8 = 1;

/// How long one poll of the instances topic waits.
const POLL_TIMEOUT: Duration = Duration::from_millis(50);

/// How often an instance publishes its record even when its tasks did not
/// change, so that a newer claim always exists for the tasks it holds.
const REPUBLISH_INTERVAL: Duration = Duration::from_secs(30);

/// The compacted topic of `application_id`'s instances.
pub(crate) fn instances_topic(application_id: &str) -> String {
    format!("{application_id}-instances")
}

/// Creates the instances topic unless it exists.
pub(crate) async fn create_topic(
    admin: &dyn crate::client::Admin,
    application_id: &str,
) -> Result<()> {
    let topic = instances_topic(application_id);
    let new = NewTopic::new(topic.clone(), 1).config("cleanup.policy", "compact");
    if admin.create_topic(new).await? {
        tracing::info!(topic, "created the instances topic");
    }
    Ok(())
}

/// What an instance last published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InstanceRecord {
    /// Its tasks, sorted.
    pub(crate) tasks: Vec<TaskId>,
    /// When it published them (wall clock, epoch ms).
    pub(crate) published_ms: i64,
}

impl InstanceRecord {
    fn encode(&self) -> Bytes {
        let mut out = Vec::with_capacity(13 + 8 * self.tasks.len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.published_ms.to_be_bytes());
        let count = u32::try_from(self.tasks.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for task in self.tasks.iter().take(count as usize) {
            out.extend_from_slice(&task.subtopology.to_be_bytes());
            out.extend_from_slice(&task.partition.to_be_bytes());
        }
        Bytes::from(out)
    }

    fn decode(bytes: &[u8]) -> std::result::Result<Self, String> {
        let (&version, rest) = bytes.split_first().ok_or("an empty record")?;
        if version != RECORD_VERSION {
            return Err(format!("unknown version {version}"));
        }
        let take = |at: usize, n: usize| rest.get(at..at + n).ok_or("a truncated record");
        let published_ms = i64::from_be_bytes(take(0, 8)?.try_into().map_err(|_| "bad length")?);
        let count = u32::from_be_bytes(take(8, 4)?.try_into().map_err(|_| "bad length")?);
        let expected = 12usize.saturating_add((count as usize).saturating_mul(8));
        if rest.len() != expected {
            return Err(format!(
                "{} bytes after the version for {count} tasks, expected {expected}",
                rest.len()
            ));
        }
        let tasks = rest[12..]
            .chunks_exact(8)
            .map(|c| TaskId {
                subtopology: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                partition: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok(Self {
            tasks,
            published_ms,
        })
    }
}

/// The running exchange thread.
#[derive(Debug)]
pub(crate) struct InstancesThread {
    join: Option<std::thread::JoinHandle<()>>,
}

impl InstancesThread {
    /// Waits for the thread to stop (after the app's shutdown flag is set).
    pub(crate) fn join(&mut self) {
        if let Some(join) = self.join.take() {
            if join.join().is_err() {
                tracing::warn!("the instances thread panicked");
            }
        }
    }
}

/// Starts the exchange of instance `server` of `application_id`.
pub(crate) fn start(
    application_id: &str,
    server: String,
    clients: Arc<dyn ClientSupplier>,
    shared: Arc<Shared>,
) -> Result<InstancesThread> {
    let topic = instances_topic(application_id);
    let client_id = format!("{application_id}-instances");
    let join = std::thread::Builder::new()
        .name(client_id.clone())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| StreamsError::Internal(format!("cannot build a runtime: {e}")))
                .and_then(|rt| rt.block_on(run(&topic, &server, &client_id, &*clients, &shared)));
            if let Err(e) = result {
                // Queries then see only this instance; processing goes on.
                tracing::warn!(topic, error = %e, "the instances exchange stopped");
            }
        })
        .map_err(|e| StreamsError::Internal(format!("cannot start the instances thread: {e}")))?;
    Ok(InstancesThread { join: Some(join) })
}

/// The tasks this instance owns now.
fn local_tasks(shared: &Shared) -> Vec<TaskId> {
    let cores = lock(&shared.cores).clone();
    let mut tasks: Vec<TaskId> = cores
        .iter()
        .flat_map(|core| {
            super::task_manager::lock(core)
                .tasks
                .keys()
                .copied()
                .collect::<Vec<_>>()
        })
        .collect();
    tasks.sort();
    tasks
}

async fn run(
    topic: &str,
    server: &str,
    client_id: &str,
    clients: &dyn ClientSupplier,
    shared: &Shared,
) -> Result<()> {
    let producer = clients.producer(ProducerSettings {
        client_id: format!("{client_id}-producer"),
        transactional_id: None,
        transaction_timeout_ms: 60_000,
    })?;
    let mut consumer = clients.restore_consumer(ConsumerSettings {
        client_id: format!("{client_id}-consumer"),
        group_id: None,
        isolation: Isolation::ReadUncommitted,
        session_timeout_ms: 45_000,
        heartbeat_interval_ms: 3_000,
        max_poll_records: 1_000,
        background_fetch: false,
    })?;
    let tp = TopicPartition::new(topic, 0);
    let marks = consumer.watermarks(&tp).await?;
    consumer.assign(vec![(tp.clone(), marks.log_start)]).await?;
    let topics = [topic.to_owned()];
    let publish = |value: Option<Bytes>| {
        let producer = producer.clone();
        let topics = &topics;
        async move {
            let record = OutRecord {
                topic,
                partition: Some(0),
                timestamp: wall_clock_ms(),
                key: Some(server.as_bytes()),
                value: value.as_deref(),
                headers: &[],
            };
            producer.send(&[record]).await?;
            producer.flush(topics).await
        }
    };
    let mut published: Option<(Vec<TaskId>, Instant)> = None;
    while !shared.shutting_down() {
        let tasks = local_tasks(shared);
        let due = match &published {
            Some((last, at)) => *last != tasks || at.elapsed() >= REPUBLISH_INTERVAL,
            None => true,
        };
        if due {
            let record = InstanceRecord {
                tasks: tasks.clone(),
                published_ms: wall_clock_ms(),
            };
            publish(Some(record.encode())).await?;
            tracing::debug!(
                server,
                tasks = tasks.len(),
                "published this instance's tasks"
            );
            published = Some((tasks, Instant::now()));
        }
        for run in consumer.poll(POLL_TIMEOUT).await? {
            let mut instances = lock(&shared.instances);
            for record in run.records {
                let Some(key) = record.key.as_deref() else {
                    continue;
                };
                let Ok(key) = std::str::from_utf8(key) else {
                    tracing::warn!(
                        topic,
                        offset = record.offset,
                        "skipping an instance record whose key is not UTF-8"
                    );
                    continue;
                };
                match record.value.as_deref().map(InstanceRecord::decode) {
                    None => {
                        instances.remove(key);
                    }
                    Some(Ok(decoded)) => {
                        instances.insert(key.to_owned(), decoded);
                    }
                    Some(Err(reason)) => {
                        tracing::warn!(
                            topic,
                            offset = record.offset,
                            reason,
                            "skipping an instance record that does not decode"
                        );
                    }
                }
            }
        }
    }
    if !shared.killed() {
        publish(None).await?;
    }
    Ok(())
}

/// The other instances' records by `application.server`.
pub(crate) type Instances = BTreeMap<String, InstanceRecord>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let record = InstanceRecord {
            tasks: vec![
                TaskId {
                    subtopology: 0,
                    partition: 2,
                },
                TaskId {
                    subtopology: 1,
                    partition: 0,
                },
            ],
            published_ms: 1_700_000_000_000,
        };
        let bytes = record.encode();
        // The layout of docs/format.md, byte by byte.
        assert_eq!(
            bytes.as_ref(),
            [
                1, 0, 0, 1, 0x8b, 0xcf, 0xe5, 0x68, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0,
                1, 0, 0, 0, 0
            ]
        );
        assert_eq!(InstanceRecord::decode(&bytes), Ok(record));
        assert!(InstanceRecord::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(InstanceRecord::decode(&[]).is_err());
        let mut other = bytes.to_vec();
        other[0] = 9;
        assert!(InstanceRecord::decode(&other).is_err());
        let mut huge = bytes[..9].to_vec();
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(InstanceRecord::decode(&huge).is_err());
    }
}
