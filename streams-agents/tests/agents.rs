//! Agents over the embedded broker: order per partition, tables with
//! defaults, restore after a restart, errors, partitioning, the commands.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker_embedded::{
    AutoOffsetReset, Broker, BrokerConfig, Consumer, ConsumerConfig, IsolationLevel,
};
use futures::StreamExt;
use streams_agents::{AgentError, App, RunningApp, Table};
use streams_core::{ProcessingGuarantee, Serdes, StreamsConfig};

type Shared<T> = Arc<Mutex<T>>;

fn config(app: &str, state: &std::path::Path) -> StreamsConfig {
    StreamsConfig::new(app)
        .with_state_dir(state)
        .with_commit_interval_ms(50)
}

/// Waits (up to a minute) until `done` holds.
async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn table_map(running: &RunningApp, table: &Table<String, i64>) -> BTreeMap<String, i64> {
    running
        .table_entries(table)
        .map(|entries| entries.into_iter().collect())
        .unwrap_or_default()
}

/// Every committed record of `topic` (all partitions, each in offset
/// order) as a string key and an i64 count.
async fn read_counts(broker: &Broker, topic: &str) -> Vec<(String, i64)> {
    let mut consumer = Consumer::new(
        broker,
        ConsumerConfig {
            auto_offset_reset: AutoOffsetReset::Earliest,
            isolation_level: IsolationLevel::ReadCommitted,
            enable_auto_commit: false,
            ..ConsumerConfig::default()
        },
    );
    consumer.assign_topic(topic).await.unwrap();
    let mut out = Vec::new();
    loop {
        let records = consumer
            .poll_up_to(100_000, Duration::from_millis(50))
            .await
            .unwrap();
        if records.is_empty() {
            return out;
        }
        for r in records {
            let key = String::from_utf8(r.key.unwrap().to_vec()).unwrap();
            let value = i64::from_be_bytes(r.value.unwrap()[..8].try_into().unwrap());
            out.push((key, value));
        }
    }
}

/// A word count app: lines in `lines`, counts in table `counts` and on
/// topic `counts-out`.
fn word_count(app: &mut App) -> Table<String, i64> {
    let lines = app
        .topic::<String, String>("lines", Serdes::string(), Serdes::string())
        .unwrap();
    let out = app
        .topic::<String, i64>("counts-out", Serdes::string(), Serdes::i64())
        .unwrap();
    let words = app
        .topic::<String, String>("words", Serdes::string(), Serdes::string())
        .unwrap();
    let counts = app.table::<String, i64>("counts").unwrap().default(|| 0);
    let for_split = words.clone();
    app.agent("split", &lines, move |lines| {
        let words = for_split.clone();
        async move {
            let mut values = Box::pin(lines.values());
            while let Some(line) = values.next().await {
                for word in line?.split_whitespace() {
                    words.send(word.to_owned(), word.to_owned()).await?;
                }
            }
            Ok(())
        }
    })
    .unwrap();
    let table = counts.clone();
    app.agent("count", &words, move |mut words| {
        let (counts, out) = (table.clone(), out.clone());
        async move {
            while let Some(event) = words.next().await {
                let Some(word) = event?.key else { continue };
                let n = counts.update(&word, |n| n + 1).await?;
                out.send(word, n).await?;
            }
            Ok(())
        }
    })
    .unwrap();
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn word_count_counts_in_a_table_and_continues_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default())
        .await
        .unwrap();
    let state = dir.path().join("state");
    let lines = ["the cat", "the dog and the cat", "a bird"];
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();

    let mut app = App::new(config("wc", &state))
        .with_broker(broker.clone())
        .with_topic_partitions(3);
    let counts = word_count(&mut app);
    let running = app.start().await.unwrap();
    let topic = App::new(config("probe", &state))
        .topic::<String, String>("lines", Serdes::string(), Serdes::string())
        .unwrap();
    for line in lines {
        running
            .send(&topic, None, Some(&line.to_owned()))
            .await
            .unwrap();
        for w in line.split_whitespace() {
            *expected.entry(w.to_owned()).or_default() += 1;
        }
    }
    wait_for("the first counts", || {
        table_map(&running, &counts) == expected
    })
    .await;
    running.stop().await.unwrap();

    // A second instance over the same broker and state dir: the table is
    // restored and the counts go on from where they were.
    let mut app = App::new(config("wc", &state))
        .with_broker(broker.clone())
        .with_topic_partitions(3)
        .with_concurrency(2);
    let counts = word_count(&mut app);
    let running = app.start().await.unwrap();
    for line in ["the end", "cat"] {
        running
            .send(&topic, None, Some(&line.to_owned()))
            .await
            .unwrap();
        for w in line.split_whitespace() {
            *expected.entry(w.to_owned()).or_default() += 1;
        }
    }
    wait_for("the counts after the restart", || {
        table_map(&running, &counts) == expected
    })
    .await;
    running.stop().await.unwrap();

    // Every count went out once, in order per word: 1, 2, ..., n.
    let mut per_word: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for (word, n) in read_counts(&broker, "counts-out").await {
        per_word.entry(word).or_default().push(n);
    }
    for (word, n) in &expected {
        assert_eq!(per_word[word], (1..=*n).collect::<Vec<_>>(), "{word}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_a_partition_arrive_in_offset_order() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    let mut app = App::new(config("order", dir.path()))
        .with_broker(broker)
        .with_topic_partitions(4);
    let numbers = app
        .topic::<String, i64>("numbers", Serdes::string(), Serdes::i64())
        .unwrap();
    let seen: Shared<Vec<(u32, u64, String, i64)>> = Arc::default();
    let for_agent = seen.clone();
    app.agent("record", &numbers, move |mut events| {
        let seen = for_agent.clone();
        async move {
            while let Some(event) = events.next().await {
                let event = event?;
                // A pause inside the agent: the partition waits for it.
                tokio::time::sleep(Duration::from_micros(50)).await;
                seen.lock().unwrap().push((
                    event.partition,
                    event.offset,
                    event.key.unwrap_or_default(),
                    event.value.unwrap_or_default(),
                ));
            }
            Ok(())
        }
    })
    .unwrap();
    let running = app.start().await.unwrap();
    let keys = ["a", "b", "c", "d", "e", "f", "g", "h"];
    for i in 0..400i64 {
        let key = keys[(i % 8) as usize].to_owned();
        running.send(&numbers, Some(&key), Some(&i)).await.unwrap();
    }
    wait_for("all 400 events", || seen.lock().unwrap().len() == 400).await;
    running.stop().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    let mut per_key: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut last_offset: BTreeMap<u32, u64> = BTreeMap::new();
    for (partition, offset, key, value) in seen {
        if let Some(last) = last_offset.insert(partition, offset) {
            assert!(
                offset > last,
                "partition {partition}: {offset} after {last}"
            );
        }
        per_key.entry(key).or_default().push(value);
    }
    for (k, values) in per_key {
        let mut sorted = values.clone();
        sorted.sort_unstable();
        assert_eq!(values, sorted, "key {k}");
        assert_eq!(values.len(), 50);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_error_stops_the_app_and_names_the_agent() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    let mut app = App::new(config("fails", dir.path())).with_broker(broker);
    let input = app
        .topic::<String, String>("input", Serdes::string(), Serdes::string())
        .unwrap();
    app.agent("picky", &input, |mut events| async move {
        while let Some(event) = events.next().await {
            if event?.value.as_deref() == Some("bad") {
                return Err("a bad value".into());
            }
        }
        Ok(())
    })
    .unwrap();
    let running = app.start().await.unwrap();
    running
        .send(&input, None, Some(&"good".to_owned()))
        .await
        .unwrap();
    running
        .send(&input, None, Some(&"bad".to_owned()))
        .await
        .unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(60), running.wait())
        .await
        .expect("the app stops");
    let Err(AgentError::Stopped(message)) = stopped else {
        panic!("expected the agent's error, got {stopped:?}");
    };
    assert!(
        message.contains("agent 'picky' failed: a bad value"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_key_of_another_partition_says_to_group_by_first() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    let mut app = App::new(config("copart", dir.path()))
        .with_broker(broker)
        .with_topic_partitions(8);
    let rides = app
        .topic::<String, String>("rides", Serdes::string(), Serdes::string())
        .unwrap();
    let per_vendor = app
        .table::<String, i64>("per_vendor")
        .unwrap()
        .default(|| 0);
    app.agent("count", &rides, move |mut rides| {
        let per_vendor = per_vendor.clone();
        async move {
            while let Some(ride) = rides.next().await {
                // The vendor is in the value, not the key: wrong partition.
                if let Some(vendor) = ride?.value {
                    per_vendor.update(&vendor, |n| n + 1).await?;
                }
            }
            Ok(())
        }
    })
    .unwrap();
    let running = app.start().await.unwrap();
    for i in 0..50 {
        running
            .send(
                &rides,
                Some(&format!("ride-{i}")),
                Some(&format!("vendor-{i}")),
            )
            .await
            .unwrap();
    }
    let stopped = tokio::time::timeout(Duration::from_secs(60), running.wait())
        .await
        .expect("the app stops");
    let Err(AgentError::Stopped(message)) = stopped else {
        panic!("expected the partitioning error, got {stopped:?}");
    };
    assert!(message.contains("table 'per_vendor'"), "{message}");
    assert!(message.contains("group_by the stream"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_commits_table_and_outputs_together() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default())
        .await
        .unwrap();
    let mut app = App::new(
        config("wc-eos", &dir.path().join("state"))
            .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2),
    )
    .with_broker(broker.clone())
    .with_topic_partitions(2);
    let counts = word_count(&mut app);
    let running = app.start().await.unwrap();
    let lines = App::new(config("probe2", dir.path()))
        .topic::<String, String>("lines", Serdes::string(), Serdes::string())
        .unwrap();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..200 {
        let line = format!("w{} w{} common", i % 7, i % 3);
        for w in line.split_whitespace() {
            *expected.entry(w.to_owned()).or_default() += 1;
        }
        running.send(&lines, None, Some(&line)).await.unwrap();
    }
    wait_for("the counts", || table_map(&running, &counts) == expected).await;
    running.stop().await.unwrap();
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for (word, n) in read_counts(&broker, "counts-out").await {
        let previous = last.insert(word.clone(), n).unwrap_or(0);
        assert_eq!(n, previous + 1, "{word}");
    }
    assert_eq!(last, expected);
}

#[tokio::test]
async fn the_commands_list_agents_and_tables_and_check_what_they_send() {
    let dir = tempfile::tempdir().unwrap();
    let make = || {
        let mut app = App::new(config("cli", dir.path()));
        word_count(&mut app);
        app
    };
    let app = make();
    assert_eq!(
        app.agents(),
        [
            ("split".to_owned(), "lines".to_owned(), String::new()),
            ("count".to_owned(), "words".to_owned(), String::new()),
        ]
    );
    assert_eq!(app.tables()[0].0, "counts");
    assert_eq!(app.tables()[0].1, "cli-counts-changelog");
    assert_eq!(app.tables()[0].2, "String -> i64");
    let usage = make()
        .run_command(["myapp", "send", "nowhere", "x"])
        .await
        .unwrap_err();
    assert!(usage.to_string().contains("no topic 'nowhere'"), "{usage}");
    let usage = make()
        .run_command(["myapp", "frobnicate"])
        .await
        .unwrap_err();
    assert!(matches!(usage, AgentError::Usage(_)), "{usage}");
    make()
        .run_command(["myapp", "send", "lines", "hello world"])
        .await
        .unwrap();
    let broker = Broker::open(dir.path().join("cli-broker"), BrokerConfig::default())
        .await
        .unwrap();
    let mut sent = 0;
    for p in 0..broker.partition_count("lines").await.unwrap() {
        sent += broker.offsets("lines", p).await.unwrap().1;
    }
    assert_eq!(sent, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_by_repartitions_so_that_the_table_sees_the_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    let mut app = App::new(config("taxi", dir.path()))
        .with_broker(broker.clone())
        .with_topic_partitions(4);
    let rides = app
        .topic::<String, String>("rides", Serdes::string(), Serdes::string())
        .unwrap();
    let per_vendor = app
        .table::<String, i64>("vendor_rides")
        .unwrap()
        .default(|| 0);
    let table = per_vendor.clone();
    app.agent("process", &rides, move |rides| {
        let per_vendor = table.clone();
        async move {
            let mut rides =
                rides.group_by(|ride| ride.value.clone().unwrap_or_default(), "by-vendor");
            while let Some(ride) = rides.next().await {
                let ride = ride?;
                let vendor = ride.key.expect("group_by sets the key");
                assert_eq!(ride.value.as_ref(), Some(&vendor));
                per_vendor.update(&vendor, |n| n + 1).await?;
            }
            Ok(())
        }
    })
    .unwrap();
    let running = app.start().await.unwrap();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for i in 0..300 {
        let vendor = format!("vendor-{}", i % 7);
        *expected.entry(vendor.clone()).or_default() += 1;
        running
            .send(&rides, Some(&format!("ride-{i}")), Some(&vendor))
            .await
            .unwrap();
    }
    wait_for("the counts per vendor", || {
        table_map(&running, &per_vendor) == expected
    })
    .await;
    assert_eq!(running.state(), streams_core::AppState::Running);
    running.stop().await.unwrap();
    assert_eq!(
        broker
            .partition_count("taxi-by-vendor-repartition")
            .await
            .unwrap(),
        4
    );
}

/// An app whose agent takes batches of `max` or what came `within`, and
/// records each batch's values.
fn batching_app(
    dir: &std::path::Path,
    broker: &Broker,
    max: usize,
    within: Duration,
    batches: Shared<Vec<Vec<i64>>>,
) -> (App, streams_agents::Topic<String, i64>) {
    let mut app = App::new(config("batches", dir))
        .with_broker(broker.clone())
        .with_topic_partitions(1);
    let numbers = app
        .topic::<String, i64>("numbers", Serdes::string(), Serdes::i64())
        .unwrap();
    app.agent("batch", &numbers, move |events| {
        let batches = batches.clone();
        async move {
            let mut batched = events.take(max, within);
            while let Some(batch) = batched.next().await {
                let values = batch?.into_iter().filter_map(|e| e.value).collect();
                batches.lock().unwrap().push(values);
            }
            Ok(())
        }
    })
    .unwrap();
    (app, numbers)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_makes_batches_by_size_and_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    let batches: Shared<Vec<Vec<i64>>> = Arc::default();
    let (app, numbers) = batching_app(
        dir.path(),
        &broker,
        4,
        Duration::from_millis(300),
        batches.clone(),
    );
    let running = app.start().await.unwrap();
    for i in 0..10i64 {
        running.send(&numbers, None, Some(&i)).await.unwrap();
    }
    wait_for("ten events in batches", || {
        batches.lock().unwrap().iter().map(Vec::len).sum::<usize>() == 10
    })
    .await;
    // Two full batches; the last two came out when `within` had passed.
    let got = batches.lock().unwrap().clone();
    let all: Vec<i64> = got.concat();
    assert_eq!(all, (0..10).collect::<Vec<_>>());
    assert!(got.iter().all(|b| b.len() <= 4), "{got:?}");
    assert_eq!(got.last().map(Vec::len), Some(2), "{got:?}");
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_not_yet_processed_is_not_committed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    let batches: Shared<Vec<Vec<i64>>> = Arc::default();
    // A batch that never fills and whose time never comes.
    let (app, numbers) = batching_app(
        dir.path(),
        &broker,
        100,
        Duration::from_secs(3600),
        batches.clone(),
    );
    let running = app.start().await.unwrap();
    for i in 0..5i64 {
        running.send(&numbers, None, Some(&i)).await.unwrap();
    }
    // Let the task read and commit what it would.
    let group_committed = || async {
        broker
            .describe_group("batches")
            .await
            .ok()
            .and_then(|g| g.partitions.into_iter().find_map(|p| p.committed_offset))
    };
    // The task reads the events and commits: no further than the batch's
    // first event, which it holds.
    let deadline = Instant::now() + Duration::from_secs(60);
    while group_committed().await.is_none() {
        assert!(Instant::now() < deadline, "no commit came");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.stop().await.unwrap();
    assert!(batches.lock().unwrap().is_empty());
    assert_eq!(group_committed().await, Some(0));

    // The next run reads the five events again and batches them.
    let again: Shared<Vec<Vec<i64>>> = Arc::default();
    let (app, _) = batching_app(
        dir.path(),
        &broker,
        5,
        Duration::from_millis(100),
        again.clone(),
    );
    let running = app.start().await.unwrap();
    wait_for("the five events again", || {
        again.lock().unwrap().concat() == vec![0, 1, 2, 3, 4]
    })
    .await;
    running.stop().await.unwrap();
    assert_eq!(group_committed().await, Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_sends_on_schedule_and_its_error_stops_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    let mut app = App::new(config("ticks", dir.path()))
        .with_broker(broker.clone())
        .with_topic_partitions(1);
    let ticks = app
        .topic::<String, i64>("ticks", Serdes::string(), Serdes::i64())
        .unwrap();
    let counts = app
        .table::<String, i64>("tick_counts")
        .unwrap()
        .default(|| 0);
    let table = counts.clone();
    app.agent("count_ticks", &ticks, move |mut ticks| {
        let counts = table.clone();
        async move {
            while let Some(tick) = ticks.next().await {
                if let Some(key) = tick?.key {
                    counts.update(&key, |n| n + 1).await?;
                }
            }
            Ok(())
        }
    })
    .unwrap();
    let sent = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let for_timer = (ticks.clone(), sent.clone());
    app.timer("tick", Duration::from_millis(30), move || {
        let (ticks, sent) = for_timer.clone();
        async move {
            let n = sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            if n > 5 {
                return Err(format!("tick {n} is one too many").into());
            }
            ticks.send("tick".to_owned(), n).await?;
            Ok(())
        }
    })
    .unwrap();
    assert!(matches!(
        app.crontab("bad", "every hour", || async { Ok(()) }),
        Err(AgentError::Usage(_))
    ));
    app.crontab("hourly", "0 * * * *", || async { Ok(()) })
        .unwrap();
    let running = app.start().await.unwrap();
    let stopped = tokio::time::timeout(Duration::from_secs(60), running.wait())
        .await
        .expect("the app stops");
    let Err(AgentError::Stopped(message)) = stopped else {
        panic!("expected the timer's error, got {stopped:?}");
    };
    assert!(
        message.contains("'tick' failed: tick 6 is one too many"),
        "{message}"
    );
    wait_for("the five ticks counted", || {
        table_map(&running, &counts).get("tick") == Some(&5)
    })
    .await;
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_move_with_their_partitions_between_two_instances() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    let instance = |name: &str| {
        let mut app = App::new(
            config("moving", &dir.path().join(name))
                .with_processing_guarantee(ProcessingGuarantee::ExactlyOnceV2),
        )
        .with_broker(broker.clone())
        .with_topic_partitions(4);
        let counts = word_count(&mut app);
        (app, counts)
    };
    let lines = App::new(config("loader", dir.path()))
        .topic::<String, String>("lines", Serdes::string(), Serdes::string())
        .unwrap();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    let send_lines = |range: std::ops::Range<usize>, expected: &mut BTreeMap<String, i64>| {
        let mut batch = Vec::new();
        for i in range {
            let line = format!("w{} w{} shared", i % 11, i % 5);
            for w in line.split_whitespace() {
                *expected.entry(w.to_owned()).or_default() += 1;
            }
            batch.push(line);
        }
        batch
    };

    let (first, first_counts) = instance("a");
    let first = first.start().await.unwrap();
    for line in send_lines(0..100, &mut expected) {
        first.send(&lines, None, Some(&line)).await.unwrap();
    }
    let so_far = expected.clone();
    wait_for("the first instance's counts", || {
        table_map(&first, &first_counts) == so_far
    })
    .await;

    // A second instance joins: the partitions are shared, then all move to
    // it when the first leaves, each restored from its changelog.
    let (second, second_counts) = instance("b");
    let second = second.start().await.unwrap();
    for line in send_lines(100..200, &mut expected) {
        second.send(&lines, None, Some(&line)).await.unwrap();
    }
    first.stop().await.unwrap();
    for line in send_lines(200..300, &mut expected) {
        second.send(&lines, None, Some(&line)).await.unwrap();
    }
    wait_for("every count on the second instance", || {
        table_map(&second, &second_counts) == expected
    })
    .await;
    second.stop().await.unwrap();
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for (word, n) in read_counts(&broker, "counts-out").await {
        let previous = last.insert(word.clone(), n).unwrap_or(0);
        assert_eq!(n, previous + 1, "{word}: a count lost or repeated");
    }
    assert_eq!(last, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_continues_on_the_events_of_another_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    let mut app = App::new(config("relay", dir.path()))
        .with_broker(broker.clone())
        .with_topic_partitions(3);
    let raw = app
        .topic::<String, i64>("raw", Serdes::string(), Serdes::i64())
        .unwrap();
    let relayed = app
        .topic::<String, i64>("relayed", Serdes::string(), Serdes::i64())
        .unwrap();
    let seen: Shared<Vec<(String, String, i64)>> = Arc::default();
    let for_agent = (seen.clone(), relayed.clone());
    app.agent("relay", &raw, move |events| {
        let (seen, relayed) = for_agent.clone();
        async move {
            let mut events = events.through(&relayed);
            while let Some(event) = events.next().await {
                let event = event?;
                seen.lock().unwrap().push((
                    event.topic.to_string(),
                    event.key.unwrap_or_default(),
                    event.value.unwrap_or_default(),
                ));
            }
            Ok(())
        }
    })
    .unwrap();
    let running = app.start().await.unwrap();
    for i in 0..20i64 {
        running
            .send(&raw, Some(&format!("k{}", i % 4)), Some(&i))
            .await
            .unwrap();
    }
    wait_for("the twenty relayed events", || {
        seen.lock().unwrap().len() == 20
    })
    .await;
    running.stop().await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|(topic, _, _)| topic == "relayed"),
        "{seen:?}"
    );
    let mut values: Vec<i64> = seen.iter().map(|(_, _, v)| *v).collect();
    values.sort_unstable();
    assert_eq!(values, (0..20).collect::<Vec<_>>());
    assert!(seen
        .iter()
        .all(|(_, key, value)| key == &format!("k{}", value % 4)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windowed_tables_count_per_window_of_the_event_time() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    let mut app = App::new(config("windows", dir.path()))
        .with_broker(broker.clone())
        .with_topic_partitions(1);
    let clicks = app
        .topic::<String, String>("clicks", Serdes::string(), Serdes::string())
        .unwrap();
    let hour = Duration::from_secs(3600);
    let tumbling = app
        .table::<String, i64>("per_10s")
        .unwrap()
        .default(|| 0)
        .tumbling(Duration::from_secs(10), hour)
        .unwrap();
    let hopping = app
        .table::<String, i64>("per_10s_every_5s")
        .unwrap()
        .default(|| 0)
        .hopping(Duration::from_secs(10), Duration::from_secs(5), hour)
        .unwrap();
    assert!(app
        .table::<String, i64>("bad")
        .unwrap()
        .tumbling(Duration::from_secs(10), Duration::from_secs(1))
        .is_err());
    let seen: Shared<Vec<(i64, i64, i64, i64)>> = Arc::default();
    let for_agent = (seen.clone(), tumbling.clone(), hopping.clone());
    app.agent("count_clicks", &clicks, move |mut clicks| {
        let (seen, tumbling, hopping) = for_agent.clone();
        async move {
            while let Some(click) = clicks.next().await {
                let click = click?;
                let key = click.key.clone().unwrap_or_default();
                let in_window = tumbling.update(&key, |n| n + 1).await?;
                let ten_seconds_before = tumbling.delta(&key, Duration::from_secs(10)).await?;
                let hop = hopping.update(&key, |n| n + 1).await?;
                assert_eq!(hopping.current(&key).await?, hop);
                seen.lock()
                    .unwrap()
                    .push((click.timestamp, in_window, ten_seconds_before, hop));
            }
            Ok(())
        }
    })
    .unwrap();
    let running = app.start().await.unwrap();
    let producer = broker_embedded::Producer::new(&broker);
    for ts in [1_000i64, 7_000, 12_000, 13_000, 14_000] {
        producer
            .send(
                broker_embedded::ProducerRecord::new("clicks", "x")
                    .key("page")
                    .timestamp(ts),
            )
            .await
            .unwrap();
    }
    wait_for("the five clicks", || seen.lock().unwrap().len() == 5).await;
    running.stop().await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            // [0, 10 s): 1, then 2; 10 s before is before the epoch: 0.
            (1_000, 1, 0, 1),
            (7_000, 2, 0, 1),
            // [10 s, 20 s): 1, 2, 3; 10 s before falls in [0, 10 s): 2.
            // Hopping: the latest window holding the time, [10 s, 20 s).
            (12_000, 1, 2, 1),
            (13_000, 2, 2, 2),
            (14_000, 3, 2, 3),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_table_is_read_whole_by_every_partition_and_written_through_its_topic() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    // Rows written before the app starts are there for the first event.
    broker
        .ensure_topic(broker_embedded::NewTopic::new("global-names-changelog", 2))
        .await
        .unwrap();
    broker_embedded::Producer::new(&broker)
        .send(broker_embedded::ProducerRecord::new("global-names-changelog", "Acme").key("v1"))
        .await
        .unwrap();
    let mut app = App::new(config("global", dir.path()))
        .with_broker(broker.clone())
        .with_topic_partitions(4);
    let rides = app
        .topic::<String, String>("rides", Serdes::string(), Serdes::string())
        .unwrap();
    let renames = app
        .topic::<String, String>("renames", Serdes::string(), Serdes::string())
        .unwrap();
    let names = app
        .global_table::<String, String>("names")
        .unwrap()
        .default(|| "unknown".to_owned());
    assert_eq!(names.topic().name(), "global-names-changelog");
    let seen: Shared<Vec<(u32, String)>> = Arc::default();
    let for_rides = (seen.clone(), names.clone());
    app.agent("enrich", &rides, move |mut rides| {
        let (seen, names) = for_rides.clone();
        async move {
            while let Some(ride) = rides.next().await {
                let ride = ride?;
                let vendor = ride.value.unwrap_or_default();
                let name = names.value(&vendor).await?;
                seen.lock().unwrap().push((ride.partition, name));
            }
            Ok(())
        }
    })
    .unwrap();
    let for_renames = names.clone();
    app.agent("rename", &renames, move |mut renames| {
        let names = for_renames.clone();
        async move {
            while let Some(rename) = renames.next().await {
                let rename = rename?;
                if let (Some(vendor), Some(name)) = (rename.key, rename.value) {
                    names.insert(vendor, name).await?;
                }
            }
            Ok(())
        }
    })
    .unwrap();
    let running = app.start().await.unwrap();
    for i in 0..8 {
        running
            .send(&rides, Some(&format!("ride-{i}")), Some(&"v1".to_owned()))
            .await
            .unwrap();
    }
    wait_for("eight rides", || seen.lock().unwrap().len() == 8).await;
    {
        let seen = seen.lock().unwrap();
        assert!(seen.iter().all(|(_, name)| name == "Acme"), "{seen:?}");
        let partitions: std::collections::BTreeSet<u32> = seen.iter().map(|(p, _)| *p).collect();
        assert!(
            partitions.len() > 1,
            "rides of one partition only: {seen:?}"
        );
    }
    running
        .send(
            &renames,
            Some(&"v1".to_owned()),
            Some(&"Acme Inc".to_owned()),
        )
        .await
        .unwrap();
    // The write reaches every copy when the global thread reads it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut i = 8;
    while !seen.lock().unwrap().iter().any(|(_, n)| n == "Acme Inc") {
        assert!(Instant::now() < deadline, "the new name never came");
        i += 1;
        running
            .send(&rides, Some(&format!("ride-{i}")), Some(&"v1".to_owned()))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_sends_a_request_and_waits_for_the_agents_answer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::in_memory().await.unwrap();
    let mut app = App::new(config("asks", dir.path()))
        .with_broker(broker.clone())
        .with_topic_partitions(3);
    let numbers = app
        .topic::<String, i64>("numbers", Serdes::string(), Serdes::i64())
        .unwrap();
    let silent = app
        .topic::<String, i64>("silent", Serdes::string(), Serdes::i64())
        .unwrap();
    let double = app
        .agent("double", &numbers, |mut numbers| async move {
            while let Some(n) = numbers.next().await {
                let n = n?;
                let value = n.value.unwrap_or_default();
                n.reply(&(value * 2), &Serdes::i64()).await?;
            }
            Ok(())
        })
        .unwrap();
    let ignore = app
        .agent("ignore", &silent, |mut events| async move {
            while events.next().await.is_some() {}
            Ok(())
        })
        .unwrap();
    let early = double
        .ask(None, 1, &Serdes::i64(), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(matches!(early, AgentError::OutsideAgent { .. }), "{early}");
    let running = app.start().await.unwrap();
    let longs = Serdes::i64();
    let (a, b) = tokio::join!(
        double.ask(Some("a".to_owned()), 21, &longs, Duration::from_secs(60)),
        double.ask(Some("b".to_owned()), 50, &longs, Duration::from_secs(60)),
    );
    assert_eq!((a.unwrap(), b.unwrap()), (42, 100));
    let timed_out = ignore
        .ask(None, 1, &Serdes::i64(), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(
        matches!(timed_out, AgentError::AskTimedOut { .. }),
        "{timed_out}"
    );
    running.stop().await.unwrap();
}

/// The resident memory of this process in KiB (`VmRSS`).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A slow agent over 1,000,000 waiting events (about 120 MiB in the log):
/// the process holds a bounded number of them, not the backlog, however
/// long the agent takes. An agent runs on its stream thread and takes one
/// event at a time, so a slow agent slows that thread's polls; past
/// `buffered.records.per.partition` a task's partitions would be paused
/// besides (`tests/backpressure.rs` shows that rule on its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_agent_back_pressures_the_consumer() {
    const EVENTS: usize = 1_000_000;
    const PARTITIONS: u32 = 2;
    const MAX_BUFFERED: u64 = 500;
    const MAX_POLL: u64 = 200;
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path().join("broker"), BrokerConfig::default())
        .await
        .unwrap();
    let producer = broker_embedded::Producer::new(&broker);
    broker
        .ensure_topic(broker_embedded::NewTopic::new("events", PARTITIONS))
        .await
        .unwrap();
    let value = "x".repeat(100);
    for start in (0..EVENTS).step_by(10_000) {
        let batch = (start..start + 10_000)
            .map(|i| {
                broker_embedded::ProducerRecord::new("events", value.clone().into_bytes())
                    .key(format!("k{i}").into_bytes())
                    .partition(i as u32 % PARTITIONS)
            })
            .collect();
        producer.send_batch(batch).await.unwrap();
    }
    producer.flush(&["events"]).await.unwrap();
    let state_dir = dir.path().join("state");
    let config = StreamsConfig::from_pairs([
        ("application.id", "slow-agent"),
        ("state.dir", &*state_dir.to_string_lossy()),
        ("commit.interval.ms", "50"),
        ("consumer.max.poll.records", &MAX_POLL.to_string()),
        ("buffered.records.per.partition", &MAX_BUFFERED.to_string()),
    ])
    .unwrap();
    let mut app = App::new(config)
        .with_broker(broker.clone())
        .with_topic_partitions(PARTITIONS);
    let events = app
        .topic::<String, String>("events", Serdes::string(), Serdes::string())
        .unwrap();
    let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let for_agent = seen.clone();
    app.agent("slow", &events, move |mut events| {
        let seen = for_agent.clone();
        async move {
            while let Some(event) = events.next().await {
                event?;
                // Slow: a pause every 100 events.
                if seen
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    .is_multiple_of(100)
                {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            Ok(())
        }
    })
    .unwrap();
    let rss_before = rss_kib();
    let running = app.start().await.unwrap();
    let seen_now = || seen.load(std::sync::atomic::Ordering::Relaxed);
    // While the agent works through the first 20,000 events, the tasks
    // never hold more than the bound and one poll, and the process does
    // not take in the backlog.
    let mut most_buffered = 0;
    let mut most_rss = rss_before;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen_now() < 20_000 {
        assert!(
            Instant::now() < deadline,
            "the agent saw only {} events",
            seen_now()
        );
        for thread in running.streams_app().metadata_for_local_threads() {
            for task in thread.tasks {
                for partition in task.partitions {
                    most_buffered = most_buffered.max(partition.buffered_records);
                }
            }
        }
        most_rss = most_rss.max(rss_kib());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.stop().await.unwrap();
    assert!(
        most_buffered <= MAX_BUFFERED + MAX_POLL,
        "a task buffered {most_buffered} events"
    );
    let grown_mib = most_rss.saturating_sub(rss_before) / 1024;
    assert!(
        grown_mib < 40,
        "the process grew by {grown_mib} MiB with {EVENTS} events waiting"
    );
    assert!(
        seen_now() < EVENTS,
        "the agent was not slow enough to test anything"
    );
    broker.close().await.unwrap();
}
