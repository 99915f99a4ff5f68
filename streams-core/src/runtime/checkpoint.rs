//! Checkpoint files: the changelog offsets a task's local stores reflect,
//! written on a clean close and, at-least-once, by commits.

use std::collections::BTreeMap;

use state_store::Checkpoint;

use crate::client::TopicPartition;
use crate::error::{Result, StreamsError};

/// The checkpoint file of a task directory.
pub(super) const CHECKPOINT_FILE: &str = ".checkpoint";

/// Changelog records written since a task's last checkpoint past which a
/// commit writes a new one (Kafka Streams' `OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT`).
/// Fewer are replayed from the older checkpoint on a restart; a clean close
/// always writes one.
pub(super) const CHECKPOINT_DELTA_RECORDS: u64 = 10_000;

/// Whether a commit writes a task's checkpoint: none written yet, or its
/// changelogs moved by more than [`CHECKPOINT_DELTA_RECORDS`] since.
pub(super) fn checkpoint_due(
    last: Option<&BTreeMap<TopicPartition, u64>>,
    now: &BTreeMap<TopicPartition, u64>,
) -> bool {
    let Some(last) = last else {
        return true;
    };
    let delta: u64 = now
        .iter()
        .map(|(tp, offset)| offset.saturating_sub(last.get(tp).copied().unwrap_or(0)))
        .sum();
    delta > CHECKPOINT_DELTA_RECORDS
}

/// Writes `checkpoint` as the checkpoint file of task directory `dir`.
pub(super) fn write_checkpoint(dir: &std::path::Path, checkpoint: &Checkpoint) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| {
        StreamsError::Store(state_store::StoreError::CheckpointIo {
            path: dir.to_path_buf(),
            source,
        })
    })?;
    checkpoint.write(&dir.join(CHECKPOINT_FILE))?;
    Ok(())
}

/// Deletes the checkpoint file of task directory `dir`, if there is one.
pub(super) fn remove_checkpoint(dir: &std::path::Path) -> Result<()> {
    let path = dir.join(CHECKPOINT_FILE);
    let io = |source| {
        StreamsError::Store(state_store::StoreError::CheckpointIo {
            path: path.clone(),
            source,
        })
    };
    match std::fs::remove_file(&path) {
        // Make the removal durable before the stores take uncommitted
        // writes: a checkpoint that comes back after a power loss would
        // vouch for them.
        Ok(()) => std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io(source)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_checkpoints_first_and_then_past_ten_thousand_changelog_records() {
        let tp = |p| TopicPartition::new("app-store-changelog", p);
        let offsets = |a: u64, b: u64| BTreeMap::from([(tp(0), a), (tp(1), b)]);
        assert!(checkpoint_due(None, &BTreeMap::new()));
        assert!(checkpoint_due(None, &offsets(5, 5)));
        let last = offsets(100, 200);
        assert!(!checkpoint_due(Some(&last), &offsets(100, 200)));
        assert!(!checkpoint_due(Some(&last), &offsets(5_100, 5_200)));
        assert!(checkpoint_due(Some(&last), &offsets(5_100, 5_201)));
        // A partition new since the last checkpoint counts from zero.
        let mut grown = offsets(100, 200);
        grown.insert(tp(2), 10_001);
        assert!(checkpoint_due(Some(&last), &grown));
    }
}
