//! A table's value getter (Kafka's `KTableValueGetter`): how an operation
//! downstream of a table (a join) reads the table's current row for a key,
//! whether or not the table has a store of its own.
//!
//! A materialized table (a source, an aggregation, a named result) is read
//! from its store; a filtered or mapped table is read through its parent's
//! getter, with the filter or mapper applied on the way, so that it needs
//! no store of its own. A getter over a versioned store also reads a row as
//! of a time (Kafka's `get(key, asOfTimestamp)`), which a stream–table join
//! uses.

use std::fmt;
use std::sync::Arc;

use streams_core::{ConnectedStores, Result};

use crate::change::ValueAndTimestamp;

/// Reads a row by key, as of a time (`Some`) or the latest (`None`).
type GetFn<K, V> = dyn Fn(&mut ConnectedStores<'_>, &K, Option<i64>) -> Result<Option<ValueAndTimestamp<V>>>
    + Send
    + Sync;

/// Reads a table's row by key, through the stores it names (which the
/// reading processor must be connected to).
pub(crate) struct ValueGetter<K, V> {
    stores: Vec<String>,
    get: Arc<GetFn<K, V>>,
    /// The history retention (milliseconds) of the versioned store the
    /// getter reads, when it reads one: then it answers as of a time.
    versioned: Option<i64>,
}

impl<K, V> Clone for ValueGetter<K, V> {
    fn clone(&self) -> Self {
        Self {
            stores: self.stores.clone(),
            get: self.get.clone(),
            versioned: self.versioned,
        }
    }
}

impl<K, V> fmt::Debug for ValueGetter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueGetter")
            .field("stores", &self.stores)
            .field("versioned", &self.versioned)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> ValueGetter<K, V> {
    /// Reads the timestamped key-value store `store`.
    pub(crate) fn store(store: &str) -> Self {
        let name = store.to_owned();
        Self {
            stores: vec![name.clone()],
            get: Arc::new(move |stores, key, _as_of| {
                stores
                    .key_value_store::<K, ValueAndTimestamp<V>>(&name)?
                    .get(key)
            }),
            versioned: None,
        }
    }

    /// Reads the versioned store `store`, which keeps
    /// `history_retention_ms` of history: the latest version, or the one
    /// valid at a time.
    pub(crate) fn versioned_store(store: &str, history_retention_ms: i64) -> Self {
        let name = store.to_owned();
        Self {
            stores: vec![name.clone()],
            get: Arc::new(move |stores, key, as_of| {
                let store = stores.versioned_key_value_store::<K, V>(&name)?;
                let found = match as_of {
                    Some(t) => store.get_as_of(key, t)?,
                    None => store.get(key)?,
                };
                Ok(found.map(|r| ValueAndTimestamp::make(r.value, r.timestamp)))
            }),
            versioned: Some(history_retention_ms),
        }
    }

    /// The stores the getter reads, to connect to the reading processor.
    pub(crate) fn store_names(&self) -> &[String] {
        &self.stores
    }

    /// The history retention of the versioned store the getter reads, if
    /// it reads one (Kafka's `isVersioned`).
    pub(crate) fn history_retention_ms(&self) -> Option<i64> {
        self.versioned
    }

    /// The row of `key`, if any (the latest version of a versioned one).
    pub(crate) fn get(
        &self,
        stores: &mut ConnectedStores<'_>,
        key: &K,
    ) -> Result<Option<ValueAndTimestamp<V>>> {
        (self.get)(stores, key, None)
    }

    /// The row of `key` as of `as_of` when the getter reads a versioned
    /// store, else its current row.
    pub(crate) fn get_as_of(
        &self,
        stores: &mut ConnectedStores<'_>,
        key: &K,
        as_of: i64,
    ) -> Result<Option<ValueAndTimestamp<V>>> {
        let as_of = self.versioned.map(|_| as_of);
        (self.get)(stores, key, as_of)
    }

    /// This getter with `f` applied to each row found: `None` hides it.
    /// It stays versioned if this one is.
    pub(crate) fn map<V2: 'static>(
        &self,
        f: impl Fn(&K, ValueAndTimestamp<V>) -> Option<ValueAndTimestamp<V2>> + Send + Sync + 'static,
    ) -> ValueGetter<K, V2> {
        let inner = self.get.clone();
        ValueGetter {
            stores: self.stores.clone(),
            get: Arc::new(move |stores, key, as_of| {
                Ok(inner(stores, key, as_of)?.and_then(|v| f(key, v)))
            }),
            versioned: self.versioned,
        }
    }

    /// A getter over two tables' rows of the same key, combined by `f`. As
    /// Kafka's join getters, it is not versioned: it reads the latest rows.
    pub(crate) fn combine<V2: 'static, VR: 'static>(
        &self,
        other: &ValueGetter<K, V2>,
        f: impl Fn(
                Option<ValueAndTimestamp<V>>,
                Option<ValueAndTimestamp<V2>>,
            ) -> Option<ValueAndTimestamp<VR>>
            + Send
            + Sync
            + 'static,
    ) -> ValueGetter<K, VR> {
        let (left, right) = (self.get.clone(), other.get.clone());
        let mut stores = self.stores.clone();
        for name in &other.stores {
            if !stores.contains(name) {
                stores.push(name.clone());
            }
        }
        ValueGetter {
            stores,
            get: Arc::new(move |stores, key, _as_of| {
                let l = left(stores, key, None)?;
                let r = right(stores, key, None)?;
                Ok(f(l, r))
            }),
            versioned: None,
        }
    }
}
