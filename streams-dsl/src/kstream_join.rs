//! Stream–stream joins of a [`KStream`]: [`KStream::join`],
//! [`KStream::left_join`] and [`KStream::outer_join`], windowed by
//! [`JoinWindows`] and configured by [`StreamJoined`].

use std::sync::Arc;
use std::time::Duration;

use streams_core::{stateless_fn, ProcessorContext, Record, StoreBuilder};

use crate::join_serdes::{LeftOrRightValueSerde, ListSerde, TimestampedKeyAndJoinSideSerde};
use crate::join_windows::JoinWindows;
use crate::kstream::KStream;
use crate::options::SerdeArc;
use crate::processors::join_times::Side;
use crate::processors::join_window::JoinWindowWriter;
use crate::processors::outer_join_buffer::{CloseRule, OuterJoinBuffer};
use crate::processors::stream_stream_join::{
    LeftSide, PairJoiner, RightSide, SideWindows, StreamStreamJoin,
};
use crate::stream_joined::StreamJoined;

/// Which sides of a join emit their unmatched records.
#[derive(Debug, Clone, Copy)]
struct Outer {
    /// The left stream's (a left or outer join).
    left: bool,
    /// The right stream's (an outer join).
    right: bool,
}

/// The names of a join's processors and stores.
#[derive(Debug)]
struct JoinNames {
    this_windowed: String,
    other_windowed: String,
    join_this: String,
    join_other: String,
    merge: String,
    this_store: String,
    other_store: String,
    /// The outer-join store of a left or outer join whose windows wait for
    /// their close.
    outer_store: Option<String>,
}

impl<K, V> KStream<K, V>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    /// Joins each record of this stream with every record of `other` that
    /// has the same key and a timestamp within `windows` of its own
    /// (Kafka's `KStream#join(KStream, ValueJoiner, JoinWindows,
    /// StreamJoined)`): an inner join, emitting `joiner(value,
    /// other_value)` for each pair as soon as its second record arrives,
    /// with the larger of the two timestamps and the key.
    ///
    /// Both streams must be co-partitioned; a stream whose key an
    /// upstream operation may have changed is first repartitioned (topic
    /// `<node>-repartition`, or `<name>-left-repartition` /
    /// `<name>-right-repartition` with [`StreamJoined::with_name`]).
    /// Records with a null key or value never join: they are dropped,
    /// logged and counted in [`crate::DslMetrics::dropped_records`].
    /// See `docs/joins.md`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use streams_core::{Serdes, TopologyTestDriver};
    /// use streams_dsl::{Consumed, JoinWindows, Produced, StreamJoined, StreamsBuilder};
    ///
    /// let builder = StreamsBuilder::new();
    /// let views = builder.stream::<String, String>("views", Consumed::with(Serdes::string(), Serdes::string()));
    /// let clicks = builder.stream::<String, String>("clicks", Consumed::with(Serdes::string(), Serdes::string()));
    /// views
    ///     .join(
    ///         &clicks,
    ///         |view, click| format!("{view}/{click}"),
    ///         JoinWindows::of_time_difference_without_grace(Duration::from_millis(100)),
    ///         StreamJoined::new(),
    ///     )
    ///     .to("views-with-clicks", Produced::with(Serdes::string(), Serdes::string()));
    ///
    /// let driver = TopologyTestDriver::new(builder.build()?)?;
    /// let views = driver.create_input_topic("views", Serdes::string(), Serdes::string());
    /// let clicks = driver.create_input_topic("clicks", Serdes::string(), Serdes::string());
    /// let out = driver.create_output_topic("views-with-clicks", Serdes::string(), Serdes::string());
    /// views.pipe_input_with_timestamp("u1".to_owned(), "home".to_owned(), 1_000)?;
    /// clicks.pipe_input_with_timestamp("u1".to_owned(), "buy".to_owned(), 1_050)?;
    /// clicks.pipe_input_with_timestamp("u1".to_owned(), "late".to_owned(), 1_101)?;
    /// let got = out.read_records_to_list()?;
    /// assert_eq!(got.len(), 1);
    /// assert_eq!((got[0].value.as_deref(), got[0].timestamp), (Some("home/buy"), 1_050));
    /// # Ok::<(), streams_core::StreamsError>(())
    /// ```
    pub fn join<VO, VR, F>(
        &self,
        other: &KStream<K, VO>,
        joiner: F,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR>
    where
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        F: Fn(&V, &VO) -> VR + Send + Sync + 'static,
    {
        let joiner: PairJoiner<V, VO, VR> = Arc::new(move |left, right| match (left, right) {
            (Some(left), Some(right)) => Some(joiner(left, right)),
            _ => None,
        });
        let outer = Outer {
            left: false,
            right: false,
        };
        self.stream_join(other, joiner, windows, joined, outer)
    }

    /// [`KStream::join`] that also emits each record of this stream that
    /// joins nothing, as `joiner(value, None)` with its own timestamp
    /// (Kafka's `leftJoin`).
    ///
    /// Such a record is held in the join's outer-join store and emitted
    /// once its window has closed in stream time (`ts + after + grace <
    /// stream time`), ordered by timestamp and before the results of the
    /// record that moved stream time; a partner arriving before that
    /// removes it, so it is never emitted both alone and joined. A record
    /// arriving when its window's end `ts + after` is already behind
    /// stream time is emitted at once. With the deprecated
    /// [`JoinWindows::of`], every unmatched record is emitted at once. A
    /// record with a null key (and a value) is emitted at once too
    /// (KIP-962). See `docs/joins.md`.
    pub fn left_join<VO, VR, F>(
        &self,
        other: &KStream<K, VO>,
        joiner: F,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR>
    where
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        F: Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    {
        let joiner: PairJoiner<V, VO, VR> =
            Arc::new(move |left, right| left.map(|left| joiner(left, right)));
        let outer = Outer {
            left: true,
            right: false,
        };
        self.stream_join(other, joiner, windows, joined, outer)
    }

    /// [`KStream::left_join`] in both directions (Kafka's `outerJoin`):
    /// unmatched records of either stream are emitted, as `joiner(Some(v),
    /// None)` or `joiner(None, Some(v))`; a right record's window closes
    /// at `ts + before + grace`.
    pub fn outer_join<VO, VR, F>(
        &self,
        other: &KStream<K, VO>,
        joiner: F,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR>
    where
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
        F: Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
    {
        let joiner: PairJoiner<V, VO, VR> = Arc::new(move |left, right| {
            (left.is_some() || right.is_some()).then(|| joiner(left, right))
        });
        let outer = Outer {
            left: true,
            right: true,
        };
        self.stream_join(other, joiner, windows, joined, outer)
    }

    /// This stream, or its repartition through `<base>-repartition` if an
    /// upstream operation may have changed its key.
    fn repartitioned_for_join(
        &self,
        base: String,
        key_serde: Option<&SerdeArc<K>>,
        value_serde: Option<&SerdeArc<V>>,
        side: &str,
    ) -> KStream<K, V> {
        if !self.repartition_required {
            return self.clone();
        }
        let (Some(ks), Some(vs)) = (key_serde, value_serde) else {
            self.builder.fail(format!(
                "repartition '{base}-repartition' of the {side} stream of a stream-stream join: no key or value serde known; give them with StreamJoined::with"
            ));
            return self.clone();
        };
        let source = self
            .builder
            .add_join_repartition(&self.node, &base, ks.clone(), vs.clone());
        KStream::new(
            self.builder.clone(),
            source,
            false,
            Some(ks.clone()),
            Some(vs.clone()),
        )
    }

    /// The topology of a stream–stream join, as Kafka's `KStreamImplJoin`
    /// builds it.
    fn stream_join<VO, VR>(
        &self,
        other: &KStream<K, VO>,
        joiner: PairJoiner<V, VO, VR>,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
        outer: Outer,
    ) -> KStream<K, VR>
    where
        VO: Clone + Send + 'static,
        VR: Clone + Send + 'static,
    {
        let builder = &self.builder;
        let key_serde = joined
            .key_serde
            .clone()
            .or_else(|| self.key_serde.clone())
            .or_else(|| other.key_serde.clone());
        let value_serde = joined
            .value_serde
            .clone()
            .or_else(|| self.value_serde.clone());
        let other_value_serde = joined
            .other_value_serde
            .clone()
            .or_else(|| other.value_serde.clone());

        let left_base = joined
            .name
            .as_ref()
            .map_or_else(|| self.node.clone(), |n| format!("{n}-left"));
        let this = self.repartitioned_for_join(
            left_base,
            key_serde.as_ref(),
            value_serde.as_ref(),
            "left",
        );
        let right_base = joined
            .name
            .as_ref()
            .map_or_else(|| other.node.clone(), |n| format!("{n}-right"));
        let that = other.repartitioned_for_join(
            right_base,
            key_serde.as_ref(),
            other_value_serde.as_ref(),
            "right",
        );

        let names = join_names(self, &joined, outer, windows.waits_for_window_close());
        let out = KStream::new(
            builder.clone(),
            names.merge.clone(),
            false,
            key_serde.clone(),
            None,
        );
        if !builder.same_builder(&other.builder) {
            builder.fail(format!(
                "stream-stream join '{}': the streams come from different builders",
                names.merge
            ));
            return out;
        }
        if let Err(reason) = windows.validate() {
            builder.fail(format!(
                "stream-stream join '{}': invalid JoinWindows: {reason}",
                names.merge
            ));
            return out;
        }
        let (Some(ks), Some(vs), Some(ovs)) = (key_serde, value_serde, other_value_serde) else {
            builder.fail(format!(
                "stores '{}' and '{}' of stream-stream join '{}': no {} serde known; give it with StreamJoined::with",
                names.this_store,
                names.other_store,
                names.merge,
                if joined.key_serde.is_none() && self.key_serde.is_none() && other.key_serde.is_none() {
                    "key"
                } else {
                    "value"
                }
            ));
            return out;
        };

        let retention = windows.retention_ms();
        let close = CloseRule {
            left_lookback: windows.after_ms(),
            right_lookback: windows.before_ms(),
            grace: windows.grace_ms(),
        };
        let left_windows = SideWindows {
            before: windows.before_ms(),
            after: windows.after_ms(),
            retention,
            close,
        };
        let right_windows = SideWindows {
            before: windows.after_ms(),
            after: windows.before_ms(),
            retention,
            close,
        };
        // Per join and task: unique in the topology, as the store name is.
        let times_name = format!("stream-stream join {}", names.this_store);
        let metrics = builder.metrics();

        {
            let (store, times, metrics, serde) = (
                names.this_store.clone(),
                times_name.clone(),
                metrics.clone(),
                vs.clone(),
            );
            builder.add_processor(
                &names.this_windowed,
                move || {
                    JoinWindowWriter::<K, V>::new(
                        store.clone(),
                        Side::Left,
                        retention,
                        times.clone(),
                        metrics.clone(),
                        ListSerde::new(serde.clone()),
                    )
                },
                &[&this.node],
            );
        }
        {
            let (store, times, metrics, serde) = (
                names.other_store.clone(),
                times_name.clone(),
                metrics.clone(),
                ovs.clone(),
            );
            builder.add_processor(
                &names.other_windowed,
                move || {
                    JoinWindowWriter::<K, VO>::new(
                        store.clone(),
                        Side::Right,
                        retention,
                        times.clone(),
                        metrics.clone(),
                        ListSerde::new(serde.clone()),
                    )
                },
                &[&that.node],
            );
        }
        {
            let (store, buffer, times, metrics, joiner) = (
                names.other_store.clone(),
                names.outer_store.clone(),
                times_name.clone(),
                metrics.clone(),
                joiner.clone(),
            );
            builder.add_processor(
                &names.join_this,
                move || {
                    StreamStreamJoin::<K, V, VO, VR, LeftSide>::new(
                        store.clone(),
                        left_windows,
                        outer.left,
                        joiner.clone(),
                        buffer.clone().map(OuterJoinBuffer::new),
                        times.clone(),
                        metrics.clone(),
                    )
                },
                &[&names.this_windowed],
            );
        }
        {
            let (store, buffer, times, metrics) = (
                names.this_store.clone(),
                names.outer_store.clone(),
                times_name,
                metrics,
            );
            builder.add_processor(
                &names.join_other,
                move || {
                    StreamStreamJoin::<K, V, VO, VR, RightSide>::new(
                        store.clone(),
                        right_windows,
                        outer.right,
                        joiner.clone(),
                        buffer.clone().map(OuterJoinBuffer::new),
                        times.clone(),
                        metrics.clone(),
                    )
                },
                &[&names.other_windowed],
            );
        }
        builder.add_processor(
            &names.merge,
            || {
                stateless_fn(|ctx: &mut ProcessorContext<'_, K, VR>, r: Record<K, VR>| {
                    ctx.forward(r)
                })
            },
            &[&names.join_this, &names.join_other],
        );

        let this_store = join_store(
            StoreBuilder::window(
                &names.this_store,
                ks.clone(),
                ListSerde::new(vs.clone()),
                millis(retention),
                millis(windows.size_ms()),
            ),
            &joined,
        );
        let other_store = join_store(
            StoreBuilder::window(
                &names.other_store,
                ks.clone(),
                ListSerde::new(ovs.clone()),
                millis(retention),
                millis(windows.size_ms()),
            ),
            &joined,
        );
        builder.apply(|t| {
            t.add_state_store(this_store, &[&names.this_windowed, &names.join_other])?
                .add_state_store(other_store, &[&names.other_windowed, &names.join_this])?;
            Ok(())
        });
        if let Some(outer_store) = &names.outer_store {
            let held: SerdeArc<_> = Arc::new(LeftOrRightValueSerde::new(vs, ovs));
            let store = join_store(
                StoreBuilder::key_value(
                    outer_store,
                    TimestampedKeyAndJoinSideSerde::new(ks),
                    ListSerde::new(held),
                ),
                &joined,
            )
            .with_caching_disabled();
            builder.apply(|t| {
                t.add_state_store(store, &[&names.join_this, &names.join_other])?;
                Ok(())
            });
        }
        out
    }
}

/// `ms` as a duration (0 if negative).
fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `store` with the backend and changelogging `joined` asks for; never
/// cached.
fn join_store<K, V, VO>(store: StoreBuilder, joined: &StreamJoined<K, V, VO>) -> StoreBuilder {
    store.with_options(joined.options.clone().with_caching_disabled())
}

/// Kafka's names: five indexes consumed (two `WINDOWED`, `JOINTHIS` or
/// `OUTERTHIS`, `JOINOTHER` or `OUTEROTHER`, `MERGE`) whether or not
/// `joined` names the join.
fn join_names<K, V, VO>(
    stream: &KStream<K, V>,
    joined: &StreamJoined<K, V, VO>,
    outer: Outer,
    waits_for_close: bool,
) -> JoinNames
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    let builder = &stream.builder;
    let name = joined.name.as_deref();
    let suffixed = |suffix: &str, operation: &str| {
        let generated = builder.kstream_name(None, operation);
        name.map_or(generated, |n| format!("{n}{suffix}"))
    };
    let this_windowed = suffixed("-this-windowed", "WINDOWED");
    let other_windowed = suffixed("-other-windowed", "WINDOWED");
    let this_operation = if outer.right { "OUTERTHIS" } else { "JOINTHIS" };
    let other_operation = if outer.left {
        "OUTEROTHER"
    } else {
        "JOINOTHER"
    };
    let this_generated = builder.kstream_name(None, this_operation);
    let other_generated = builder.kstream_name(None, other_operation);
    let this_suffix = if outer.right {
        "-outer-this-join"
    } else {
        "-this-join"
    };
    let other_suffix = if outer.left {
        "-outer-other-join"
    } else {
        "-other-join"
    };
    let join_this = name.map_or_else(|| this_generated.clone(), |n| format!("{n}{this_suffix}"));
    let join_other = name.map_or_else(|| other_generated.clone(), |n| format!("{n}{other_suffix}"));
    let merge = suffixed("-merge", "MERGE");
    let store_name = joined.store_name.as_deref();
    let this_store = match store_name {
        Some(s) => format!("{s}{this_suffix}-store"),
        None => format!("{this_generated}-store"),
    };
    let other_store = match store_name {
        Some(s) => format!("{s}{other_suffix}-store"),
        None => format!("{other_generated}-store"),
    };
    let outer_store = (outer.left && waits_for_close).then(|| match store_name {
        Some(s) => {
            let suffix = if outer.right {
                "-outer-shared-join"
            } else {
                "-left-shared-join"
            };
            format!("{s}{suffix}-store")
        }
        None => {
            let index = this_generated
                .rsplit('-')
                .next()
                .unwrap_or(this_generated.as_str());
            format!("KSTREAM-OUTERSHARED-{index}-store")
        }
    });
    JoinNames {
        this_windowed,
        other_windowed,
        join_this,
        join_other,
        merge,
        this_store,
        other_store,
        outer_store,
    }
}
