//! [`InteractiveQueries`]: the stores of a running app over bytes, and
//! which instance owns which key, for tools that do not know the stores'
//! Rust types (the HTTP endpoint of `streams-http`).
//!
//! Reads take the lock of one stream thread's tasks at a time, as
//! [`crate::ReadOnlyKeyValueStore`] does: a query waits for the thread to
//! finish the batch of records it is processing, and the thread waits for
//! the query. Scans are bounded by their page size.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::config::StreamsConfig;
use crate::error::{Result, StreamsError};
use crate::exec::TaskId;
use crate::query::{
    HostInfo, KeyQueryMetadata, LocalStoreTask, Page, PageCursor, Queried, RangeQuery, RawEntry,
    RestoreProgress, StoreInfo, StoreKind, StoreSchema, StreamsMetadata,
};
use crate::store::{StoreSlot, StoreStack};

use super::directory::{InstanceRecord, QueryPlan, StorePlan, SubPlan};
use super::state::{lock, Shared};
use super::store_scan::{scan, session_entries, window_entries};
use super::task_manager::Core;

/// The stores of a running [`crate::StreamsApp`] over bytes, and the
/// instances that own their keys: Kafka's interactive queries for tools
/// that do not know the stores' Rust types. Made by
/// [`crate::StreamsApp::interactive_queries`]; cheap to clone, and usable
/// from any thread for as long as the app lives.
///
/// Keys are given as the bytes the store's key serde writes
/// ([`InteractiveQueries::canonical_key`] checks bytes a person typed);
/// answers carry bytes in the serdes' layouts, which
/// [`StoreInfo::key_format`] and [`StoreInfo::value_format`] describe.
#[derive(Clone)]
pub struct InteractiveQueries {
    pub(super) shared: Arc<Shared>,
    pub(super) config: Arc<StreamsConfig>,
}

impl fmt::Debug for InteractiveQueries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InteractiveQueries")
            .field("application_id", &self.config.application_id())
            .finish_non_exhaustive()
    }
}

impl InteractiveQueries {
    /// The app's configuration (`application.server`, `http.auth.token`).
    pub fn config(&self) -> &StreamsConfig {
        &self.config
    }

    /// The app's state now.
    pub fn state(&self) -> crate::AppState {
        self.shared.state()
    }

    fn plan(&self) -> Result<Arc<QueryPlan>> {
        lock(&self.shared.query_plan)
            .clone()
            .ok_or_else(|| StreamsError::IllegalState {
                operation: "query the state stores",
                state: self.shared.state().to_string(),
            })
    }

    fn cores(&self) -> Vec<Arc<Mutex<Core>>> {
        lock(&self.shared.cores).clone()
    }

    /// The restoration progress of `store` in `task`.
    fn progress(&self, task: TaskId, store: &str) -> RestoreProgress {
        let found = lock(&self.shared.restore_progress)
            .get(&(task, store.to_owned()))
            .copied();
        RestoreProgress {
            task,
            store: store.to_owned(),
            restored: found.map_or(0, |(done, _)| done),
            total: found.map(|(_, total)| total),
        }
    }

    /// Every store of the topology's tasks (global stores are not
    /// included), sorted by name, with the tasks of this instance that hold
    /// it.
    pub fn stores(&self) -> Result<Vec<StoreInfo>> {
        let plan = self.plan()?;
        plan.stores
            .keys()
            .map(|name| self.describe(&plan, name))
            .collect()
    }

    /// Store `name` as [`InteractiveQueries::stores`] describes it.
    pub fn store(&self, name: &str) -> Result<StoreInfo> {
        let plan = self.plan()?;
        self.describe(&plan, name)
    }

    fn describe(&self, plan: &QueryPlan, name: &str) -> Result<StoreInfo> {
        let store = store_plan(plan, name)?;
        let mut tasks = Vec::new();
        for core in self.cores() {
            let mut core = lock(&core);
            for (id, entry) in core.tasks.iter_mut() {
                if id.subtopology != store.sub {
                    continue;
                }
                let Some(index) = entry.task.store_index(name) else {
                    continue;
                };
                if !entry.running() {
                    tasks.push(LocalStoreTask {
                        task: *id,
                        restoring: Some(self.progress(*id, name)),
                        approximate_entries: None,
                    });
                    continue;
                }
                let entries = entry.task.with_store(index, |slot| {
                    Ok(match slot.stack.kv_mut() {
                        Some(kv) => Some(kv.approximate_num_entries()?),
                        None => None,
                    })
                })?;
                tasks.push(LocalStoreTask {
                    task: *id,
                    restoring: None,
                    approximate_entries: entries,
                });
            }
        }
        tasks.sort_by_key(|t| t.task);
        Ok(StoreInfo {
            name: name.to_owned(),
            kind: store.kind,
            key_format: store.key_codec.format(),
            value_format: store.value_codec.format(),
            window_size_ms: store.window_size_ms,
            partitions: plan.subs.get(&store.sub).map_or(1, |s| s.partitions),
            tasks,
        })
    }

    /// What store `name` is: its kind and its serdes' layouts (without
    /// reading its data).
    pub fn store_schema(&self, name: &str) -> Result<StoreSchema> {
        let plan = self.plan()?;
        let store = store_plan(&plan, name)?;
        Ok(StoreSchema {
            name: name.to_owned(),
            kind: store.kind,
            key_format: store.key_codec.format(),
            value_format: store.value_codec.format(),
            window_size_ms: store.window_size_ms,
            partitions: plan.subs.get(&store.sub).map_or(1, |s| s.partitions),
        })
    }

    /// `bytes` read with the key serde of `store` and written again: the
    /// bytes the store holds for that key. A [`StreamsError::Serde`] when
    /// the serde cannot read them.
    pub fn canonical_key(&self, store: &str, bytes: &[u8]) -> Result<Bytes> {
        let plan = self.plan()?;
        let store = store_plan(&plan, store)?;
        Ok(store.key_codec.canonicalize(&store.changelog, bytes)?)
    }

    /// Which instance owns the key whose bytes (in the store's key serde)
    /// are `key`, as Kafka's `queryMetadataForKey`.
    pub fn query_metadata_for_key_bytes(
        &self,
        store: &str,
        key: &[u8],
    ) -> Result<KeyQueryMetadata> {
        let plan = self.plan()?;
        let store = store_plan(&plan, store)?;
        Ok(self.key_metadata(&plan, store, key).0)
    }

    /// The metadata of `key` and the task that owns it.
    fn key_metadata(
        &self,
        plan: &QueryPlan,
        store: &StorePlan,
        key: &[u8],
    ) -> (KeyQueryMetadata, TaskId) {
        let partitions = plan.subs.get(&store.sub).map_or(1, |s| s.partitions).max(1);
        let partition = broker_embedded::partitioner::partition_for_key(key, partitions);
        let task = TaskId {
            subtopology: store.sub,
            partition,
        };
        let local = self.local_tasks().contains(&task);
        let active_host = if local {
            plan.server.clone()
        } else {
            self.remote_owner(plan, task)
        };
        (
            KeyQueryMetadata {
                active_host,
                standby_hosts: Vec::new(),
                partition,
                local,
            },
            task,
        )
    }

    /// The tasks of this instance, restoring or running.
    fn local_tasks(&self) -> Vec<TaskId> {
        let mut ids: Vec<TaskId> = self
            .cores()
            .iter()
            .flat_map(|core| lock(core).tasks.keys().copied().collect::<Vec<_>>())
            .collect();
        ids.sort();
        ids
    }

    /// The other instances' latest records, without this instance's own.
    fn remote_records(&self, plan: &QueryPlan) -> Vec<(HostInfo, InstanceRecord)> {
        let own = plan.server.as_ref().map(ToString::to_string);
        lock(&self.shared.instances)
            .iter()
            .filter(|(server, _)| Some(*server) != own.as_ref())
            .filter_map(|(server, record)| {
                HostInfo::parse(server)
                    .ok()
                    .map(|host| (host, record.clone()))
            })
            .collect()
    }

    /// The other instance that claims `task` most recently.
    fn remote_owner(&self, plan: &QueryPlan, task: TaskId) -> Option<HostInfo> {
        self.remote_records(plan)
            .into_iter()
            .filter(|(_, record)| record.tasks.contains(&task))
            .max_by_key(|(_, record)| record.published_ms)
            .map(|(host, _)| host)
    }

    /// What every known instance hosts (this one first), as Kafka's
    /// `metadataForAllStreamsClients`. Without `application.server`, only
    /// this instance is known.
    pub fn all_metadata(&self) -> Result<Vec<StreamsMetadata>> {
        let plan = self.plan()?;
        let mut out = vec![metadata_of(
            &plan,
            plan.server.clone(),
            true,
            self.local_tasks(),
        )];
        let remote = self.remote_records(&plan);
        // A task claimed by several instances (a record not updated since
        // its owner died) counts for the latest claim only.
        let mut latest: BTreeMap<TaskId, i64> = BTreeMap::new();
        for (_, record) in &remote {
            for task in &record.tasks {
                let at = latest.entry(*task).or_insert(record.published_ms);
                *at = (*at).max(record.published_ms);
            }
        }
        let local: Vec<TaskId> = out[0].tasks.clone();
        for (host, record) in remote {
            let tasks = record
                .tasks
                .iter()
                .filter(|t| !local.contains(t) && latest.get(t) == Some(&record.published_ms))
                .copied()
                .collect();
            out.push(metadata_of(&plan, Some(host), false, tasks));
        }
        Ok(out)
    }

    /// The instances that host `store`, as Kafka's
    /// `streamsMetadataForStore`.
    pub fn all_metadata_for_store(&self, store: &str) -> Result<Vec<StreamsMetadata>> {
        let plan = self.plan()?;
        store_plan(&plan, store)?;
        Ok(self
            .all_metadata()?
            .into_iter()
            .filter(|m| m.state_store_names.iter().any(|s| s == store))
            .collect())
    }

    /// Runs `read` on `store` in the local task that owns `key`, and in
    /// the other running local tasks that hold the store if that finds
    /// nothing (a key written to a partition other than its default one).
    fn keyed<T>(
        &self,
        store_name: &str,
        key: &[u8],
        mut read: impl FnMut(&mut StoreSlot, &StorePlan) -> Result<Option<T>>,
    ) -> Result<Queried<Option<T>>> {
        let plan = self.plan()?;
        let store = store_plan(&plan, store_name)?;
        let (metadata, owner) = self.key_metadata(&plan, store, key);
        let mut owner_running = false;
        for core in self.cores() {
            let mut core = lock(&core);
            if let Some(entry) = core.tasks.get_mut(&owner) {
                if !entry.running() {
                    return Ok(Queried::Restoring(vec![self.progress(owner, store_name)]));
                }
                owner_running = true;
                if let Some(index) = entry.task.store_index(store_name) {
                    let found = entry.task.with_store(index, |slot| read(slot, store))?;
                    if found.is_some() {
                        return Ok(Queried::Ready(found));
                    }
                }
            }
        }
        for core in self.cores() {
            let mut core = lock(&core);
            for (id, entry) in core.tasks.iter_mut() {
                if *id == owner || id.subtopology != store.sub || !entry.running() {
                    continue;
                }
                let Some(index) = entry.task.store_index(store_name) else {
                    continue;
                };
                let found = entry.task.with_store(index, |slot| read(slot, store))?;
                if found.is_some() {
                    return Ok(Queried::Ready(found));
                }
            }
        }
        if owner_running {
            Ok(Queried::Ready(None))
        } else {
            Ok(Queried::Elsewhere(metadata))
        }
    }

    /// The value of `key` (in the store's key serde's bytes) in a
    /// key-value or versioned store (the latest version), as Kafka's
    /// `ReadOnlyKeyValueStore#get`.
    pub fn get(&self, store: &str, key: &[u8]) -> Result<Queried<Option<RawEntry>>> {
        self.keyed(store, key, |slot, plan| {
            match (&mut slot.stack, plan.kind) {
                (StoreStack::Versioned(versioned), _) => {
                    Ok(versioned.get(key)?.map(|record| RawEntry {
                        key: Bytes::copy_from_slice(key),
                        value: record.value,
                        window: None,
                        timestamp: Some(record.timestamp),
                    }))
                }
                (stack, StoreKind::KeyValue) => {
                    let Some(kv) = stack.kv_mut() else {
                        return Ok(None);
                    };
                    Ok(kv.get(key)?.map(|value| RawEntry {
                        key: Bytes::copy_from_slice(key),
                        value,
                        window: None,
                        timestamp: None,
                    }))
                }
                (_, kind) => Err(unsupported(
                    &slot.name,
                    kind,
                    "a lookup of one key (ask for its windows)",
                )),
            }
        })
    }

    /// The windows of `key` in a window store (those starting in
    /// `[from, to]`), or its sessions in a session store (those ending at or
    /// after `from` and starting at or before `to`, Kafka's
    /// `findSessions`), by start.
    pub fn windows(
        &self,
        store: &str,
        key: &[u8],
        from: i64,
        to: i64,
    ) -> Result<Queried<Vec<RawEntry>>> {
        let found = self.keyed(store, key, |slot, plan| {
            let name = slot.name.clone();
            let Some(kv) = slot.stack.kv_mut() else {
                return Err(unsupported(&name, plan.kind, "windows of a key"));
            };
            let entries = match plan.kind {
                StoreKind::Window => {
                    window_entries(kv, key, from, to, plan.window_size_ms.unwrap_or(0))?
                }
                StoreKind::Session => session_entries(kv, key, from, to)?,
                kind => return Err(unsupported(&name, kind, "windows of a key")),
            };
            Ok((!entries.is_empty()).then_some(entries))
        })?;
        Ok(match found {
            Queried::Ready(entries) => Queried::Ready(entries.unwrap_or_default()),
            Queried::Restoring(p) => Queried::Restoring(p),
            Queried::Elsewhere(m) => Queried::Elsewhere(m),
        })
    }

    /// A page of the entries of `store` in this instance's tasks, as
    /// Kafka's `range` and `all` on a local store: tasks in order, each
    /// task's entries in the order of their stored bytes (for the built-in
    /// integer serdes that is numeric order for non-negative numbers only).
    /// For window and session stores, `from` and `to` bound the record
    /// key. Versioned stores are not scanned (as in Kafka).
    pub fn range(&self, store_name: &str, query: &RangeQuery) -> Result<Queried<Page>> {
        let plan = self.plan()?;
        let store = store_plan(&plan, store_name)?;
        if store.kind == StoreKind::Versioned {
            return Err(unsupported(store_name, store.kind, "a range or full scan"));
        }
        let limit = query.limit.max(1);
        let mut restoring = Vec::new();
        let mut tasks = Vec::new();
        for core in self.cores() {
            let core = lock(&core);
            for (id, entry) in &core.tasks {
                if id.subtopology != store.sub || entry.task.store_index(store_name).is_none() {
                    continue;
                }
                if entry.running() {
                    tasks.push(*id);
                } else {
                    restoring.push(self.progress(*id, store_name));
                }
            }
        }
        if !restoring.is_empty() {
            restoring.sort_by_key(|p| p.task);
            return Ok(Queried::Restoring(restoring));
        }
        tasks.sort();
        let mut found: Vec<(TaskId, Bytes, RawEntry)> = Vec::new();
        for task in tasks {
            let after = match &query.after {
                Some(cursor) if task < cursor.task => continue,
                Some(cursor) if task == cursor.task => Some(cursor.after.clone()),
                _ => None,
            };
            let want = limit + 1 - found.len();
            for core in self.cores() {
                let mut core = lock(&core);
                let Some(entry) = core.tasks.get_mut(&task) else {
                    continue;
                };
                let Some(index) = entry.task.store_index(store_name) else {
                    continue;
                };
                let scanned = entry.task.with_store(index, |slot| {
                    let Some(kv) = slot.stack.kv_mut() else {
                        return Ok(Vec::new());
                    };
                    scan(
                        kv,
                        store.kind,
                        store.window_size_ms,
                        query,
                        after.as_deref(),
                        want,
                    )
                })?;
                found.extend(scanned.into_iter().map(|(raw, e)| (task, raw, e)));
            }
            if found.len() > limit {
                break;
            }
        }
        let next = if found.len() > limit {
            found.truncate(limit);
            found.last().map(|(task, raw, _)| PageCursor {
                task: *task,
                after: raw.clone(),
            })
        } else {
            None
        };
        Ok(Queried::Ready(Page {
            entries: found.into_iter().map(|(_, _, e)| e).collect(),
            next,
        }))
    }
}

/// Works out the query plan of `plan`: each store's sub-topology and
/// partition count.
pub(crate) async fn build_plan(
    plan: &super::setup::Plan,
    admin: &dyn crate::client::Admin,
) -> Result<QueryPlan> {
    let server = plan
        .config
        .application_server()
        .map(HostInfo::parse)
        .transpose()?;
    let mut subs: BTreeMap<u32, SubPlan> = BTreeMap::new();
    for (physical, (sub, _)) in &plan.source_of {
        subs.entry(*sub).or_default().sources.push(physical.clone());
    }
    for sub in subs.values_mut() {
        sub.sources.sort();
        for topic in &sub.sources {
            if let Some(n) = admin.partition_count(topic).await? {
                sub.partitions = sub.partitions.max(n);
            }
        }
        sub.partitions = sub.partitions.max(1);
    }
    let mut stores = BTreeMap::new();
    for sub in &plan.subs {
        for &index in &sub.stores {
            let builder = plan.topology.store_builder(index);
            let kind = if builder.is_window_store() {
                StoreKind::Window
            } else if builder.is_session_store() {
                StoreKind::Session
            } else if builder.is_versioned_store() {
                StoreKind::Versioned
            } else {
                StoreKind::KeyValue
            };
            subs.entry(sub.id)
                .or_default()
                .stores
                .push(builder.name().to_owned());
            stores.insert(
                builder.name().to_owned(),
                StorePlan {
                    kind,
                    sub: sub.id,
                    window_size_ms: builder.window_size_ms(),
                    changelog: crate::store::changelog_topic(
                        plan.config.application_id(),
                        builder.name(),
                    ),
                    key_codec: builder.key_codec.clone(),
                    value_codec: builder.value_codec.clone(),
                },
            );
        }
    }
    Ok(QueryPlan {
        server,
        stores,
        subs,
    })
}

fn store_plan<'p>(plan: &'p QueryPlan, name: &str) -> Result<&'p StorePlan> {
    plan.stores
        .get(name)
        .ok_or_else(|| StreamsError::NoSuchStore {
            store: name.to_owned(),
        })
}

fn unsupported(store: &str, kind: StoreKind, query: &'static str) -> StreamsError {
    StreamsError::UnsupportedQuery {
        store: store.to_owned(),
        kind: kind.as_str(),
        query,
    }
}

/// What an instance with `tasks` hosts.
fn metadata_of(
    plan: &QueryPlan,
    host_info: Option<HostInfo>,
    local: bool,
    mut tasks: Vec<TaskId>,
) -> StreamsMetadata {
    tasks.sort();
    tasks.dedup();
    let mut stores = std::collections::BTreeSet::new();
    let mut partitions = std::collections::BTreeSet::new();
    for task in &tasks {
        if let Some(sub) = plan.subs.get(&task.subtopology) {
            stores.extend(sub.stores.iter().cloned());
            partitions.extend(sub.sources.iter().map(|t| (t.clone(), task.partition)));
        }
    }
    StreamsMetadata {
        host_info,
        local,
        state_store_names: stores.into_iter().collect(),
        topic_partitions: partitions.into_iter().collect(),
        tasks,
    }
}
