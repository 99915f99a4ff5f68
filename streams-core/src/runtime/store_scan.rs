//! Reading a task's store over bytes for interactive queries: pages of a
//! scan, the windows of a key in a window store, the sessions of a key in
//! a session store.

use bytes::Bytes;
use state_store::{
    decode_session_key, encode_session_key, encode_windowed_key, split_windowed_key, KeyValueStore,
};

use crate::error::Result;
use crate::query::{RangeQuery, RawEntry, RawWindow, StoreKind};

/// The largest stored key that the first pass of an open-ended scan reads
/// up to; keys at or above it (64 bytes of 0xFF first) are read by a
/// second pass over the whole store.
const SCAN_SENTINEL: [u8; 64] = [0xFF; 64];

/// The smallest byte string above `key`.
fn successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// Every stored entry with a key at or above `lower` (and below `upper`,
/// if given), in key order, handed to `visit` until it says stop.
fn visit_from(
    kv: &dyn KeyValueStore,
    lower: &[u8],
    upper: Option<&[u8]>,
    visit: &mut dyn FnMut(Bytes, Bytes) -> bool,
) -> Result<()> {
    if let Some(upper) = upper {
        for item in kv.range(lower, upper)? {
            let (k, v) = item?;
            if !visit(k, v) {
                return Ok(());
            }
        }
        return Ok(());
    }
    // No upper bound: a range up to a sentinel, then (rarely reached) the
    // keys at or above it, which no finite range bound covers.
    if lower < &SCAN_SENTINEL[..] {
        for item in kv.range(lower, &SCAN_SENTINEL)? {
            let (k, v) = item?;
            if !visit(k, v) {
                return Ok(());
            }
        }
    }
    let tail_start: &[u8] = if lower < &SCAN_SENTINEL[..] {
        &SCAN_SENTINEL
    } else {
        lower
    };
    for item in kv.all()? {
        let (k, v) = item?;
        if k.as_ref() < tail_start {
            continue;
        }
        if !visit(k, v) {
            return Ok(());
        }
    }
    Ok(())
}

/// Up to `want` entries of one task's store for `query`, after the stored
/// key `after` if given, with their stored keys.
pub(super) fn scan(
    kv: &dyn KeyValueStore,
    kind: StoreKind,
    window_size_ms: Option<i64>,
    query: &RangeQuery,
    after: Option<&[u8]>,
    want: usize,
) -> Result<Vec<(Bytes, RawEntry)>> {
    let mut out = Vec::new();
    let from = query.from.as_deref().unwrap_or(&[]);
    let lower = match after {
        Some(after) if successor(after).as_slice() > from => successor(after),
        _ => from.to_vec(),
    };
    match kind {
        StoreKind::KeyValue => {
            let upper = query.to.as_deref().map(successor);
            if upper.as_deref().is_some_and(|u| u <= lower.as_slice()) {
                return Ok(out);
            }
            visit_from(kv, &lower, upper.as_deref(), &mut |k, v| {
                out.push((
                    k.clone(),
                    RawEntry {
                        key: k,
                        value: v,
                        window: None,
                        timestamp: None,
                    },
                ));
                out.len() < want
            })?;
        }
        StoreKind::Window | StoreKind::Session => {
            let to = query.to.as_deref();
            let session = kind == StoreKind::Session;
            let size = window_size_ms.unwrap_or(0);
            visit_from(kv, &lower, None, &mut |raw, value| {
                // Stored keys begin with the record key: once their first
                // bytes pass `to`, so do all later ones.
                if let Some(to) = to {
                    if raw.len() >= to.len() && &raw[..to.len()] > to {
                        return false;
                    }
                }
                let decoded = if session {
                    decode_session_key(&raw).map(|s| {
                        (
                            s.key,
                            RawWindow {
                                start: s.start,
                                end: s.end,
                            },
                        )
                    })
                } else {
                    split_windowed_key(&raw).map(|(key, start)| {
                        (
                            raw.slice(..key.len()),
                            RawWindow {
                                start,
                                end: start.saturating_add(size),
                            },
                        )
                    })
                };
                let Some((key, window)) = decoded else {
                    return true;
                };
                if key.as_ref() < from || to.is_some_and(|to| key.as_ref() > to) {
                    return true;
                }
                out.push((
                    raw,
                    RawEntry {
                        key,
                        value,
                        window: Some(window),
                        timestamp: None,
                    },
                ));
                out.len() < want
            })?;
        }
        StoreKind::Versioned => {}
    }
    Ok(out)
}

/// The windows of `key` starting in `[from, to]`, by start.
pub(super) fn window_entries(
    kv: &dyn KeyValueStore,
    key: &[u8],
    from: i64,
    to: i64,
    size: i64,
) -> Result<Vec<RawEntry>> {
    let from = from.max(0);
    if to < from {
        return Ok(Vec::new());
    }
    let lower = encode_windowed_key(key, from);
    let upper = successor(&encode_windowed_key(key, to));
    let mut out = Vec::new();
    for item in kv.range(&lower, &upper)? {
        let (raw, value) = item?;
        if let Some((k, start)) = split_windowed_key(&raw) {
            if k == key && (from..=to).contains(&start) {
                out.push(RawEntry {
                    key: Bytes::copy_from_slice(key),
                    value,
                    window: Some(RawWindow {
                        start,
                        end: start.saturating_add(size),
                    }),
                    timestamp: None,
                });
            }
        }
    }
    out.sort_by_key(|e| e.window.map(|w| w.start));
    Ok(out)
}

/// The sessions of `key` ending at or after `from` and starting at or
/// before `to`, by start, then end.
pub(super) fn session_entries(
    kv: &dyn KeyValueStore,
    key: &[u8],
    from: i64,
    to: i64,
) -> Result<Vec<RawEntry>> {
    let lower = encode_session_key(key, 0, from.max(0));
    let upper = successor(&encode_session_key(key, i64::MAX, i64::MAX));
    let mut out = Vec::new();
    for item in kv.range(&lower, &upper)? {
        let (raw, value) = item?;
        if let Some(session) = decode_session_key(&raw) {
            if session.key == key && session.end >= from && session.start <= to {
                out.push(RawEntry {
                    key: session.key,
                    value,
                    window: Some(RawWindow {
                        start: session.start,
                        end: session.end,
                    }),
                    timestamp: None,
                });
            }
        }
    }
    out.sort_by_key(|e| e.window.map(|w| (w.start, w.end)));
    Ok(out)
}
