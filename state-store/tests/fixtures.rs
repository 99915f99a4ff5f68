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
