//! The buffered input records of one partition of a task.

use std::collections::VecDeque;

use crate::client::InRecord;

/// The buffered input records of one partition, in offset order: the runs
/// the consumer handed out ([`PartitionRun`]), kept as they came, so that a
/// record is moved once, from its decoded batch to its task.
#[derive(Debug, Default)]
pub(super) struct RecordQueue {
    /// Never holds an empty run, so that the front record is the first of
    /// the first run.
    pub(super) runs: VecDeque<std::vec::IntoIter<InRecord>>,
}

impl RecordQueue {
    pub(super) fn push(&mut self, run: std::vec::IntoIter<InRecord>) {
        if run.len() > 0 {
            self.runs.push_back(run);
        }
    }

    pub(super) fn front(&self) -> Option<&InRecord> {
        self.runs.front().and_then(|run| run.as_slice().first())
    }

    pub(super) fn pop_front(&mut self) -> Option<InRecord> {
        let run = self.runs.front_mut()?;
        let record = run.next();
        if run.len() == 0 {
            self.runs.pop_front();
        }
        record
    }

    pub(super) fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.runs.clear();
    }
}
