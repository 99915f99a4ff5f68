//! The record cache layer (`cache.max.bytes.buffering`).

use std::cmp::Ordering;
use std::collections::btree_set;
use std::collections::{BTreeMap, BTreeSet};
use std::iter::Peekable;
use std::ops::Bound;
use std::sync::OnceLock;

use bytes::Bytes;
use hashlink::LinkedHashMap;

use crate::cache_budget::CacheBudget;
use crate::error::Result;
use crate::memory_window::{encode_windowed_key, split_windowed_key};
use crate::shared::shared_bytes;
use crate::store::{empty_iter, KeyValueStore, KvIter, Update};

/// Bytes counted per cache entry on top of its key and value: its node in
/// the linked hash map (112 bytes as allocated), its share of the hash
/// table (about 27 bytes), and the allocations that hold a key and a value
/// with their reference counts (about 48 bytes each, less what the key and
/// value themselves count), as measured on a heap profile of a word count.
/// An entry costs `key.len() + value.len() + CACHE_ENTRY_OVERHEAD_BYTES`,
/// so that the bytes counted are about the bytes the cache holds.
pub const CACHE_ENTRY_OVERHEAD_BYTES: usize = 200;

/// An update that leaves the cache for the inner store, to be forwarded
/// downstream: the key, its new value and the value the inner store held
/// before (what downstream saw last). `None` means absent / tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheEntry {
    /// The key.
    pub key: Bytes,
    /// The value written to the inner store (`None`: deleted).
    pub new_value: Option<Bytes>,
    /// The inner store's value before the write.
    pub old_value: Option<Bytes>,
}

/// The most bytes a cached value holds in its slot once patched
/// ([`KeyValueStore::patch`]): a count and its timestamp take 16.
const INLINE_BYTES: usize = 24;

/// A cached value.
#[derive(Debug, Clone)]
enum Value {
    /// A tombstone.
    Deleted,
    /// Bytes as written, possibly shared with the inner store, the
    /// changelog or a reader.
    Shared(Bytes),
    /// A small value copied into the slot by a patch, so that later
    /// patches rewrite it where it lies.
    Inline { len: u8, bytes: [u8; INLINE_BYTES] },
}

impl Value {
    fn from_option(value: Option<Bytes>) -> Self {
        value.map_or(Self::Deleted, Self::Shared)
    }

    fn is_none(&self) -> bool {
        matches!(self, Self::Deleted)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        match self {
            Self::Deleted => None,
            Self::Shared(bytes) => Some(bytes),
            Self::Inline { len, bytes } => bytes.get(..usize::from(*len)),
        }
    }

    fn len(&self) -> usize {
        self.as_slice().map_or(0, <[u8]>::len)
    }

    /// The value as bytes: shared ones are cloned, inline ones copied.
    fn to_bytes(&self) -> Option<Bytes> {
        match self {
            Self::Deleted => None,
            Self::Shared(bytes) => Some(bytes.clone()),
            Self::Inline { .. } => self.as_slice().map(Bytes::copy_from_slice),
        }
    }
}

#[derive(Debug)]
struct Slot {
    value: Value,
    dirty: bool,
    /// Whether the inner store is known to hold no value for the key (it
    /// was read when the entry came in, or the entry's tombstone was
    /// written through): then writing the entry through needs no read of
    /// the value it replaces. A new window of a windowed aggregation is the
    /// common case.
    inner_absent: bool,
}

fn entry_size(key: &[u8], value: &Value) -> usize {
    key.len() + value.len() + CACHE_ENTRY_OVERHEAD_BYTES
}

/// The cache proper, apart from the inner store so that both can be
/// borrowed at once.
///
/// An update of a cached key costs one hash lookup and one relink: the
/// entries are kept in a linked hash map in the order of their last write
/// (least recent first, the eviction order). Every write makes its entry
/// dirty and moves it to the back, a flush cleans every dirty entry, and
/// nothing else reorders entries, so the dirty entries are always the last
/// `dirty_count` ones, in the order of their last write: the flush order,
/// found with no lookup. The sorted key set, for range scans, is built at
/// the first scan and from then on changes only when a key enters or leaves
/// the cache.
#[derive(Debug)]
struct Cache {
    /// Shared with the other caches of the same budget.
    budget: CacheBudget,
    /// This cache's own bytes, counted in `budget` too.
    bytes: usize,
    entries: LinkedHashMap<Bytes, Slot>,
    /// The number of dirty entries: the last ones of `entries`.
    dirty_count: usize,
    /// Whether the table got room for twice its entries (at the first
    /// eviction).
    spread: bool,
    /// Built by the first range scan and kept from then on: a store only
    /// read by key never pays for it.
    sorted: OnceLock<BTreeSet<Bytes>>,
    evictions: u64,
}

/// Writes one dirty entry to `inner` and builds the entry to forward.
fn write_through<S: KeyValueStore>(
    inner: &mut S,
    key: &Bytes,
    slot: &mut Slot,
) -> Result<CacheEntry> {
    let new_value = slot.value.to_bytes();
    let old_value = match &new_value {
        Some(v) => {
            let old = if slot.inner_absent {
                None
            } else {
                inner.get(key)?
            };
            inner.put(key.clone(), v.clone())?;
            old
        }
        None => inner.delete(key.clone())?,
    };
    slot.inner_absent = slot.value.is_none();
    Ok(CacheEntry {
        key: key.clone(),
        new_value,
        old_value,
    })
}

/// Forwards `entry` unless it deletes a key that was already absent (as
/// Kafka Streams does).
fn emit(entry: CacheEntry, forward: &mut impl FnMut(CacheEntry)) {
    if entry.new_value.is_some() || entry.old_value.is_some() {
        forward(entry);
    }
}

impl Cache {
    fn new(budget: CacheBudget) -> Self {
        Self {
            budget,
            bytes: 0,
            entries: LinkedHashMap::new(),
            dirty_count: 0,
            spread: false,
            sorted: OnceLock::new(),
            evictions: 0,
        }
    }

    fn grow(&mut self, bytes: usize) {
        self.bytes += bytes;
        self.budget.add(bytes);
    }

    fn shrink(&mut self, bytes: usize) {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        self.budget.sub(bytes);
    }

    /// Caches `value` for `key`, dirty. `inner_absent`: the inner store is
    /// known to hold nothing for `key` (used if the key is not cached yet).
    fn insert_dirty(&mut self, key: Bytes, value: Option<Bytes>, inner_absent: bool) {
        let value = Value::from_option(value);
        self.grow(entry_size(&key, &value));
        match self.entries.to_back(&key[..]) {
            Some(slot) => {
                let replaced = entry_size(&key, &slot.value);
                slot.value = value;
                if !slot.dirty {
                    slot.dirty = true;
                    self.dirty_count += 1;
                }
                self.shrink(replaced);
            }
            None => {
                if let Some(sorted) = self.sorted.get_mut() {
                    sorted.insert(key.clone());
                }
                self.dirty_count += 1;
                self.entries.insert(
                    key,
                    Slot {
                        value,
                        dirty: true,
                        inner_absent,
                    },
                );
            }
        }
    }

    /// Applies `update` to `key` if it is cached: one lookup, no copy of
    /// the value read. Returns `None` (and does nothing) when the key is
    /// not cached.
    fn update_cached(
        &mut self,
        key: &[u8],
        update: &mut dyn FnMut(Option<&[u8]>) -> Update,
    ) -> Option<()> {
        let hashlink::linked_hash_map::RawEntryMut::Occupied(mut entry) =
            self.entries.raw_entry_mut().from_key(key)
        else {
            return None;
        };
        let new = match update(entry.get().value.as_slice()) {
            Update::Keep => return Some(()),
            Update::Put(value) => Value::Shared(value),
            Update::Delete => Value::Deleted,
        };
        entry.to_back();
        let (key, slot) = entry.into_key_value();
        let (added, replaced) = (entry_size(key, &new), entry_size(key, &slot.value));
        slot.value = new;
        let newly_dirty = !slot.dirty;
        slot.dirty = true;
        if newly_dirty {
            self.dirty_count += 1;
        }
        self.grow(added);
        self.shrink(replaced);
        Some(())
    }

    /// Rewrites the value of a cached `key` where the cache holds it (see
    /// [`KeyValueStore::patch`]). A small value is first copied into its
    /// slot ([`Value::Inline`]), where later patches rewrite it with no
    /// allocation and nothing else holding it; a larger one is rewritten
    /// in its buffer only when the cache holds the only reference to it,
    /// so that nothing else sees the bytes change. Marks the entry dirty
    /// and moves it to the back, as a write does; its length, and so the
    /// cache's size, stays the same.
    #[inline]
    fn patch_cached(&mut self, key: &[u8], patch: &mut dyn FnMut(&mut [u8]) -> bool) -> bool {
        let hashlink::linked_hash_map::RawEntryMut::Occupied(mut entry) =
            self.entries.raw_entry_mut().from_key(key)
        else {
            return false;
        };
        let slot = entry.get_mut();
        if let Value::Shared(shared) = &slot.value {
            if let Ok(len) = u8::try_from(shared.len()) {
                if usize::from(len) <= INLINE_BYTES {
                    let mut bytes = [0; INLINE_BYTES];
                    bytes[..usize::from(len)].copy_from_slice(shared);
                    slot.value = Value::Inline { len, bytes };
                }
            }
        }
        let patched = match &mut slot.value {
            Value::Deleted => false,
            Value::Inline { len, bytes } => match bytes.get_mut(..usize::from(*len)) {
                Some(value) => patch(value),
                None => false,
            },
            Value::Shared(value) => {
                if !value.is_unique() {
                    return false;
                }
                match std::mem::take(value).try_into_mut() {
                    Ok(mut owned) => {
                        let patched = patch(&mut owned);
                        *value = owned.freeze();
                        patched
                    }
                    Err(shared) => {
                        *value = shared;
                        false
                    }
                }
            }
        };
        if !patched {
            return false;
        }
        if !slot.dirty {
            slot.dirty = true;
            self.dirty_count += 1;
        }
        entry.to_back();
        true
    }

    fn write<S: KeyValueStore>(
        &mut self,
        inner: &mut S,
        key: Bytes,
        value: Option<Bytes>,
        inner_absent: bool,
        forward: &mut impl FnMut(CacheEntry),
    ) -> Result<()> {
        self.insert_dirty(key, value, inner_absent);
        self.evict(inner, forward)
    }

    /// Evicts least recently written entries until the cache fits its bound;
    /// dirty ones are written through and forwarded first.
    fn evict<S: KeyValueStore>(
        &mut self,
        inner: &mut S,
        forward: &mut impl FnMut(CacheEntry),
    ) -> Result<()> {
        if self.budget.over() && !self.spread {
            // From the first eviction on, the cache evicts one entry per new
            // one. In a hash table filled close to its limit, removals leave
            // deleted slots that use up its spare room, and each time that
            // runs out it rehashes every entry; at half load they mostly
            // leave empty slots. Done once: the bound keeps the count about
            // the same from here on.
            self.spread = true;
            self.entries.reserve(self.entries.len());
        }
        while self.budget.over() {
            let mut front = self.entries.cursor_front_mut();
            let Some((key, slot)) = front.current() else {
                break;
            };
            // Written through before anything is removed, so that a failed
            // write leaves the entry cached and dirty.
            let entry = if slot.dirty {
                Some(write_through(inner, key, slot)?)
            } else {
                None
            };
            let Some((key, slot)) = self.entries.pop_front() else {
                break;
            };
            if slot.dirty {
                self.dirty_count -= 1;
            }
            if let Some(sorted) = self.sorted.get_mut() {
                sorted.remove(&key[..]);
            }
            self.shrink(entry_size(&key, &slot.value));
            self.evictions += 1;
            if let Some(entry) = entry {
                tracing::trace!(store = %inner.name(), key_len = key.len(), "evicted dirty cache entry");
                emit(entry, forward);
            }
        }
        Ok(())
    }

    /// Writes every dirty entry through, in the order of their last write.
    /// Entries stay cached, clean.
    fn flush<S: KeyValueStore>(
        &mut self,
        inner: &mut S,
        forward: &mut impl FnMut(CacheEntry),
    ) -> Result<()> {
        let mut written = 0usize;
        // The dirty entries are the last `dirty_count`: step back to the
        // first of them, then write forward. Should that order ever not
        // hold, a second walk from the front leaves nothing dirty behind.
        for from_front in [false, true] {
            if self.dirty_count == 0 {
                break;
            }
            debug_assert!(!from_front, "dirty cache entries outside the tail");
            let mut cursor = if from_front {
                self.entries.cursor_front_mut()
            } else {
                let mut cursor = self.entries.cursor_back_mut();
                for _ in 1..self.dirty_count {
                    cursor.move_prev();
                }
                cursor
            };
            while let Some((key, slot)) = cursor.current() {
                if slot.dirty {
                    let entry = write_through(inner, key, slot)?;
                    slot.dirty = false;
                    self.dirty_count -= 1;
                    written += 1;
                    emit(entry, forward);
                }
                cursor.move_next();
            }
        }
        if written > 0 {
            tracing::debug!(store = %inner.name(), written, "flushed record cache");
        }
        Ok(())
    }

    /// The cached keys in order.
    fn sorted(&self) -> &BTreeSet<Bytes> {
        self.sorted
            .get_or_init(|| self.entries.keys().cloned().collect())
    }

    fn clear(&mut self) {
        self.entries.clear();
        self.dirty_count = 0;
        self.sorted = OnceLock::new();
        self.shrink(self.bytes);
    }
}

impl Drop for Cache {
    /// Gives the cache's bytes back to its budget.
    fn drop(&mut self) {
        self.budget.sub(self.bytes);
    }
}

/// A record cache over a store (usually a [`crate::ChangeLoggingStore`]),
/// bounded by bytes, with Kafka Streams' `cache.max.bytes.buffering`
/// semantics:
///
/// - Writes go to the cache; consecutive updates of a key between flushes
///   are deduplicated, so the inner store, its changelog and downstream see
///   only the latest.
/// - Reads see cached values (including cached deletes) before the inner
///   store's.
/// - [`CachingStore::flush_with`] writes the dirty entries to the inner
///   store in the order of their last update, then flushes the inner store,
///   and hands each write to the caller as a [`CacheEntry`] to forward.
/// - When the cache exceeds its bound, the least recently written entries
///   are evicted; a dirty one is written through and handed over the same
///   way. A bound of 0 writes every update through at once.
///
/// Two ways to receive the [`CacheEntry`]s: the `*_with` methods call a
/// closure; the [`KeyValueStore`] methods (for code that holds a
/// `dyn KeyValueStore`) queue them, to be taken with
/// [`CachingStore::take_forwarded`].
///
/// Reads do not populate the cache and do not refresh an entry's recency:
/// recency is that of the last write.
#[derive(Debug)]
pub struct CachingStore<S> {
    inner: S,
    cache: Cache,
    forwarded: Vec<CacheEntry>,
}

impl<S: KeyValueStore> CachingStore<S> {
    /// Wraps `inner` with a cache of at most `max_bytes` of its own.
    pub fn new(inner: S, max_bytes: usize) -> Self {
        Self::with_budget(inner, CacheBudget::new(max_bytes))
    }

    /// Wraps `inner` with a cache that shares `budget` with the other
    /// caches made with clones of it: a write that takes them together
    /// over the bound evicts from this cache.
    pub fn with_budget(inner: S, budget: CacheBudget) -> Self {
        Self {
            inner,
            cache: Cache::new(budget),
            forwarded: Vec::new(),
        }
    }

    /// Puts `key`, calling `forward` for every entry evicted as a result.
    pub fn put_with(
        &mut self,
        key: Bytes,
        value: Bytes,
        mut forward: impl FnMut(CacheEntry),
    ) -> Result<()> {
        self.cache
            .write(&mut self.inner, key, Some(value), false, &mut forward)
    }

    /// Deletes `key` (caches a tombstone), calling `forward` for every entry
    /// evicted as a result; returns the value `key` had.
    pub fn delete_with(
        &mut self,
        key: Bytes,
        mut forward: impl FnMut(CacheEntry),
    ) -> Result<Option<Bytes>> {
        let old = self.get(&key)?;
        self.cache
            .write(&mut self.inner, key, None, false, &mut forward)?;
        Ok(old)
    }

    /// Writes every dirty entry to the inner store in the order of their
    /// last update, calling `forward` for each, then flushes the inner store.
    pub fn flush_with(&mut self, mut forward: impl FnMut(CacheEntry)) -> Result<()> {
        self.cache.flush(&mut self.inner, &mut forward)?;
        self.inner.flush()
    }

    /// Whether entries are queued for [`CachingStore::take_forwarded`].
    pub fn has_forwarded(&self) -> bool {
        !self.forwarded.is_empty()
    }

    /// Takes the entries queued by the [`KeyValueStore`] methods (`put`,
    /// `delete`, `flush`, `close`, ...), oldest first.
    pub fn take_forwarded(&mut self) -> Vec<CacheEntry> {
        std::mem::take(&mut self.forwarded)
    }

    /// The inner store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The inner store, mutably. Writing to it behind the cache's back is
    /// only safe while the cache is empty (before first use, for
    /// restoration).
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps into the inner store, dropping cached entries (flush first).
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// The byte bound.
    pub fn max_bytes(&self) -> usize {
        self.cache.budget.max_bytes()
    }

    /// The bytes currently accounted to cached entries.
    pub fn cached_bytes(&self) -> usize {
        self.cache.bytes
    }

    /// The number of cached entries, clean and dirty.
    pub fn cached_entries(&self) -> usize {
        self.cache.entries.len()
    }

    /// The number of dirty entries (not yet written to the inner store).
    pub fn dirty_entries(&self) -> usize {
        self.cache.dirty_count
    }

    /// The number of entries evicted since creation.
    pub fn evictions(&self) -> u64 {
        self.cache.evictions
    }
}

fn merged<'a>(
    keys: btree_set::Range<'a, Bytes>,
    entries: &'a LinkedHashMap<Bytes, Slot>,
    inner: KvIter<'a>,
) -> KvIter<'a> {
    let cache: CachedRange<'a> =
        Box::new(keys.filter_map(move |k| entries.get(&k[..]).map(|slot| (k, slot))));
    Box::new(Merge {
        cache: cache.peekable(),
        inner: inner.peekable(),
    })
}

/// The cached entries of a key range, in key order.
type CachedRange<'a> = Box<dyn Iterator<Item = (&'a Bytes, &'a Slot)> + 'a>;

/// Merges the cache's entries over the inner store's, in key order; a
/// cached entry replaces the inner one and a cached tombstone hides it.
struct Merge<'a> {
    cache: Peekable<CachedRange<'a>>,
    inner: Peekable<KvIter<'a>>,
}

impl Iterator for Merge<'_> {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let take_cache = match (self.cache.peek(), self.inner.peek()) {
                (None, None) => return None,
                (None, Some(_)) | (Some(_), Some(Err(_))) => return self.inner.next(),
                (Some(_), None) => true,
                (Some((ck, _)), Some(Ok((ik, _)))) => match ck.as_ref().cmp(ik.as_ref()) {
                    Ordering::Less => true,
                    Ordering::Equal => {
                        self.inner.next();
                        true
                    }
                    Ordering::Greater => false,
                },
            };
            if !take_cache {
                return self.inner.next();
            }
            if let Some((key, slot)) = self.cache.next() {
                if let Some(value) = slot.value.to_bytes() {
                    return Some(Ok((key.clone(), value)));
                }
            }
        }
    }
}

impl<S: KeyValueStore> KeyValueStore for CachingStore<S> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn persistent(&self) -> bool {
        self.inner.persistent()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        match self.cache.entries.get(key) {
            Some(slot) => Ok(slot.value.to_bytes()),
            None => self.inner.get(key),
        }
    }

    fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
        let forwarded = &mut self.forwarded;
        self.cache
            .write(&mut self.inner, key, Some(value), false, &mut |e| {
                forwarded.push(e)
            })
    }

    fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
        let old = self.get(&key)?;
        let forwarded = &mut self.forwarded;
        self.cache
            .write(&mut self.inner, key, None, false, &mut |e| {
                forwarded.push(e)
            })?;
        Ok(old)
    }

    fn update(
        &mut self,
        key: &[u8],
        update: &mut dyn FnMut(Option<&[u8]>) -> Update,
    ) -> Result<()> {
        if self.cache.update_cached(key, update).is_some() {
            let forwarded = &mut self.forwarded;
            return self
                .cache
                .evict(&mut self.inner, &mut |e| forwarded.push(e));
        }
        // Not cached: read from the inner store, write to the cache, which
        // then knows whether the inner store had the key.
        let old = self.inner.get(key)?;
        let value = match update(old.as_deref()) {
            Update::Keep => return Ok(()),
            Update::Put(value) => Some(value),
            Update::Delete => None,
        };
        let forwarded = &mut self.forwarded;
        self.cache.write(
            &mut self.inner,
            shared_bytes(key),
            value,
            old.is_none(),
            &mut |e| forwarded.push(e),
        )
    }

    fn patch(&mut self, key: &[u8], patch: &mut dyn FnMut(&mut [u8]) -> bool) -> Result<bool> {
        // Nothing can be evicted: the cache's size does not change.
        Ok(self.cache.patch_cached(key, patch))
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        let inner = self.inner.range(from, to)?;
        if from >= to {
            return Ok(empty_iter());
        }
        let keys = self
            .cache
            .sorted()
            .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)));
        Ok(merged(keys, &self.cache.entries, inner))
    }

    fn all(&self) -> Result<KvIter<'_>> {
        let inner = self.inner.all()?;
        Ok(merged(
            self.cache.sorted().range::<[u8], _>(..),
            &self.cache.entries,
            inner,
        ))
    }

    /// The inner store's windows merged with the cached ones: a cached
    /// value replaces the inner one, a cached delete hides it.
    fn fetch_windows(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<Option<Vec<(i64, Bytes)>>> {
        let Some(inner) = self.inner.fetch_windows(key, time_from, time_to)? else {
            return Ok(None);
        };
        if time_from > time_to || self.cache.entries.is_empty() {
            return Ok(Some(inner));
        }
        let mut windows: BTreeMap<i64, Option<Bytes>> = inner
            .into_iter()
            .map(|(start, v)| (start, Some(v)))
            .collect();
        // The cached windows of `key` lie between these bounds (longer keys
        // sharing the prefix may too; they are skipped).
        let from = encode_windowed_key(key, time_from);
        let mut to = encode_windowed_key(key, time_to).to_vec();
        to.push(0);
        let cached = self
            .cache
            .sorted()
            .range::<[u8], _>((Bound::Included(&from[..]), Bound::Excluded(&to[..])));
        for windowed in cached {
            let Some((k, start)) = split_windowed_key(windowed) else {
                continue;
            };
            if k != key || !(time_from..=time_to).contains(&start) {
                continue;
            }
            if let Some(slot) = self.cache.entries.get(&windowed[..]) {
                windows.insert(start, slot.value.to_bytes());
            }
        }
        Ok(Some(
            windows
                .into_iter()
                .filter_map(|(start, v)| v.map(|v| (start, v)))
                .collect(),
        ))
    }

    /// The inner store's count: cached entries not yet written are not
    /// counted.
    fn approximate_num_entries(&self) -> Result<u64> {
        self.inner.approximate_num_entries()
    }

    fn flush(&mut self) -> Result<()> {
        let forwarded = &mut self.forwarded;
        self.cache
            .flush(&mut self.inner, &mut |e| forwarded.push(e))?;
        self.inner.flush()
    }

    fn flush_unsynced(&mut self) -> Result<()> {
        let forwarded = &mut self.forwarded;
        self.cache
            .flush(&mut self.inner, &mut |e| forwarded.push(e))?;
        self.inner.flush_unsynced()
    }

    fn close(&mut self) -> Result<()> {
        // The inner store flushes itself on close (and closing twice is a
        // no-op there), so only the dirty entries are written here.
        let forwarded = &mut self.forwarded;
        self.cache
            .flush(&mut self.inner, &mut |e| forwarded.push(e))?;
        self.cache.clear();
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ChangeLoggingStore, InMemoryStore};

    type Logged = ChangeLoggingStore<InMemoryStore, Vec<(Bytes, Option<Bytes>)>>;

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    /// Caches made with one budget hold no more than it together: a write
    /// that takes them over it evicts from the cache written to, and a
    /// cache closed or dropped gives its bytes back.
    #[test]
    fn caches_sharing_a_budget_hold_no_more_than_it_together() {
        let entry = 2 + 2 + CACHE_ENTRY_OVERHEAD_BYTES;
        let budget = CacheBudget::new(10 * entry);
        let logged = |name: &str| ChangeLoggingStore::new(InMemoryStore::new(name), Vec::new());
        let mut first = CachingStore::with_budget(logged("a"), budget.clone());
        let mut second = CachingStore::with_budget(logged("b"), budget.clone());
        for i in 0..8 {
            first.put(b(&format!("{i:02}")), b("v1")).unwrap();
        }
        assert_eq!(first.cached_entries(), 8);
        assert_eq!(budget.used_bytes(), 8 * entry);
        // Two fit beside the first cache's eight; each one more evicts one
        // of the second's own, the least recently written first.
        for i in 0..6 {
            second.put(b(&format!("{i:02}")), b("v2")).unwrap();
            assert!(budget.used_bytes() <= budget.max_bytes());
        }
        assert_eq!(first.cached_entries(), 8);
        assert_eq!(second.cached_entries(), 2);
        assert_eq!(second.get(b"05").unwrap(), Some(b("v2")));
        // Evicted entries were written through, not lost.
        assert_eq!(second.inner().inner().get(b"00").unwrap(), Some(b("v2")));
        second.close().unwrap();
        assert_eq!(budget.used_bytes(), 8 * entry);
        drop(first);
        assert_eq!(budget.used_bytes(), 0);
    }

    fn store(max_bytes: usize) -> CachingStore<Logged> {
        CachingStore::new(
            ChangeLoggingStore::new(InMemoryStore::new("c"), Vec::new()),
            max_bytes,
        )
    }

    /// The size of an entry with a 1-byte key and a 1-byte value.
    const SMALL: usize = 2 + CACHE_ENTRY_OVERHEAD_BYTES;

    fn entry(key: &str, new: Option<&str>, old: Option<&str>) -> CacheEntry {
        CacheEntry {
            key: b(key),
            new_value: new.map(b),
            old_value: old.map(b),
        }
    }

    #[test]
    fn window_fetches_merge_cached_windows_over_the_window_store() {
        use crate::{InMemoryWindowStore, WindowedKvStore};

        let mut s = CachingStore::new(
            WindowedKvStore::new(InMemoryWindowStore::new("w", 1_000)),
            10_000,
        );
        let w = |key: &[u8], start| encode_windowed_key(key, start);
        for (start, value) in [(0, "0"), (10, "10"), (20, "20")] {
            s.put(w(b"a", start), b(value)).unwrap();
        }
        s.put(w(b"ab", 10), b("other key")).unwrap();
        s.flush().unwrap();
        // Cached, not yet written: an update, a new window, a delete.
        s.put(w(b"a", 10), b("10 again")).unwrap();
        s.put(w(b"a", 30), b("30")).unwrap();
        s.delete(w(b"a", 20)).unwrap();
        let got = s.fetch_windows(b"a", 0, 30).unwrap().unwrap();
        assert_eq!(got, [(0, b("0")), (10, b("10 again")), (30, b("30"))]);
        assert_eq!(
            s.fetch_windows(b"a", 5, 25).unwrap().unwrap(),
            [(10, b("10 again"))]
        );
        assert_eq!(
            s.fetch_windows(b"ab", 0, 30).unwrap().unwrap(),
            [(10, b("other key"))]
        );
        assert!(s.fetch_windows(b"a", 30, 0).unwrap().unwrap().is_empty());
        // A plain key-value store has no window view: callers scan ranges.
        assert!(store(100).fetch_windows(b"a", 0, 30).unwrap().is_none());
    }

    #[test]
    fn consecutive_updates_are_deduplicated_until_flush() {
        let mut s = store(10_000);
        for v in ["1", "2", "3"] {
            s.put_with(b("k"), b(v), |_| panic!("nothing should be evicted"))
                .unwrap();
        }
        assert_eq!(s.get(b"k").unwrap(), Some(b("3")));
        assert!(
            s.inner().sink().is_empty(),
            "nothing logged before the flush"
        );
        assert_eq!(s.inner().inner().get(b"k").unwrap(), None);

        let mut out = Vec::new();
        s.flush_with(|e| out.push(e)).unwrap();
        assert_eq!(out, vec![entry("k", Some("3"), None)]);
        assert_eq!(s.inner().sink(), &vec![(b("k"), Some(b("3")))]);

        // A second round forwards the previous value as the old value.
        s.put_with(b("k"), b("4"), |_| {}).unwrap();
        s.put_with(b("k"), b("5"), |_| {}).unwrap();
        out.clear();
        s.flush_with(|e| out.push(e)).unwrap();
        assert_eq!(out, vec![entry("k", Some("5"), Some("3"))]);
        assert_eq!(s.inner().sink().len(), 2);
    }

    #[test]
    fn a_patch_rewrites_a_small_value_in_its_slot_and_never_bytes_held_elsewhere() {
        let mut s = store(10_000);
        let mut calls = 0;
        let mut bump = |bytes: &mut [u8]| {
            calls += 1;
            bytes[0] += 1;
            true
        };
        assert!(!s.patch(b"k", &mut bump).unwrap(), "not cached");
        s.put(b("k"), b("1")).unwrap();
        assert!(s.patch(b"k", &mut bump).unwrap());
        assert_eq!(s.get(b"k").unwrap(), Some(b("2")));
        s.flush().unwrap();
        assert_eq!(s.take_forwarded(), vec![entry("k", Some("2"), None)]);

        // Written through, the bytes are the inner store's and the
        // changelog's too: the patch rewrites the cache's own copy.
        let logged = s.inner().sink().clone();
        assert!(s.patch(b"k", &mut bump).unwrap());
        assert_eq!(s.get(b"k").unwrap(), Some(b("3")));
        assert_eq!(s.inner().sink(), &logged);
        assert_eq!(s.inner().inner().get(b"k").unwrap(), Some(b("2")));

        // A patch makes the entry dirty and last in the flush order, as a
        // write does.
        s.put(b("j"), b("1")).unwrap();
        assert!(s.patch(b"k", &mut bump).unwrap());
        s.flush().unwrap();
        assert_eq!(
            s.take_forwarded(),
            vec![
                entry("j", Some("1"), None),
                entry("k", Some("4"), Some("2"))
            ]
        );
        assert_eq!(calls, 3);

        // A patch that declines changes nothing; a cached tombstone has no
        // bytes to patch.
        s.put(b("k"), b("7")).unwrap();
        let size = s.cached_bytes();
        assert!(!s.patch(b"k", &mut |_| false).unwrap());
        assert_eq!(s.get(b"k").unwrap(), Some(b("7")));
        assert_eq!(s.cached_bytes(), size);
        s.delete(b("j")).unwrap();
        assert!(!s.patch(b"j", &mut |_| true).unwrap());
        s.flush().unwrap();
        assert_eq!(
            s.take_forwarded(),
            vec![
                entry("k", Some("7"), Some("4")),
                entry("j", None, Some("1"))
            ]
        );
    }

    #[test]
    fn a_patch_rewrites_a_large_value_only_in_a_buffer_the_cache_alone_holds() {
        let mut s = store(10_000);
        let large = "x".repeat(INLINE_BYTES + 1);
        let mut bump = |bytes: &mut [u8]| {
            bytes[0] = b'y';
            true
        };
        s.put(b("k"), b(&large)).unwrap();
        assert!(s.patch(b"k", &mut bump).unwrap(), "the cache's own buffer");
        let patched = format!("y{}", &large[1..]);
        assert_eq!(s.get(b"k").unwrap(), Some(b(&patched)));
        let held = s.get(b"k").unwrap();
        assert!(!s.patch(b"k", &mut |_| true).unwrap(), "a reader holds it");
        drop(held);
        s.flush().unwrap();
        assert_eq!(s.take_forwarded(), vec![entry("k", Some(&patched), None)]);
        assert!(
            !s.patch(b"k", &mut |_| true).unwrap(),
            "the inner store and the changelog hold it"
        );
        assert_eq!(s.inner().inner().get(b"k").unwrap(), Some(b(&patched)));
    }

    #[test]
    fn flush_writes_in_the_order_of_last_update() {
        let mut s = store(10_000);
        for (k, v) in [("a", "1"), ("b", "1"), ("c", "1"), ("a", "2")] {
            s.put(b(k), b(v)).unwrap();
        }
        s.flush().unwrap();
        let keys: Vec<_> = s.take_forwarded().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, vec![b("b"), b("c"), b("a")]);
        assert!(s.take_forwarded().is_empty());
        assert_eq!(s.dirty_entries(), 0);
        assert_eq!(s.cached_entries(), 3, "flushed entries stay cached, clean");
    }

    #[test]
    fn flush_of_a_few_dirty_entries_among_many_clean_ones_keeps_write_order() {
        let mut s = store(100_000);
        let keys: Vec<String> = (0..20).map(|i| format!("k{i:02}")).collect();
        for k in &keys {
            s.put(b(k), b("0")).unwrap();
        }
        s.flush().unwrap();
        s.take_forwarded();
        for k in ["k07", "k03", "k15", "k03"] {
            s.put(b(k), b("1")).unwrap();
        }
        assert_eq!(s.dirty_entries(), 3);
        s.flush().unwrap();
        let keys: Vec<_> = s.take_forwarded().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, vec![b("k07"), b("k15"), b("k03")]);
        assert_eq!(s.dirty_entries(), 0);
    }

    /// An in-memory store whose puts fail while `fail` is set.
    #[derive(Debug)]
    struct Flaky {
        inner: InMemoryStore,
        fail: bool,
        gets: std::cell::Cell<usize>,
    }

    impl KeyValueStore for Flaky {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn persistent(&self) -> bool {
            false
        }
        fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
            self.gets.set(self.gets.get() + 1);
            self.inner.get(key)
        }
        fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
            if self.fail {
                return Err(crate::StoreError::Closed {
                    store: "flaky".into(),
                });
            }
            self.inner.put(key, value)
        }
        fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
            self.inner.delete(key)
        }
        fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
            self.inner.range(from, to)
        }
        fn all(&self) -> Result<KvIter<'_>> {
            self.inner.all()
        }
        fn approximate_num_entries(&self) -> Result<u64> {
            self.inner.approximate_num_entries()
        }
        fn flush(&mut self) -> Result<()> {
            Ok(())
        }
        fn close(&mut self) -> Result<()> {
            Ok(())
        }
    }

    /// A cache over a working `Flaky` store, roomy enough never to evict.
    fn flaky_cache() -> CachingStore<Flaky> {
        CachingStore::new(
            Flaky {
                inner: InMemoryStore::new("f"),
                fail: false,
                gets: Default::default(),
            },
            100_000,
        )
    }

    #[test]
    fn an_update_of_a_key_the_inner_store_lacks_is_written_through_without_a_second_read() {
        let mut s = flaky_cache();
        s.inner_mut().inner.put(b("a"), b("1")).unwrap();
        let add_one = |old: Option<&[u8]>| {
            let n = old.map_or(0, |v| v[0] - b'0');
            Update::Put(Bytes::from(vec![b'0' + n + 1]))
        };
        s.update(b"a", &mut |old| add_one(old)).unwrap();
        s.update(b"b", &mut |old| add_one(old)).unwrap();
        assert_eq!(s.inner().gets.get(), 2, "one read per uncached key");
        s.flush().unwrap();
        assert_eq!(
            s.take_forwarded(),
            vec![
                entry("a", Some("2"), Some("1")),
                entry("b", Some("1"), None)
            ]
        );
        assert_eq!(s.inner().gets.get(), 3, "b was known to be absent");
        // Once written, b is no longer absent: its next flush reads it.
        s.update(b"b", &mut |old| add_one(old)).unwrap();
        s.flush().unwrap();
        assert_eq!(s.take_forwarded(), vec![entry("b", Some("2"), Some("1"))]);
        assert_eq!(s.inner().gets.get(), 4);
        // A tombstone written through leaves it absent again.
        s.delete(b("b")).unwrap();
        s.flush().unwrap();
        assert_eq!(s.take_forwarded(), vec![entry("b", None, Some("2"))]);
        s.update(b"b", &mut |old| add_one(old)).unwrap();
        let reads = s.inner().gets.get();
        s.flush().unwrap();
        assert_eq!(s.take_forwarded(), vec![entry("b", Some("1"), None)]);
        assert_eq!(s.inner().gets.get(), reads);
    }

    #[test]
    fn a_failed_flush_keeps_what_it_did_not_write_dirty_and_in_order() {
        for clean in [0, 20] {
            let mut s = flaky_cache();
            for i in 0..clean {
                s.put(b(&format!("clean{i}")), b("0")).unwrap();
            }
            s.flush().unwrap();
            s.take_forwarded();
            for k in ["c", "a", "b"] {
                s.put(b(k), b("1")).unwrap();
            }
            s.inner_mut().fail = true;
            assert!(s.flush().is_err(), "{clean} clean entries");
            assert_eq!(s.dirty_entries(), 3);
            s.inner_mut().fail = false;
            s.flush().unwrap();
            let keys: Vec<_> = s.take_forwarded().into_iter().map(|e| e.key).collect();
            assert_eq!(keys, vec![b("c"), b("a"), b("b")], "{clean} clean entries");
            assert_eq!(s.dirty_entries(), 0);
        }
    }

    #[test]
    fn flush_order_follows_updates_and_rewrites_after_eviction() {
        // Room for exactly two small entries.
        let mut s = store(2 * SMALL);
        let add_one = |old: Option<&[u8]>| {
            let n = old.map_or(0, |v| v[0] - b'0');
            Update::Put(Bytes::from(vec![b'0' + n + 1]))
        };
        s.put(b("a"), b("1")).unwrap();
        s.put(b("b"), b("1")).unwrap();
        // c evicts a (dirty: written through), then a comes back dirty.
        s.put(b("c"), b("1")).unwrap();
        s.put(b("a"), b("2")).unwrap();
        assert_eq!(s.dirty_entries(), 2, "b was evicted for a");
        // An update in place moves c behind a.
        s.update(b"c", &mut |old| add_one(old)).unwrap();
        let evicted: Vec<_> = s.take_forwarded().into_iter().map(|e| e.key).collect();
        assert_eq!(evicted, vec![b("a"), b("b")]);
        s.flush().unwrap();
        let flushed = s.take_forwarded();
        assert_eq!(
            flushed,
            vec![
                entry("a", Some("2"), Some("1")),
                entry("c", Some("2"), None)
            ],
            "each dirty key once, in the order of its last write"
        );
        assert_eq!(s.dirty_entries(), 0);
        s.flush().unwrap();
        assert!(s.take_forwarded().is_empty());
    }

    #[test]
    fn eviction_writes_through_the_least_recently_written_entry() {
        // Room for exactly two small entries.
        let mut s = store(2 * SMALL);
        let mut out = Vec::new();
        s.put_with(b("a"), b("1"), |e| out.push(e)).unwrap();
        s.put_with(b("b"), b("1"), |e| out.push(e)).unwrap();
        assert!(out.is_empty());
        s.put_with(b("c"), b("1"), |e| out.push(e)).unwrap();
        assert_eq!(out, vec![entry("a", Some("1"), None)]);
        assert_eq!(s.inner().sink(), &vec![(b("a"), Some(b("1")))]);

        // Rewriting b makes c the least recent.
        s.put_with(b("b"), b("2"), |e| out.push(e)).unwrap();
        s.put_with(b("d"), b("1"), |e| out.push(e)).unwrap();
        assert_eq!(out[1..], [entry("c", Some("1"), None)]);
        assert_eq!(s.evictions(), 2);
        assert!(s.cached_bytes() <= s.max_bytes());

        // Reads see cached and evicted values alike.
        for (k, v) in [("a", "1"), ("b", "2"), ("c", "1"), ("d", "1")] {
            assert_eq!(s.get(k.as_bytes()).unwrap(), Some(b(v)), "{k}");
        }
    }

    #[test]
    fn clean_entries_are_evicted_without_forwarding() {
        let mut s = store(2 * SMALL);
        s.put(b("a"), b("1")).unwrap();
        s.flush().unwrap();
        assert_eq!(s.take_forwarded().len(), 1);
        s.put(b("b"), b("1")).unwrap();
        s.put(b("c"), b("1")).unwrap();
        assert!(
            s.take_forwarded().is_empty(),
            "evicting clean a forwards nothing"
        );
        assert_eq!(s.inner().sink().len(), 1);
        assert_eq!(s.get(b"a").unwrap(), Some(b("1")));
    }

    #[test]
    fn a_zero_bound_writes_every_update_through() {
        let mut s = store(0);
        let mut out = Vec::new();
        s.put_with(b("a"), b("1"), |e| out.push(e)).unwrap();
        s.put_with(b("a"), b("2"), |e| out.push(e)).unwrap();
        s.delete_with(b("a"), |e| out.push(e)).unwrap();
        assert_eq!(
            out,
            vec![
                entry("a", Some("1"), None),
                entry("a", Some("2"), Some("1")),
                entry("a", None, Some("2")),
            ]
        );
        assert_eq!(s.cached_entries(), 0);
        assert_eq!(s.inner().sink().len(), 3);
    }

    #[test]
    fn a_cached_delete_hides_the_inner_value_and_is_forwarded_once() {
        let mut s = store(10_000);
        s.inner_mut().inner_mut().put(b("a"), b("old")).unwrap();
        s.inner_mut().inner_mut().put(b("b"), b("kept")).unwrap();
        assert_eq!(s.delete(b("a")).unwrap(), Some(b("old")));
        assert_eq!(s.get(b"a").unwrap(), None);
        let all: Vec<_> = s.all().unwrap().map(Result::unwrap).collect();
        assert_eq!(all, vec![(b("b"), b("kept"))]);
        let ranged: Vec<_> = s.range(b"a", b"z").unwrap().map(Result::unwrap).collect();
        assert_eq!(ranged, all);
        s.flush().unwrap();
        assert_eq!(s.take_forwarded(), vec![entry("a", None, Some("old"))]);
        assert_eq!(s.inner().inner().get(b"a").unwrap(), None);
    }

    #[test]
    fn deleting_an_absent_key_is_not_forwarded() {
        let mut s = store(10_000);
        s.put(b("a"), b("1")).unwrap();
        s.delete(b("a")).unwrap();
        s.delete(b("never")).unwrap();
        s.flush().unwrap();
        assert!(s.take_forwarded().is_empty());
        // The inner store still receives the deletes (and logs tombstones).
        assert_eq!(s.inner().sink(), &vec![(b("a"), None), (b("never"), None)]);
    }

    #[test]
    fn close_flushes_dirty_entries_and_queues_them() {
        let mut s = store(10_000);
        s.put(b("a"), b("1")).unwrap();
        s.close().unwrap();
        assert_eq!(s.take_forwarded(), vec![entry("a", Some("1"), None)]);
        assert!(matches!(s.get(b"a"), Err(crate::StoreError::Closed { .. })));
        s.close().unwrap();
    }
}
