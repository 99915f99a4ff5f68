//! Whether a table's processors send old values downstream (Kafka's
//! `sendOldValues`), decided while the topology is built.
//!
//! Between table processors an update travels as a [`crate::Change`]; its
//! old value matters only to what subtracts it (a re-grouped aggregation)
//! and to a filter deciding whether a rejected row needs a tombstone. As in
//! Kafka Streams, a table sends old values only when something downstream
//! asks for them, or when its source is materialized anyway: a filter over
//! a table that sends no old values forwards a tombstone for every row it
//! rejects (the row may have passed before), and one over a table that does
//! forwards nothing for a row that neither passes now nor passed before.
//!
//! The flags are set during building and read when a task creates its
//! processors, after building is over.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What a table's old values depend on.
#[derive(Debug)]
enum Kind {
    /// A table read from a topic (`builder.table`, `KStream::to_table`):
    /// it sends old values once it is materialized, that is named by the
    /// user or needed by a downstream operation.
    Source { materialized: AtomicBool },
    /// A stateless operation (filter, map_values): as its parent, unless
    /// its own result is materialized.
    Derived {
        parent: Arc<OldValues>,
        materialized: bool,
    },
    /// A table-table join: sending old values makes both sides send them.
    Join { parents: [Arc<OldValues>; 2] },
    /// An aggregation: its store holds the old value; it always sends it.
    Always,
    /// A result kept in no store that cannot know its old values (an
    /// unmaterialized foreign-key join).
    Never,
}

/// One table's `sendOldValues` flag and what it depends on.
#[derive(Debug)]
pub(crate) struct OldValues {
    kind: Kind,
    enabled: AtomicBool,
}

impl OldValues {
    fn make(kind: Kind, enabled: bool) -> Arc<Self> {
        Arc::new(Self {
            kind,
            enabled: AtomicBool::new(enabled),
        })
    }

    /// A source table, materialized (named by the user) or not.
    pub(crate) fn source(materialized: bool) -> Arc<Self> {
        Self::make(
            Kind::Source {
                materialized: AtomicBool::new(materialized),
            },
            false,
        )
    }

    /// A filter: sends old values from the start if its parent already
    /// can without being forced (Kafka's filter asks its parent at once, so
    /// that a materialized parent saves it needless tombstones).
    pub(crate) fn filter(parent: &Arc<Self>, materialized: bool) -> Arc<Self> {
        let this = Self::make(
            Kind::Derived {
                parent: parent.clone(),
                materialized,
            },
            materialized,
        );
        this.enable(false);
        this
    }

    /// A stateless operation other than a filter (map_values).
    pub(crate) fn derived(parent: &Arc<Self>, materialized: bool) -> Arc<Self> {
        Self::make(
            Kind::Derived {
                parent: parent.clone(),
                materialized,
            },
            materialized,
        )
    }

    /// A table-table join of two tables.
    pub(crate) fn join(left: &Arc<Self>, right: &Arc<Self>) -> Arc<Self> {
        Self::make(
            Kind::Join {
                parents: [left.clone(), right.clone()],
            },
            false,
        )
    }

    /// An aggregation's table.
    pub(crate) fn always() -> Arc<Self> {
        Self::make(Kind::Always, true)
    }

    /// A table that can never send old values.
    pub(crate) fn never() -> Arc<Self> {
        Self::make(Kind::Never, false)
    }

    /// Asks the table to send old values; `force` materializes a source
    /// that is not. Returns whether it now does.
    pub(crate) fn enable(&self, force: bool) -> bool {
        if self.enabled() {
            return true;
        }
        let now = match &self.kind {
            Kind::Source { materialized } => {
                if force {
                    materialized.store(true, Ordering::Relaxed);
                }
                materialized.load(Ordering::Relaxed)
            }
            Kind::Derived {
                parent,
                materialized,
            } => parent.enable(force) || *materialized,
            Kind::Join { parents } => {
                parents[0].enable(true);
                parents[1].enable(true);
                true
            }
            Kind::Always => true,
            Kind::Never => false,
        };
        if now {
            self.enabled.store(true, Ordering::Relaxed);
        }
        now
    }

    /// Materializes a source table (a downstream operation reads its
    /// store); no-op for other tables.
    pub(crate) fn materialize(&self) {
        if let Kind::Source { materialized } = &self.kind {
            materialized.store(true, Ordering::Relaxed);
        }
    }

    /// Whether the table sends old values.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_filter_over_an_unnamed_source_sends_no_old_values_until_asked() {
        let source = OldValues::source(false);
        let filter = OldValues::filter(&source, false);
        assert!(!filter.enabled());
        assert!(filter.enable(true), "a grouping forces it");
        assert!(source.enabled());
    }

    #[test]
    fn a_filter_over_a_named_source_sends_old_values_at_once() {
        let source = OldValues::source(true);
        let filter = OldValues::filter(&source, false);
        assert!(filter.enabled());
    }

    #[test]
    fn a_filter_sees_a_source_materialized_by_a_join_before_it() {
        let source = OldValues::source(false);
        source.materialize();
        assert!(OldValues::filter(&source, false).enabled());
    }

    #[test]
    fn a_join_forces_both_sides() {
        let (left, right) = (OldValues::source(false), OldValues::source(false));
        let left_filter = OldValues::filter(&left, false);
        let join = OldValues::join(&left_filter, &right);
        assert!(!join.enabled());
        assert!(join.enable(false));
        assert!(left_filter.enabled() && left.enabled() && right.enabled());
    }
}
