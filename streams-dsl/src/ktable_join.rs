//! Table–table joins on the primary key: [`KTable::join`],
//! [`KTable::left_join`] and [`KTable::outer_join`].

use std::sync::Arc;

use crate::builder::store_builder;
use crate::change::ValueAndTimestamp;
use crate::ktable::KTable;
use crate::old_values::OldValues;
use crate::options::Materialized;
use crate::processors::table_join_merger::TableJoinMerger;
use crate::processors::table_table_join::{SideMode, TableJoinFn, TableTableJoin};

/// The three kinds of table–table join.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inner,
    Left,
    Outer,
}

impl<K, V> KTable<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Joins this table with `other` on the key (Kafka's `KTable#join`):
    /// a row exists in the result while both tables have one, its value
    /// `joiner(this value, other value)` and its timestamp the larger of
    /// the two rows'. An update of either side is joined with the other
    /// side's current row; an update or delete of one side while the other
    /// has no row emits nothing; a delete while the other side has a row
    /// emits a tombstone.
    ///
    /// The result is kept in a store (and queryable) when `materialized`
    /// names one ([`Materialized::as_`]); `Materialized::new()` keeps none.
    /// Both tables must be co-partitioned: the runtime checks their
    /// partition counts before it starts. An out-of-order update of a
    /// versioned table ([`Materialized::as_versioned`]) is skipped, as in
    /// Kafka; the result is not versioned. Nodes: `KTABLE-JOINTHIS-<n>`,
    /// `KTABLE-JOINOTHER-<n>` and `KTABLE-MERGE-<n>`.
    pub fn join<VO, VR, F>(
        &self,
        other: &KTable<K, VO>,
        joiner: F,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        F: Fn(&V, &VO) -> VR + Send + Sync + 'static,
    {
        let joiner = Arc::new(joiner);
        let reversed = joiner.clone();
        self.join_impl(
            other,
            Kind::Inner,
            Arc::new(move |l, r| Some(joiner(l?, r?))),
            Arc::new(move |r, l| Some(reversed(l?, r?))),
            materialized,
        )
    }

    /// Left-joins this table with `other` on the key (Kafka's
    /// `KTable#leftJoin`): every row of this table has a row in the
    /// result, `joiner(this value, Some(other value))` or
    /// `joiner(this value, None)` while `other` has no row for its key.
    /// Deleting a row of `other` re-joins this side's row with `None`;
    /// deleting a row of this table deletes the result's row. Output
    /// timestamps, materialization and names as [`KTable::join`].
    pub fn left_join<VO, VR, F>(
        &self,
        other: &KTable<K, VO>,
        joiner: F,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        F: Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    {
        let joiner = Arc::new(joiner);
        let reversed = joiner.clone();
        self.join_impl(
            other,
            Kind::Left,
            Arc::new(move |l, r| Some(joiner(l?, r))),
            Arc::new(move |r, l| Some(reversed(l?, r))),
            materialized,
        )
    }

    /// Outer-joins this table with `other` on the key (Kafka's
    /// `KTable#outerJoin`): a key with a row in either table has a row in
    /// the result, `joiner(Some(this), Some(other))`, `joiner(Some(this),
    /// None)` or `joiner(None, Some(other))`; the joiner never sees two
    /// `None`s. Deleting a row while the other side has one re-joins the
    /// other side's row alone (not a tombstone); deleting the last row of a
    /// key emits a tombstone. Output timestamps, materialization and names
    /// as [`KTable::join`].
    pub fn outer_join<VO, VR, F>(
        &self,
        other: &KTable<K, VO>,
        joiner: F,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        F: Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
    {
        let joiner = Arc::new(joiner);
        let reversed = joiner.clone();
        self.join_impl(
            other,
            Kind::Outer,
            Arc::new(move |l, r| Some(joiner(l, r))),
            Arc::new(move |r, l| Some(reversed(l, r))),
            materialized,
        )
    }

    fn join_impl<VO, VR>(
        &self,
        other: &KTable<K, VO>,
        kind: Kind,
        join_this: TableJoinFn<V, VO, VR>,
        join_other: TableJoinFn<VO, V, VR>,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        let builder = self.handle().clone();
        let merge = builder.ktable_name(None, "MERGE");
        let this_name = builder.ktable_name(None, "JOINTHIS");
        let other_name = builder.ktable_name(None, "JOINOTHER");
        let operation = format!("table-table join '{merge}'");
        builder.reject_versioned(&materialized, &operation);
        if !builder.same_builder(other.handle()) {
            builder.fail(format!(
                "{operation}: the other table comes from another StreamsBuilder"
            ));
        }
        let (Some(this_getter), Some(other_getter)) = (
            self.value_getter(&operation),
            other.value_getter(&operation),
        ) else {
            return KTable::new(builder, merge, None, None, None);
        };
        // As Kafka's: the sides that may subtract a missing row read old
        // values from their parents.
        let this_old = !matches!(kind, Kind::Left | Kind::Outer) || self.old_values().enable(true);
        let other_old = kind != Kind::Outer || other.old_values().enable(true);
        if !(this_old && other_old) {
            builder.fail(format!(
                "{operation}: a joined table cannot send old values; materialize it with Materialized::as_"
            ));
        }
        let old_values = OldValues::join(self.old_values(), other.old_values());
        let (this_mode, other_mode) = match kind {
            Kind::Inner => (SideMode::Inner, SideMode::Inner),
            Kind::Left => (SideMode::Left, SideMode::Right),
            Kind::Outer => (SideMode::Outer, SideMode::Outer),
        };

        let getter_join = join_this.clone();
        let send_old = old_values.clone();
        let getter = other_getter.clone();
        // Each side skips the out-of-order updates of its own table when it
        // is versioned (Kafka's versioned semantics).
        let this_versioned = self.is_versioned();
        builder.add_processor(
            &this_name,
            move || {
                TableTableJoin::new(
                    this_mode,
                    getter.clone(),
                    join_this.clone(),
                    send_old.enabled(),
                    this_versioned,
                )
            },
            &[self.node_name()],
        );
        let send_old = old_values.clone();
        let getter = this_getter.clone();
        let reversed = join_other.clone();
        let other_versioned = other.is_versioned();
        builder.add_processor(
            &other_name,
            move || {
                TableTableJoin::new(
                    other_mode,
                    getter.clone(),
                    reversed.clone(),
                    send_old.enabled(),
                    other_versioned,
                )
            },
            &[other.node_name()],
        );
        builder.apply(|t| {
            let this_stores: Vec<&str> = other_getter
                .store_names()
                .iter()
                .map(String::as_str)
                .collect();
            t.connect_processor_and_state_stores(&this_name, &this_stores)?;
            let other_stores: Vec<&str> = this_getter
                .store_names()
                .iter()
                .map(String::as_str)
                .collect();
            t.connect_processor_and_state_stores(&other_name, &other_stores)?;
            Ok(())
        });

        let key_serde = materialized.key_serde.clone().or_else(|| self.serdes().0);
        let store = match &materialized.name {
            Some(name) => {
                let (Some(ks), Some(vs)) = (key_serde.clone(), materialized.value_serde.clone())
                else {
                    builder.fail(format!(
                        "{operation} with store '{name}': a serde is unknown; give the store's with Materialized::with"
                    ));
                    return KTable::new(builder, merge, None, None, None);
                };
                Some((name.clone(), ks, vs))
            }
            None => None,
        };
        let send_old = old_values.clone();
        let merger_store = store
            .as_ref()
            .map(|(name, ks, _)| (name.clone(), ks.clone()));
        builder.add_processor(
            &merge,
            move || TableJoinMerger::<K, VR>::new(merger_store.clone(), send_old.enabled()),
            &[&this_name, &other_name],
        );
        let table = match store {
            Some((name, ks, vs)) => {
                let store_builder = store_builder(&name, ks.clone(), vs.clone(), &materialized);
                builder.apply(|t| {
                    t.add_state_store(store_builder, &[&merge])?;
                    Ok(())
                });
                KTable::new(builder, merge, Some(ks), Some(vs), Some(name)).with_store_getter()
            }
            None => {
                // Read through both sides' getters, as Kafka's join value
                // getters: a row where the join kind has one.
                let joined = this_getter.combine(&other_getter, move |l, r| {
                    let present = match kind {
                        Kind::Inner => l.is_some() && r.is_some(),
                        Kind::Left => l.is_some(),
                        Kind::Outer => l.is_some() || r.is_some(),
                    };
                    if !present {
                        return None;
                    }
                    let timestamp = l
                        .as_ref()
                        .map_or(-1, |l| l.timestamp)
                        .max(r.as_ref().map_or(-1, |r| r.timestamp));
                    let value =
                        getter_join(l.as_ref().map(|l| &l.value), r.as_ref().map(|r| &r.value))?;
                    Some(ValueAndTimestamp::make(value, timestamp))
                });
                KTable::new(
                    builder,
                    merge,
                    key_serde,
                    materialized.value_serde.clone(),
                    None,
                )
                .with_getter(Some(joined))
            }
        };
        table.with_old_values(old_values)
    }
}
