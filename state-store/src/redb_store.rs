//! The `redb` 4 backend.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::ops::Bound;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use redb::{
    Database, DatabaseError, Durability, ReadableTable, ReadableTableMetadata, StorageError, Table,
    TableDefinition, WriteTransaction,
};

use crate::error::{Result, StoreError};
use crate::layout::{self, DiskBackend};
use crate::store::{empty_iter, BatchWrite, KeyValueStore, KvIter};

const BACKEND: DiskBackend = DiskBackend::Redb;
const TABLE: TableDefinition<'static, &'static [u8], &'static [u8]> = TableDefinition::new("kv");
/// Entries read per table opening while iterating.
const SCAN_CHUNK: usize = 512;

/// Options for [`RedbStore::open_with`].
#[derive(Debug, Clone)]
pub struct RedbOptions {
    /// redb's page cache size in bytes. Default 32 MiB ([`crate::DEFAULT_REDB_CACHE_BYTES`]).
    pub cache_size_bytes: usize,
    /// Verify the checksum of every page on every open, not only after an
    /// unclean shutdown (redb does that by itself). Default `true`: a file
    /// damaged while the store was closed is then reported as
    /// [`StoreError::Corrupt`] instead of being trusted. Costs one read of
    /// the whole file per open.
    pub check_integrity_on_open: bool,
}

impl Default for RedbOptions {
    fn default() -> Self {
        Self {
            cache_size_bytes: crate::DEFAULT_REDB_CACHE_BYTES,
            check_integrity_on_open: true,
        }
    }
}

/// A [`KeyValueStore`] on a `redb` 4 database file
/// `<state_dir>/<name>/data.redb`.
///
/// Durability: the store keeps one write transaction open between flushes.
/// Every put and delete goes into it (reads see them), and
/// [`KeyValueStore::flush`] commits it with `Durability::Immediate` (an
/// fsync) and begins the next. [`KeyValueStore::flush_unsynced`] commits
/// with `Durability::None` instead: redb writes their pages but persists
/// such commits only with the next durable one (until then the commit, and
/// the record of the pages it freed, which redb reuses only after a durable
/// commit, live in the process's memory). A crash loses the writes since the
/// last [`KeyValueStore::flush`], which is what the changelog and the
/// checkpoint written after that flush account for (`tests/crash.rs` kills a
/// writer between such commits). [`KeyValueStore::close`] makes everything
/// durable; dropping the store without it discards the writes of the open
/// transaction, which no flush committed.
pub struct RedbStore {
    name: String,
    dir: PathBuf,
    state: Option<Open>,
    /// Set when a commit failed; the store then refuses every call.
    failure: Option<String>,
    /// Whether this open created the store (no files of it existed).
    created: bool,
}

struct Open {
    // Dropped before `db`.
    txn: WriteTransaction,
    db: Database,
    dirty: bool,
    /// Commits since the last durable one were made without an fsync.
    unsynced: bool,
}

impl fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbStore")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("open", &self.state.is_some())
            .field("dirty", &self.state.as_ref().is_some_and(|s| s.dirty))
            .field("failure", &self.failure)
            .field("created", &self.created)
            .finish()
    }
}

impl RedbStore {
    /// Opens or creates store `name` under `state_dir` with default options.
    pub fn open(state_dir: &Path, name: &str) -> Result<Self> {
        Self::open_with(state_dir, name, &RedbOptions::default())
    }

    /// Opens or creates store `name` under `state_dir`.
    pub fn open_with(state_dir: &Path, name: &str, options: &RedbOptions) -> Result<Self> {
        let prepared = layout::prepare(state_dir, name, BACKEND)?;
        let dir = prepared.dir;
        let data = BACKEND.data_path(&dir);
        let mut builder = Database::builder();
        builder
            .set_cache_size(options.cache_size_bytes)
            .set_check_integrity_on_open(options.check_integrity_on_open);
        let opened = if prepared.fresh {
            builder.create(&data)
        } else {
            builder.open(&data)
        };
        let db = opened.map_err(|e| open_error(name, &dir, e))?;
        let txn = db.begin_write().map_err(|e| {
            StoreError::corrupt(
                name,
                &dir,
                format!("redb could not begin a transaction: {e}"),
            )
        })?;
        let entries = {
            let table = txn.open_table(TABLE).map_err(|e| {
                StoreError::corrupt(name, &dir, format!("redb could not open the table: {e}"))
            })?;
            table.len().map_err(|e| {
                StoreError::corrupt(name, &dir, format!("redb could not read the table: {e}"))
            })?
        };
        let mut store = Self {
            name: name.to_owned(),
            dir,
            state: Some(Open {
                txn,
                db,
                dirty: prepared.fresh,
                unsynced: false,
            }),
            failure: None,
            created: prepared.fresh,
        };
        if prepared.fresh {
            // Commit the empty table before the marker says the store exists.
            store.flush()?;
            layout::write_marker(name, &store.dir, BACKEND)?;
        }
        tracing::info!(store = name, dir = %store.dir.display(), entries, fresh = prepared.fresh, "opened redb store");
        Ok(store)
    }

    /// Whether this open created the store: it found no files of it (a
    /// first start, or files removed while the store was closed). A
    /// checkpoint written for earlier files of the store does not describe
    /// it: restore it from the start of its changelog.
    pub fn created(&self) -> bool {
        self.created
    }

    fn open_state(&self) -> Result<&Open> {
        self.state.as_ref().ok_or_else(|| self.unavailable())
    }

    /// The error for a call on a store that has no open database.
    fn unavailable(&self) -> StoreError {
        match &self.failure {
            Some(cause) => StoreError::Poisoned {
                store: self.name.clone(),
                cause: cause.clone(),
            },
            None => StoreError::closed(&self.name),
        }
    }

    fn table(&self) -> Result<Table<'_, &'static [u8], &'static [u8]>> {
        let state = self.open_state()?;
        state.txn.open_table(TABLE).map_err(|e| self.err(e))
    }

    /// Runs `f` on the table of the open write transaction and marks the
    /// transaction dirty.
    fn write<T>(
        &mut self,
        f: impl FnOnce(
            &mut Table<'_, &'static [u8], &'static [u8]>,
        ) -> std::result::Result<T, StorageError>,
    ) -> Result<T> {
        let Some(state) = self.state.as_mut() else {
            return Err(self.unavailable());
        };
        let out = {
            let mut table = state
                .txn
                .open_table(TABLE)
                .map_err(|e| backend_error(&self.name, &self.dir, e))?;
            f(&mut table).map_err(|e| backend_error(&self.name, &self.dir, e))?
        };
        state.dirty = true;
        Ok(out)
    }

    fn err(&self, e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        backend_error(&self.name, &self.dir, e)
    }

    /// Commits the open transaction, with an fsync if `durable`; begins the
    /// next one unless closing (which is always durable).
    fn commit(&mut self, reopen: bool, durable: bool) -> Result<()> {
        let durable = durable || !reopen;
        let Some(state) = self.state.as_mut() else {
            return Err(self.unavailable());
        };
        // Nothing to commit, or only unsynced commits when no fsync is asked.
        let idle = !state.dirty && (!state.unsynced || !durable);
        if idle && reopen {
            return Ok(());
        }
        // A transaction's durability is `Durability::Immediate` unless set:
        // the commit returns once the data (with every unsynced commit
        // before it) is fsynced. An empty durable commit still makes the
        // unsynced ones durable.
        if !durable {
            state
                .txn
                .set_durability(Durability::None)
                .map_err(|e| backend_error(&self.name, &self.dir, e))?;
        }
        let Some(Open { txn, db, .. }) = self.state.take() else {
            return Err(self.unavailable());
        };
        if idle {
            drop(txn);
            return db.close().map_err(|e| self.err(e));
        }
        // After a failed commit (a failed fsync among others) the store refuses
        // every further call, as redb itself does: retrying could lose data.
        if let Err(e) = txn.commit() {
            tracing::error!(store = %self.name, error = %e, "redb commit failed; store poisoned");
            self.failure = Some(format!("redb commit failed: {e}"));
            return Err(self.err(e));
        }
        tracing::trace!(store = %self.name, durable, "committed redb transaction");
        if reopen {
            let txn = db.begin_write().map_err(|e| {
                self.failure = Some(format!("redb could not begin a transaction: {e}"));
                self.err(e)
            })?;
            self.state = Some(Open {
                txn,
                db,
                dirty: false,
                unsynced: !durable,
            });
        } else {
            db.close().map_err(|e| self.err(e))?;
        }
        Ok(())
    }
}

fn backend_error(
    name: &str,
    dir: &Path,
    e: impl std::error::Error + Send + Sync + 'static,
) -> StoreError {
    StoreError::Backend {
        store: name.to_owned(),
        backend: BACKEND.label(),
        path: dir.to_owned(),
        source: Box::new(e),
    }
}

/// Classifies an error from opening: a held lock and a permission problem
/// are not damage; anything else means the file cannot be trusted.
fn open_error(name: &str, dir: &Path, e: DatabaseError) -> StoreError {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            StoreError::Locked {
                store: name.to_owned(),
                path: dir.to_owned(),
            }
        }
        DatabaseError::Storage(StorageError::Io(io))
            if io.kind() == io::ErrorKind::PermissionDenied =>
        {
            StoreError::io(name, dir, io)
        }
        other => StoreError::corrupt(
            name,
            dir,
            format!("redb failed to open the database: {other}"),
        ),
    }
}

/// A range scan that reads [`SCAN_CHUNK`] entries per table opening, so the
/// iterator does not hold a borrow of a table across calls.
struct Scan<'a> {
    store: &'a RedbStore,
    next_from: Bound<Vec<u8>>,
    to: Bound<Vec<u8>>,
    buffer: VecDeque<(Bytes, Bytes)>,
    done: bool,
}

impl Scan<'_> {
    fn refill(&mut self) -> Result<()> {
        let table = self.store.table()?;
        let from = as_slice_bound(&self.next_from);
        let to = as_slice_bound(&self.to);
        let range = table
            .range::<&[u8]>((from, to))
            .map_err(|e| self.store.err(e))?;
        for item in range.take(SCAN_CHUNK) {
            let (k, v) = item.map_err(|e| self.store.err(e))?;
            self.buffer.push_back((
                Bytes::copy_from_slice(k.value()),
                Bytes::copy_from_slice(v.value()),
            ));
        }
        match self.buffer.back() {
            Some((last, _)) if self.buffer.len() == SCAN_CHUNK => {
                self.next_from = Bound::Excluded(last.to_vec());
            }
            _ => self.done = true,
        }
        Ok(())
    }
}

fn as_slice_bound(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v.as_slice()),
        Bound::Excluded(v) => Bound::Excluded(v.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Iterator for Scan<'_> {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buffer.is_empty() && !self.done {
            if let Err(e) = self.refill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        self.buffer.pop_front().map(Ok)
    }
}

impl KeyValueStore for RedbStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        true
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let table = self.table()?;
        let value = table.get(key).map_err(|e| self.err(e))?;
        Ok(value.map(|v| Bytes::copy_from_slice(v.value())))
    }

    fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
        self.write(|t| t.insert(&key[..], &value[..]).map(|_| ()))
    }

    fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
        self.write(|t| {
            t.remove(&key[..])
                .map(|old| old.map(|v| Bytes::copy_from_slice(v.value())))
        })
    }

    fn write_batch(&mut self, batch: &[BatchWrite]) -> Result<()> {
        self.write(|t| {
            for (key, value) in batch {
                match value {
                    Some(value) => {
                        t.insert(&key[..], &value[..])?;
                    }
                    None => {
                        t.remove(&key[..])?;
                    }
                }
            }
            Ok(())
        })
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        self.open_state()?;
        if from >= to {
            return Ok(empty_iter());
        }
        Ok(Box::new(Scan {
            store: self,
            next_from: Bound::Included(from.to_vec()),
            to: Bound::Excluded(to.to_vec()),
            buffer: VecDeque::new(),
            done: false,
        }))
    }

    fn all(&self) -> Result<KvIter<'_>> {
        self.open_state()?;
        Ok(Box::new(Scan {
            store: self,
            next_from: Bound::Unbounded,
            to: Bound::Unbounded,
            buffer: VecDeque::new(),
            done: false,
        }))
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.table()?.len().map_err(|e| self.err(e))
    }

    fn flush(&mut self) -> Result<()> {
        self.commit(true, true)
    }

    fn flush_unsynced(&mut self) -> Result<()> {
        self.commit(true, false)
    }

    fn close(&mut self) -> Result<()> {
        if self.state.is_none() {
            return Ok(());
        }
        self.commit(false, true)?;
        tracing::info!(store = %self.name, "closed redb store");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bytes {
        Bytes::from(s.to_owned())
    }

    #[test]
    fn unsynced_commits_are_read_back_and_made_durable_by_a_flush_or_a_close() -> Result<()> {
        let dir = tempfile::tempdir().unwrap();
        let mut store = RedbStore::open(dir.path(), "s")?;
        store.put(b("a"), b("1"))?;
        store.flush_unsynced()?;
        store.put(b("b"), b("2"))?;
        store.flush_unsynced()?;
        assert_eq!(store.get(b"a")?, Some(b("1")));
        assert_eq!(store.get(b"b")?, Some(b("2")));
        // Nothing written since the last commit: the durable commit is
        // empty, and makes the unsynced ones durable.
        store.flush()?;
        drop(store);
        let mut store = RedbStore::open(dir.path(), "s")?;
        assert_eq!(store.get(b"a")?, Some(b("1")));
        assert_eq!(store.get(b"b")?, Some(b("2")));

        store.put(b("c"), b("3"))?;
        store.flush_unsynced()?;
        store.close()?;
        let store = RedbStore::open(dir.path(), "s")?;
        assert_eq!(store.get(b"c")?, Some(b("3")));
        Ok(())
    }
}
