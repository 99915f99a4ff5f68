//! `suppress(until_window_closes)`: one final result per window of a
//! windowed aggregation.

use std::collections::BTreeSet;
use std::fmt;

use bytes::Bytes;
use streams_core::{
    Processor, ProcessorContext, Record, Result, StoreBackend, StoreBuilder, Windowed,
};

use crate::change::{Change, ValueAndTimestamp, ValueAndTimestampSerde};
use crate::ktable::KTable;
use crate::options::SerdeArc;

/// How much a suppression may buffer (Kafka's `StrictBufferConfig`). Only
/// an unbounded buffer exists for now: it never emits early and never
/// shuts down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StrictBufferConfig {
    _unbounded: (),
}

impl StrictBufferConfig {
    /// A buffer limited only by memory.
    pub fn unbounded() -> Self {
        Self { _unbounded: () }
    }
}

/// What [`KTable::suppress`] holds back (Kafka's `Suppressed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suppressed {
    name: Option<String>,
    buffer: StrictBufferConfig,
}

impl Suppressed {
    /// Holds every update of a window until the window closes (stream time
    /// reaches its end plus the grace period), then emits its final value
    /// once.
    pub fn until_window_closes(buffer: StrictBufferConfig) -> Self {
        Self { name: None, buffer }
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
    /// Emits only the final result of each window (`KTABLE-SUPPRESS`): a
    /// window's latest value, with its timestamp, once stream time reaches
    /// `window end + grace`, exactly once. Windows close in order of their
    /// end, then of their serialized key.
    ///
    /// It must directly follow a windowed aggregation (whose grace period
    /// it uses). The buffer is a changelogged in-memory key-value store
    /// (`KTABLE-SUPPRESS-STATE-STORE-<n>`, or `<name>-store`), so buffered
    /// windows survive a restart. A window closes only when a record
    /// reaches the suppression and advances stream time past it.
    pub fn suppress(&self, suppressed: Suppressed) -> KTable<Windowed<K>, V> {
        let builder = self.handle().clone();
        // Only an unbounded buffer exists: there is no limit to enforce.
        let StrictBufferConfig { _unbounded: () } = suppressed.buffer;
        let name = builder.ktable_name(
            suppressed.name.clone().map(crate::options::Named::as_),
            "SUPPRESS",
        );
        let store = match &suppressed.name {
            Some(n) => format!("{n}-store"),
            None => builder.store_name("KTABLE-SUPPRESS-"),
        };
        let (key_serde, value_serde) = self.serdes();
        let Some(grace) = self.window_grace() else {
            builder.fail(format!(
                "suppress '{name}': until_window_closes needs a windowed aggregation directly upstream"
            ));
            return KTable::new(builder, name, key_serde, value_serde, None);
        };
        let (Some(ks), Some(vs)) = (key_serde, value_serde) else {
            builder.fail(format!(
                "suppress '{name}': the table's key or value serde is unknown; give them in the aggregation's Materialized"
            ));
            return KTable::new(builder, name, None, None, None);
        };
        let store_for = store.clone();
        let ks_for = ks.clone();
        builder.add_processor(
            &name,
            move || SuppressWindows::<K, V>::new(store_for.clone(), grace, ks_for.clone()),
            &[self.node_name()],
        );
        let store_builder =
            StoreBuilder::key_value(&store, ks.clone(), ValueAndTimestampSerde::new(vs.clone()))
                .with_backend(StoreBackend::InMemory)
                .with_caching_disabled();
        builder.apply(|t| {
            t.add_state_store(store_builder, &[&name])?;
            Ok(())
        });
        KTable::new(builder.clone(), name, Some(ks), Some(vs), None).with_window_grace(grace)
    }
}

/// Buffers window updates until their window closes (Kafka's
/// `KTableSuppressProcessor` with `untilWindowCloses`).
pub(crate) struct SuppressWindows<K, V> {
    store: String,
    grace: i64,
    key_serde: SerdeArc<Windowed<K>>,
    /// Buffered windows by (end, serialized key); loaded from the store at
    /// the first record, after any restoration.
    index: Option<BTreeSet<(i64, Bytes)>>,
    _types: std::marker::PhantomData<fn() -> V>,
}

impl<K, V> fmt::Debug for SuppressWindows<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SuppressWindows")
            .field("store", &self.store)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl<K, V> SuppressWindows<K, V> {
    pub(crate) fn new(store: String, grace: i64, key_serde: SerdeArc<Windowed<K>>) -> Self {
        Self {
            store,
            grace,
            key_serde,
            index: None,
            _types: std::marker::PhantomData,
        }
    }
}

impl<K, V> Processor<Windowed<K>, Change<V>, Windowed<K>, Change<V>> for SuppressWindows<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<V>>,
        record: Record<Windowed<K>, Change<V>>,
    ) -> Result<()> {
        let Some(key) = &record.key else {
            tracing::debug!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping update with a null key");
            return Ok(());
        };
        let mut index = match self.index.take() {
            Some(index) => index,
            None => {
                let store =
                    ctx.key_value_store::<Windowed<K>, ValueAndTimestamp<V>>(&self.store)?;
                let mut index = BTreeSet::new();
                for entry in store.all()? {
                    let (windowed, _) = entry?;
                    let bytes = self.key_serde.serialize(&self.store, &windowed)?;
                    index.insert((windowed.window.end, bytes));
                }
                index
            }
        };
        let result = self.buffer_and_emit(ctx, &mut index, key, &record);
        self.index = Some(index);
        result
    }
}

impl<K, V> SuppressWindows<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    fn buffer_and_emit(
        &self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<V>>,
        index: &mut BTreeSet<(i64, Bytes)>,
        key: &Windowed<K>,
        record: &Record<Windowed<K>, Change<V>>,
    ) -> Result<()> {
        let bytes = self.key_serde.serialize(&self.store, key)?;
        {
            let mut store =
                ctx.key_value_store::<Windowed<K>, ValueAndTimestamp<V>>(&self.store)?;
            match record.value.as_ref().and_then(|c| c.new.clone()) {
                Some(value) => {
                    store.put(key, &ValueAndTimestamp::make(value, record.timestamp))?;
                    index.insert((key.window.end, bytes));
                }
                None => {
                    store.delete(key)?;
                    index.remove(&(key.window.end, bytes));
                }
            }
        }
        let stream_time = ctx
            .stream_time()
            .map_or(record.timestamp, |t| t.max(record.timestamp));
        while let Some(first) = index.first() {
            if first.0.saturating_add(self.grace) > stream_time {
                break;
            }
            let Some((_, bytes)) = index.pop_first() else {
                break;
            };
            let windowed = self.key_serde.deserialize(&self.store, &bytes)?;
            let buffered = ctx
                .key_value_store::<Windowed<K>, ValueAndTimestamp<V>>(&self.store)?
                .delete(&windowed)?;
            if let Some(buffered) = buffered {
                ctx.forward(Record::from_parts(
                    Some(windowed),
                    Some(Change {
                        new: Some(buffered.value),
                        old: None,
                    }),
                    buffered.timestamp,
                ))?;
            }
        }
        Ok(())
    }
}
