//! The values a stream–stream join keeps in its stores, with their serdes:
//! lists of values ([`ListSerde`]), the keys of the outer-join store
//! ([`TimestampedKeyAndJoinSide`]) and its values ([`LeftOrRightValue`]).
//! The layouts are Kafka Streams' (`Serdes.ListSerde` of byte arrays,
//! `TimestampedKeyAndJoinSideSerializer`, `LeftOrRightValueSerializer`),
//! drawn in `docs/joins.md`.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use bytes::Bytes;
use streams_core::{Serde, SerdeError};

/// The first byte of a [`ListSerde`] list: Kafka's `VARIABLE_SIZE`
/// serialization strategy (each entry prefixed by its length).
const LIST_VARIABLE_SIZE: u8 = 1;

/// Writes a list of values as Kafka's `Serdes.ListSerde` does for values
/// of variable size: a strategy byte (1), the number of entries as a 4-byte
/// big-endian integer, then each entry as its length (4 bytes, big-endian)
/// and its bytes, written with the inner serde.
pub(crate) struct ListSerde<V> {
    inner: Arc<dyn Serde<V>>,
}

impl<V> fmt::Debug for ListSerde<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ListSerde").finish_non_exhaustive()
    }
}

impl<V> ListSerde<V> {
    pub(crate) fn new(inner: Arc<dyn Serde<V>>) -> Self {
        Self { inner }
    }
}

/// A 4-byte big-endian integer at `at` in `bytes`.
fn read_i32(bytes: &[u8], at: usize) -> Option<i32> {
    let field: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(i32::from_be_bytes(field))
}

impl<V: 'static> ListSerde<V> {
    /// Checks that `bytes` is a list in this layout and hands the range of
    /// each entry's bytes to `entry`, in order; returns the number of
    /// entries.
    fn walk(
        &self,
        topic: &str,
        bytes: &[u8],
        mut entry: impl FnMut(std::ops::Range<usize>) -> Result<(), SerdeError>,
    ) -> Result<usize, SerdeError> {
        let error = |reason: String| SerdeError::deserialize::<Vec<V>>(topic, reason);
        match bytes.first() {
            Some(&LIST_VARIABLE_SIZE) => {}
            Some(other) => {
                return Err(error(format!(
                    "list strategy byte {other}, expected {LIST_VARIABLE_SIZE}"
                )))
            }
            None => return Err(error("an empty list value".to_owned())),
        }
        let count = read_i32(bytes, 1)
            .ok_or_else(|| error(format!("{} bytes, too short for a list", bytes.len())))?;
        let count =
            usize::try_from(count).map_err(|_| error(format!("a negative list length {count}")))?;
        let mut at = 5;
        for index in 0..count {
            let len = read_i32(bytes, at).ok_or_else(|| {
                error(format!("entry {index} of {count}: no length at byte {at}"))
            })?;
            let len = usize::try_from(len).map_err(|_| {
                error(format!(
                    "entry {index} of {count}: a null or negative length {len}"
                ))
            })?;
            let start = at + 4;
            let end = start
                .checked_add(len)
                .filter(|&end| end <= bytes.len())
                .ok_or_else(|| {
                    error(format!(
                        "entry {index} of {count}: {len} bytes at byte {start}, past the end ({})",
                        bytes.len()
                    ))
                })?;
            entry(start..end)?;
            at = end;
        }
        if at != bytes.len() {
            return Err(error(format!(
                "{} bytes after the last of {count} entries",
                bytes.len() - at
            )));
        }
        Ok(count)
    }

    /// Appends `entry`, its length first, to `out`.
    fn write_entry(&self, topic: &str, entry: &V, out: &mut Vec<u8>) -> Result<(), SerdeError> {
        let at = out.len();
        out.extend_from_slice(&[0; 4]);
        self.inner.serialize_into(topic, entry, out)?;
        let written = out.len() - at - 4;
        let len = i32::try_from(written).map_err(|_| too_long::<V>(topic, "an entry", written))?;
        out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        Ok(())
    }

    /// Appends to `out` the list `old` (the bytes of a list in this
    /// layout, or `None` for an empty list) with `value` added at its end:
    /// the bytes [`Serde::serialize_into`] writes for the list decoded from
    /// `old` with `value` pushed, the entries of `old` copied as they are.
    pub(crate) fn write_appended(
        &self,
        topic: &str,
        old: Option<&[u8]>,
        value: &V,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        let (count, entries) = match old {
            Some(old) => (self.walk(topic, old, |_| Ok(()))?, &old[5..]),
            None => (0, &[][..]),
        };
        let count = count + 1;
        let count = i32::try_from(count).map_err(|_| too_long::<V>(topic, "a list", count))?;
        out.push(LIST_VARIABLE_SIZE);
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(entries);
        self.write_entry(topic, value, out)
    }
}

/// The error for a list or an entry of `n` that an i32 cannot count.
fn too_long<V>(topic: &str, what: &str, n: usize) -> SerdeError {
    SerdeError::serialize::<Vec<V>>(topic, format!("{what} of {n} does not fit in an i32"))
}

impl<V: 'static> Serde<Vec<V>> for ListSerde<V> {
    fn serialize(&self, topic: &str, value: &Vec<V>) -> Result<Bytes, SerdeError> {
        let mut out = Vec::new();
        self.serialize_into(topic, value, &mut out)?;
        Ok(Bytes::from(out))
    }

    fn serialize_into(
        &self,
        topic: &str,
        value: &Vec<V>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        let count =
            i32::try_from(value.len()).map_err(|_| too_long::<V>(topic, "a list", value.len()))?;
        out.push(LIST_VARIABLE_SIZE);
        out.extend_from_slice(&count.to_be_bytes());
        for entry in value {
            self.write_entry(topic, entry, out)?;
        }
        Ok(())
    }

    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<Vec<V>, SerdeError> {
        // Each entry takes at least its 4-byte length.
        let mut out = Vec::with_capacity(read_i32(bytes, 1).map_or(0, |count| {
            usize::try_from(count).unwrap_or(0).min(bytes.len() / 4)
        }));
        self.walk(topic, bytes, |range| {
            out.push(self.inner.deserialize(topic, &bytes.slice(range))?);
            Ok(())
        })?;
        Ok(out)
    }
}

/// The key of a record held in the outer-join store: its timestamp, its
/// side and its key (Kafka's `TimestampedKeyAndJoinSide`). Stored keys
/// sort by timestamp (non-negative ones numerically), then right before
/// left, then by key bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TimestampedKeyAndJoinSide<K> {
    pub(crate) timestamp: i64,
    /// Whether the record came from the left stream.
    pub(crate) left: bool,
    pub(crate) key: K,
}

/// Writes a [`TimestampedKeyAndJoinSide`]: the timestamp as 8 big-endian
/// bytes, one byte for the side (1: left, 0: right), the key's bytes.
pub(crate) struct TimestampedKeyAndJoinSideSerde<K> {
    inner: Arc<dyn Serde<K>>,
}

impl<K> fmt::Debug for TimestampedKeyAndJoinSideSerde<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimestampedKeyAndJoinSideSerde")
            .finish_non_exhaustive()
    }
}

impl<K> TimestampedKeyAndJoinSideSerde<K> {
    pub(crate) fn new(inner: Arc<dyn Serde<K>>) -> Self {
        Self { inner }
    }
}

impl<K: 'static> Serde<TimestampedKeyAndJoinSide<K>> for TimestampedKeyAndJoinSideSerde<K> {
    fn serialize(
        &self,
        topic: &str,
        value: &TimestampedKeyAndJoinSide<K>,
    ) -> Result<Bytes, SerdeError> {
        let mut out = Vec::with_capacity(16);
        self.serialize_into(topic, value, &mut out)?;
        Ok(Bytes::from(out))
    }

    fn serialize_into(
        &self,
        topic: &str,
        value: &TimestampedKeyAndJoinSide<K>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.extend_from_slice(&value.timestamp.to_be_bytes());
        out.push(u8::from(value.left));
        self.inner.serialize_into(topic, &value.key, out)
    }

    fn deserialize(
        &self,
        topic: &str,
        bytes: &Bytes,
    ) -> Result<TimestampedKeyAndJoinSide<K>, SerdeError> {
        let (Some(timestamp), Some(&side)) = (
            bytes
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(i64::from_be_bytes),
            bytes.get(8),
        ) else {
            return Err(SerdeError::deserialize::<TimestampedKeyAndJoinSide<K>>(
                topic,
                format!(
                    "{} bytes, need at least 9 for the timestamp and the side",
                    bytes.len()
                ),
            ));
        };
        Ok(TimestampedKeyAndJoinSide {
            timestamp,
            left: side != 0,
            key: self.inner.deserialize(topic, &bytes.slice(9..))?,
        })
    }
}

/// A value held in the outer-join store: a left record's value or a right
/// record's (Kafka's `LeftOrRightValue`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeftOrRightValue<VL, VR> {
    Left(VL),
    Right(VR),
}

/// Writes a [`LeftOrRightValue`]: one byte for the side (1: left, 0:
/// right), then the value's bytes, written with that side's serde.
pub(crate) struct LeftOrRightValueSerde<VL, VR> {
    left: Arc<dyn Serde<VL>>,
    right: Arc<dyn Serde<VR>>,
    _types: PhantomData<fn() -> (VL, VR)>,
}

impl<VL, VR> fmt::Debug for LeftOrRightValueSerde<VL, VR> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeftOrRightValueSerde")
            .finish_non_exhaustive()
    }
}

impl<VL, VR> LeftOrRightValueSerde<VL, VR> {
    pub(crate) fn new(left: Arc<dyn Serde<VL>>, right: Arc<dyn Serde<VR>>) -> Self {
        Self {
            left,
            right,
            _types: PhantomData,
        }
    }
}

impl<VL: 'static, VR: 'static> Serde<LeftOrRightValue<VL, VR>> for LeftOrRightValueSerde<VL, VR> {
    fn serialize(
        &self,
        topic: &str,
        value: &LeftOrRightValue<VL, VR>,
    ) -> Result<Bytes, SerdeError> {
        let mut out = Vec::with_capacity(16);
        self.serialize_into(topic, value, &mut out)?;
        Ok(Bytes::from(out))
    }

    fn serialize_into(
        &self,
        topic: &str,
        value: &LeftOrRightValue<VL, VR>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        match value {
            LeftOrRightValue::Left(v) => {
                out.push(1);
                self.left.serialize_into(topic, v, out)
            }
            LeftOrRightValue::Right(v) => {
                out.push(0);
                self.right.serialize_into(topic, v, out)
            }
        }
    }

    fn deserialize(
        &self,
        topic: &str,
        bytes: &Bytes,
    ) -> Result<LeftOrRightValue<VL, VR>, SerdeError> {
        match bytes.first() {
            Some(0) => Ok(LeftOrRightValue::Right(
                self.right.deserialize(topic, &bytes.slice(1..))?,
            )),
            Some(_) => Ok(LeftOrRightValue::Left(
                self.left.deserialize(topic, &bytes.slice(1..))?,
            )),
            None => Err(SerdeError::deserialize::<LeftOrRightValue<VL, VR>>(
                topic,
                "an empty value, need at least the side byte",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use streams_core::Serdes;

    use super::*;

    fn list() -> ListSerde<String> {
        ListSerde::new(Arc::new(Serdes::string()))
    }

    #[test]
    fn lists_are_kafkas_variable_size_list_layout() {
        let bytes = list()
            .serialize("t", &vec!["ab".to_owned(), String::new()])
            .unwrap();
        assert_eq!(
            bytes.as_ref(),
            [1, 0, 0, 0, 2, 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0]
        );
    }

    #[test]
    fn damaged_lists_are_errors_not_panics() {
        for bad in [
            &[][..],
            &[0, 0, 0, 0, 0],
            &[1, 0, 0],
            &[1, 0, 0, 0, 1],
            &[1, 0, 0, 0, 1, 0, 0, 0, 5, b'a'],
            &[1, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff],
            &[1, 0xff, 0xff, 0xff, 0xff],
            &[1, 0, 0, 0, 0, 7],
        ] {
            assert!(
                list()
                    .deserialize("t", &Bytes::copy_from_slice(bad))
                    .is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn appending_to_a_damaged_list_is_an_error_and_writes_nothing() {
        for bad in [
            &[][..],
            &[0, 0, 0, 0, 0],
            &[1, 0, 0, 0, 1],
            &[1, 0, 0, 0, 1, 0, 0, 0, 5, b'a'],
            &[1, 0, 0, 0, 0, 7],
        ] {
            let mut out = Vec::new();
            assert!(
                list()
                    .write_appended("t", Some(bad), &"x".to_owned(), &mut out)
                    .is_err(),
                "{bad:?}"
            );
            assert!(out.is_empty(), "{bad:?}");
        }
    }

    #[test]
    fn outer_keys_sort_by_time_then_right_before_left_then_key() {
        let serde = TimestampedKeyAndJoinSideSerde::new(Arc::new(Serdes::string()));
        let key = |timestamp, left, key: &str| {
            serde
                .serialize(
                    "t",
                    &TimestampedKeyAndJoinSide {
                        timestamp,
                        left,
                        key: key.to_owned(),
                    },
                )
                .unwrap()
        };
        let mut keys = vec![
            key(5, true, "a"),
            key(5, false, "b"),
            key(4, true, "z"),
            key(5, false, "a"),
            key(300, false, "a"),
        ];
        keys.sort();
        assert_eq!(
            keys,
            [
                key(4, true, "z"),
                key(5, false, "a"),
                key(5, false, "b"),
                key(5, true, "a"),
                key(300, false, "a"),
            ]
        );
        assert_eq!(
            key(1, true, "k").as_ref(),
            [0, 0, 0, 0, 0, 0, 0, 1, 1, b'k']
        );
    }

    proptest! {
        #[test]
        fn lists_round_trip(values in proptest::collection::vec(".{0,8}", 0..6)) {
            let bytes = list().serialize("t", &values).unwrap();
            prop_assert_eq!(list().deserialize("t", &bytes).unwrap(), values);
        }

        #[test]
        fn appending_writes_the_list_with_the_value_pushed(
            values in proptest::collection::vec(".{0,8}", 0..6),
            value in ".{0,8}",
            prefix in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let old = (!values.is_empty()).then(|| list().serialize("t", &values).unwrap());
            let mut out = prefix.clone();
            list().write_appended("t", old.as_deref(), &value, &mut out).unwrap();
            let mut pushed = values.clone();
            pushed.push(value);
            let mut want = prefix;
            want.extend_from_slice(&list().serialize("t", &pushed).unwrap());
            prop_assert_eq!(out, want);
        }

        #[test]
        fn outer_keys_and_values_round_trip(timestamp in any::<i64>(), left in any::<bool>(), key in ".{0,8}", value in any::<i64>()) {
            let keys = TimestampedKeyAndJoinSideSerde::new(Arc::new(Serdes::string()));
            let k = TimestampedKeyAndJoinSide { timestamp, left, key };
            prop_assert_eq!(keys.deserialize("t", &keys.serialize("t", &k).unwrap()).unwrap(), k);
            let values = LeftOrRightValueSerde::new(Arc::new(Serdes::string()), Arc::new(Serdes::i64()));
            let v: LeftOrRightValue<String, i64> = if left {
                LeftOrRightValue::Left(value.to_string())
            } else {
                LeftOrRightValue::Right(value)
            };
            prop_assert_eq!(values.deserialize("t", &values.serialize("t", &v).unwrap()).unwrap(), v);
        }
    }
}
