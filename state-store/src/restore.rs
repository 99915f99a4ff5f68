//! Restoration: replaying changelog records into a store.

use bytes::Bytes;

use crate::error::Result;
use crate::store::{BatchWrite, KeyValueStore};

/// The default number of records per restore batch (Kafka's default
/// `max.poll.records`).
pub const DEFAULT_RESTORE_BATCH_SIZE: usize = 1000;

/// Applies changelog records to a store in batches: `Some(value)` puts,
/// `None` (a tombstone) deletes.
///
/// Restore into the store below the changelogging and caching layers (see
/// [`crate::ChangeLoggingStore::inner_mut`]), so that restored records are
/// not logged again. [`Restorer::finish`] writes the last partial batch and
/// flushes the store; write the checkpoint only after it returns.
///
/// Use it when records come from a source with its own error type (a
/// consumer loop); [`restore`] takes an iterator.
#[derive(Debug)]
pub struct Restorer<'a, S: KeyValueStore + ?Sized> {
    store: &'a mut S,
    batch: Vec<BatchWrite>,
    batch_size: usize,
    applied: u64,
}

impl<'a, S: KeyValueStore + ?Sized> Restorer<'a, S> {
    /// A restorer writing to `store` in batches of `batch_size` records (at
    /// least 1).
    pub fn new(store: &'a mut S, batch_size: usize) -> Self {
        let batch_size = batch_size.max(1);
        Self {
            store,
            batch: Vec::with_capacity(batch_size),
            batch_size,
            applied: 0,
        }
    }

    /// Adds one changelog record; writes a batch when it is full.
    pub fn add(&mut self, key: Bytes, value: Option<Bytes>) -> Result<()> {
        self.batch.push((key, value));
        if self.batch.len() >= self.batch_size {
            self.write()?;
        }
        Ok(())
    }

    /// Records applied to the store so far (not counting the pending batch).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    fn write(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        self.store.write_batch(&self.batch)?;
        self.applied += self.batch.len() as u64;
        tracing::trace!(store = %self.store.name(), records = self.batch.len(), "restored batch");
        self.batch.clear();
        Ok(())
    }

    /// Writes the pending batch, flushes the store and returns the number of
    /// records applied.
    pub fn finish(mut self) -> Result<u64> {
        self.write()?;
        self.store.flush()?;
        tracing::info!(store = %self.store.name(), records = self.applied, "restoration finished");
        Ok(self.applied)
    }
}

/// Applies `records` to `store` in batches of `batch_size`, then flushes it;
/// returns the number of records applied. See [`Restorer`].
pub fn restore<S, I>(store: &mut S, records: I, batch_size: usize) -> Result<u64>
where
    S: KeyValueStore + ?Sized,
    I: IntoIterator<Item = (Bytes, Option<Bytes>)>,
{
    let mut restorer = Restorer::new(store, batch_size);
    for (key, value) in records {
        restorer.add(key, value)?;
    }
    restorer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryStore;

    #[derive(Debug)]
    struct CountingStore {
        inner: InMemoryStore,
        batches: Vec<usize>,
        flushes: usize,
    }

    impl KeyValueStore for CountingStore {
        fn name(&self) -> &str {
            self.inner.name()
        }
        fn persistent(&self) -> bool {
            false
        }
        fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
            self.inner.get(key)
        }
        fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
            self.inner.put(key, value)
        }
        fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
            self.inner.delete(key)
        }
        fn write_batch(&mut self, batch: &[BatchWrite]) -> Result<()> {
            self.batches.push(batch.len());
            self.inner.write_batch(batch)
        }
        fn range(&self, from: &[u8], to: &[u8]) -> Result<crate::KvIter<'_>> {
            self.inner.range(from, to)
        }
        fn all(&self) -> Result<crate::KvIter<'_>> {
            self.inner.all()
        }
        fn approximate_num_entries(&self) -> Result<u64> {
            self.inner.approximate_num_entries()
        }
        fn flush(&mut self) -> Result<()> {
            self.flushes += 1;
            Ok(())
        }
        fn close(&mut self) -> Result<()> {
            self.inner.close()
        }
    }

    #[test]
    fn restore_applies_puts_and_tombstones_in_batches_then_flushes() {
        let mut store = CountingStore {
            inner: InMemoryStore::new("s"),
            batches: Vec::new(),
            flushes: 0,
        };
        let records = (0..7u8)
            .map(|i| (Bytes::from(vec![i % 3]), Some(Bytes::from(vec![i]))))
            .chain([(Bytes::from(vec![1u8]), None)]);
        let applied = restore(&mut store, records, 3).unwrap();
        assert_eq!(applied, 8);
        assert_eq!(store.batches, vec![3, 3, 2]);
        assert_eq!(store.flushes, 1);
        let all: Vec<_> = store.all().unwrap().map(Result::unwrap).collect();
        assert_eq!(
            all,
            vec![
                (Bytes::from(vec![0u8]), Bytes::from(vec![6u8])),
                (Bytes::from(vec![2u8]), Bytes::from(vec![5u8])),
            ]
        );
    }

    #[test]
    fn a_zero_batch_size_means_one_record_per_batch() {
        let mut store = InMemoryStore::new("s");
        let mut r = Restorer::new(&mut store, 0);
        r.add(Bytes::from_static(b"a"), Some(Bytes::from_static(b"1")))
            .unwrap();
        assert_eq!(r.applied(), 1);
        assert_eq!(r.finish().unwrap(), 1);
    }
}
