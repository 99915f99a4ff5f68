//! The [`VersionedKeyValueStore`] trait (Kafka's `VersionedKeyValueStore`,
//! KIP-889): several timestamped versions per key, read as of a time.

use std::fmt;

use bytes::Bytes;

use crate::error::Result;

/// One version of a key: its value, the timestamp it became valid at, and
/// the timestamp the next version took over at (Kafka's `VersionedRecord`).
/// A version is valid from `timestamp` (inclusive) to `valid_to`
/// (exclusive); the latest version of a key has no `valid_to`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VersionedRecord<V> {
    /// The value.
    pub value: V,
    /// The timestamp the version became valid at (the put's timestamp).
    pub timestamp: i64,
    /// The timestamp of the next version (or delete) of the key; `None`
    /// for the latest version.
    pub valid_to: Option<i64>,
}

impl<V> VersionedRecord<V> {
    /// The same version with its value mapped by `f`.
    pub fn map<W>(self, f: impl FnOnce(V) -> W) -> VersionedRecord<W> {
        VersionedRecord {
            value: f(self.value),
            timestamp: self.timestamp,
            valid_to: self.valid_to,
        }
    }

    /// The same version with its value mapped by `f`, which may fail.
    pub fn try_map<W, E>(
        self,
        f: impl FnOnce(V) -> std::result::Result<W, E>,
    ) -> std::result::Result<VersionedRecord<W>, E> {
        Ok(VersionedRecord {
            value: f(self.value)?,
            timestamp: self.timestamp,
            valid_to: self.valid_to,
        })
    }
}

/// What [`VersionedKeyValueStore::put`] did with a record, as Kafka's
/// `put` return codes tell it (`PUT_RETURN_CODE_VALID_TO_UNDEFINED`, a
/// `validTo` timestamp, `PUT_RETURN_CODE_NOT_PUT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PutOutcome {
    /// The record is now the latest version of its key (its timestamp is
    /// at least the latest one's).
    Latest,
    /// The record went into the key's history: a later version exists,
    /// and this one is valid until `valid_to`.
    Older {
        /// The timestamp of the next version of the key.
        valid_to: i64,
    },
    /// The record was not put: its timestamp is older than the store's
    /// observed stream time minus its history retention.
    NotPut,
}

impl PutOutcome {
    /// Whether the record was stored (as the latest version or in the
    /// history).
    pub fn is_put(self) -> bool {
        !matches!(self, Self::NotPut)
    }

    /// Whether the record became the latest version of its key.
    pub fn is_latest(self) -> bool {
        matches!(self, Self::Latest)
    }

    /// Kafka's return code: `-1` for the latest version, the `validTo`
    /// timestamp for an older one, `i64::MIN` for a record not put.
    pub fn kafka_code(self) -> i64 {
        match self {
            Self::Latest => -1,
            Self::Older { valid_to } => valid_to,
            Self::NotPut => i64::MIN,
        }
    }
}

/// One write of a versioned restore batch: a key, its value (`None`: a
/// delete) and the version's timestamp (the changelog record's).
pub type VersionedWrite = (Bytes, Option<Bytes>, i64);

/// A key-value store over bytes that keeps several versions per key, each
/// with the timestamp it became valid at (Kafka's `VersionedKeyValueStore`).
///
/// A put of `(key, value, timestamp)` adds a version; `None` as the value
/// is a delete (a tombstone version). [`VersionedKeyValueStore::get`]
/// reads the latest version, [`VersionedKeyValueStore::get_as_of`] the
/// version valid at a time: the one with the largest timestamp not after
/// it.
///
/// The store's history retention is also its grace period: the store
/// tracks its observed stream time (the largest timestamp put), drops
/// versions that stopped being valid before `observed stream time -
/// history retention`, refuses puts and deletes older than that
/// ([`PutOutcome::NotPut`]) and answers reads as of an older time with
/// `None` (unless the latest version is valid then: the latest version of
/// a key never expires).
///
/// Implemented by [`crate::KvVersionedStore`] on any backend and by the
/// changelogging layer [`crate::ChangeLoggingVersionedStore`].
pub trait VersionedKeyValueStore: Send + fmt::Debug {
    /// The store's name (also its directory name under the state dir).
    fn name(&self) -> &str;

    /// Whether the store keeps its data on disk across restarts.
    fn persistent(&self) -> bool;

    /// The history retention (and grace period), milliseconds.
    fn history_retention(&self) -> i64;

    /// The largest timestamp put so far.
    fn observed_stream_time(&self) -> Option<i64>;

    /// Adds a version of `key`: `value` (`None`: a delete) valid from
    /// `timestamp`. A version of the key at exactly that timestamp is
    /// replaced.
    fn put(&mut self, key: Bytes, value: Option<Bytes>, timestamp: i64) -> Result<PutOutcome>;

    /// Deletes `key` as of `timestamp` (a put of a tombstone) and returns
    /// the version that was valid at `timestamp`, if any. A delete older
    /// than the history retention does nothing and returns `None`.
    fn delete(&mut self, key: Bytes, timestamp: i64) -> Result<Option<VersionedRecord<Bytes>>>;

    /// The latest version of `key`, unless it is a delete.
    fn get(&self, key: &[u8]) -> Result<Option<VersionedRecord<Bytes>>>;

    /// The version of `key` valid at `as_of`: the one with the largest
    /// timestamp not after `as_of`; `None` if that is a delete, if there is
    /// none, or if `as_of` is older than the history retention and the
    /// latest version is not valid then.
    fn get_as_of(&self, key: &[u8], as_of: i64) -> Result<Option<VersionedRecord<Bytes>>>;

    /// Applies changelog records in order, as puts at their timestamps,
    /// without logging them (restoration). Records older than the history
    /// retention are skipped as a put would skip them.
    fn restore_batch(&mut self, batch: &[VersionedWrite]) -> Result<()>;

    /// Makes every write so far durable.
    fn flush(&mut self) -> Result<()>;

    /// Hands every write so far to the backend without waiting for it to
    /// become durable (see [`crate::KeyValueStore::flush_unsynced`]).
    fn flush_unsynced(&mut self) -> Result<()> {
        self.flush()
    }

    /// Flushes and releases the store's resources; later calls return
    /// [`crate::StoreError::Closed`].
    fn close(&mut self) -> Result<()>;
}

impl<S: VersionedKeyValueStore + ?Sized> VersionedKeyValueStore for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn persistent(&self) -> bool {
        (**self).persistent()
    }
    fn history_retention(&self) -> i64 {
        (**self).history_retention()
    }
    fn observed_stream_time(&self) -> Option<i64> {
        (**self).observed_stream_time()
    }
    fn put(&mut self, key: Bytes, value: Option<Bytes>, timestamp: i64) -> Result<PutOutcome> {
        (**self).put(key, value, timestamp)
    }
    fn delete(&mut self, key: Bytes, timestamp: i64) -> Result<Option<VersionedRecord<Bytes>>> {
        (**self).delete(key, timestamp)
    }
    fn get(&self, key: &[u8]) -> Result<Option<VersionedRecord<Bytes>>> {
        (**self).get(key)
    }
    fn get_as_of(&self, key: &[u8], as_of: i64) -> Result<Option<VersionedRecord<Bytes>>> {
        (**self).get_as_of(key, as_of)
    }
    fn restore_batch(&mut self, batch: &[VersionedWrite]) -> Result<()> {
        (**self).restore_batch(batch)
    }
    fn flush(&mut self) -> Result<()> {
        (**self).flush()
    }
    fn flush_unsynced(&mut self) -> Result<()> {
        (**self).flush_unsynced()
    }
    fn close(&mut self) -> Result<()> {
        (**self).close()
    }
}
