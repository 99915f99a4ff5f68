//! The offsets a partition's log held when it was last closed cleanly (or when retention
//! last moved its start), so that an open notices segments deleted at either end: a deleted
//! first segment otherwise looks like retention, and a deleted last one like a shorter log.
//!
//! `log-bounds` (layout in `docs/format.md`): version, log start offset, log end offset,
//! CRC32C. The start only moves forward by retention, which records it durably before it
//! deletes anything; the end is recorded at a clean close, after the data is fsynced, so
//! after a crash the record is older than the log and never raises a false alarm.

use std::fs;
use std::io;
use std::path::Path;

use super::index::{temp_path, write_file_atomically};
use super::segment::sync_dir;

/// The file name in the partition directory.
pub(super) const BOUNDS_FILE: &str = "log-bounds";
const VERSION: u8 = 1;
const LEN: usize = 21;

fn encode(start: u64, end: u64) -> [u8; LEN] {
    let mut buf = [0u8; LEN];
    buf[0] = VERSION;
    buf[1..9].copy_from_slice(&start.to_be_bytes());
    buf[9..17].copy_from_slice(&end.to_be_bytes());
    let crc = crc32c::crc32c(&buf[..17]);
    buf[17..].copy_from_slice(&crc.to_be_bytes());
    buf
}

fn decode(bytes: &[u8]) -> std::result::Result<(u64, u64), String> {
    if bytes.len() != LEN {
        return Err(format!("{} bytes, expected {LEN}", bytes.len()));
    }
    if bytes[0] != VERSION {
        return Err(format!("unknown format version {}", bytes[0]));
    }
    let stored = u32::from_be_bytes([bytes[17], bytes[18], bytes[19], bytes[20]]);
    let computed = crc32c::crc32c(&bytes[..17]);
    if stored != computed {
        return Err(format!(
            "CRC32C mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let mut start = [0u8; 8];
    let mut end = [0u8; 8];
    start.copy_from_slice(&bytes[1..9]);
    end.copy_from_slice(&bytes[9..17]);
    let (start, end) = (u64::from_be_bytes(start), u64::from_be_bytes(end));
    if start > end {
        return Err(format!("log start {start} is past log end {end}"));
    }
    Ok((start, end))
}

/// The recorded `(log start, log end)`: `Ok(None)` when there is none, `Err` with the reason
/// when the file cannot be used (then nothing is checked against it).
pub(super) fn read(dir: &Path) -> std::result::Result<Option<(u64, u64)>, String> {
    let path = dir.join(BOUNDS_FILE);
    match fs::read(&path) {
        Ok(bytes) => decode(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Records the bounds. With `durable` (before retention deletes segments, before a repair
/// truncates) the record is fsynced with its dir before this returns. Without (at a clean
/// close), it is renamed into place unsynced: a record a power loss takes back is only an
/// older one, which raises no alarm, and a torn one is ignored with a warning.
pub(super) fn write(dir: &Path, start: u64, end: u64, durable: bool) -> io::Result<()> {
    let path = dir.join(BOUNDS_FILE);
    if durable {
        write_file_atomically(&path, &encode(start, end))?;
        return sync_dir(dir);
    }
    let tmp = temp_path(&path);
    fs::write(&tmp, encode(start, end))?;
    fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_every_flipped_byte() {
        let bytes = encode(7, 1234);
        assert_eq!(decode(&bytes), Ok((7, 1234)));
        for i in 0..LEN {
            let mut bad = bytes;
            bad[i] ^= 0x04;
            assert!(decode(&bad).is_err(), "byte {i}");
        }
        assert!(decode(&bytes[..LEN - 1]).is_err());
        assert!(decode(&encode(9, 3)).is_err());
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()), Ok(None));
        write(dir.path(), 3, 40, true).unwrap();
        assert_eq!(read(dir.path()), Ok(Some((3, 40))));
    }
}
