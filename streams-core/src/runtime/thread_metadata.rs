//! What a running app's stream threads hold right now (Kafka's
//! `KafkaStreams#metadataForLocalThreads`): their tasks, each task's input
//! partitions, how far it has processed them and how many of their records
//! it holds buffered.

use super::task_manager::lock;
use super::StreamsApp;
use crate::exec::TaskId;

/// One stream thread of this instance; see
/// [`StreamsApp::metadata_for_local_threads`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadMetadata {
    /// The thread's name, `<application.id>-StreamThread-<n>` (from 1).
    pub thread_name: String,
    /// The thread's tasks, sorted by id.
    pub tasks: Vec<TaskMetadata>,
}

/// One task of a stream thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskMetadata {
    /// The task: sub-topology and partition.
    pub task_id: TaskId,
    /// Whether it processes (`false` while its stores restore).
    pub running: bool,
    /// Its stream time: the highest timestamp it has processed.
    pub stream_time: Option<i64>,
    /// Its input partitions, sorted.
    pub partitions: Vec<PartitionMetadata>,
}

/// One input partition of a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// The physical topic name.
    pub topic: String,
    /// The partition.
    pub partition: u32,
    /// Records fetched and not processed yet; bounded by
    /// `buffered.records.per.partition` plus one poll's records
    /// (`max.poll.records`).
    pub buffered_records: u64,
    /// The offset after the last record processed (what the next commit
    /// stores), if any was processed since the task was created.
    pub next_offset: Option<u64>,
}

impl StreamsApp {
    /// The stream threads of this instance with their tasks, as now (Kafka's
    /// `metadataForLocalThreads`). Empty before [`StreamsApp::start`].
    pub fn metadata_for_local_threads(&self) -> Vec<ThreadMetadata> {
        let cores = lock(&self.shared.cores).clone();
        let application_id = self.config.application_id();
        cores
            .iter()
            .map(|core| {
                let core = lock(core);
                let mut tasks: Vec<TaskMetadata> = core
                    .tasks
                    .iter()
                    .map(|(id, entry)| {
                        let inputs = entry.task.inputs();
                        let consumed = inputs.consumed();
                        let partitions = inputs
                            .buffered()
                            .map(|(tp, buffered)| PartitionMetadata {
                                topic: tp.topic.clone(),
                                partition: tp.partition,
                                buffered_records: buffered as u64,
                                next_offset: consumed.get(tp).copied(),
                            })
                            .collect();
                        TaskMetadata {
                            task_id: *id,
                            running: entry.running(),
                            stream_time: entry.task.stream_time(),
                            partitions,
                        }
                    })
                    .collect();
                tasks.sort_by_key(|t| t.task_id);
                ThreadMetadata {
                    thread_name: format!("{application_id}-StreamThread-{}", core.index + 1),
                    tasks,
                }
            })
            .collect()
    }
}
