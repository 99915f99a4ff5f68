//! The aggregation of a grouped stream per key and sliding window
//! (Kafka's `KStreamSlidingWindowAggregate`).

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use streams_core::{Headers, Processor, ProcessorContext, Record, Result, Window, Windowed};

use crate::builder::DslMetrics;
use crate::change::{Change, ValueAndTimestamp};
use crate::processors::observed_stream_time::ObservedStreamTime;
use crate::processors::{aggregation_input, AddFn};
use crate::sliding_windows::SlidingWindows;

/// Aggregates a grouped stream per key and sliding window (Kafka's
/// `KStreamSlidingWindowAggregate`).
pub(crate) struct SlidingAggregate<K, V, VA> {
    store: String,
    windows: SlidingWindows,
    add: AddFn<K, V, VA>,
    metrics: DslMetrics,
    /// The largest timestamp this processor has seen.
    observed: ObservedStreamTime,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V, VA> fmt::Debug for SlidingAggregate<K, V, VA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlidingAggregate")
            .field("store", &self.store)
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

/// What one record does to the windows of its key: store writes and the
/// updates to forward, collected while the store is borrowed.
struct Pass<'r, K, V, VA> {
    key: &'r K,
    value: &'r V,
    ts: i64,
    close_time: i64,
    stream_time: i64,
    /// Window starts whose window is written, with the new aggregate.
    writes: Vec<(i64, ValueAndTimestamp<VA>)>,
    /// Updates to forward, in order: window start, new and old aggregate,
    /// timestamp.
    out: Vec<(i64, VA, Option<VA>, i64)>,
    /// Windows the record was too late for.
    dropped: u64,
}

impl<K, V, VA> SlidingAggregate<K, V, VA> {
    pub(crate) fn new(
        store: String,
        windows: SlidingWindows,
        add: AddFn<K, V, VA>,
        metrics: DslMetrics,
    ) -> Self {
        Self {
            store,
            windows,
            add,
            metrics,
            observed: ObservedStreamTime::default(),
            _types: PhantomData,
        }
    }
}

impl<K, V, VA> SlidingAggregate<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    /// Adds the record to the window starting at `start`: an existing
    /// window (`base` its aggregate and `base_ts` its timestamp, `existing`
    /// set) or a new one (`base` the aggregate it starts from, if any).
    /// Skipped, and counted, if the window is closed.
    fn update(
        &self,
        pass: &mut Pass<'_, K, V, VA>,
        start: i64,
        base: Option<VA>,
        base_ts: i64,
        existing: bool,
    ) {
        let end = start.saturating_add(self.windows.time_difference_ms());
        if end < pass.close_time {
            tracing::debug!(
                store = %self.store,
                window_start = start,
                window_end = end,
                expiration = end.saturating_add(self.windows.grace_ms()),
                stream_time = pass.stream_time,
                timestamp = pass.ts,
                "skipping record for expired window"
            );
            pass.dropped += 1;
            return;
        }
        let new = (self.add)(pass.key, pass.value, base.clone());
        let timestamp = pass.ts.max(base_ts);
        pass.writes
            .push((start, ValueAndTimestamp::make(new.clone(), timestamp)));
        pass.out
            .push((start, new, if existing { base } else { None }, timestamp));
    }

    /// A record at or after the time difference: its left window starts
    /// at `ts - d >= 0`. `windows` are the key's windows starting from
    /// `ts - 2d` to `ts + 1`, by ascending start; they are visited from the
    /// latest start down, as Kafka's aggregation does, so that updates go
    /// out in its order.
    fn process_normal(
        &self,
        pass: &mut Pass<'_, K, V, VA>,
        windows: Vec<(i64, ValueAndTimestamp<VA>)>,
    ) {
        let d = self.windows.time_difference_ms();
        let ts = pass.ts;
        let mut starts = HashSet::new();
        let mut left_agg: Option<ValueAndTimestamp<VA>> = None;
        let mut right_agg: Option<ValueAndTimestamp<VA>> = None;
        let mut left_exists = false;
        let mut right_exists = false;
        let mut previous_ts: Option<i64> = None;
        for (start, window) in windows.into_iter().rev() {
            starts.insert(start);
            let end = start.saturating_add(d);
            if start == ts.saturating_add(1) {
                right_exists = true;
            } else if end > ts {
                // A window holding the record: the latest one holds the
                // records a new right window starts from.
                if right_agg.is_none() {
                    right_agg = Some(window.clone());
                }
                self.update(pass, start, Some(window.value), window.timestamp, true);
            } else if end == ts {
                left_exists = true;
                let latest = window.timestamp;
                self.update(pass, start, Some(window.value), latest, true);
                if latest >= ts {
                    // A record at this time came before: every window this
                    // one would create exists.
                    return;
                }
                previous_ts = Some(latest);
            } else {
                // The latest window ending before the record holds the
                // records a new left window starts from.
                previous_ts = Some(window.timestamp);
                left_agg = Some(window);
                break;
            }
        }
        // The previous record's right window, if it does not exist and
        // reaches this record. When it starts at ts - d it is this record's
        // left window too, which is then updated twice, as in Kafka.
        if let Some(previous) = previous_ts {
            let start = previous.saturating_add(1);
            if !starts.contains(&start) && start.saturating_add(d) >= ts {
                self.update(pass, start, None, ts, false);
            }
        }
        if !left_exists {
            let base = match (previous_ts, left_agg) {
                (Some(previous), Some(left)) if ts.saturating_sub(d) <= previous => {
                    Some(left.value)
                }
                _ => None,
            };
            self.update(pass, ts.saturating_sub(d), base, ts, false);
        }
        if !right_exists {
            self.create_right_window(pass, right_agg);
        }
    }

    /// A record before the time difference: every such record's left
    /// window is `[0, d]`.
    fn process_early(
        &self,
        pass: &mut Pass<'_, K, V, VA>,
        windows: Vec<(i64, ValueAndTimestamp<VA>)>,
    ) {
        let ts = pass.ts;
        let mut starts = HashSet::new();
        let mut combined: Option<ValueAndTimestamp<VA>> = None;
        let mut right_agg: Option<ValueAndTimestamp<VA>> = None;
        let mut right_exists = false;
        let mut previous_ts: Option<i64> = None;
        for (start, window) in windows {
            starts.insert(start);
            if start == 0 {
                if window.timestamp < ts {
                    previous_ts = Some(window.timestamp);
                }
                combined = Some(window);
            } else if start <= ts {
                self.update(
                    pass,
                    start,
                    Some(window.value.clone()),
                    window.timestamp,
                    true,
                );
                right_agg = Some(window);
            } else {
                right_exists = true;
            }
        }
        if right_agg.is_none() {
            right_agg = combined.clone().filter(|c| c.timestamp > ts);
        }
        if !right_exists {
            self.create_right_window(pass, right_agg);
        }
        if let Some(previous) = previous_ts {
            let start = previous.saturating_add(1);
            if !starts.contains(&start) {
                self.update(pass, start, None, ts, false);
            }
        }
        match combined {
            None => self.update(pass, 0, None, ts, false),
            Some(window) => self.update(pass, 0, Some(window.value), window.timestamp, true),
        }
    }

    /// Creates the record's right window `[ts + 1, ts + 1 + d]` from the
    /// aggregate of the records after it, if there are any.
    fn create_right_window(
        &self,
        pass: &mut Pass<'_, K, V, VA>,
        right_agg: Option<ValueAndTimestamp<VA>>,
    ) {
        let Some(right) = right_agg.filter(|r| r.timestamp > pass.ts) else {
            return;
        };
        let start = pass.ts.saturating_add(1);
        pass.out
            .push((start, right.value.clone(), None, right.timestamp));
        pass.writes.push((start, right));
    }
}

impl<K, V, VA> Processor<K, V, Windowed<K>, Change<VA>> for SlidingAggregate<K, V, VA>
where
    K: Clone + Send + 'static,
    V: Clone + Send + 'static,
    VA: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, Windowed<K>, Change<VA>>,
        record: Record<K, V>,
    ) -> Result<()> {
        let Some((key, value)) = aggregation_input(ctx, &record, &self.metrics) else {
            return Ok(());
        };
        let ts = record.timestamp;
        if ts < 0 {
            tracing::debug!(processor = %ctx.node_name(), timestamp = ts, "skipping record with a negative timestamp: it belongs to no window");
            self.metrics.record_dropped();
            return Ok(());
        }
        let d = self.windows.time_difference_ms();
        let stream_time = self.observed.advance_from(ctx.resumed_stream_time(), ts);
        let close_time = stream_time.saturating_sub(self.windows.grace_ms());
        if ts.saturating_add(1).saturating_add(d) <= close_time {
            tracing::debug!(
                processor = %ctx.node_name(),
                window_start = ts.saturating_add(1),
                window_end = ts.saturating_add(1).saturating_add(d),
                expiration = close_time,
                stream_time,
                timestamp = ts,
                "skipping record for expired window"
            );
            self.metrics.record_dropped();
            ctx.record_dropped();
            return Ok(());
        }
        let mut pass = Pass {
            key,
            value,
            ts,
            close_time,
            stream_time,
            writes: Vec::new(),
            out: Vec::new(),
            dropped: 0,
        };
        {
            let mut store = ctx.window_store::<K, ValueAndTimestamp<VA>>(&self.store)?;
            let from = if ts < d {
                0
            } else {
                ts.saturating_sub(d.saturating_mul(2)).max(0)
            };
            let windows = store.fetch_range(key, from, ts.saturating_add(1))?;
            if ts < d {
                self.process_early(&mut pass, windows);
            } else {
                self.process_normal(&mut pass, windows);
            }
            for (start, window) in &pass.writes {
                store.put(key, *start, Some(window))?;
            }
        }
        for _ in 0..pass.dropped {
            self.metrics.record_dropped();
            ctx.record_dropped();
        }
        for (start, new, old, timestamp) in pass.out {
            let window = Window::new(start, start.saturating_add(d));
            ctx.forward(Record {
                key: Some(Windowed::new(key.clone(), window)),
                value: Some(Change::new(Some(new), old)),
                timestamp,
                headers: Headers::clone(&record.headers),
            })?;
        }
        Ok(())
    }
}
