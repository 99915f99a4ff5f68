//! `suppress`: one final result per window of a windowed aggregation
//! ([`Suppressed::until_window_closes`]), or at most one update per key
//! and time limit ([`Suppressed::until_time_limit`]).

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use streams_core::{
    Processor, ProcessorContext, PunctuationType, Record, Result, Serde, SerdeError, StoreBackend,
    StoreBuilder, StreamsError, Windowed,
};

use crate::change::Change;
use crate::ktable::KTable;
use crate::options::SerdeArc;

/// What a full buffer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenFull {
    /// Emit the oldest buffered updates early, until it fits again.
    EmitEarly,
    /// Stop the application with [`StreamsError::SuppressionBufferFull`].
    ShutDown,
}

/// How much a suppression may buffer, and what it does when full (Kafka's
/// `Suppressed.BufferConfig`): [`BufferConfig::unbounded`], or bounded by
/// records and/or bytes and then, by default, emitting the oldest updates
/// early when full (Kafka's `EagerBufferConfig`);
/// [`BufferConfig::shut_down_when_full`] makes it strict.
///
/// The bytes of an entry are its serialized key plus its serialized value
/// (value, timestamp and buffer time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferConfig {
    max_records: Option<u64>,
    max_bytes: Option<u64>,
    when_full: WhenFull,
}

impl BufferConfig {
    /// A buffer limited only by memory (never emits early, never shuts
    /// down).
    pub fn unbounded() -> Self {
        Self {
            max_records: None,
            max_bytes: None,
            when_full: WhenFull::ShutDown,
        }
    }

    /// At most `n` entries, emitting the oldest early when full.
    pub fn max_records(n: u64) -> Self {
        Self::unbounded().emit_early_when_full().with_max_records(n)
    }

    /// At most `n` bytes, emitting the oldest early when full.
    pub fn max_bytes(n: u64) -> Self {
        Self::unbounded().emit_early_when_full().with_max_bytes(n)
    }

    /// Also at most `n` entries.
    pub fn with_max_records(mut self, n: u64) -> Self {
        self.max_records = Some(n);
        self
    }

    /// Also at most `n` bytes.
    pub fn with_max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = Some(n);
        self
    }

    /// When full, emit the oldest buffered updates early (before their
    /// time) until the buffer fits its limits again.
    pub fn emit_early_when_full(mut self) -> Self {
        self.when_full = WhenFull::EmitEarly;
        self
    }

    /// When full, stop the application with
    /// [`StreamsError::SuppressionBufferFull`] rather than emit anything
    /// early (Kafka's `shutDownWhenFull`).
    pub fn shut_down_when_full(self) -> StrictBufferConfig {
        StrictBufferConfig {
            max_records: self.max_records,
            max_bytes: self.max_bytes,
        }
    }
}

impl From<StrictBufferConfig> for BufferConfig {
    fn from(strict: StrictBufferConfig) -> Self {
        Self {
            max_records: strict.max_records,
            max_bytes: strict.max_bytes,
            when_full: WhenFull::ShutDown,
        }
    }
}

/// A buffer that never emits early (Kafka's `StrictBufferConfig`): either
/// unbounded, or bounded and stopping the application with
/// [`StreamsError::SuppressionBufferFull`] when an update would exceed a
/// bound (Kafka's `shutDownWhenFull`). `until_window_closes` takes only
/// strict buffers, since a final result emitted early would not be final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrictBufferConfig {
    max_records: Option<u64>,
    max_bytes: Option<u64>,
}

impl StrictBufferConfig {
    /// A buffer limited only by memory.
    pub fn unbounded() -> Self {
        Self {
            max_records: None,
            max_bytes: None,
        }
    }

    /// At most `n` entries; one more stops the application.
    pub fn max_records(n: u64) -> Self {
        Self::unbounded().with_max_records(n)
    }

    /// At most `n` bytes; more stops the application.
    pub fn max_bytes(n: u64) -> Self {
        Self::unbounded().with_max_bytes(n)
    }

    /// Also at most `n` entries.
    pub fn with_max_records(mut self, n: u64) -> Self {
        self.max_records = Some(n);
        self
    }

    /// Also at most `n` bytes.
    pub fn with_max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = Some(n);
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    UntilWindowCloses,
    UntilTimeLimit { limit_ms: i64 },
}

/// What [`KTable::suppress`] holds back (Kafka's `Suppressed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    name: Option<String>,
    mode: Mode,
    buffer: BufferConfig,
}

impl Suppressed {
    /// Holds every update of a window until the window closes (stream time
    /// reaches its end plus the grace period), then emits its final value
    /// once. Only after a windowed aggregation.
    pub fn until_window_closes(buffer: StrictBufferConfig) -> Self {
        Self {
            name: None,
            mode: Mode::UntilWindowCloses,
            buffer: buffer.into(),
        }
    }

    /// Rate-limits the updates of each key: a key's first update since
    /// its last emit starts its buffer time (that update's timestamp);
    /// later updates replace the buffered value but keep that time; the
    /// latest value is emitted once stream time reaches buffer time plus
    /// `limit`. On any table.
    pub fn until_time_limit(limit: Duration, buffer: impl Into<BufferConfig>) -> Self {
        Self {
            name: None,
            mode: Mode::UntilTimeLimit {
                limit_ms: i64::try_from(limit.as_millis()).unwrap_or(i64::MAX),
            },
            buffer: buffer.into(),
        }
    }

    /// Names the suppression node; its buffer store is `<name>-store`.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<K, V> KTable<Windowed<K>, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Marks the table as the output of a windowed aggregation with this
    /// grace period: `until_window_closes` closes a window at its end plus
    /// `grace_ms`.
    pub(crate) fn with_window_grace(self, grace_ms: i64) -> Self {
        let end: WindowEndFn<Windowed<K>> = Arc::new(|key: &Windowed<K>| key.window.end);
        self.with_window(grace_ms, end)
    }
}

/// The end of the window of a windowed key.
pub(crate) type WindowEndFn<K> = Arc<dyn Fn(&K) -> i64 + Send + Sync>;

impl<K, V> KTable<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Holds updates back (`KTABLE-SUPPRESS`), as `suppressed` says:
    ///
    /// - [`Suppressed::until_window_closes`]: only the final result of each
    ///   window, its latest value with its timestamp, once stream time
    ///   reaches `window end + grace`, exactly once. Windows close in
    ///   order of their end, then of their serialized key. It must directly
    ///   follow a windowed aggregation (whose grace period it uses).
    /// - [`Suppressed::until_time_limit`]: at most one update per key and
    ///   time limit, the latest, once stream time reaches the key's buffer
    ///   time plus the limit. A deleted key is emitted as a tombstone.
    ///
    /// The buffer is a changelogged in-memory key-value store
    /// (`KTABLE-SUPPRESS-STATE-STORE-<n>`, or `<name>-store`), so buffered
    /// updates survive a restart. Updates are emitted when a record
    /// advances stream time, and also when stream time advances with no
    /// record (`task.idle.wall.clock.advance.ms`). A bounded buffer that
    /// fills either emits its oldest entries early or stops the
    /// application with [`StreamsError::SuppressionBufferFull`], as its
    /// [`BufferConfig`] says. A versioned table cannot be suppressed
    /// (building fails), as in Kafka.
    pub fn suppress(&self, suppressed: Suppressed) -> KTable<K, V> {
        let builder = self.handle().clone();
        let name = builder.ktable_name(
            suppressed.name.clone().map(crate::options::Named::as_),
            "SUPPRESS",
        );
        let store = match &suppressed.name {
            Some(n) => format!("{n}-store"),
            None => builder.store_name("KTABLE-SUPPRESS-"),
        };
        if self.is_versioned() {
            // Kafka's `TopologyException`.
            builder.fail(format!(
                "suppress '{name}': suppress() is only supported for non-versioned tables \
                 (versioned semantics may be inherited from upstream)"
            ));
        }
        // As Kafka's suppression: the parent sends old values.
        self.old_values().enable(true);
        let (key_serde, value_serde) = self.serdes();
        let due: Due<K> = match suppressed.mode {
            Mode::UntilWindowCloses => {
                let Some((grace, end)) = self.window() else {
                    builder.fail(format!(
                        "suppress '{name}': until_window_closes needs a windowed aggregation directly upstream"
                    ));
                    return KTable::new(builder, name, key_serde, value_serde, None);
                };
                Due::WindowEnd { grace, end }
            }
            Mode::UntilTimeLimit { limit_ms } => Due::TimeLimit { limit_ms },
        };
        let (Some(ks), Some(vs)) = (key_serde, value_serde) else {
            builder.fail(format!(
                "suppress '{name}': the table's key or value serde is unknown; give them in the aggregation's Materialized"
            ));
            return KTable::new(builder, name, None, None, None);
        };
        let store_for = store.clone();
        let (ks_for, vs_for) = (ks.clone(), vs.clone());
        let buffer = suppressed.buffer;
        builder.add_processor(
            &name,
            move || {
                Suppress::<K, V>::new(
                    store_for.clone(),
                    due.clone(),
                    buffer,
                    ks_for.clone(),
                    BufferedSerde::new(vs_for.clone()),
                )
            },
            &[self.node_name()],
        );
        let store_builder =
            StoreBuilder::key_value(&store, ks.clone(), BufferedSerde::new(vs.clone()))
                .with_backend(StoreBackend::InMemory)
                .with_caching_disabled();
        builder.apply(|t| {
            t.add_state_store(store_builder, &[&name])?;
            Ok(())
        });
        let table = KTable::new(builder.clone(), name, Some(ks), Some(vs), None);
        match self.window() {
            Some((grace, end)) => table.with_window(grace, end),
            None => table,
        }
    }
}

/// When a buffered key is due.
enum Due<K> {
    /// At its window's end plus grace.
    WindowEnd { grace: i64, end: WindowEndFn<K> },
    /// At its buffer time plus the limit.
    TimeLimit { limit_ms: i64 },
}

impl<K> Clone for Due<K> {
    fn clone(&self) -> Self {
        match self {
            Self::WindowEnd { grace, end } => Self::WindowEnd {
                grace: *grace,
                end: end.clone(),
            },
            Self::TimeLimit { limit_ms } => Self::TimeLimit {
                limit_ms: *limit_ms,
            },
        }
    }
}

/// A buffered update: the latest value (`None`: a delete), its timestamp,
/// and the buffer time (the timestamp of the key's first update since its
/// last emit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Buffered<V> {
    pub(crate) value: Option<V>,
    pub(crate) timestamp: i64,
    pub(crate) buffer_time: i64,
}

/// The format version of [`BufferedSerde`].
const BUFFERED_FORMAT_VERSION: u8 = 1;

/// Writes a [`Buffered`] update to the suppression buffer's store and
/// changelog. Layout: a version byte (1), the timestamp (i64, big-endian),
/// the buffer time (i64, big-endian), a flag byte (1: a value follows, 0: a
/// delete), the value's bytes.
pub(crate) struct BufferedSerde<V> {
    inner: SerdeArc<V>,
}

impl<V> Clone for BufferedSerde<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<V> fmt::Debug for BufferedSerde<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BufferedSerde").finish_non_exhaustive()
    }
}

impl<V> BufferedSerde<V> {
    pub(crate) fn new(inner: SerdeArc<V>) -> Self {
        Self { inner }
    }
}

impl<V: 'static> Serde<Buffered<V>> for BufferedSerde<V> {
    fn serialize(&self, topic: &str, value: &Buffered<V>) -> Result<Bytes, SerdeError> {
        let inner = match &value.value {
            Some(v) => Some(self.inner.serialize(topic, v)?),
            None => None,
        };
        let mut out = BytesMut::with_capacity(18 + inner.as_ref().map_or(0, Bytes::len));
        out.put_u8(BUFFERED_FORMAT_VERSION);
        out.put_i64(value.timestamp);
        out.put_i64(value.buffer_time);
        out.put_u8(u8::from(inner.is_some()));
        if let Some(inner) = inner {
            out.put_slice(&inner);
        }
        Ok(out.freeze())
    }

    fn deserialize(&self, topic: &str, bytes: &Bytes) -> Result<Buffered<V>, SerdeError> {
        let bad = |reason: String| SerdeError::deserialize::<Buffered<V>>(topic, reason);
        let (Some(&version), Some(head), Some(&flag)) =
            (bytes.first(), bytes.get(1..17), bytes.get(17))
        else {
            return Err(bad(format!("{} bytes, need at least 18", bytes.len())));
        };
        if version != BUFFERED_FORMAT_VERSION {
            return Err(bad(format!("unknown format version {version}")));
        }
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&head[..8]);
        let mut bt = [0u8; 8];
        bt.copy_from_slice(&head[8..]);
        let value = match flag {
            0 => None,
            1 => Some(self.inner.deserialize(topic, &bytes.slice(18..))?),
            other => return Err(bad(format!("unknown value flag {other}"))),
        };
        Ok(Buffered {
            value,
            timestamp: i64::from_be_bytes(ts),
            buffer_time: i64::from_be_bytes(bt),
        })
    }
}

/// Buffers table updates until they are due (Kafka's
/// `KTableSuppressProcessor`). Its state is shared with its stream-time
/// punctuator, which emits what becomes due when stream time moves with no
/// record reaching the node.
pub(crate) struct Suppress<K, V> {
    state: Arc<Mutex<SuppressState<K, V>>>,
}

impl<K, V> fmt::Debug for Suppress<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suppress").finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K, V> Suppress<K, V> {
    fn new(
        store: String,
        due: Due<K>,
        buffer: BufferConfig,
        key_serde: SerdeArc<K>,
        value_serde: BufferedSerde<V>,
    ) -> Self {
        Self {
            state: Arc::new(Mutex::new(SuppressState {
                store,
                due,
                buffer,
                key_serde,
                value_serde,
                index: BTreeSet::new(),
                entries: HashMap::new(),
                bytes: 0,
                observed: None,
            })),
        }
    }
}

struct SuppressState<K, V> {
    store: String,
    due: Due<K>,
    buffer: BufferConfig,
    key_serde: SerdeArc<K>,
    value_serde: BufferedSerde<V>,
    /// Buffered keys by (due time, serialized key).
    index: BTreeSet<(i64, Bytes)>,
    /// Per buffered key: its due time and its size in bytes.
    entries: HashMap<Bytes, (i64, usize)>,
    bytes: u64,
    /// The largest timestamp of the updates received.
    observed: Option<i64>,
}

impl<K, V> SuppressState<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn due_time(&self, key: &K, buffered: &Buffered<V>) -> i64 {
        match &self.due {
            Due::WindowEnd { grace, end } => end(key).saturating_add(*grace),
            Due::TimeLimit { limit_ms } => buffered.buffer_time.saturating_add(*limit_ms),
        }
    }

    fn size(&self, key: &Bytes, buffered: &Buffered<V>) -> Result<usize> {
        if self.buffer.max_bytes.is_none() {
            return Ok(0);
        }
        Ok(key.len() + self.value_serde.serialize(&self.store, buffered)?.len())
    }

    fn track(&mut self, key: Bytes, due: i64, size: usize) {
        if let Some((old_due, old_size)) = self.entries.insert(key.clone(), (due, size)) {
            self.index.remove(&(old_due, key.clone()));
            self.bytes -= old_size as u64;
        }
        self.index.insert((due, key));
        self.bytes += size as u64;
    }

    fn untrack(&mut self, key: &Bytes) {
        if let Some((due, size)) = self.entries.remove(key) {
            self.index.remove(&(due, key.clone()));
            self.bytes -= size as u64;
        }
    }

    /// The limit the buffer exceeds, if any.
    fn over_limit(&self) -> Option<String> {
        if let Some(max) = self.buffer.max_records {
            if self.entries.len() as u64 > max {
                return Some(format!("max_records = {max}"));
            }
        }
        if let Some(max) = self.buffer.max_bytes {
            if self.bytes > max {
                return Some(format!("max_bytes = {max}"));
            }
        }
        None
    }

    /// Emits and removes the entry first in the index.
    fn emit_first(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        let Some((_, bytes)) = self.index.first().cloned() else {
            return Ok(());
        };
        self.untrack(&bytes);
        let key = self.key_serde.deserialize(&self.store, &bytes)?;
        let buffered = ctx
            .key_value_store::<K, Buffered<V>>(&self.store)?
            .delete(&key)?;
        if let Some(buffered) = buffered {
            ctx.forward(Record::from_parts(
                Some(key),
                Some(Change::new(buffered.value, None)),
                buffered.timestamp,
            ))?;
        }
        Ok(())
    }

    /// Emits every entry due at the time this node can trust: the largest
    /// timestamp it has received (Kafka's observed stream time), or the
    /// task's stream time at its last cache flush if later. Not the task's
    /// stream time itself: with a record cache upstream, a window's last
    /// update can still sit in the cache when stream time passes its end.
    fn emit_due_now(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        // `None` orders below every time: the later of the two known ones.
        let Some(now) = self.observed.max(ctx.flushed_stream_time()) else {
            return Ok(());
        };
        self.emit_due(ctx, now)
    }

    /// Emits every entry due at `stream_time`.
    fn emit_due(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        stream_time: i64,
    ) -> Result<()> {
        while self
            .index
            .first()
            .is_some_and(|(due, _)| *due <= stream_time)
        {
            self.emit_first(ctx)?;
        }
        Ok(())
    }

    /// Applies the buffer's limits after an update.
    fn enforce_limits(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        while let Some(limit) = self.over_limit() {
            match self.buffer.when_full {
                WhenFull::ShutDown => {
                    tracing::error!(processor = %ctx.node_name(), store = %self.store, %limit, "suppression buffer full; stopping");
                    return Err(StreamsError::SuppressionBufferFull {
                        processor: ctx.node_name().to_owned(),
                        store: self.store.clone(),
                        limit,
                    });
                }
                WhenFull::EmitEarly => {
                    tracing::debug!(processor = %ctx.node_name(), %limit, "suppression buffer full; emitting its oldest entry early");
                    self.emit_first(ctx)?;
                }
            }
        }
        Ok(())
    }
}

impl<K, V> Processor<K, Change<V>, K, Change<V>> for Suppress<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<V>>) -> Result<()> {
        let mut state = lock(&self.state);
        // The store is restored before init: rebuild the index from it.
        let entries: Vec<(K, Buffered<V>)> = ctx
            .key_value_store::<K, Buffered<V>>(&state.store)?
            .all()?
            .collect::<Result<_>>()?;
        for (key, buffered) in entries {
            let bytes = state.key_serde.serialize(&state.store, &key)?;
            let due = state.due_time(&key, &buffered);
            let size = state.size(&bytes, &buffered)?;
            state.track(bytes, due, size);
        }
        drop(state);
        // Emits what becomes due when stream time moves with no record
        // reaching this node, once the task's caches have been flushed up to
        // that time: at a commit, and when `task.idle.wall.clock.advance.ms`
        // moves the stream time of idle inputs (which flushes them first).
        let shared = self.state.clone();
        ctx.schedule(
            Duration::from_millis(1),
            PunctuationType::StreamTime,
            move |ctx: &mut ProcessorContext<'_, K, Change<V>>, _now| {
                lock(&shared).emit_due_now(ctx)
            },
        )?;
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        record: Record<K, Change<V>>,
    ) -> Result<()> {
        lock(&self.state).process(ctx, record)
    }
}

impl<K, V> SuppressState<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<V>>,
        record: Record<K, Change<V>>,
    ) -> Result<()> {
        let Some(key) = &record.key else {
            tracing::debug!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping update with a null key");
            return Ok(());
        };
        let bytes = self.key_serde.serialize(&self.store, key)?;
        let new = record.value.as_ref().and_then(|c| c.new.clone());
        match (&self.due, new) {
            // A window's deleted aggregate: nothing left to emit for it.
            (Due::WindowEnd { .. }, None) => {
                ctx.key_value_store::<K, Buffered<V>>(&self.store)?
                    .delete(key)?;
                self.untrack(&bytes);
            }
            (_, value) => {
                let buffer_time = match self.entries.contains_key(&bytes) {
                    true => ctx
                        .key_value_store::<K, Buffered<V>>(&self.store)?
                        .get(key)?
                        .map_or(record.timestamp, |b| b.buffer_time),
                    false => record.timestamp,
                };
                let buffered = Buffered {
                    value,
                    timestamp: record.timestamp,
                    buffer_time,
                };
                let due = self.due_time(key, &buffered);
                let size = self.size(&bytes, &buffered)?;
                ctx.key_value_store::<K, Buffered<V>>(&self.store)?
                    .put(key, &buffered)?;
                self.track(bytes, due, size);
            }
        }
        self.observed = Some(
            self.observed
                .map_or(record.timestamp, |t| t.max(record.timestamp)),
        );
        self.emit_due_now(ctx)?;
        self.enforce_limits(ctx)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use streams_core::Serdes;

    use super::*;

    proptest! {
        #[test]
        fn buffered_values_round_trip(
            value in proptest::option::of(any::<i64>()),
            timestamp in any::<i64>(),
            buffer_time in any::<i64>(),
        ) {
            let serde = BufferedSerde::new(Arc::new(Serdes::i64()));
            let buffered = Buffered { value, timestamp, buffer_time };
            let bytes = serde.serialize("t", &buffered).unwrap();
            prop_assert_eq!(bytes.len(), 18 + if value.is_some() { 8 } else { 0 });
            prop_assert_eq!(serde.deserialize("t", &bytes).unwrap(), buffered);
        }
    }

    /// Version-1 fixtures: a buffered `i64` 42 (timestamp 1000, buffer
    /// time 900), and a buffered delete.
    #[test]
    fn version_1_fixtures_read() {
        let serde = BufferedSerde::new(Arc::new(Serdes::i64()));
        let value =
            Bytes::from_static(include_bytes!("../tests/fixtures/suppress-buffered-v1.bin"));
        assert_eq!(
            serde.deserialize("t", &value).unwrap(),
            Buffered {
                value: Some(42),
                timestamp: 1000,
                buffer_time: 900
            }
        );
        let tombstone = Bytes::from_static(include_bytes!(
            "../tests/fixtures/suppress-buffered-tombstone-v1.bin"
        ));
        assert_eq!(
            serde.deserialize("t", &tombstone).unwrap(),
            Buffered {
                value: None,
                timestamp: 1000,
                buffer_time: 900
            }
        );
    }

    #[test]
    fn corrupt_buffered_values_are_errors() {
        let serde = BufferedSerde::new(Arc::new(Serdes::i64()));
        for bytes in [
            &b""[..],
            &[1; 17][..],
            &[2; 18][..],
            &[[1u8].as_slice(), &[0; 16], &[7]].concat()[..],
        ] {
            assert!(serde
                .deserialize("t", &Bytes::copy_from_slice(bytes))
                .is_err());
        }
    }
}
