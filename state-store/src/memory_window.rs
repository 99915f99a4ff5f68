//! The in-memory [`WindowStore`], with segment-wise retention, and
//! [`WindowedKvStore`], which exposes a window store as a
//! [`KeyValueStore`] over Kafka's windowed key layout so that the
//! changelogging, caching and restoration layers apply to it unchanged.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;

use crate::error::{Result, StoreError};
use crate::store::{BatchWrite, KeyValueStore, KvIter};
use crate::windowed::{WindowIter, WindowStore, WindowedKey, WindowedKvIter};

/// The number of segments a retention period is split into by default.
pub const DEFAULT_WINDOW_SEGMENTS: u32 = 3;

/// Bytes after the record key in a windowed store key: an 8-byte window
/// start and a 4-byte sequence number, both big-endian.
pub const WINDOWED_KEY_SUFFIX_LEN: usize = 12;

/// Encodes a windowed key in Kafka's `WindowKeySchema` layout:
///
/// ```text
/// +-----------------+----------------------------+-----------------------+
/// | key (n bytes)   | window start (i64, BE, 8)  | sequence (i32, BE, 4) |
/// +-----------------+----------------------------+-----------------------+
/// ```
///
/// The sequence number is always 0: duplicates are not retained. There is
/// no version byte, so that the changelog stays byte-compatible with Kafka
/// Streams' window-store changelogs.
pub fn encode_windowed_key(key: &[u8], window_start: i64) -> Bytes {
    let mut buf = Vec::with_capacity(key.len() + WINDOWED_KEY_SUFFIX_LEN);
    buf.extend_from_slice(key);
    put_windowed_key_suffix(&mut buf, window_start);
    Bytes::from(buf)
}

/// Appends what follows the record key in [`encode_windowed_key`]'s layout
/// (the window start, then a sequence number of 0) to `buf`, which holds
/// the record key: for callers that build keys in a reused buffer.
pub fn put_windowed_key_suffix(buf: &mut Vec<u8>, window_start: i64) {
    buf.extend_from_slice(&window_start.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes());
}

/// Decodes a key written by [`encode_windowed_key`]; `None` if it is too
/// short to hold the window start and sequence number.
pub fn decode_windowed_key(bytes: &[u8]) -> Option<(Bytes, i64)> {
    split_windowed_key(bytes).map(|(key, start)| (Bytes::copy_from_slice(key), start))
}

/// [`decode_windowed_key`] without copying: the record key borrowed from
/// `bytes`, and the window start.
pub fn split_windowed_key(bytes: &[u8]) -> Option<(&[u8], i64)> {
    let key_len = bytes.len().checked_sub(WINDOWED_KEY_SUFFIX_LEN)?;
    let (key, suffix) = bytes.split_at(key_len);
    let start: [u8; 8] = suffix.get(..8)?.try_into().ok()?;
    Some((key, i64::from_be_bytes(start)))
}

/// One segment: per key, its windows sorted by start. A point read or
/// write (the aggregation's read-modify-write of one window) is one hash
/// lookup and a binary search among the key's few windows; a key's windows
/// in a time range (sliding windows, fetches) are a slice of them; scans
/// over all keys collect and sort.
///
/// The bytes of a window put for the first time, and of its key when the
/// key is new to the segment, are copied into the segment's [`Arena`]:
/// the bytes a store keeps for each record of a stream–stream join then
/// come in a few large allocations that go with the segment, rather than
/// one per record that dropping the segment visits and frees. A window's
/// value replaced later keeps the bytes it was given, so the arena holds at
/// most one stale value per window.
#[derive(Debug, Default)]
struct Segment {
    windows: HashMap<Bytes, KeyWindows>,
    arena: Arena,
}

impl Segment {
    /// Sets the value of `key`'s window starting at `start`.
    fn put(&mut self, key: Given<'_>, start: i64, value: Given<'_>) {
        if let Some(windows) = self.windows.get_mut(key.as_slice()) {
            windows.put(start, value, &mut self.arena);
            return;
        }
        let key = self.arena.copy(key.as_slice());
        let value = self.arena.copy(value.as_slice());
        self.windows.insert(key, KeyWindows::One([(start, value)]));
    }

    /// Empties the segment, keeping the room of its table.
    fn clear(&mut self) {
        self.windows.clear();
        self.arena = Arena::default();
    }
}

/// A key or value handed to a put: its own bytes, or bytes borrowed from
/// the caller, copied where they are kept.
#[derive(Debug)]
enum Given<'a> {
    Owned(Bytes),
    Borrowed(&'a [u8]),
}

impl Given<'_> {
    fn as_slice(&self) -> &[u8] {
        match self {
            Self::Owned(bytes) => bytes,
            Self::Borrowed(slice) => slice,
        }
    }

    /// The bytes, to keep as they are (a replaced window's value).
    fn into_bytes(self) -> Bytes {
        match self {
            Self::Owned(bytes) => bytes,
            Self::Borrowed(slice) => Bytes::copy_from_slice(slice),
        }
    }
}

/// The first chunk of an [`Arena`], bytes.
const ARENA_FIRST_CHUNK: usize = 512;
/// The largest chunk of an [`Arena`], bytes: each chunk is twice the last
/// up to this.
const ARENA_LARGEST_CHUNK: usize = 16 * 1024;

/// Copies small byte strings into shared chunks: each copy is a slice of a
/// chunk, which is freed once the last of its slices is dropped. Strings
/// over a quarter of the largest chunk get an allocation of their own.
#[derive(Debug, Default)]
struct Arena {
    /// What is left of the current chunk.
    chunk: BytesMut,
    /// The size of the last chunk allocated.
    last_chunk: usize,
}

impl Arena {
    fn copy(&mut self, data: &[u8]) -> Bytes {
        if data.len() > ARENA_LARGEST_CHUNK / 4 {
            return Bytes::copy_from_slice(data);
        }
        if self.chunk.capacity() < data.len() {
            self.last_chunk = (self.last_chunk * 2).clamp(ARENA_FIRST_CHUNK, ARENA_LARGEST_CHUNK);
            self.chunk = BytesMut::with_capacity(self.last_chunk);
        }
        self.chunk.extend_from_slice(data);
        self.chunk.split().freeze()
    }
}

/// The windows of one key in one segment, sorted by start. Most keys have
/// a single window in a segment (a stream–stream join's record, a tumbling
/// window's aggregate): it is kept in place, so that putting it allocates
/// nothing and dropping the segment frees nothing for it.
#[derive(Debug)]
enum KeyWindows {
    One([(i64, Bytes); 1]),
    Many(Vec<(i64, Bytes)>),
}

impl KeyWindows {
    fn as_slice(&self) -> &[(i64, Bytes)] {
        match self {
            Self::One(one) => one,
            Self::Many(many) => many,
        }
    }

    /// Sets the value of the window starting at `start`: a new window's
    /// value is copied into `arena`, a replaced one's kept as given.
    fn put(&mut self, start: i64, value: Given<'_>, arena: &mut Arena) {
        match self {
            Self::One([(s, v)]) if *s == start => *v = value.into_bytes(),
            Self::One([(s, v)]) => {
                let held = (*s, std::mem::take(v));
                let new = (start, arena.copy(value.as_slice()));
                // As a vector grows at its first push.
                let mut many = Vec::with_capacity(4);
                if held.0 < start {
                    many.extend([held, new]);
                } else {
                    many.extend([new, held]);
                }
                *self = Self::Many(many);
            }
            Self::Many(many) => match many.binary_search_by_key(&start, |(s, _)| *s) {
                Ok(i) => many[i].1 = value.into_bytes(),
                Err(i) => many.insert(i, (start, arena.copy(value.as_slice()))),
            },
        }
    }

    /// Removes the window starting at `start`, if held; returns whether no
    /// window is left.
    fn remove(&mut self, start: i64) -> bool {
        match self {
            Self::One([(s, _)]) => *s == start,
            Self::Many(many) => {
                if let Ok(i) = many.binary_search_by_key(&start, |(s, _)| *s) {
                    many.remove(i);
                }
                many.is_empty()
            }
        }
    }
}

/// The part of `windows` (sorted by start) starting in `from..=to`.
fn in_time_range(windows: &[(i64, Bytes)], from: i64, to: i64) -> &[(i64, Bytes)] {
    let lo = windows.partition_point(|(start, _)| *start < from);
    let hi = windows.partition_point(|(start, _)| *start <= to);
    windows.get(lo..hi.max(lo)).unwrap_or_default()
}

/// Segments by id.
type Segments = BTreeMap<i64, Segment>;

/// A [`WindowStore`] held in memory, split into time segments.
///
/// The store's stream time is the largest window start put so far. A
/// window expires once its start is at or before `stream_time -
/// retention`, as in Kafka Streams' window stores: reads no longer return
/// it and a put of it is ignored. Memory is given back by segment: a
/// window start `s` lies in segment `s / segment_interval` (floor), with
/// `segment_interval = max(1, retention / segments)`, and every segment
/// below the one holding `stream_time - retention + 1` is dropped whole as
/// stream time advances, so an expired window is held at most one segment
/// interval longer. The table of the last segment dropped is emptied and
/// kept for the next segment, which would grow to about its size.
#[derive(Debug)]
pub struct InMemoryWindowStore {
    name: String,
    retention: i64,
    segment_interval: i64,
    observed_stream_time: Option<i64>,
    segments: Option<Segments>,
    /// An empty segment, with the room of one that expired.
    spare: Option<Segment>,
}

impl InMemoryWindowStore {
    /// An empty store keeping windows for `retention_ms`, in
    /// [`DEFAULT_WINDOW_SEGMENTS`] segments.
    pub fn new(name: impl Into<String>, retention_ms: i64) -> Self {
        Self::with_segments(name, retention_ms, DEFAULT_WINDOW_SEGMENTS)
    }

    /// An empty store keeping windows for `retention_ms` (at least 0),
    /// split into `segments` (at least 1) segments.
    pub fn with_segments(name: impl Into<String>, retention_ms: i64, segments: u32) -> Self {
        let retention = retention_ms.max(0);
        let segment_interval = (retention / i64::from(segments.max(1))).max(1);
        Self {
            name: name.into(),
            retention,
            segment_interval,
            observed_stream_time: None,
            segments: Some(BTreeMap::new()),
            spare: None,
        }
    }

    /// The retention period, milliseconds.
    pub fn retention(&self) -> i64 {
        self.retention
    }

    /// The length of a segment, milliseconds.
    pub fn segment_interval(&self) -> i64 {
        self.segment_interval
    }

    /// The largest window start put so far.
    pub fn observed_stream_time(&self) -> Option<i64> {
        self.observed_stream_time
    }

    /// The earliest window start not expired; `i64::MIN` before the first
    /// put.
    fn live_from(&self) -> i64 {
        self.observed_stream_time.map_or(i64::MIN, |t| {
            t.saturating_sub(self.retention).saturating_add(1)
        })
    }

    /// The segment holding window start `time`.
    pub fn segment_id(&self, time: i64) -> i64 {
        time.div_euclid(self.segment_interval)
    }

    /// The lowest segment still live; `None` before the first put.
    pub fn min_live_segment(&self) -> Option<i64> {
        self.observed_stream_time
            .map(|t| self.segment_id(t.saturating_sub(self.retention).saturating_add(1)))
    }

    /// The number of segments held.
    pub fn segment_count(&self) -> usize {
        self.segments.as_ref().map_or(0, BTreeMap::len)
    }

    fn segments(&self) -> Result<&Segments> {
        self.segments
            .as_ref()
            .ok_or_else(|| StoreError::closed(&self.name))
    }

    fn entries_in(&self, time_from: i64, time_to: i64) -> Result<Vec<(WindowedKey, Bytes)>> {
        let segments = self.segments()?;
        let time_from = time_from.max(self.live_from());
        if time_from > time_to {
            return Ok(Vec::new());
        }
        let from = self.segment_id(time_from);
        let to = self.segment_id(time_to);
        let mut out: Vec<(WindowedKey, Bytes)> = segments
            .range(from..=to)
            .flat_map(|(_, segment)| segment.windows.iter())
            .flat_map(|(key, windows)| {
                in_time_range(windows.as_slice(), time_from, time_to)
                    .iter()
                    .map(|(start, value)| {
                        (
                            WindowedKey {
                                key: key.clone(),
                                window_start: *start,
                            },
                            value.clone(),
                        )
                    })
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Puts `value` (`None`: deletes) in `key`'s window starting at
    /// `window_start`.
    fn write(&mut self, key: Given<'_>, value: Option<Given<'_>>, window_start: i64) -> Result<()> {
        if self.segments.is_none() {
            return Err(StoreError::closed(&self.name));
        }
        let observed = self
            .observed_stream_time
            .map_or(window_start, |t| t.max(window_start));
        self.observed_stream_time = Some(observed);
        let min_live = self.min_live_segment().unwrap_or(i64::MIN);
        let live_from = self.live_from();
        let segment_id = self.segment_id(window_start);
        let Some(segments) = self.segments.as_mut() else {
            return Err(StoreError::closed(&self.name));
        };
        // Drops every expired segment whole.
        while let Some(entry) = segments.first_entry() {
            if *entry.key() >= min_live {
                break;
            }
            let (id, mut expired) = entry.remove_entry();
            expired.clear();
            self.spare = Some(expired);
            tracing::trace!(store = %self.name, segment = id, min_live_segment = min_live, "dropped expired window segment");
        }
        if window_start < live_from {
            tracing::debug!(store = %self.name, window_start, stream_time = observed, "skipping put of an expired window");
            return Ok(());
        }
        match value {
            Some(value) => {
                // A new segment starts with room for as many keys as the
                // latest one holds: it would grow to about that anyway.
                let room = segments
                    .last_key_value()
                    .map_or(0, |(_, s)| s.windows.len());
                let spare = &mut self.spare;
                segments
                    .entry(segment_id)
                    .or_insert_with(|| {
                        let mut segment = spare.take().unwrap_or_default();
                        segment.windows.reserve(room);
                        segment
                    })
                    .put(key, window_start, value);
            }
            None => {
                if let Some(segment) = segments.get_mut(&segment_id) {
                    let key = key.as_slice();
                    if let Some(windows) = segment.windows.get_mut(key) {
                        if windows.remove(window_start) {
                            segment.windows.remove(key);
                        }
                    }
                    if segment.windows.is_empty() {
                        segments.remove(&segment_id);
                    }
                }
            }
        }
        Ok(())
    }
}

impl WindowStore for InMemoryWindowStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn put(&mut self, key: Bytes, value: Option<Bytes>, window_start: i64) -> Result<()> {
        self.write(Given::Owned(key), value.map(Given::Owned), window_start)
    }

    fn put_slices(&mut self, key: &[u8], value: &[u8], window_start: i64) -> Result<()> {
        self.write(
            Given::Borrowed(key),
            Some(Given::Borrowed(value)),
            window_start,
        )
    }

    fn fetch(&self, key: &[u8], window_start: i64) -> Result<Option<Bytes>> {
        let segments = self.segments()?;
        if window_start < self.live_from() {
            return Ok(None);
        }
        let segment_id = self.segment_id(window_start);
        let Some(windows) = segments.get(&segment_id).and_then(|s| s.windows.get(key)) else {
            return Ok(None);
        };
        let windows = windows.as_slice();
        Ok(windows
            .binary_search_by_key(&window_start, |(start, _)| *start)
            .ok()
            .map(|i| windows[i].1.clone()))
    }

    fn fetch_key_range(&self, key: &[u8], time_from: i64, time_to: i64) -> Result<WindowIter<'_>> {
        let mut out = Vec::new();
        self.visit_key_range(key, time_from, time_to, &mut |start, value| {
            out.push((start, value.clone()));
        })?;
        Ok(Box::new(out.into_iter().map(Ok)))
    }

    fn visit_key_range(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        visit: &mut dyn FnMut(i64, &Bytes),
    ) -> Result<()> {
        let segments = self.segments()?;
        let time_from = time_from.max(self.live_from());
        if time_from <= time_to {
            let from = self.segment_id(time_from);
            let to = self.segment_id(time_to);
            for segment in segments.range(from..=to).map(|(_, s)| s) {
                if let Some(windows) = segment.windows.get(key) {
                    for (start, value) in in_time_range(windows.as_slice(), time_from, time_to) {
                        visit(*start, value);
                    }
                }
            }
        }
        Ok(())
    }

    fn fetch_all(&self, time_from: i64, time_to: i64) -> Result<WindowedKvIter<'_>> {
        let out = self.entries_in(time_from, time_to)?;
        Ok(Box::new(out.into_iter().map(Ok)))
    }

    fn flush(&mut self) -> Result<()> {
        self.segments().map(|_| ())
    }

    fn close(&mut self) -> Result<()> {
        self.spare = None;
        if self.segments.take().is_some() {
            tracing::debug!(store = %self.name, "closed in-memory window store");
        }
        Ok(())
    }
}

/// A [`WindowStore`] seen as a [`KeyValueStore`] whose keys are windowed
/// keys in the layout of [`encode_windowed_key`], ordered by those bytes.
///
/// Wrapping it in [`crate::ChangeLoggingStore`] gives a changelog with
/// Kafka's window-store keys, and [`crate::restore`] into it replays one.
/// A key too short to hold a window start is rejected with
/// [`StoreError::InvalidWindowedKey`].
#[derive(Debug)]
pub struct WindowedKvStore<W> {
    inner: W,
}

impl<W: WindowStore> WindowedKvStore<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        Self { inner }
    }

    /// The window store.
    pub fn inner(&self) -> &W {
        &self.inner
    }

    /// The window store, mutably.
    pub fn inner_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    fn invalid(&self, key: &[u8]) -> StoreError {
        StoreError::InvalidWindowedKey {
            store: self.inner.name().to_owned(),
            len: key.len(),
        }
    }

    /// The record key (sharing `key`'s buffer) and the window start.
    fn decode(&self, key: &Bytes) -> Result<(Bytes, i64)> {
        let (record_key, start) = split_windowed_key(key).ok_or_else(|| self.invalid(key))?;
        Ok((key.slice(..record_key.len()), start))
    }

    fn encoded_all(&self) -> Result<Vec<(Bytes, Bytes)>> {
        let mut out = Vec::new();
        for item in self.inner.fetch_all(i64::MIN, i64::MAX)? {
            let (wk, value) = item?;
            out.push((encode_windowed_key(&wk.key, wk.window_start), value));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }
}

impl<W: WindowStore> KeyValueStore for WindowedKvStore<W> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn persistent(&self) -> bool {
        self.inner.persistent()
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let (key, start) = split_windowed_key(key).ok_or_else(|| self.invalid(key))?;
        self.inner.fetch(key, start)
    }

    fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
        let (key, start) = self.decode(&key)?;
        self.inner.put(key, Some(value), start)
    }

    fn put_slices(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        let (key, start) = split_windowed_key(key).ok_or_else(|| self.invalid(key))?;
        self.inner.put_slices(key, value, start)
    }

    fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
        let (key, start) = self.decode(&key)?;
        let old = self.inner.fetch(&key, start)?;
        if old.is_some() {
            self.inner.put(key, None, start)?;
        }
        Ok(old)
    }

    fn write_batch(&mut self, batch: &[BatchWrite]) -> Result<()> {
        for (key, value) in batch {
            let (key, start) = self.decode(key)?;
            self.inner.put(key, value.clone(), start)?;
        }
        Ok(())
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        let entries = self.encoded_all()?;
        Ok(Box::new(
            entries
                .into_iter()
                .filter(move |(k, _)| k.as_ref() >= from && k.as_ref() < to)
                .map(Ok)
                .collect::<Vec<_>>()
                .into_iter(),
        ))
    }

    fn all(&self) -> Result<KvIter<'_>> {
        Ok(Box::new(self.encoded_all()?.into_iter().map(Ok)))
    }

    fn fetch_windows(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
    ) -> Result<Option<Vec<(i64, Bytes)>>> {
        let windows = self.inner.fetch_key_range(key, time_from, time_to)?;
        Ok(Some(windows.collect::<Result<_>>()?))
    }

    fn visit_windows(
        &self,
        key: &[u8],
        time_from: i64,
        time_to: i64,
        visit: &mut dyn FnMut(i64, &Bytes),
    ) -> Result<bool> {
        self.inner
            .visit_key_range(key, time_from, time_to, visit)
            .map(|()| true)
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        Ok(self.inner.fetch_all(i64::MIN, i64::MAX)?.count() as u64)
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
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    /// The brute-force model: every put kept, liveness decided at read time
    /// by Kafka's rule: expired once the start is at or before stream time
    /// minus retention.
    #[derive(Debug, Default)]
    struct Model {
        map: BTreeMap<(Bytes, i64), Bytes>,
        observed: Option<i64>,
    }

    impl Model {
        fn live(&self, retention: i64, start: i64) -> bool {
            match self.observed {
                None => true,
                Some(t) => start > t - retention,
            }
        }

        fn put(&mut self, retention: i64, key: Bytes, value: Option<Bytes>, start: i64) {
            self.observed = Some(self.observed.map_or(start, |t| t.max(start)));
            if !self.live(retention, start) {
                return;
            }
            match value {
                Some(v) => {
                    self.map.insert((key, start), v);
                }
                None => {
                    self.map.remove(&(key, start));
                }
            }
        }

        fn fetch_all(&self, retention: i64, from: i64, to: i64) -> Vec<(Bytes, i64, Bytes)> {
            self.map
                .iter()
                .filter(|((_, s), _)| *s >= from && *s <= to && self.live(retention, *s))
                .map(|((k, s), v)| (k.clone(), *s, v.clone()))
                .collect()
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, i64, Option<u8>),
        FetchKey(u8, i64, i64),
        FetchAll(i64, i64),
        Get(u8, i64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u8..4, 0i64..400, proptest::option::weighted(0.8, any::<u8>()))
                .prop_map(|(k, s, v)| Op::Put(k, s, v)),
            1 => (0u8..4, 0i64..400, 0i64..400).prop_map(|(k, a, b)| Op::FetchKey(k, a, b)),
            1 => (0i64..400, 0i64..400).prop_map(|(a, b)| Op::FetchAll(a, b)),
            1 => (0u8..4, 0i64..400).prop_map(|(k, s)| Op::Get(k, s)),
        ]
    }

    fn key(k: u8) -> Bytes {
        Bytes::from(vec![b'k'; usize::from(k)])
    }

    proptest! {
        #[test]
        fn matches_brute_force_model(
            retention in 1i64..200,
            segments in 1u32..5,
            ops in proptest::collection::vec(op(), 1..200),
        ) {
            let mut store = InMemoryWindowStore::with_segments("w", retention, segments);
            let mut model = Model::default();
            for op in ops {
                match op {
                    Op::Put(k, s, v) => {
                        let v = v.map(|b| Bytes::from(vec![b]));
                        store.put(key(k), v.clone(), s).unwrap();
                        model.put(retention, key(k), v, s);
                    }
                    Op::FetchKey(k, a, b) => {
                        let got: Vec<(i64, Bytes)> =
                            store.fetch_key_range(&key(k), a, b).unwrap().map(Result::unwrap).collect();
                        let want: Vec<(i64, Bytes)> = model
                            .fetch_all(retention, a, b)
                            .into_iter()
                            .filter(|(mk, _, _)| *mk == key(k))
                            .map(|(_, s, v)| (s, v))
                            .collect();
                        let mut visited = Vec::new();
                        store
                            .visit_key_range(&key(k), a, b, &mut |s, v| visited.push((s, v.clone())))
                            .unwrap();
                        prop_assert_eq!(&visited, &want);
                        prop_assert_eq!(got, want);
                    }
                    Op::FetchAll(a, b) => {
                        let got: Vec<(Bytes, i64, Bytes)> = store
                            .fetch_all(a, b)
                            .unwrap()
                            .map(Result::unwrap)
                            .map(|(wk, v)| (wk.key, wk.window_start, v))
                            .collect();
                        prop_assert_eq!(got, model.fetch_all(retention, a, b));
                    }
                    Op::Get(k, s) => {
                        let want = model
                            .fetch_all(retention, s, s)
                            .into_iter()
                            .find(|(mk, _, _)| *mk == key(k))
                            .map(|(_, _, v)| v);
                        prop_assert_eq!(store.fetch(&key(k), s).unwrap(), want);
                    }
                }
                // Expired segments are dropped whole: at most the live ones remain.
                if let Some(min) = store.min_live_segment() {
                    let max = store.segment_id(store.observed_stream_time().unwrap());
                    prop_assert!(store.segment_count() as i64 <= max - min + 1);
                }
            }
        }

        #[test]
        fn arena_copies_are_the_bytes_given(
            sizes in proptest::collection::vec(0usize..6_000, 1..60),
        ) {
            let mut arena = Arena::default();
            let mut copies = Vec::new();
            for (i, size) in sizes.iter().enumerate() {
                let data: Vec<u8> = (0..*size).map(|j| (i + j) as u8).collect();
                copies.push((arena.copy(&data), data));
            }
            // Later copies leave the earlier ones as they were.
            for (copy, data) in &copies {
                prop_assert_eq!(&copy[..], &data[..]);
            }
        }

        #[test]
        fn windowed_key_round_trips(k in proptest::collection::vec(any::<u8>(), 0..20), start in any::<i64>()) {
            let encoded = encode_windowed_key(&k, start);
            prop_assert_eq!(encoded.len(), k.len() + WINDOWED_KEY_SUFFIX_LEN);
            prop_assert_eq!(decode_windowed_key(&encoded), Some((Bytes::from(k), start)));
        }
    }

    #[test]
    fn put_into_expired_segment_is_ignored() {
        let mut store = InMemoryWindowStore::with_segments("w", 100, 2);
        store
            .put(Bytes::from("a"), Some(Bytes::from("1")), 0)
            .unwrap();
        store
            .put(Bytes::from("a"), Some(Bytes::from("2")), 500)
            .unwrap();
        assert_eq!(store.fetch(b"a", 0).unwrap(), None);
        store
            .put(Bytes::from("a"), Some(Bytes::from("3")), 10)
            .unwrap();
        assert_eq!(store.fetch(b"a", 10).unwrap(), None);
        assert_eq!(store.segment_count(), 1);
    }

    #[test]
    fn kv_view_puts_slices_as_it_puts_bytes() {
        let mut kv = WindowedKvStore::new(InMemoryWindowStore::new("w", 1_000));
        let key = encode_windowed_key(b"k", 5);
        kv.put_slices(&key, b"one").unwrap();
        assert_eq!(kv.get(&key).unwrap(), Some(Bytes::from("one")));
        // A second window of the key, then the first replaced.
        kv.put_slices(&encode_windowed_key(b"k", 9), b"two")
            .unwrap();
        kv.put_slices(&key, b"three").unwrap();
        let mut visited = Vec::new();
        assert!(kv
            .visit_windows(b"k", 0, 10, &mut |s, v| visited.push((s, v.clone())))
            .unwrap());
        assert_eq!(
            visited,
            [(5, Bytes::from("three")), (9, Bytes::from("two"))]
        );
        assert!(kv.put_slices(b"short", b"x").is_err());
    }

    #[test]
    fn kv_view_uses_windowed_key_layout() {
        let mut kv = WindowedKvStore::new(InMemoryWindowStore::new("w", 1_000));
        kv.put(encode_windowed_key(b"b", 5), Bytes::from("x"))
            .unwrap();
        kv.put(encode_windowed_key(b"a", 7), Bytes::from("y"))
            .unwrap();
        assert_eq!(kv.inner().fetch(b"b", 5).unwrap(), Some(Bytes::from("x")));
        let all: Vec<_> = kv.all().unwrap().map(Result::unwrap).collect();
        assert_eq!(all[0].0, encode_windowed_key(b"a", 7));
        assert!(kv.put(Bytes::from("short"), Bytes::from("z")).is_err());
        assert_eq!(
            kv.delete(encode_windowed_key(b"a", 7)).unwrap(),
            Some(Bytes::from("y"))
        );
        assert_eq!(kv.approximate_num_entries().unwrap(), 1);
    }
}
