//! [`GlobalTable`]: a table every instance of an app holds whole (Faust's
//! `app.GlobalTable`).

use std::fmt;
use std::sync::Arc;

use crate::current::request;
use crate::error::{AgentError, Result};
use crate::topic::Topic;

/// The default value of a global table's missing keys.
type DefaultFn<V> = Arc<dyn Fn() -> V + Send + Sync>;

/// A table every instance of an app holds whole (Faust's
/// `app.GlobalTable(name)`), made by [`crate::App::global_table`]: the
/// latest value per key of the compacted topic
/// `<application.id>-<name>-changelog`, all its partitions, read by the
/// runtime's global thread before the agents start and then followed. Any
/// agent reads any key, whatever partition it processes.
///
/// Writes ([`GlobalTable::insert`], [`GlobalTable::remove`]) are records
/// sent to that topic (from an agent, with the task's output and in its
/// transaction under `exactly_once_v2`): every instance's copy, the
/// writer's too, takes them in when its global thread reads them, so a
/// read right after a write may not see it yet.
pub struct GlobalTable<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) topic: Topic<K, V>,
    pub(crate) default: Option<DefaultFn<V>>,
}

impl<K, V> Clone for GlobalTable<K, V> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            topic: self.topic.clone(),
            default: self.default.clone(),
        }
    }
}

impl<K, V> fmt::Debug for GlobalTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalTable")
            .field("name", &self.name)
            .field("topic", &self.topic)
            .field("default", &self.default.is_some())
            .finish()
    }
}

impl<K, V> GlobalTable<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The table's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The topic the table is the latest value per key of.
    pub fn topic(&self) -> &Topic<K, V> {
        &self.topic
    }

    /// The table with `default` as the value of a missing key, used by
    /// [`GlobalTable::value`].
    pub fn default(mut self, default: impl Fn() -> V + Send + Sync + 'static) -> Self {
        self.default = Some(Arc::new(default));
        self
    }

    /// The value of `key` in this instance's copy, if it has one.
    pub async fn get(&self, key: &K) -> Result<Option<V>> {
        let (name, key) = (self.name.clone(), key.clone());
        let for_error = name.clone();
        let serdes = (self.topic.key_serde.clone(), self.topic.value_serde.clone());
        request(
            move || format!("get on global table '{for_error}'"),
            move |_, ctx| {
                let view = ctx.stores().global_table(&name, serdes.0, serdes.1)?;
                Ok(view.get(&key)?.map(|(value, _)| value))
            },
        )
        .await
    }

    /// The value of `key`, or the table's default when it has none.
    ///
    /// # Errors
    ///
    /// [`AgentError::NoDefault`] when the key has no value and the table
    /// no default.
    pub async fn value(&self, key: &K) -> Result<V> {
        match self.get(key).await? {
            Some(value) => Ok(value),
            None => match &self.default {
                Some(default) => Ok(default()),
                None => Err(AgentError::NoDefault {
                    table: self.name.to_string(),
                }),
            },
        }
    }

    /// Every row of this instance's copy, in key-byte order.
    pub async fn entries(&self) -> Result<Vec<(K, V)>> {
        let name = self.name.clone();
        let for_error = name.clone();
        let serdes = (self.topic.key_serde.clone(), self.topic.value_serde.clone());
        request(
            move || format!("entries of global table '{for_error}'"),
            move |_, ctx| {
                let view = ctx.stores().global_table(&name, serdes.0, serdes.1)?;
                Ok(view.all()?.into_iter().map(|(k, v, _)| (k, v)).collect())
            },
        )
        .await
    }

    /// Sets `key` to `value` on every instance (a record to the table's
    /// topic; see [`GlobalTable`]).
    pub async fn insert(&self, key: K, value: V) -> Result<()> {
        self.topic.send_record(Some(key), Some(value)).await
    }

    /// Removes `key` on every instance (a tombstone to the table's topic).
    pub async fn remove(&self, key: K) -> Result<()> {
        self.topic.send_record(Some(key), None).await
    }
}
