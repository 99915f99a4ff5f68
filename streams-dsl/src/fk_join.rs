//! Foreign-key table–table joins: [`KTable::join_foreign_key`] and
//! [`KTable::left_join_foreign_key`].

use std::sync::Arc;

use streams_core::{stateless_fn, ProcessorContext, Record, Serdes, StoreBuilder};

use crate::builder::store_builder;
use crate::change::{Change, ValueAndTimestampSerde};
use crate::ktable::KTable;
use crate::old_values::OldValues;
use crate::options::Materialized;
use crate::processors::fk_join::foreign_table_join::ForeignTableJoin;
use crate::processors::fk_join::response_join::{FkJoinFn, ResponseJoin};
use crate::processors::fk_join::subscription_receive::SubscriptionReceive;
use crate::processors::fk_join::subscription_send::{ForeignKeyFn, SubscriptionSend};
use crate::processors::fk_join::{ResponseWrapperSerde, SubscriptionWrapperSerde};
use crate::processors::TableSource;
use crate::table_joined::TableJoined;

impl<K, V> KTable<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Joins each row of this table with the row of `other` whose key is
    /// the row's foreign key, `foreign_key(value)` (Kafka's
    /// `KTable#join(other, foreignKeyExtractor, joiner)`): the result is
    /// keyed as this table, `joiner(value, other row)`, and follows both
    /// tables: it changes when the row, its foreign key or the other row
    /// changes, and is deleted when the row is deleted, loses its foreign
    /// key's row, or moves to a key without one. A row whose extractor
    /// returns `None` has no result (skipped and counted).
    ///
    /// The two tables need not be co-partitioned: the join subscribes each
    /// row to its foreign key through the internal topic
    /// `<name>-subscription-registration-topic` (keyed by the foreign key,
    /// sized as `other`'s topic) and answers through
    /// `<name>-subscription-response-topic` (keyed as this table, sized as
    /// its topic); the subscriptions live in the changelogged store
    /// `<name>-subscription-store`, `<name>` being the [`TableJoined`]'s.
    /// Unnamed, they are `KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION-<n>-topic`,
    /// `KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-<n>-topic` and
    /// `KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE-<n>`, as Kafka's. Both
    /// tables' key and value serdes must be known.
    ///
    /// As Kafka's, an inner join may forward a tombstone for a row that
    /// never had a result (when the row is deleted or its foreign key
    /// changes); a materialized, cached result ([`Materialized::as_`] with
    /// caching) suppresses them. The result is queryable when
    /// materialized; unmaterialized, it cannot be re-grouped or joined
    /// again (those need its old values).
    pub fn join_foreign_key<KO, VO, VR, E, F>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: E,
        joiner: F,
        table_joined: TableJoined,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        KO: Clone + Send + 'static,
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        E: Fn(&V) -> Option<KO> + Send + Sync + 'static,
        F: Fn(&V, &VO) -> VR + Send + Sync + 'static,
    {
        let joiner: FkJoinFn<V, VO, VR> = Arc::new(move |v, o| o.map(|o| joiner(v, o)));
        self.foreign_key_join(
            other,
            Arc::new(foreign_key),
            joiner,
            false,
            table_joined,
            materialized,
        )
    }

    /// Left-joins each row of this table with the row of `other` whose key
    /// is its foreign key (Kafka's `KTable#leftJoin(other,
    /// foreignKeyExtractor, joiner)`): every row of this table has a
    /// result, `joiner(value, Some(other row))` or `joiner(value, None)`
    /// when the foreign key (or its row) is missing. Topics, store, names
    /// and materialization as [`KTable::join_foreign_key`].
    pub fn left_join_foreign_key<KO, VO, VR, E, F>(
        &self,
        other: &KTable<KO, VO>,
        foreign_key: E,
        joiner: F,
        table_joined: TableJoined,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        KO: Clone + Send + 'static,
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        E: Fn(&V) -> Option<KO> + Send + Sync + 'static,
        F: Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    {
        let joiner: FkJoinFn<V, VO, VR> = Arc::new(move |v, o| Some(joiner(v, o)));
        self.foreign_key_join(
            other,
            Arc::new(foreign_key),
            joiner,
            true,
            table_joined,
            materialized,
        )
    }

    #[allow(clippy::too_many_lines)]
    fn foreign_key_join<KO, VO, VR>(
        &self,
        other: &KTable<KO, VO>,
        extractor: ForeignKeyFn<V, KO>,
        joiner: FkJoinFn<V, VO, VR>,
        left: bool,
        table_joined: TableJoined,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        KO: Clone + Send + 'static,
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        let builder = self.handle().clone();
        // Generated names as Kafka's; a TableJoined name names them all.
        let named = |suffix: &str, operation: &str| match &table_joined.name {
            Some(name) => format!("{name}-{suffix}"),
            None => builder.ktable_name(None, operation),
        };
        let registration = named(
            "subscription-registration",
            "FK-JOIN-SUBSCRIPTION-REGISTRATION",
        );
        let operation = format!("foreign-key join '{registration}'");
        builder.reject_versioned(&materialized, &operation);
        if !builder.same_builder(other.handle()) {
            builder.fail(format!(
                "{operation}: the other table comes from another StreamsBuilder"
            ));
        }
        let ((Some(ks), Some(vs)), (Some(kos), Some(vos))) = (self.serdes(), other.serdes()) else {
            builder.fail(format!(
                "{operation}: both tables' key and value serdes must be known (give them in Consumed or Materialized)"
            ));
            return KTable::new(builder, registration, None, None, None);
        };
        let (Some(left_getter), Some(right_getter)) = (
            self.value_getter(&operation),
            other.value_getter(&operation),
        ) else {
            return KTable::new(builder, registration, None, None, None);
        };
        // The subscriptions need the left table's old values (to move a
        // row from its old foreign key).
        if !self.old_values().enable(true) {
            builder.fail(format!(
                "{operation}: the left table cannot send old values; materialize it with Materialized::as_"
            ));
        }

        let registration_topic = builder.internal_topic(&format!("{registration}-topic"));
        let registration_sink = named("subscription-registration-sink", "SINK");
        let registration_source = named("subscription-registration-source", "SOURCE");
        let store = match &table_joined.name {
            Some(name) => format!("{name}-subscription-store"),
            None => builder.store_name("KTABLE-FK-JOIN-SUBSCRIPTION-"),
        };
        let receive = named("subscription-receive", "FK-JOIN-SUBSCRIPTION-PROCESSOR");
        let foreign = named(
            "subscription-join-foreign",
            "FK-JOIN-SUBSCRIPTION-PROCESSOR",
        );
        let response = named("subscription-response", "FK-JOIN-SUBSCRIPTION-RESPONSE");
        let response_topic = builder.internal_topic(&format!("{response}-topic"));
        let response_sink = named("subscription-response-sink", "SINK");
        let response_source = named("subscription-response-source", "SOURCE");
        let resolver = named(
            "subscription-response-resolver",
            "FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR",
        );
        let output = named("output", "FK-JOIN-OUTPUT");

        // Left: subscribe each row to its foreign key.
        let (send_extractor, send_serdes, send_topic) = (
            extractor.clone(),
            (kos.clone(), vs.clone()),
            registration_topic.clone(),
        );
        let left_versioned = self.is_versioned();
        builder.add_processor(
            &registration,
            move || {
                SubscriptionSend::<K, V, KO>::new(
                    send_extractor.clone(),
                    send_serdes.clone(),
                    send_topic.clone(),
                    left,
                    left_versioned,
                )
            },
            &[self.node_name()],
        );
        let subscription_serde = SubscriptionWrapperSerde::new(ks.clone());
        let response_serde = ResponseWrapperSerde::new(vos.clone());
        builder.apply(|t| {
            t.add_sink(
                &registration_sink,
                &registration_topic,
                kos.clone(),
                SubscriptionWrapperSerde::new(ks.clone()),
                &[&registration],
            )?
            .add_source(
                &registration_source,
                kos.clone(),
                subscription_serde,
                &[&registration_topic],
            )?;
            Ok(())
        });

        // Right: keep and answer the subscriptions; answer again on every
        // change of a right row.
        let (receive_store, receive_serdes, receive_topic, receive_getter) = (
            store.clone(),
            (kos.clone(), ks.clone()),
            registration_topic.clone(),
            right_getter.clone(),
        );
        builder.add_processor(
            &receive,
            move || {
                SubscriptionReceive::<K, KO, VO>::new(
                    receive_store.clone(),
                    receive_serdes.clone(),
                    receive_topic.clone(),
                    receive_getter.clone(),
                )
            },
            &[&registration_source],
        );
        let (foreign_store, foreign_serde, foreign_topic) =
            (store.clone(), kos.clone(), registration_topic.clone());
        let right_versioned = other.is_versioned();
        builder.add_processor(
            &foreign,
            move || {
                ForeignTableJoin::<KO, K, VO>::new(
                    foreign_store.clone(),
                    foreign_serde.clone(),
                    foreign_topic.clone(),
                    right_versioned,
                )
            },
            &[other.node_name()],
        );
        let subscriptions = StoreBuilder::key_value(
            &store,
            Serdes::bytes(),
            ValueAndTimestampSerde::new(SubscriptionWrapperSerde::new(ks.clone())),
        );
        builder.apply(|t| {
            t.add_state_store(subscriptions, &[&receive, &foreign])?;
            let right_stores: Vec<&str> = right_getter
                .store_names()
                .iter()
                .map(String::as_str)
                .collect();
            t.connect_processor_and_state_stores(&receive, &right_stores)?;
            t.add_sink(
                &response_sink,
                &response_topic,
                ks.clone(),
                ResponseWrapperSerde::new(vos.clone()),
                &[&receive, &foreign],
            )?
            .add_source(
                &response_source,
                ks.clone(),
                response_serde,
                &[&response_topic],
            )?;
            Ok(())
        });

        // Left again: join each answer with the current row.
        let (resolver_getter, resolver_serde, resolver_topic) =
            (left_getter.clone(), vs.clone(), response_topic.clone());
        builder.add_processor(
            &resolver,
            move || {
                ResponseJoin::<K, V, VO, VR>::new(
                    resolver_getter.clone(),
                    resolver_serde.clone(),
                    resolver_topic.clone(),
                    joiner.clone(),
                )
            },
            &[&response_source],
        );
        builder.apply(|t| {
            let left_stores: Vec<&str> = left_getter
                .store_names()
                .iter()
                .map(String::as_str)
                .collect();
            t.connect_processor_and_state_stores(&resolver, &left_stores)?;
            Ok(())
        });

        // The result table.
        match &materialized.name {
            Some(name) => {
                let Some(vrs) = materialized.value_serde.clone() else {
                    builder.fail(format!(
                        "{operation} with store '{name}': the result's value serde is unknown; give it with Materialized::with_value_serde"
                    ));
                    return KTable::new(builder, output, None, None, None);
                };
                let key_serde = materialized.key_serde.clone().unwrap_or(ks.clone());
                let (store_for, key_for, metrics) =
                    (name.clone(), key_serde.clone(), builder.metrics());
                builder.add_processor(
                    &output,
                    move || {
                        TableSource::<K, VR>::new(
                            store_for.clone(),
                            key_for.clone(),
                            metrics.clone(),
                        )
                    },
                    &[&resolver],
                );
                let result_store =
                    store_builder(name, key_serde.clone(), vrs.clone(), &materialized);
                builder.apply(|t| {
                    t.add_state_store(result_store, &[&output])?;
                    Ok(())
                });
                KTable::new(
                    builder,
                    output,
                    Some(key_serde),
                    Some(vrs),
                    Some(name.clone()),
                )
                .with_store_getter()
                .with_old_values(OldValues::source(true))
            }
            None => {
                builder.add_processor(
                    &output,
                    || {
                        stateless_fn(
                            |ctx: &mut ProcessorContext<'_, K, Change<VR>>, r: Record<K, VR>| {
                                let new = r.value.clone();
                                ctx.forward(r.with_value(Some(Change::new(new, None))))
                            },
                        )
                    },
                    &[&resolver],
                );
                KTable::new(
                    builder,
                    output,
                    Some(ks),
                    materialized.value_serde.clone(),
                    None,
                )
                .with_old_values(OldValues::never())
            }
        }
    }
}
