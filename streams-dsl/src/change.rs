//! The values that flow between table processors ([`Change`]) and that
//! aggregation stores hold ([`ValueAndTimestamp`]), with their serdes.

use std::fmt;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use streams_core::{Serde, SerdeError, SerdeFormat};

/// An update of a table row as table processors forward it (Kafka's
/// `Change<V>`): the row's new value and the value downstream saw before.
/// `new: None` is a delete.
///
/// `is_latest` is false for an out-of-order update of a versioned table
/// (older than the key's latest version): Kafka forwards those to
/// `to_stream()`, filters and mappers, but table–table joins, re-groupings
/// and foreign-key joins downstream of a versioned table skip them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Change<V> {
    /// The value now; `None`: the row is deleted.
    pub new: Option<V>,
    /// The previous value; `None`: the row did not exist.
    pub old: Option<V>,
    /// Whether the update is the latest version of its key; only an
    /// out-of-order update of a versioned table is not.
    pub is_latest: bool,
}

impl<V> Change<V> {
    /// An update from `old` to `new`, the latest of its key.
    pub fn new(new: Option<V>, old: Option<V>) -> Self {
        Self {
            new,
            old,
            is_latest: true,
        }
    }

    /// The same update with `is_latest` set.
    pub fn with_is_latest(mut self, is_latest: bool) -> Self {
        self.is_latest = is_latest;
        self
    }
}

/// A value with the timestamp of the latest record that made it, as
/// Kafka's `ValueAndTimestamp`: what DSL stores hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ValueAndTimestamp<V> {
    /// The value.
    pub value: V,
    /// Epoch milliseconds.
    pub timestamp: i64,
}

impl<V> ValueAndTimestamp<V> {
    /// `value` at `timestamp`.
    pub fn make(value: V, timestamp: i64) -> Self {
        Self { value, timestamp }
    }
}

/// Writes a [`ValueAndTimestamp`] as Kafka's timestamped stores do: the
/// timestamp as 8 big-endian bytes, then the value's bytes. The layout is
/// Kafka's so that a Kafka Streams changelog reads the same.
pub struct ValueAndTimestampSerde<V> {
    inner: Arc<dyn Serde<V>>,
}

impl<V> fmt::Debug for ValueAndTimestampSerde<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueAndTimestampSerde")
            .finish_non_exhaustive()
    }
}

impl<V> Clone for ValueAndTimestampSerde<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<V> ValueAndTimestampSerde<V> {
    /// Values written with `inner`.
    pub fn new(inner: impl Serde<V>) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl<V: 'static> Serde<ValueAndTimestamp<V>> for ValueAndTimestampSerde<V> {
    fn serde_format(&self) -> SerdeFormat {
        SerdeFormat::Timestamped(Box::new(self.inner.serde_format()))
    }

    fn serialize(&self, topic: &str, value: &ValueAndTimestamp<V>) -> Result<Bytes, SerdeError> {
        // Exactly the size of a fixed-width value after its timestamp, so
        // that the buffer becomes `Bytes` without another allocation.
        let mut out = Vec::with_capacity(16);
        self.serialize_into(topic, value, &mut out)?;
        Ok(Bytes::from(out))
    }

    fn serialize_into(
        &self,
        topic: &str,
        value: &ValueAndTimestamp<V>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.extend_from_slice(&value.timestamp.to_be_bytes());
        self.inner.serialize_into(topic, &value.value, out)
    }

    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<ValueAndTimestamp<V>, SerdeError> {
        let timestamp = read_timestamp::<V>(topic, bytes)?;
        let value = self.inner.deserialize(topic, &bytes.slice(8..))?;
        Ok(ValueAndTimestamp { value, timestamp })
    }

    fn deserialize_slice(
        &self,
        topic: &str,
        bytes: &[u8],
    ) -> Result<ValueAndTimestamp<V>, SerdeError> {
        let timestamp = read_timestamp::<V>(topic, bytes)?;
        let value = self.inner.deserialize_slice(topic, &bytes[8..])?;
        Ok(ValueAndTimestamp { value, timestamp })
    }
}

/// The timestamp that leads a [`ValueAndTimestampSerde`] value.
fn read_timestamp<V>(topic: &str, bytes: &[u8]) -> Result<i64, SerdeError> {
    let Some(head) = bytes.get(..8) else {
        return Err(SerdeError::deserialize::<ValueAndTimestamp<V>>(
            topic,
            format!("{} bytes, need at least 8 for the timestamp", bytes.len()),
        ));
    };
    let mut ts = [0u8; 8];
    ts.copy_from_slice(head);
    Ok(i64::from_be_bytes(ts))
}

/// The format version of [`ChangeSerde`].
const CHANGE_FORMAT_VERSION: u8 = 1;
const HAS_NEW: u8 = 0b01;
const HAS_OLD: u8 = 0b10;

/// Writes a [`Change`] to a repartition topic (a grouped table's).
///
/// Layout: a version byte (1), a flags byte (bit 0: new value present,
/// bit 1: old value present), the new value's length as a 4-byte
/// big-endian integer, the new value's bytes, the old value's bytes.
/// `is_latest` is not written and reads as true: a re-grouping downstream
/// of a versioned table drops out-of-order updates before the topic, and
/// every other update is the latest.
pub struct ChangeSerde<V> {
    inner: Arc<dyn Serde<V>>,
}

impl<V> fmt::Debug for ChangeSerde<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeSerde").finish_non_exhaustive()
    }
}

impl<V> Clone for ChangeSerde<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<V> ChangeSerde<V> {
    /// Values written with `inner`.
    pub fn new(inner: impl Serde<V>) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl<V: 'static> Serde<Change<V>> for ChangeSerde<V> {
    fn serialize(&self, topic: &str, value: &Change<V>) -> Result<Bytes, SerdeError> {
        let new = self.inner.serialize_nullable(topic, value.new.as_ref())?;
        let old = self.inner.serialize_nullable(topic, value.old.as_ref())?;
        let new_len = new.as_ref().map_or(0, Bytes::len);
        let old_len = old.as_ref().map_or(0, Bytes::len);
        let Ok(new_len_u32) = u32::try_from(new_len) else {
            return Err(SerdeError::serialize::<Change<V>>(
                topic,
                format!("a value of {new_len} bytes does not fit"),
            ));
        };
        let mut flags = 0;
        if new.is_some() {
            flags |= HAS_NEW;
        }
        if old.is_some() {
            flags |= HAS_OLD;
        }
        let mut out = BytesMut::with_capacity(6 + new_len + old_len);
        out.put_u8(CHANGE_FORMAT_VERSION);
        out.put_u8(flags);
        out.put_u32(new_len_u32);
        if let Some(new) = &new {
            out.put_slice(new);
        }
        if let Some(old) = &old {
            out.put_slice(old);
        }
        Ok(out.freeze())
    }

    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<Change<V>, SerdeError> {
        let error = |reason: String| SerdeError::deserialize::<Change<V>>(topic, reason);
        let Some(header) = bytes.get(..6) else {
            return Err(error(format!(
                "{} bytes, need at least 6 for the header",
                bytes.len()
            )));
        };
        if header[0] != CHANGE_FORMAT_VERSION {
            return Err(error(format!("unknown format version {}", header[0])));
        }
        let flags = header[1];
        if flags & !(HAS_NEW | HAS_OLD) != 0 {
            return Err(error(format!("unknown flags {flags:#04x}")));
        }
        let new_len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
        let new_end = usize::try_from(new_len)
            .ok()
            .and_then(|n| n.checked_add(6))
            .filter(|&end| end <= bytes.len())
            .ok_or_else(|| {
                error(format!(
                    "new value of {new_len} bytes overruns a {}-byte record",
                    bytes.len()
                ))
            })?;
        let new = if flags & HAS_NEW != 0 {
            Some(self.inner.deserialize(topic, &bytes.slice(6..new_end))?)
        } else if new_end != 6 {
            return Err(error("a length without a new value".to_owned()));
        } else {
            None
        };
        let old = if flags & HAS_OLD != 0 {
            Some(self.inner.deserialize(topic, &bytes.slice(new_end..))?)
        } else if new_end != bytes.len() {
            return Err(error("trailing bytes without an old value".to_owned()));
        } else {
            None
        };
        Ok(Change::new(new, old))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streams_core::Serdes;

    #[test]
    fn change_round_trips_every_shape() {
        let serde = ChangeSerde::new(Serdes::string());
        for change in [
            Change::new(Some("a".to_owned()), Some("bb".to_owned())),
            Change::new(Some(String::new()), None),
            Change::new(None, Some("old".to_owned())),
            Change::new(None, None),
        ] {
            let bytes = serde.serialize("t", &change).unwrap();
            assert_eq!(serde.deserialize("t", &bytes).unwrap(), change);
        }
    }

    proptest::proptest! {
        #[test]
        fn change_round_trips(new in proptest::option::of(".*"), old in proptest::option::of(".*")) {
            let serde = ChangeSerde::new(Serdes::string());
            let change = Change::new(new, old);
            let bytes = serde.serialize("t", &change).unwrap();
            proptest::prop_assert_eq!(serde.deserialize("t", &bytes).unwrap(), change);
        }

        #[test]
        fn change_never_panics_on_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..32)) {
            let serde = ChangeSerde::new(Serdes::string());
            let _ = serde.deserialize("t", &Bytes::from(bytes));
        }

        #[test]
        fn value_and_timestamp_round_trips(value in proptest::num::i64::ANY, timestamp in proptest::num::i64::ANY) {
            let serde = ValueAndTimestampSerde::new(Serdes::i64());
            let v = ValueAndTimestamp::make(value, timestamp);
            let bytes = serde.serialize("t", &v).unwrap();
            proptest::prop_assert_eq!(serde.deserialize("t", &bytes).unwrap(), v);
        }
    }

    #[test]
    fn change_rejects_garbage() {
        let serde = ChangeSerde::new(Serdes::string());
        for bad in [
            &b""[..],
            &[2, 0, 0, 0, 0, 0][..],
            &[1, 4, 0, 0, 0, 0][..],
            &[1, 1, 0, 0, 0, 9, b'x'][..],
            &[1, 0, 0, 0, 0, 0, b'x'][..],
        ] {
            assert!(serde
                .deserialize("t", &Bytes::copy_from_slice(bad))
                .is_err());
        }
    }

    #[test]
    fn value_and_timestamp_uses_kafkas_layout() {
        let serde = ValueAndTimestampSerde::new(Serdes::i64());
        let bytes = serde
            .serialize("t", &ValueAndTimestamp::make(3, 258))
            .unwrap();
        assert_eq!(
            &bytes[..],
            &[0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0, 3]
        );
        assert_eq!(
            serde.deserialize("t", &bytes).unwrap(),
            ValueAndTimestamp::make(3, 258)
        );
        assert!(serde
            .deserialize("t", &Bytes::from_static(&[1, 2, 3]))
            .is_err());
    }
}
