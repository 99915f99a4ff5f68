//! Kafka's DeleteRecords: moving a partition's log start offset forward, inside a segment if
//! need be.
//!
//! The new start is recorded durably in `log-bounds` (the same record retention moves)
//! before anything is deleted, and is read back at open, so records below it stay hidden
//! after a restart: reads below it are out of range, and ListOffsets by timestamp skips
//! them. Sealed segments that lie wholly below the new start are deleted; the rest of the
//! segment holding the start stays on disk until retention or a later DeleteRecords takes
//! it.

use tracing::{debug, info};

use super::{bounds, sync_dir, Log};
use crate::error::{BrokerError, Result};

impl Log {
    /// Moves the log start offset to `before` (`None`: the log end offset, Kafka's high
    /// watermark on a single node) and returns the log start offset then (Kafka's low
    /// watermark). A `before` at or below the present start changes nothing; one above the
    /// log end is `OffsetOutOfRange`. The active segment is fsynced first, so the recorded
    /// end is never ahead of the data; a sealed segment is deleted when the next segment
    /// starts at or below the new start.
    pub(crate) fn delete_records_before(&mut self, before: Option<u64>) -> Result<u64> {
        if self.poisoned {
            return Err(self.poisoned_error());
        }
        if let Some(d) = &self.damage {
            return Err(self.offline_error(d));
        }
        if self.read_only {
            return Err(BrokerError::ReadOnly {
                what: format!("delete records of {}", self.label),
            });
        }
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        let target = before.unwrap_or(end);
        if target > end {
            return Err(BrokerError::OffsetOutOfRange {
                topic: self.topic.clone(),
                partition: self.partition,
                offset: target,
                log_start_offset: start,
                log_end_offset: end,
            });
        }
        if target <= start {
            return Ok(start);
        }
        self.flush()?;
        let recorded_end = self.recorded_bounds.map_or(0, |(_, e)| e).max(end);
        bounds::write(&self.dir, target, recorded_end, true)
            .map_err(|e| BrokerError::io(self.dir.join(bounds::BOUNDS_FILE), e))?;
        self.recorded_bounds = Some((target, recorded_end));
        self.log_start = target;

        // Sealed segments whose successor starts at or below the new start hold nothing
        // at or above it.
        let bases: Vec<u64> = self.sealed.keys().copied().collect();
        let mut deleted = 0;
        for (i, &base) in bases.iter().enumerate() {
            let next = bases
                .get(i + 1)
                .copied()
                .unwrap_or(self.active.base_offset());
            if next > target {
                break;
            }
            let Some(segment) = self.sealed.remove(&base) else {
                continue;
            };
            segment
                .remove_files()
                .map_err(|e| BrokerError::io(segment.path(), e))?;
            deleted += 1;
            debug!(
                "{}: deleted segment {} below the new log start offset {target}",
                self.label,
                segment.path().display()
            );
        }
        if deleted > 0 {
            sync_dir(&self.dir).map_err(|e| BrokerError::io(&self.dir, e))?;
            let first = self.first_segment_base();
            if let Some(gaps) = &mut self.gaps {
                gaps.prune_below(first);
            }
        }
        self.producers.prune_aborted_below(target);
        info!(
            "{}: log start offset moved from {start} to {target} (records deleted; {deleted} \
             segments removed)",
            self.label
        );
        Ok(target)
    }
}
