//! Put and get throughput of each key-value backend, next to a
//! `std::collections::HashMap` baseline measured in the same run.
//!
//! `cargo bench -p state-store --bench kv`. 200,000 random 16-byte keys with
//! 100-byte values; puts end with a flush (a commit for redb, an fsync for
//! sled), gets read every key in a shuffled order. Prints one line per
//! backend:
//!
//! `backend=<b> put_ops_per_sec=.. get_ops_per_sec=.. baseline_put_ops_per_sec=.. ratio=..`
//!
//! where `ratio` is the backend's put rate over the baseline's. Then
//! variant lines for commit frequency.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use state_store::{open_store, KeyValueStore, StoreBackend};

const ENTRIES: usize = 200_000;
const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;

struct Data {
    pairs: Vec<(Bytes, Bytes)>,
    read_order: Vec<usize>,
}

fn data() -> Data {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let pairs = (0..ENTRIES)
        .map(|_| {
            let mut k = vec![0u8; KEY_LEN];
            let mut v = vec![0u8; VALUE_LEN];
            rng.fill(&mut k[..]);
            rng.fill(&mut v[..]);
            (Bytes::from(k), Bytes::from(v))
        })
        .collect();
    let mut read_order: Vec<usize> = (0..ENTRIES).collect();
    read_order.shuffle(&mut rng);
    Data { pairs, read_order }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// (put ops/s, get ops/s) of a `HashMap` doing the same work.
fn baseline(data: &Data) -> (f64, f64) {
    let start = Instant::now();
    let mut map: HashMap<Bytes, Bytes> = HashMap::new();
    for (k, v) in &data.pairs {
        map.insert(k.clone(), v.clone());
    }
    let put = start.elapsed();
    let start = Instant::now();
    let mut found = 0usize;
    for &i in &data.read_order {
        found += usize::from(black_box(map.get(&data.pairs[i].0)).is_some());
    }
    let get = start.elapsed();
    assert_eq!(found, ENTRIES);
    (rate(ENTRIES, put), rate(ENTRIES, get))
}

/// (put ops/s including the final flush, get ops/s); flushes every
/// `flush_every` puts when given.
fn measure(backend: StoreBackend, data: &Data, flush_every: Option<usize>) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = open_store(backend, dir.path(), "bench").expect("open store");
    let start = Instant::now();
    for (n, (k, v)) in data.pairs.iter().enumerate() {
        store.put(k.clone(), v.clone()).expect("put");
        if flush_every.is_some_and(|every| (n + 1) % every == 0) {
            store.flush().expect("flush");
        }
    }
    store.flush().expect("flush");
    let put = start.elapsed();
    let start = Instant::now();
    let mut found = 0usize;
    for &i in &data.read_order {
        found += usize::from(black_box(store.get(&data.pairs[i].0).expect("get")).is_some());
    }
    let get = start.elapsed();
    assert_eq!(found, ENTRIES);
    store.close().expect("close");
    (rate(ENTRIES, put), rate(ENTRIES, get))
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let data = data();
    println!(
        "# {ENTRIES} random {KEY_LEN}-byte keys, {VALUE_LEN}-byte values; puts include the final flush"
    );
    for backend in StoreBackend::ALL {
        let (base_put, _) = baseline(&data);
        let (put, get) = measure(backend, &data, None);
        println!(
            "backend={backend} put_ops_per_sec={put:.0} get_ops_per_sec={get:.0} \
             baseline_put_ops_per_sec={base_put:.0} ratio={:.3}",
            put / base_put
        );
    }
    let (base_put, base_get) = baseline(&data);
    println!("# baseline get_ops_per_sec={base_get:.0} (last run; put {base_put:.0})");
    for backend in [StoreBackend::Sled, StoreBackend::Redb] {
        let every = 1_000;
        let (put, get) = measure(backend, &data, Some(every));
        println!(
            "variant=flush_every_{every}_puts backend={backend} put_ops_per_sec={put:.0} \
             get_ops_per_sec={get:.0} ratio={:.3}",
            put / base_put
        );
    }
}
