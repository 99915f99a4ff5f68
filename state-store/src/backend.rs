//! Choosing a backend and opening stores by name.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use crate::error::{Result, StoreError};
use crate::layout::validate_name;
use crate::memory::InMemoryStore;
use crate::redb_store::RedbStore;
use crate::sled_store::SledStore;
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
/// the in-memory backend.
pub fn open_store(
    backend: StoreBackend,
    state_dir: &Path,
    name: &str,
) -> Result<Box<dyn KeyValueStore>> {
    validate_name(name)?;
    Ok(match backend {
        StoreBackend::InMemory => Box::new(InMemoryStore::new(name)),
        StoreBackend::Sled => Box::new(SledStore::open(state_dir, name)?),
        StoreBackend::Redb => Box::new(RedbStore::open(state_dir, name)?),
    })
}

/// Opens store `name`; if it is [`StoreError::Corrupt`], wipes it and opens
/// it empty. Returns the store and whether it was wiped (and so must be
/// restored from the start of its changelog, its checkpoint discarded).
pub fn open_or_wipe(
    backend: StoreBackend,
    state_dir: &Path,
    name: &str,
) -> Result<(Box<dyn KeyValueStore>, bool)> {
    match open_store(backend, state_dir, name) {
        Ok(store) => Ok((store, false)),
        Err(e @ StoreError::Corrupt { .. }) => {
            tracing::warn!(store = name, error = %e, "wiping state store that failed to open");
            crate::wipe(state_dir, name)?;
            Ok((open_store(backend, state_dir, name)?, true))
        }
        Err(e) => Err(e),
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
