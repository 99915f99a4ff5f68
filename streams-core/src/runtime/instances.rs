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
//! claim, and the newest claim of a task wins. The record layout is in
//! `directory.rs` (and `docs/format.md`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::client::{
    ClientSupplier, ConsumerSettings, Isolation, NewTopic, OutRecord, ProducerSettings,
    TopicPartition,
};
use crate::error::{Result, StreamsError};
use crate::exec::TaskId;

use super::directory::InstanceRecord;
use super::state::{lock, Shared};
use super::task_manager::wall_clock_ms;

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
        max_partition_fetch_bytes: 1024 * 1024,
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
