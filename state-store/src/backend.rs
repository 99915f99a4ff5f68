//! Choosing a backend and opening stores by name.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::{Result, StoreError};
use crate::layout::validate_name;
use crate::memory::InMemoryStore;
use crate::redb_store::{RedbOptions, RedbStore};
use crate::sled_store::{SledOptions, SledStore};
use crate::store::KeyValueStore;

/// The storage engine behind a key-value store.
///
/// The default is [`StoreBackend::Redb`]: see `docs/state-stores.md` for the
/// measurements and the reasoning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum StoreBackend {
    /// A `BTreeMap`; nothing on disk, restored from the changelog on start.
    InMemory,
    /// `sled` 0.34, in `<state_dir>/<name>/sled/`.
    Sled,
    /// `redb` 4, in `<state_dir>/<name>/data.redb`.
    #[default]
    Redb,
}

impl StoreBackend {
    /// Every backend.
    pub const ALL: [StoreBackend; 3] = [Self::InMemory, Self::Sled, Self::Redb];

    /// The backend's name as written in configuration: `in_memory`, `sled`,
    /// `redb`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InMemory => "in_memory",
            Self::Sled => "sled",
            Self::Redb => "redb",
        }
    }

    /// Whether stores of this backend keep their data across restarts.
    pub fn is_persistent(self) -> bool {
        !matches!(self, Self::InMemory)
    }

    /// Opens (or creates) store `name` under `state_dir`; see [`open_store`].
    pub fn open(self, state_dir: &Path, name: &str) -> Result<Box<dyn KeyValueStore>> {
        open_store(self, state_dir, name)
    }
}

impl fmt::Display for StoreBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for an unknown backend name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown state store backend {0:?}; expected one of in_memory, sled, redb")]
pub struct UnknownBackend(pub String);

impl FromStr for StoreBackend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "in_memory" | "in-memory" | "memory" => Ok(Self::InMemory),
            "sled" => Ok(Self::Sled),
            "redb" => Ok(Self::Redb),
            other => Err(UnknownBackend(other.to_owned())),
        }
    }
}

/// Opens (or creates) store `name` of `backend` under `state_dir`, with
/// default options.
///
/// Persistent stores live in `<state_dir>/<name>/`. An existing store that
/// fails to open or fails a check returns [`StoreError::Corrupt`]: wipe it
/// with [`crate::wipe`] and restore it from its changelog. A store held by
/// another handle returns [`StoreError::Locked`]. `state_dir` is not used by
/// the in-memory backend. [`open_or_wipe`] also says whether the store's
/// files were there.
pub fn open_store(
    backend: impl Into<Engine>,
    state_dir: &Path,
    name: &str,
) -> Result<Box<dyn KeyValueStore>> {
    open_reporting(&backend.into(), state_dir, name).map(|(store, _)| store)
}

/// [`open_store`], and whether the open created the store (found no files
/// of it; always so in memory).
fn open_reporting(
    engine: &Engine,
    state_dir: &Path,
    name: &str,
) -> Result<(Box<dyn KeyValueStore>, bool)> {
    validate_name(name)?;
    Ok(match engine.backend {
        StoreBackend::InMemory => (Box::new(InMemoryStore::new(name)), true),
        StoreBackend::Sled => {
            let options = SledOptions {
                cache_capacity_bytes: engine.options.sled_cache_bytes,
            };
            let store = SledStore::open_with(state_dir, name, &options)?;
            let created = store.created();
            (Box::new(store), created)
        }
        StoreBackend::Redb => {
            let options = RedbOptions {
                cache_size_bytes: engine.options.redb_cache_bytes,
                ..RedbOptions::default()
            };
            let store = RedbStore::open_with(state_dir, name, &options)?;
            let created = store.created();
            (Box::new(store), created)
        }
    })
}

/// What opening a store found of its local data, and so whether a
/// checkpoint written for it still describes it.
///
/// A checkpoint records the changelog offset that a store's files reflect.
/// Only [`LocalData::Found`] files are those files: a store that had to be
/// created or wiped is empty, and restoring it from a checkpoint's offset
/// would leave out everything before that offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LocalData {
    /// The store's files were there and opened.
    Found,
    /// No files of the store were there: this open created it empty (a
    /// first start, the files deleted while the store was closed, or an
    /// in-memory store).
    Created,
    /// The files failed to open or a check and were wiped; the store was
    /// created empty.
    Wiped,
}

impl LocalData {
    /// Whether restoration may start at the store's checkpointed offset:
    /// only when its files were found. Otherwise it starts at the beginning
    /// of the changelog, whatever a checkpoint says.
    pub fn checkpoint_applies(self) -> bool {
        matches!(self, Self::Found)
    }
}

/// Opens store `name`; if it is [`StoreError::Corrupt`], wipes it and opens
/// it empty. Returns the store and what the open found of its files: unless
/// they were [`LocalData::Found`], restore it from the start of its
/// changelog and ignore its checkpoint.
pub fn open_or_wipe(
    backend: impl Into<Engine>,
    state_dir: &Path,
    name: &str,
) -> Result<(Box<dyn KeyValueStore>, LocalData)> {
    let engine = backend.into();
    match open_reporting(&engine, state_dir, name) {
        Ok((store, false)) => Ok((store, LocalData::Found)),
        Ok((store, true)) => Ok((store, LocalData::Created)),
        Err(e @ StoreError::Corrupt { .. }) => {
            tracing::warn!(store = name, error = %e, "wiping state store that failed to open");
            crate::wipe(state_dir, name)?;
            Ok((open_store(engine, state_dir, name)?, LocalData::Wiped))
        }
        Err(e) => Err(e),
    }
}

/// The default of [`EngineOptions::redb_cache_bytes`]: 32 MiB per store.
pub const DEFAULT_REDB_CACHE_BYTES: usize = 32 * 1024 * 1024;
/// The default of [`EngineOptions::sled_cache_bytes`]: 16 MiB per store.
pub const DEFAULT_SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// The memory each persistent store's engine may use for its own caches:
/// every open store (one per store per task) has its own, so the engines
/// of a process use up to this times the number of its persistent stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineOptions {
    /// redb's page cache and write buffer together, per store
    /// ([`DEFAULT_REDB_CACHE_BYTES`]).
    pub redb_cache_bytes: usize,
    /// sled's page cache, per store ([`DEFAULT_SLED_CACHE_BYTES`]).
    pub sled_cache_bytes: u64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            redb_cache_bytes: DEFAULT_REDB_CACHE_BYTES,
            sled_cache_bytes: DEFAULT_SLED_CACHE_BYTES,
        }
    }
}

/// Which backend opens a store, with the settings of its engine. A
/// [`StoreBackend`] converts into one with the default settings, so the
/// open functions take either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub(crate) backend: StoreBackend,
    pub(crate) options: EngineOptions,
}

impl Engine {
    /// `backend` with `options`.
    pub fn new(backend: StoreBackend, options: EngineOptions) -> Self {
        Self { backend, options }
    }

    /// The backend.
    pub fn backend(&self) -> StoreBackend {
        self.backend
    }
}

impl From<StoreBackend> for Engine {
    fn from(backend: StoreBackend) -> Self {
        Self::new(backend, EngineOptions::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_names_round_trip() {
        for b in StoreBackend::ALL {
            assert_eq!(b.as_str().parse::<StoreBackend>(), Ok(b));
        }
        assert!("rocksdb".parse::<StoreBackend>().is_err());
    }
}
