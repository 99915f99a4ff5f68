//! Checkpoint files: the changelog offsets that local stores reflect.
//!
//! Byte layout (all integers big-endian):
//!
//! ```text
//! offset  size  field
//! 0       1     format version (1)
//! 1       4     entry count N (u32)
//! 5       ...   N entries, each:
//!                 2  name length L (u16), L >= 1
//!                 L  changelog (or store) name, UTF-8
//!                 4  partition (u32)
//!                 8  offset (u64): the next changelog offset to restore from;
//!                    the store reflects every record below it
//! end-4   4     CRC32C (Castagnoli) of every preceding byte (u32)
//! ```
//!
//! Entries are written sorted by (name, partition), without duplicates.
//! Files are replaced atomically: temp file, fsync, rename, fsync of the
//! directory.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::Path;

use crate::error::{Result, StoreError};
use crate::fsutil;

/// The checkpoint format version this build writes and reads.
pub const CHECKPOINT_FORMAT_VERSION: u8 = 1;

const HEADER_LEN: usize = 1 + 4;
const CRC_LEN: usize = 4;
const ENTRY_FIXED_LEN: usize = 2 + 4 + 8;

/// Why checkpoint bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointDecodeError {
    /// Fewer bytes than an empty checkpoint.
    #[error("{len} bytes is shorter than the {min}-byte minimum (truncated)")]
    TooShort {
        /// The length found.
        len: usize,
        /// The minimum length.
        min: usize,
    },
    /// A version byte this build does not know.
    #[error(
        "unsupported format version {found} (this build reads version {CHECKPOINT_FORMAT_VERSION})"
    )]
    UnsupportedVersion {
        /// The version byte found.
        found: u8,
    },
    /// The trailing CRC32C does not match the content.
    #[error(
        "CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x} (truncated or damaged)"
    )]
    ChecksumMismatch {
        /// The checksum in the file.
        stored: u32,
        /// The checksum of the content.
        computed: u32,
    },
    /// An entry runs past the end of the content.
    #[error("entry {index} at byte {at} runs past the end of the content")]
    Truncated {
        /// The entry's index.
        index: u32,
        /// The byte where it starts.
        at: usize,
    },
    /// An entry's name is empty or not UTF-8.
    #[error("entry {index} at byte {at} has an empty or non-UTF-8 name")]
    InvalidName {
        /// The entry's index.
        index: u32,
        /// The byte where it starts.
        at: usize,
    },
    /// Two entries for the same name and partition.
    #[error("duplicate entry for {name}-{partition}")]
    Duplicate {
        /// The name.
        name: String,
        /// The partition.
        partition: u32,
    },
    /// Bytes left between the last entry and the checksum.
    #[error("{extra} unexpected bytes after the last entry")]
    TrailingBytes {
        /// How many.
        extra: usize,
    },
}

/// The changelog offsets that a set of local stores reflect, keyed by
/// (changelog name, partition).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    offsets: BTreeMap<(String, u32), u64>,
}

impl Checkpoint {
    /// An empty checkpoint.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that the store behind changelog `name`, partition `partition`
    /// reflects every record below `offset`. Names must be 1 to 65,535 bytes
    /// long ([`StoreError::InvalidName`] otherwise).
    pub fn set(&mut self, name: impl Into<String>, partition: u32, offset: u64) -> Result<()> {
        let name = name.into();
        if name.is_empty() || name.len() > usize::from(u16::MAX) {
            return Err(StoreError::InvalidName {
                name,
                reason: "checkpoint names must be 1 to 65535 bytes long",
            });
        }
        self.offsets.insert((name, partition), offset);
        Ok(())
    }

    /// The offset recorded for `name`, `partition`.
    pub fn get(&self, name: &str, partition: u32) -> Option<u64> {
        self.offsets.get(&(name.to_owned(), partition)).copied()
    }

    /// Removes the entry for `name`, `partition` (a store being wiped);
    /// returns its offset.
    pub fn remove(&mut self, name: &str, partition: u32) -> Option<u64> {
        self.offsets.remove(&(name.to_owned(), partition))
    }

    /// The entries as `(name, partition, offset)`, sorted.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32, u64)> + '_ {
        self.offsets.iter().map(|((n, p), o)| (n.as_str(), *p, *o))
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Encodes the checkpoint in the layout described in the module docs.
    pub fn encode(&self) -> Vec<u8> {
        let body: usize = self
            .offsets
            .keys()
            .map(|(n, _)| ENTRY_FIXED_LEN + n.len())
            .sum();
        let mut out = Vec::with_capacity(HEADER_LEN + body + CRC_LEN);
        out.push(CHECKPOINT_FORMAT_VERSION);
        // `set` bounds names to u16 and a map cannot exceed u32 entries in
        // practice; saturate rather than wrap if it ever did.
        out.extend_from_slice(
            &u32::try_from(self.offsets.len())
                .unwrap_or(u32::MAX)
                .to_be_bytes(),
        );
        for ((name, partition), offset) in &self.offsets {
            let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(&name.as_bytes()[..usize::from(len)]);
            out.extend_from_slice(&partition.to_be_bytes());
            out.extend_from_slice(&offset.to_be_bytes());
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Decodes bytes written by [`Checkpoint::encode`]. Never panics.
    pub fn decode(bytes: &[u8]) -> std::result::Result<Self, CheckpointDecodeError> {
        let min = HEADER_LEN + CRC_LEN;
        if bytes.len() < min {
            return Err(CheckpointDecodeError::TooShort {
                len: bytes.len(),
                min,
            });
        }
        if bytes[0] != CHECKPOINT_FORMAT_VERSION {
            return Err(CheckpointDecodeError::UnsupportedVersion { found: bytes[0] });
        }
        let (content, crc) = bytes.split_at(bytes.len() - CRC_LEN);
        let stored = u32::from_be_bytes(take::<4>(crc, 0).unwrap_or_default());
        let computed = crc32c::crc32c(content);
        if stored != computed {
            return Err(CheckpointDecodeError::ChecksumMismatch { stored, computed });
        }
        let count = u32::from_be_bytes(take::<4>(content, 1).unwrap_or_default());
        let mut offsets = BTreeMap::new();
        let mut at = HEADER_LEN;
        for index in 0..count {
            let truncated = CheckpointDecodeError::Truncated { index, at };
            let len = usize::from(u16::from_be_bytes(
                take::<2>(content, at).ok_or(truncated.clone())?,
            ));
            let name_at = at + 2;
            let name = content
                .get(name_at..name_at + len)
                .ok_or(truncated.clone())?;
            let name = std::str::from_utf8(name)
                .ok()
                .filter(|n| !n.is_empty())
                .ok_or(CheckpointDecodeError::InvalidName { index, at })?;
            let partition =
                u32::from_be_bytes(take::<4>(content, name_at + len).ok_or(truncated.clone())?);
            let offset =
                u64::from_be_bytes(take::<8>(content, name_at + len + 4).ok_or(truncated)?);
            if offsets
                .insert((name.to_owned(), partition), offset)
                .is_some()
            {
                return Err(CheckpointDecodeError::Duplicate {
                    name: name.to_owned(),
                    partition,
                });
            }
            at = name_at + len + 4 + 8;
        }
        if at != content.len() {
            return Err(CheckpointDecodeError::TrailingBytes {
                extra: content.len().saturating_sub(at),
            });
        }
        Ok(Self { offsets })
    }

    /// Reads the checkpoint at `path`; `Ok(None)` if there is no file.
    pub fn read(path: &Path) -> Result<Option<Self>> {
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StoreError::CheckpointIo {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        match Self::decode(&bytes) {
            Ok(checkpoint) => Ok(Some(checkpoint)),
            Err(source) => {
                tracing::warn!(path = %path.display(), error = %source, "corrupt checkpoint file");
                Err(StoreError::CorruptCheckpoint {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }

    /// Replaces the checkpoint at `path` atomically (temp file, fsync,
    /// rename, fsync of the directory).
    pub fn write(&self, path: &Path) -> Result<()> {
        fsutil::write_atomically(path, &self.encode()).map_err(|source| {
            StoreError::CheckpointIo {
                path: path.to_owned(),
                source,
            }
        })?;
        tracing::debug!(path = %path.display(), entries = self.len(), "wrote checkpoint");
        Ok(())
    }

    /// Deletes the checkpoint at `path` (done when stores are wiped, so that
    /// restoration starts from the beginning). A missing file is fine.
    pub fn delete(path: &Path) -> Result<()> {
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StoreError::CheckpointIo {
                path: path.to_owned(),
                source,
            }),
        }
    }
}

/// `N` bytes of `bytes` at `at`, if there are that many.
fn take<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at.checked_add(N)?)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Checkpoint {
        let mut c = Checkpoint::new();
        c.set("app-counts-changelog", 0, 42).unwrap();
        c.set("app-counts-changelog", 3, 7).unwrap();
        c.set("app-totals-changelog", 1, u64::MAX).unwrap();
        c
    }

    fn checkpoint() -> impl Strategy<Value = Checkpoint> {
        prop::collection::btree_map(
            ("[a-z0-9._-]{1,40}|\\PC{1,8}", any::<u32>()),
            any::<u64>(),
            0..20,
        )
        .prop_map(|offsets| Checkpoint { offsets })
    }

    proptest! {
        #[test]
        fn checkpoint_round_trips(c in checkpoint()) {
            let bytes = c.encode();
            prop_assert_eq!(Checkpoint::decode(&bytes), Ok(c));
        }

        #[test]
        fn checkpoint_decode_never_panics_on_garbage(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = Checkpoint::decode(&bytes);
        }

        #[test]
        fn every_truncation_of_a_random_checkpoint_is_an_error(c in checkpoint()) {
            let bytes = c.encode();
            for len in 0..bytes.len() {
                prop_assert!(Checkpoint::decode(&bytes[..len]).is_err(), "prefix of {} accepted", len);
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample().encode();
        for len in 0..bytes.len() {
            let err = Checkpoint::decode(&bytes[..len]);
            assert!(err.is_err(), "prefix of {len} bytes accepted");
        }
        assert!(matches!(
            Checkpoint::decode(&bytes[..3]),
            Err(CheckpointDecodeError::TooShort { len: 3, .. })
        ));
    }

    #[test]
    fn every_flipped_byte_is_an_error() {
        let bytes = sample().encode();
        for i in 0..bytes.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= mask;
                assert!(
                    Checkpoint::decode(&bad).is_err(),
                    "flip {mask:#04x} at {i} accepted"
                );
            }
        }
    }

    /// Content that passes the checksum but is malformed is still rejected.
    #[test]
    fn malformed_content_with_a_valid_checksum_is_an_error() {
        fn seal(mut content: Vec<u8>) -> Vec<u8> {
            let crc = crc32c::crc32c(&content);
            content.extend_from_slice(&crc.to_be_bytes());
            content
        }
        // Claims one entry, has none.
        let bad = seal(vec![1, 0, 0, 0, 1]);
        assert!(matches!(
            Checkpoint::decode(&bad),
            Err(CheckpointDecodeError::Truncated { index: 0, .. })
        ));
        // Trailing byte.
        let bad = seal(vec![1, 0, 0, 0, 0, 9]);
        assert!(matches!(
            Checkpoint::decode(&bad),
            Err(CheckpointDecodeError::TrailingBytes { extra: 1 })
        ));
        // Non-UTF-8 name.
        let mut content = vec![1, 0, 0, 0, 1, 0, 1, 0xff];
        content.extend_from_slice(&[0; 12]);
        assert!(matches!(
            Checkpoint::decode(&seal(content)),
            Err(CheckpointDecodeError::InvalidName { .. })
        ));
        // Duplicate entry.
        let mut content = vec![1, 0, 0, 0, 2];
        for _ in 0..2 {
            content.extend_from_slice(&[0, 1, b'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
        }
        assert!(matches!(
            Checkpoint::decode(&seal(content)),
            Err(CheckpointDecodeError::Duplicate { .. })
        ));
        // Future version.
        let bad = seal(vec![2, 0, 0, 0, 0]);
        assert!(matches!(
            Checkpoint::decode(&bad),
            Err(CheckpointDecodeError::UnsupportedVersion { found: 2 })
        ));
    }

    #[test]
    fn write_then_read_and_corrupt_file_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".checkpoint");
        assert_eq!(Checkpoint::read(&path).unwrap(), None);
        let c = sample();
        c.write(&path).unwrap();
        assert_eq!(Checkpoint::read(&path).unwrap(), Some(c.clone()));
        assert!(!fsutil::temp_path(&path).exists());

        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 1]).unwrap();
        let err = Checkpoint::read(&path).unwrap_err();
        assert!(matches!(err, StoreError::CorruptCheckpoint { .. }), "{err}");
        assert!(err.to_string().contains(".checkpoint"), "{err}");

        Checkpoint::delete(&path).unwrap();
        Checkpoint::delete(&path).unwrap();
        assert_eq!(Checkpoint::read(&path).unwrap(), None);
    }

    #[test]
    fn names_must_fit_the_length_field() {
        let mut c = Checkpoint::new();
        assert!(c.set("", 0, 1).is_err());
        assert!(c.set("x".repeat(65_536), 0, 1).is_err());
        c.set("x".repeat(65_535), 0, 1).unwrap();
        assert_eq!(Checkpoint::decode(&c.encode()), Ok(c));
    }
}
