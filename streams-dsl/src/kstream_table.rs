//! A stream meeting a table: [`KStream::join_table`],
//! [`KStream::left_join_table`] and [`KStream::to_table`].

use std::sync::Arc;

use streams_core::{Serdes, StoreBuilder};

use crate::joined::Joined;
use crate::kstream::KStream;
use crate::ktable::KTable;
use crate::options::{Materialized, Named};
use crate::processors::join_buffer::JoinBuffer;
use crate::processors::stream_table_join::{StreamJoinFn, StreamTableJoin};

impl<K, V> KStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Joins each record of this stream with `table`'s current row of its
    /// key (Kafka's `KStream#join(KTable)`): `joiner(value, row)` with the
    /// record's key and timestamp; a record whose key has no row emits
    /// nothing, and table updates emit nothing (only the stream side
    /// triggers). Records with a null key or value are dropped (logged and
    /// counted in `dropped-records`).
    ///
    /// If an upstream operation changed the key, the stream is first
    /// repartitioned through `<name>-repartition` (the [`Joined`]'s name,
    /// else this stream's node name), so that it is co-partitioned with the
    /// table; the runtime checks before starting that the two topics have
    /// the same partition count. Node: `KSTREAM-JOIN-<n>`, or the
    /// [`Joined`]'s name.
    pub fn join_table<VT, VR, F>(
        &self,
        table: &KTable<K, VT>,
        joiner: F,
        joined: Joined<K, V, VT>,
    ) -> KStream<K, VR>
    where
        VT: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        F: Fn(&V, &VT) -> VR + Send + Sync + 'static,
    {
        let joiner: StreamJoinFn<V, VT, VR> = Arc::new(move |v, row| row.map(|row| joiner(v, row)));
        self.stream_table_join(table, joiner, joined, false)
    }

    /// Left-joins each record of this stream with `table`'s current row of
    /// its key (Kafka's `KStream#leftJoin(KTable)`): `joiner(value,
    /// Some(row))`, or `joiner(value, None)` when the key has no row. A
    /// record with a null key is joined with `None` (Kafka's KIP-962); one
    /// with a null value is dropped. Repartitioning, co-partitioning and
    /// names as [`KStream::join_table`], the node `KSTREAM-LEFTJOIN-<n>`.
    pub fn left_join_table<VT, VR, F>(
        &self,
        table: &KTable<K, VT>,
        joiner: F,
        joined: Joined<K, V, VT>,
    ) -> KStream<K, VR>
    where
        VT: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        F: Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
    {
        let joiner: StreamJoinFn<V, VT, VR> = Arc::new(move |v, row| Some(joiner(v, row)));
        self.stream_table_join(table, joiner, joined, true)
    }

    fn stream_table_join<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: StreamJoinFn<V, VT, VR>,
        joined: Joined<K, V, VT>,
        left: bool,
    ) -> KStream<K, VR>
    where
        VT: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        let builder = self.builder.clone();
        let operation = if left { "LEFTJOIN" } else { "JOIN" };
        if !builder.same_builder(table.handle()) {
            builder.fail(format!(
                "stream-table join of '{}': the table comes from another StreamsBuilder",
                self.node
            ));
        }
        // The table's keys are of the same type: its serde serves a
        // stream whose key serde was lost by a re-keying.
        let key_serde = joined
            .key_serde
            .or_else(|| self.key_serde.clone())
            .or_else(|| table.serdes().0);
        let value_serde = joined.value_serde.or_else(|| self.value_serde.clone());
        let stream = if self.repartition_required {
            let base = joined.name.clone().unwrap_or_else(|| self.node.clone());
            let (Some(ks), Some(vs)) = (key_serde.clone(), value_serde.clone()) else {
                builder.fail(format!(
                    "stream-table join of '{}': the key changed upstream, so the stream is repartitioned, \
                     and its key or value serde is unknown; give them with Joined::with or Joined::with_value_serde",
                    self.node
                ));
                return KStream::new(builder, self.node.clone(), false, None, None);
            };
            let source = builder.add_join_repartition(&self.node, &base, ks, vs);
            KStream::new(
                builder.clone(),
                source,
                false,
                key_serde.clone(),
                value_serde.clone(),
            )
        } else {
            self.clone()
        };
        let name = builder.kstream_name(joined.name.map(Named::as_), operation);
        let Some(getter) = table.value_getter(&format!("stream-table join '{name}'")) else {
            return KStream::new(builder, name, false, None, None);
        };
        // With a grace period, records wait in `<name>-Buffer` (Kafka's
        // name), which only a versioned table can serve.
        let buffer = match joined.grace_period {
            None => None,
            Some(grace) => {
                let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
                match getter.history_retention_ms() {
                    None => {
                        builder.fail(format!(
                            "stream-table join '{name}': the table must be versioned to use a grace period \
                             in a stream-table join (Materialized::as_versioned)"
                        ));
                        return KStream::new(builder, name, false, None, None);
                    }
                    Some(history) if grace_ms > history => {
                        builder.fail(format!(
                            "stream-table join '{name}': the table's history retention ({history} ms) \
                             must be at least the grace period ({grace_ms} ms)"
                        ));
                        return KStream::new(builder, name, false, None, None);
                    }
                    Some(_) => {}
                }
                let (Some(ks), Some(vs)) = (key_serde.clone(), value_serde.clone()) else {
                    builder.fail(format!(
                        "stream-table join '{name}': the stream's key or value serde is unknown, \
                         and the grace period's buffer needs them; give them with Joined::with"
                    ));
                    return KStream::new(builder, name, false, None, None);
                };
                Some((format!("{name}-Buffer"), grace_ms, ks, vs))
            }
        };
        let stores: Vec<String> = getter.store_names().to_vec();
        let processor_buffer = buffer.clone();
        builder.add_processor(
            &name,
            move || {
                let buffer = processor_buffer
                    .clone()
                    .map(|(store, grace, ks, vs)| JoinBuffer::new(store, grace, ks, vs));
                StreamTableJoin::new(getter.clone(), joiner.clone(), left, buffer)
            },
            &[stream.node_name()],
        );
        builder.apply(|t| {
            let stores: Vec<&str> = stores.iter().map(String::as_str).collect();
            t.connect_processor_and_state_stores(&name, &stores)?;
            if let Some((store, ..)) = &buffer {
                t.add_state_store(
                    StoreBuilder::key_value(store.as_str(), Serdes::bytes(), Serdes::bytes()),
                    &[&name],
                )?;
            }
            Ok(())
        });
        KStream::new(builder, name, false, key_serde, None)
    }

    /// This stream as a table (Kafka's `KStream#toTable`): each record
    /// upserts its key's row, a null value deletes it (forwarded as a
    /// tombstone), and records with a null key are dropped. If an upstream
    /// operation changed the key, the stream is first repartitioned through
    /// `<name>-repartition`.
    ///
    /// The table is kept in the store `materialized` names, or
    /// `KSTREAM-TOTABLE-STATE-STORE-<n>`, or in a versioned store
    /// ([`Materialized::as_versioned`], as [`crate::StreamsBuilder::table`]);
    /// serdes not given there are the stream's. Node: `KSTREAM-TOTABLE-<n>`.
    pub fn to_table(&self, materialized: Materialized<K, V>) -> KTable<K, V> {
        let builder = self.builder.clone();
        let name = builder.kstream_name(None, "TOTABLE");
        let store = match &materialized.name {
            Some(store) => store.clone(),
            None => builder.store_name("KSTREAM-TOTABLE-"),
        };
        let key_serde = materialized
            .key_serde
            .clone()
            .or_else(|| self.key_serde.clone());
        let value_serde = materialized
            .value_serde
            .clone()
            .or_else(|| self.value_serde.clone());
        let (Some(ks), Some(vs)) = (key_serde, value_serde) else {
            builder.fail(format!(
                "to_table '{name}' with store '{store}': a serde is unknown; give them with Materialized::with"
            ));
            return KTable::new(builder, name, None, None, Some(store));
        };
        let parent = if self.repartition_required {
            builder.add_repartition(
                &self.node,
                &name,
                ks.clone(),
                vs.clone(),
                ks.clone(),
                vs.clone(),
                false,
            )
        } else {
            self.node.clone()
        };
        builder.add_table_source(&name, &parent, &store, (ks, vs), &materialized)
    }
}
