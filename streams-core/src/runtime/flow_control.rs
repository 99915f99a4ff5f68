//! Back-pressure between a stream thread's consumer and its tasks, as Kafka
//! Streams does it: an input partition whose task holds more than
//! `buffered.records.per.partition` of its records not yet processed is
//! paused in the consumer (no more fetches), and resumed once the task has
//! worked its buffer down to that bound. The partitions of a task that is
//! not running (restoring) are paused until it runs. So a task that cannot
//! process (waiting for another input, `max.task.idle.ms`, or restoring)
//! holds at most one poll's records past the bound, however far its input
//! runs ahead.

use rustc_hash::FxHashSet;

use crate::client::{MainConsumer, TopicPartition};
use crate::error::Result;

use super::task_manager::Core;

/// The partitions a stream thread has paused.
#[derive(Debug)]
pub(super) struct FlowControl {
    /// `buffered.records.per.partition`.
    max_buffered: usize,
    /// Paused by this thread, as far as it knows.
    paused: FxHashSet<TopicPartition>,
}

impl FlowControl {
    pub(super) fn new(max_buffered: u64) -> Self {
        Self {
            max_buffered: usize::try_from(max_buffered).unwrap_or(usize::MAX),
            paused: FxHashSet::default(),
        }
    }

    /// The input partitions to hold back now: those with more than the
    /// bound buffered, and every buffered partition of a task not running.
    pub(super) fn wanted(&self, core: &Core) -> FxHashSet<TopicPartition> {
        let mut wanted = FxHashSet::default();
        for entry in core.tasks.values() {
            let running = entry.running();
            for (tp, buffered) in entry.task.inputs().buffered() {
                if !running || buffered > self.max_buffered {
                    wanted.insert(tp.clone());
                }
            }
        }
        wanted
    }

    /// Pauses `wanted` and resumes what this thread paused and no longer
    /// wants paused; partitions no longer assigned are forgotten. Pausing
    /// is asked again on every call while wanted: a partition revoked and
    /// assigned again in one poll comes back unpaused.
    pub(super) fn apply(
        &mut self,
        wanted: FxHashSet<TopicPartition>,
        consumer: &mut dyn MainConsumer,
    ) -> Result<()> {
        if wanted.is_empty() && self.paused.is_empty() {
            return Ok(());
        }
        let assigned: FxHashSet<TopicPartition> = consumer.assignment().into_iter().collect();
        let resume: Vec<TopicPartition> = self
            .paused
            .iter()
            .filter(|tp| !wanted.contains(*tp) && assigned.contains(*tp))
            .cloned()
            .collect();
        let pause: Vec<TopicPartition> = wanted
            .iter()
            .filter(|tp| assigned.contains(*tp))
            .cloned()
            .collect();
        if !resume.is_empty() {
            tracing::trace!(partitions = ?resume, "resuming input partitions");
            consumer.resume(&resume)?;
        }
        if !pause.is_empty() {
            let new = pause.iter().filter(|tp| !self.paused.contains(*tp)).count();
            if new > 0 {
                tracing::trace!(partitions = ?pause, "pausing input partitions whose tasks hold enough");
            }
            consumer.pause(&pause)?;
        }
        self.paused = pause.into_iter().collect();
        Ok(())
    }
}
