//! Opening, checking, locking and wiping persistent stores.

use std::fs;
use std::path::Path;

use bytes::Bytes;

use crate::layout::{DiskBackend, MARKER_FILE};
use crate::{open_or_wipe, open_store, wipe, KeyValueStore, LocalData, StoreBackend, StoreError};

const PERSISTENT: [StoreBackend; 2] = [StoreBackend::Sled, StoreBackend::Redb];

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn disk(backend: StoreBackend) -> DiskBackend {
    match backend {
        StoreBackend::Sled => DiskBackend::Sled,
        _ => DiskBackend::Redb,
    }
}

/// Creates store `name` with one flushed entry, and closes it.
fn create(backend: StoreBackend, state_dir: &Path, name: &str) {
    let mut store = open_store(backend, state_dir, name).unwrap();
    store.put(b("k"), b("v")).unwrap();
    store.close().unwrap();
}

fn assert_corrupt(result: crate::Result<Box<dyn KeyValueStore>>, what: &str) {
    match result {
        Err(e @ StoreError::Corrupt { .. }) => {
            assert!(e.requires_restore());
            let msg = e.to_string();
            assert!(
                msg.contains("wipe"),
                "{what}: message is not actionable: {msg}"
            );
        }
        Err(e) => panic!("{what}: expected Corrupt, got {e}"),
        Ok(store) => panic!("{what}: opened {store:?}"),
    }
}

/// Overwrites every file under `path` (a file or a directory) with garbage
/// of the same length.
fn scramble(path: &Path) {
    if path.is_dir() {
        for entry in fs::read_dir(path).unwrap() {
            scramble(&entry.unwrap().path());
        }
    } else {
        let len = fs::metadata(path).unwrap().len() as usize;
        let garbage: Vec<u8> = (0..len.max(64)).map(|i| (i * 131 + 7) as u8).collect();
        fs::write(path, garbage).unwrap();
    }
}

#[test]
fn reopening_keeps_the_data_and_the_store_dir_layout() {
    for backend in PERSISTENT {
        let dir = tempfile::tempdir().unwrap();
        create(backend, dir.path(), "counts");
        let store_dir = dir.path().join("counts");
        assert!(store_dir.join(MARKER_FILE).is_file());
        assert!(disk(backend).data_path(&store_dir).exists());
        let store = open_store(backend, dir.path(), "counts").unwrap();
        assert_eq!(store.get(b"k").unwrap(), Some(b("v")), "{backend}");
        assert_eq!(store.approximate_num_entries().unwrap(), 1);
    }
}

#[test]
fn a_second_open_of_an_open_store_is_locked_not_corrupt() {
    for backend in PERSISTENT {
        let dir = tempfile::tempdir().unwrap();
        let _first = open_store(backend, dir.path(), "s").unwrap();
        match open_store(backend, dir.path(), "s") {
            Err(StoreError::Locked { store, .. }) => assert_eq!(store, "s"),
            Err(e) => panic!("{backend}: expected Locked, got {e}"),
            Ok(_) => panic!("{backend}: opened twice"),
        }
        // And open_or_wipe must not wipe a locked store.
        assert!(matches!(
            open_or_wipe(backend, dir.path(), "s"),
            Err(StoreError::Locked { .. })
        ));
    }
}

#[test]
fn damaged_data_is_corrupt_and_open_or_wipe_recovers() {
    for backend in PERSISTENT {
        let dir = tempfile::tempdir().unwrap();
        create(backend, dir.path(), "s");
        scramble(&disk(backend).data_path(&dir.path().join("s")));
        assert_corrupt(open_store(backend, dir.path(), "s"), backend.as_str());

        let (store, local) = open_or_wipe(backend, dir.path(), "s").unwrap();
        assert_eq!(local, LocalData::Wiped);
        assert!(!local.checkpoint_applies());
        assert_eq!(store.approximate_num_entries().unwrap(), 0);
        assert_eq!(store.get(b"k").unwrap(), None);
    }
}

/// Only files that were found may be restored from their checkpoint: a
/// store whose directory was deleted while it was closed comes back
/// created, as on a first start, not found.
#[test]
fn open_or_wipe_says_whether_the_files_were_found() {
    for backend in PERSISTENT {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, local) = open_or_wipe(backend, dir.path(), "s").unwrap();
        assert_eq!(local, LocalData::Created, "{backend}: first open");
        store.put(b("k"), b("v")).unwrap();
        store.close().unwrap();
        drop(store);

        let (mut store, local) = open_or_wipe(backend, dir.path(), "s").unwrap();
        assert_eq!(local, LocalData::Found, "{backend}: reopen");
        assert!(local.checkpoint_applies());
        assert_eq!(store.get(b"k").unwrap(), Some(b("v")));
        store.close().unwrap();
        drop(store);

        fs::remove_dir_all(dir.path().join("s")).unwrap();
        let (mut store, local) = open_or_wipe(backend, dir.path(), "s").unwrap();
        assert_eq!(local, LocalData::Created, "{backend}: files deleted");
        assert!(!local.checkpoint_applies());
        assert_eq!(store.approximate_num_entries().unwrap(), 0);
        store.close().unwrap();
        drop(store);

        // An empty directory is a store still to be created.
        fs::remove_dir_all(dir.path().join("s")).unwrap();
        fs::create_dir(dir.path().join("s")).unwrap();
        let (store, local) = open_or_wipe(backend, dir.path(), "s").unwrap();
        assert_eq!(local, LocalData::Created, "{backend}: empty directory");
        drop(store);
    }
    let (_, local) = open_or_wipe(StoreBackend::InMemory, Path::new("unused"), "s").unwrap();
    assert_eq!(local, LocalData::Created);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Flips one byte at a time across the main data file of a cleanly closed
/// store: every open either fails with Corrupt or returns all the data
/// intact; none panics and none silently returns less.
#[test]
fn a_flipped_byte_in_the_data_file_is_corrupt_never_silent_loss() {
    const ENTRIES: u32 = 2000;
    for backend in PERSISTENT {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut store = open_store(backend, dir.path(), "s").unwrap();
            for i in 0..ENTRIES {
                store
                    .put(
                        Bytes::from(i.to_be_bytes().to_vec()),
                        Bytes::from(vec![7u8; 100]),
                    )
                    .unwrap();
            }
            store.close().unwrap();
        }
        let store_dir = dir.path().join("s");
        let pristine = tempfile::tempdir().unwrap();
        copy_dir(&store_dir, pristine.path());
        let file = match backend {
            StoreBackend::Sled => disk(backend).data_path(&store_dir).join("db"),
            _ => disk(backend).data_path(&store_dir),
        };
        let original = fs::read(&file).unwrap();
        let (mut detected, mut intact) = (0, 0);
        for at in (0..original.len()).step_by(original.len() / 60 + 1).skip(1) {
            let mut bad = original.clone();
            bad[at] ^= 0xff;
            fs::write(&file, &bad).unwrap();
            match open_store(backend, dir.path(), "s") {
                Err(StoreError::Corrupt { .. }) => detected += 1,
                Err(e) => panic!("{backend}: flip at {at}: expected Corrupt, got {e}"),
                Ok(mut store) => {
                    let good = store
                        .all()
                        .unwrap()
                        .filter(|r| r.as_ref().is_ok_and(|(_, v)| v[..] == [7u8; 100]))
                        .count();
                    assert_eq!(
                        good, ENTRIES as usize,
                        "{backend}: flip at {at} silently lost data"
                    );
                    store.close().unwrap();
                    intact += 1;
                }
            }
            fs::remove_dir_all(&store_dir).unwrap();
            copy_dir(pristine.path(), &store_dir);
        }
        assert!(
            detected > 0,
            "{backend}: no flip detected ({intact} harmless)"
        );
    }
}

#[test]
fn a_store_opened_with_another_backend_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    create(StoreBackend::Sled, dir.path(), "s");
    assert_corrupt(
        open_store(StoreBackend::Redb, dir.path(), "s"),
        "sled as redb",
    );
    let dir = tempfile::tempdir().unwrap();
    create(StoreBackend::Redb, dir.path(), "s");
    assert_corrupt(
        open_store(StoreBackend::Sled, dir.path(), "s"),
        "redb as sled",
    );
}

#[test]
fn content_without_a_marker_is_corrupt() {
    for backend in PERSISTENT {
        let dir = tempfile::tempdir().unwrap();
        create(backend, dir.path(), "s");
        fs::remove_file(dir.path().join("s").join(MARKER_FILE)).unwrap();
        assert_corrupt(open_store(backend, dir.path(), "s"), "no marker");
    }
}

#[test]
fn a_marker_without_data_is_corrupt() {
    for backend in PERSISTENT {
        let dir = tempfile::tempdir().unwrap();
        create(backend, dir.path(), "s");
        let data = disk(backend).data_path(&dir.path().join("s"));
        if data.is_dir() {
            fs::remove_dir_all(&data).unwrap();
        } else {
            fs::remove_file(&data).unwrap();
        }
        assert_corrupt(open_store(backend, dir.path(), "s"), "no data");
    }
}

#[test]
fn a_damaged_marker_is_corrupt() {
    for backend in PERSISTENT {
        let dir = tempfile::tempdir().unwrap();
        create(backend, dir.path(), "s");
        let marker = dir.path().join("s").join(MARKER_FILE);
        let mut bytes = fs::read(&marker).unwrap();
        bytes[4] = 9;
        fs::write(&marker, &bytes).unwrap();
        assert_corrupt(open_store(backend, dir.path(), "s"), "bad marker");
    }
}

#[test]
fn wipe_removes_the_store_and_it_opens_empty() {
    for backend in PERSISTENT {
        let dir = tempfile::tempdir().unwrap();
        create(backend, dir.path(), "s");
        create(backend, dir.path(), "other");
        wipe(dir.path(), "s").unwrap();
        assert!(!dir.path().join("s").exists());
        let store = open_store(backend, dir.path(), "s").unwrap();
        assert_eq!(store.get(b"k").unwrap(), None);
        let other = open_store(backend, dir.path(), "other").unwrap();
        assert_eq!(
            other.get(b"k").unwrap(),
            Some(b("v")),
            "wipe touched another store"
        );
    }
}

#[test]
fn unflushed_redb_writes_are_discarded_when_dropped_without_close() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open_store(StoreBackend::Redb, dir.path(), "s").unwrap();
        store.put(b("flushed"), b("1")).unwrap();
        store.flush().unwrap();
        store.put(b("unflushed"), b("2")).unwrap();
        store.delete(b("flushed")).unwrap();
        assert_eq!(
            store.get(b"unflushed").unwrap(),
            Some(b("2")),
            "reads see the open transaction"
        );
        // Dropped without close: as after a crash.
    }
    let store = open_store(StoreBackend::Redb, dir.path(), "s").unwrap();
    assert_eq!(store.get(b"flushed").unwrap(), Some(b("1")));
    assert_eq!(store.get(b"unflushed").unwrap(), None);
}

#[test]
fn every_call_on_a_closed_store_is_an_error() {
    for backend in StoreBackend::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open_store(backend, dir.path(), "s").unwrap();
        store.close().unwrap();
        store.close().unwrap();
        let closed = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Closed { .. }));
        assert!(closed(store.get(b"k").map(drop)), "{backend}");
        assert!(closed(store.put(b("k"), b("v"))), "{backend}");
        assert!(closed(store.delete(b("k")).map(drop)), "{backend}");
        assert!(closed(store.range(b"a", b"b").map(drop)), "{backend}");
        assert!(closed(store.all().map(drop)), "{backend}");
        assert!(
            closed(store.approximate_num_entries().map(drop)),
            "{backend}"
        );
        assert!(closed(store.flush()), "{backend}");
    }
}

#[test]
fn an_empty_or_inverted_range_is_empty() {
    for backend in StoreBackend::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open_store(backend, dir.path(), "s").unwrap();
        store.put(b("b"), b("1")).unwrap();
        assert_eq!(store.range(b"b", b"b").unwrap().count(), 0, "{backend}");
        assert_eq!(store.range(b"c", b"a").unwrap().count(), 0, "{backend}");
        assert_eq!(store.range(b"b", b"b\0").unwrap().count(), 1, "{backend}");
    }
}

#[test]
fn long_scans_cross_chunk_boundaries() {
    for backend in StoreBackend::ALL {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open_store(backend, dir.path(), "s").unwrap();
        for i in 0..1500u32 {
            store
                .put(
                    Bytes::from(i.to_be_bytes().to_vec()),
                    Bytes::from(vec![1u8]),
                )
                .unwrap();
        }
        let keys: Vec<u32> = store
            .all()
            .unwrap()
            .map(|r| {
                let (k, _) = r.unwrap();
                u32::from_be_bytes([k[0], k[1], k[2], k[3]])
            })
            .collect();
        assert_eq!(keys, (0..1500).collect::<Vec<_>>(), "{backend}");
        let n = store
            .range(&100u32.to_be_bytes(), &1200u32.to_be_bytes())
            .unwrap()
            .count();
        assert_eq!(n, 1100, "{backend}");
    }
}

#[test]
fn names_that_escape_the_state_dir_are_rejected_before_touching_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    for backend in StoreBackend::ALL {
        for name in ["..", "a/b", ""] {
            assert!(matches!(
                open_store(backend, dir.path(), name),
                Err(StoreError::InvalidName { .. })
            ));
        }
    }
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_sled_store_dropped_without_close_reopens_with_its_flushed_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open_store(StoreBackend::Sled, dir.path(), "s").unwrap();
        store.put(b("k"), b("v")).unwrap();
        store.flush().unwrap();
    }
    assert!(!dir.path().join("s").join("CLEAN").exists());
    let store = open_store(StoreBackend::Sled, dir.path(), "s").unwrap();
    assert_eq!(store.get(b"k").unwrap(), Some(b("v")));
}

#[test]
fn sled_content_that_differs_from_the_clean_close_record_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    create(StoreBackend::Sled, dir.path(), "s");
    let clean = dir.path().join("s").join("CLEAN");
    let original = fs::read(&clean).unwrap();

    // A damaged record.
    let mut bad = original.clone();
    bad[3] ^= 1;
    fs::write(&clean, &bad).unwrap();
    assert_corrupt(
        open_store(StoreBackend::Sled, dir.path(), "s"),
        "damaged CLEAN",
    );

    // A record for different content (one entry more than there is).
    let mut store = {
        fs::remove_file(&clean).unwrap();
        open_store(StoreBackend::Sled, dir.path(), "s").unwrap()
    };
    store.put(b("extra"), b("1")).unwrap();
    store.close().unwrap();
    let two_entries = fs::read(&clean).unwrap();
    drop(store);
    let mut store = open_store(StoreBackend::Sled, dir.path(), "s").unwrap();
    store.delete(b("extra")).unwrap();
    store.close().unwrap();
    drop(store);
    fs::write(&clean, &two_entries).unwrap();
    assert_corrupt(
        open_store(StoreBackend::Sled, dir.path(), "s"),
        "stale CLEAN",
    );
}
