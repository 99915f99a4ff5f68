//! Restoration of a task's stores from their changelogs before it
//! processes anything, as Kafka Streams' `StoreChangelogReader`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::client::{ClientSupplier, RestoreConsumer, TopicPartition};
use crate::error::Result;
use crate::exec::TaskId;

use super::setup::Plan;
use super::state::Shared;

use super::clients::{consumer_settings, POLL_TIMEOUT};
use super::task_manager::{guarded, lock, Core, Restoring};

/// Restores the stores of the thread's new tasks from their changelogs,
/// then initializes the tasks.
///
/// `restorer` holds the thread's restore consumer, made at the first call
/// and kept: a restoration that waits for an open transaction is tried
/// again at every loop, and a Kafka backend's consumer is a set of
/// librdkafka clients.
pub(super) async fn restore_tasks(
    core: &Arc<Mutex<Core>>,
    clients: &dyn ClientSupplier,
    restorer: &mut Option<Box<dyn RestoreConsumer>>,
    index: usize,
    shared: &Shared,
) -> Result<()> {
    // (changelog partition) -> (task, store, end offset)
    let mut targets: HashMap<TopicPartition, (TaskId, usize, u64)> = HashMap::new();
    let mut starts = Vec::new();
    let (pending, plan): (Vec<(TaskId, Vec<Restoring>)>, Arc<Plan>) = {
        let core = lock(core);
        let pending = core
            .tasks
            .iter()
            .filter_map(|(id, e)| e.restoring.clone().map(|r| (*id, r)))
            .collect();
        (pending, core.plan.clone())
    };
    let eos = plan.process_id.is_some();
    let consumer = match restorer {
        Some(consumer) => consumer,
        None => restorer.insert(clients.restore_consumer(consumer_settings(&plan, index, false))?),
    };
    let mut watermarks = HashMap::new();
    for (_, stores) in &pending {
        for Restoring { changelog: tp, .. } in stores {
            let marks = consumer.watermarks(tp).await?;
            watermarks.insert(tp.clone(), marks);
        }
    }
    if eos {
        // Under exactly-once, restoration reads committed data only, up to
        // the last stable offset. A transaction still open on a changelog
        // (of a zombie, or of an owner that crashed) would hide whatever
        // was committed after its start: wait for it to commit or to be
        // aborted, up to the transaction timeout and a little more.
        let mut open = None;
        for (_, stores) in &pending {
            for Restoring { changelog: tp, .. } in stores {
                if watermarks
                    .get(tp)
                    .is_some_and(|marks| marks.last_stable < marks.high)
                {
                    open = Some(tp.clone());
                }
            }
        }
        let limit =
            Duration::from_millis(plan.clients.transaction_timeout_ms) + Duration::from_secs(2);
        let mut core_guard = lock(core);
        match open {
            Some(tp) => {
                let since = *core_guard
                    .restore_blocked_since
                    .get_or_insert_with(Instant::now);
                if since.elapsed() < limit {
                    tracing::debug!(changelog = %tp, "waiting for an open transaction on a changelog to end before restoring");
                    return Ok(());
                }
                tracing::warn!(changelog = %tp, "a transaction on the changelog stayed open; restoring up to its start");
                core_guard.restore_blocked_since = None;
            }
            None => core_guard.restore_blocked_since = None,
        }
    }
    for (id, stores) in &pending {
        for Restoring {
            store,
            changelog: tp,
            start,
        } in stores
        {
            let Some(marks) = watermarks.get(tp) else {
                continue;
            };
            let end = if eos { marks.last_stable } else { marks.high };
            let start = (*start).max(marks.log_start);
            if start < end {
                targets.insert(tp.clone(), (*id, *store, end));
                starts.push((tp.clone(), start));
            } else {
                let mut core = lock(core);
                if let Some(entry) = core.tasks.get_mut(id) {
                    entry.changelog_offsets.insert(tp.clone(), end);
                }
            }
        }
    }
    shared.note_restore_targets(core, &targets, &starts);
    if shared.restoration_held() {
        return Ok(());
    }
    let mut restored: HashMap<TopicPartition, u64> = HashMap::new();
    if !targets.is_empty() {
        consumer.assign(starts).await?;
        loop {
            let unfinished = targets
                .iter()
                .any(|(tp, (_, _, end))| consumer.position(tp).is_none_or(|p| p < *end));
            if !unfinished || shared.shutting_down() {
                break;
            }
            let runs = consumer.poll(POLL_TIMEOUT).await?;
            if runs.is_empty() {
                if consumer.empty_poll_is_end() {
                    // The changelogs are in-process: a poll that finds
                    // nothing means the rest was compacted away.
                    break;
                }
                continue;
            }
            let mut core = lock(core);
            // Per changelog partition: the writes, and their records'
            // timestamps (which a versioned store puts them at).
            type Batch = (Vec<state_store::BatchWrite>, Vec<i64>);
            let mut batches: HashMap<TopicPartition, Batch> = HashMap::new();
            for run in runs {
                let tp = TopicPartition::new(run.topic.to_string(), run.partition);
                let Some((_, _, end)) = targets.get(&tp) else {
                    continue;
                };
                let end = *end;
                let batch = batches.entry(tp).or_default();
                for record in run.records {
                    if record.offset >= end {
                        continue;
                    }
                    if let Some(key) = record.key {
                        batch.0.push((key, record.value));
                        batch.1.push(record.timestamp);
                    }
                }
            }
            for (tp, (writes, timestamps)) in batches {
                let Some((id, store, _)) = targets.get(&tp) else {
                    continue;
                };
                let Some(entry) = core.tasks.get_mut(id) else {
                    continue;
                };
                let slot = &mut entry.task.stores_mut()[*store];
                slot.restore_batch(&writes, &timestamps)?;
                slot.discard_changelog();
                shared.note_restored(*id, &slot.name, writes.len() as u64);
                *restored.entry(tp).or_insert(0) += writes.len() as u64;
            }
        }
    }
    let mut core = lock(core);
    for (tp, (id, store, end)) in &targets {
        if let Some(entry) = core.tasks.get_mut(id) {
            let slot = &mut entry.task.stores_mut()[*store];
            slot.flush_restored()?;
            slot.discard_changelog();
            entry.changelog_offsets.insert(tp.clone(), *end);
            let count = restored.get(tp).copied().unwrap_or(0);
            shared.add_restored(count);
            tracing::info!(task = %id, changelog = %tp, records = count, end_offset = end, "restored state store");
        }
    }
    if shared.shutting_down() {
        return Ok(());
    }
    for (id, _) in pending {
        if let Some(entry) = core.tasks.get_mut(&id) {
            let task = &mut entry.task;
            guarded(id, || task.init())?;
            entry.restoring = None;
        }
        shared.forget_restore_progress(id);
    }
    Ok(())
}
