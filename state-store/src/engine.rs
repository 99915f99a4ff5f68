//! [`Engine`]: a store backend with the settings of its storage engine.

use crate::backend::StoreBackend;

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
