//! [`WindowedTable`]: a table of values per key and time window (Faust's
//! `table.tumbling(size, expires=..)` and `table.hopping(..)`).

use std::fmt;
use std::time::Duration;

use streams_core::ProcessorContext;

use crate::current::request;
use crate::error::{AgentError, Result};
use crate::table::{Table, Windows};

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Which time a windowed table's operations use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelativeTo {
    /// The timestamp of the event being processed (the default).
    Stream,
    /// The wall clock.
    Now,
}

/// A table of values per key and time window, made by [`Table::tumbling`]
/// or [`Table::hopping`]: a window store of the task (windows kept for the
/// `expires` duration after their start), with the compacted and deleting
/// changelog `<application.id>-<name>-changelog`.
///
/// Operations take the time of the event being processed (Faust's
/// `relative_to_stream`, the default) or the wall clock
/// ([`WindowedTable::relative_to_now`]). [`WindowedTable::update`] updates
/// every window holding that time (one for tumbling windows, `size / step`
/// for hopping ones); the reads give the latest such window's value.
pub struct WindowedTable<K, V> {
    table: Table<K, V>,
    windows: Windows,
    relative: RelativeTo,
}

impl<K, V> Clone for WindowedTable<K, V> {
    fn clone(&self) -> Self {
        Self {
            table: self.table.clone(),
            windows: self.windows,
            relative: self.relative,
        }
    }
}

impl<K, V> fmt::Debug for WindowedTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedTable")
            .field("table", &self.table)
            .field("windows", &self.windows)
            .field("relative", &self.relative)
            .finish()
    }
}

impl<K, V> Table<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The table, windowed by tumbling windows of `size`, each kept until
    /// `expires` after its start (Faust's `.tumbling(size, expires=..)`).
    ///
    /// # Errors
    ///
    /// [`AgentError::Usage`] for a zero size, an `expires` shorter than the
    /// size, or a table windowed already.
    pub fn tumbling(self, size: Duration, expires: Duration) -> Result<WindowedTable<K, V>> {
        self.hopping(size, size, expires)
    }

    /// The table, windowed by hopping windows of `size` starting every
    /// `step`, each kept until `expires` after its start (Faust's
    /// `.hopping(size, step, expires=..)`).
    ///
    /// # Errors
    ///
    /// As [`Table::tumbling`], and for a step of zero or larger than the
    /// size.
    pub fn hopping(
        self,
        size: Duration,
        step: Duration,
        expires: Duration,
    ) -> Result<WindowedTable<K, V>> {
        let windows = Windows {
            size: millis(size),
            step: millis(step),
            expires: millis(expires),
        };
        if windows.size <= 0 || windows.step <= 0 || windows.step > windows.size {
            return Err(AgentError::Usage(format!(
                "table '{}': windows need 0 < step <= size, got size {size:?} and step {step:?}",
                self.name
            )));
        }
        if windows.expires < windows.size {
            return Err(AgentError::Usage(format!(
                "table '{}': expires ({expires:?}) is shorter than the window size ({size:?})",
                self.name
            )));
        }
        if self.windows.set(windows).is_err() {
            return Err(AgentError::Usage(format!(
                "table '{}' is windowed already",
                self.name
            )));
        }
        Ok(WindowedTable {
            table: self,
            windows,
            relative: RelativeTo::Stream,
        })
    }
}

impl<K, V> WindowedTable<K, V>
where
    K: Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The table's name.
    pub fn name(&self) -> &str {
        self.table.name()
    }

    /// Operations use the wall clock, not the event's time.
    pub fn relative_to_now(mut self) -> Self {
        self.relative = RelativeTo::Now;
        self
    }

    /// Operations use the timestamp of the event being processed (the
    /// default).
    pub fn relative_to_stream(mut self) -> Self {
        self.relative = RelativeTo::Stream;
        self
    }

    /// Runs `op` on the window store for `key` at the time `at` picks.
    async fn with_key<T, F>(&self, key: &K, operation: &'static str, at: Time, op: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(
                &mut ProcessorContext<'a, (), ()>,
                &Table<K, V>,
                Windows,
                i64,
                K,
            ) -> Result<T>
            + Send
            + 'static,
    {
        let table = self.table.clone();
        let (windows, relative) = (self.windows, self.relative);
        let key = key.clone();
        let name = self.table.name.clone();
        request(
            move || format!("{operation} on table '{name}'"),
            move |current, ctx| {
                table.check_partition(current, &key)?;
                let base = match (at, relative) {
                    (Time::Now, _) | (_, RelativeTo::Now) => ctx.wall_clock_time(),
                    (_, RelativeTo::Stream) => ctx
                        .record_metadata()
                        .map_or_else(|| ctx.wall_clock_time(), |m| m.timestamp),
                };
                let time = match at {
                    Time::Before(ms) => base.saturating_sub(ms),
                    _ => base,
                };
                op(ctx, &table, windows, time, key)
            },
        )
        .await
    }

    /// Replaces the value of `key` in every window holding the time (the
    /// default when a window has none) with `update(value)`; returns the
    /// latest window's new value. Faust's `table[k] += 1`.
    ///
    /// # Errors
    ///
    /// [`AgentError::NoDefault`] when a window has no value and the table
    /// no default; [`AgentError::Usage`] for a negative time.
    pub async fn update<F>(&self, key: &K, update: F) -> Result<V>
    where
        F: Fn(V) -> V + Send + 'static,
    {
        self.with_key(
            key,
            "update",
            Time::Relative,
            move |ctx, table, windows, time, key| {
                let starts = windows.starts(time);
                let mut store = ctx.window_store::<K, V>(&table.name)?;
                let mut latest = None;
                for start in starts {
                    let old = store.fetch(&key, start)?;
                    let base = match old {
                        Some(value) => value,
                        None => table.default_value()?,
                    };
                    let new = update(base);
                    store.put(&key, start, Some(&new))?;
                    latest = Some(new);
                }
                latest.ok_or_else(|| {
                    AgentError::Usage(format!(
                        "table '{}': no window holds time {time} (before the epoch)",
                        table.name
                    ))
                })
            },
        )
        .await
    }

    /// The value of `key` in the latest window holding the time, or the
    /// default (Faust's `table[k].current()`).
    pub async fn current(&self, key: &K) -> Result<V> {
        self.read(key, Time::Relative).await
    }

    /// The value of `key` in the latest window holding the wall clock's
    /// time, or the default (Faust's `table[k].now()`).
    pub async fn now(&self, key: &K) -> Result<V> {
        self.read(key, Time::Now).await
    }

    /// The value of `key` in the latest window holding the time minus
    /// `delta`, or the default (Faust's `table[k].delta(d)`).
    pub async fn delta(&self, key: &K, delta: Duration) -> Result<V> {
        self.read(key, Time::Before(millis(delta))).await
    }

    async fn read(&self, key: &K, at: Time) -> Result<V> {
        self.with_key(key, "read", at, |ctx, table, windows, time, key| {
            let store = ctx.window_store::<K, V>(&table.name)?;
            let value = match windows.starts(time).last() {
                Some(&start) => store.fetch(&key, start)?,
                None => None,
            };
            match value {
                Some(value) => Ok(value),
                None => table.default_value(),
            }
        })
        .await
    }
}

/// The time an operation uses.
#[derive(Debug, Clone, Copy)]
enum Time {
    /// The table's: the event's or the wall clock's.
    Relative,
    /// The wall clock's.
    Now,
    /// The table's time minus this many milliseconds.
    Before(i64),
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn window_starts_are_every_window_holding_the_time(
            size in 1i64..50,
            step_frac in 0.0f64..1.0,
            t in -5i64..500,
        ) {
            let step = 1 + ((size - 1) as f64 * step_frac) as i64;
            let windows = Windows { size, step, expires: size };
            let brute: Vec<i64> = (0..=t.max(0))
                .filter(|s| s % step == 0 && *s <= t && t < s + size)
                .collect();
            prop_assert_eq!(windows.starts(t), if t < 0 { Vec::new() } else { brute });
        }
    }
}
