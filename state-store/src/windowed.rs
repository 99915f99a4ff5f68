//! Traits for window and session stores. Window stores are implemented in
//! memory ([`crate::InMemoryWindowStore`]) and on any key-value backend
//! ([`crate::KvWindowStore`]); session stores on any key-value backend
//! ([`crate::KvSessionStore`], in memory as
//! [`crate::InMemorySessionStore`]).
//!
//! Times are epoch milliseconds. Keys and values are bytes, as in
//! [`crate::KeyValueStore`].

use std::fmt;

use bytes::Bytes;

use crate::error::Result;

/// A key in a time window: the key and the window's start.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowedKey {
    /// The record key.
    pub key: Bytes,
    /// The window start (inclusive), epoch milliseconds.
    pub window_start: i64,
}

/// An iterator over `(window start, value)` for one key, by ascending
/// window start.
pub type WindowIter<'a> = Box<dyn Iterator<Item = Result<(i64, Bytes)>> + 'a>;

/// An iterator over `(windowed key, value)`.
pub type WindowedKvIter<'a> = Box<dyn Iterator<Item = Result<(WindowedKey, Bytes)>> + 'a>;

/// A store of values per (key, window start), as Kafka Streams'
/// `WindowStore`: time windows are `[start, start + size)`; the store keeps
/// windows for its retention period and drops older ones.
pub trait WindowStore: Send + fmt::Debug {
    /// The store's name.
    fn name(&self) -> &str;

    /// Puts `value` for `key` in the window starting at `window_start`;
    /// `None` deletes it. A window older than the retention period is
    /// ignored.
    fn put(&mut self, key: Bytes, value: Option<Bytes>, window_start: i64) -> Result<()>;

    /// [`WindowStore::put`] of a value, from borrowed bytes: a store that
    /// copies what it keeps (the in-memory store's segments) copies them
    /// once. By default, a put of copies.
    #[doc(hidden)]
    fn put_slices(&mut self, key: &[u8], value: &[u8], window_start: i64) -> Result<()> {
        self.put(
            Bytes::copy_from_slice(key),
            Some(Bytes::copy_from_slice(value)),
            window_start,
        )
    }

    /// The value of `key` in the window starting at `window_start`.
    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Bytes>>;

    /// The windows of `key` with `time_from <= start <= time_to` (both
    /// inclusive, as Kafka's `fetch(key, timeFrom, timeTo)`), by ascending
    /// start.
    fn fetch_key_range(&self, key: &[u8], time_from: i64, time_to: i64) -> Result<WindowIter<'_>>;

    /// [`WindowStore::fetch_key_range`] handing each window to `visit`, by
    /// ascending start, instead of collecting them: for a reader that
    /// decodes each value at once (a stream–stream join's partners), with
    /// nothing allocated in between.
    #[doc(hidden)]
    fn visit_key_range(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        visit: &mut dyn FnMut(i64, &Bytes),
    ) -> Result<()> {
        for item in self.fetch_key_range(key, time_from, time_to)? {
            let (start, value) = item?;
            visit(start, &value);
        }
        Ok(())
    }

    /// Every window of every key with `time_from <= start <= time_to`, by
    /// key then start.
    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowedKvIter<'_>>;

    /// Whether the store keeps its data on disk across restarts.
    fn persistent(&self) -> bool {
        false
    }

    /// Makes the writes so far durable.
    fn flush(&mut self) -> Result<()>;

    /// Hands the writes so far to the backend without waiting for them to
    /// become durable (see [`crate::KeyValueStore::flush_unsynced`]); by
    /// default [`Self::flush`].
    fn flush_unsynced(&mut self) -> Result<()> {
        self.flush()
    }

    /// Flushes and releases the store.
    fn close(&mut self) -> Result<()>;
}

/// A session window of one key: both bounds inclusive, `[start, end]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    /// The record key.
    pub key: Bytes,
    /// The session start (timestamp of its earliest record).
    pub start: i64,
    /// The session end (timestamp of its latest record).
    pub end: i64,
}

/// An iterator over `(session, value)`.
pub type SessionIter<'a> = Box<dyn Iterator<Item = Result<(SessionKey, Bytes)>> + 'a>;

/// A store of session aggregates, as Kafka Streams' `SessionStore`.
pub trait SessionStore: Send + fmt::Debug {
    /// The store's name.
    fn name(&self) -> &str;

    /// The sessions of `key` with `end >= earliest_session_end` and
    /// `start <= latest_session_start`: the ones a record at `t` merges
    /// with, for `earliest_session_end = t - gap` and
    /// `latest_session_start = t + gap`. By ascending start, then end.
    fn find_sessions(
        &self,
        key: &[u8],
        earliest_session_end: i64,
        latest_session_start: i64,
    ) -> Result<SessionIter<'_>>;

    /// The value of exactly this session.
    fn fetch_session(&self, session: &SessionKey) -> Result<Option<Bytes>>;

    /// Stores `value` for `session`.
    fn put(&mut self, session: SessionKey, value: Bytes) -> Result<()>;

    /// Removes `session` (after it was merged into another).
    fn remove(&mut self, session: &SessionKey) -> Result<()>;

    /// Makes the writes so far durable.
    fn flush(&mut self) -> Result<()>;

    /// Hands the writes so far to the backend without waiting for them to
    /// become durable (see [`crate::KeyValueStore::flush_unsynced`]); by
    /// default [`Self::flush`].
    fn flush_unsynced(&mut self) -> Result<()> {
        self.flush()
    }

    /// Flushes and releases the store.
    fn close(&mut self) -> Result<()>;
}
