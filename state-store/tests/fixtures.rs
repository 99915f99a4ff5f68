//! Format fixtures: files written by format version 1, which every later
//! build must still read.

use state_store::{Checkpoint, CHECKPOINT_FORMAT_VERSION};

#[test]
fn checkpoint_v1_fixture_decodes_and_re_encodes_identically() {
    let bytes = include_bytes!("fixtures/checkpoint-v1.bin");
    assert_eq!(bytes[0], 1);
    let checkpoint = Checkpoint::decode(bytes).unwrap();
    let entries: Vec<_> = checkpoint.iter().collect();
    assert_eq!(
        entries,
        vec![
            ("app-counts-changelog", 0, 42),
            ("app-counts-changelog", 3, 7),
            ("app-totals-changelog", 1, u64::MAX),
        ]
    );
    if CHECKPOINT_FORMAT_VERSION == 1 {
        assert_eq!(checkpoint.encode(), bytes.to_vec());
    }
}

/// The backend entries of a versioned store, as `(key, value)` pairs of a
/// fixture: each a 4-byte big-endian length and the bytes, key then value.
fn entries(mut bytes: &[u8]) -> Vec<(bytes::Bytes, bytes::Bytes)> {
    fn field(bytes: &mut &[u8]) -> bytes::Bytes {
        let (len, rest) = bytes.split_at(4);
        let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
        let (field, rest) = rest.split_at(len);
        *bytes = rest;
        bytes::Bytes::copy_from_slice(field)
    }
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = field(&mut bytes);
        let value = field(&mut bytes);
        out.push((key, value));
    }
    out
}

/// A versioned store of layout version 1 (history retention 100): `pen` = 1
/// at 10 then 2 at 20, `ink` deleted at 15.
#[test]
fn versioned_store_v1_fixture_reads_and_is_written_identically() {
    use bytes::Bytes;
    use state_store::{
        InMemoryStore, InMemoryVersionedStore, KeyValueStore, KvVersionedStore,
        VersionedKeyValueStore,
    };

    let fixture = entries(include_bytes!("fixtures/versioned-store-v1.bin"));
    let mut backend = InMemoryStore::new("v");
    for (key, value) in &fixture {
        backend.put(key.clone(), value.clone()).unwrap();
    }
    let store = KvVersionedStore::new(backend, 100).unwrap();
    assert_eq!(store.observed_stream_time(), Some(20));
    let pen = store.get(b"pen").unwrap().unwrap();
    assert_eq!(
        (pen.value, pen.timestamp, pen.valid_to),
        (Bytes::from("2"), 20, None)
    );
    let old = store.get_as_of(b"pen", 15).unwrap().unwrap();
    assert_eq!(
        (old.value, old.timestamp, old.valid_to),
        (Bytes::from("1"), 10, Some(20))
    );
    assert_eq!(store.get(b"ink").unwrap(), None);
    assert_eq!(store.get_as_of(b"ink", 16).unwrap(), None);

    // The same operations write the same bytes.
    let mut written = InMemoryVersionedStore::in_memory("v", 100);
    written
        .put(Bytes::from("pen"), Some(Bytes::from("1")), 10)
        .unwrap();
    written.put(Bytes::from("ink"), None, 15).unwrap();
    written
        .put(Bytes::from("pen"), Some(Bytes::from("2")), 20)
        .unwrap();
    let raw: Vec<_> = written
        .backend()
        .all()
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(raw, fixture);
}
