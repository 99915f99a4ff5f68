//! The opaque cursor of a paged scan: where the last page ended.
//!
//! Layout (then base64url without padding): `u8 version (1) | u32
//! sub-topology (BE) | u32 partition (BE) | the stored key of the last
//! entry`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use streams_core::query::PageCursor;
use streams_core::TaskId;

const VERSION: u8 = 1;

/// `cursor` as the text of a `cursor=` parameter.
pub(crate) fn encode(cursor: &PageCursor) -> String {
    let mut bytes = Vec::with_capacity(9 + cursor.after.len());
    bytes.push(VERSION);
    bytes.extend_from_slice(&cursor.task.subtopology.to_be_bytes());
    bytes.extend_from_slice(&cursor.task.partition.to_be_bytes());
    bytes.extend_from_slice(&cursor.after);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The cursor that `text` encodes, or why it is not one.
pub(crate) fn decode(text: &str) -> Result<PageCursor, String> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| "the cursor is not one this endpoint gave".to_owned())?;
    match bytes.split_first() {
        Some((&VERSION, rest)) if rest.len() >= 8 => {
            let word = |at: usize| {
                u32::from_be_bytes([rest[at], rest[at + 1], rest[at + 2], rest[at + 3]])
            };
            Ok(PageCursor {
                task: TaskId {
                    subtopology: word(0),
                    partition: word(4),
                },
                after: Bytes::copy_from_slice(&rest[8..]),
            })
        }
        _ => Err("the cursor is not one this endpoint gave".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let cursor = PageCursor {
            task: TaskId {
                subtopology: 1,
                partition: 2,
            },
            after: Bytes::from_static(b"word\xff"),
        };
        assert_eq!(decode(&encode(&cursor)), Ok(cursor));
        assert!(decode("!!").is_err());
        assert!(decode("AQ").is_err());
        assert!(decode("").is_err());
    }
}
