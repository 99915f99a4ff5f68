//! The in-memory backend.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

use crate::error::{Result, StoreError};
use crate::store::{empty_iter, BatchWrite, KeyValueStore, KvIter};

/// A [`KeyValueStore`] held in a `BTreeMap`. Not persistent: its content is
/// lost on close and must be restored from the changelog on start.
#[derive(Debug)]
pub struct InMemoryStore {
    name: String,
    map: Option<BTreeMap<Bytes, Bytes>>,
}

impl InMemoryStore {
    /// An empty, open store.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            map: Some(BTreeMap::new()),
        }
    }

    fn map(&self) -> Result<&BTreeMap<Bytes, Bytes>> {
        self.map
            .as_ref()
            .ok_or_else(|| StoreError::closed(&self.name))
    }

    fn map_mut(&mut self) -> Result<&mut BTreeMap<Bytes, Bytes>> {
        self.map
            .as_mut()
            .ok_or_else(|| StoreError::closed(&self.name))
    }
}

fn pairs<'a>(iter: impl Iterator<Item = (&'a Bytes, &'a Bytes)> + 'a) -> KvIter<'a> {
    Box::new(iter.map(|(k, v)| Ok((k.clone(), v.clone()))))
}

impl KeyValueStore for InMemoryStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        false
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        Ok(self.map()?.get(key).cloned())
    }

    fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
        self.map_mut()?.insert(key, value);
        Ok(())
    }

    fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
        Ok(self.map_mut()?.remove(&key))
    }

    fn write_batch(&mut self, batch: &[BatchWrite]) -> Result<()> {
        let map = self.map_mut()?;
        for (key, value) in batch {
            match value {
                Some(value) => map.insert(key.clone(), value.clone()),
                None => map.remove(key),
            };
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
