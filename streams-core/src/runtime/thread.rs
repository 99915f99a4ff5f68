//! A stream thread: one group member that owns the tasks of the partitions
//! it is assigned, restores their stores, processes their records and
//! commits.
//!
//! Each stream thread is an OS thread running a single-threaded tokio
//! runtime. User processors are synchronous and may be CPU-bound, so they
//! get a thread of their own rather than a worker of a shared runtime; the
//! runtime is there for the consumer's waits (poll, heartbeats).
//!
//! The thread's tasks live in a [`Core`] behind a std mutex, shared with
//! the rebalance listener (which the consumer calls inside `poll`) and with
//! interactive queries. The mutex is never held across an `.await`.
//!
//! Under exactly-once the thread's producer is transactional. A transaction
//! begins with the first output after a commit; a commit sends the
//! consumed offsets into it with the consumer's group metadata and commits
//! it, both in the loop and in the revocation callback (the embedded
//! broker's transactional calls complete at their first poll, like its
//! offset commits). A failed transaction closes every task dirty (stores
//! wiped, checkpoints deleted), replaces the producer and rejoins the
//! group. Checkpoints are written only on a clean close.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::{ClientSupplier, TopicPartition};
use crate::error::{ClientErrorKind, Result, StreamsError};

use super::setup::Plan;
use super::state::{PausePoint, Shared};

use super::clients::{consumer_settings, task_migrated, POLL_TIMEOUT};
use super::commit::Purger;
use super::eos::{
    commit_transaction, recover_from_failed_transaction, reinit_producer, settle_assigned,
};
use super::flow_control::FlowControl;
use super::rebalance::Listener;
use super::restore::restore_tasks;
use super::task_manager::{lock, Core, TaskEntry};

/// How long a poll of the stream thread may wait for records: at most
/// [`POLL_TIMEOUT`], and no later than the next commit is due
/// (`commit.interval.ms` after the last one, `since` ago), so that an idle
/// thread commits on time rather than up to a poll's wait late. An interval
/// of 0 (a commit after every loop) keeps the whole wait, so that an idle
/// thread does not spin.
pub(super) fn poll_timeout(interval: Duration, since: Duration) -> Duration {
    if interval.is_zero() {
        return POLL_TIMEOUT;
    }
    POLL_TIMEOUT
        .min(interval.saturating_sub(since))
        .max(Duration::from_millis(1))
}

/// A handle on a running stream thread.
#[derive(Debug)]
pub(crate) struct ThreadHandle {
    pub(crate) core: Arc<Mutex<Core>>,
    pub(crate) join: Option<std::thread::JoinHandle<()>>,
    pub(crate) done: Option<tokio::sync::oneshot::Receiver<()>>,
}

/// Starts stream thread `index`.
pub(crate) fn spawn(
    index: usize,
    plan: Arc<Plan>,
    clients: Arc<dyn ClientSupplier>,
    shared: Arc<Shared>,
) -> Result<ThreadHandle> {
    let core = Arc::new(Mutex::new(Core::new(
        index,
        plan.clone(),
        clients.clone(),
        shared.dirty_closes.clone(),
    )?));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread_core = core.clone();
    let name = format!(
        "{}-StreamThread-{}",
        plan.config.application_id(),
        index + 1
    );
    let join = std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| {
                    StreamsError::Internal(format!("cannot build the thread runtime: {e}"))
                })
                .and_then(|rt| rt.block_on(run(index, plan, clients, shared.clone(), thread_core)));
            if let Err(e) = result {
                tracing::error!(thread = index, error = %e, "stream thread failed");
                shared.fail(e);
            }
            shared.set_thread_rebalancing(index, false);
            if tx.send(()).is_err() {
                tracing::debug!(thread = index, "the app stopped waiting for this thread");
            }
        })
        .map_err(|e| StreamsError::Internal(format!("cannot start a stream thread: {e}")))?;
    Ok(ThreadHandle {
        core,
        join: Some(join),
        done: Some(rx),
    })
}

pub(super) async fn run(
    index: usize,
    plan: Arc<Plan>,
    clients: Arc<dyn ClientSupplier>,
    shared: Arc<Shared>,
    core: Arc<Mutex<Core>>,
) -> Result<()> {
    let eos = plan.process_id.is_some();
    let mut consumer = clients.main_consumer(consumer_settings(&plan, index, true))?;
    let listener = || Listener {
        core: core.clone(),
        shared: shared.clone(),
        index,
    };
    if eos {
        // Fences the previous incarnation of this thread and aborts the
        // transaction it left open.
        reinit_producer(&core).await?;
    }
    consumer
        .subscribe(plan.subscription(), Box::new(listener()))
        .await?;
    let interval = Duration::from_millis(plan.config.commit_interval_ms());
    let mut last_commit = Instant::now();
    let admin = clients.admin()?;
    let mut restorer = None;
    let mut purger = Purger::new(Duration::from_millis(
        plan.clients.repartition_purge_interval_ms,
    ));
    let mut flow = FlowControl::new(plan.config.buffered_records_per_partition());
    let result: Result<()> = async {
        while !shared.shutting_down() {
            let runs = consumer
                .poll(poll_timeout(interval, last_commit.elapsed()))
                .await?;
            let (restore, reinit, unowned) = {
                let mut core = lock(&core);
                if let Some(e) = core.fatal.take() {
                    return Err(e);
                }
                let unowned = core.buffer(runs);
                (
                    core.tasks.values().any(|e| !e.running()),
                    core.reinit_producer,
                    unowned,
                )
            };
            // Records of a partition whose task does not exist (yet) are read
            // again from the first of them once it does.
            if !unowned.is_empty() {
                let assigned = consumer.assignment();
                for (tp, offset) in unowned {
                    if assigned.contains(&tp) {
                        tracing::debug!(thread = index, partition = %tp, offset, "records of a task not created yet are read again");
                        consumer.seek(&tp, offset)?;
                    }
                }
            }
            if reinit {
                reinit_producer(&core).await?;
            }
            if restore
                && (!eos || settle_assigned(&core, &mut consumer).await?)
            {
                restore_tasks(&core, &*clients, &mut restorer, index, &shared).await?;
            }
            // Which inputs hold records not fetched yet: tasks wait for them.
            let lagging = consumer.lagging_partitions();
            let (outgoing, commit, producer, hold_back) = {
                let mut core = lock(&core);
                let rebalancing =
                    core.awaiting_assignment || !core.tasks.values().all(TaskEntry::running);
                shared.set_thread_rebalancing(index, rebalancing);
                core.process(&lagging)?;
                core.punctuate_wall_clock()?;
                let hold_back = flow.wanted(&core);
                let commit = (last_commit.elapsed() >= interval || core.commit_requested())
                    .then(|| core.task_ids());
                if let Some(ids) = &commit {
                    core.flush_tasks(ids, false)?;
                }
                let outgoing = core.take_outputs();
                // A transaction begins with the first output after a commit.
                let begun = if outgoing.is_empty() {
                    Ok(())
                } else {
                    core.begin_if_needed()
                };
                (
                    begun.map(|()| outgoing),
                    commit,
                    core.producer.clone(),
                    hold_back,
                )
            };
            flow.apply(hold_back, &mut *consumer)?;
            // Sent on the sender thread while the next records are
            // processed; a commit waits for everything handed over.
            let sent = outgoing.and_then(|outgoing| {
                lock(&core).dispatch(outgoing, commit.is_some())
            });
            match sent {
                Ok(()) => {}
                Err(e) if eos && task_migrated(&e) => {
                    recover_from_failed_transaction(&e, &core, &mut consumer, listener).await?;
                    continue;
                }
                Err(e) => return Err(e),
            }
            let offsets = {
                let core = lock(&core);
                commit.map(|ids| {
                    let (offsets, topics) = core.offsets(&ids);
                    (ids, offsets, topics)
                })
            };
            let Some((ids, offsets, topics)) = offsets else {
                continue;
            };
            let committed_repartition: Vec<(TopicPartition, u64)> = offsets
                .iter()
                .filter(|(tp, _)| plan.is_repartition_topic(&tp.topic))
                .map(|(tp, o)| (tp.clone(), o.offset))
                .collect();
            shared.wait_while_paused(PausePoint::BeforeCommit);
            if shared.killed() {
                break;
            }
            if eos {
                let open = {
                    let mut core = lock(&core);
                    if !offsets.is_empty() {
                        core.begin_if_needed().map(|()| true)
                    } else {
                        Ok(core.in_txn)
                    }
                };
                let committed = match open {
                    Ok(true) => {
                        commit_transaction(&*producer, &*consumer, &offsets, &shared).await
                    }
                    Ok(false) => Ok(()),
                    Err(e) => Err(e),
                };
                match committed {
                    Ok(()) => lock(&core).in_txn = false,
                    Err(e) if task_migrated(&e) => {
                        recover_from_failed_transaction(&e, &core, &mut consumer, listener)
                            .await?;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
                // No checkpoint while running: the stores keep taking
                // uncommitted writes.
                lock(&core).sync_due_stores(&ids)?;
                last_commit = Instant::now();
                purger.committed(committed_repartition, &*admin).await;
                continue;
            }
            producer.flush(&topics).await?;
            if !offsets.is_empty() {
                if let Err(e) = consumer.commit_sync(offsets).await {
                    if !matches!(
                        e.client_error_kind(),
                        Some(ClientErrorKind::TaskMigrated | ClientErrorKind::Retriable)
                    ) {
                        return Err(e);
                    }
                    tracing::warn!(thread = index, error = %e, "offset commit refused; the next poll rejoins the group");
                    continue;
                }
            }
            lock(&core).write_checkpoints(&ids, false)?;
            last_commit = Instant::now();
            purger.committed(committed_repartition, &*admin).await;
        }
        Ok(())
    }
    .await;
    if shared.killed() {
        // As a crash: no commit, no close, no leave-group; the group
        // removes the members when their session times out, and the broker
        // aborts the open transaction when it times out.
        lock(&core).tasks.clear();
        consumer.abandon();
        tracing::warn!(thread = index, "stream thread killed");
        return result;
    }
    match result {
        Ok(()) => {
            // A clean shutdown: leaving the group revokes every partition,
            // and the listener commits and closes the tasks.
            consumer.close().await?;
            let mut core = lock(&core);
            if let Some(e) = core.fatal.take() {
                return Err(e);
            }
            tracing::info!(thread = index, "stream thread stopped");
            Ok(())
        }
        Err(e) => {
            // Nothing more is committed: the tasks are dropped and their
            // uncommitted work is redone from the last commit.
            let mut core = lock(&core);
            core.abort_if_open();
            core.tasks.clear();
            drop(core);
            drop(consumer);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_poll_ends_by_the_next_commit() {
        let ms = Duration::from_millis;
        // Long before the commit is due: the whole wait.
        assert_eq!(poll_timeout(ms(30_000), ms(10)), POLL_TIMEOUT);
        // The commit is due sooner than a whole wait.
        assert_eq!(poll_timeout(ms(100), ms(80)), ms(20));
        // Due now, or overdue: a short look for records, then the commit.
        assert_eq!(poll_timeout(ms(100), ms(100)), ms(1));
        assert_eq!(poll_timeout(ms(100), ms(250)), ms(1));
        // A commit after every loop: the whole wait, no spinning.
        assert_eq!(poll_timeout(ms(0), ms(5)), POLL_TIMEOUT);
    }
}
