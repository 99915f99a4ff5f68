//! [`CacheBudget`]: the bytes that several record caches share.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A bound on the bytes of a group of record caches together (Kafka
/// Streams' `cache.max.bytes.buffering`, which bounds the caches of all
/// the stores of all the tasks of a stream thread at once, rather than
/// each one).
///
/// Each [`crate::CachingStore`] made with a clone of the budget counts its
/// entries in it; a write that takes the group over the bound evicts the
/// least recently written entries of the store written to, as Kafka
/// Streams' `ThreadCache` does. A cache dropped gives its bytes back.
#[derive(Debug, Clone)]
pub struct CacheBudget {
    max_bytes: usize,
    used: Arc<AtomicUsize>,
}

impl CacheBudget {
    /// A budget of `max_bytes` for the caches that share it; 0 turns
    /// caching off (every write goes through at once).
    pub fn new(max_bytes: usize) -> Self {
        Self {
            max_bytes,
            used: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The bound.
    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The bytes the caches that share the budget hold now.
    pub fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether the caches hold more than the bound.
    pub(crate) fn over(&self) -> bool {
        self.used_bytes() > self.max_bytes
    }

    pub(crate) fn add(&self, bytes: usize) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, bytes: usize) {
        // Never below zero, whatever the order of updates.
        let _ = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                Some(used.saturating_sub(bytes))
            });
    }
}
