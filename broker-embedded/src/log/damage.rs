//! When a partition's log cannot be trusted: finding the damage on open (a bad batch, a
//! hole or an overlap between segments, a log shorter than its recorded bounds), taking the
//! partition offline when a read finds it later, and the repair an operator can ask for.

use std::fs;
use std::path::{Path, PathBuf};

use tracing::{error, warn};

use super::bounds;
use super::gaps::Gaps;
use super::segment::{sync_dir, Scanned, Segment, SegmentDamage};
use super::Log;
use crate::error::{BrokerError, Result};

/// Why a partition's log is offline: where it stops being trustworthy. Offsets below
/// `offset` stay readable; nothing at or past it is read, and nothing is appended, retained
/// or compacted until an operator repairs the partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Damage {
    /// The file where the damage is.
    pub(crate) file: PathBuf,
    /// The first offset that cannot be read.
    pub(crate) offset: u64,
    /// The byte position in `file`.
    pub(crate) position: u64,
    /// What is wrong.
    pub(crate) reason: String,
}

/// What repairing an offline log does: the damaged file is truncated at the damage (or
/// removed, when the damage is at its first byte), every later segment is removed, and the
/// log ends at the damage's offset. Offsets `damage.offset..dropped_end` are lost.
#[derive(Debug, Clone)]
pub(crate) struct RepairPlan {
    /// Where the log stops being trustworthy.
    pub(crate) damage: Damage,
    /// The file to truncate and its new length.
    pub(crate) truncate: Option<(PathBuf, u64)>,
    /// Segment files removed (with their index files).
    pub(crate) remove: Vec<PathBuf>,
    /// Bytes of segment files dropped.
    pub(crate) dropped_bytes: u64,
    /// One past the highest offset any dropped batch claims (at least `damage.offset`).
    pub(crate) dropped_end: u64,
    /// The partition dir.
    pub(crate) dir: PathBuf,
    /// The log's `(start, end)` after the repair, recorded before any file is touched.
    pub(crate) bounds: (u64, u64),
}

/// Carries out `plan` on the partition dir's files. The log that planned it must be
/// dropped and the dir opened again afterwards.
pub(crate) fn apply_repair(plan: &RepairPlan) -> Result<()> {
    bounds::write(&plan.dir, plan.bounds.0, plan.bounds.1, true)
        .map_err(|e| BrokerError::io(plan.dir.join(bounds::BOUNDS_FILE), e))?;
    if let Some((file, len)) = &plan.truncate {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(file)
            .map_err(|e| BrokerError::io(file, e))?;
        f.set_len(*len)
            .and_then(|()| f.sync_all())
            .map_err(|e| BrokerError::io(file, e))?;
    }
    for file in plan.truncate.iter().map(|(f, _)| f).chain(&plan.remove) {
        for ext in ["index", "timeindex"] {
            let index = file.with_extension(ext);
            match fs::remove_file(&index) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(BrokerError::io(&index, e))
                }
                _ => {}
            }
        }
    }
    for file in &plan.remove {
        if file.is_dir() {
            fs::remove_dir_all(file).map_err(|e| BrokerError::io(file, e))?;
        } else {
            fs::remove_file(file).map_err(|e| BrokerError::io(file, e))?;
        }
    }
    if let Some(dir) = plan.damage.file.parent() {
        sync_dir(dir).map_err(|e| BrokerError::io(dir, e))?;
    }
    Ok(())
}

/// Whether the offsets `[from, to)` may be missing from a log: compaction recorded them,
/// or (a log compacted before gaps were recorded, `gaps` is `None`) they lie below the
/// cleaner checkpoint.
pub(super) fn gap_allowed(
    gaps: Option<&Gaps>,
    cleaner_checkpoint: u64,
    from: u64,
    to: u64,
) -> bool {
    match gaps {
        Some(gaps) => gaps.covers(from, to),
        None => to <= cleaner_checkpoint,
    }
}

impl Log {
    /// The first place where the segments stop adding up: damage a segment found in
    /// itself, or two neighbours whose offsets overlap or leave a hole that compaction did
    /// not record.
    pub(super) fn find_damage(&self, gaps_error: Option<String>) -> Option<Damage> {
        let recorded = self.recorded_bounds;
        let (start, end) = (self.log_start_offset(), self.log_end_offset());
        if let Some((recorded_start, _)) = recorded.filter(|&(s, _)| start > s) {
            let first = self
                .segments()
                .next()
                .map(Segment::path)
                .unwrap_or(&self.dir);
            return Some(Damage {
                file: first.to_path_buf(),
                offset: recorded_start,
                position: 0,
                reason: format!(
                    "offsets {recorded_start}..{} are missing: the log starts at offset {start} \
                     but {} records it starting at {recorded_start} (its first segment was \
                     deleted)",
                    start - 1,
                    self.dir.join(bounds::BOUNDS_FILE).display()
                ),
            });
        }
        let mut previous: Option<&Segment> = None;
        for segment in self.segments() {
            if let Some(prev) = previous {
                let (end, next) = (prev.next_offset(), segment.base_offset());
                if next < end {
                    return Some(Damage {
                        file: segment.path().to_path_buf(),
                        offset: next,
                        position: 0,
                        reason: format!(
                            "segment {} starts at offset {next} but the previous segment {} \
                             ends at offset {}",
                            segment.path().display(),
                            prev.path().display(),
                            end - 1
                        ),
                    });
                }
                if next > end && !self.gap_allowed(end, next) {
                    let why = match &gaps_error {
                        Some(e) => format!("the record of compaction's gaps is unusable ({e})"),
                        None => "compaction recorded no gap there".to_owned(),
                    };
                    return Some(Damage {
                        file: segment.path().to_path_buf(),
                        offset: end,
                        position: 0,
                        reason: format!(
                            "offsets {end}..{} are missing: segment {} ends before offset {end} \
                             and the next segment {} starts at offset {next}; {why} (a segment \
                             was deleted or emptied)",
                            next - 1,
                            prev.path().display(),
                            segment.path().display()
                        ),
                    });
                }
            }
            if let Some(d) = segment.damage() {
                return Some(Damage {
                    file: segment.path().to_path_buf(),
                    offset: d.offset,
                    position: d.position,
                    reason: d.reason.clone(),
                });
            }
            previous = Some(segment);
        }
        if let Some((_, recorded_end)) = recorded.filter(|&(_, e)| end < e) {
            return Some(Damage {
                file: self.active.path().to_path_buf(),
                offset: end,
                position: self.active.size(),
                reason: format!(
                    "offsets {end}..{} are missing: the log ends before offset {end} but {} \
                     records it ending before {recorded_end} (its last segment was deleted \
                     or cut short)",
                    recorded_end - 1,
                    self.dir.join(bounds::BOUNDS_FILE).display()
                ),
            });
        }
        None
    }

    /// Records the log's bounds at a clean close, when they moved.
    pub(super) fn record_bounds(&mut self) {
        let now = (self.log_start_offset(), self.log_end_offset());
        if self.recorded_bounds == Some(now)
            || (self.recorded_bounds.is_none() && now.1 == 0)
            || self.damage.is_some()
        {
            return;
        }
        match bounds::write(&self.dir, now.0, now.1, false) {
            Ok(()) => self.recorded_bounds = Some(now),
            Err(e) => {
                warn!(dir = %self.dir.display(), "{}: cannot record the log bounds: {e}", self.label)
            }
        }
    }

    /// Whether the offsets `[from, to)` between two segments may be missing: compaction
    /// recorded them, or (a log compacted before gaps were recorded) they lie below the
    /// cleaner checkpoint.
    pub(super) fn gap_allowed(&self, from: u64, to: u64) -> bool {
        gap_allowed(self.gaps.as_ref(), self.cleaner_checkpoint, from, to)
    }

    /// Why the partition is offline, if it is.
    pub(crate) fn damage(&self) -> Option<&Damage> {
        self.damage.as_ref()
    }

    pub(super) fn offline_error(&self, damage: &Damage) -> BrokerError {
        BrokerError::PartitionOffline {
            topic: self.topic.clone(),
            partition: self.partition,
            file: damage.file.clone(),
            offset: damage.offset,
            reason: damage.reason.clone(),
        }
    }

    /// Takes the partition offline at the batch at `offset` of `file`, which a read found
    /// corrupt (a sealed segment's batches are checked by reads, not on open).
    pub(crate) fn take_offline(&mut self, file: &Path, offset: u64, reason: &str) {
        if self.damage.as_ref().is_some_and(|d| d.offset <= offset) {
            return;
        }
        let Some(segment) = self.segments().find(|s| s.path() == file) else {
            return;
        };
        // The bad batch's position: the batch headers before it are intact.
        let mut position = 0;
        let mut scanner = segment.scanner(0);
        while let Ok(Scanned::Batch {
            position: at,
            header,
            ..
        }) = scanner.next(false)
        {
            if header.last_offset() >= offset {
                position = at;
                break;
            }
            position = at + header.size() as u64;
        }
        error!(
            file = %file.display(),
            offset,
            "{}: partition offline: {reason} (file {}, offset {offset}); offsets below {offset} \
             stay readable",
            self.label,
            file.display()
        );
        self.set_damage(Damage {
            file: file.to_path_buf(),
            offset,
            position,
            reason: reason.to_owned(),
        });
    }

    /// Takes the log offline at `damage`, found after open: its segment keeps the damage
    /// (so its index files are never written again) and the log refuses what lies past it.
    pub(super) fn set_damage(&mut self, damage: Damage) {
        let base = self
            .segments()
            .find(|s| s.path() == damage.file)
            .map(Segment::base_offset);
        if let Some(segment) = base.and_then(|b| self.segment_mut(b)) {
            segment.set_damage(SegmentDamage {
                position: damage.position,
                offset: damage.offset,
                reason: damage.reason.clone(),
            });
            segment.mark_indexes_dirty();
        }
        self.damage = Some(damage);
    }

    /// What a repair of this offline log would do: truncate the damaged file at the damage
    /// and delete every later segment. `None` when the log is online.
    pub(crate) fn repair_plan(&self) -> Result<Option<RepairPlan>> {
        let Some(damage) = self.damage.clone() else {
            return Ok(None);
        };
        let start = self.log_start_offset();
        let mut plan = RepairPlan {
            damage: damage.clone(),
            truncate: None,
            remove: Vec::new(),
            dropped_bytes: 0,
            dropped_end: damage.offset,
            dir: self.dir.clone(),
            bounds: (start, damage.offset),
        };
        if damage.offset < start {
            // The first segment was deleted: its offsets are gone already, and the log is
            // whole from its present start on. The repair only accepts the new start.
            plan.dropped_end = start;
            plan.bounds = (start, self.log_end_offset());
            return Ok(Some(plan));
        }
        let mut reached = false;
        for segment in self.segments() {
            if segment.path() == damage.file {
                reached = true;
                let len = fs::metadata(segment.path())
                    .map_err(|e| BrokerError::io(segment.path(), e))?
                    .len();
                if damage.position >= len {
                    // Nothing of this file is after the damage (the end of the log went
                    // missing): nothing to cut here.
                    continue;
                }
                // The highest offset any valid batch after the damage claims.
                let mut from = damage.position;
                loop {
                    let found = segment
                        .find_valid_batch_after(from, len, damage.offset)
                        .map_err(|e| BrokerError::io(segment.path(), e))?;
                    let Some((at, size, end)) = found else { break };
                    plan.dropped_end = plan.dropped_end.max(end);
                    // The next search starts right after this batch.
                    from = at + size.max(1) - 1;
                }
                plan.dropped_end = plan.dropped_end.max(segment.next_offset());
                plan.dropped_bytes += len - damage.position.min(len);
                if damage.position == 0 {
                    plan.remove.push(segment.path().to_path_buf());
                } else {
                    plan.truncate = Some((segment.path().to_path_buf(), damage.position));
                }
            } else if reached {
                plan.dropped_end = plan.dropped_end.max(segment.next_offset());
                plan.dropped_bytes += segment.size();
                plan.remove.push(segment.path().to_path_buf());
            }
        }
        // Whatever the log held up to its recorded end is lost by the repair too.
        if let Some((_, recorded_end)) = self.recorded_bounds {
            plan.dropped_end = plan.dropped_end.max(recorded_end);
        }
        Ok(Some(plan))
    }
}
