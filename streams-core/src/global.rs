//! Global tables (Kafka's global stores behind a `GlobalKTable`): a full
//! copy of a topic's latest value per key on every instance, read by the
//! processors of every task and kept up to date apart from the tasks.
//!
//! The topic itself is the table's changelog: an instance reads it from
//! the beginning to its end before any task processes a record, then
//! follows it (the runtime's global thread, or the test driver as records
//! are piped in). Rows are kept as the topic's key and value bytes with
//! the record's timestamp; a typed view decodes them with the table's
//! serdes when it reads.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use crate::error::{Result, StreamsError};
use crate::serdes::{Serde, SerdeError};

/// Checks that a record's key and value decode with the table's serdes;
/// on failure, which part did not and why.
type CheckFn = Arc<
    dyn Fn(&str, &Bytes, Option<&Bytes>) -> std::result::Result<(), (&'static str, SerdeError)>
        + Send
        + Sync,
>;

/// A global table as the topology declares it.
#[derive(Clone)]
pub(crate) struct GlobalTableSpec {
    /// The table's (store's) name.
    pub(crate) name: String,
    /// The topic it copies.
    pub(crate) topic: String,
    /// The names of its source and processor nodes, for descriptions.
    pub(crate) source_name: String,
    pub(crate) processor_name: String,
    check: CheckFn,
}

impl fmt::Debug for GlobalTableSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalTableSpec")
            .field("name", &self.name)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl GlobalTableSpec {
    pub(crate) fn new<K: 'static, V: 'static>(
        name: &str,
        (source_name, processor_name): (&str, &str),
        topic: &str,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) -> Self {
        Self {
            name: name.to_owned(),
            topic: topic.to_owned(),
            source_name: source_name.to_owned(),
            processor_name: processor_name.to_owned(),
            check: Arc::new(move |topic, key, value| {
                key_serde.deserialize(topic, key).map_err(|e| ("key", e))?;
                if let Some(value) = value {
                    value_serde
                        .deserialize(topic, value)
                        .map_err(|e| ("value", e))?;
                }
                Ok(())
            }),
        }
    }
}

/// One global table's rows.
pub(crate) struct GlobalTable {
    spec: GlobalTableSpec,
    rows: RwLock<BTreeMap<Bytes, (Bytes, i64)>>,
}

impl fmt::Debug for GlobalTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalTable")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// What applying a record did to a global table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The row was written or deleted.
    Updated,
    /// A record with a null key: skipped, as a table source skips it.
    NullKey,
}

impl GlobalTable {
    /// The table's name.
    pub(crate) fn name(&self) -> &str {
        &self.spec.name
    }

    /// The topic the table copies.
    pub(crate) fn topic(&self) -> &str {
        &self.spec.topic
    }

    /// Applies the record at `offset` of `partition` of the topic: a value
    /// upserts its key's row, a null value deletes it. A record whose key
    /// or value does not decode with the table's serdes is a
    /// [`StreamsError::Deserialization`] and changes nothing.
    pub(crate) fn apply(
        &self,
        (partition, offset): (u32, u64),
        key: Option<&Bytes>,
        value: Option<&Bytes>,
        timestamp: i64,
    ) -> Result<Applied> {
        let Some(key) = key else {
            return Ok(Applied::NullKey);
        };
        (self.spec.check)(&self.spec.topic, key, value).map_err(|(part, source)| {
            StreamsError::Deserialization {
                topic: self.spec.topic.clone(),
                partition,
                offset,
                part,
                source,
            }
        })?;
        let mut rows = self.rows.write().map_err(|_| {
            StreamsError::Internal(format!("global table '{}' is poisoned", self.spec.name))
        })?;
        match value {
            Some(value) => {
                rows.insert(key.clone(), (value.clone(), timestamp));
            }
            None => {
                rows.remove(key);
            }
        }
        Ok(Applied::Updated)
    }

    /// The value bytes and timestamp of the row of `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<(Bytes, i64)>> {
        let rows = self.rows.read().map_err(|_| {
            StreamsError::Internal(format!("global table '{}' is poisoned", self.spec.name))
        })?;
        Ok(rows.get(key).cloned())
    }

    /// Every row, by key bytes.
    pub(crate) fn all(&self) -> Result<Vec<(Bytes, Bytes, i64)>> {
        let rows = self.rows.read().map_err(|_| {
            StreamsError::Internal(format!("global table '{}' is poisoned", self.spec.name))
        })?;
        Ok(rows
            .iter()
            .map(|(k, (v, t))| (k.clone(), v.clone(), *t))
            .collect())
    }
}

/// The global tables of one instance, shared by all its tasks.
#[derive(Debug, Default)]
pub(crate) struct GlobalTables {
    tables: HashMap<String, Arc<GlobalTable>>,
}

impl GlobalTables {
    /// Empty tables for `specs`.
    pub(crate) fn new(specs: &[GlobalTableSpec]) -> Self {
        Self {
            tables: specs
                .iter()
                .map(|spec| {
                    (
                        spec.name.clone(),
                        Arc::new(GlobalTable {
                            spec: spec.clone(),
                            rows: RwLock::new(BTreeMap::new()),
                        }),
                    )
                })
                .collect(),
        }
    }

    /// The table named `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<GlobalTable>> {
        self.tables.get(name)
    }

    /// The table that copies `topic`.
    pub(crate) fn by_topic(&self, topic: &str) -> Option<&Arc<GlobalTable>> {
        self.tables.values().find(|t| t.topic() == topic)
    }

    /// Every table.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<GlobalTable>> {
        self.tables.values()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// A read-only view of a global table, decoding with its serdes: what a
/// processor joins a stream with.
pub struct GlobalTableView<K, V> {
    table: Arc<GlobalTable>,
    key_serde: Arc<dyn Serde<K>>,
    value_serde: Arc<dyn Serde<V>>,
}

impl<K, V> fmt::Debug for GlobalTableView<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalTableView")
            .field("table", &self.table.name())
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> GlobalTableView<K, V> {
    pub(crate) fn new(
        table: Arc<GlobalTable>,
        key_serde: Arc<dyn Serde<K>>,
        value_serde: Arc<dyn Serde<V>>,
    ) -> Self {
        Self {
            table,
            key_serde,
            value_serde,
        }
    }

    /// The value and timestamp of `key`'s row, if any.
    pub fn get(&self, key: &K) -> Result<Option<(V, i64)>> {
        let topic = self.table.topic();
        let key = self.key_serde.serialize(topic, key)?;
        match self.table.get(&key)? {
            Some((value, timestamp)) => Ok(Some((
                self.value_serde.deserialize(topic, &value)?,
                timestamp,
            ))),
            None => Ok(None),
        }
    }

    /// Every row, in key-byte order.
    pub fn all(&self) -> Result<Vec<(K, V, i64)>> {
        let topic = self.table.topic();
        self.table
            .all()?
            .into_iter()
            .map(|(k, v, t)| {
                Ok((
                    self.key_serde.deserialize(topic, &k)?,
                    self.value_serde.deserialize(topic, &v)?,
                    t,
                ))
            })
            .collect()
    }
}
