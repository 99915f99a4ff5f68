//! The [`KeyValueStore`] trait shared by every backend and layer.

use std::fmt;

use bytes::Bytes;

use crate::error::Result;

/// An iterator over `(key, value)` pairs in ascending key order.
///
/// Items are results because a persistent backend can fail part-way through
/// a scan. The iterator borrows the store, so the store cannot be written
/// while it is alive.
pub type KvIter<'a> = Box<dyn Iterator<Item = Result<(Bytes, Bytes)>> + 'a>;

/// One write of a batch: a value to put, or `None` to delete the key.
pub type BatchWrite = (Bytes, Option<Bytes>);

/// What [`KeyValueStore::update`] writes after reading a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Write nothing.
    Keep,
    /// Set the key to this value.
    Put(Bytes),
    /// Remove the key.
    Delete,
}

/// A key-value store over bytes, ordered lexicographically by key.
///
/// Implemented by the backends ([`crate::InMemoryStore`],
/// [`crate::SledStore`], [`crate::RedbStore`]) and by the layers that wrap
/// them ([`crate::ChangeLoggingStore`], [`crate::CachingStore`]).
///
/// Writes become durable at [`KeyValueStore::flush`]; the changelog, not the
/// local store, is the source of truth.
pub trait KeyValueStore: Send + fmt::Debug {
    /// The store's name (also its directory name under the state dir).
    fn name(&self) -> &str;

    /// Whether the store keeps its data on disk across restarts.
    fn persistent(&self) -> bool;

    /// The value of `key`, if any.
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>>;

    /// Sets `key` to `value`.
    fn put(&mut self, key: Bytes, value: Bytes) -> Result<()>;

    /// [`KeyValueStore::put`] from borrowed bytes, for a caller that has
    /// the key and value in a buffer of its own: a store that copies what
    /// it keeps, and a changelog that copies what it sends, copy them once,
    /// with no allocation of their own. By default, a put of copies.
    #[doc(hidden)]
    fn put_slices(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put(Bytes::copy_from_slice(key), Bytes::copy_from_slice(value))
    }

    /// Sets `key` to `value` only if `key` has no value; returns the existing
    /// value when there is one (and then writes nothing).
    fn put_if_absent(&mut self, key: Bytes, value: Bytes) -> Result<Option<Bytes>> {
        match self.get(&key)? {
            Some(existing) => Ok(Some(existing)),
            None => {
                self.put(key, value)?;
                Ok(None)
            }
        }
    }

    /// Removes `key`; returns the value it had.
    fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>>;

    /// A read-modify-write of `key`: hands its value (if any) to `update`
    /// and writes what `update` returns. The same as a `get` followed by a
    /// `put` or `delete`; the record cache does it with one lookup and
    /// without copying the value read.
    fn update(
        &mut self,
        key: &[u8],
        update: &mut dyn FnMut(Option<&[u8]>) -> Update,
    ) -> Result<()> {
        update_by_get(self, key, update)
    }

    /// Rewrites the value of `key` in place, where the store holds a copy
    /// of its own that nothing else reads (the record cache: a small value
    /// copied into its slot, or a larger one written since the last
    /// flush): `patch` gets the value's bytes and returns whether it
    /// rewrote them. Returns whether it did; when it returns `false`,
    /// nothing changed and the caller writes the value the usual way
    /// ([`KeyValueStore::update`]). The value's length cannot change, so
    /// this suits fixed-width values such as counts: an update without an
    /// allocation. `patch` must not panic (the bytes would be left half
    /// written).
    ///
    /// The default, for stores that do not keep values in buffers of their
    /// own, rewrites nothing.
    #[doc(hidden)]
    fn patch(&mut self, _key: &[u8], _patch: &mut dyn FnMut(&mut [u8]) -> bool) -> Result<bool> {
        Ok(false)
    }

    /// Applies a batch of writes in order (`None` deletes). Used by
    /// restoration; backends override it to amortise per-write costs.
    fn write_batch(&mut self, batch: &[BatchWrite]) -> Result<()> {
        for (key, value) in batch {
            match value {
                Some(value) => self.put(key.clone(), value.clone())?,
                None => {
                    self.delete(key.clone())?;
                }
            }
        }
        Ok(())
    }

    /// The entries with `from <= key < to`, in key order. Empty when
    /// `from >= to`.
    fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>>;

    /// Every entry, in key order.
    fn all(&self) -> Result<KvIter<'_>>;

    /// For a window store's key-value view (keys in the layout of
    /// [`crate::encode_windowed_key`]): the values of record key `key` in the
    /// windows starting from `time_from` to `time_to` (both inclusive), by
    /// ascending start, read straight from the window store. `None` when
    /// the store cannot answer directly (the default): the caller then
    /// scans [`KeyValueStore::range`] and filters.
    #[doc(hidden)]
    fn fetch_windows(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<Option<Vec<(i64, Bytes)>>> {
        let _ = (key, time_from, time_to);
        Ok(None)
    }

    /// [`KeyValueStore::fetch_windows`] handing each window to `visit`, by
    /// ascending start, instead of collecting them. Returns `false`, having
    /// visited nothing, when the store cannot answer directly. The default
    /// visits what [`KeyValueStore::fetch_windows`] returns.
    #[doc(hidden)]
    fn visit_windows(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        visit: &mut dyn FnMut(i64, &Bytes),
    ) -> Result<bool> {
        let Some(windows) = self.fetch_windows(key, time_from, time_to)? else {
            return Ok(false);
        };
        for (start, value) in &windows {
            visit(*start, value);
        }
        Ok(true)
    }

    /// An estimate of the number of entries (exact for the built-in
    /// backends, approximate for the caching layer).
    fn approximate_num_entries(&self) -> Result<u64>;

    /// Makes every write so far durable (a commit for redb, a flush for sled)
    /// and, for the caching layer, writes the dirty cache entries through.
    fn flush(&mut self) -> Result<()>;

    /// Writes the dirty cache entries through (the caching layer) and hands
    /// every write so far to the backend without waiting for it to become
    /// durable: a crash may lose them, so a checkpoint may vouch only for
    /// what a later [`KeyValueStore::flush`] made durable. redb commits
    /// without an fsync, sled leaves the writes to its background flush;
    /// by default this is [`KeyValueStore::flush`].
    fn flush_unsynced(&mut self) -> Result<()> {
        self.flush()
    }

    /// Flushes and releases the store's resources. Every later call returns
    /// [`crate::StoreError::Closed`]. Closing twice is a no-op.
    fn close(&mut self) -> Result<()>;
}

impl<S: KeyValueStore + ?Sized> KeyValueStore for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn persistent(&self) -> bool {
        (**self).persistent()
    }
    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        (**self).get(key)
    }
    fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
        (**self).put(key, value)
    }
    fn put_slices(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        (**self).put_slices(key, value)
    }
    fn put_if_absent(&mut self, key: Bytes, value: Bytes) -> Result<Option<Bytes>> {
        (**self).put_if_absent(key, value)
    }
    fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
        (**self).delete(key)
    }
    fn update(
        &mut self,
        key: &[u8],
        update: &mut dyn FnMut(Option<&[u8]>) -> Update,
    ) -> Result<()> {
        (**self).update(key, update)
    }
    fn patch(&mut self, key: &[u8], patch: &mut dyn FnMut(&mut [u8]) -> bool) -> Result<bool> {
        (**self).patch(key, patch)
    }
    fn write_batch(&mut self, batch: &[BatchWrite]) -> Result<()> {
        (**self).write_batch(batch)
    }
    fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        (**self).range(from, to)
    }
    fn all(&self) -> Result<KvIter<'_>> {
        (**self).all()
    }
    fn fetch_windows(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<Option<Vec<(i64, Bytes)>>> {
        (**self).fetch_windows(key, time_from, time_to)
    }
    fn visit_windows(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        visit: &mut dyn FnMut(i64, &Bytes),
    ) -> Result<bool> {
        (**self).visit_windows(key, time_from, time_to, visit)
    }
    fn approximate_num_entries(&self) -> Result<u64> {
        (**self).approximate_num_entries()
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

/// [`KeyValueStore::update`] as a `get` followed by a `put` or `delete`.
pub(crate) fn update_by_get<S: KeyValueStore + ?Sized>(
    store: &mut S,
    key: &[u8],
    update: &mut dyn FnMut(Option<&[u8]>) -> Update,
) -> Result<()> {
    let old = store.get(key)?;
    match update(old.as_deref()) {
        Update::Keep => Ok(()),
        Update::Put(value) => store.put(Bytes::copy_from_slice(key), value),
        Update::Delete => store.delete(Bytes::copy_from_slice(key)).map(drop),
    }
}

/// An empty iterator, for `from >= to` and similar.
pub(crate) fn empty_iter<'a>() -> KvIter<'a> {
    Box::new(std::iter::empty())
}
