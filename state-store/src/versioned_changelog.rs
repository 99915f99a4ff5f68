//! The changelogging layer of versioned stores.

use std::fmt;

use bytes::Bytes;

use crate::changelog::ChangelogSink;
use crate::error::{Result, StoreError};
use crate::versioned::{PutOutcome, VersionedKeyValueStore, VersionedRecord, VersionedWrite};

/// Wraps a versioned store and sends every put and delete to a
/// [`ChangelogSink`] after applying it, as Kafka's
/// `ChangeLoggingVersionedKeyValueBytesStore`: the record's key and value
/// (`None` for a delete) with the version's timestamp as the record's
/// ([`ChangelogSink::send_at`]). As in Kafka, a put or delete older than
/// the history retention is logged too; restoring it skips it again.
///
/// Restoring the changelog in order ([`VersionedKeyValueStore::restore_batch`],
/// which this layer passes to the inner store without logging) rebuilds
/// the same versions, out-of-order records included, because each record
/// is put at its own timestamp with the same rules.
///
/// If the sink fails, the inner store already holds the update, so the
/// layer refuses every later write with [`StoreError::Poisoned`].
pub struct ChangeLoggingVersionedStore<S, L> {
    inner: S,
    sink: L,
    poisoned: Option<String>,
}

impl<S: fmt::Debug, L> fmt::Debug for ChangeLoggingVersionedStore<S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangeLoggingVersionedStore")
            .field("inner", &self.inner)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

impl<S: VersionedKeyValueStore, L: ChangelogSink> ChangeLoggingVersionedStore<S, L> {
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

    /// The sink.
    pub fn sink(&self) -> &L {
        &self.sink
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

    fn log(&mut self, key: Bytes, value: Option<Bytes>, timestamp: i64) -> Result<()> {
        self.sink.send_at(key, value, timestamp).inspect_err(|e| {
            tracing::error!(store = %self.inner.name(), error = %e, "changelog send failed; store poisoned");
            self.poisoned = Some(format!("changelog send failed: {e}"));
        })
    }
}

impl<S: VersionedKeyValueStore, L: ChangelogSink> VersionedKeyValueStore
    for ChangeLoggingVersionedStore<S, L>
{
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn persistent(&self) -> bool {
        self.inner.persistent()
    }

    fn history_retention(&self) -> i64 {
        self.inner.history_retention()
    }

    fn observed_stream_time(&self) -> Option<i64> {
        self.inner.observed_stream_time()
    }

    fn put(&mut self, key: Bytes, value: Option<Bytes>, timestamp: i64) -> Result<PutOutcome> {
        self.check()?;
        let outcome = self.inner.put(key.clone(), value.clone(), timestamp)?;
        self.log(key, value, timestamp)?;
        Ok(outcome)
    }

    fn delete(&mut self, key: Bytes, timestamp: i64) -> Result<Option<VersionedRecord<Bytes>>> {
        self.check()?;
        let old = self.inner.delete(key.clone(), timestamp)?;
        self.log(key, None, timestamp)?;
        Ok(old)
    }

    fn get(&self, key: &[u8]) -> Result<Option<VersionedRecord<Bytes>>> {
        self.inner.get(key)
    }

    fn get_as_of(&self, key: &[u8], as_of: i64) -> Result<Option<VersionedRecord<Bytes>>> {
        self.inner.get_as_of(key, as_of)
    }

    fn restore_batch(&mut self, batch: &[VersionedWrite]) -> Result<()> {
        self.inner.restore_batch(batch)
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
