//! One segment: a `<base offset>.log` file of consecutive record batches with its sparse
//! offset index and time index, recovery of its tail, and a sequential batch scanner.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tracing::warn;

use super::files::{FileCache, SegmentFile};
use super::index::{self, OffsetIndex, SegmentSummary, TimeIndex};
use crate::batch::{self, BatchHeader, DecodeError, BATCH_HEADER_LEN};
use crate::error::{BrokerError, Result};

/// Suffix of segment files.
pub(super) const LOG_SUFFIX: &str = ".log";
/// Suffix of offset index files.
pub(super) const INDEX_SUFFIX: &str = ".index";
/// Suffix of time index files.
pub(super) const TIME_INDEX_SUFFIX: &str = ".timeindex";
/// Suffix of a segment being rewritten by the cleaner.
pub(super) const CLEANED_SUFFIX: &str = ".log.cleaned";

/// How much a sequential scan reads at a time.
const SCAN_CHUNK: usize = 1 << 20;

/// The file name of the segment file (or index file) with `base_offset` and `suffix`.
pub(super) fn file_name(base_offset: u64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// Splits `<20 digits><suffix>` into the base offset and the suffix.
pub(super) fn parse_file_name(name: &str) -> Option<(u64, &str)> {
    let digits = name.get(..20)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((digits.parse().ok()?, &name[20..]))
}

/// Fsyncs a directory, so that file creations, renames and deletions in it are durable.
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// What a segment's batches add up to, maintained batch by batch: size, next offset, max
/// timestamp and the two sparse indexes.
#[derive(Debug, Clone)]
struct Contents {
    base_offset: u64,
    size: u64,
    next_offset: u64,
    max_timestamp: Option<i64>,
    offset_of_max_timestamp: u64,
    bytes_since_index_entry: u64,
    index: OffsetIndex,
    time_index: TimeIndex,
}

impl Contents {
    fn new(base_offset: u64) -> Self {
        Contents {
            base_offset,
            size: 0,
            next_offset: base_offset,
            max_timestamp: None,
            offset_of_max_timestamp: base_offset,
            bytes_since_index_entry: 0,
            index: OffsetIndex::default(),
            time_index: TimeIndex::default(),
        }
    }

    fn relative(&self, offset: u64) -> u32 {
        // Appends roll before a relative offset would pass u32::MAX, and recovery stops there.
        u32::try_from(offset.saturating_sub(self.base_offset)).unwrap_or(u32::MAX)
    }

    /// Accounts for the batch `header` written at `position`: an index entry once at least
    /// `interval` bytes were written since the last one, then size, offsets and timestamps.
    fn note_batch(&mut self, position: u64, header: &BatchHeader, interval: u64) {
        if self.bytes_since_index_entry >= interval && position <= u64::from(u32::MAX) {
            self.index
                .push(self.relative(header.base_offset), position as u32);
            if let Some(max) = self.max_timestamp {
                self.time_index
                    .maybe_push(max, self.relative(self.offset_of_max_timestamp));
            }
            self.bytes_since_index_entry = 0;
        }
        let size = header.size() as u64;
        self.bytes_since_index_entry += size;
        if self.max_timestamp.is_none_or(|m| header.max_timestamp > m) {
            self.max_timestamp = Some(header.max_timestamp);
            self.offset_of_max_timestamp = header.base_offset;
        }
        self.next_offset = header.next_offset();
        self.size = position + size;
    }

    /// Adds the final time index entry: the segment's max timestamp.
    fn seal(&mut self) {
        if let Some(max) = self.max_timestamp {
            let offset = self.relative(self.offset_of_max_timestamp);
            self.time_index.maybe_push(max, offset);
        }
    }

    fn summary(&self) -> SegmentSummary {
        SegmentSummary {
            base_offset: self.base_offset,
            log_size: self.size,
            next_offset: self.next_offset,
            max_timestamp: self.max_timestamp,
        }
    }
}

/// Where a segment stops being trustworthy: the first batch that fails its checks while
/// something valid follows it (or, in a sealed segment, any failing batch). Nothing at or
/// after `position` is read, rewritten or truncated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SegmentDamage {
    /// Byte position of the bad batch.
    pub(super) position: u64,
    /// The offset the bad batch should have started at: the first offset that cannot be read.
    pub(super) offset: u64,
    /// What is wrong.
    pub(super) reason: String,
}

/// One segment file and its indexes.
#[derive(Debug)]
pub(super) struct Segment {
    dir: PathBuf,
    path: PathBuf,
    file: SegmentFile,
    contents: Contents,
    /// When the first batch was appended (by the log's clock), for `segment.ms`. After a
    /// reopen, the first batch's max timestamp (Kafka's rule).
    pub(super) first_append_ms: Option<i64>,
    /// The in-memory indexes differ from the index files.
    indexes_dirty: bool,
    /// Set when the segment holds a bad batch; its index files are then never written, so
    /// the next open scans it again and finds the damage again.
    damage: Option<SegmentDamage>,
}

/// The result of one step of a [`Scanner`].
#[derive(Debug)]
pub(super) enum Scanned {
    /// A batch whose header (and, when asked, CRC and records) checked out.
    Batch {
        /// Its position in the file.
        position: u64,
        /// Its header.
        header: BatchHeader,
        /// All its bytes.
        bytes: Bytes,
    },
    /// The scanned range ends here.
    End,
    /// The bytes at `position` are not a valid batch.
    Invalid {
        /// Where the bad batch starts.
        position: u64,
        /// What is wrong.
        error: DecodeError,
    },
}

/// Where a [`Scanner`] reads: a file opened by the caller, or a segment's file through the
/// broker's handle cache.
#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    File(&'a File),
    Segment(&'a SegmentFile),
}

/// Reads the batches of a byte range of a segment file in order, a chunk at a time.
#[derive(Debug)]
pub(super) struct Scanner<'a> {
    source: Source<'a>,
    next: u64,
    end: u64,
    buf: Bytes,
    buf_start: u64,
}

impl<'a> Scanner<'a> {
    fn new(file: &'a File, from: u64, end: u64) -> Self {
        Self::over(Source::File(file), from, end)
    }

    fn over(source: Source<'a>, from: u64, end: u64) -> Self {
        Scanner {
            source,
            next: from,
            end,
            buf: Bytes::new(),
            buf_start: from,
        }
    }

    /// Makes `buf` hold `len` bytes from `position`.
    fn ensure(&mut self, position: u64, len: usize) -> io::Result<()> {
        let buf_end = self.buf_start + self.buf.len() as u64;
        if position >= self.buf_start && position + len as u64 <= buf_end {
            return Ok(());
        }
        let want = (len.max(SCAN_CHUNK) as u64).min(self.end - position) as usize;
        let mut buf = vec![0u8; want];
        match self.source {
            Source::File(file) => file.read_exact_at(&mut buf, position)?,
            Source::Segment(file) => file.handle()?.read_exact_at(&mut buf, position)?,
        }
        self.buf = Bytes::from(buf);
        self.buf_start = position;
        Ok(())
    }

    /// The next batch. With `validate`, its CRC and records are checked too; the header is
    /// always checked.
    pub(super) fn next(&mut self, validate: bool) -> io::Result<Scanned> {
        let position = self.next;
        if position >= self.end {
            return Ok(Scanned::End);
        }
        let remaining = self.end - position;
        let invalid = |error| Ok(Scanned::Invalid { position, error });
        if remaining < BATCH_HEADER_LEN as u64 {
            return invalid(DecodeError::Truncated {
                needed: BATCH_HEADER_LEN,
                available: remaining as usize,
            });
        }
        self.ensure(position, BATCH_HEADER_LEN)?;
        let at = (position - self.buf_start) as usize;
        let header = match BatchHeader::parse(&self.buf[at..]) {
            Ok(header) => header,
            Err(error) => return invalid(error),
        };
        let size = header.size();
        if size as u64 > remaining {
            return invalid(DecodeError::Truncated {
                needed: size,
                available: remaining as usize,
            });
        }
        self.ensure(position, size)?;
        let at = (position - self.buf_start) as usize;
        let bytes = self.buf.slice(at..at + size);
        if validate {
            if let Err(error) = batch::validate_batch(&bytes) {
                return invalid(error);
            }
        }
        self.next = position + size as u64;
        Ok(Scanned::Batch {
            position,
            header,
            bytes,
        })
    }
}

impl Segment {
    fn with_file(dir: &Path, path: PathBuf, file: SegmentFile, contents: Contents) -> Segment {
        Segment {
            dir: dir.to_path_buf(),
            path,
            file,
            contents,
            first_append_ms: None,
            indexes_dirty: true,
            damage: None,
        }
    }

    /// Creates a new, empty segment file at `base_offset`.
    pub(super) fn create(
        dir: &Path,
        base_offset: u64,
        files: &Arc<FileCache>,
    ) -> io::Result<Segment> {
        let path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let file = SegmentFile::opened(files, path.clone(), file, true);
        Ok(Segment::with_file(
            dir,
            path,
            file,
            Contents::new(base_offset),
        ))
    }

    /// An empty segment at `base_offset` whose file is created at its first append: a new
    /// partition costs a directory, not a file and its fsyncs.
    pub(super) fn lazy(dir: &Path, base_offset: u64, files: &Arc<FileCache>) -> Segment {
        let path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let file = SegmentFile::lazy(files, path.clone());
        let mut segment = Segment::with_file(dir, path, file, Contents::new(base_offset));
        segment.indexes_dirty = false;
        segment
    }

    /// Creates the `.log.cleaned` file into which the cleaner rewrites the segment at
    /// `base_offset` (replacing a leftover one).
    pub(super) fn create_cleaned(
        dir: &Path,
        base_offset: u64,
        files: &Arc<FileCache>,
    ) -> io::Result<Segment> {
        let path = dir.join(file_name(base_offset, CLEANED_SUFFIX));
        remove_if_present(&path)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        let file = SegmentFile::opened(files, path.clone(), file, true);
        Ok(Segment::with_file(
            dir,
            path,
            file,
            Contents::new(base_offset),
        ))
    }

    /// Opens the active (last) segment: every batch is checked (header, CRC, records, and
    /// its base offset is the expected next offset); the file is truncated at the first batch
    /// that fails, with a warning naming the file, the byte position and the offset.
    pub(super) fn recover(
        dir: &Path,
        base_offset: u64,
        label: &str,
        index_interval: u64,
        files: &Arc<FileCache>,
        read_only: bool,
        recorded_end: Option<u64>,
    ) -> Result<Segment> {
        let path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let io_err = |e| BrokerError::io(&path, e);
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .open(&path)
            .map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let mut contents = Contents::new(base_offset);
        let mut first_timestamp = None;
        let mut torn = None;
        let mut scanner = Scanner::new(&file, 0, len);
        loop {
            match scanner.next(true).map_err(io_err)? {
                Scanned::End => break,
                Scanned::Invalid { position, error } => {
                    torn = Some((position, error.to_string()));
                    break;
                }
                Scanned::Batch {
                    position, header, ..
                } => {
                    if header.base_offset != contents.next_offset {
                        torn = Some((
                            position,
                            format!(
                                "batch base offset {} where {} was expected",
                                header.base_offset, contents.next_offset
                            ),
                        ));
                        break;
                    }
                    if position > u64::from(u32::MAX)
                        || header.last_offset() - base_offset > u64::from(u32::MAX)
                    {
                        torn = Some((position, "segment outgrows its 32-bit index".into()));
                        break;
                    }
                    first_timestamp.get_or_insert(header.max_timestamp);
                    contents.note_batch(position, &header, index_interval);
                }
            }
        }
        if let Some((position, reason)) = torn {
            // A bad batch that is not a torn write: the log was closed cleanly with more than
            // this (damage to acknowledged, fsynced records), or valid batches follow it.
            // Truncating would throw acknowledged records away, so the segment is kept whole
            // and the partition taken offline.
            let why = match recorded_end.filter(|&end| contents.next_offset < end) {
                Some(end) => Some(format!(
                    "corrupt batch at byte {position}, before the log end (offset {end}) \
                     recorded at the last clean close: {reason}"
                )),
                None => valid_batch_after(&file, position, len, contents.next_offset)
                    .map_err(io_err)?
                    .map(|found| {
                        format!(
                            "corrupt batch at byte {position} followed by a valid batch at \
                             byte {found}: {reason}"
                        )
                    }),
            };
            if let Some(why) = why {
                tracing::error!(
                    file = %path.display(),
                    position,
                    offset = contents.next_offset,
                    "{label}: the active segment {} is corrupt: {why}; the partition is taken \
                     offline",
                    path.display(),
                );
                let damage = SegmentDamage {
                    position,
                    offset: contents.next_offset,
                    reason: why,
                };
                contents.size = len;
                let file = SegmentFile::opened(files, path.clone(), file, !read_only);
                let mut segment = Segment::with_file(dir, path, file, contents);
                segment.first_append_ms = first_timestamp;
                segment.damage = Some(damage);
                return Ok(segment);
            }
            if read_only {
                warn!(
                    file = %path.display(),
                    position,
                    "{label}: the active segment {} ends in a torn batch at byte {position} \
                     (offset {}): {reason}; read-only, so it is left as it is and read up to \
                     there",
                    path.display(),
                    contents.next_offset,
                );
                let file = SegmentFile::opened(files, path.clone(), file, false);
                let mut segment = Segment::with_file(dir, path, file, contents);
                segment.first_append_ms = first_timestamp;
                return Ok(segment);
            }
            warn!(
                file = %path.display(),
                position,
                offset = contents.next_offset,
                "{label}: truncating the active segment {} at byte {position} (offset {}), \
                 dropping {} bytes: {reason}",
                path.display(),
                contents.next_offset,
                len - position,
            );
            file.set_len(position).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        let file = SegmentFile::opened(files, path.clone(), file, !read_only);
        let mut segment = Segment::with_file(dir, path, file, contents);
        segment.first_append_ms = first_timestamp;
        Ok(segment)
    }

    /// Opens a sealed segment, with its index files when they are present and match the log;
    /// otherwise (with a warning) by scanning it. A sealed segment is never truncated: if a
    /// batch in it is corrupt, the scan stops there and reads reaching it fail.
    pub(super) fn open_sealed(
        dir: &Path,
        base_offset: u64,
        label: &str,
        index_interval: u64,
        gap_allowed: &dyn Fn(u64, u64) -> bool,
        files: &Arc<FileCache>,
    ) -> Result<Segment> {
        let path = dir.join(file_name(base_offset, LOG_SUFFIX));
        let io_err = |e| BrokerError::io(&path, e);
        let file = File::open(&path).map_err(io_err)?;
        let len = file.metadata().map_err(io_err)?.len();
        let index_path = dir.join(file_name(base_offset, INDEX_SUFFIX));
        let time_index_path = dir.join(file_name(base_offset, TIME_INDEX_SUFFIX));
        let loaded =
            index::load(&index_path, &time_index_path, base_offset, len).and_then(|loaded| {
                verify_index_tail(&file, &loaded.0, &loaded.1, gap_allowed).map(|()| loaded)
            });
        match loaded {
            Ok((summary, index, time_index)) => {
                let mut contents = Contents::new(base_offset);
                contents.size = summary.log_size;
                contents.next_offset = summary.next_offset;
                contents.max_timestamp = summary.max_timestamp;
                contents.index = index;
                contents.time_index = time_index;
                let file = SegmentFile::opened(files, path.clone(), file, false);
                let mut segment = Segment::with_file(dir, path, file, contents);
                segment.indexes_dirty = false;
                Ok(segment)
            }
            Err(reason) => {
                if len > 0 {
                    warn!(
                        file = %path.display(),
                        "{label}: rebuilding the indexes of {} by scanning it: {reason}",
                        path.display()
                    );
                }
                let (contents, damage) = Self::scan_sealed(
                    &file,
                    &path,
                    base_offset,
                    len,
                    label,
                    index_interval,
                    gap_allowed,
                )?;
                let file = SegmentFile::opened(files, path.clone(), file, false);
                let mut segment = Segment::with_file(dir, path, file, contents);
                segment.damage = damage;
                Ok(segment)
            }
        }
    }

    fn scan_sealed(
        file: &File,
        path: &Path,
        base_offset: u64,
        len: u64,
        label: &str,
        index_interval: u64,
        gap_allowed: &dyn Fn(u64, u64) -> bool,
    ) -> Result<(Contents, Option<SegmentDamage>)> {
        let mut contents = Contents::new(base_offset);
        let mut scanner = Scanner::new(file, 0, len);
        let mut damage = None;
        loop {
            let bad = match scanner.next(true).map_err(|e| BrokerError::io(path, e))? {
                Scanned::End => break,
                Scanned::Invalid { position, error } => Some((position, error.to_string())),
                Scanned::Batch {
                    position, header, ..
                } => {
                    if header.base_offset < contents.next_offset {
                        Some((
                            position,
                            format!(
                                "batch base offset {} is below {}",
                                header.base_offset, contents.next_offset
                            ),
                        ))
                    } else if header.base_offset > contents.next_offset
                        && !gap_allowed(contents.next_offset, header.base_offset)
                    {
                        Some((
                            position,
                            format!(
                                "batch base offset {} where {} was expected, and no gap is \
                                 recorded there",
                                header.base_offset, contents.next_offset
                            ),
                        ))
                    } else if position > u64::from(u32::MAX)
                        || header.last_offset() - base_offset > u64::from(u32::MAX)
                    {
                        Some((position, "segment outgrows its 32-bit index".into()))
                    } else {
                        contents.note_batch(position, &header, index_interval);
                        None
                    }
                }
            };
            if let Some((position, reason)) = bad {
                tracing::error!(
                    file = %path.display(),
                    position,
                    offset = contents.next_offset,
                    "{label}: sealed segment {} is corrupt at byte {position} (offset {}): \
                     {reason}; the partition is taken offline",
                    path.display(),
                    contents.next_offset,
                );
                damage = Some(SegmentDamage {
                    position,
                    offset: contents.next_offset,
                    reason: format!("corrupt batch at byte {position}: {reason}"),
                });
                break;
            }
        }
        contents.seal();
        // The whole file stays: what follows a corrupt batch is not silently dropped.
        contents.size = len;
        Ok((contents, damage))
    }

    /// The first valid batch after byte `from` with a base offset of at least
    /// `min_offset`: its position, size and next offset.
    pub(super) fn find_valid_batch_after(
        &self,
        from: u64,
        len: u64,
        min_offset: u64,
    ) -> io::Result<Option<(u64, u64, u64)>> {
        let file = self.file.handle()?;
        let Some(at) = valid_batch_after(&file, from, len, min_offset)? else {
            return Ok(None);
        };
        let mut head = [0u8; BATCH_HEADER_LEN];
        file.read_exact_at(&mut head, at)?;
        Ok(BatchHeader::parse(&head)
            .ok()
            .map(|h| (at, h.size() as u64, h.next_offset())))
    }

    /// The damage found in this segment, if any.
    pub(super) fn damage(&self) -> Option<&SegmentDamage> {
        self.damage.as_ref()
    }

    /// Records damage found later (by a read or a header scan).
    pub(super) fn set_damage(&mut self, damage: SegmentDamage) {
        if self
            .damage
            .as_ref()
            .is_none_or(|d| damage.position < d.position)
        {
            self.damage = Some(damage);
        }
    }

    /// The segment's base offset.
    pub(super) fn base_offset(&self) -> u64 {
        self.contents.base_offset
    }

    /// Bytes of batches in the segment.
    pub(super) fn size(&self) -> u64 {
        self.contents.size
    }

    /// True when the segment holds no bytes.
    pub(super) fn is_empty(&self) -> bool {
        self.contents.size == 0
    }

    /// The offset after the segment's last batch.
    pub(super) fn next_offset(&self) -> u64 {
        self.contents.next_offset
    }

    /// The largest batch max timestamp in the segment, `None` when it is empty.
    pub(super) fn max_timestamp(&self) -> Option<i64> {
        self.contents.max_timestamp
    }

    /// The segment file.
    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    fn index_path(&self) -> PathBuf {
        self.dir.join(file_name(self.base_offset(), INDEX_SUFFIX))
    }

    fn time_index_path(&self) -> PathBuf {
        self.dir
            .join(file_name(self.base_offset(), TIME_INDEX_SUFFIX))
    }

    /// Accounts for a batch written (or about to be written) at `position`.
    pub(super) fn note_batch(&mut self, position: u64, header: &BatchHeader, interval: u64) {
        self.contents.note_batch(position, header, interval);
        self.indexes_dirty = true;
    }

    /// Writes `bytes` at `position` of the file.
    pub(super) fn write_at(&self, bytes: &[u8], position: u64) -> io::Result<()> {
        self.file.handle()?.write_all_at(bytes, position)
    }

    /// Appends one encoded batch.
    pub(super) fn append(
        &mut self,
        bytes: &[u8],
        header: &BatchHeader,
        interval: u64,
    ) -> io::Result<()> {
        let position = self.size();
        self.file.handle()?.write_all_at(bytes, position)?;
        self.note_batch(position, header, interval);
        Ok(())
    }

    /// The position of the last indexed batch at or before `offset` (0 if none): reading
    /// from there finds the batch holding `offset`.
    pub(super) fn floor_position(&self, offset: u64) -> u64 {
        u64::from(
            self.contents
                .index
                .floor_position(self.contents.relative(offset)),
        )
    }

    /// A position from which a scan finds the first record with a timestamp of at least
    /// `timestamp`.
    pub(super) fn position_for_timestamp(&self, timestamp: i64) -> u64 {
        match self.contents.time_index.last_below(timestamp) {
            Some(relative) => u64::from(self.contents.index.floor_position(relative)),
            None => 0,
        }
    }

    /// Reads `len` bytes at `position` with one positional read.
    pub(super) fn read_at(&self, position: u64, len: usize) -> io::Result<Bytes> {
        let mut buf = vec![0u8; len];
        self.file.handle()?.read_exact_at(&mut buf, position)?;
        Ok(Bytes::from(buf))
    }

    /// A scanner over the segment's batches from `position`.
    pub(super) fn scanner(&self, position: u64) -> Scanner<'_> {
        Scanner::over(Source::Segment(&self.file), position, self.size())
    }

    /// A scanner over the segment's batches from `position` to `end`.
    pub(super) fn scanner_until(&self, position: u64, end: u64) -> Scanner<'_> {
        Scanner::over(Source::Segment(&self.file), position, end.min(self.size()))
    }

    /// Rebuilds the in-memory indexes of a sealed segment by scanning it, and writes the
    /// index files (unless the scan finds damage, which is kept).
    pub(super) fn rebuild_indexes(
        &mut self,
        label: &str,
        index_interval: u64,
        gap_allowed: &dyn Fn(u64, u64) -> bool,
    ) -> Result<()> {
        let len = self.size();
        let handle = self
            .file
            .handle()
            .map_err(|e| BrokerError::io(&self.path, e))?;
        let (contents, damage) = Self::scan_sealed(
            &handle,
            &self.path,
            self.base_offset(),
            len,
            label,
            index_interval,
            gap_allowed,
        )?;
        self.contents = contents;
        if let Some(damage) = damage {
            self.set_damage(damage);
        }
        self.indexes_dirty = true;
        self.write_indexes()
            .map_err(|e| BrokerError::io(&self.path, e))
    }

    /// Marks the segment as complete: adds the final time index entry (its max timestamp).
    pub(super) fn seal(&mut self) {
        self.contents.seal();
        self.indexes_dirty = true;
    }

    /// Writes the index files if they differ from memory (each written to a temporary file,
    /// fsynced, and renamed into place). The caller fsyncs the directory.
    pub(super) fn write_indexes(&mut self) -> io::Result<()> {
        if !self.indexes_dirty {
            return Ok(());
        }
        if self.damage.is_some() {
            // Index files would describe only the part before the damage and let the next
            // open skip the scan that finds it: a damaged segment keeps none.
            self.remove_index_files()?;
            self.indexes_dirty = false;
            return Ok(());
        }
        let summary = self.contents.summary();
        let offsets = index::encode_offset_index(&summary, &self.contents.index);
        index::write_file_atomically(&self.index_path(), &offsets)?;
        let times = index::encode_time_index(&summary, &self.contents.time_index);
        index::write_file_atomically(&self.time_index_path(), &times)?;
        self.indexes_dirty = false;
        Ok(())
    }

    /// Records that the index files must be written again.
    pub(super) fn mark_indexes_dirty(&mut self) {
        self.indexes_dirty = true;
    }

    /// Whether the index files are behind memory.
    pub(super) fn indexes_dirty(&self) -> bool {
        self.indexes_dirty
    }

    /// Fsyncs the file's data.
    pub(super) fn sync_data(&self) -> io::Result<()> {
        if !self.file.exists() {
            // Nothing was ever written: there is no file to sync.
            return Ok(());
        }
        self.file.handle()?.sync_data()
    }

    /// Removes the index files (before the log file is replaced).
    pub(super) fn remove_index_files(&self) -> io::Result<()> {
        remove_if_present(&self.index_path())?;
        remove_if_present(&self.time_index_path())
    }

    /// Removes the segment's files.
    pub(super) fn remove_files(&self) -> io::Result<()> {
        self.file.forget();
        remove_if_present(&self.path)?;
        self.remove_index_files()
    }

    /// Moves a `.log.cleaned` file over the segment file of the same base offset.
    pub(super) fn install_cleaned(&mut self) -> io::Result<()> {
        let target = self.dir.join(file_name(self.base_offset(), LOG_SUFFIX));
        fs::rename(&self.path, &target)?;
        self.file.renamed(target.clone());
        self.path = target;
        Ok(())
    }

    /// Number of offset index and time index entries.
    #[cfg(test)]
    pub(super) fn index_entries(&self) -> (usize, usize) {
        (self.contents.index.len(), self.contents.time_index.len())
    }
}

/// Checks loaded index files against the segment file where it is cheap: from the last
/// offset index entry (or the start) the batch headers must run back to back to exactly the
/// end of the file, the first one at the offset the entry names, the last one ending at the
/// summary's next offset. One small read per segment; a mismatch rebuilds the indexes.
fn verify_index_tail(
    file: &File,
    summary: &SegmentSummary,
    index: &OffsetIndex,
    gap_allowed: &dyn Fn(u64, u64) -> bool,
) -> std::result::Result<(), index::LoadError> {
    let (relative, position) = index.last_entry().unwrap_or((0, 0));
    let mut expected = summary.base_offset + u64::from(relative);
    let mut scanner = Scanner::new(file, u64::from(position), summary.log_size);
    let mut first = true;
    loop {
        match scanner.next(false) {
            Err(e) => return Err(format!("cannot read the segment: {e}")),
            Ok(Scanned::End) => break,
            Ok(Scanned::Invalid { position, error }) => {
                return Err(format!("no valid batch header at byte {position}: {error}"))
            }
            Ok(Scanned::Batch {
                position, header, ..
            }) => {
                let fits = header.base_offset == expected
                    || (!first
                        && header.base_offset > expected
                        && gap_allowed(expected, header.base_offset));
                if !fits {
                    return Err(format!(
                        "the index places offset {expected} at byte {position}, which holds \
                         a batch at offset {}",
                        header.base_offset
                    ));
                }
                first = false;
                expected = header.next_offset();
            }
        }
    }
    if summary.log_size > 0 && expected != summary.next_offset {
        return Err(format!(
            "the index says the segment ends before offset {}, its batches end before {expected}",
            summary.next_offset
        ));
    }
    Ok(())
}

/// Looks for a valid batch (header, CRC and records checked) that starts after `from` in
/// the first `len` bytes of `file` with a base offset of at least `min_offset`; returns its
/// position. A torn write leaves nothing valid behind it; corruption in the middle of a
/// segment does.
pub(super) fn valid_batch_after(
    file: &File,
    from: u64,
    len: u64,
    min_offset: u64,
) -> io::Result<Option<u64>> {
    const MAGIC_AT: u64 = 16;
    let mut chunk_start = from;
    while chunk_start < len {
        let chunk_len = (SCAN_CHUNK as u64).min(len - chunk_start) as usize;
        let mut chunk = vec![0u8; chunk_len];
        file.read_exact_at(&mut chunk, chunk_start)?;
        for i in 0..chunk_len {
            let at = chunk_start + i as u64;
            if at == from || at + BATCH_HEADER_LEN as u64 > len {
                continue;
            }
            let magic_at = i + MAGIC_AT as usize;
            if magic_at < chunk_len && chunk[magic_at] as i8 != batch::MAGIC {
                continue;
            }
            let mut head = [0u8; BATCH_HEADER_LEN];
            file.read_exact_at(&mut head, at)?;
            let Ok(header) = BatchHeader::parse(&head) else {
                continue;
            };
            if header.base_offset < min_offset || at + header.size() as u64 > len {
                continue;
            }
            let mut bytes = vec![0u8; header.size()];
            file.read_exact_at(&mut bytes, at)?;
            if batch::validate_batch(&bytes).is_ok() {
                return Ok(Some(at));
            }
        }
        chunk_start += chunk_len as u64;
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        assert_eq!(file_name(42, LOG_SUFFIX), "00000000000000000042.log");
        assert_eq!(
            parse_file_name("00000000000000000042.timeindex"),
            Some((42, ".timeindex"))
        );
        assert_eq!(
            parse_file_name(&file_name(u64::MAX, CLEANED_SUFFIX)),
            Some((u64::MAX, CLEANED_SUFFIX))
        );
        assert_eq!(parse_file_name("0000000000000000004x.log"), None);
        assert_eq!(parse_file_name("short.log"), None);
        assert_eq!(parse_file_name("99999999999999999999.log"), None);
    }
}
