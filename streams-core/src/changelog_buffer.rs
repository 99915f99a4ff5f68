//! [`ChangelogBuffer`]: the changelog sink of a task's store, which keeps
//! the store's updates until the task hands them to its output (the test
//! driver's, or the producer's).

use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use state_store::ChangelogSink;

/// A changelog sink that buffers updates until the task takes them.
///
/// An update sent with its own bytes keeps them; one sent from borrowed
/// bytes ([`ChangelogSink::send_slices`], a stream–stream join's window
/// store) is copied into a buffer the sink keeps between records, so that
/// logging it allocates nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChangelogBuffer(Arc<Shared>);

#[derive(Debug, Default)]
struct Shared {
    updates: Mutex<Updates>,
    /// Whether `updates` may be non-empty: a task looks after every record,
    /// and most of the time (a cached store) there is nothing to take.
    pending: AtomicBool,
}

/// The updates logged since the task last took them.
#[derive(Debug, Default)]
struct Updates {
    updates: Vec<Update>,
    /// The bytes of the updates sent from borrowed bytes.
    bytes: Vec<u8>,
}

/// One update.
#[derive(Debug)]
enum Update {
    /// An update with bytes of its own: a key, its new value (`None`: a
    /// tombstone) and the record's timestamp when the store gives one (a
    /// versioned store's).
    Owned(Bytes, Option<Bytes>, Option<i64>),
    /// A put whose key and value were copied into [`Updates::bytes`].
    Copied {
        key: Range<usize>,
        value: Range<usize>,
    },
}

/// An update handed out by [`ChangelogBuffer::drain`]. A record without a
/// timestamp of its own takes that of the record being processed.
#[derive(Debug)]
pub(crate) enum Logged<'a> {
    /// With bytes of its own: key, value (`None`: a tombstone), timestamp.
    Owned(Bytes, Option<Bytes>, Option<i64>),
    /// A put, borrowed from the buffer: key, value.
    Copied(&'a [u8], &'a [u8]),
}

/// Changelog updates taken out whole: a key, its new value (`None`: a
/// tombstone) and the record's timestamp when the store gives one.
pub(crate) type ChangelogRecords = Vec<(Bytes, Option<Bytes>, Option<i64>)>;

/// Updates beyond which [`ChangelogBuffer::drain`] gives the room back (a
/// flush of a large cache).
const KEPT_UPDATES: usize = 1024;
/// Bytes beyond which [`ChangelogBuffer::drain`] gives the room back.
const KEPT_BYTES: usize = 64 * 1024;

impl ChangelogBuffer {
    /// Whether updates may be waiting: one load, checked after every record.
    #[inline]
    pub(crate) fn pending(&self) -> bool {
        self.0.pending.load(Ordering::Acquire)
    }

    /// Whether updates are waiting, clearing the flag: a plain load first,
    /// so that the common case (nothing logged) stays a read.
    fn take_pending(&self) -> bool {
        self.0.pending.load(Ordering::Acquire) && self.0.pending.swap(false, Ordering::Acquire)
    }

    fn lock(&self) -> MutexGuard<'_, Updates> {
        self.0
            .updates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands the updates logged since the last call to `each`, in order.
    /// The buffer keeps its room for the next ones (a store without a
    /// cache logs one update per record, taken after each record).
    pub(crate) fn drain(&self, mut each: impl FnMut(Logged<'_>)) {
        if !self.take_pending() {
            return;
        }
        let mut guard = self.lock();
        let Updates { updates, bytes } = &mut *guard;
        for update in updates.drain(..) {
            each(match update {
                Update::Owned(key, value, timestamp) => Logged::Owned(key, value, timestamp),
                Update::Copied { key, value } => Logged::Copied(&bytes[key], &bytes[value]),
            });
        }
        bytes.clear();
        if updates.capacity() > KEPT_UPDATES {
            *updates = Vec::new();
        }
        if bytes.capacity() > KEPT_BYTES {
            *bytes = Vec::new();
        }
    }

    /// Takes the updates logged since the last call, each with bytes of
    /// its own.
    pub(crate) fn take(&self) -> ChangelogRecords {
        let mut records = Vec::new();
        self.drain(|update| {
            records.push(match update {
                Logged::Owned(key, value, timestamp) => (key, value, timestamp),
                Logged::Copied(key, value) => (
                    Bytes::copy_from_slice(key),
                    Some(Bytes::copy_from_slice(value)),
                    None,
                ),
            });
        });
        records
    }

    fn push(&self, update: impl FnOnce(&mut Updates) -> Update) {
        let mut updates = self.lock();
        let update = update(&mut updates);
        updates.updates.push(update);
        self.0.pending.store(true, Ordering::Release);
    }
}

impl ChangelogSink for ChangelogBuffer {
    fn send(&mut self, key: Bytes, value: Option<Bytes>) -> state_store::Result<()> {
        self.push(|_| Update::Owned(key, value, None));
        Ok(())
    }

    fn send_at(
        &mut self,
        key: Bytes,
        value: Option<Bytes>,
        timestamp: i64,
    ) -> state_store::Result<()> {
        self.push(|_| Update::Owned(key, value, Some(timestamp)));
        Ok(())
    }

    fn send_slices(&mut self, key: &[u8], value: &[u8]) -> state_store::Result<()> {
        self.push(|updates| {
            let bytes = &mut updates.bytes;
            let key_at = bytes.len();
            bytes.extend_from_slice(key);
            let value_at = bytes.len();
            bytes.extend_from_slice(value);
            Update::Copied {
                key: key_at..value_at,
                value: value_at..bytes.len(),
            }
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(text: &str) -> Bytes {
        Bytes::copy_from_slice(text.as_bytes())
    }

    #[test]
    fn updates_come_out_in_order_whichever_way_they_were_sent() {
        let mut buffer = ChangelogBuffer::default();
        assert!(!buffer.pending());
        buffer.send(b("a"), Some(b("1"))).unwrap();
        buffer.send_slices(b"b", b"2").unwrap();
        buffer.send_at(b("c"), None, 7).unwrap();
        buffer.send_slices(b"", b"").unwrap();
        assert!(buffer.pending());
        let mut drained = Vec::new();
        buffer.drain(|update| {
            drained.push(match update {
                Logged::Owned(k, v, t) => (k, v, t, false),
                Logged::Copied(k, v) => (
                    Bytes::copy_from_slice(k),
                    Some(Bytes::copy_from_slice(v)),
                    None,
                    true,
                ),
            })
        });
        assert_eq!(
            drained,
            [
                (b("a"), Some(b("1")), None, false),
                (b("b"), Some(b("2")), None, true),
                (b("c"), None, Some(7), false),
                (b(""), Some(b("")), None, true),
            ]
        );
        assert!(!buffer.pending());
        // Drained updates are gone; the next ones start afresh.
        buffer.send_slices(b"d", b"4").unwrap();
        assert_eq!(buffer.take(), [(b("d"), Some(b("4")), None)]);
        assert!(buffer.take().is_empty());
    }
}
