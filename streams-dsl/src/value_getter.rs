//! A table's value getter (Kafka's `KTableValueGetter`): how an operation
//! downstream of a table (a join) reads the table's current row for a key,
//! whether or not the table has a store of its own.
//!
//! A materialized table (a source, an aggregation, a named result) is read
//! from its store; a filtered or mapped table is read through its parent's
//! getter, with the filter or mapper applied on the way, so that it needs
//! no store of its own.

use std::fmt;
use std::sync::Arc;

use streams_core::{ConnectedStores, Result};

use crate::change::ValueAndTimestamp;

type GetFn<K, V> =
    dyn Fn(&mut ConnectedStores<'_>, &K) -> Result<Option<ValueAndTimestamp<V>>> + Send + Sync;

/// Reads a table's row by key, through the stores it names (which the
/// reading processor must be connected to).
pub(crate) struct ValueGetter<K, V> {
    stores: Vec<String>,
    get: Arc<GetFn<K, V>>,
}

impl<K, V> Clone for ValueGetter<K, V> {
    fn clone(&self) -> Self {
        Self {
            stores: self.stores.clone(),
            get: self.get.clone(),
        }
    }
}

impl<K, V> fmt::Debug for ValueGetter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ValueGetter")
            .field("stores", &self.stores)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> ValueGetter<K, V> {
    /// Reads the timestamped key-value store `store`.
    pub(crate) fn store(store: &str) -> Self {
        let name = store.to_owned();
        Self {
            stores: vec![name.clone()],
            get: Arc::new(move |stores, key| {
                stores
                    .key_value_store::<K, ValueAndTimestamp<V>>(&name)?
                    .get(key)
            }),
        }
    }

    /// The stores the getter reads, to connect to the reading processor.
    pub(crate) fn store_names(&self) -> &[String] {
        &self.stores
    }

    /// The row of `key`, if any.
    pub(crate) fn get(
        &self,
        stores: &mut ConnectedStores<'_>,
        key: &K,
    ) -> Result<Option<ValueAndTimestamp<V>>> {
        (self.get)(stores, key)
    }

    /// This getter with `f` applied to each row found: `None` hides it.
    pub(crate) fn map<V2: 'static>(
        &self,
        f: impl Fn(&K, ValueAndTimestamp<V>) -> Option<ValueAndTimestamp<V2>> + Send + Sync + 'static,
    ) -> ValueGetter<K, V2> {
        let inner = self.get.clone();
        ValueGetter {
            stores: self.stores.clone(),
            get: Arc::new(move |stores, key| Ok(inner(stores, key)?.and_then(|v| f(key, v)))),
        }
    }

    /// A getter over two tables' rows of the same key, combined by `f`.
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
            get: Arc::new(move |stores, key| {
                let l = left(stores, key)?;
                let r = right(stores, key)?;
                Ok(f(l, r))
            }),
        }
    }
}
