//! The crate's error type.

use std::io;
use std::path::PathBuf;

use bytes::Bytes;

/// A boxed error from a backend or a changelog sink.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The result type of every fallible operation in this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Everything that can go wrong in a state store.
///
/// Fail-stop errors ([`StoreError::Io`], [`StoreError::Backend`],
/// [`StoreError::Poisoned`]) are kept apart from the outcomes a caller is
/// expected to handle: [`StoreError::Corrupt`] (wipe and restore),
/// [`StoreError::Locked`] (another handle is open) and
/// [`StoreError::Closed`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file-system operation on the store's directory failed.
    #[error("state store '{store}': I/O error on {}: {source}", path.display())]
    Io {
        /// The store name.
        store: String,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },

    /// A persistent store failed to open or failed a check on open.
    ///
    /// Its local data cannot be trusted: remove it with [`crate::wipe`] and
    /// restore it from its changelog.
    #[error(
        "state store '{store}' at {} cannot be trusted: {reason}; wipe it \
         (state_store::wipe) and restore it from its changelog",
        path.display()
    )]
    Corrupt {
        /// The store name.
        store: String,
        /// The store's directory.
        path: PathBuf,
        /// What failed.
        reason: String,
    },

    /// The store's files are held by another open handle, in this process or
    /// another. The data is not damaged: do not wipe it.
    #[error(
        "state store '{store}' at {} is already open by another handle or process; \
         close that handle first",
        path.display()
    )]
    Locked {
        /// The store name.
        store: String,
        /// The store's directory.
        path: PathBuf,
    },

    /// The storage engine returned an error while the store was in use.
    #[error("state store '{store}' ({backend}) at {}: {source}", path.display())]
    Backend {
        /// The store name.
        store: String,
        /// The backend name (`sled`, `redb`).
        backend: &'static str,
        /// The store's directory.
        path: PathBuf,
        /// The engine's error.
        #[source]
        source: BoxError,
    },

    /// An operation was called on a store after [`crate::KeyValueStore::close`].
    #[error("state store '{store}' is closed; open it again before use")]
    Closed {
        /// The store name.
        store: String,
    },

    /// A key given to a window store's key-value view is too short to hold
    /// a window start and sequence number (12 bytes).
    #[error(
        "window store '{store}': key of {len} bytes is not a windowed key \
         (record key + 8-byte window start + 4-byte sequence number)"
    )]
    InvalidWindowedKey {
        /// The store name.
        store: String,
        /// The length of the rejected key.
        len: usize,
    },

    /// A key given to a session store's key-value view is too short to hold
    /// a session end and start (16 bytes).
    #[error(
        "session store '{store}': key of {len} bytes is not a session key \
         (record key + 8-byte session end + 8-byte session start)"
    )]
    InvalidSessionKey {
        /// The store name.
        store: String,
        /// The length of the rejected key.
        len: usize,
    },

    /// A key given to a versioned store is longer than its layout can
    /// hold (its length is kept in 4 bytes).
    #[error("versioned store '{store}': a key of {len} bytes is longer than 4 GiB")]
    KeyTooLong {
        /// The store name.
        store: String,
        /// The length of the rejected key.
        len: usize,
    },

    /// A window or session store read an internal record it cannot decode
    /// (an unknown format version, a truncated entry). Its local data
    /// cannot be trusted: wipe it and restore it from its changelog.
    #[error(
        "state store '{store}': {reason}; wipe it (state_store::wipe) and restore it \
         from its changelog"
    )]
    CorruptEntry {
        /// The store name.
        store: String,
        /// What could not be decoded.
        reason: String,
    },

    /// A store name that cannot be used as a directory name.
    #[error("invalid state store name {name:?}: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// Why it was rejected.
        reason: &'static str,
    },

    /// A changelog sink failed to accept a record. The record is given back.
    ///
    /// The local store already holds the update, so it is now ahead of its
    /// changelog; the changelogging layer refuses further writes
    /// ([`StoreError::Poisoned`]).
    #[error(
        "state store '{store}': changelog send failed for a {}-byte key ({}): {source}",
        key.len(),
        if value.is_some() { "update" } else { "tombstone" }
    )]
    ChangelogSend {
        /// The store name.
        store: String,
        /// The key of the unsent record.
        key: Bytes,
        /// The value of the unsent record (`None` for a tombstone).
        value: Option<Bytes>,
        /// The sink's error.
        #[source]
        source: BoxError,
    },

    /// The store refuses writes after an earlier failure left it out of step
    /// with its changelog or its storage engine.
    #[error(
        "state store '{store}' refuses further writes after an earlier failure ({cause}); \
         close it, wipe it and restore it from its changelog"
    )]
    Poisoned {
        /// The store name.
        store: String,
        /// The earlier failure.
        cause: String,
    },

    /// A checkpoint file exists but cannot be decoded.
    #[error(
        "checkpoint file {} is corrupt: {source}; delete it and restore the affected \
         stores from the start of their changelogs",
        path.display()
    )]
    CorruptCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: crate::checkpoint::CheckpointDecodeError,
    },

    /// Reading or writing a checkpoint file failed.
    #[error("checkpoint file {}: I/O error: {source}", path.display())]
    CheckpointIo {
        /// The checkpoint file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
}

impl StoreError {
    /// True when the store's local data must be wiped and restored from the
    /// changelog: [`StoreError::Corrupt`], [`StoreError::CorruptEntry`] and
    /// [`StoreError::Poisoned`].
    pub fn requires_restore(&self) -> bool {
        matches!(
            self,
            Self::Corrupt { .. } | Self::Poisoned { .. } | Self::CorruptEntry { .. }
        )
    }

    pub(crate) fn io(store: &str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            store: store.to_owned(),
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        store: &str,
        path: impl Into<PathBuf>,
        reason: impl Into<String>,
    ) -> Self {
        Self::Corrupt {
            store: store.to_owned(),
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn closed(store: &str) -> Self {
        Self::Closed {
            store: store.to_owned(),
        }
    }
}
