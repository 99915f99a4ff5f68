//! Segment files opened on demand through one bounded cache of file handles per broker, as
//! Kafka keeps open only the files it uses: a data dir of tens of thousands of partitions
//! does not need tens of thousands of descriptors.
//!
//! A [`SegmentFile`] names its file and asks the cache for a handle at each use; the cache
//! keeps the most recently used handles, up to its capacity, and closes the rest. Closing a
//! handle loses nothing: written bytes are in the file whichever handle wrote them, and an
//! fsync through a later handle makes them durable. A segment file that does not exist yet
//! (the first segment of a new, empty partition) is created at its first write, with an
//! fsync of its directory.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use hashlink::LruCache;

/// Open segment file handles, least recently used closed first.
#[derive(Debug)]
pub(crate) struct FileCache {
    handles: Mutex<LruCache<u64, Arc<File>>>,
    next_id: AtomicU64,
}

impl FileCache {
    /// A cache that keeps at most `capacity` handles open (at least 1).
    pub(crate) fn new(capacity: usize) -> Arc<FileCache> {
        Arc::new(FileCache {
            handles: Mutex::new(LruCache::new(capacity.max(1))),
            next_id: AtomicU64::new(0),
        })
    }

    /// How many handles are open.
    #[cfg(test)]
    pub(crate) fn open_count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<u64, Arc<File>>> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One segment file, opened through the broker's [`FileCache`] when used.
#[derive(Debug)]
pub(crate) struct SegmentFile {
    id: u64,
    path: PathBuf,
    writable: bool,
    /// False until the file exists on disk (a segment created lazily).
    exists: AtomicBool,
    cache: Arc<FileCache>,
}

impl SegmentFile {
    /// A file that exists, with a handle already open (kept in the cache).
    pub(crate) fn opened(
        cache: &Arc<FileCache>,
        path: PathBuf,
        file: File,
        writable: bool,
    ) -> Self {
        let segment_file = SegmentFile {
            id: cache.next_id.fetch_add(1, Ordering::Relaxed),
            path,
            writable,
            exists: AtomicBool::new(true),
            cache: cache.clone(),
        };
        cache.lock().insert(segment_file.id, Arc::new(file));
        segment_file
    }

    /// A writable file that does not exist yet: created at its first write.
    pub(crate) fn lazy(cache: &Arc<FileCache>, path: PathBuf) -> Self {
        SegmentFile {
            id: cache.next_id.fetch_add(1, Ordering::Relaxed),
            path,
            writable: true,
            exists: AtomicBool::new(false),
            cache: cache.clone(),
        }
    }

    /// Whether the file exists on disk.
    pub(crate) fn exists(&self) -> bool {
        self.exists.load(Ordering::Acquire)
    }

    /// A handle for reading or writing, opening the file if the cache closed it.
    pub(crate) fn handle(&self) -> io::Result<Arc<File>> {
        if let Some(handle) = self.cache.lock().get(&self.id) {
            return Ok(handle.clone());
        }
        let mut options = OpenOptions::new();
        options.read(true).write(self.writable);
        if !self.exists() {
            if !self.writable {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{} was never created", self.path.display()),
                ));
            }
            options.create(true);
        }
        let file = Arc::new(options.open(&self.path)?);
        if !self.exists() {
            // The new file's name is durable before anything written to it is.
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            self.exists.store(true, Ordering::Release);
        }
        self.cache.lock().insert(self.id, file.clone());
        Ok(file)
    }

    /// The file was renamed to `path` (an open handle stays valid).
    pub(crate) fn renamed(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Closes the cached handle (the file is being removed).
    pub(crate) fn forget(&self) {
        self.cache.lock().remove(&self.id);
    }
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        self.forget();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::FileExt;

    #[test]
    fn handles_are_bounded_and_reopened_on_use() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(2);
        let files: Vec<SegmentFile> = (0..5)
            .map(|i| {
                let path = dir.path().join(format!("{i}.log"));
                let mut f = File::create(&path).unwrap();
                f.write_all(format!("file {i}").as_bytes()).unwrap();
                let f = OpenOptions::new().read(true).open(&path).unwrap();
                SegmentFile::opened(&cache, path, f, false)
            })
            .collect();
        assert_eq!(cache.open_count(), 2);
        for (i, f) in files.iter().enumerate().rev() {
            let mut buf = [0u8; 6];
            f.handle().unwrap().read_exact_at(&mut buf, 0).unwrap();
            assert_eq!(&buf, format!("file {i}").as_bytes());
            assert!(cache.open_count() <= 2);
        }
        drop(files);
        assert_eq!(cache.open_count(), 0);
    }

    #[test]
    fn a_lazy_file_is_created_at_its_first_use() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FileCache::new(4);
        let path = dir.path().join("0.log");
        let f = SegmentFile::lazy(&cache, path.clone());
        assert!(!path.exists());
        assert!(!f.exists());
        f.handle().unwrap().write_all_at(b"x", 0).unwrap();
        assert!(f.exists());
        assert_eq!(std::fs::read(&path).unwrap(), b"x");
    }
}
