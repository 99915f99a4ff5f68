//! Many partitions in one data dir: `topics create` and a reopen with `topics list` for
//! 1,000 and 10,000 partitions, with the process's resident memory, next to a baseline
//! measured in the same run: making, listing and fsyncing the same number of plain dirs on
//! the same disk (what any layout with a dir per partition pays). Run with
//! `cargo bench -p examples --bench partitions`.
//!
//! One record goes to every partition after the create, so that the reopen finds a segment
//! file in each (a partition with no record has none), and the list runs on a broker opened
//! read-only, as `streams topics list` opens it.

use std::path::Path;
use std::time::{Duration, Instant};

use broker_embedded::{Broker, BrokerConfig, NewRecord, NewTopic, ProducerFields};
use bytes::Bytes;

/// Resident memory of this process in MiB (Linux `/proc/self/status`).
fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The file system floor: `n` dirs made and the parent fsynced, then listed.
fn baseline(dir: &Path, n: u32) -> anyhow::Result<(Duration, Duration)> {
    let start = Instant::now();
    for p in 0..n {
        std::fs::create_dir(dir.join(format!("plain-{p}")))?;
    }
    std::fs::File::open(dir)?.sync_all()?;
    let made = start.elapsed();
    let start = Instant::now();
    let mut count = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            count += std::fs::read_dir(entry.path())?.count() + 1;
        }
    }
    let listed = start.elapsed();
    assert!(count >= n as usize);
    Ok((made, listed))
}

async fn run(n: u32) -> anyhow::Result<()> {
    let base = tempfile::tempdir()?;
    let (base_made, base_listed) = baseline(base.path(), n)?;
    drop(base);

    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("data");
    let rss_before = rss_mib();
    let broker = Broker::open(&dir, BrokerConfig::default()).await?;
    let start = Instant::now();
    broker.create_topic(NewTopic::new("many", n)).await?;
    let created = start.elapsed();
    let record = NewRecord {
        timestamp: 1_700_000_000_000,
        key: None,
        value: Some(Bytes::from_static(b"x")),
        headers: Vec::new(),
    };
    let start = Instant::now();
    for p in 0..n {
        broker
            .append(
                "many",
                p,
                std::slice::from_ref(&record),
                ProducerFields::NONE,
            )
            .await?;
    }
    broker.flush().await?;
    let filled = start.elapsed();
    broker.close().await?;
    drop(broker);

    let start = Instant::now();
    let config = BrokerConfig {
        read_only: true,
        ..BrokerConfig::default()
    };
    let broker = Broker::open(&dir, config).await?;
    let topics = broker.list_topics().await?;
    let description = broker.describe_topic("many").await?;
    broker.close().await?;
    let listed = start.elapsed();
    let rss_open = rss_mib();
    drop(broker);
    assert_eq!(topics, vec!["many".to_owned()]);
    assert_eq!(description.partitions.len(), n as usize);
    assert!(description.partitions.iter().all(|p| p.log_end_offset == 1));

    println!(
        "{n:>6} partitions: create {:>8.1} ms (baseline mkdir+fsync {:>7.1} ms, ratio {:>5.1}), \
         one record each {:>8.1} ms, reopen+list+describe {:>8.1} ms (baseline list {:>6.1} ms, \
         ratio {:>5.1}), resident memory {:>6.1} MiB (before {:>5.1} MiB)",
        ms(created),
        ms(base_made),
        ratio(created, base_made),
        ms(filled),
        ms(listed),
        ms(base_listed),
        ratio(listed, base_listed),
        rss_open,
        rss_before,
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64().max(1e-9)
}

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    for n in [1_000, 10_000] {
        runtime.block_on(run(n))?;
    }
    Ok(())
}
