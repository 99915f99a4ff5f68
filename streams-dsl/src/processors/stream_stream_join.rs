//! [`StreamStreamJoin`]: one side of a stream–stream join (Kafka's
//! `KStreamKStreamJoinLeftSide` and `KStreamKStreamJoinRightSide`, the
//! `KSTREAM-JOINTHIS` / `JOINOTHER` / `OUTERTHIS` / `OUTEROTHER` nodes).

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};

use streams_core::{Processor, ProcessorContext, Record, Result, WindowStoreHandle};

use crate::builder::DslMetrics;
use crate::join_serdes::{LeftOrRightValue, TimestampedKeyAndJoinSide};
use crate::processors::join_times::{live_in_store, lock, shared_times, JoinTimes, Side};
use crate::processors::outer_join_buffer::{CloseRule, OuterJoinBuffer};
use crate::processors::resolved;

/// The user's joiner, taking the left value then the right one; `None`
/// for a side the join does not pad (a right-only pair in a left join).
pub(crate) type PairJoiner<VL, VR, VOut> =
    Arc<dyn Fn(Option<&VL>, Option<&VR>) -> Option<VOut> + Send + Sync>;

/// Which side a [`StreamStreamJoin`] processes, as a type: its input values
/// are `This`, the other side's `Other`.
pub(crate) trait JoinSide<VL, VR>: Send + 'static {
    /// The values this side's records carry.
    type This: Clone + Send + 'static;
    /// The values of the other side's records.
    type Other: Clone + Send + 'static;
    /// The side.
    const SIDE: Side;
    /// This side's value, as held in the outer-join store.
    fn held(value: Self::This) -> LeftOrRightValue<VL, VR>;
    /// The pair in left-then-right order.
    fn pair<'v>(
        this: Option<&'v Self::This>,
        other: Option<&'v Self::Other>,
    ) -> (Option<&'v VL>, Option<&'v VR>);
}

/// The left stream's processor (`JOINTHIS` / `OUTERTHIS`).
#[derive(Debug)]
pub(crate) struct LeftSide;

/// The right stream's processor (`JOINOTHER` / `OUTEROTHER`).
#[derive(Debug)]
pub(crate) struct RightSide;

impl<VL, VR> JoinSide<VL, VR> for LeftSide
where
    VL: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    type This = VL;
    type Other = VR;
    const SIDE: Side = Side::Left;

    fn held(value: VL) -> LeftOrRightValue<VL, VR> {
        LeftOrRightValue::Left(value)
    }

    fn pair<'v>(this: Option<&'v VL>, other: Option<&'v VR>) -> (Option<&'v VL>, Option<&'v VR>) {
        (this, other)
    }
}

impl<VL, VR> JoinSide<VL, VR> for RightSide
where
    VL: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    type This = VR;
    type Other = VL;
    const SIDE: Side = Side::Right;

    fn held(value: VR) -> LeftOrRightValue<VL, VR> {
        LeftOrRightValue::Right(value)
    }

    fn pair<'v>(this: Option<&'v VR>, other: Option<&'v VL>) -> (Option<&'v VL>, Option<&'v VR>) {
        (other, this)
    }
}

/// The windows as one side sees them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SideWindows {
    /// How much earlier than this side's record the other's may be.
    pub(crate) before: i64,
    /// How much later than this side's record the other's may be.
    pub(crate) after: i64,
    /// How long the window stores keep a record (see
    /// [`crate::JoinWindows`]).
    pub(crate) retention: i64,
    /// When held records' windows close.
    pub(crate) close: CloseRule,
}

/// Joins each record of one side with the records of the other side's
/// window store, as Kafka's `KStreamKStreamJoin` processor does:
///
/// 1. Stream time (shared by both sides, per task) moves to the record's
///    timestamp, whatever the record.
/// 2. A record with a null key and a value, on a side whose unmatched
///    records are emitted (`outer`: the left side of a left join, both
///    sides of an outer join), is emitted at once, null-padded (KIP-962).
///    Any other record with a null key or value is dropped, logged and
///    counted.
/// 3. If the record's timestamp is the stream time, the held unmatched
///    records whose window has closed are emitted first (see
///    [`OuterJoinBuffer::take_closed`]), null-padded, each with its own
///    timestamp and the current record's headers.
/// 4. The record joins every record of the other side with its key and a
///    timestamp in `[ts − before, ts + after]` (clamped at 0) that the
///    other store still keeps, in ascending timestamp then arrival order;
///    each result has the larger timestamp of the two. A partner held as
///    unmatched is forgotten.
/// 5. On an `outer` side, a record that found no partner is emitted at
///    once, null-padded, if there is no outer-join store (the deprecated
///    eager windows) or if its window's end `ts + after` is already before
///    stream time; otherwise it is held until its window closes.
pub(crate) struct StreamStreamJoin<K, VL, VR, VOut, S: JoinSide<VL, VR>> {
    other_store: String,
    windows: SideWindows,
    outer: bool,
    joiner: PairJoiner<VL, VR, VOut>,
    buffer: Option<OuterJoinBuffer<K, VL, VR>>,
    times_name: String,
    metrics: DslMetrics,
    other_handle: Option<WindowStoreHandle<K, Vec<S::Other>>>,
    times: Option<Arc<Mutex<JoinTimes>>>,
    /// The partners of the record being processed, by window: kept between
    /// records (empty) for its room.
    partners: Vec<(i64, Vec<S::Other>)>,
    _side: PhantomData<fn() -> S>,
}

impl<K, VL, VR, VOut, S: JoinSide<VL, VR>> fmt::Debug for StreamStreamJoin<K, VL, VR, VOut, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamStreamJoin")
            .field("side", &S::SIDE)
            .field("other_store", &self.other_store)
            .field("windows", &self.windows)
            .field("outer", &self.outer)
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

impl<K, VL, VR, VOut, S> StreamStreamJoin<K, VL, VR, VOut, S>
where
    K: Clone + Send + 'static,
    VL: Clone + Send + 'static,
    VR: Clone + Send + 'static,
    S: JoinSide<VL, VR>,
{
    /// Joins with the records of `other_store`. `outer`: emit this side's
    /// unmatched records; `buffer`: the outer-join store, if unmatched
    /// records wait for their window to close.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        other_store: String,
        windows: SideWindows,
        outer: bool,
        joiner: PairJoiner<VL, VR, VOut>,
        buffer: Option<OuterJoinBuffer<K, VL, VR>>,
        times_name: String,
        metrics: DslMetrics,
    ) -> Self {
        Self {
            other_store,
            windows,
            outer,
            joiner,
            buffer,
            times_name,
            metrics,
            other_handle: None,
            times: None,
            partners: Vec::new(),
            _side: PhantomData,
        }
    }

    /// Emits the held records whose window has closed.
    fn emit_closed(
        &self,
        ctx: &mut ProcessorContext<'_, K, VOut>,
        buffer: &OuterJoinBuffer<K, VL, VR>,
        headers: &streams_core::Headers,
    ) -> Result<()>
    where
        VOut: Clone + 'static,
    {
        let closed = {
            let mut times = lock(resolved(&self.times, &self.other_store)?);
            buffer.take_closed(ctx, &mut times, self.windows.after, self.windows.close)?
        };
        for (key, value) in closed {
            let joined = match &value {
                LeftOrRightValue::Left(v) => (self.joiner)(Some(v), None),
                LeftOrRightValue::Right(v) => (self.joiner)(None, Some(v)),
            };
            if let Some(joined) = joined {
                ctx.forward(Record {
                    key: Some(key.key),
                    value: Some(joined),
                    timestamp: key.timestamp,
                    headers: headers.clone(),
                })?;
            }
        }
        Ok(())
    }
}

impl<K, VL, VR, VOut, S> Processor<K, S::This, K, VOut> for StreamStreamJoin<K, VL, VR, VOut, S>
where
    K: Clone + Send + 'static,
    VL: Clone + Send + 'static,
    VR: Clone + Send + 'static,
    VOut: Clone + Send + 'static,
    S: JoinSide<VL, VR>,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, VOut>) -> Result<()> {
        self.other_handle = Some(ctx.window_store_handle(&self.other_store)?);
        self.times = Some(shared_times(ctx, &self.times_name)?);
        if let Some(buffer) = &mut self.buffer {
            buffer.init(ctx)?;
        }
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, VOut>,
        record: Record<K, S::This>,
    ) -> Result<()> {
        let timestamp = record.timestamp;
        let times = resolved(&self.times, &self.other_store)?;
        let stream_time = {
            let mut times = lock(times);
            times.advance_stream_time(timestamp);
            times.stream_time.unwrap_or(timestamp)
        };
        let (key, value) = match (record.key, record.value) {
            (None, Some(value)) if self.outer => {
                let (left, right) = S::pair(Some(&value), None);
                return match (self.joiner)(left, right) {
                    Some(joined) => ctx.forward(Record {
                        key: None,
                        value: Some(joined),
                        timestamp,
                        headers: record.headers,
                    }),
                    None => Ok(()),
                };
            }
            (Some(key), Some(value)) => (key, value),
            (key, _) => {
                tracing::debug!(
                    processor = %ctx.node_name(),
                    null_key = key.is_none(),
                    timestamp,
                    "skipping record due to null key or value: a join ignores it"
                );
                self.metrics.record_dropped();
                ctx.record_dropped();
                return Ok(());
            }
        };
        let headers = record.headers;

        if timestamp == stream_time {
            if let Some(buffer) = &self.buffer {
                self.emit_closed(ctx, buffer, &headers)?;
            }
        }

        let time_from = timestamp.saturating_sub(self.windows.before).max(0);
        let time_to = timestamp.saturating_add(self.windows.after).max(0);
        let other_store_time = lock(times).store_time(S::SIDE.other());
        let mut partners = std::mem::take(&mut self.partners);
        partners.clear();
        {
            let retention = self.windows.retention;
            let store = ctx.window_store_of(resolved(&self.other_handle, &self.other_store)?)?;
            store.fetch_range_with(&key, time_from, time_to, |t, others| {
                if live_in_store(t, other_store_time, retention) {
                    partners.push((t, others));
                }
            })?;
        }

        if partners.is_empty() {
            self.partners = partners;
            if !self.outer {
                return Ok(());
            }
            match &self.buffer {
                Some(buffer) if time_to >= stream_time => {
                    lock(times).held(timestamp);
                    let held_key = TimestampedKeyAndJoinSide {
                        timestamp,
                        left: S::SIDE == Side::Left,
                        key,
                    };
                    buffer.hold(ctx, &held_key, S::held(value))
                }
                _ => {
                    let (left, right) = S::pair(Some(&value), None);
                    match (self.joiner)(left, right) {
                        Some(joined) => ctx.forward(Record {
                            key: Some(key),
                            value: Some(joined),
                            timestamp,
                            headers,
                        }),
                        None => Ok(()),
                    }
                }
            }
        } else {
            // The last result takes the key and headers; the others get
            // copies.
            let last_window = partners.len() - 1;
            let (mut key, mut headers) = (Some(key), Some(headers));
            for (window, (other_time, others)) in partners.drain(..).enumerate() {
                let Some(this_key) = &key else { break };
                if let Some(buffer) = &self.buffer {
                    let held_key = TimestampedKeyAndJoinSide {
                        timestamp: other_time,
                        left: S::SIDE != Side::Left,
                        key: this_key.clone(),
                    };
                    buffer.forget(ctx, &held_key)?;
                }
                let last_value = others.len().wrapping_sub(1);
                for (index, other) in others.iter().enumerate() {
                    let (left, right) = S::pair(Some(&value), Some(other));
                    if let Some(joined) = (self.joiner)(left, right) {
                        let (key, headers) = if window == last_window && index == last_value {
                            (key.take(), headers.take().unwrap_or_default())
                        } else {
                            (key.clone(), headers.clone().unwrap_or_default())
                        };
                        ctx.forward(Record {
                            key,
                            value: Some(joined),
                            timestamp: timestamp.max(other_time),
                            headers,
                        })?;
                    }
                }
            }
            self.partners = partners;
            Ok(())
        }
    }
}
