//! Kafka's default partitioner: murmur2 of the key bytes, made positive, modulo the partition
//! count, so a key lands in the same partition as with the Java client.

/// Kafka's murmur2 seed (`Utils.murmur2` in the Java client).
const KAFKA_SEED: u32 = 0x9747_b28c;

/// Kafka's `Utils.murmur2`: the 32-bit murmur2 hash of `data`, as a signed int.
pub fn murmur2(data: &[u8]) -> i32 {
    murmur2::murmur2(data, KAFKA_SEED) as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which overflows).
pub fn to_positive(n: i32) -> i32 {
    n & 0x7fff_ffff
}

/// The partition Kafka's default partitioner picks for `key` among `partitions`.
///
/// # Panics
/// Never: a topic always has at least one partition; `partitions == 0` returns 0.
pub fn partition_for_key(key: &[u8], partitions: u32) -> u32 {
    if partitions == 0 {
        return 0;
    }
    (to_positive(murmur2(key)) as u32) % partitions
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The vectors of the Java client's `UtilsTest.testMurmur2`, plus librdkafka's.
    #[test]
    fn matches_the_java_client() {
        let vectors: &[(&str, i32)] = &[
            ("21", -973_932_308),
            ("foobar", -790_332_482),
            ("a-little-bit-long-string", -985_981_536),
            ("a-little-bit-longer-string", -1_486_304_829),
            (
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            ("abc", 479_470_107),
            ("kafka", -798_503_068),
        ];
        for (input, expected) in vectors {
            assert_eq!(murmur2(input.as_bytes()), *expected, "murmur2({input:?})");
        }
    }

    #[test]
    fn to_positive_clears_the_sign_bit() {
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(42), 42);
    }

    proptest! {
        #[test]
        fn partition_is_in_range_and_stable(key in proptest::collection::vec(any::<u8>(), 0..64), n in 1u32..1000) {
            let p = partition_for_key(&key, n);
            prop_assert!(p < n);
            prop_assert_eq!(p, partition_for_key(&key, n));
            prop_assert_eq!(p, (to_positive(murmur2(&key)) as u32) % n);
        }
    }
}
