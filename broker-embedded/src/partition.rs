//! One partition of a topic: its log behind a lock, or why the log could not be opened.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use crate::error::{BrokerError, Result};
use crate::log::Log;

/// One partition: its log behind a lock that is never held across an `.await`, or why its
/// log could not be opened at all.
#[derive(Debug)]
pub(crate) struct Partition {
    topic: String,
    index: u32,
    log: std::result::Result<Mutex<Log>, OpenFailure>,
}

/// Why a partition's log could not be opened: the partition is offline, alone.
#[derive(Debug, Clone)]
struct OpenFailure {
    file: PathBuf,
    reason: String,
}

impl Partition {
    /// A partition whose log could not be opened: offline, for `reason`, at `file`.
    pub(crate) fn offline(topic: &str, index: u32, file: PathBuf, reason: String) -> Partition {
        Partition {
            topic: topic.to_owned(),
            index,
            log: Err(OpenFailure { file, reason }),
        }
    }

    /// A partition whose log opened.
    pub(crate) fn online(topic: &str, index: u32, log: Log) -> Partition {
        Partition {
            topic: topic.to_owned(),
            index,
            log: Ok(Mutex::new(log)),
        }
    }

    /// The partition's log, or `PartitionOffline` when it could not be opened.
    pub(crate) fn lock(&self) -> Result<MutexGuard<'_, Log>> {
        match &self.log {
            // A panic while holding the lock cannot leave the log half-written: every
            // append writes whole batches and recovery truncates a torn tail, so the guard
            // is reused.
            Ok(log) => Ok(log.lock().unwrap_or_else(|poisoned| poisoned.into_inner())),
            Err(failure) => Err(BrokerError::PartitionOffline {
                topic: self.topic.clone(),
                partition: self.index,
                file: failure.file.clone(),
                offset: 0,
                reason: failure.reason.clone(),
            }),
        }
    }

    /// Why the partition's log could not be opened, naming the file; `None` when it was.
    pub(crate) fn open_failure(&self) -> Option<String> {
        self.log
            .as_ref()
            .err()
            .map(|f| format!("{} (file {})", f.reason, f.file.display()))
    }
}
