//! The in-memory backend.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::error::{Result, StoreError};
use crate::shared::shared_bytes;
use crate::small_bytes::SmallBytes;
use crate::store::{empty_iter, BatchWrite, KeyValueStore, KvIter, Update};

/// A [`KeyValueStore`] held in a `BTreeMap`. Not persistent: its content is
/// lost on close and must be restored from the changelog on start.
///
/// Keys and values are copies of their own, held in the map's slots when
/// they are short (up to 22 bytes each): an entry of a word and its count
/// costs its 48-byte slot and the tree's nodes, with no allocation of its
/// own, and no entry keeps alive a buffer it was sliced from.
#[derive(Debug)]
pub struct InMemoryStore {
    name: String,
    map: Option<BTreeMap<SmallBytes, SmallBytes>>,
}

impl InMemoryStore {
    /// An empty, open store.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            map: Some(BTreeMap::new()),
        }
    }

    fn map(&self) -> Result<&BTreeMap<SmallBytes, SmallBytes>> {
        self.map
            .as_ref()
            .ok_or_else(|| StoreError::closed(&self.name))
    }

    fn map_mut(&mut self) -> Result<&mut BTreeMap<SmallBytes, SmallBytes>> {
        self.map
            .as_mut()
            .ok_or_else(|| StoreError::closed(&self.name))
    }
}

fn pairs<'a>(iter: impl Iterator<Item = (&'a SmallBytes, &'a SmallBytes)> + 'a) -> KvIter<'a> {
    Box::new(iter.map(|(k, v)| Ok((shared_bytes(k.as_slice()), shared_bytes(v.as_slice())))))
}

impl KeyValueStore for InMemoryStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        false
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.map()?.get(key).map(|v| shared_bytes(v.as_slice())))
    }

    fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
        self.put_slices(&key, &value)
    }

    fn put_slices(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let map = self.map_mut()?;
        match map.get_mut(key) {
            Some(slot) => *slot = SmallBytes::copy_of(value),
            None => {
                map.insert(SmallBytes::copy_of(key), SmallBytes::copy_of(value));
            }
        }
        Ok(())
    }

    fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
        Ok(self
            .map_mut()?
            .remove(&key[..])
            .map(|v| shared_bytes(v.as_slice())))
    }

    fn update(
        &mut self,
        key: &[u8],
        update: &mut dyn FnMut(Option<&[u8]>) -> Update,
    ) -> Result<()> {
        let map = self.map_mut()?;
        match update(map.get(key).map(SmallBytes::as_slice)) {
            Update::Keep => {}
            Update::Put(value) => match map.get_mut(key) {
                Some(slot) => *slot = SmallBytes::copy_of(&value),
                None => {
                    map.insert(SmallBytes::copy_of(key), SmallBytes::copy_of(&value));
                }
            },
            Update::Delete => {
                map.remove(key);
            }
        }
        Ok(())
    }

    fn patch(&mut self, key: &[u8], patch: &mut dyn FnMut(&mut [u8]) -> bool) -> Result<bool> {
        Ok(self
            .map_mut()?
            .get_mut(key)
            .is_some_and(|value| patch(value.as_mut_slice())))
    }

    fn write_batch(&mut self, batch: &[BatchWrite]) -> Result<()> {
        for (key, value) in batch {
            match value {
                Some(value) => self.put_slices(key, value)?,
                None => {
                    self.map_mut()?.remove(&key[..]);
                }
            }
        }
        Ok(())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        let map = self.map()?;
        if from >= to {
            return Ok(empty_iter());
        }
        Ok(pairs(map.range::<[u8], _>((
            Bound::Included(from),
            Bound::Excluded(to),
        ))))
    }

    fn all(&self) -> Result<KvIter<'_>> {
        Ok(pairs(self.map()?.iter()))
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        Ok(self.map()?.len() as u64)
    }

    fn flush(&mut self) -> Result<()> {
        self.map().map(|_| ())
    }

    fn close(&mut self) -> Result<()> {
        if self.map.take().is_some() {
            tracing::debug!(store = %self.name, "closed in-memory store");
        }
        Ok(())
    }
}
