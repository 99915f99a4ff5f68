//! `count` after a repartition, on the key bytes (no key value made per
//! record), with the cached count rewritten in place.

use super::*;

/// `count` after a repartition: the repartition topic's keys are the bytes
/// of the grouped key serde, which is the store's key serde too, so the
/// source keeps them as bytes and the store is updated by them, with no
/// value of `K` made and dropped per record. A key is read only to forward
/// an update without a record cache (with one, the cache's flushes go
/// downstream, read from the store's bytes). Values arrive as whether each
/// is null ([`Presence`]).
///
/// With a record cache and the store's default value serde, a count held
/// in the cache since its last flush is rewritten in place
/// ([`patch_count`]): no value is decoded, encoded or allocated.
pub(crate) struct RawKeyCount<K> {
    store: String,
    /// The store, resolved at `init`.
    handle: Option<KeyValueStoreHandle<K, ValueAndTimestamp<i64>>>,
    cached: bool,
    /// Whether the store's values are written by the default serdes
    /// (a big-endian timestamp, then the count as a big-endian `i64`), the
    /// layout that [`patch_count`] rewrites.
    default_layout: bool,
    metrics: DslMetrics,
}

impl<K> fmt::Debug for RawKeyCount<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawKeyCount")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K> RawKeyCount<K> {
    /// `default_layout`: the store's value serde is the default one (no
    /// value serde given in `Materialized`).
    pub(crate) fn new(store: String, metrics: DslMetrics, default_layout: bool) -> Self {
        Self {
            store,
            handle: None,
            cached: false,
            default_layout,
            metrics,
        }
    }
}

/// Adds one to a count stored as [`crate::change::ValueAndTimestampSerde`]
/// over the big-endian `i64` serde writes it (16 bytes: the timestamp,
/// then the count), and moves its timestamp to `timestamp` if later: the
/// same step as [`aggregate_step`], on the bytes. Returns `false`, having
/// written nothing, for bytes of another length or a count that would
/// overflow; the caller then takes the general path.
pub(crate) fn patch_count(bytes: &mut [u8], timestamp: i64) -> bool {
    let Ok(stored) = <&mut [u8; 16]>::try_from(bytes) else {
        return false;
    };
    let (time, count) = stored.split_at_mut(8);
    let (Ok(time_bytes), Ok(count_bytes)) =
        (<[u8; 8]>::try_from(&*time), <[u8; 8]>::try_from(&*count))
    else {
        return false;
    };
    let Some(next) = i64::from_be_bytes(count_bytes).checked_add(1) else {
        return false;
    };
    let later = i64::from_be_bytes(time_bytes).max(timestamp);
    time.copy_from_slice(&later.to_be_bytes());
    count.copy_from_slice(&next.to_be_bytes());
    true
}

impl<K> Processor<Bytes, (), K, Change<i64>> for RawKeyCount<K>
where
    K: Clone + Send + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<'_, K, Change<i64>>) -> Result<()> {
        self.cached = listen_if_cached(ctx, &self.store)?;
        self.handle = Some(ctx.key_value_store_handle(&self.store)?);
        Ok(())
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<i64>>,
        record: Record<Bytes, ()>,
    ) -> Result<()> {
        let Some((key, _)) = aggregation_input(ctx, &record, &self.metrics) else {
            return Ok(());
        };
        let mut store = ctx.key_value_store_of(resolved(&self.handle, &self.store)?)?;
        // With a cache, nothing is forwarded per record: a count cached
        // since the last flush is rewritten where it lies.
        if self.cached
            && self.default_layout
            && store.patch_serialized(key, &mut |bytes| patch_count(bytes, record.timestamp))?
        {
            return Ok(());
        }
        let (old, new, timestamp) = store.update_serialized(key, |old| {
            aggregate_step(old, record.timestamp, |count| count.unwrap_or(0) + 1)
        })?;
        if self.cached {
            return Ok(());
        }
        let key = store.deserialize_key(key)?;
        ctx.forward(change_record(key, old, new, timestamp, record.headers))
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, K, Change<i64>>,
        store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        forward_flushed(ctx, store, &entry, None)
    }

    /// The count schedules no punctuation: its repartition source runs it
    /// inside its own call.
    fn runs_inline(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::ValueAndTimestampSerde;
    use proptest::prelude::*;
    use streams_core::{Serde, Serdes};

    fn stored(count: i64, timestamp: i64) -> Vec<u8> {
        let serde = ValueAndTimestampSerde::new(Serdes::i64());
        let mut out = Vec::new();
        serde
            .serialize_into("t", &ValueAndTimestamp::make(count, timestamp), &mut out)
            .unwrap();
        out
    }

    proptest! {
        /// The patch on the bytes is the count's step on values.
        #[test]
        fn patch_count_is_the_count_step_on_the_stored_bytes(
            count in any::<i64>(),
            old_time in any::<i64>(),
            time in any::<i64>(),
        ) {
            let mut bytes = stored(count, old_time);
            let before = bytes.clone();
            let patched = patch_count(&mut bytes, time);
            match count.checked_add(1) {
                Some(_) => {
                    let (new, _) = aggregate_step(
                        Some(ValueAndTimestamp::make(count, old_time)),
                        time,
                        |c| c.unwrap_or(0) + 1,
                    );
                    let new = new.unwrap();
                    prop_assert!(patched);
                    prop_assert_eq!(bytes, stored(new.value, new.timestamp));
                }
                None => {
                    prop_assert!(!patched, "an overflow takes the general path");
                    prop_assert_eq!(bytes, before);
                }
            }
        }

        #[test]
        fn patch_count_leaves_bytes_of_another_length_alone(
            bytes in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            prop_assume!(bytes.len() != 16);
            let mut patched = bytes.clone();
            prop_assert!(!patch_count(&mut patched, 5));
            prop_assert_eq!(patched, bytes);
        }
    }
}
