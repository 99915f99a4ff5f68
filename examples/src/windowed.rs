//! Page views counted per user in time windows: the topology of the
//! `pageviews` binary ([`pageviews_topology`]), a deterministic event
//! generator with out-of-order and late events ([`pageview_events`]), and
//! a brute-force model of the final per-minute counts
//! ([`expected_final_counts`]), shared by the binary, its kill test and
//! the `windowed` benchmark.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use broker_embedded::{Broker, Producer, ProducerRecord};
use streams_core::{Serdes, Topology};
use streams_dsl::{
    Consumed, Grouped, LateRecords, Materialized, Named, Produced, StreamsBuilder,
    StrictBufferConfig, Suppressed, TimeWindows,
};

/// The input topic: user → page, timestamped with the view's time.
pub const PAGEVIEWS_TOPIC: &str = "pageviews";
/// Final views per user and minute: `Windowed<user>` → count (`i64`).
pub const PER_MINUTE_TOPIC: &str = "pageviews-per-minute";
/// Views per user in 5-minute windows advancing by 1 minute: the updates
/// (the latest per window at each commit, through the record cache).
pub const PER_FIVE_MINUTES_TOPIC: &str = "pageviews-per-5-minutes";
/// The views dropped as late by the per-minute count.
pub const LATE_TOPIC: &str = "pageviews-late";
/// The store of the per-minute count.
pub const PER_MINUTE_STORE: &str = "pageviews-per-minute";
/// One minute, the tumbling window's size.
pub const MINUTE_MS: i64 = 60_000;
/// The grace period of both windowed counts.
pub const GRACE_MS: i64 = 10_000;
/// The hopping window's size.
pub const FIVE_MINUTES_MS: i64 = 5 * MINUTE_MS;
/// The time of the first generated event, on a minute boundary.
pub const FIRST_EVENT_MS: i64 = 1_700_000_040_000;

/// One page view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageView {
    /// Who viewed.
    pub user: String,
    /// What.
    pub page: String,
    /// When, epoch milliseconds.
    pub timestamp: i64,
}

/// Views per user in 1-minute tumbling windows with 10 s of grace, final
/// results only (`suppress(until_window_closes)`) to
/// [`PER_MINUTE_TOPIC`], late views routed to [`LATE_TOPIC`]; and, if
/// `hopping`, views per user in 5-minute windows advancing by 1 minute to
/// [`PER_FIVE_MINUTES_TOPIC`].
pub fn pageviews_topology(hopping: bool) -> streams_core::Result<Topology> {
    let builder = StreamsBuilder::new();
    let views = builder
        .stream::<String, String>(
            PAGEVIEWS_TOPIC,
            Consumed::with(Serdes::string(), Serdes::string()),
        )
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()));
    let grace = Duration::from_millis(GRACE_MS as u64);
    views
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_millis(MINUTE_MS as u64),
            grace,
        ))
        .with_late_records(LateRecords::to_topic(LATE_TOPIC))
        .count_named(
            Named::as_("count-views-per-minute"),
            Materialized::as_(PER_MINUTE_STORE),
        )
        .suppress(
            Suppressed::until_window_closes(StrictBufferConfig::unbounded())
                .with_name("pageviews-final"),
        )
        .to_stream()
        .to(
            PER_MINUTE_TOPIC,
            Produced::with(
                Serdes::time_windowed(Serdes::string(), MINUTE_MS),
                Serdes::i64(),
            ),
        );
    if hopping {
        views
            .windowed_by(
                TimeWindows::of_size_and_grace(
                    Duration::from_millis(FIVE_MINUTES_MS as u64),
                    grace,
                )
                .advance_by(Duration::from_millis(MINUTE_MS as u64)),
            )
            .count_named(
                Named::as_("count-views-per-5-minutes"),
                Materialized::as_("pageviews-per-5-minutes"),
            )
            .to_stream()
            .to(
                PER_FIVE_MINUTES_TOPIC,
                Produced::with(
                    Serdes::time_windowed(Serdes::string(), FIVE_MINUTES_MS),
                    Serdes::i64(),
                ),
            );
    }
    builder.build()
}

/// A tumbling 1-minute count per key (no grace, updates written to
/// `window-counts`) if `windowed`, else a plain count per key to `counts`:
/// the two sides of the `windowed` benchmark, over [`PAGEVIEWS_TOPIC`].
pub fn count_topology(windowed: bool) -> streams_core::Result<Topology> {
    let builder = StreamsBuilder::new();
    let grouped = builder
        .stream::<String, String>(
            PAGEVIEWS_TOPIC,
            Consumed::with(Serdes::string(), Serdes::string()),
        )
        .group_by_key(Grouped::with(Serdes::string(), Serdes::string()));
    if windowed {
        grouped
            .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_millis(
                MINUTE_MS as u64,
            )))
            .count_named(
                Named::as_("count-per-window"),
                Materialized::as_("window-counts"),
            )
            .to_stream()
            .to(
                "window-counts",
                Produced::with(
                    Serdes::time_windowed(Serdes::string(), MINUTE_MS),
                    Serdes::i64(),
                ),
            );
    } else {
        grouped
            .count_named(Named::as_("count"), Materialized::as_("counts"))
            .to_stream()
            .to("counts", Produced::with(Serdes::string(), Serdes::i64()));
    }
    builder.build()
}

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = seed | 1;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

/// `count` page views of `users` users from [`FIRST_EVENT_MS`], `step_ms`
/// apart, mostly in order: about one in 11 is up to 8 s behind (within
/// grace), one in 37 is 75 s behind (late for its minute), and the last
/// view, of user `flush`, is 10 minutes after the others, so that every
/// other window closes.
pub fn pageview_events(count: usize, users: usize, step_ms: i64, seed: u64) -> Vec<PageView> {
    let mut next = xorshift(seed);
    let mut events = Vec::with_capacity(count + 1);
    let mut now = FIRST_EVENT_MS;
    for i in 0..count {
        now += step_ms;
        let user = format!("user-{}", next() % users.max(1) as u64);
        let page = format!("/page/{}", next() % 20);
        let timestamp = if i % 37 == 36 {
            now - 75_000
        } else if i % 11 == 10 {
            now - (next() % 8_000) as i64
        } else {
            now
        };
        events.push(PageView {
            user,
            page,
            timestamp: timestamp.max(0),
        });
    }
    events.push(PageView {
        user: "flush".to_owned(),
        page: "/".to_owned(),
        timestamp: now + 10 * MINUTE_MS,
    });
    events
}

/// The final per-minute counts that [`pageviews_topology`] emits for
/// `events` read in order from one partition, by (user, window start), and
/// the indexes of the events it drops as late: a brute-force replay of
/// Kafka's rules (stream time is the largest timestamp so far, the current
/// one included; a view is late iff its window's end is at or before stream
/// time minus grace; a window is final once its end plus grace is at or
/// before stream time).
pub fn expected_final_counts(events: &[PageView]) -> (BTreeMap<(String, i64), i64>, Vec<usize>) {
    let mut counts: BTreeMap<(String, i64), i64> = BTreeMap::new();
    let mut late = Vec::new();
    let mut stream_time = i64::MIN;
    for (i, event) in events.iter().enumerate() {
        stream_time = stream_time.max(event.timestamp);
        let start = event.timestamp - event.timestamp.rem_euclid(MINUTE_MS);
        if start + MINUTE_MS <= stream_time - GRACE_MS {
            late.push(i);
            continue;
        }
        *counts.entry((event.user.clone(), start)).or_insert(0) += 1;
    }
    counts.retain(|(_, start), _| start + MINUTE_MS + GRACE_MS <= stream_time);
    (counts, late)
}

/// The record of page view `event` in `topic`: keyed by user, the page as
/// its value, timestamped.
pub fn pageview_record(topic: &str, event: &PageView) -> ProducerRecord {
    ProducerRecord::new(topic, event.page.clone().into_bytes())
        .key(event.user.clone().into_bytes())
        .timestamp(event.timestamp)
}

/// Produces `events` to `topic` ([`pageview_record`]) in batches of 5,000.
///
/// For a topic that starts empty and is loaded once (a benchmark); an input
/// that must survive restarts is loaded with [`crate::load_input`].
pub async fn produce_pageviews(
    broker: &Broker,
    topic: &str,
    events: &[PageView],
) -> anyhow::Result<()> {
    let producer = Producer::new(broker);
    for chunk in events.chunks(5_000) {
        let batch = chunk.iter().map(|e| pageview_record(topic, e)).collect();
        producer
            .send_batch(batch)
            .await
            .with_context(|| format!("cannot produce to {topic}"))?;
    }
    producer
        .flush(&[topic])
        .await
        .with_context(|| format!("cannot flush {topic}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_makes_late_and_final_windows() {
        let events = pageview_events(400, 5, 500, 7);
        let (counts, late) = expected_final_counts(&events);
        assert!(!late.is_empty());
        assert!(late.iter().all(|&i| i % 37 == 36));
        assert!(counts.keys().all(|(user, _)| user != "flush"));
        let accepted: i64 = counts.values().sum();
        // Every view but the late ones and the flush is in a final window.
        assert_eq!(accepted as usize, events.len() - 1 - late.len());
    }
}
