//! The stream thread's rebalance listener, as Kafka Streams'
//! `StreamsRebalanceListener`: commit and close the tasks of revoked
//! partitions, create the tasks of assigned ones.

use std::sync::{Arc, Mutex};

use crate::client::{Offsets, RebalanceConsumer, RebalanceListener, TopicPartition};
use crate::error::{ClientErrorKind, Result};

use super::state::Shared;

use super::clients::now;
use super::task_manager::{lock, Core};

/// The consumer's rebalance callbacks: commit and close revoked tasks,
/// create assigned ones.
pub(super) struct Listener {
    pub(super) core: Arc<Mutex<Core>>,
    pub(super) shared: Arc<Shared>,
    pub(super) index: usize,
}

impl RebalanceListener for Listener {
    fn on_partitions_revoked(
        &mut self,
        partitions: &[TopicPartition],
        consumer: &mut dyn RebalanceConsumer,
    ) {
        self.shared.set_thread_rebalancing(self.index, true);
        let mut core = lock(&self.core);
        core.awaiting_assignment = true;
        if core.fatal.is_some() {
            return;
        }
        let result = if core.eos() {
            core.revoke_eos(partitions, consumer.group_metadata())
        } else {
            core.revoke(partitions, |offsets| consumer.commit_sync(offsets))
        };
        if let Err(e) = result {
            core.fatal = Some(e);
        }
    }

    fn on_partitions_assigned(
        &mut self,
        partitions: &[TopicPartition],
        consumer: &mut dyn RebalanceConsumer,
    ) {
        self.shared.set_thread_rebalancing(self.index, true);
        // Resume from the committed offsets: records fetched but not
        // processed before a revocation are read again.
        let committed = match consumer.committed(partitions) {
            Ok(committed) => committed,
            Err(e) => {
                let mut core = lock(&self.core);
                core.awaiting_assignment = false;
                core.fatal.get_or_insert(e);
                return;
            }
        };
        for tp in partitions {
            let offset = committed.get(tp).map_or(0, |o| o.offset);
            if let Err(e) = consumer.seek(tp, offset) {
                tracing::warn!(partition = %tp, error = %e, "cannot seek to the committed offset");
            }
        }
        let mut core = lock(&self.core);
        core.awaiting_assignment = false;
        if core.fatal.is_some() {
            return;
        }
        if core.eos() {
            // A zombie may hold pending offsets of these partitions in an
            // open transaction: the loop reads the committed offsets again
            // once the group's offsets are stable.
            core.unstable.extend(partitions.iter().cloned());
            core.restore_blocked_since = None;
        }
        if let Err(e) = core.create_tasks(partitions) {
            core.fatal = Some(e);
            return;
        }
        core.resume_partition_times(&committed);
    }

    fn on_partitions_lost(
        &mut self,
        partitions: &[TopicPartition],
        _consumer: &mut dyn RebalanceConsumer,
    ) {
        self.shared.set_thread_rebalancing(self.index, true);
        let mut core = lock(&self.core);
        core.awaiting_assignment = true;
        if core.eos() {
            // The open transaction holds the work of every task: abort it
            // and close them all dirty.
            tracing::warn!(
                thread = self.index,
                "partitions lost; aborting any open transaction and closing every task dirty"
            );
            core.close_all_dirty();
            core.reinit_producer = true;
            return;
        }
        let ids = core.tasks_of(partitions);
        for id in ids {
            tracing::warn!(task = %id, "task lost without a commit; its uncommitted work is redone by its next owner");
            core.tasks.remove(&id);
        }
    }
}

impl Core {
    /// Commits and closes the tasks of revoked partitions.
    pub(super) fn revoke(
        &mut self,
        partitions: &[TopicPartition],
        commit: impl FnOnce(Offsets) -> Result<()>,
    ) -> Result<()> {
        let ids = self.tasks_of(partitions);
        if ids.is_empty() {
            return Ok(());
        }
        self.flush_tasks(&ids, true)?;
        let outgoing = self.take_outputs();
        self.send_and_settle(outgoing)?;
        let (offsets, topics) = self.offsets(&ids);
        now(self.producer.flush(&topics))??;
        if !offsets.is_empty() {
            match commit(offsets) {
                Ok(()) => {}
                // The group moved on (a new generation): the next owner
                // redoes the work since the last commit, as at-least-once
                // allows.
                Err(e)
                    if e.client_error_kind()
                        .is_some_and(|k| k != ClientErrorKind::Fatal) =>
                {
                    tracing::warn!(thread = self.index, error = %e, "offset commit of revoked tasks refused");
                }
                Err(e) => return Err(e),
            }
        }
        self.write_checkpoints(&ids, true)?;
        for id in &ids {
            self.tasks.remove(id);
        }
        tracing::info!(
            thread = self.index,
            tasks = ids.len(),
            "closed tasks of revoked partitions"
        );
        Ok(())
    }
}
