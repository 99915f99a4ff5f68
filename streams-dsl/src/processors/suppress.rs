//! The suppression processor (Kafka's `KTableSuppressProcessor`): holds a
//! table's updates back in a changelogged buffer until they are due.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use streams_core::{
    Processor, ProcessorContext, PunctuationType, Record, Result, Serde, SerdeError, StreamsError,
};

use crate::change::Change;
use crate::options::SerdeArc;
use crate::suppress::{BufferConfig, WhenFull, WindowEndFn};

/// When a buffered key is due.
pub(crate) enum Due<K> {
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
    pub(crate) fn new(
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
        let value = Bytes::from_static(include_bytes!(
            "../../tests/fixtures/suppress-buffered-v1.bin"
        ));
        assert_eq!(
            serde.deserialize("t", &value).unwrap(),
            Buffered {
                value: Some(42),
                timestamp: 1000,
                buffer_time: 900
            }
        );
        let tombstone = Bytes::from_static(include_bytes!(
            "../../tests/fixtures/suppress-buffered-tombstone-v1.bin"
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
