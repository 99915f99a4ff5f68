//! Where persistent stores live, the marker file that identifies them, and
//! how they are wiped.
//!
//! A persistent store named `n` lives in `<state_dir>/n/`, which holds the
//! backend's data (`sled/` or `data.redb`) and a 10-byte marker file
//! `STORE`:
//!
//! ```text
//! offset  size  field
//! 0       4     magic "SSKV"
//! 4       1     marker format version (1)
//! 5       1     backend id (1 = sled, 2 = redb)
//! 6       4     CRC32C of bytes 0..6, big-endian
//! ```
//!
//! The marker is written after the backend has created its files, so a
//! directory with data but no marker is an interrupted creation (or
//! something unknown) and is reported as corrupt.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{Result, StoreError};
use crate::fsutil;

/// The marker file's name inside a store directory.
pub(crate) const MARKER_FILE: &str = "STORE";
const MARKER_MAGIC: &[u8; 4] = b"SSKV";
const MARKER_VERSION: u8 = 1;
const MARKER_LEN: usize = 10;

/// Persistent backends, as recorded in the marker file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DiskBackend {
    Sled,
    Redb,
}

impl DiskBackend {
    fn id(self) -> u8 {
        match self {
            Self::Sled => 1,
            Self::Redb => 2,
        }
    }

    fn from_id(id: u8) -> Option<Self> {
        match id {
            1 => Some(Self::Sled),
            2 => Some(Self::Redb),
            _ => None,
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Sled => "sled",
            Self::Redb => "redb",
        }
    }

    /// The backend's data inside the store directory.
    pub(crate) fn data_path(self, store_dir: &Path) -> PathBuf {
        match self {
            Self::Sled => store_dir.join("sled"),
            Self::Redb => store_dir.join("data.redb"),
        }
    }
}

/// Encodes the marker for `backend`.
pub(crate) fn encode_marker(backend: DiskBackend) -> [u8; MARKER_LEN] {
    let mut out = [0u8; MARKER_LEN];
    out[..4].copy_from_slice(MARKER_MAGIC);
    out[4] = MARKER_VERSION;
    out[5] = backend.id();
    let crc = crc32c::crc32c(&out[..6]);
    out[6..].copy_from_slice(&crc.to_be_bytes());
    out
}

/// Decodes a marker; the error says what is wrong.
pub(crate) fn decode_marker(bytes: &[u8]) -> std::result::Result<DiskBackend, String> {
    if bytes.len() != MARKER_LEN {
        return Err(format!(
            "marker file is {} bytes, expected {MARKER_LEN}",
            bytes.len()
        ));
    }
    let (body, crc) = bytes.split_at(6);
    let stored = u32::from_be_bytes([crc[0], crc[1], crc[2], crc[3]]);
    if crc32c::crc32c(body) != stored {
        return Err("marker file checksum mismatch".to_owned());
    }
    if &body[..4] != MARKER_MAGIC {
        return Err("marker file has the wrong magic bytes".to_owned());
    }
    if body[4] != MARKER_VERSION {
        return Err(format!(
            "marker format version {} is not supported (expected {MARKER_VERSION})",
            body[4]
        ));
    }
    DiskBackend::from_id(body[5]).ok_or_else(|| format!("unknown backend id {}", body[5]))
}

/// Rejects names that are not a single, plain directory name.
pub(crate) fn validate_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name == "." || name == ".." {
        "the name is a relative directory reference"
    } else if name.contains(['/', '\\', '\0']) {
        "the name contains a path separator or NUL"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// The directory of store `name` under `state_dir`.
pub fn store_dir(state_dir: &Path, name: &str) -> Result<PathBuf> {
    validate_name(name)?;
    Ok(state_dir.join(name))
}

/// What [`prepare`] found.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The store directory.
    pub(crate) dir: PathBuf,
    /// True when the store is being created (no marker yet).
    pub(crate) fresh: bool,
}

/// Checks (or creates) the directory of store `name` for `backend`.
///
/// An existing store must carry a valid marker naming `backend` and its
/// data must exist; otherwise the store is [`StoreError::Corrupt`].
pub(crate) fn prepare(state_dir: &Path, name: &str, backend: DiskBackend) -> Result<Prepared> {
    let dir = store_dir(state_dir, name)?;
    let marker = dir.join(MARKER_FILE);
    match fs::read(&marker) {
        Ok(bytes) => {
            let found =
                decode_marker(&bytes).map_err(|reason| StoreError::corrupt(name, &dir, reason))?;
            if found != backend {
                return Err(StoreError::corrupt(
                    name,
                    &dir,
                    format!(
                        "the store was created by the {} backend and is being opened with {}",
                        found.label(),
                        backend.label()
                    ),
                ));
            }
            if !backend.data_path(&dir).exists() {
                return Err(StoreError::corrupt(
                    name,
                    &dir,
                    format!(
                        "the marker file is present but the {} data ({}) is missing",
                        backend.label(),
                        backend.data_path(&dir).display()
                    ),
                ));
            }
            Ok(Prepared { dir, fresh: false })
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            match fs::read_dir(&dir) {
                Ok(mut entries) => {
                    if entries.next().is_some() {
                        return Err(StoreError::corrupt(
                            name,
                            &dir,
                            "the directory has content but no marker file (an interrupted \
                             creation or files of unknown origin)",
                        ));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir_all(&dir).map_err(|e| StoreError::io(name, &dir, e))?;
                    if let Some(parent) = dir.parent() {
                        fsutil::sync_dir(parent).map_err(|e| StoreError::io(name, parent, e))?;
                    }
                }
                Err(e) => return Err(StoreError::io(name, &dir, e)),
            }
            Ok(Prepared { dir, fresh: true })
        }
        Err(e) => Err(StoreError::io(name, &marker, e)),
    }
}

/// Records that the store in `dir` was created by `backend`. Called once
/// the backend's files exist.
pub(crate) fn write_marker(name: &str, dir: &Path, backend: DiskBackend) -> Result<()> {
    let path = dir.join(MARKER_FILE);
    fsutil::write_atomically(&path, &encode_marker(backend))
        .map_err(|e| StoreError::io(name, path, e))
}

/// Removes the local data of store `name` under `state_dir`, whatever its
/// state, so that it can be restored from its changelog. Wiping a store that
/// does not exist is a no-op, and removing an empty directory of one is
/// logged only at debug level: a warning says that data was thrown away.
/// The store must not be open.
pub fn wipe(state_dir: &Path, name: &str) -> Result<()> {
    let dir = store_dir(state_dir, name)?;
    let held_files = match fs::read_dir(&dir) {
        Ok(mut entries) => entries.next().is_some(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StoreError::io(name, dir, e)),
    };
    match fs::remove_dir_all(&dir) {
        Ok(()) => {
            if held_files {
                tracing::warn!(store = name, dir = %dir.display(), "wiped local state store");
            } else {
                tracing::debug!(store = name, dir = %dir.display(), "removed the empty directory of a state store");
            }
            fsutil::sync_dir(state_dir).map_err(|e| StoreError::io(name, state_dir, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::io(name, dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trips_and_rejects_every_flipped_byte() {
        for backend in [DiskBackend::Sled, DiskBackend::Redb] {
            let marker = encode_marker(backend);
            assert_eq!(decode_marker(&marker), Ok(backend));
            for i in 0..marker.len() {
                let mut bad = marker;
                bad[i] ^= 0x01;
                assert!(decode_marker(&bad).is_err(), "flip at {i} accepted");
            }
            for len in 0..marker.len() {
                assert!(decode_marker(&marker[..len]).is_err());
            }
        }
    }

    /// Markers written by format version 1; a format change must keep
    /// reading them.
    #[test]
    fn version_1_marker_bytes_are_stable() {
        let sled = [83, 83, 75, 86, 1, 1, 229, 161, 194, 4];
        let redb = [83, 83, 75, 86, 1, 2, 246, 241, 49, 240];
        assert_eq!(decode_marker(&sled), Ok(DiskBackend::Sled));
        assert_eq!(decode_marker(&redb), Ok(DiskBackend::Redb));
        assert_eq!(encode_marker(DiskBackend::Sled), sled);
        assert_eq!(encode_marker(DiskBackend::Redb), redb);
    }

    #[test]
    fn names_that_escape_the_state_dir_are_rejected() {
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
            assert!(
                matches!(validate_name(bad), Err(StoreError::InvalidName { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_name("word-counts").is_ok());
    }

    #[test]
    fn wipe_of_a_missing_store_is_a_no_op() {
        let dir = tempfile::tempdir().unwrap();
        wipe(dir.path(), "nothing-here").unwrap();
    }

    #[test]
    fn wipe_removes_an_empty_store_dir_and_a_full_one() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("empty")).unwrap();
        wipe(dir.path(), "empty").unwrap();
        assert!(!dir.path().join("empty").exists());
        fs::create_dir_all(dir.path().join("full").join("sled")).unwrap();
        fs::write(dir.path().join("full").join(MARKER_FILE), b"x").unwrap();
        wipe(dir.path(), "full").unwrap();
        assert!(!dir.path().join("full").exists());
    }
}
