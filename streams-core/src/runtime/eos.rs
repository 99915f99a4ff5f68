//! Exactly-once: the stream thread's transactional producer and the
//! commit of a transaction, as Kafka Streams' `StreamsProducer`.
//!
//! A transaction begins with the first output after a commit; a commit
//! sends the consumed offsets into it with the consumer's group metadata
//! and commits it, both in the loop and in the revocation callback (whose
//! producer calls complete at their first poll). A failed transaction
//! closes every task dirty (stores wiped, checkpoints deleted), replaces
//! the producer and rejoins the group.

use std::sync::{Arc, Mutex};

use crate::client::{GroupMetadata, MainConsumer, Offsets, StreamProducer, TopicPartition};
use crate::error::{Result, StreamsError};
use crate::exec::TaskId;

use super::state::{PausePoint, Shared};

use super::clients::{make_producer, now, task_migrated};
use super::rebalance::Listener;
use super::task_manager::{lock, Core};

/// Gives the thread a new transactional producer: `init_transactions`
/// fences the old one and aborts whatever transaction it left open.
pub(super) async fn reinit_producer(core: &Arc<Mutex<Core>>) -> Result<()> {
    let producer = {
        let mut core = lock(core);
        core.reinit_producer = false;
        core.in_txn = false;
        core.new_producer()?
    };
    producer.init_transactions().await?;
    lock(core).producer = producer;
    Ok(())
}

/// After a failed transaction in the loop: closes every task dirty, takes
/// a new producer, and rejoins the group, which assigns the tasks again
/// from the committed offsets.
pub(super) async fn recover_from_failed_transaction(
    error: &StreamsError,
    core: &Arc<Mutex<Core>>,
    consumer: &mut Box<dyn MainConsumer>,
    listener: impl FnOnce() -> Listener,
) -> Result<()> {
    let (index, topics) = {
        let mut core = lock(core);
        tracing::warn!(thread = core.index, error = %error, "transaction failed; closing every task dirty and rejoining the group");
        core.close_all_dirty();
        (core.index, core.plan.subscription())
    };
    reinit_producer(core).await?;
    consumer.unsubscribe().await?;
    consumer.subscribe(topics, Box::new(listener())).await?;
    tracing::info!(
        thread = index,
        "rejoining the group after a failed transaction"
    );
    Ok(())
}

/// Under exactly-once, after an assignment: once no transaction holds
/// pending offsets of the group (a zombie's transaction commits or is
/// aborted), reads the committed offsets of the newly assigned partitions
/// again and seeks to them. Returns whether the partitions are settled.
pub(super) async fn settle_assigned(
    core: &Arc<Mutex<Core>>,
    consumer: &mut Box<dyn MainConsumer>,
) -> Result<bool> {
    let unstable = std::mem::take(&mut lock(core).unstable);
    if unstable.is_empty() {
        return Ok(true);
    }
    if !consumer.group_offsets_stable().await? {
        lock(core).unstable.extend(unstable);
        return Ok(false);
    }
    let assigned = consumer.assignment();
    let unstable: Vec<TopicPartition> = unstable
        .into_iter()
        .filter(|tp| assigned.contains(tp))
        .collect();
    let committed = consumer.committed(&unstable).await?;
    let mut core = lock(core);
    core.resume_partition_times(&committed);
    for tp in &unstable {
        let offset = committed.get(tp).map_or(0, |o| o.offset);
        if let Err(e) = consumer.seek(tp, offset) {
            tracing::warn!(partition = %tp, error = %e, "cannot seek to the committed offset");
            continue;
        }
        for entry in core.tasks.values_mut() {
            if entry.running() {
                continue;
            }
            entry.task.inputs_mut().clear_partition(tp);
        }
    }
    Ok(true)
}

/// The commit of a transaction: the consumed offsets go into it with the
/// consumer's group metadata, then it commits.
pub(super) async fn commit_transaction(
    producer: &dyn StreamProducer,
    consumer: &dyn MainConsumer,
    offsets: &Offsets,
    shared: &Shared,
) -> Result<()> {
    if !offsets.is_empty() {
        let Some(group) = consumer.group_metadata() else {
            return Err(StreamsError::Internal(
                "the main consumer has no group metadata".to_owned(),
            ));
        };
        producer
            .send_offsets_to_transaction(offsets, &group)
            .await?;
        shared.wait_while_paused(PausePoint::InsideCommit);
    }
    producer.commit_transaction().await?;
    Ok(())
}

impl Core {
    pub(super) fn new_producer(&self) -> Result<Arc<dyn StreamProducer>> {
        make_producer(
            &*self.clients,
            self.transactional_id.as_deref(),
            &self.plan,
            self.index,
        )
    }

    /// Opens a transaction unless one is open (exactly-once only).
    pub(super) fn begin_if_needed(&mut self) -> Result<()> {
        if self.eos() && !self.in_txn {
            self.producer.begin_transaction()?;
            self.in_txn = true;
        }
        Ok(())
    }

    /// Aborts the open transaction, if any; a failure (a fenced producer)
    /// is only logged: the broker aborts the transaction anyway.
    pub(super) fn abort_if_open(&mut self) {
        self.sender.discard_all();
        if !self.in_txn {
            return;
        }
        self.in_txn = false;
        match now(self.producer.abort_transaction()) {
            Ok(Ok(())) => tracing::info!(thread = self.index, "aborted the open transaction"),
            Ok(Err(e)) => {
                tracing::warn!(thread = self.index, error = %e, "cannot abort the open transaction; the broker aborts it")
            }
            Err(e) => {
                tracing::warn!(thread = self.index, error = %e, "cannot abort the open transaction")
            }
        }
    }

    /// Under exactly-once, commits the open transaction (with the offsets
    /// of every task: the transaction holds the output of all of them), then
    /// closes the tasks of revoked partitions and writes their checkpoints.
    /// A failed transaction closes every task dirty instead.
    pub(super) fn revoke_eos(
        &mut self,
        partitions: &[TopicPartition],
        group: Option<GroupMetadata>,
    ) -> Result<()> {
        let revoked = self.tasks_of(partitions);
        if revoked.is_empty() && !self.in_txn {
            return Ok(());
        }
        let kept: Vec<TaskId> = self
            .task_ids()
            .into_iter()
            .filter(|id| !revoked.contains(id))
            .collect();
        let result = (|| -> Result<()> {
            self.flush_tasks(&revoked, true)?;
            self.flush_tasks(&kept, false)?;
            let outgoing = self.take_outputs();
            if !outgoing.is_empty() {
                self.begin_if_needed()?;
            }
            self.send_and_settle(outgoing)?;
            let (offsets, _) = self.offsets(&self.task_ids());
            if !offsets.is_empty() {
                self.begin_if_needed()?;
            }
            if self.in_txn {
                if !offsets.is_empty() {
                    let Some(group) = &group else {
                        return Err(StreamsError::Internal(
                            "the consumer has no group metadata".to_owned(),
                        ));
                    };
                    now(self.producer.send_offsets_to_transaction(&offsets, group))??;
                }
                now(self.producer.commit_transaction())??;
                self.in_txn = false;
            }
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.write_checkpoints(&revoked, true)?;
                for id in &revoked {
                    self.tasks.remove(id);
                }
                tracing::info!(
                    thread = self.index,
                    tasks = revoked.len(),
                    "committed and closed tasks of revoked partitions"
                );
                Ok(())
            }
            Err(e) if task_migrated(&e) => {
                tracing::warn!(thread = self.index, error = %e, "the transaction of the revocation failed; closing every task dirty");
                self.close_all_dirty();
                self.reinit_producer = true;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}
