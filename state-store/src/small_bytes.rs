//! [`SmallBytes`]: a byte string owned by a store, held in place when short.
//!
//! The in-memory store keeps one of these for each key and each value, so
//! that an entry costs its map slot and nothing else for the short keys and
//! values most stores hold (a word and its count), and never shares a
//! buffer with anything else: a key or value that arrived as a slice of a
//! fetched batch (see the broker's decoder) would otherwise keep the whole
//! batch alive as long as the store keeps the entry.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;

/// The most bytes held in place: the rest of a 24-byte value once the tag
/// and the length are counted.
const INLINE: usize = 22;

/// A byte string of its own: up to [`INLINE`] bytes in place, longer ones in
/// a boxed slice. Compares, orders and borrows as its bytes.
#[derive(Clone)]
pub(crate) enum SmallBytes {
    /// Short: the bytes in place.
    Inline { len: u8, data: [u8; INLINE] },
    /// Long: a boxed copy.
    Heap(Box<[u8]>),
}

impl SmallBytes {
    /// A copy of `bytes`.
    pub(crate) fn copy_of(bytes: &[u8]) -> Self {
        match u8::try_from(bytes.len()) {
            Ok(len) if bytes.len() <= INLINE => {
                let mut data = [0u8; INLINE];
                data[..bytes.len()].copy_from_slice(bytes);
                Self::Inline { len, data }
            }
            _ => Self::Heap(bytes.into()),
        }
    }

    /// The bytes.
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, data } => &data[..usize::from(*len)],
            Self::Heap(bytes) => bytes,
        }
    }

    /// The bytes, to rewrite in place (their length stays).
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        match self {
            Self::Inline { len, data } => &mut data[..usize::from(*len)],
            Self::Heap(bytes) => bytes,
        }
    }
}

impl Borrow<[u8]> for SmallBytes {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl PartialEq for SmallBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SmallBytes {}

impl PartialOrd for SmallBytes {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallBytes {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_slice().cmp(other.as_slice())
    }
}

impl fmt::Debug for SmallBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", bytes::Bytes::copy_from_slice(self.as_slice()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn takes_24_bytes() {
        assert_eq!(std::mem::size_of::<SmallBytes>(), 24);
    }

    proptest! {
        #[test]
        fn holds_compares_and_rewrites_the_bytes_given(
            a in prop::collection::vec(any::<u8>(), 0..64),
            b in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let (sa, sb) = (SmallBytes::copy_of(&a), SmallBytes::copy_of(&b));
            prop_assert_eq!(sa.as_slice(), &a[..]);
            prop_assert_eq!(sa.cmp(&sb), a.cmp(&b));
            prop_assert_eq!(sa == sb, a == b);
            prop_assert_eq!(matches!(sa, SmallBytes::Heap(_)), a.len() > INLINE);
            let mut sc = sa.clone();
            for byte in sc.as_mut_slice() {
                *byte = byte.wrapping_add(1);
            }
            let expected: Vec<u8> = a.iter().map(|x| x.wrapping_add(1)).collect();
            prop_assert_eq!(sc.as_slice(), &expected[..]);
            prop_assert_eq!(sa.as_slice(), &a[..]);
        }
    }
}
