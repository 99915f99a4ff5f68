//! The input partitions of a task and their buffered records, as Kafka
//! Streams' `PartitionGroup`: which record the task processes next (the
//! lowest timestamp first), and whether it waits for an empty partition
//! first (`max.task.idle.ms`).
//!
//! The stream threads and the [`crate::TopologyTestDriver`] both feed a
//! task through its group, so both run this choice.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::client::{InRecord, TopicPartition};

/// The buffered records of one partition, in offset order: the runs the
/// consumer handed out, kept as they came, so that a record is moved once,
/// from its decoded batch to its task.
#[derive(Debug, Default)]
struct RecordQueue {
    /// Never holds an empty run, so that the front record is the first of
    /// the first run.
    runs: VecDeque<std::vec::IntoIter<InRecord>>,
}

impl RecordQueue {
    fn push(&mut self, run: std::vec::IntoIter<InRecord>) {
        if run.len() > 0 {
            self.runs.push_back(run);
        }
    }

    fn front(&self) -> Option<&InRecord> {
        self.runs.front().and_then(|run| run.as_slice().first())
    }

    fn pop_front(&mut self) -> Option<InRecord> {
        let run = self.runs.front_mut()?;
        let record = run.next();
        if run.len() == 0 {
            self.runs.pop_front();
        }
        record
    }

    fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    fn len(&self) -> usize {
        self.runs.iter().map(ExactSizeIterator::len).sum()
    }

    fn clear(&mut self) {
        self.runs.clear();
    }
}

/// One input partition of a task.
#[derive(Debug)]
struct Input {
    /// The task's source slot that reads it; `None`: no source reads its
    /// topic (its records are dropped).
    slot: Option<usize>,
    queue: RecordQueue,
}

/// A run of records of one partition that the task may process now: up to
/// (and including) the records at `bound`, the next timestamp of another
/// partition.
#[derive(Debug)]
pub(crate) struct NextRun {
    pub(crate) partition: TopicPartition,
    pub(crate) slot: Option<usize>,
    pub(crate) bound: Option<i64>,
}

/// A task's input partitions, their buffers and consumed offsets.
#[derive(Debug, Default)]
pub(crate) struct PartitionGroup {
    inputs: BTreeMap<TopicPartition, Input>,
    /// The next offset to commit per input partition (processed + 1).
    consumed: FxHashMap<TopicPartition, u64>,
    /// Since when the task waits for an empty input partition while others
    /// have data (`max.task.idle.ms`).
    idle_wait_since: Option<Instant>,
}

impl PartitionGroup {
    /// Adds input partition `tp`, read by source slot `slot`; nothing if it
    /// is there.
    pub(crate) fn add_partition(&mut self, tp: TopicPartition, slot: Option<usize>) {
        self.inputs.entry(tp).or_insert(Input {
            slot,
            queue: RecordQueue::default(),
        });
    }

    /// Whether `tp` is one of the task's input partitions.
    pub(crate) fn contains(&self, tp: &TopicPartition) -> bool {
        self.inputs.contains_key(tp)
    }

    /// Buffers `records` of `tp` (in offset order); `false` if `tp` is not
    /// an input of the task.
    pub(crate) fn add_records(&mut self, tp: &TopicPartition, records: Vec<InRecord>) -> bool {
        match self.inputs.get_mut(tp) {
            Some(input) => {
                input.queue.push(records.into_iter());
                true
            }
            None => false,
        }
    }

    /// Drops the buffered records of `tp` (they will be read again).
    pub(crate) fn clear_partition(&mut self, tp: &TopicPartition) {
        if let Some(input) = self.inputs.get_mut(tp) {
            input.queue.clear();
        }
    }

    /// Each input partition with the number of its records buffered.
    pub(crate) fn buffered(&self) -> impl Iterator<Item = (&TopicPartition, usize)> {
        self.inputs
            .iter()
            .map(|(tp, input)| (tp, input.queue.len()))
    }

    /// Whether no partition has a buffered record.
    pub(crate) fn is_empty(&self) -> bool {
        self.inputs.values().all(|i| i.queue.is_empty())
    }

    /// The next offset to commit of each partition processed from.
    pub(crate) fn consumed(&self) -> &FxHashMap<TopicPartition, u64> {
        &self.consumed
    }

    /// The partition to process from next: the one whose next record has
    /// the lowest timestamp (ties go to the first partition), with how far
    /// it may run before another partition's next record comes first.
    /// `None` when nothing is buffered, or when the task waits for an empty
    /// partition: with `max_idle`, a task with data on some partitions and
    /// none on others waits up to that long before it processes the others
    /// (Kafka's enforced processing).
    ///
    /// A partition in `lagging` (the consumer knows it holds records past
    /// what it has fetched) that has nothing buffered holds the task back
    /// whatever `max_idle`, until its records arrive (Kafka's KIP-695: a
    /// task does not process ahead of an input that is only behind, not
    /// empty).
    pub(crate) fn next_run(
        &mut self,
        max_idle: Option<Duration>,
        lagging: &[TopicPartition],
    ) -> Option<NextRun> {
        if self.inputs.len() > 1
            && self.inputs.values().any(|i| !i.queue.is_empty())
            && self
                .inputs
                .iter()
                .any(|(tp, i)| i.queue.is_empty() && lagging.contains(tp))
        {
            return None;
        }
        if let (Some(limit), true) = (max_idle, self.inputs.len() > 1) {
            let empty = self.inputs.values().any(|i| i.queue.is_empty());
            let any = self.inputs.values().any(|i| !i.queue.is_empty());
            if empty && any {
                let since = *self.idle_wait_since.get_or_insert_with(Instant::now);
                if since.elapsed() < limit {
                    return None;
                }
                tracing::trace!("max.task.idle.ms passed; processing with empty input partitions");
            } else if !empty {
                self.idle_wait_since = None;
            }
        }
        let mut next: Option<(i64, &TopicPartition, &Input)> = None;
        for (tp, input) in &self.inputs {
            if let Some(r) = input.queue.front() {
                if next.is_none_or(|(ts, _, _)| r.timestamp < ts) {
                    next = Some((r.timestamp, tp, input));
                }
            }
        }
        let (_, tp, input) = next?;
        // The other buffers do not change during the run, and an empty one
        // stops nothing: the idle check above has let it be.
        let bound = self
            .inputs
            .iter()
            .filter(|(other, _)| *other != tp)
            .filter_map(|(_, i)| i.queue.front().map(|r| r.timestamp))
            .min();
        Some(NextRun {
            partition: tp.clone(),
            slot: input.slot,
            bound,
        })
    }

    /// The records of `run`, to pop while within its bound.
    pub(crate) fn run_records(&mut self, run: &NextRun) -> Option<RunRecords<'_>> {
        let queue = &mut self.inputs.get_mut(&run.partition)?.queue;
        Some(RunRecords {
            queue,
            bound: run.bound,
        })
    }

    /// Notes that the records of `tp` up to `offset` are processed.
    pub(crate) fn processed(&mut self, tp: TopicPartition, offset: u64) {
        self.consumed.insert(tp, offset + 1);
    }
}

/// The records of one [`NextRun`], borrowed from their queue.
#[derive(Debug)]
pub(crate) struct RunRecords<'a> {
    queue: &'a mut RecordQueue,
    bound: Option<i64>,
}

impl RunRecords<'_> {
    /// The next record, if it is within the run's bound.
    pub(crate) fn pop(&mut self) -> Option<InRecord> {
        if self
            .bound
            .is_some_and(|b| self.queue.front().is_some_and(|r| r.timestamp > b))
        {
            return None;
        }
        self.queue.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::Headers;

    fn record(offset: u64, timestamp: i64) -> InRecord {
        InRecord {
            offset,
            timestamp,
            key: None,
            value: None,
            headers: Headers::new(),
        }
    }

    /// Drains the group as a task does; returns (partition, offset) in
    /// processing order.
    fn drain(group: &mut PartitionGroup, max_idle: Option<Duration>) -> Vec<(u32, u64)> {
        let mut order = Vec::new();
        while let Some(run) = group.next_run(max_idle, &[]) {
            let mut last = None;
            if let Some(mut records) = group.run_records(&run) {
                while let Some(r) = records.pop() {
                    order.push((run.partition.partition, r.offset));
                    last = Some(r.offset);
                }
            }
            if let Some(offset) = last {
                group.processed(run.partition.clone(), offset);
            }
        }
        order
    }

    #[test]
    fn the_lowest_timestamp_goes_first_and_ties_go_to_the_first_partition() {
        let mut group = PartitionGroup::default();
        let a = TopicPartition::new("a", 0);
        let b = TopicPartition::new("a", 1);
        group.add_partition(a.clone(), Some(0));
        group.add_partition(b.clone(), Some(0));
        group.add_records(&a, vec![record(0, 10), record(1, 30), record(2, 31)]);
        group.add_records(&b, vec![record(0, 20), record(1, 30), record(2, 40)]);
        // A run goes on through records at the other partition's next
        // timestamp: b's 30 goes before a's 30.
        assert_eq!(
            drain(&mut group, None),
            [(0, 0), (1, 0), (1, 1), (0, 1), (0, 2), (1, 2)]
        );
        assert_eq!(group.consumed().get(&a), Some(&3));
        assert_eq!(group.consumed().get(&b), Some(&3));
        assert!(group.is_empty());
    }

    #[test]
    fn an_empty_partition_holds_the_others_back_until_max_task_idle_passes() {
        let mut group = PartitionGroup::default();
        let a = TopicPartition::new("a", 0);
        let b = TopicPartition::new("b", 0);
        group.add_partition(a.clone(), Some(0));
        group.add_partition(b.clone(), Some(1));
        group.add_records(&a, vec![record(0, 10)]);
        assert!(group.next_run(Some(Duration::from_secs(60)), &[]).is_none());
        // Without the wait, or once it has passed, the record goes.
        assert_eq!(drain(&mut group, None), [(0, 0)]);
        group.add_records(&a, vec![record(1, 11)]);
        assert_eq!(drain(&mut group, Some(Duration::ZERO)), [(0, 1)]);
    }

    #[test]
    fn an_empty_partition_that_lags_holds_the_others_back_whatever_max_task_idle() {
        let mut group = PartitionGroup::default();
        let a = TopicPartition::new("a", 0);
        let b = TopicPartition::new("b", 0);
        group.add_partition(a.clone(), Some(0));
        group.add_partition(b.clone(), Some(1));
        group.add_records(&a, vec![record(0, 10)]);
        // b has records not fetched yet: a waits, without max.task.idle.ms.
        assert!(group.next_run(None, std::slice::from_ref(&b)).is_none());
        // Once b's records are here, both go, in timestamp order.
        group.add_records(&b, vec![record(0, 5)]);
        let first = group.next_run(None, std::slice::from_ref(&b)).unwrap();
        assert_eq!(first.partition, b);
        // A caught-up empty partition holds nothing back.
        let mut group = PartitionGroup::default();
        group.add_partition(a.clone(), Some(0));
        group.add_partition(b.clone(), Some(1));
        group.add_records(&a, vec![record(0, 10)]);
        assert!(group.next_run(None, &[]).is_some());
    }

    #[test]
    fn records_of_an_unknown_partition_are_refused() {
        let mut group = PartitionGroup::default();
        assert!(!group.add_records(&TopicPartition::new("x", 0), vec![record(0, 1)]));
        assert!(group.is_empty());
    }
}
