//! The changelogging layer.

use std::fmt;

use bytes::Bytes;

use crate::error::{Result, StoreError};
use crate::store::{BatchWrite, KeyValueStore, KvIter};

/// Where a [`ChangeLoggingStore`] sends its updates: a changelog topic
/// partition, in practice. `streams-core` implements it over the broker;
/// this crate knows nothing of brokers.
pub trait ChangelogSink: Send {
    /// Sends one update: `Some(value)` for a put, `None` for a tombstone.
    ///
    /// On failure, return [`StoreError::ChangelogSend`] with the record, so
    /// that the caller gets it back.
    fn send(&mut self, key: Bytes, value: Option<Bytes>) -> Result<()>;

    /// Sends one update whose record must carry `timestamp`: a versioned
    /// store's, whose changelog records carry the version's timestamp
    /// (restoration puts each at its record's timestamp). Sinks that write
    /// a topic override it; the default, for sinks with nowhere to keep a
    /// timestamp, is [`ChangelogSink::send`].
    fn send_at(&mut self, key: Bytes, value: Option<Bytes>, timestamp: i64) -> Result<()> {
        let _ = timestamp;
        self.send(key, value)
    }

    /// [`ChangelogSink::send`] of a put from borrowed bytes, for a sink
    /// that copies what it sends into a buffer of its own. By default, a
    /// send of copies.
    #[doc(hidden)]
    fn send_slices(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.send(
            Bytes::copy_from_slice(key),
            Some(Bytes::copy_from_slice(value)),
        )
    }
}

/// A sink that collects the records in memory (tests, or buffering before a
/// batch send).
impl ChangelogSink for Vec<(Bytes, Option<Bytes>)> {
    fn send(&mut self, key: Bytes, value: Option<Bytes>) -> Result<()> {
        self.push((key, value));
        Ok(())
    }
}

impl<L: ChangelogSink + ?Sized> ChangelogSink for &mut L {
    fn send(&mut self, key: Bytes, value: Option<Bytes>) -> Result<()> {
        (**self).send(key, value)
    }

    fn send_at(&mut self, key: Bytes, value: Option<Bytes>, timestamp: i64) -> Result<()> {
        (**self).send_at(key, value, timestamp)
    }

    fn send_slices(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        (**self).send_slices(key, value)
    }
}

impl<L: ChangelogSink + ?Sized> ChangelogSink for Box<L> {
    fn send(&mut self, key: Bytes, value: Option<Bytes>) -> Result<()> {
        (**self).send(key, value)
    }

    fn send_at(&mut self, key: Bytes, value: Option<Bytes>, timestamp: i64) -> Result<()> {
        (**self).send_at(key, value, timestamp)
    }

    fn send_slices(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        (**self).send_slices(key, value)
    }
}

/// Wraps a store and sends every applied put and delete to a
/// [`ChangelogSink`], after applying it to the inner store.
///
/// As in Kafka Streams, a delete always sends a tombstone (even for an absent
/// key) and `put_if_absent` sends only when it wrote. If the sink fails, the
/// inner store already holds the update, so the layer refuses every later
/// write with [`StoreError::Poisoned`]: the store must be wiped and
/// restored.
///
/// Restoration writes to the inner store ([`ChangeLoggingStore::inner_mut`])
/// so that restored records are not sent again.
pub struct ChangeLoggingStore<S, L> {
    inner: S,
    sink: L,
    poisoned: Option<String>,
}

impl<S: fmt::Debug, L> fmt::Debug for ChangeLoggingStore<S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeLoggingStore")
            .field("inner", &self.inner)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl<S: KeyValueStore, L: ChangelogSink> ChangeLoggingStore<S, L> {
    /// Wraps `inner`, logging to `sink`.
    pub fn new(inner: S, sink: L) -> Self {
        Self {
            inner,
            sink,
            poisoned: None,
        }
    }

    /// The wrapped store.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The wrapped store, for writes that must not be logged (restoration).
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The sink.
    pub fn sink(&self) -> &L {
        &self.sink
    }

    /// The sink, mutably (to drain a buffering sink).
    pub fn sink_mut(&mut self) -> &mut L {
        &mut self.sink
    }

    /// Unwraps into the inner store and the sink.
    pub fn into_parts(self) -> (S, L) {
        (self.inner, self.sink)
    }

    fn check(&self) -> Result<()> {
        match &self.poisoned {
            None => Ok(()),
            Some(cause) => Err(StoreError::Poisoned {
                store: self.inner.name().to_owned(),
                cause: cause.clone(),
            }),
        }
    }

    fn log(&mut self, key: Bytes, value: Option<Bytes>) -> Result<()> {
        let sent = self.sink.send(key, value);
        self.poison_on_failure(sent)
    }

    /// Poisons the store if a send failed.
    fn poison_on_failure(&mut self, sent: Result<()>) -> Result<()> {
        sent.inspect_err(|e| {
            tracing::error!(store = %self.inner.name(), error = %e, "changelog send failed; store poisoned");
            self.poisoned = Some(format!("changelog send failed: {e}"));
        })
    }
}

impl<S: KeyValueStore, L: ChangelogSink> KeyValueStore for ChangeLoggingStore<S, L> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn persistent(&self) -> bool {
        self.inner.persistent()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        self.inner.get(key)
    }

    fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
        self.check()?;
        self.inner.put(key.clone(), value.clone())?;
        self.log(key, Some(value))
    }

    fn put_slices(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.check()?;
        self.inner.put_slices(key, value)?;
        let sent = self.sink.send_slices(key, value);
        self.poison_on_failure(sent)
    }

    fn put_if_absent(&mut self, key: Bytes, value: Bytes) -> Result<Option<Bytes>> {
        self.check()?;
        let existing = self.inner.put_if_absent(key.clone(), value.clone())?;
        if existing.is_none() {
            self.log(key, Some(value))?;
        }
        Ok(existing)
    }

    fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
        self.check()?;
        let old = self.inner.delete(key.clone())?;
        self.log(key, None)?;
        Ok(old)
    }

    fn write_batch(&mut self, batch: &[BatchWrite]) -> Result<()> {
        self.check()?;
        self.inner.write_batch(batch)?;
        for (key, value) in batch {
            self.log(key.clone(), value.clone())?;
        }
        Ok(())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        self.inner.range(from, to)
    }

    fn all(&self) -> Result<KvIter<'_>> {
        self.inner.all()
    }

    fn fetch_windows(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<Option<Vec<(i64, Bytes)>>> {
        self.inner.fetch_windows(key, time_from, time_to)
    }

    fn visit_windows(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        visit: &mut dyn FnMut(i64, &Bytes),
    ) -> Result<bool> {
        self.inner.visit_windows(key, time_from, time_to, visit)
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.inner.approximate_num_entries()
    }

    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }

    fn flush_unsynced(&mut self) -> Result<()> {
        self.inner.flush_unsynced()
    }

    fn close(&mut self) -> Result<()> {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::InMemoryStore;
    use proptest::prelude::*;

    fn b(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(Vec<u8>, Vec<u8>),
        PutSlices(Vec<u8>, Vec<u8>),
        PutIfAbsent(Vec<u8>, Vec<u8>),
        Delete(Vec<u8>),
        Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    }

    fn key() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(0u8..3, 0..3)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (key(), key()).prop_map(|(k, v)| Op::Put(k, v)),
            (key(), key()).prop_map(|(k, v)| Op::PutSlices(k, v)),
            (key(), key()).prop_map(|(k, v)| Op::PutIfAbsent(k, v)),
            key().prop_map(Op::Delete),
            prop::collection::vec((key(), prop::option::of(key())), 0..4).prop_map(Op::Batch),
        ]
    }

    proptest! {
        #[test]
        fn changelog_sends_exactly_the_applied_updates(ops in prop::collection::vec(op(), 0..40)) {
            let mut store = ChangeLoggingStore::new(InMemoryStore::new("s"), Vec::new());
            let mut expected: Vec<(Bytes, Option<Bytes>)> = Vec::new();
            let mut replay = InMemoryStore::new("replay");
            for op in ops {
                match op {
                    Op::Put(k, v) => {
                        store.put(k.clone().into(), v.clone().into()).unwrap();
                        expected.push((k.into(), Some(v.into())));
                    }
                    Op::PutSlices(k, v) => {
                        store.put_slices(&k, &v).unwrap();
                        expected.push((k.into(), Some(v.into())));
                    }
                    Op::PutIfAbsent(k, v) => {
                        let absent = store.get(&k).unwrap().is_none();
                        let existing = store.put_if_absent(k.clone().into(), v.clone().into()).unwrap();
                        prop_assert_eq!(existing.is_none(), absent);
                        if absent {
                            expected.push((k.into(), Some(v.into())));
                        }
                    }
                    Op::Delete(k) => {
                        store.delete(k.clone().into()).unwrap();
                        expected.push((k.into(), None));
                    }
                    Op::Batch(writes) => {
                        let batch: Vec<BatchWrite> = writes
                            .into_iter()
                            .map(|(k, v)| (k.into(), v.map(Bytes::from)))
                            .collect();
                        store.write_batch(&batch).unwrap();
                        expected.extend(batch);
                    }
                }
            }
            prop_assert_eq!(store.sink(), &expected);
            // Replaying the changelog rebuilds the same store.
            crate::restore(&mut replay, expected, 3).unwrap();
            let logged: Vec<_> = store.all().unwrap().map(Result::unwrap).collect();
            let replayed: Vec<_> = replay.all().unwrap().map(Result::unwrap).collect();
            prop_assert_eq!(logged, replayed);
        }
    }

    #[test]
    fn restoring_through_inner_mut_sends_nothing() {
        let mut store = ChangeLoggingStore::new(InMemoryStore::new("s"), Vec::new());
        crate::restore(store.inner_mut(), [(b(b"k"), Some(b(b"v")))], 10).unwrap();
        assert_eq!(store.get(b"k").unwrap(), Some(b(b"v")));
        assert!(store.sink().is_empty());
    }

    #[derive(Debug)]
    struct FailingSink;

    impl ChangelogSink for FailingSink {
        fn send(&mut self, key: Bytes, value: Option<Bytes>) -> Result<()> {
            Err(StoreError::ChangelogSend {
                store: "s".into(),
                key,
                value,
                source: "broker unavailable".into(),
            })
        }
    }

    #[test]
    fn a_failed_send_gives_the_record_back_and_poisons_the_store() {
        let mut store = ChangeLoggingStore::new(InMemoryStore::new("s"), FailingSink);
        let err = store.put(b(b"k"), b(b"v")).unwrap_err();
        match err {
            StoreError::ChangelogSend { key, value, .. } => {
                assert_eq!(key, b(b"k"));
                assert_eq!(value, Some(b(b"v")));
            }
            other => panic!("unexpected error {other}"),
        }
        let err = store.delete(b(b"k")).unwrap_err();
        assert!(matches!(err, StoreError::Poisoned { .. }), "{err}");
        assert!(err.requires_restore());
        // Reads still work.
        assert_eq!(store.get(b"k").unwrap(), Some(b(b"v")));
    }
}
