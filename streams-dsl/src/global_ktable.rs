//! [`GlobalKTable`]: a table copied in full to every instance, and the
//! stream joins that read it ([`KStream::join_global`],
//! [`KStream::left_join_global`]).

use std::fmt;
use std::sync::Arc;

use crate::builder::{Handle, StreamsBuilder};
use crate::kstream::KStream;
use crate::options::{Consumed, Materialized, Named, SerdeArc};
use crate::processors::stream_global_join::{GlobalJoinFn, KeyMapFn, StreamGlobalJoin};

/// A table of the latest value per key of a topic, copied in full to
/// every instance of the app (Kafka's `GlobalKTable`).
///
/// Each instance reads the whole topic before its tasks process any
/// record, then follows it on a thread of its own; every task reads the
/// same copy. So a global table needs no co-partitioning with the streams
/// it is joined with, and a stream can look it up by any key computed from
/// its records ([`KStream::join_global`]). The topic is the table's
/// changelog; rows keep the timestamps of their records. Records with a
/// null key are skipped; a null value deletes the row.
pub struct GlobalKTable<K, V> {
    pub(crate) builder: Handle,
    store: String,
    topic: String,
    key_serde: SerdeArc<K>,
    value_serde: SerdeArc<V>,
}

impl<K, V> fmt::Debug for GlobalKTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalKTable")
            .field("store", &self.store)
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

impl<K, V> Clone for GlobalKTable<K, V> {
    fn clone(&self) -> Self {
        Self {
            builder: self.builder.clone(),
            store: self.store.clone(),
            topic: self.topic.clone(),
            key_serde: self.key_serde.clone(),
            value_serde: self.value_serde.clone(),
        }
    }
}

impl<K: 'static, V: 'static> GlobalKTable<K, V> {
    /// The name of the table's store, by which it is queried
    /// (`TopologyTestDriver::get_global_table`).
    pub fn queryable_store_name(&self) -> &str {
        &self.store
    }

    /// The topic the table copies.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

impl StreamsBuilder {
    /// A global table of `topic` (Kafka's `globalTable`): see
    /// [`GlobalKTable`]. Its store is named by `materialized` or
    /// `<topic>-STATE-STORE-<n>`; serdes not given there are `consumed`'s.
    /// Nodes, as Kafka's: `KSTREAM-SOURCE-<n>` and `KTABLE-SOURCE-<n>`, in
    /// a sub-topology "for global store" that generates no tasks.
    ///
    /// Rows are kept in memory; `materialized`'s backend, caching and
    /// logging choices do not apply (the topic is the changelog), and the
    /// consumed timestamp extractor is not used (rows keep their records'
    /// timestamps).
    pub fn global_table<K, V>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        materialized: Materialized<K, V>,
    ) -> GlobalKTable<K, V>
    where
        K: Clone + Send + 'static,
        V: Clone + Send + 'static,
    {
        let handle = self.handle();
        if materialized.versioned.is_some() {
            // Kafka's `TopologyException`.
            handle.fail("global tables cannot be versioned".to_owned());
        }
        let store = match &materialized.name {
            Some(name) => name.clone(),
            None => handle.store_name(&format!("{topic}-")),
        };
        let source = handle.kstream_name(consumed.name.map(Named::as_), "SOURCE");
        let processor = handle.ktable_name(None, "SOURCE");
        let key_serde = materialized.key_serde.clone().unwrap_or(consumed.key_serde);
        let value_serde = materialized
            .value_serde
            .clone()
            .unwrap_or(consumed.value_serde);
        let (ks, vs) = (key_serde.clone(), value_serde.clone());
        handle.apply(|t| {
            t.add_global_table(&store, &source, topic, &processor, ks.clone(), vs.clone())?;
            Ok(())
        });
        GlobalKTable {
            builder: handle.clone(),
            store,
            topic: topic.to_owned(),
            key_serde,
            value_serde,
        }
    }
}

impl<K, V> KStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Joins each record of this stream with the row of `global` whose key
    /// is `key_mapper(key, value)` (Kafka's `KStream#join(GlobalKTable)`):
    /// `joiner(value, row)`, with the record's key and timestamp. A record
    /// without such a row emits nothing; one whose mapper returns `None`,
    /// or with a null value, is dropped (logged and counted). Only the
    /// stream triggers; the stream is never repartitioned. Node:
    /// `KSTREAM-JOIN-<n>`.
    pub fn join_global<KG, VG, VR, M, F>(
        &self,
        global: &GlobalKTable<KG, VG>,
        key_mapper: M,
        joiner: F,
    ) -> KStream<K, VR>
    where
        KG: Clone + Send + 'static,
        VG: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        M: Fn(Option<&K>, &V) -> Option<KG> + Send + Sync + 'static,
        F: Fn(&V, &VG) -> VR + Send + Sync + 'static,
    {
        let joiner: GlobalJoinFn<V, VG, VR> = Arc::new(move |v, row| row.map(|row| joiner(v, row)));
        self.global_join(global, Arc::new(key_mapper), joiner, false)
    }

    /// Left-joins each record of this stream with the row of `global`
    /// whose key is `key_mapper(key, value)` (Kafka's
    /// `KStream#leftJoin(GlobalKTable)`): `joiner(value, Some(row))`, or
    /// `joiner(value, None)` when there is no such row, or when the mapper
    /// returns `None` (as Kafka 4.1 does; older Kafka dropped such
    /// records). A record with a null value is dropped. Node:
    /// `KSTREAM-LEFTJOIN-<n>`.
    pub fn left_join_global<KG, VG, VR, M, F>(
        &self,
        global: &GlobalKTable<KG, VG>,
        key_mapper: M,
        joiner: F,
    ) -> KStream<K, VR>
    where
        KG: Clone + Send + 'static,
        VG: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        M: Fn(Option<&K>, &V) -> Option<KG> + Send + Sync + 'static,
        F: Fn(&V, Option<&VG>) -> VR + Send + Sync + 'static,
    {
        let joiner: GlobalJoinFn<V, VG, VR> = Arc::new(move |v, row| Some(joiner(v, row)));
        self.global_join(global, Arc::new(key_mapper), joiner, true)
    }

    fn global_join<KG, VG, VR>(
        &self,
        global: &GlobalKTable<KG, VG>,
        key_mapper: KeyMapFn<K, V, KG>,
        joiner: GlobalJoinFn<V, VG, VR>,
        left: bool,
    ) -> KStream<K, VR>
    where
        KG: Clone + Send + 'static,
        VG: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        let builder = self.builder.clone();
        if !builder.same_builder(&global.builder) {
            builder.fail(format!(
                "stream-global table join of '{}': the global table comes from another StreamsBuilder",
                self.node
            ));
        }
        let name = builder.kstream_name(None, if left { "LEFTJOIN" } else { "JOIN" });
        let (store, ks, vs) = (
            global.store.clone(),
            global.key_serde.clone(),
            global.value_serde.clone(),
        );
        builder.add_processor(
            &name,
            move || {
                StreamGlobalJoin::new(
                    store.clone(),
                    (ks.clone(), vs.clone()),
                    key_mapper.clone(),
                    joiner.clone(),
                    left,
                )
            },
            &[&self.node],
        );
        KStream::new(
            builder,
            name,
            self.repartition_required,
            self.key_serde.clone(),
            None,
        )
    }
}
