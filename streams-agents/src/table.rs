//! [`Table`]: a partitioned, typed map of an app, kept in a state store
//! and its compacted changelog.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use broker_embedded::partitioner::partition_for_key;
use streams_core::{ProcessorContext, Serde, StoreBackend, StoreBuilder};

use crate::current::{request, Current};
use crate::error::{AgentError, Result};

/// The default value of a table's missing keys.
type DefaultFn<V> = Arc<dyn Fn() -> V + Send + Sync>;

/// A partitioned, typed map (Faust's `app.Table(name, default=..)`), made
/// by [`crate::App::table`]: each partition lives in a state store of the
/// task that owns that partition of the agents' input, backed by the
/// compacted changelog topic `<application.id>-<name>-changelog` and
/// restored from it before the task's agents see an event.
///
/// An agent's body reads and writes the partition of the event it is
/// processing: a key must belong to that partition (the table is
/// partitioned like the agents' input, by the same partitioner), else the
/// operation fails with [`AgentError::NotCoPartitioned`], which says to
/// `group_by` the stream first. Its changes reach the changelog with the
/// task's commit, before the event's offset is committed (in the same
/// transaction under `exactly_once_v2`).
///
/// Every operation is `async`: the agent hands it to the task that owns
/// the store and waits for the answer, which comes before the agent's next
/// event.
pub struct Table<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) key_serde: Arc<dyn Serde<K>>,
    pub(crate) value_serde: Arc<dyn Serde<V>>,
    pub(crate) default: Option<DefaultFn<V>>,
    pub(crate) backend: Option<StoreBackend>,
    /// The partition count of the agents' input, known when the app runs.
    pub(crate) partitions: Arc<OnceLock<u32>>,
    /// The windows, once the table is made windowed: shared with the app,
    /// which then declares a window store.
    pub(crate) windows: Arc<OnceLock<Windows>>,
}

/// The windows of a windowed table, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Windows {
    pub(crate) size: i64,
    pub(crate) step: i64,
    pub(crate) expires: i64,
}

impl Windows {
    /// The starts of the windows holding time `t`, ascending: every
    /// multiple `s >= 0` of the step with `s <= t < s + size`.
    pub(crate) fn starts(&self, t: i64) -> Vec<i64> {
        if t < 0 || self.step <= 0 || self.size <= 0 {
            return Vec::new();
        }
        let lowest = (t - self.size + 1).max(0);
        let mut start = lowest.div_euclid(self.step) * self.step;
        if start < lowest {
            start += self.step;
        }
        let mut out = Vec::new();
        while start <= t {
            out.push(start);
            start += self.step;
        }
        out
    }
}

impl<K, V> Clone for Table<K, V> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
            default: self.default.clone(),
            backend: self.backend,
            partitions: self.partitions.clone(),
            windows: self.windows.clone(),
        }
    }
}

impl<K, V> fmt::Debug for Table<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("default", &self.default.is_some())
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

impl<K, V> Table<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The table's name (its store's, and its changelog's
    /// `<application.id>-<name>-changelog`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The table with `default` as the value of a missing key (Faust's
    /// `app.Table(name, default=int)` is `.default(|| 0)`), used by
    /// [`Table::value`] and [`Table::update`].
    pub fn default(mut self, default: impl Fn() -> V + Send + Sync + 'static) -> Self {
        self.default = Some(Arc::new(default));
        self
    }

    /// The store declaration of this table.
    pub(crate) fn store_builder(&self) -> StoreBuilder {
        let builder = match self.windows.get() {
            Some(w) => StoreBuilder::window(
                self.name.to_string(),
                self.key_serde.clone(),
                self.value_serde.clone(),
                Duration::from_millis(u64::try_from(w.expires).unwrap_or(0)),
                Duration::from_millis(u64::try_from(w.size).unwrap_or(0)),
            ),
            None => StoreBuilder::key_value(
                self.name.to_string(),
                self.key_serde.clone(),
                self.value_serde.clone(),
            ),
        };
        match self.backend {
            Some(backend) => builder.with_backend(backend),
            None => builder,
        }
    }

    /// Checks that `key` belongs to the partition being processed.
    pub(crate) fn check_partition(&self, current: &Current, key: &K) -> Result<()> {
        let Some(&partitions) = self.partitions.get() else {
            return Ok(());
        };
        let bytes = self
            .key_serde
            .serialize(&self.name, key)
            .map_err(streams_core::StreamsError::from)?;
        let key_partition = partition_for_key(&bytes, partitions);
        if key_partition != current.partition {
            return Err(AgentError::NotCoPartitioned {
                table: self.name.to_string(),
                agent: current.agent.to_string(),
                topic: current.topic.to_string(),
                partition: current.partition,
                key_partition,
            });
        }
        Ok(())
    }

    /// Runs `op` on this table's store in the agent's task, for `key`.
    async fn with_key<T, F>(&self, key: &K, operation: &'static str, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&mut ProcessorContext<'a, (), ()>, &str, K) -> Result<T> + Send + 'static,
    {
        let table = self.clone();
        let key = key.clone();
        let name = self.name.clone();
        request(
            move || format!("{operation} on table '{name}'"),
            move |current, ctx| {
                table.check_partition(current, &key)?;
                op(ctx, &table.name, key)
            },
        )
        .await
    }

    /// The value of `key`, if it has one (no default applied).
    pub async fn get(&self, key: &K) -> Result<Option<V>> {
        self.with_key(key, "get", |ctx, store, key| {
            Ok(ctx.key_value_store::<K, V>(store)?.get(&key)?)
        })
        .await
    }

    /// The value of `key`, or the table's default when it has none (not
    /// stored), as Faust's `table[key]`.
    ///
    /// # Errors
    ///
    /// [`AgentError::NoDefault`] when the key has no value and the table
    /// no default.
    pub async fn value(&self, key: &K) -> Result<V> {
        match self.get(key).await? {
            Some(value) => Ok(value),
            None => self.default_value(),
        }
    }

    pub(crate) fn default_value(&self) -> Result<V> {
        match &self.default {
            Some(default) => Ok(default()),
            None => Err(AgentError::NoDefault {
                table: self.name.to_string(),
            }),
        }
    }

    /// Sets `key` to `value`.
    pub async fn insert(&self, key: K, value: V) -> Result<()> {
        self.with_key(&key, "insert", move |ctx, store, key| {
            Ok(ctx.key_value_store::<K, V>(store)?.put(&key, &value)?)
        })
        .await
    }

    /// Replaces the value of `key` (or the default, when it has none) with
    /// `update(value)`, and returns the new value: Faust's
    /// `table[key] += 1` is `table.update(&key, |n| n + 1)`.
    ///
    /// # Errors
    ///
    /// [`AgentError::NoDefault`] when the key has no value and the table
    /// no default.
    pub async fn update<F>(&self, key: &K, update: F) -> Result<V>
    where
        F: FnOnce(V) -> V + Send + 'static,
    {
        let default = self.default.clone();
        let table = self.name.clone();
        self.with_key(key, "update", move |ctx, store, key| {
            let mut store = ctx.key_value_store::<K, V>(store)?;
            let mut missing = false;
            let new = store.update(&key, |old| {
                let base = match old {
                    Some(value) => value,
                    None => match &default {
                        Some(default) => default(),
                        None => {
                            missing = true;
                            return (None, None);
                        }
                    },
                };
                let new = update(base);
                (Some(new.clone()), Some(new))
            })?;
            match new {
                Some(new) if !missing => Ok(new),
                _ => Err(AgentError::NoDefault {
                    table: table.to_string(),
                }),
            }
        })
        .await
    }

    /// Removes `key`; returns its value.
    pub async fn remove(&self, key: &K) -> Result<Option<V>> {
        self.with_key(key, "remove", |ctx, store, key| {
            Ok(ctx.key_value_store::<K, V>(store)?.delete(&key)?)
        })
        .await
    }

    /// Every entry of the partition being processed, in key order (Faust's
    /// `table.items()`, which also sees only the worker's partitions).
    pub async fn entries(&self) -> Result<Vec<(K, V)>> {
        let name = self.name.clone();
        let store = self.name.clone();
        request(
            move || format!("entries of table '{name}'"),
            move |_, ctx| {
                let store = ctx.key_value_store::<K, V>(&store)?;
                let entries = store.all()?.collect::<streams_core::Result<Vec<_>>>()?;
                Ok(entries)
            },
        )
        .await
    }
}
