//! The byte layout of committed-offset records in `__consumer_offsets`.
//!
//! Every key and value starts with a format version byte; integers are big-endian. The
//! layouts are drawn byte by byte in `docs/format.md` (section `__consumer_offsets records`).
//!
//! Key, version 1 (an offset commit):
//!
//! ```text
//! u8 version = 1 | u16 group length | group (UTF-8) | u16 topic length | topic (UTF-8) | u32 partition
//! ```
//!
//! Value, version 1:
//!
//! ```text
//! u8 version = 1 | u64 offset | u32 metadata length | metadata (UTF-8) | i64 commit timestamp (epoch ms)
//! ```
//!
//! A null value (a tombstone) deletes the committed offset of its key. Other key versions are
//! reserved for other record kinds (Kafka keeps group metadata in the same topic under its own
//! key version); a reader skips them.

use bytes::{BufMut, Bytes, BytesMut};

/// The key version of an offset commit record.
pub(crate) const OFFSET_KEY_VERSION: u8 = 1;
/// The value version of an offset commit record.
pub(crate) const OFFSET_VALUE_VERSION: u8 = 1;

/// Why a key or value could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct CodecError(String);

/// The key of an offset commit: which group's offset of which partition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct OffsetKey {
    pub(crate) group: String,
    pub(crate) topic: String,
    pub(crate) partition: u32,
}

/// The value of an offset commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OffsetValue {
    pub(crate) offset: u64,
    pub(crate) metadata: String,
    pub(crate) commit_timestamp: i64,
}

/// A decoded key: an offset commit, or a record kind this version does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodedKey {
    Offset(OffsetKey),
    Unknown { version: u8 },
}

fn put_str16(buf: &mut BytesMut, what: &str, s: &str) -> Result<(), CodecError> {
    let len = u16::try_from(s.len()).map_err(|_| {
        CodecError(format!(
            "{what} is {} bytes long, the layout allows at most {}",
            s.len(),
            u16::MAX
        ))
    })?;
    buf.put_u16(len);
    buf.put_slice(s.as_bytes());
    Ok(())
}

impl OffsetKey {
    /// Encodes the key (version 1).
    pub(crate) fn encode(&self) -> Result<Bytes, CodecError> {
        let mut buf = BytesMut::with_capacity(1 + 2 + self.group.len() + 2 + self.topic.len() + 4);
        buf.put_u8(OFFSET_KEY_VERSION);
        put_str16(&mut buf, "group id", &self.group)?;
        put_str16(&mut buf, "topic", &self.topic)?;
        buf.put_u32(self.partition);
        Ok(buf.freeze())
    }

    /// Decodes a key; a key of another version is [`DecodedKey::Unknown`], a malformed one an
    /// error.
    pub(crate) fn decode(bytes: &[u8]) -> Result<DecodedKey, CodecError> {
        let mut r = Reader::new(bytes, "key");
        let version = r.u8()?;
        if version != OFFSET_KEY_VERSION {
            return Ok(DecodedKey::Unknown { version });
        }
        let group_len = r.u16()? as usize;
        let group = r.str(group_len, "group id")?;
        let topic_len = r.u16()? as usize;
        let topic = r.str(topic_len, "topic")?;
        let partition = r.u32()?;
        r.finish()?;
        Ok(DecodedKey::Offset(OffsetKey {
            group,
            topic,
            partition,
        }))
    }
}

impl OffsetValue {
    /// Encodes the value (version 1).
    pub(crate) fn encode(&self) -> Result<Bytes, CodecError> {
        let len = u32::try_from(self.metadata.len()).map_err(|_| {
            CodecError(format!(
                "metadata is {} bytes long, the layout allows at most {}",
                self.metadata.len(),
                u32::MAX
            ))
        })?;
        let mut buf = BytesMut::with_capacity(1 + 8 + 4 + self.metadata.len() + 8);
        buf.put_u8(OFFSET_VALUE_VERSION);
        buf.put_u64(self.offset);
        buf.put_u32(len);
        buf.put_slice(self.metadata.as_bytes());
        buf.put_i64(self.commit_timestamp);
        Ok(buf.freeze())
    }

    /// Decodes a value; an unknown version or a malformed value is an error.
    pub(crate) fn decode(bytes: &[u8]) -> Result<OffsetValue, CodecError> {
        let mut r = Reader::new(bytes, "value");
        let version = r.u8()?;
        if version != OFFSET_VALUE_VERSION {
            return Err(CodecError(format!(
                "unknown offset value version {version} (this build reads version {OFFSET_VALUE_VERSION})"
            )));
        }
        let offset = r.u64()?;
        let metadata_len = r.u32()? as usize;
        let metadata = r.str(metadata_len, "metadata")?;
        let commit_timestamp = r.i64()?;
        r.finish()?;
        Ok(OffsetValue {
            offset,
            metadata,
            commit_timestamp,
        })
    }
}

/// A bounds-checked big-endian reader that never panics on short or garbage input.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        let end = self.pos.checked_add(n).filter(|end| *end <= self.buf.len());
        match end {
            Some(end) => {
                let out = &self.buf[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => Err(CodecError(format!(
                "{} truncated: needs {n} more bytes at position {}, has {}",
                self.what,
                self.pos,
                self.buf.len() - self.pos
            ))),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CodecError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, CodecError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    fn str(&mut self, len: usize, field: &str) -> Result<String, CodecError> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| CodecError(format!("{} field {field} is not valid UTF-8", self.what)))
    }

    /// Checks that the reader consumed exactly what was written.
    fn finish(&self) -> Result<(), CodecError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(CodecError(format!(
                "{} has {} trailing bytes after position {}",
                self.what,
                self.buf.len() - self.pos,
                self.pos
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Version 1 bytes, frozen: a layout change that breaks reading old data fails here.
    #[test]
    fn reads_version_1_golden_bytes() {
        let key: &[u8] = &[1, 0, 2, b'g', b'1', 0, 3, b'a', b'b', b'c', 0, 0, 0, 7];
        assert_eq!(
            OffsetKey::decode(key).unwrap(),
            DecodedKey::Offset(OffsetKey {
                group: "g1".into(),
                topic: "abc".into(),
                partition: 7
            })
        );
        let value: &[u8] = &[
            1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 2, b'm', b'd', 0, 0, 1, 0x8b, 0xcf, 0xe5, 0x68,
            0x00,
        ];
        assert_eq!(
            OffsetValue::decode(value).unwrap(),
            OffsetValue {
                offset: 256,
                metadata: "md".into(),
                commit_timestamp: 1_700_000_000_000,
            }
        );
        let encoded = OffsetKey {
            group: "g1".into(),
            topic: "abc".into(),
            partition: 7,
        }
        .encode()
        .unwrap();
        assert_eq!(&encoded[..], key);
        let encoded = OffsetValue {
            offset: 256,
            metadata: "md".into(),
            commit_timestamp: 1_700_000_000_000,
        }
        .encode()
        .unwrap();
        assert_eq!(&encoded[..], value);
    }

    #[test]
    fn other_key_versions_are_skippable_and_bad_values_are_errors() {
        assert_eq!(
            OffsetKey::decode(&[2, 9, 9]).unwrap(),
            DecodedKey::Unknown { version: 2 }
        );
        assert!(OffsetKey::decode(&[]).is_err());
        assert!(OffsetValue::decode(&[]).is_err());
        let err = OffsetValue::decode(&[7, 0]).unwrap_err();
        assert!(err.to_string().contains("version 7"), "{err}");
        // A huge declared length must not allocate or panic.
        let err =
            OffsetValue::decode(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
        // Invalid UTF-8 in the group id.
        assert!(OffsetKey::decode(&[1, 0, 1, 0xff, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn too_long_strings_are_refused() {
        let key = OffsetKey {
            group: "g".repeat(70_000),
            topic: "t".into(),
            partition: 0,
        };
        assert!(key.encode().is_err());
    }

    fn key_strategy() -> impl Strategy<Value = OffsetKey> {
        (".{0,40}", "[a-zA-Z0-9._-]{1,60}", any::<u32>()).prop_map(|(group, topic, partition)| {
            OffsetKey {
                group,
                topic,
                partition,
            }
        })
    }

    fn value_strategy() -> impl Strategy<Value = OffsetValue> {
        (any::<u64>(), ".{0,80}", any::<i64>()).prop_map(|(offset, metadata, commit_timestamp)| {
            OffsetValue {
                offset,
                metadata,
                commit_timestamp,
            }
        })
    }

    proptest! {
        #[test]
        fn key_round_trips(key in key_strategy()) {
            let bytes = key.encode().unwrap();
            prop_assert_eq!(OffsetKey::decode(&bytes).unwrap(), DecodedKey::Offset(key));
        }

        #[test]
        fn value_round_trips(value in value_strategy()) {
            let bytes = value.encode().unwrap();
            prop_assert_eq!(OffsetValue::decode(&bytes).unwrap(), value);
        }

        /// Any proper prefix of a valid encoding, and any trailing garbage, is an error.
        #[test]
        fn truncated_or_extended_input_is_an_error(
            key in key_strategy(),
            value in value_strategy(),
            cut in any::<prop::sample::Index>(),
            extra in proptest::collection::vec(any::<u8>(), 1..8),
        ) {
            let k = key.encode().unwrap();
            let kcut = cut.index(k.len());
            prop_assert!(OffsetKey::decode(&k[..kcut]).is_err());
            let mut longer = k.to_vec();
            longer.extend_from_slice(&extra);
            prop_assert!(OffsetKey::decode(&longer).is_err());

            let v = value.encode().unwrap();
            let vcut = cut.index(v.len());
            prop_assert!(OffsetValue::decode(&v[..vcut]).is_err());
            let mut longer = v.to_vec();
            longer.extend_from_slice(&extra);
            prop_assert!(OffsetValue::decode(&longer).is_err());
        }

        /// Arbitrary bytes never panic the decoders.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = OffsetKey::decode(&bytes);
            let _ = OffsetValue::decode(&bytes);
        }
    }
}
