//! Small byte strings made to be shared.
//!
//! A `Bytes` made from a `Vec` (`Bytes::from`, `Bytes::copy_from_slice`)
//! allocates a second time at its first clone, to hold the reference count.
//! The record cache hands each value it writes through to the inner store,
//! the changelog and downstream, so its keys and values are cloned about as
//! often as they are made: [`shared_bytes`] puts a small one and its count
//! in one allocation from the start.

use bytes::Bytes;

/// A copy of `data` whose clones cost a reference-count increment: up to 64
/// bytes in one allocation with the count; longer ones as
/// `Bytes::copy_from_slice`.
pub fn shared_bytes(data: &[u8]) -> Bytes {
    match data.len() {
        0 => Bytes::new(),
        1..=16 => Bytes::from_owner(Inline::<16>::new(data)),
        17..=32 => Bytes::from_owner(Inline::<32>::new(data)),
        33..=64 => Bytes::from_owner(Inline::<64>::new(data)),
        _ => Bytes::copy_from_slice(data),
    }
}

/// Up to `N` bytes kept in place.
struct Inline<const N: usize> {
    len: usize,
    data: [u8; N],
}

impl<const N: usize> Inline<N> {
    fn new(bytes: &[u8]) -> Self {
        let mut data = [0u8; N];
        let len = bytes.len().min(N);
        data[..len].copy_from_slice(&bytes[..len]);
        Self { len, data }
    }
}

impl<const N: usize> AsRef<[u8]> for Inline<N> {
    fn as_ref(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn holds_the_bytes_given(data in prop::collection::vec(any::<u8>(), 0..200)) {
            let shared = shared_bytes(&data);
            prop_assert_eq!(&shared[..], &data[..]);
            let clone = shared.clone();
            drop(shared);
            prop_assert_eq!(&clone[..], &data[..]);
            prop_assert_eq!(&clone.slice(..data.len() / 2)[..], &data[..data.len() / 2]);
        }
    }
}
