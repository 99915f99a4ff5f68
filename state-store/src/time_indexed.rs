//! The layout shared by the window and session stores that live on a
//! [`KeyValueStore`] backend ([`crate::KvWindowStore`],
//! [`crate::KvSessionStore`]): data entries under their changelog key, a
//! time index for expiry, and a metadata entry with the store's stream
//! time.
//!
//! Keys in the backend, by their first byte:
//!
//! ```text
//! 0x00                                      -> meta: version (u8 = 1), then
//!                                              observed stream time (i64 BE, 8),
//!                                              absent before the first put
//! 0x01 | changelog key                      -> the entry's value
//! 0x02 | time (i64 BE, sign bit flipped, 8) -> empty: the time index, one
//!        | changelog key                       entry per data entry
//! ```
//!
//! The time of an entry is its window start (window stores) or its session
//! end (session stores). Flipping the sign bit makes the index sort by
//! time for negative times too. An entry expires once its time is at or
//! before `stream_time - retention`, as in Kafka Streams' window and
//! session stores: expired entries are deleted as stream time advances,
//! and a put of an expired entry is ignored.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Result, StoreError};
use crate::store::{BatchWrite, KeyValueStore, KvIter};

const META_KEY: &[u8] = &[0x00];
const DATA_PREFIX: u8 = 0x01;
const INDEX_PREFIX: u8 = 0x02;
/// The version byte of the meta entry.
pub(crate) const META_VERSION: u8 = 1;
const META_LEN: usize = 1 + 8;

/// `t` with its sign bit flipped, big-endian: sorts like `t`.
pub(crate) fn ordered_time(t: i64) -> [u8; 8] {
    (u64::from_be_bytes(t.to_be_bytes()) ^ (1 << 63)).to_be_bytes()
}

fn data_key(key: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(key.len() + 1);
    buf.put_u8(DATA_PREFIX);
    buf.put_slice(key);
    buf.freeze()
}

fn index_key(time: i64, key: &[u8]) -> Bytes {
    let mut buf = BytesMut::with_capacity(key.len() + 9);
    buf.put_u8(INDEX_PREFIX);
    buf.put_slice(&ordered_time(time));
    buf.put_slice(key);
    buf.freeze()
}

/// The changelog key of an index key, or `None` if it is not one.
fn key_of_index(index: &[u8]) -> Option<Bytes> {
    if index.first() != Some(&INDEX_PREFIX) || index.len() < 9 {
        return None;
    }
    Some(Bytes::copy_from_slice(&index[9..]))
}

/// Data entries, values keyed by their changelog key, over a backend with
/// a time index and a stream time.
#[derive(Debug)]
pub(crate) struct TimeIndexed<S> {
    backend: S,
    retention: i64,
    observed: Option<i64>,
}

impl<S: KeyValueStore> TimeIndexed<S> {
    /// Opens the layout in `backend`, reading its stream time.
    pub(crate) fn open(backend: S, retention: i64) -> Result<Self> {
        let observed = match backend.get(META_KEY)? {
            None => None,
            Some(meta) => Some(decode_meta(backend.name(), &meta)?),
        };
        Ok(Self {
            backend,
            retention: retention.max(0),
            observed,
        })
    }

    /// The layout in a backend known to be empty.
    pub(crate) fn new_empty(backend: S, retention: i64) -> Self {
        Self {
            backend,
            retention: retention.max(0),
            observed: None,
        }
    }

    pub(crate) fn name(&self) -> &str {
        self.backend.name()
    }

    pub(crate) fn backend(&self) -> &S {
        &self.backend
    }

    pub(crate) fn backend_mut(&mut self) -> &mut S {
        &mut self.backend
    }

    pub(crate) fn retention(&self) -> i64 {
        self.retention
    }

    pub(crate) fn observed(&self) -> Option<i64> {
        self.observed
    }

    /// The largest expired time at stream time `observed`.
    fn cutoff(&self, observed: i64) -> i64 {
        observed.saturating_sub(self.retention)
    }

    /// Whether an entry of time `time` has expired.
    pub(crate) fn is_expired(&self, time: i64) -> bool {
        self.observed.is_some_and(|t| time <= self.cutoff(t))
    }

    /// Advances stream time to `time` (if later) and deletes the entries
    /// that expired.
    pub(crate) fn advance(&mut self, time: i64) -> Result<()> {
        if self.observed.is_some_and(|t| t >= time) {
            return Ok(());
        }
        self.observed = Some(time);
        let mut meta = [0u8; META_LEN];
        meta[0] = META_VERSION;
        meta[1..].copy_from_slice(&time.to_be_bytes());
        self.backend
            .put(Bytes::from_static(META_KEY), Bytes::copy_from_slice(&meta))?;
        // Entries with time <= cutoff have expired: the index keys below the
        // first possible key of time cutoff + 1.
        let cutoff = self.cutoff(time);
        let Some(bound) = cutoff.checked_add(1) else {
            return Ok(());
        };
        let from = [INDEX_PREFIX];
        let to = index_key(bound, &[]);
        let mut batch: Vec<BatchWrite> = Vec::new();
        for item in self.backend.range(&from, &to)? {
            let (index, _) = item?;
            let key = key_of_index(&index).ok_or_else(|| corrupt_index(self.name(), &index))?;
            batch.push((data_key(&key), None));
            batch.push((index, None));
        }
        if !batch.is_empty() {
            tracing::trace!(store = %self.name(), entries = batch.len() / 2, cutoff, "dropped expired entries");
            self.backend.write_batch(&batch)?;
        }
        Ok(())
    }

    /// The value under changelog key `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.backend.get(&data_key(key))
    }

    /// Puts `value` under `key`, indexed at `time`. The caller checks
    /// expiry.
    pub(crate) fn put(&mut self, key: &[u8], time: i64, value: Bytes) -> Result<()> {
        self.backend.write_batch(&[
            (data_key(key), Some(value)),
            (index_key(time, key), Some(Bytes::new())),
        ])
    }

    /// Deletes `key`, indexed at `time`.
    pub(crate) fn delete(&mut self, key: &[u8], time: i64) -> Result<()> {
        self.backend
            .write_batch(&[(data_key(key), None), (index_key(time, key), None)])
    }

    /// The data entries with `from <= changelog key < to`, by key.
    pub(crate) fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        let inner = self.backend.range(&data_key(from), &data_key(to))?;
        Ok(strip(inner))
    }

    /// Every data entry, by changelog key.
    pub(crate) fn all(&self) -> Result<KvIter<'_>> {
        let inner = self.backend.range(&[DATA_PREFIX], &[INDEX_PREFIX])?;
        Ok(strip(inner))
    }

    /// The changelog keys of the entries with `from <= time <= to`, by
    /// time.
    pub(crate) fn keys_in(&self, from: i64, to: i64) -> Result<Vec<Bytes>> {
        if from > to {
            return Ok(Vec::new());
        }
        let lower = index_key(from, &[]);
        let upper = match to.checked_add(1) {
            Some(next) => index_key(next, &[]),
            None => Bytes::from_static(&[INDEX_PREFIX + 1]),
        };
        let mut out = Vec::new();
        for item in self.backend.range(&lower, &upper)? {
            let (index, _) = item?;
            out.push(key_of_index(&index).ok_or_else(|| corrupt_index(self.name(), &index))?);
        }
        Ok(out)
    }

    /// The number of data entries.
    pub(crate) fn count(&self) -> Result<u64> {
        let mut n = 0;
        for item in self.all()? {
            item?;
            n += 1;
        }
        Ok(n)
    }
}

fn strip(inner: KvIter<'_>) -> KvIter<'_> {
    Box::new(inner.map(|item| item.map(|(k, v)| (k.slice(1..), v))))
}

fn decode_meta(store: &str, meta: &[u8]) -> Result<i64> {
    let corrupt = |reason: String| StoreError::CorruptEntry {
        store: store.to_owned(),
        reason,
    };
    match meta.first() {
        Some(&META_VERSION) => {}
        Some(v) => {
            return Err(corrupt(format!(
                "metadata entry has format version {v}, this build reads {META_VERSION}"
            )))
        }
        None => return Err(corrupt("metadata entry is empty".to_owned())),
    }
    let time: [u8; 8] = meta
        .get(1..META_LEN)
        .and_then(|b| b.try_into().ok())
        .filter(|_| meta.len() == META_LEN)
        .ok_or_else(|| {
            corrupt(format!(
                "metadata entry is {} bytes, expected {META_LEN}",
                meta.len()
            ))
        })?;
    Ok(i64::from_be_bytes(time))
}

fn corrupt_index(store: &str, index: &[u8]) -> StoreError {
    StoreError::CorruptEntry {
        store: store.to_owned(),
        reason: format!("time-index key of {} bytes is too short", index.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::InMemoryStore;

    #[test]
    fn ordered_time_sorts_like_the_number() {
        let times = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for w in times.windows(2) {
            assert!(ordered_time(w[0]) < ordered_time(w[1]));
        }
    }

    #[test]
    fn expiry_drops_data_and_index() {
        let mut t = TimeIndexed::open(InMemoryStore::new("t"), 10).unwrap();
        t.advance(0).unwrap();
        t.put(b"a", 0, Bytes::from("1")).unwrap();
        t.put(b"b", 6, Bytes::from("2")).unwrap();
        t.advance(15).unwrap();
        assert_eq!(t.get(b"a").unwrap(), None);
        assert_eq!(t.get(b"b").unwrap(), Some(Bytes::from("2")));
        assert_eq!(t.keys_in(i64::MIN, i64::MAX).unwrap(), [Bytes::from("b")]);
        assert!(t.is_expired(5));
        assert!(!t.is_expired(6));
    }

    #[test]
    fn bad_meta_is_a_typed_error() {
        let mut backend = InMemoryStore::new("t");
        backend
            .put(Bytes::from_static(META_KEY), Bytes::from_static(&[9, 0]))
            .unwrap();
        let err = TimeIndexed::open(backend, 10).unwrap_err();
        assert!(matches!(err, StoreError::CorruptEntry { .. }));
        assert!(err.requires_restore());
        let mut backend = InMemoryStore::new("t");
        backend
            .put(Bytes::from_static(META_KEY), Bytes::from_static(&[1, 0]))
            .unwrap();
        assert!(matches!(
            TimeIndexed::open(backend, 10),
            Err(StoreError::CorruptEntry { .. })
        ));
    }

    #[test]
    fn backend_layout_is_pinned() {
        let mut t = TimeIndexed::open(InMemoryStore::new("t"), 10).unwrap();
        t.advance(-2).unwrap();
        t.put(b"k", 7, Bytes::from("v")).unwrap();
        let raw: Vec<(Bytes, Bytes)> = t.backend.all().unwrap().map(Result::unwrap).collect();
        let mut index = vec![0x02, 0x80, 0, 0, 0, 0, 0, 0, 7];
        index.push(b'k');
        assert_eq!(
            raw,
            [
                (
                    Bytes::from_static(&[0x00]),
                    Bytes::from_static(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe])
                ),
                (Bytes::from_static(&[0x01, b'k']), Bytes::from("v")),
                (Bytes::from(index), Bytes::new()),
            ]
        );
    }

    #[test]
    fn stream_time_survives_reopen() {
        let mut t = TimeIndexed::open(InMemoryStore::new("t"), 10).unwrap();
        t.advance(42).unwrap();
        let t = TimeIndexed::open(t.backend, 10).unwrap();
        assert_eq!(t.observed(), Some(42));
    }
}
