//! What travels through a foreign-key join's internal topics, and the
//! subscription store's key.
//!
//! Byte layouts (big-endian), each with a version byte first:
//! - subscription: `version (0)`, `instruction`, `hash flag (0|1)`,
//!   `hash (16 bytes, if flagged)`, `primary key (the rest, in the left
//!   table's key serde)`;
//! - response: `version (0)`, `hash flag`, `hash (16, if flagged)`,
//!   `value flag (0|1)`, `foreign value (the rest, in the right table's
//!   value serde, if flagged)`;
//! - subscription store key: `foreign key length (u32)`, `foreign key`,
//!   `primary key`, so that one foreign key's subscriptions are one range.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use streams_core::{Serde, SerdeError};

use crate::options::SerdeArc;

const VERSION: u8 = 0;

/// What a subscription asks of the right side (Kafka's
/// `SubscriptionWrapper.Instruction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Instruction {
    /// Remove the subscription, say nothing.
    DeleteKeyNoPropagate,
    /// Remove the subscription and answer with no row.
    DeleteKeyAndPropagate,
    /// Keep the subscription; answer with the row, or with none.
    PropagateNullIfNoFkValAvailable,
    /// Keep the subscription; answer only if there is a row.
    PropagateOnlyIfFkValAvailable,
}

impl Instruction {
    fn byte(self) -> u8 {
        match self {
            Self::DeleteKeyNoPropagate => 0,
            Self::DeleteKeyAndPropagate => 1,
            Self::PropagateNullIfNoFkValAvailable => 2,
            Self::PropagateOnlyIfFkValAvailable => 3,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::DeleteKeyNoPropagate,
            1 => Self::DeleteKeyAndPropagate,
            2 => Self::PropagateNullIfNoFkValAvailable,
            3 => Self::PropagateOnlyIfFkValAvailable,
            _ => return None,
        })
    }
}

/// The 128-bit hash of a left value's bytes, which a response must carry
/// to be joined.
pub(crate) fn value_hash(bytes: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128(bytes)
}

/// A subscription of the left row `primary_key` (Kafka's
/// `SubscriptionWrapper`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SubscriptionWrapper<K> {
    /// The hash of the left value that subscribed; `None` for a delete.
    pub(crate) hash: Option<u128>,
    pub(crate) instruction: Instruction,
    pub(crate) primary_key: K,
}

/// An answer to a subscription (Kafka's `SubscriptionResponseWrapper`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResponseWrapper<VO> {
    /// The subscription's hash.
    pub(crate) hash: Option<u128>,
    /// The right row, if any.
    pub(crate) foreign_value: Option<VO>,
}

fn put_hash(out: &mut BytesMut, hash: Option<u128>) {
    match hash {
        Some(hash) => {
            out.put_u8(1);
            out.put_u128(hash);
        }
        None => out.put_u8(0),
    }
}

/// Reads a flagged hash from the front of `bytes`.
fn take_hash<'b>(
    topic: &str,
    bytes: &'b [u8],
    what: &str,
) -> Result<(Option<u128>, &'b [u8]), SerdeError> {
    let bad = || SerdeError::deserialize::<u128>(topic, format!("a truncated {what}"));
    let (&flag, rest) = bytes.split_first().ok_or_else(bad)?;
    match flag {
        0 => Ok((None, rest)),
        1 => {
            let (hash, rest) = rest.split_at_checked(16).ok_or_else(bad)?;
            let hash = <[u8; 16]>::try_from(hash).map_err(|_| bad())?;
            Ok((Some(u128::from_be_bytes(hash)), rest))
        }
        other => Err(SerdeError::deserialize::<u128>(
            topic,
            format!("{what}: hash flag {other} is neither 0 nor 1"),
        )),
    }
}

fn check_version<T: ?Sized>(topic: &str, bytes: &[u8], what: &str) -> Result<(), SerdeError> {
    match bytes.first() {
        Some(&VERSION) => Ok(()),
        Some(v) => Err(SerdeError::deserialize::<T>(
            topic,
            format!("{what} of unknown version {v} (this build reads version {VERSION})"),
        )),
        None => Err(SerdeError::deserialize::<T>(
            topic,
            format!("an empty {what}"),
        )),
    }
}

/// The serde of subscriptions, over the left table's key serde.
pub(crate) struct SubscriptionWrapperSerde<K> {
    key_serde: SerdeArc<K>,
}

impl<K> fmt::Debug for SubscriptionWrapperSerde<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SubscriptionWrapperSerde")
    }
}

impl<K> SubscriptionWrapperSerde<K> {
    pub(crate) fn new(key_serde: SerdeArc<K>) -> Self {
        Self { key_serde }
    }
}

impl<K: 'static> Serde<SubscriptionWrapper<K>> for SubscriptionWrapperSerde<K> {
    fn serialize(&self, topic: &str, value: &SubscriptionWrapper<K>) -> Result<Bytes, SerdeError> {
        let key = self.key_serde.serialize(topic, &value.primary_key)?;
        let mut out = BytesMut::with_capacity(19 + key.len());
        out.put_u8(VERSION);
        out.put_u8(value.instruction.byte());
        put_hash(&mut out, value.hash);
        out.put_slice(&key);
        Ok(out.freeze())
    }

    fn deserialize(
        &self,
        topic: &str,
        bytes: &Bytes,
    ) -> Result<SubscriptionWrapper<K>, SerdeError> {
        check_version::<SubscriptionWrapper<K>>(topic, bytes, "subscription")?;
        let instruction = bytes
            .get(1)
            .and_then(|&b| Instruction::from_byte(b))
            .ok_or_else(|| {
                SerdeError::deserialize::<SubscriptionWrapper<K>>(
                    topic,
                    "a subscription without a known instruction",
                )
            })?;
        let (hash, rest) = take_hash(topic, &bytes[2..], "subscription")?;
        let offset = bytes.len() - rest.len();
        let primary_key = self.key_serde.deserialize(topic, &bytes.slice(offset..))?;
        Ok(SubscriptionWrapper {
            hash,
            instruction,
            primary_key,
        })
    }
}

/// The serde of responses, over the right table's value serde.
pub(crate) struct ResponseWrapperSerde<VO> {
    value_serde: SerdeArc<VO>,
}

impl<VO> fmt::Debug for ResponseWrapperSerde<VO> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ResponseWrapperSerde")
    }
}

impl<VO> ResponseWrapperSerde<VO> {
    pub(crate) fn new(value_serde: SerdeArc<VO>) -> Self {
        Self { value_serde }
    }
}

impl<VO: 'static> Serde<ResponseWrapper<VO>> for ResponseWrapperSerde<VO> {
    fn serialize(&self, topic: &str, value: &ResponseWrapper<VO>) -> Result<Bytes, SerdeError> {
        let foreign = value
            .foreign_value
            .as_ref()
            .map(|v| self.value_serde.serialize(topic, v))
            .transpose()?;
        let mut out = BytesMut::with_capacity(19 + foreign.as_ref().map_or(0, Bytes::len));
        out.put_u8(VERSION);
        put_hash(&mut out, value.hash);
        match foreign {
            Some(bytes) => {
                out.put_u8(1);
                out.put_slice(&bytes);
            }
            None => out.put_u8(0),
        }
        Ok(out.freeze())
    }

    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<ResponseWrapper<VO>, SerdeError> {
        check_version::<ResponseWrapper<VO>>(topic, bytes, "subscription response")?;
        let (hash, rest) = take_hash(topic, &bytes[1..], "subscription response")?;
        let (&flag, rest) = rest.split_first().ok_or_else(|| {
            SerdeError::deserialize::<ResponseWrapper<VO>>(
                topic,
                "a truncated subscription response",
            )
        })?;
        let offset = bytes.len() - rest.len();
        let foreign_value = match flag {
            0 => None,
            1 => Some(
                self.value_serde
                    .deserialize(topic, &bytes.slice(offset..))?,
            ),
            other => {
                return Err(SerdeError::deserialize::<ResponseWrapper<VO>>(
                    topic,
                    format!("value flag {other} is neither 0 nor 1"),
                ))
            }
        };
        Ok(ResponseWrapper {
            hash,
            foreign_value,
        })
    }
}

/// The subscription store's key prefix of one foreign key's bytes.
pub(crate) fn foreign_key_prefix(foreign_key: &[u8]) -> Vec<u8> {
    let len = u32::try_from(foreign_key.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(4 + foreign_key.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(foreign_key);
    out
}

/// The subscription store's key of a foreign key and a primary key.
pub(crate) fn combined_key(foreign_key: &[u8], primary_key: &[u8]) -> Bytes {
    let mut out = foreign_key_prefix(foreign_key);
    out.extend_from_slice(primary_key);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use proptest::prelude::*;
    use streams_core::Serdes;

    use super::*;

    fn instruction() -> impl Strategy<Value = Instruction> {
        prop::sample::select(vec![
            Instruction::DeleteKeyNoPropagate,
            Instruction::DeleteKeyAndPropagate,
            Instruction::PropagateNullIfNoFkValAvailable,
            Instruction::PropagateOnlyIfFkValAvailable,
        ])
    }

    proptest! {
        #[test]
        fn subscriptions_round_trip(hash in any::<Option<u128>>(), instruction in instruction(), key in ".*") {
            let serde = SubscriptionWrapperSerde::new(Arc::new(Serdes::string()));
            let wrapper = SubscriptionWrapper { hash, instruction, primary_key: key };
            let bytes = serde.serialize("t", &wrapper).unwrap();
            prop_assert_eq!(serde.deserialize("t", &bytes).unwrap(), wrapper);
        }

        #[test]
        fn responses_round_trip(hash in any::<Option<u128>>(), value in any::<Option<String>>()) {
            let serde = ResponseWrapperSerde::new(Arc::new(Serdes::string()));
            let wrapper = ResponseWrapper { hash, foreign_value: value };
            let bytes = serde.serialize("t", &wrapper).unwrap();
            prop_assert_eq!(serde.deserialize("t", &bytes).unwrap(), wrapper);
        }

        /// Hostile bytes give an error, never a panic.
        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let bytes = Bytes::from(bytes);
            let _ = SubscriptionWrapperSerde::new(Arc::new(Serdes::string())).deserialize("t", &bytes);
            let _ = ResponseWrapperSerde::new(Arc::new(Serdes::string())).deserialize("t", &bytes);
        }

        /// One foreign key's subscriptions are one contiguous range.
        #[test]
        fn combined_keys_group_by_foreign_key(a in proptest::collection::vec(any::<u8>(), 0..6), b in proptest::collection::vec(any::<u8>(), 0..6), p in proptest::collection::vec(any::<u8>(), 0..6)) {
            let key = combined_key(&a, &p);
            prop_assert!(key.starts_with(&foreign_key_prefix(&a)));
            if a != b {
                prop_assert!(!key.starts_with(&foreign_key_prefix(&b)));
            }
        }
    }
}
