//! [`OuterJoinBuffer`]: the records of a left or outer stream–stream join
//! that have not found a partner yet, kept in the join's shared store
//! until their window closes (Kafka's outer-join store of
//! `KStreamKStreamJoin`).

use std::fmt;

use streams_core::{KeyValueStoreHandle, ProcessorContext, Result};

use crate::join_serdes::{LeftOrRightValue, TimestampedKeyAndJoinSide};
use crate::processors::join_times::JoinTimes;
use crate::processors::resolved;

/// The stored key and value lists of the buffer.
type Handle<K, VL, VR> =
    KeyValueStoreHandle<TimestampedKeyAndJoinSide<K>, Vec<LeftOrRightValue<VL, VR>>>;

/// A held record taken out: its key (time, side, key) and its value.
pub(crate) type Held<K, VL, VR> = (TimestampedKeyAndJoinSide<K>, LeftOrRightValue<VL, VR>);

/// When a held record's window closes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CloseRule {
    /// How long after its timestamp a left record's window lasts (the
    /// windows' `after`).
    pub(crate) left_lookback: i64,
    /// How long after its timestamp a right record's window lasts (the
    /// windows' `before`).
    pub(crate) right_lookback: i64,
    /// The grace period.
    pub(crate) grace: i64,
}

impl CloseRule {
    /// Whether the window of a record held under `key` is still open at
    /// `stream_time`: `timestamp + lookback + grace ≥ stream_time`.
    fn open(&self, key: &TimestampedKeyAndJoinSide<impl Sized>, stream_time: i64) -> bool {
        let lookback = if key.left {
            self.left_lookback
        } else {
            self.right_lookback
        };
        key.timestamp
            .saturating_add(lookback)
            .saturating_add(self.grace)
            >= stream_time
    }
}

/// The unmatched records of both sides, in one key-value store keyed by
/// [`TimestampedKeyAndJoinSide`] (so that they sort by timestamp), each key
/// holding the list of its records' values in arrival order.
pub(crate) struct OuterJoinBuffer<K, VL, VR> {
    store: String,
    handle: Option<Handle<K, VL, VR>>,
}

impl<K, VL, VR> fmt::Debug for OuterJoinBuffer<K, VL, VR> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OuterJoinBuffer")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K, VL, VR> OuterJoinBuffer<K, VL, VR>
where
    K: Clone + Send + 'static,
    VL: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    /// The buffer in `store`.
    pub(crate) fn new(store: String) -> Self {
        Self {
            store,
            handle: None,
        }
    }

    /// Resolves the store.
    pub(crate) fn init<KO, VO>(&mut self, ctx: &mut ProcessorContext<'_, KO, VO>) -> Result<()> {
        self.handle = Some(ctx.key_value_store_handle(&self.store)?);
        Ok(())
    }

    /// Holds `value`, the value of a record at `key`'s time and side.
    pub(crate) fn hold<KO, VO>(
        &self,
        ctx: &mut ProcessorContext<'_, KO, VO>,
        key: &TimestampedKeyAndJoinSide<K>,
        value: LeftOrRightValue<VL, VR>,
    ) -> Result<()> {
        ctx.key_value_store_of(resolved(&self.handle, &self.store)?)?
            .update(key, |list| {
                let mut list = list.unwrap_or_default();
                list.push(value);
                (Some(list), ())
            })
    }

    /// Forgets the records held under `key`: they found a partner. Writes
    /// nothing (not even to the changelog) when there are none.
    pub(crate) fn forget<KO, VO>(
        &self,
        ctx: &mut ProcessorContext<'_, KO, VO>,
        key: &TimestampedKeyAndJoinSide<K>,
    ) -> Result<()> {
        let mut store = ctx.key_value_store_of(resolved(&self.handle, &self.store)?)?;
        if store.get(key)?.is_some() {
            store.delete(key)?;
        }
        Ok(())
    }

    /// Takes out the held records whose window has closed at the shared
    /// stream time, in store order (timestamp, right before left, key),
    /// with Kafka's rules: nothing is looked at while the bound of held
    /// timestamps plus `this_after` (the calling side's `after`) plus the
    /// grace is at or after stream time; the scan stops once a record of
    /// each side was found open; it leaves the bound at the timestamp of
    /// the last record it looked at. Each key taken out is deleted.
    pub(crate) fn take_closed<KO, VO>(
        &self,
        ctx: &mut ProcessorContext<'_, KO, VO>,
        times: &mut JoinTimes,
        this_after: i64,
        rule: CloseRule,
    ) -> Result<Vec<Held<K, VL, VR>>> {
        let Some(stream_time) = times.stream_time else {
            return Ok(Vec::new());
        };
        if let Some(min) = times.min_time {
            if min.saturating_add(this_after).saturating_add(rule.grace) >= stream_time {
                return Ok(Vec::new());
            }
        }
        times.min_time = None;
        let mut store = ctx.key_value_store_of(resolved(&self.handle, &self.store)?)?;
        let mut closed = Vec::new();
        let mut taken = Vec::new();
        let (mut left_open, mut right_open) = (false, false);
        'scan: for entry in store.all()? {
            let (key, values) = entry?;
            let mut take = false;
            for value in values {
                times.min_time = Some(key.timestamp);
                if left_open && right_open {
                    break 'scan;
                }
                if rule.open(&key, stream_time) {
                    if key.left {
                        left_open = true;
                    } else {
                        right_open = true;
                    }
                    continue;
                }
                closed.push((key.clone(), value));
                take = true;
            }
            if take {
                taken.push(key);
            }
        }
        for key in &taken {
            store.delete(key)?;
        }
        Ok(closed)
    }
}
