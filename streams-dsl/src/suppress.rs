//! `suppress`: one final result per window of a windowed aggregation
//! ([`Suppressed::until_window_closes`]), or at most one update per key
//! and time limit ([`Suppressed::until_time_limit`]).

use std::sync::Arc;
use std::time::Duration;

use streams_core::{StoreBackend, StoreBuilder, Windowed};

use crate::ktable::KTable;
use crate::processors::suppress::{BufferedSerde, Due, Suppress};

/// What a full buffer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WhenFull {
    /// Emit the oldest buffered updates early, until it fits again.
    EmitEarly,
    /// Stop the application with [`streams_core::StreamsError::SuppressionBufferFull`].
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
    pub(crate) max_records: Option<u64>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) when_full: WhenFull,
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
    /// [`streams_core::StreamsError::SuppressionBufferFull`] rather than emit anything
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
/// [`streams_core::StreamsError::SuppressionBufferFull`] when an update would exceed a
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
    /// application with [`streams_core::StreamsError::SuppressionBufferFull`], as its
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
