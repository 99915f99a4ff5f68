//! The `sled` 0.34 backend.

use std::fmt;
use std::fs;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{Result, StoreError};
use crate::fsutil;
use crate::layout::{self, DiskBackend};
use crate::store::{empty_iter, KeyValueStore, KvIter};

const BACKEND: DiskBackend = DiskBackend::Sled;

/// Options for [`SledStore::open_with`].
#[derive(Debug, Clone)]
pub struct SledOptions {
    /// sled's page cache capacity in bytes. Default 16 MiB ([`crate::DEFAULT_SLED_CACHE_BYTES`]).
    pub cache_capacity_bytes: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        Self {
            cache_capacity_bytes: crate::DEFAULT_SLED_CACHE_BYTES,
        }
    }
}

/// A [`KeyValueStore`] on a `sled` 0.34 database in
/// `<state_dir>/<name>/sled/`.
///
/// sled 0.34 treats a damaged log record as a torn write and silently drops
/// it and everything after it, so this store adds its own check: it keeps a
/// summary of its content (entry count and an order-independent XOR of a
/// CRC32C per entry, updated from the old values sled returns on writes),
/// writes it to `<state_dir>/<name>/CLEAN` on [`KeyValueStore::close`], and
/// on the next open scans every entry and compares. A mismatch, a failed
/// scan or a panic inside sled is [`StoreError::Corrupt`]. After an unclean
/// shutdown there is no `CLEAN` file and the content cannot be verified
/// (writes after the last flush may legitimately be missing).
///
/// [`KeyValueStore::flush`] calls sled's `flush`, which fsyncs.
pub struct SledStore {
    name: String,
    dir: PathBuf,
    db: Option<sled::Db>,
    summary: Summary,
    /// Whether this open created the store (no files of it existed).
    created: bool,
}

/// The file recording the content summary at a clean close.
const CLEAN_FILE: &str = "CLEAN";
const CLEAN_VERSION: u8 = 1;
const CLEAN_LEN: usize = 1 + 8 + 4 + 4;

/// Entry count and XOR of per-entry hashes: order-independent, so it can be
/// maintained on every write and recomputed by a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Summary {
    count: u64,
    digest: u32,
}

impl Summary {
    fn entry_hash(key: &[u8], value: &[u8]) -> u32 {
        let len = u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes();
        let crc = crc32c::crc32c(&len);
        let crc = crc32c::crc32c_append(crc, key);
        crc32c::crc32c_append(crc, value)
    }

    fn add(&mut self, key: &[u8], value: &[u8]) {
        self.count += 1;
        self.digest ^= Self::entry_hash(key, value);
    }

    fn remove(&mut self, key: &[u8], value: &[u8]) {
        self.count = self.count.saturating_sub(1);
        self.digest ^= Self::entry_hash(key, value);
    }

    /// `CLEAN` layout: version (1), count (u64 BE), digest (u32 BE), CRC32C
    /// of the preceding 13 bytes (u32 BE).
    fn encode(self) -> [u8; CLEAN_LEN] {
        let mut out = [0u8; CLEAN_LEN];
        out[0] = CLEAN_VERSION;
        out[1..9].copy_from_slice(&self.count.to_be_bytes());
        out[9..13].copy_from_slice(&self.digest.to_be_bytes());
        let crc = crc32c::crc32c(&out[..13]);
        out[13..].copy_from_slice(&crc.to_be_bytes());
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; CLEAN_LEN] = bytes.try_into().ok()?;
        let (body, crc) = bytes.split_at(13);
        if bytes[0] != CLEAN_VERSION || crc32c::crc32c(body).to_be_bytes() != crc {
            return None;
        }
        let mut count = [0u8; 8];
        count.copy_from_slice(&body[1..9]);
        let mut digest = [0u8; 4];
        digest.copy_from_slice(&body[9..13]);
        Some(Self {
            count: u64::from_be_bytes(count),
            digest: u32::from_be_bytes(digest),
        })
    }
}

impl fmt::Debug for SledStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SledStore")
            .field("name", &self.name)
            .field("dir", &self.dir)
            .field("open", &self.db.is_some())
            .field("summary", &self.summary)
            .field("created", &self.created)
            .finish()
    }
}

impl SledStore {
    /// Opens or creates store `name` under `state_dir` with default options.
    pub fn open(state_dir: &Path, name: &str) -> Result<Self> {
        Self::open_with(state_dir, name, &SledOptions::default())
    }

    /// Opens or creates store `name` under `state_dir`.
    pub fn open_with(state_dir: &Path, name: &str, options: &SledOptions) -> Result<Self> {
        let prepared = layout::prepare(state_dir, name, BACKEND)?;
        let dir = prepared.dir;
        let data = BACKEND.data_path(&dir);
        let config = sled::Config::new()
            .path(&data)
            .cache_capacity(options.cache_capacity_bytes);
        let (db, summary) = open_waiting_for_lock(&config, name, &dir)?;
        if prepared.fresh {
            db.flush().map_err(|e| open_error(name, &dir, e))?;
            layout::write_marker(name, &dir, BACKEND)?;
        } else {
            verify_clean_record(name, &dir, summary)?;
        }
        tracing::info!(store = name, dir = %dir.display(), entries = summary.count, fresh = prepared.fresh, "opened sled store");
        Ok(Self {
            name: name.to_owned(),
            dir,
            db: Some(db),
            summary,
            created: prepared.fresh,
        })
    }

    /// Whether this open created the store: it found no files of it (a
    /// first start, or files removed while the store was closed). A
    /// checkpoint written for earlier files of the store does not describe
    /// it: restore it from the start of its changelog.
    pub fn created(&self) -> bool {
        self.created
    }

    fn db(&self) -> Result<&sled::Db> {
        self.db
            .as_ref()
            .ok_or_else(|| StoreError::closed(&self.name))
    }

    fn err(&self, e: sled::Error) -> StoreError {
        backend_error(&self.name, &self.dir, e)
    }
}

/// How long an open waits for a lock still held by a handle of this
/// process that is shutting down.
const LOCK_WAIT: Duration = Duration::from_secs(2);
const LOCK_RETRY_INTERVAL: Duration = Duration::from_millis(10);

/// Opens the database and counts its entries.
///
/// sled 0.34 releases its file lock only when its background threads have
/// exited, some time after the last handle is dropped (sled issues #1234,
/// #1289), so an open right after a close can find the lock still held: it
/// is retried for up to [`LOCK_WAIT`]. A lock held longer is
/// [`StoreError::Locked`].
fn open_waiting_for_lock(
    config: &sled::Config,
    name: &str,
    dir: &Path,
) -> Result<(sled::Db, Summary)> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match open_once(config, name, dir) {
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(LOCK_RETRY_INTERVAL);
            }
            other => return other,
        }
    }
}

fn open_once(config: &sled::Config, name: &str, dir: &Path) -> Result<(sled::Db, Summary)> {
    // sled 0.34 can panic on damaged files instead of returning an error;
    // such a store is corrupt, not a reason to bring the process down.
    let opened = panic::catch_unwind(AssertUnwindSafe(|| {
        config.open().and_then(|db| {
            let mut summary = Summary::default();
            for item in db.iter() {
                let (k, v) = item?;
                summary.add(&k, &v);
            }
            Ok((db, summary))
        })
    }));
    match opened {
        Ok(Ok(pair)) => Ok(pair),
        Ok(Err(e)) => Err(open_error(name, dir, e)),
        Err(_) => Err(StoreError::corrupt(
            name,
            dir,
            "sled panicked while opening the database",
        )),
    }
}

/// Compares the content found by the open scan with the record of the last
/// clean close, then removes the record: until the next clean close the
/// content is in flux and a stale record would not match it.
fn verify_clean_record(name: &str, dir: &Path, found: Summary) -> Result<()> {
    let path = dir.join(CLEAN_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::warn!(
                store = name,
                dir = %dir.display(),
                "sled store was not closed cleanly; its content cannot be verified"
            );
            return Ok(());
        }
        Err(e) => return Err(StoreError::io(name, path, e)),
    };
    let Some(expected) = Summary::decode(&bytes) else {
        return Err(StoreError::corrupt(
            name,
            dir,
            "the clean-shutdown record (CLEAN) is damaged",
        ));
    };
    if expected != found {
        return Err(StoreError::corrupt(
            name,
            dir,
            format!(
                "sled returned {} entries (digest {:#010x}) but {} entries (digest {:#010x}) \
                 were there at the last clean close",
                found.count, found.digest, expected.count, expected.digest
            ),
        ));
    }
    fs::remove_file(&path).map_err(|e| StoreError::io(name, &path, e))?;
    fsutil::sync_dir(dir).map_err(|e| StoreError::io(name, dir, e))
}

fn backend_error(name: &str, dir: &Path, e: sled::Error) -> StoreError {
    StoreError::Backend {
        store: name.to_owned(),
        backend: BACKEND.label(),
        path: dir.to_owned(),
        source: Box::new(e),
    }
}

/// Classifies an error from opening: a held lock and a permission problem
/// are not damage; anything else means the files cannot be trusted.
fn open_error(name: &str, dir: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked {
                store: name.to_owned(),
                path: dir.to_owned(),
            }
        }
        sled::Error::Io(io) if io.kind() == io::ErrorKind::PermissionDenied => {
            StoreError::io(name, dir, io)
        }
        other => StoreError::corrupt(
            name,
            dir,
            format!("sled failed to open the database: {other}"),
        ),
    }
}

fn to_bytes(v: sled::IVec) -> Bytes {
    Bytes::copy_from_slice(&v)
}

fn entries<'a>(store: &'a SledStore, iter: sled::Iter) -> KvIter<'a> {
    Box::new(iter.map(move |item| {
        item.map(|(k, v)| (to_bytes(k), to_bytes(v)))
            .map_err(|e| store.err(e))
    }))
}

impl KeyValueStore for SledStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        true
    }

    fn get(&self, key: &[u8]) -> Result<Option<Bytes>> {
        let db = self.db()?;
        db.get(key)
            .map(|v| v.map(to_bytes))
            .map_err(|e| self.err(e))
    }

    fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
        let old = self
            .db()?
            .insert(&key[..], &value[..])
            .map_err(|e| self.err(e))?;
        if let Some(old) = old {
            self.summary.remove(&key, &old);
        }
        self.summary.add(&key, &value);
        Ok(())
    }

    fn delete(&mut self, key: Bytes) -> Result<Option<Bytes>> {
        let old = self.db()?.remove(&key[..]).map_err(|e| self.err(e))?;
        if let Some(old) = &old {
            self.summary.remove(&key, old);
        }
        Ok(old.map(to_bytes))
    }

    fn range(&self, from: &[u8], to: &[u8]) -> Result<KvIter<'_>> {
        let db = self.db()?;
        if from >= to {
            return Ok(empty_iter());
        }
        Ok(entries(self, db.range::<&[u8], _>(from..to)))
    }

    fn all(&self) -> Result<KvIter<'_>> {
        Ok(entries(self, self.db()?.iter()))
    }

    fn approximate_num_entries(&self) -> Result<u64> {
        self.db()?;
        Ok(self.summary.count)
    }

    fn flush(&mut self) -> Result<()> {
        let bytes = self.db()?.flush().map_err(|e| self.err(e))?;
        tracing::trace!(store = %self.name, bytes, "flushed sled store");
        Ok(())
    }

    fn flush_unsynced(&mut self) -> Result<()> {
        // The writes are in sled's tree already; its background flush (or the
        // next `flush`) writes them out.
        self.db().map(|_| ())
    }

    fn close(&mut self) -> Result<()> {
        let Some(db) = self.db.take() else {
            return Ok(());
        };
        db.flush().map_err(|e| self.err(e))?;
        drop(db);
        let path = self.dir.join(CLEAN_FILE);
        fsutil::write_atomically(&path, &self.summary.encode())
            .map_err(|e| StoreError::io(&self.name, path, e))?;
        tracing::info!(store = %self.name, entries = self.summary.count, "closed sled store");
        Ok(())
    }
}
