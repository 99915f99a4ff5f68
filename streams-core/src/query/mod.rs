//! Interactive queries: what a running [`crate::StreamsApp`] holds in its
//! stores, and which instance holds what (Kafka's
//! `KafkaStreams#store`, `queryMetadataForKey`, `streamsMetadataForStore`).
//!
//! [`crate::StreamsApp::store`] gives typed, read-only views of the stores
//! of this instance. The types here serve the rest:
//!
//! - [`KeyQueryMetadata`] and [`StreamsMetadata`]: which instance (by its
//!   `application.server`, [`HostInfo`]) owns a key, and what each
//!   instance hosts. Every instance that sets `application.server`
//!   publishes its tasks to the compacted topic
//!   `<application.id>-instances` and reads everyone else's from it.
//! - [`InteractiveQueries`](crate::InteractiveQueries): the same stores
//!   over bytes, with their serdes' layouts ([`crate::SerdeFormat`]), for
//!   tools that do not know the stores' Rust types (the HTTP endpoint of
//!   `streams-http`).

pub(crate) mod codec;
mod metadata;

pub use metadata::{HostInfo, KeyQueryMetadata, StreamsMetadata};

use bytes::Bytes;

use crate::exec::TaskId;
use crate::serdes::SerdeFormat;

/// The kind of a state store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreKind {
    /// A key-value store (Kafka's `KeyValueStore`).
    KeyValue,
    /// A window store: values per key and window start.
    Window,
    /// A session store: values per key and session.
    Session,
    /// A versioned key-value store: a history of values per key.
    Versioned,
}

impl StoreKind {
    /// The kind as the HTTP endpoint and the docs name it: `key-value`,
    /// `window`, `session` or `versioned`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::KeyValue => "key-value",
            Self::Window => "window",
            Self::Session => "session",
            Self::Versioned => "versioned",
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How far the restoration of one store of one task has come.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreProgress {
    /// The task.
    pub task: TaskId,
    /// The store.
    pub store: String,
    /// Changelog records replayed so far.
    pub restored: u64,
    /// Changelog records to replay in all; `None` until the runtime has
    /// read the changelog's end offset.
    pub total: Option<u64>,
}

/// A store's share in one task of this instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalStoreTask {
    /// The task.
    pub task: TaskId,
    /// `None` once the task runs; its progress while it restores.
    pub restoring: Option<RestoreProgress>,
    /// An estimate of the entries (`None` while restoring, and for
    /// versioned stores).
    pub approximate_entries: Option<u64>,
}

/// What a store is, whatever the instance: its kind and its serdes'
/// layouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSchema {
    /// The store name.
    pub name: String,
    /// Its kind.
    pub kind: StoreKind,
    /// The layout of its keys (of the record keys, for window and session
    /// stores).
    pub key_format: SerdeFormat,
    /// The layout of its values.
    pub value_format: SerdeFormat,
    /// The window size of a window store, milliseconds.
    pub window_size_ms: Option<i64>,
    /// How many partitions (tasks) the store has across every instance.
    pub partitions: u32,
}

/// A state store of the app as this instance sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    /// The store name.
    pub name: String,
    /// Its kind.
    pub kind: StoreKind,
    /// The layout of its keys (of the record keys, for window and session
    /// stores).
    pub key_format: SerdeFormat,
    /// The layout of its values.
    pub value_format: SerdeFormat,
    /// The window size of a window store, milliseconds.
    pub window_size_ms: Option<i64>,
    /// How many partitions (tasks) the store has across every instance.
    pub partitions: u32,
    /// The tasks of this instance that hold it, sorted.
    pub tasks: Vec<LocalStoreTask>,
}

impl StoreInfo {
    /// The sum of the running tasks' estimates.
    pub fn approximate_entries(&self) -> u64 {
        self.tasks
            .iter()
            .filter_map(|t| t.approximate_entries)
            .fold(0u64, u64::saturating_add)
    }
}

/// A time window or session: `[start, end]` in epoch milliseconds (a
/// window's end is its start plus its size, exclusive as in Kafka; a
/// session's end is inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RawWindow {
    /// The start.
    pub start: i64,
    /// The end.
    pub end: i64,
}

/// One entry of a store, as bytes in the store's serdes' layouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    /// The key (the record key, for window and session stores).
    pub key: Bytes,
    /// The value.
    pub value: Bytes,
    /// The window or session, for window and session stores.
    pub window: Option<RawWindow>,
    /// The version's timestamp, for versioned stores.
    pub timestamp: Option<i64>,
}

/// Where a page of a scan ended: the next page starts after `after` in
/// `task` (tasks in order, each task's entries in the order of their bytes
/// in the store).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageCursor {
    /// The task of the last entry returned.
    pub task: TaskId,
    /// The stored key of the last entry returned (for window and session
    /// stores, the key with its window as the store lays it out).
    pub after: Bytes,
}

/// A scan of a store: which entries, and where to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeQuery {
    /// The lowest key, inclusive (in the key serde's bytes); `None`: from
    /// the first.
    pub from: Option<Bytes>,
    /// The highest key, inclusive; `None`: to the last.
    pub to: Option<Bytes>,
    /// Continue after this cursor (from a previous [`Page`]).
    pub after: Option<PageCursor>,
    /// At most this many entries (at least one is returned when any is
    /// left).
    pub limit: usize,
}

/// A page of a scan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// The entries, task by task, each task's in the order of their bytes.
    pub entries: Vec<RawEntry>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<PageCursor>,
}

/// What this instance can answer to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Queried<T> {
    /// The answer.
    Ready(T),
    /// A task that holds the data is restoring its stores.
    Restoring(Vec<RestoreProgress>),
    /// The key belongs to a task of another instance (or of none known):
    /// ask its owner.
    Elsewhere(KeyQueryMetadata),
}
