//! [`KvVersionedStore`]: a [`VersionedKeyValueStore`] on any
//! [`KeyValueStore`] backend, in memory ([`InMemoryVersionedStore`]) or on
//! disk (redb, sled).
//!
//! Keys in the backend, by their first byte:
//!
//! ```text
//! 0x00                                          -> meta: version (u8 = 1), then observed
//!                                                  stream time (i64 BE, 8); absent before
//!                                                  the first put
//! 0x01 | key                                    -> the latest version: kind (u8: 1 value,
//!                                                  0 delete), valid_from (i64 BE, 8),
//!                                                  value bytes (none for a delete)
//! 0x02 | key length (u32 BE) | key | valid_to*  -> an older version, laid out as the latest
//! 0x03 | valid_to* | key length (u32 BE) | key  -> empty: the expiry index
//! ```
//!
//! `*`: an i64 big-endian with its sign bit flipped, so that it sorts like
//! the number.
//!
//! Older versions are kept by the time they stopped being valid
//! (`valid_to`, the next version's timestamp), as Kafka's segments keep
//! them: the version valid at `t` is the first one of the key with
//! `valid_to > t`, if it started at or before `t`; before the oldest
//! version kept there is nothing. A latest delete that a value follows
//! stays as an older version that starts and ends at its own timestamp (as
//! Kafka's "degenerate" segment row): no read finds it, but an older put
//! before it is valid until it, and it does not last until the value (so
//! a put between the two, once the value is deleted at its own timestamp,
//! is the latest version again). Every older version has an entry in the
//! expiry index, and a latest delete one at its own timestamp: once
//! `valid_to <= observed stream time - history retention` no read or put
//! can reach the version any more, and it is dropped with its index entry
//! (a latest delete that old too). Index entries whose version was
//! replaced are dropped at the same time.

use std::path::Path;

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Result, StoreError};
use crate::memory::InMemoryStore;
use crate::store::{BatchWrite, KeyValueStore};
use crate::time_indexed::ordered_time;
use crate::versioned::{PutOutcome, VersionedKeyValueStore, VersionedRecord, VersionedWrite};

const META_KEY: &[u8] = &[0x00];
const LATEST_PREFIX: u8 = 0x01;
const HISTORY_PREFIX: u8 = 0x02;
const INDEX_PREFIX: u8 = 0x03;
/// The format version of the layout, in the meta entry.
pub(crate) const VERSIONED_META_VERSION: u8 = 1;
const META_LEN: usize = 1 + 8;
const KIND_DELETE: u8 = 0;
const KIND_VALUE: u8 = 1;

/// A versioned store held in memory.
pub type InMemoryVersionedStore = KvVersionedStore<InMemoryStore>;

/// The latest version of a key as its entry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Latest {
    timestamp: i64,
    /// `None`: the latest version is a delete.
    value: Option<Bytes>,
}

/// An older version as its entry holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Older {
    valid_from: i64,
    valid_to: i64,
    /// `None`: the version is a delete.
    value: Option<Bytes>,
}

/// A [`VersionedKeyValueStore`] on a [`KeyValueStore`] backend; the
/// layout is drawn in this module's documentation and in
/// `docs/format.md`.
///
/// ```
/// use bytes::Bytes;
/// use state_store::{InMemoryVersionedStore, PutOutcome, VersionedKeyValueStore};
///
/// # fn main() -> state_store::Result<()> {
/// let mut store = InMemoryVersionedStore::in_memory("prices", 100);
/// store.put(Bytes::from("pen"), Some(Bytes::from("2")), 10)?;
/// store.put(Bytes::from("pen"), Some(Bytes::from("3")), 20)?;
/// // An out-of-order update goes into the history.
/// let outcome = store.put(Bytes::from("pen"), Some(Bytes::from("1")), 5)?;
/// assert_eq!(outcome, PutOutcome::Older { valid_to: 10 });
/// assert_eq!(store.get(b"pen")?.map(|r| r.value), Some(Bytes::from("3")));
/// assert_eq!(store.get_as_of(b"pen", 12)?.map(|r| r.value), Some(Bytes::from("2")));
/// assert_eq!(store.get_as_of(b"pen", 4)?, None);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct KvVersionedStore<S> {
    backend: S,
    retention: i64,
    observed: Option<i64>,
}

impl InMemoryVersionedStore {
    /// An empty in-memory store with `history_retention_ms` of history.
    pub fn in_memory(name: impl Into<String>, history_retention_ms: i64) -> Self {
        Self {
            backend: InMemoryStore::new(name),
            retention: history_retention_ms.max(0),
            observed: None,
        }
    }
}

impl<S: KeyValueStore> KvVersionedStore<S> {
    /// A versioned store in `backend`, which is empty or was written by a
    /// versioned store. A meta entry it cannot decode is
    /// [`StoreError::CorruptEntry`].
    pub fn new(backend: S, history_retention_ms: i64) -> Result<Self> {
        let observed = match backend.get(META_KEY)? {
            None => None,
            Some(meta) => Some(decode_meta(backend.name(), &meta)?),
        };
        Ok(Self {
            backend,
            retention: history_retention_ms.max(0),
            observed,
        })
    }

    /// The backend.
    pub fn backend(&self) -> &S {
        &self.backend
    }

    fn corrupt(&self, reason: String) -> StoreError {
        StoreError::CorruptEntry {
            store: self.backend.name().to_owned(),
            reason,
        }
    }

    /// The oldest time still answered: `observed stream time - history
    /// retention`.
    fn cutoff(&self) -> Option<i64> {
        self.observed.map(|t| t.saturating_sub(self.retention))
    }

    fn key_len(&self, key: &[u8]) -> Result<u32> {
        u32::try_from(key.len()).map_err(|_| StoreError::KeyTooLong {
            store: self.backend.name().to_owned(),
            len: key.len(),
        })
    }

    fn history_prefix(&self, key: &[u8]) -> Result<BytesMut> {
        let len = self.key_len(key)?;
        let mut buf = BytesMut::with_capacity(key.len() + 13);
        buf.put_u8(HISTORY_PREFIX);
        buf.put_u32(len);
        buf.put_slice(key);
        Ok(buf)
    }

    fn history_key(&self, key: &[u8], valid_to: i64) -> Result<Bytes> {
        let mut buf = self.history_prefix(key)?;
        buf.put_slice(&ordered_time(valid_to));
        Ok(buf.freeze())
    }

    fn index_key(&self, valid_to: i64, key: &[u8]) -> Result<Bytes> {
        let len = self.key_len(key)?;
        let mut buf = BytesMut::with_capacity(key.len() + 13);
        buf.put_u8(INDEX_PREFIX);
        buf.put_slice(&ordered_time(valid_to));
        buf.put_u32(len);
        buf.put_slice(key);
        Ok(buf.freeze())
    }

    /// Decodes a version's entry (latest or older): kind, timestamp,
    /// value.
    fn decode_version(&self, raw: &Bytes, what: &str) -> Result<(i64, Option<Bytes>)> {
        let ts = raw
            .get(1..9)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(i64::from_be_bytes)
            .ok_or_else(|| self.corrupt(format!("{what} entry of {} bytes", raw.len())))?;
        match raw[0] {
            KIND_VALUE => Ok((ts, Some(raw.slice(9..)))),
            KIND_DELETE if raw.len() == 9 => Ok((ts, None)),
            kind => Err(self.corrupt(format!(
                "{what} entry of kind {kind} and {} bytes",
                raw.len()
            ))),
        }
    }

    fn latest(&self, key: &[u8]) -> Result<Option<Latest>> {
        let Some(raw) = self.backend.get(&latest_key(key))? else {
            return Ok(None);
        };
        let (timestamp, value) = self.decode_version(&raw, "a latest-version")?;
        Ok(Some(Latest { timestamp, value }))
    }

    /// The first older version of `key` still valid after `t`: the one
    /// valid at `t` if it started by then, else the next one.
    fn older_after(&self, key: &[u8], t: i64) -> Result<Option<Older>> {
        let Some(after) = t.checked_add(1) else {
            return Ok(None);
        };
        let prefix = self.history_prefix(key)?;
        let mut from = prefix.clone();
        from.put_slice(&ordered_time(after));
        let mut to = prefix;
        to.put_slice(&[0xff; 9]);
        let Some(item) = self.backend.range(&from, &to)?.next() else {
            return Ok(None);
        };
        let (raw_key, raw) = item?;
        let valid_to = raw_key
            .len()
            .checked_sub(8)
            .and_then(|at| raw_key.get(at..))
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(|b| (u64::from_be_bytes(b) ^ (1 << 63)) as i64)
            .ok_or_else(|| self.corrupt(format!("a history key of {} bytes", raw_key.len())))?;
        let (valid_from, value) = self.decode_version(&raw, "an older-version")?;
        Ok(Some(Older {
            valid_from,
            valid_to,
            value,
        }))
    }

    /// Advances the observed stream time to `timestamp` (if later), keeps
    /// it in the meta entry and drops what expired.
    fn advance(&mut self, timestamp: i64) -> Result<()> {
        if self.observed.is_some_and(|t| t >= timestamp) {
            return Ok(());
        }
        self.observed = Some(timestamp);
        let mut meta = [0u8; META_LEN];
        meta[0] = VERSIONED_META_VERSION;
        meta[1..].copy_from_slice(&timestamp.to_be_bytes());
        self.backend
            .put(Bytes::from_static(META_KEY), Bytes::copy_from_slice(&meta))?;
        self.expire()
    }

    /// Drops the older versions that stopped being valid at or before the
    /// cutoff, and latest deletes that old.
    fn expire(&mut self) -> Result<()> {
        let Some(cutoff) = self.cutoff() else {
            return Ok(());
        };
        let Some(bound) = cutoff.checked_add(1) else {
            return Ok(());
        };
        let mut to = vec![INDEX_PREFIX];
        to.extend_from_slice(&ordered_time(bound));
        let mut batch: Vec<BatchWrite> = Vec::new();
        let mut keys: Vec<Bytes> = Vec::new();
        for item in self.backend.range(&[INDEX_PREFIX], &to)? {
            let (index, _) = item?;
            let (valid_to, key) = decode_index(&index)
                .ok_or_else(|| self.corrupt(format!("an index key of {} bytes", index.len())))?;
            batch.push((self.history_key(&key, valid_to)?, None));
            batch.push((index, None));
            keys.push(key);
        }
        if batch.is_empty() {
            return Ok(());
        }
        for key in keys {
            if self
                .latest(&key)?
                .is_some_and(|l| l.value.is_none() && l.timestamp <= cutoff)
            {
                batch.push((latest_key(&key), None));
            }
        }
        tracing::trace!(store = %self.backend.name(), cutoff, writes = batch.len(), "dropped expired versions");
        self.backend.write_batch(&batch)
    }

    fn put_latest(&self, batch: &mut Vec<BatchWrite>, key: &[u8], latest: &Latest) -> Result<()> {
        let mut buf = BytesMut::with_capacity(9 + latest.value.as_ref().map_or(0, Bytes::len));
        match &latest.value {
            Some(value) => {
                buf.put_u8(KIND_VALUE);
                buf.put_i64(latest.timestamp);
                buf.put_slice(value);
            }
            None => {
                buf.put_u8(KIND_DELETE);
                buf.put_i64(latest.timestamp);
                // A latest delete expires by its own timestamp.
                batch.push((self.index_key(latest.timestamp, key)?, Some(Bytes::new())));
            }
        }
        batch.push((latest_key(key), Some(buf.freeze())));
        Ok(())
    }

    fn put_older(
        &self,
        batch: &mut Vec<BatchWrite>,
        key: &[u8],
        valid_from: i64,
        valid_to: i64,
        value: Option<&[u8]>,
    ) -> Result<()> {
        let mut buf = BytesMut::with_capacity(9 + value.map_or(0, <[u8]>::len));
        match value {
            Some(value) => {
                buf.put_u8(KIND_VALUE);
                buf.put_i64(valid_from);
                buf.put_slice(value);
            }
            None => {
                buf.put_u8(KIND_DELETE);
                buf.put_i64(valid_from);
            }
        }
        batch.push((self.history_key(key, valid_to)?, Some(buf.freeze())));
        batch.push((self.index_key(valid_to, key)?, Some(Bytes::new())));
        Ok(())
    }

    /// The put itself, once the timestamp passed the grace check and the
    /// stream time moved.
    fn insert(&mut self, key: &[u8], value: Option<Bytes>, timestamp: i64) -> Result<PutOutcome> {
        let mut batch: Vec<BatchWrite> = Vec::with_capacity(4);
        let latest = self.latest(key)?;
        let outcome = match latest {
            Some(l) if timestamp >= l.timestamp => {
                match (&l.value, &value) {
                    // A value, or a delete, that a later record follows:
                    // it becomes older, valid until that record.
                    (Some(_), _) | (None, None) if l.timestamp < timestamp => {
                        self.put_older(
                            &mut batch,
                            key,
                            l.timestamp,
                            timestamp,
                            l.value.as_deref(),
                        )?;
                        self.put_latest(&mut batch, key, &Latest { timestamp, value })?;
                    }
                    // As Kafka's store: a delete at the very timestamp of
                    // the latest value removes it and keeps no delete, so
                    // that an older put later becomes the latest version
                    // unless an older version ends at that timestamp.
                    (Some(_), None) => batch.push((latest_key(key), None)),
                    // As Kafka's store: a latest delete that a value at or
                    // after it follows stays a delete at its own timestamp
                    // only (a version that starts and ends there), not one
                    // valid until the value. A delete at the value's
                    // timestamp later leaves the key deleted from there,
                    // and an older put after the delete's timestamp becomes
                    // the latest version.
                    (None, Some(_)) => {
                        let history_key = self.history_key(key, l.timestamp)?;
                        if self.backend.get(&history_key)?.is_none() {
                            self.put_older(&mut batch, key, l.timestamp, l.timestamp, None)?;
                        }
                        self.put_latest(&mut batch, key, &Latest { timestamp, value })?;
                    }
                    (Some(_), Some(_)) => {
                        self.put_latest(&mut batch, key, &Latest { timestamp, value })?;
                    }
                    // A delete at the latest delete's timestamp: nothing
                    // changes.
                    (None, None) => {}
                }
                PutOutcome::Latest
            }
            latest => match self.older_after(key, timestamp)? {
                // Within an older version: replace or split it.
                Some(o) if o.valid_from <= timestamp => {
                    if o.valid_from < timestamp {
                        self.put_older(
                            &mut batch,
                            key,
                            o.valid_from,
                            timestamp,
                            o.value.as_deref(),
                        )?;
                    }
                    self.put_older(&mut batch, key, timestamp, o.valid_to, value.as_deref())?;
                    PutOutcome::Older {
                        valid_to: o.valid_to,
                    }
                }
                // Before an older version (the oldest one kept): valid
                // until it starts.
                Some(o) => {
                    self.put_older(&mut batch, key, timestamp, o.valid_from, value.as_deref())?;
                    PutOutcome::Older {
                        valid_to: o.valid_from,
                    }
                }
                // After every older version: valid until the latest.
                None => match latest {
                    Some(l) => {
                        self.put_older(&mut batch, key, timestamp, l.timestamp, value.as_deref())?;
                        PutOutcome::Older {
                            valid_to: l.timestamp,
                        }
                    }
                    None => {
                        self.put_latest(&mut batch, key, &Latest { timestamp, value })?;
                        PutOutcome::Latest
                    }
                },
            },
        };
        if !batch.is_empty() {
            self.backend.write_batch(&batch)?;
        }
        Ok(outcome)
    }
}

impl<S: KeyValueStore> VersionedKeyValueStore for KvVersionedStore<S> {
    fn name(&self) -> &str {
        self.backend.name()
    }

    fn persistent(&self) -> bool {
        self.backend.persistent()
    }

    fn history_retention(&self) -> i64 {
        self.retention
    }

    fn observed_stream_time(&self) -> Option<i64> {
        self.observed
    }

    fn put(&mut self, key: Bytes, value: Option<Bytes>, timestamp: i64) -> Result<PutOutcome> {
        if self.cutoff().is_some_and(|cutoff| timestamp < cutoff) {
            tracing::debug!(store = %self.backend.name(), timestamp, stream_time = ?self.observed, history_retention = self.retention, "skipping put older than the history retention");
            return Ok(PutOutcome::NotPut);
        }
        self.advance(timestamp)?;
        self.insert(&key, value, timestamp)
    }

    fn delete(&mut self, key: Bytes, timestamp: i64) -> Result<Option<VersionedRecord<Bytes>>> {
        if self.cutoff().is_some_and(|cutoff| timestamp < cutoff) {
            tracing::debug!(store = %self.backend.name(), timestamp, stream_time = ?self.observed, history_retention = self.retention, "skipping delete older than the history retention");
            return Ok(None);
        }
        let existing = self.get_as_of(&key, timestamp)?;
        self.advance(timestamp)?;
        self.insert(&key, None, timestamp)?;
        Ok(existing)
    }

    fn get(&self, key: &[u8]) -> Result<Option<VersionedRecord<Bytes>>> {
        Ok(self.latest(key)?.and_then(|l| {
            l.value.map(|value| VersionedRecord {
                value,
                timestamp: l.timestamp,
                valid_to: None,
            })
        }))
    }

    fn get_as_of(&self, key: &[u8], as_of: i64) -> Result<Option<VersionedRecord<Bytes>>> {
        let latest = self.latest(key)?;
        if let Some(l) = &latest {
            if l.timestamp <= as_of {
                // The latest version never expires.
                return Ok(l.value.clone().map(|value| VersionedRecord {
                    value,
                    timestamp: l.timestamp,
                    valid_to: None,
                }));
            }
        }
        if self.cutoff().is_some_and(|cutoff| as_of < cutoff) {
            tracing::debug!(store = %self.backend.name(), as_of, stream_time = ?self.observed, "returning nothing for a read older than the history retention");
            return Ok(None);
        }
        Ok(self
            .older_after(key, as_of)?
            .filter(|o| o.valid_from <= as_of)
            .and_then(|o| {
                o.value.map(|value| VersionedRecord {
                    value,
                    timestamp: o.valid_from,
                    valid_to: Some(o.valid_to),
                })
            }))
    }

    fn restore_batch(&mut self, batch: &[VersionedWrite]) -> Result<()> {
        for (key, value, timestamp) in batch {
            VersionedKeyValueStore::put(self, key.clone(), value.clone(), *timestamp)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.backend.flush()
    }

    fn flush_unsynced(&mut self) -> Result<()> {
        self.backend.flush_unsynced()
    }

    fn close(&mut self) -> Result<()> {
        self.backend.close()
    }
}

fn latest_key(key: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(key.len() + 1);
    buf.put_u8(LATEST_PREFIX);
    buf.put_slice(key);
    buf.freeze()
}

/// The `valid_to` and record key of an index key.
fn decode_index(index: &[u8]) -> Option<(i64, Bytes)> {
    if index.first() != Some(&INDEX_PREFIX) {
        return None;
    }
    let time: [u8; 8] = index.get(1..9)?.try_into().ok()?;
    let len: [u8; 4] = index.get(9..13)?.try_into().ok()?;
    let key = index.get(13..)?;
    if usize::try_from(u32::from_be_bytes(len)).ok()? != key.len() {
        return None;
    }
    let valid_to = (u64::from_be_bytes(time) ^ (1 << 63)) as i64;
    Some((valid_to, Bytes::copy_from_slice(key)))
}

fn decode_meta(store: &str, meta: &[u8]) -> Result<i64> {
    let corrupt = |reason: String| StoreError::CorruptEntry {
        store: store.to_owned(),
        reason,
    };
    match meta.first() {
        Some(&VERSIONED_META_VERSION) => {}
        Some(v) => {
            return Err(corrupt(format!(
                "versioned-store metadata has format version {v}, this build reads {VERSIONED_META_VERSION}"
            )))
        }
        None => return Err(corrupt("versioned-store metadata is empty".to_owned())),
    }
    let time: [u8; 8] = meta
        .get(1..META_LEN)
        .and_then(|b| b.try_into().ok())
        .filter(|_| meta.len() == META_LEN)
        .ok_or_else(|| {
            corrupt(format!(
                "versioned-store metadata is {} bytes, expected {META_LEN}",
                meta.len()
            ))
        })?;
    Ok(i64::from_be_bytes(time))
}

/// Opens (or creates) versioned store `name` on `backend` under
/// `state_dir`, with `history_retention_ms` of history. A store that fails
/// to open or whose metadata cannot be decoded is wiped and opened empty.
/// Returns the store and what the open found of its files: unless they
/// were [`crate::LocalData::Found`], restore it from the start of its
/// changelog and ignore its checkpoint.
pub fn open_versioned_store(
    backend: impl Into<crate::Engine>,
    state_dir: &Path,
    name: &str,
    history_retention_ms: i64,
) -> Result<(KvVersionedStore<Box<dyn KeyValueStore>>, crate::LocalData)> {
    let engine = backend.into();
    let (base, local) = crate::backend::open_or_wipe(engine.clone(), state_dir, name)?;
    match KvVersionedStore::new(base, history_retention_ms) {
        Ok(store) => Ok((store, local)),
        Err(e @ StoreError::CorruptEntry { .. }) => {
            tracing::warn!(store = name, error = %e, "wiping versioned store with undecodable metadata");
            crate::wipe(state_dir, name)?;
            let base = crate::backend::open_store(engine, state_dir, name)?;
            Ok((
                KvVersionedStore::new(base, history_retention_ms)?,
                crate::LocalData::Wiped,
            ))
        }
        Err(e) => Err(e),
    }
}
