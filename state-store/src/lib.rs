//! Key-value state stores for stream processing, in the manner of Kafka
//! Streams' state stores.
//!
//! - [`KeyValueStore`]: bytes to bytes, ordered lexicographically, with
//!   three backends: [`InMemoryStore`] (`BTreeMap`), [`SledStore`] (`sled`
//!   0.34) and [`RedbStore`] (`redb` 4), chosen with [`StoreBackend`] and
//!   opened by name with [`open_store`].
//! - Layers: [`ChangeLoggingStore`] sends every update to a
//!   [`ChangelogSink`]; [`CachingStore`] deduplicates updates between
//!   flushes within a byte bound and hands out the [`CacheEntry`]s to
//!   forward.
//! - Recovery: [`restore`] / [`Restorer`] replay a changelog into a store,
//!   [`Checkpoint`] records the changelog offsets a store reflects, and
//!   [`wipe`] removes a store that returned [`StoreError::Corrupt`]. A
//!   checkpoint applies only to the files it was written for:
//!   [`open_or_wipe`] reports whether they were found ([`LocalData`]), and a
//!   store it created or wiped is restored from the start of its changelog.
//! - [`WindowStore`]: values per (key, window start) with segment-wise
//!   retention, in memory ([`InMemoryWindowStore`]); [`WindowedKvStore`]
//!   views one as a [`KeyValueStore`] over Kafka's windowed key layout, so
//!   it is changelogged and restored like any other store.
//!   [`KvWindowStore`] keeps windows on any key-value backend (sled, redb)
//!   and is itself a [`KeyValueStore`] over the same layout; open one with
//!   [`open_window_store`].
//! - [`SessionStore`]: session aggregates per (key, start, end) with
//!   time-based retention and `find_sessions` range fetches, on any
//!   key-value backend ([`KvSessionStore`], [`InMemorySessionStore`],
//!   [`open_session_store`]); a [`KeyValueStore`] over Kafka's session key
//!   layout, so it is changelogged and restored like any other store.
//! - [`VersionedKeyValueStore`]: several timestamped versions per key, read
//!   as of a time, with a history retention (Kafka's versioned stores,
//!   KIP-889), on any key-value backend ([`KvVersionedStore`],
//!   [`InMemoryVersionedStore`], [`open_versioned_store`]);
//!   [`ChangeLoggingVersionedStore`] logs each version with its timestamp
//!   as the record's, and restoring puts each record at its timestamp.
//!
//! The changelog is the source of truth: a local store that fails to open or
//! fails a check is wiped and restored, never trusted.
//!
//! ```
//! use bytes::Bytes;
//! use state_store::{CachingStore, ChangeLoggingStore, InMemoryStore, KeyValueStore};
//!
//! # fn main() -> state_store::Result<()> {
//! let logged = ChangeLoggingStore::new(InMemoryStore::new("counts"), Vec::new());
//! let mut store = CachingStore::new(logged, 10 * 1024 * 1024);
//!
//! store.put(Bytes::from("apple"), Bytes::from("1"))?;
//! store.put(Bytes::from("apple"), Bytes::from("2"))?;
//! assert_eq!(store.get(b"apple")?, Some(Bytes::from("2")));
//!
//! // Nothing reached the changelog yet; a flush writes the latest value once.
//! let mut forwarded = Vec::new();
//! store.flush_with(|entry| forwarded.push(entry))?;
//! assert_eq!(forwarded.len(), 1);
//! assert_eq!(forwarded[0].new_value, Some(Bytes::from("2")));
//! assert_eq!(store.inner().sink(), &vec![(Bytes::from("apple"), Some(Bytes::from("2")))]);
//! # Ok(())
//! # }
//! ```

mod backend;
mod cache;
mod cache_budget;
mod changelog;
mod checkpoint;
mod error;
mod fsutil;
mod kv_versioned;
mod kv_window;
mod layout;
mod memory;
mod memory_window;
mod redb_store;
mod restore;
mod session;
mod shared;
mod sled_store;
mod small_bytes;
mod store;
mod time_indexed;
mod versioned;
mod versioned_changelog;
mod windowed;

/// The guide's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/state-stores.md")]
mod guide {}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod persistent_tests;
#[cfg(test)]
mod versioned_tests;

pub use backend::{
    open_or_wipe, open_store, Engine, EngineOptions, LocalData, StoreBackend, UnknownBackend,
    DEFAULT_REDB_CACHE_BYTES, DEFAULT_SLED_CACHE_BYTES,
};
pub use cache::{CacheEntry, CachingStore, CACHE_ENTRY_OVERHEAD_BYTES};
pub use cache_budget::CacheBudget;
pub use changelog::{ChangeLoggingStore, ChangelogSink};
pub use checkpoint::{Checkpoint, CheckpointDecodeError, CHECKPOINT_FORMAT_VERSION};
pub use error::{BoxError, Result, StoreError};
pub use kv_versioned::{open_versioned_store, InMemoryVersionedStore, KvVersionedStore};
pub use kv_window::{open_window_store, KvWindowStore};
pub use layout::{store_dir, wipe};
pub use memory::InMemoryStore;
pub use memory_window::{
    decode_windowed_key, encode_windowed_key, put_windowed_key_suffix, split_windowed_key,
    InMemoryWindowStore, WindowedKvStore, DEFAULT_WINDOW_SEGMENTS, WINDOWED_KEY_SUFFIX_LEN,
};
pub use redb_store::{RedbOptions, RedbStore};
pub use restore::{restore, Restorer, DEFAULT_RESTORE_BATCH_SIZE};
pub use session::{
    decode_session_key, encode_session_key, open_session_store, InMemorySessionStore,
    KvSessionStore, SESSION_KEY_SUFFIX_LEN,
};
pub use shared::shared_bytes;
pub use sled_store::{SledOptions, SledStore};
pub use store::{BatchWrite, KeyValueStore, KvIter, Update};
pub use versioned::{PutOutcome, VersionedKeyValueStore, VersionedRecord, VersionedWrite};
pub use versioned_changelog::ChangeLoggingVersionedStore;
pub use windowed::{
    SessionIter, SessionKey, SessionStore, WindowIter, WindowStore, WindowedKey, WindowedKvIter,
};
