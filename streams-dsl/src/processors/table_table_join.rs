//! One side of a table–table join on the primary key (Kafka's
//! `KTableKTableInnerJoin`, `KTableKTableLeftJoin`, `KTableKTableRightJoin`
//! and `KTableKTableOuterJoin`): an update of this side's table is joined
//! with the other table's current row. An out-of-order update of a
//! versioned table is skipped.

use std::fmt;
use std::sync::Arc;

use streams_core::{Processor, ProcessorContext, Record, Result};

use crate::change::Change;
use crate::value_getter::ValueGetter;

/// Joins this side's value (if any) with the other side's (if any), in
/// the user's order; `None` where the join kind has no result for them.
pub(crate) type TableJoinFn<VThis, VOther, VR> =
    Arc<dyn Fn(Option<&VThis>, Option<&VOther>) -> Option<VR> + Send + Sync>;

/// What one side of a join needs of the other side's row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SideMode {
    /// Both rows must exist (an inner join, either side).
    Inner,
    /// This side drives; the other row may be missing (the left side of a
    /// left join).
    Left,
    /// The other row must exist; this side's may be missing (the right
    /// side of a left join).
    Right,
    /// Either row may be missing (an outer join, either side).
    Outer,
}

/// The processor of one side of a table–table join.
pub(crate) struct TableTableJoin<K, VThis, VOther, VR> {
    mode: SideMode,
    other: ValueGetter<K, VOther>,
    joiner: TableJoinFn<VThis, VOther, VR>,
    send_old: bool,
    /// This side's table is versioned: its out-of-order updates are
    /// skipped (Kafka's versioned semantics, KIP-914).
    versioned: bool,
}

impl<K, VThis, VOther, VR> fmt::Debug for TableTableJoin<K, VThis, VOther, VR> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TableTableJoin")
            .field("mode", &self.mode)
            .field("other", &self.other)
            .field("versioned", &self.versioned)
            .finish_non_exhaustive()
    }
}

impl<K, VThis, VOther, VR> TableTableJoin<K, VThis, VOther, VR> {
    pub(crate) fn new(
        mode: SideMode,
        other: ValueGetter<K, VOther>,
        joiner: TableJoinFn<VThis, VOther, VR>,
        send_old: bool,
        versioned: bool,
    ) -> Self {
        Self {
            mode,
            other,
            joiner,
            send_old,
            versioned,
        }
    }
}

impl<K, VThis, VOther, VR> Processor<K, Change<VThis>, K, Change<VR>>
    for TableTableJoin<K, VThis, VOther, VR>
where
    K: Clone + Send + 'static,
    VThis: Clone + Send + 'static,
    VOther: Clone + Send + 'static,
    VR: Clone + Send + 'static,
{
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<VR>>,
        record: Record<K, Change<VThis>>,
    ) -> Result<()> {
        let (Some(key), Some(change)) = (&record.key, &record.value) else {
            tracing::warn!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping table update with a null key in a table-table join");
            ctx.record_dropped();
            return Ok(());
        };
        if self.versioned && !change.is_latest {
            tracing::debug!(processor = %ctx.node_name(), timestamp = record.timestamp, "skipping an out-of-order update of a versioned table in a table-table join");
            ctx.record_dropped();
            return Ok(());
        }
        let other = self.other.get(&mut ctx.stores(), key)?;
        let timestamp = match (&other, self.mode) {
            (None, SideMode::Inner | SideMode::Right) => return Ok(()),
            (None, SideMode::Left | SideMode::Outer) => {
                if change.new.is_none() && change.old.is_none() {
                    return Ok(());
                }
                record.timestamp
            }
            (Some(row), _) => record.timestamp.max(row.timestamp),
        };
        let other = other.as_ref().map(|row| &row.value);
        let join = |this: Option<&VThis>| -> Option<VR> {
            match self.mode {
                // The right side of a left join joins even its delete: the
                // left row then stands alone.
                SideMode::Right => (self.joiner)(this, other),
                SideMode::Outer if this.is_none() && other.is_none() => None,
                SideMode::Outer => (self.joiner)(this, other),
                SideMode::Inner | SideMode::Left => {
                    this.and_then(|v| (self.joiner)(Some(v), other))
                }
            }
        };
        let new = join(change.new.as_ref());
        let old = if self.send_old {
            join(change.old.as_ref())
        } else {
            None
        };
        ctx.forward(Record {
            key: record.key,
            value: Some(Change::new(new, old).with_is_latest(change.is_latest)),
            timestamp,
            headers: record.headers,
        })
    }
}
