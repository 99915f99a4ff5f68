//! Consumer groups across the broker, the coordinator and the consumer: partition assignment
//! with `range` and `cooperative-sticky`, takeover of a member that stops polling, clean
//! leaves, no loss across rebalances with commits after processing, fencing of stale
//! generations, committed offsets across a broker reopen, and the admin calls (describe with
//! lag, reset-offsets, delete).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker_embedded::{
    AssignmentStrategy, AutoOffsetReset, Broker, BrokerConfig, BrokerError, Consumer,
    ConsumerConfig, ConsumerRebalanceListener, GroupState, NewTopic, NoOpConsumerRebalanceListener,
    OffsetAndMetadata, OffsetResetSpec, Producer, ProducerRecord, RebalanceContext, TopicPartition,
};

/// Short liveness settings so that takeovers happen within a second.
const SESSION_TIMEOUT_MS: u64 = 1_000;
const HEARTBEAT_INTERVAL_MS: u64 = 100;
/// The bound on every wait for a condition.
const WAIT: Duration = Duration::from_secs(20);

fn group_config(group: &str, strategy: AssignmentStrategy) -> ConsumerConfig {
    ConsumerConfig {
        group_id: Some(group.to_owned()),
        auto_offset_reset: AutoOffsetReset::Earliest,
        session_timeout_ms: SESSION_TIMEOUT_MS,
        heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
        partition_assignment_strategy: strategy,
        enable_auto_commit: false,
        ..ConsumerConfig::default()
    }
}

/// Waits until `cond` holds, checking every 10 ms, for at most `limit`.
async fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// Who owns which partition according to the rebalance callbacks, and every time a
/// partition was handed to a member while another live member still held it.
#[derive(Debug, Default)]
struct Ownership {
    owner: HashMap<TopicPartition, usize>,
    /// Members that stopped polling: the group takes their partitions without telling them
    /// (they learn it, as lost partitions, when they poll again).
    silent: HashSet<usize>,
    violations: Vec<String>,
    revoked: usize,
    lost: usize,
}

#[derive(Debug)]
struct TrackingListener {
    member: usize,
    ownership: Arc<Mutex<Ownership>>,
}

impl ConsumerRebalanceListener for TrackingListener {
    fn on_partitions_revoked(
        &mut self,
        partitions: &[TopicPartition],
        _: &mut RebalanceContext<'_>,
    ) {
        let mut o = self.ownership.lock().unwrap();
        o.revoked += partitions.len();
        for tp in partitions {
            if o.owner.get(tp) == Some(&self.member) {
                o.owner.remove(tp);
            }
        }
    }

    fn on_partitions_assigned(
        &mut self,
        partitions: &[TopicPartition],
        _: &mut RebalanceContext<'_>,
    ) {
        let mut o = self.ownership.lock().unwrap();
        for tp in partitions {
            if let Some(other) = o.owner.insert(tp.clone(), self.member) {
                if other != self.member && !o.silent.contains(&other) {
                    let msg = format!(
                        "{tp} assigned to {} while {other} still held it",
                        self.member
                    );
                    o.violations.push(msg);
                }
            }
        }
    }

    fn on_partitions_lost(&mut self, partitions: &[TopicPartition], _: &mut RebalanceContext<'_>) {
        let mut o = self.ownership.lock().unwrap();
        o.lost += partitions.len();
        for tp in partitions {
            if o.owner.get(tp) == Some(&self.member) {
                o.owner.remove(tp);
            }
        }
    }
}

/// What the polling members report.
#[derive(Debug, Default)]
struct Shared {
    /// Each member's assignment after its last poll.
    assignments: Mutex<BTreeMap<usize, Vec<TopicPartition>>>,
    /// Each member's id.
    member_ids: Mutex<BTreeMap<usize, String>>,
    /// Values processed, with repeats.
    processed: Mutex<Vec<u64>>,
    /// Records processed by each member.
    per_member: Mutex<BTreeMap<usize, usize>>,
    errors: Mutex<Vec<String>>,
    ownership: Arc<Mutex<Ownership>>,
}

impl Shared {
    fn assignment(&self, member: usize) -> Vec<TopicPartition> {
        self.assignments
            .lock()
            .unwrap()
            .get(&member)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether `members` together hold exactly `partitions` partitions, each once, with at
    /// least `min` and at most `max` each.
    fn covers(&self, members: &[usize], partitions: usize, min: usize, max: usize) -> bool {
        let a = self.assignments.lock().unwrap();
        let mut all = HashSet::new();
        let mut total = 0;
        for m in members {
            let Some(list) = a.get(m) else { return false };
            if list.len() < min || list.len() > max {
                return false;
            }
            total += list.len();
            all.extend(list.iter().cloned());
        }
        total == partitions && all.len() == partitions
    }
}

/// A consumer polling on its own task until told to stop, then handed back alive (so it
/// neither leaves nor commits: it simply stops polling).
struct Member {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Consumer>,
}

impl Member {
    async fn stop_polling(self) -> Consumer {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap()
    }
}

fn spawn_member(
    broker: &Broker,
    config: ConsumerConfig,
    topics: &[&str],
    index: usize,
    shared: Arc<Shared>,
    commit_after_processing: bool,
) -> Member {
    let stop = Arc::new(AtomicBool::new(false));
    let mut consumer = Consumer::new(broker, config);
    let topics: Vec<String> = topics.iter().map(|t| t.to_string()).collect();
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        let listener = TrackingListener {
            member: index,
            ownership: shared.ownership.clone(),
        };
        consumer.subscribe(topics, listener).await.unwrap();
        while !flag.load(Ordering::SeqCst) {
            let records = match consumer.poll(Duration::from_millis(50)).await {
                Ok(r) => r,
                Err(e) => {
                    shared
                        .errors
                        .lock()
                        .unwrap()
                        .push(format!("member {index}: poll: {e}"));
                    continue;
                }
            };
            // Process, then commit: at-least-once.
            let values: Vec<u64> = records
                .iter()
                .filter_map(|r| std::str::from_utf8(r.value.as_deref()?).ok()?.parse().ok())
                .collect();
            *shared.per_member.lock().unwrap().entry(index).or_default() += values.len();
            shared.processed.lock().unwrap().extend(values);
            if commit_after_processing && !records.is_empty() {
                if let Err(e) = consumer.commit_sync(None).await {
                    shared
                        .errors
                        .lock()
                        .unwrap()
                        .push(format!("member {index}: commit: {e}"));
                }
            }
            shared
                .assignments
                .lock()
                .unwrap()
                .insert(index, consumer.assignment());
            if let Some(meta) = consumer.group_metadata() {
                shared
                    .member_ids
                    .lock()
                    .unwrap()
                    .insert(index, meta.member_id);
            }
        }
        consumer
    });
    Member { stop, task }
}

async fn produce(broker: &Broker, topic: &str, partitions: u32, range: std::ops::Range<u64>) {
    let producer = Producer::new(broker);
    let records: Vec<ProducerRecord> = range
        .map(|i| {
            ProducerRecord::new(topic, i.to_string()).partition((i % partitions as u64) as u32)
        })
        .collect();
    producer.send_batch(records).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_split_six_partitions_and_take_over_a_silent_one() {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("events", 6))
        .await
        .unwrap();
    let shared = Arc::new(Shared::default());
    let config = group_config("takeover", AssignmentStrategy::Range);
    let members: Vec<Member> = (0..3)
        .map(|i| {
            spawn_member(
                &broker,
                config.clone(),
                &["events"],
                i,
                shared.clone(),
                true,
            )
        })
        .collect();
    assert!(
        wait_until(WAIT, || shared.covers(&[0, 1, 2], 6, 2, 2)).await,
        "three members did not settle on two partitions each: {:?}",
        shared.assignments.lock().unwrap()
    );
    let description = broker.describe_group("takeover").await.unwrap();
    assert_eq!(description.state, GroupState::Stable);
    assert_eq!(description.members.len(), 3);
    assert_eq!(description.strategy, Some(AssignmentStrategy::Range));

    // Member 0 stops polling without closing: no leave, no commit.
    let mut members = members.into_iter();
    let silent = members.next().unwrap().stop_polling().await;
    shared.ownership.lock().unwrap().silent.insert(0);
    let stopped = Instant::now();
    let silent_partitions = shared.assignment(0);
    assert!(
        wait_until(WAIT, || shared.covers(&[1, 2], 6, 3, 3)).await,
        "the silent member's partitions were not taken over: {:?}",
        shared.assignments.lock().unwrap()
    );
    let took = stopped.elapsed();
    // Nothing moves right away: the silent member did not leave, its session had to expire
    // (the bound leaves room for a slow scheduler between its last heartbeat and `stopped`).
    assert!(
        took >= Duration::from_millis(SESSION_TIMEOUT_MS / 2),
        "taken over after {took:?}, well before the session timeout"
    );
    for tp in &silent_partitions {
        assert!(shared.assignment(1).contains(tp) || shared.assignment(2).contains(tp));
    }
    let description = broker.describe_group("takeover").await.unwrap();
    assert_eq!(description.members.len(), 2);
    assert_eq!(description.state, GroupState::Stable);
    let violations = shared.ownership.lock().unwrap().violations.clone();
    assert!(violations.is_empty(), "{violations:?}");
    assert!(
        shared.errors.lock().unwrap().is_empty(),
        "{:?}",
        shared.errors.lock().unwrap()
    );
    for m in members {
        m.stop_polling().await.close().await.unwrap();
    }
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_record_is_lost_when_a_member_stops_mid_stream() {
    const N: u64 = 3_000;
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("stream", 6))
        .await
        .unwrap();
    let shared = Arc::new(Shared::default());
    // A longer session than the other tests': on a loaded machine a live
    // member that misses heartbeats for a second is expelled, and its
    // partitions move while it still believes it holds them (a zombie, as
    // in Kafka), which the ownership check below would count against the
    // protocol. Member 0's silence still ends its membership.
    let config = ConsumerConfig {
        session_timeout_ms: 3 * SESSION_TIMEOUT_MS,
        ..group_config("no-loss", AssignmentStrategy::Range)
    };
    let mut members: Vec<Option<Member>> = (0..3)
        .map(|i| {
            Some(spawn_member(
                &broker,
                config.clone(),
                &["stream"],
                i,
                shared.clone(),
                true,
            ))
        })
        .collect();
    assert!(wait_until(WAIT, || shared.covers(&[0, 1, 2], 6, 2, 2)).await);

    // Produce in steps while the members consume; member 0 goes silent part-way.
    let mut silent = None;
    for step in 0..30u64 {
        produce(&broker, "stream", 6, step * 100..(step + 1) * 100).await;
        if step == 10 {
            assert!(
                wait_until(WAIT, || shared
                    .per_member
                    .lock()
                    .unwrap()
                    .get(&0)
                    .copied()
                    .unwrap_or(0)
                    > 0)
                .await,
                "member 0 processed nothing"
            );
            if let Some(m) = members[0].take() {
                silent = Some(m.stop_polling().await);
                shared.ownership.lock().unwrap().silent.insert(0);
            }
        }
        // Pace production so that it runs through the silence and the rebalance.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = wait_until(Duration::from_secs(30), || {
        let seen: HashSet<u64> = shared.processed.lock().unwrap().iter().copied().collect();
        seen.len() as u64 == N
    })
    .await;
    let processed = shared.processed.lock().unwrap().clone();
    let seen: HashSet<u64> = processed.iter().copied().collect();
    let missing: Vec<u64> = (0..N).filter(|v| !seen.contains(v)).take(20).collect();
    assert!(all, "records lost across the rebalance, e.g. {missing:?}");
    let violations = shared.ownership.lock().unwrap().violations.clone();
    assert!(violations.is_empty(), "{violations:?}");
    assert!(seen.iter().all(|v| *v < N));
    // Duplicates are allowed (uncommitted ranges are read again); losses are not.
    eprintln!("{} duplicates", processed.len() - seen.len());
    // Every partition ends with its whole log committed.
    let start = Instant::now();
    loop {
        let d = broker.describe_group("no-loss").await.unwrap();
        if d.partitions.len() == 6 && d.partitions.iter().all(|p| p.lag == Some(0)) {
            break;
        }
        assert!(start.elapsed() < WAIT, "lag did not drop to zero: {d:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for m in members.into_iter().flatten() {
        m.stop_polling().await.close().await.unwrap();
    }
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_leave_rebalances_without_waiting_for_the_session_timeout() {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("leave", 4))
        .await
        .unwrap();
    let shared = Arc::new(Shared::default());
    let config = ConsumerConfig {
        session_timeout_ms: 60_000,
        ..group_config("leave", AssignmentStrategy::Range)
    };
    let a = spawn_member(
        &broker,
        config.clone(),
        &["leave"],
        0,
        shared.clone(),
        false,
    );
    let b = spawn_member(
        &broker,
        config.clone(),
        &["leave"],
        1,
        shared.clone(),
        false,
    );
    assert!(wait_until(WAIT, || shared.covers(&[0, 1], 4, 2, 2)).await);
    let left = Instant::now();
    a.stop_polling().await.close().await.unwrap();
    assert!(wait_until(WAIT, || shared.covers(&[1], 4, 4, 4)).await);
    assert!(left.elapsed() < Duration::from_secs(10));

    // Dropping a consumer leaves too.
    let c = spawn_member(&broker, config, &["leave"], 2, shared.clone(), false);
    assert!(wait_until(WAIT, || shared.covers(&[1, 2], 4, 2, 2)).await);
    drop(c.stop_polling().await);
    assert!(wait_until(WAIT, || shared.covers(&[1], 4, 4, 4)).await);
    b.stop_polling().await.close().await.unwrap();
    let d = broker.describe_group("leave").await;
    // No commits and no members: the group is gone.
    assert!(
        matches!(d, Err(BrokerError::GroupIdNotFound { .. })),
        "{d:?}"
    );
}

/// A listener that counts lost partitions.
#[derive(Debug, Clone, Default)]
struct LostCounter(Arc<AtomicUsize>);

impl ConsumerRebalanceListener for LostCounter {
    fn on_partitions_revoked(&mut self, _: &[TopicPartition], _: &mut RebalanceContext<'_>) {}
    fn on_partitions_assigned(&mut self, _: &[TopicPartition], _: &mut RebalanceContext<'_>) {}
    fn on_partitions_lost(
        &mut self,
        partitions: &[TopicPartition],
        ctx: &mut RebalanceContext<'_>,
    ) {
        // Commits are refused once the partitions are lost.
        assert!(matches!(
            ctx.commit_sync(None),
            Err(BrokerError::CommitFailed { .. })
        ));
        self.0.fetch_add(partitions.len(), Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_generation_cannot_commit_and_rejoins_on_its_next_poll() {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("fenced", 2))
        .await
        .unwrap();
    produce(&broker, "fenced", 2, 0..10).await;
    let config = group_config("fenced", AssignmentStrategy::Range);
    let lost = LostCounter::default();
    let mut zombie = Consumer::new(&broker, config.clone());
    zombie.subscribe(["fenced"], lost.clone()).await.unwrap();
    let mut got = 0;
    let start = Instant::now();
    while got < 10 && start.elapsed() < WAIT {
        got += zombie.poll(Duration::from_millis(50)).await.unwrap().len();
    }
    assert_eq!(got, 10);
    assert_eq!(zombie.assignment().len(), 2);
    let stale = zombie.group_metadata().unwrap();

    // Another member arrives while the zombie is silent; the zombie's session expires and the
    // newcomer gets everything.
    let shared = Arc::new(Shared::default());
    let other = spawn_member(&broker, config, &["fenced"], 1, shared.clone(), false);
    assert!(
        wait_until(WAIT, || shared.covers(&[1], 2, 2, 2)).await,
        "the silent member's partitions were not taken over"
    );
    let err = zombie.commit_sync(None).await.unwrap_err();
    match &err {
        BrokerError::CommitFailed {
            group, generation, ..
        } => {
            assert_eq!(group, "fenced");
            assert_eq!(*generation, stale.generation_id);
        }
        other => panic!("expected CommitFailed, got {other}"),
    }
    assert!(!err.is_fatal());

    // Its next polls notice, report the partitions lost, and rejoin as a new member.
    let start = Instant::now();
    while start.elapsed() < WAIT {
        zombie.poll(Duration::from_millis(50)).await.unwrap();
        if zombie.assignment().len() == 1 && shared.assignment(1).len() == 1 {
            break;
        }
    }
    assert_eq!(lost.0.load(Ordering::SeqCst), 2);
    assert_eq!(zombie.assignment().len(), 1);
    let rejoined = zombie.group_metadata().unwrap();
    assert_ne!(rejoined.member_id, stale.member_id);
    assert!(rejoined.generation_id > stale.generation_id);
    zombie.close().await.unwrap();
    other.stop_polling().await.close().await.unwrap();
}

#[tokio::test]
async fn committed_offsets_survive_a_broker_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let tp0 = TopicPartition::new("durable", 0);
    {
        let broker = Broker::open(dir.path(), BrokerConfig::default())
            .await
            .unwrap();
        broker
            .create_topic(NewTopic::new("durable", 3))
            .await
            .unwrap();
        produce(&broker, "durable", 3, 0..30).await;
        let mut consumer =
            Consumer::new(&broker, group_config("reopen", AssignmentStrategy::Range));
        consumer
            .subscribe(["durable"], NoOpConsumerRebalanceListener)
            .await
            .unwrap();
        let mut got = 0;
        let start = Instant::now();
        while got < 30 && start.elapsed() < WAIT {
            got += consumer
                .poll(Duration::from_millis(50))
                .await
                .unwrap()
                .len();
        }
        assert_eq!(got, 30);
        consumer.commit_sync(None).await.unwrap();
        // An explicit commit with metadata, behind the position of partition 0.
        consumer
            .commit_sync(Some(HashMap::from([(
                tp0.clone(),
                OffsetAndMetadata::with_metadata(7, "checkpoint-7"),
            )])))
            .await
            .unwrap();
        let committed = consumer
            .committed(std::slice::from_ref(&tp0))
            .await
            .unwrap();
        assert_eq!(committed[&tp0].offset, 7);
        consumer.close().await.unwrap();
        broker.close().await.unwrap();
    }
    let broker = Broker::open(dir.path(), BrokerConfig::default())
        .await
        .unwrap();
    assert_eq!(
        broker.list_topics().await.unwrap(),
        vec!["durable".to_owned()]
    );
    let description = broker.describe_group("reopen").await.unwrap();
    assert_eq!(description.state, GroupState::Empty);
    let committed: BTreeMap<u32, (Option<u64>, Option<String>)> = description
        .partitions
        .iter()
        .map(|p| (p.partition, (p.committed_offset, p.metadata.clone())))
        .collect();
    assert_eq!(committed[&0], (Some(7), Some("checkpoint-7".to_owned())));
    assert_eq!(committed[&1], (Some(10), Some(String::new())));
    assert_eq!(committed[&2], (Some(10), Some(String::new())));

    // A new member of the group starts at the committed offsets, not at auto.offset.reset.
    produce(&broker, "durable", 3, 30..33).await;
    let mut consumer = Consumer::new(&broker, group_config("reopen", AssignmentStrategy::Range));
    consumer
        .subscribe(["durable"], NoOpConsumerRebalanceListener)
        .await
        .unwrap();
    let mut values = BTreeSet::new();
    let start = Instant::now();
    while values.len() < 6 && start.elapsed() < WAIT {
        for r in consumer.poll(Duration::from_millis(50)).await.unwrap() {
            values.insert((r.partition, r.offset));
        }
    }
    let expected: BTreeSet<(u32, u64)> = [(0, 7), (0, 8), (0, 9), (0, 10), (1, 10), (2, 10)].into();
    assert_eq!(values, expected);
    consumer.close().await.unwrap();
    broker.close().await.unwrap();
}

#[tokio::test]
async fn describe_group_reports_lag_as_log_end_minus_committed() {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("lagging", 2))
        .await
        .unwrap();
    let producer = Producer::new(&broker);
    let mut records = Vec::new();
    for i in 0..10 {
        records.push(ProducerRecord::new("lagging", format!("a{i}")).partition(0));
    }
    for i in 0..4 {
        records.push(ProducerRecord::new("lagging", format!("b{i}")).partition(1));
    }
    producer.send_batch(records).await.unwrap();

    let mut consumer = Consumer::new(&broker, group_config("lag", AssignmentStrategy::Range));
    consumer
        .subscribe(["lagging"], NoOpConsumerRebalanceListener)
        .await
        .unwrap();
    let start = Instant::now();
    while consumer.assignment().len() < 2 && start.elapsed() < WAIT {
        consumer
            .poll_up_to(0, Duration::from_millis(10))
            .await
            .unwrap();
    }
    let tp = |p| TopicPartition::new("lagging", p);
    consumer
        .commit_sync(Some(HashMap::from([
            (tp(0), OffsetAndMetadata::new(7)),
            (tp(1), OffsetAndMetadata::new(1)),
        ])))
        .await
        .unwrap();
    let member = consumer.group_metadata().unwrap().member_id;

    let d = broker.describe_group("lag").await.unwrap();
    assert_eq!(d.state, GroupState::Stable);
    assert_eq!(d.members.len(), 1);
    assert_eq!(d.members[0].member_id, member);
    assert_eq!(d.members[0].assignment, vec![tp(0), tp(1)]);
    assert_eq!(d.partitions.len(), 2);
    for p in &d.partitions {
        let (_, end) = broker.offsets("lagging", p.partition).await.unwrap();
        assert_eq!(p.log_end_offset, Some(end));
        assert_eq!(p.lag, Some(end - p.committed_offset.unwrap()));
        assert_eq!(p.member_id.as_deref(), Some(member.as_str()));
    }
    assert_eq!(d.partitions[0].lag, Some(3));
    assert_eq!(d.partitions[1].lag, Some(3));
    let listed = broker.list_groups().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].group_id, "lag");
    assert_eq!(listed[0].members, 1);
    consumer.close().await.unwrap();
}

#[tokio::test]
async fn reset_offsets_is_refused_with_members_and_works_without() {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("resets", 2))
        .await
        .unwrap();
    produce(&broker, "resets", 2, 0..20).await;
    let mut consumer = Consumer::new(&broker, group_config("resets", AssignmentStrategy::Range));
    consumer
        .subscribe(["resets"], NoOpConsumerRebalanceListener)
        .await
        .unwrap();
    let mut got = 0;
    let start = Instant::now();
    while got < 20 && start.elapsed() < WAIT {
        got += consumer
            .poll(Duration::from_millis(50))
            .await
            .unwrap()
            .len();
    }
    consumer.commit_sync(None).await.unwrap();

    let err = broker
        .reset_offsets("resets", "resets", OffsetResetSpec::ToEarliest)
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::GroupNotEmpty { members: 1, .. }),
        "{err}"
    );
    let err = broker.delete_group("resets").await.unwrap_err();
    assert!(matches!(err, BrokerError::GroupNotEmpty { .. }), "{err}");
    consumer.close().await.unwrap();

    let committed = |d: &broker_embedded::GroupDescription| -> Vec<Option<u64>> {
        d.partitions.iter().map(|p| p.committed_offset).collect()
    };
    let reset = broker
        .reset_offsets("resets", "resets", OffsetResetSpec::ToEarliest)
        .await
        .unwrap();
    assert_eq!(
        reset.iter().map(|(_, o)| *o).collect::<Vec<_>>(),
        vec![0, 0]
    );
    let d = broker.describe_group("resets").await.unwrap();
    assert_eq!(d.state, GroupState::Empty);
    assert_eq!(committed(&d), vec![Some(0), Some(0)]);
    assert!(d.partitions.iter().all(|p| p.lag == Some(10)));

    broker
        .reset_offsets("resets", "resets", OffsetResetSpec::ToOffset(4))
        .await
        .unwrap();
    broker
        .reset_offsets("resets", "resets", OffsetResetSpec::ShiftBy(3))
        .await
        .unwrap();
    assert_eq!(
        committed(&broker.describe_group("resets").await.unwrap()),
        vec![Some(7), Some(7)]
    );
    broker
        .reset_offsets("resets", "resets", OffsetResetSpec::ShiftBy(-100))
        .await
        .unwrap();
    assert_eq!(
        committed(&broker.describe_group("resets").await.unwrap()),
        vec![Some(0), Some(0)]
    );
    broker
        .reset_offsets("resets", "resets", OffsetResetSpec::ToOffset(1_000))
        .await
        .unwrap();
    assert_eq!(
        committed(&broker.describe_group("resets").await.unwrap()),
        vec![Some(10), Some(10)]
    );
    broker
        .reset_offsets("resets", "resets", OffsetResetSpec::ToOffset(5))
        .await
        .unwrap();

    // The next member of the group starts at the reset offsets.
    let mut consumer = Consumer::new(&broker, group_config("resets", AssignmentStrategy::Range));
    consumer
        .subscribe(["resets"], NoOpConsumerRebalanceListener)
        .await
        .unwrap();
    let mut first = BTreeMap::new();
    let start = Instant::now();
    while first.len() < 2 && start.elapsed() < WAIT {
        for r in consumer.poll(Duration::from_millis(50)).await.unwrap() {
            first.entry(r.partition).or_insert(r.offset);
        }
    }
    assert_eq!(first, BTreeMap::from([(0, 5), (1, 5)]));
    consumer.close().await.unwrap();

    // A relative reset of a group without offsets is an error; a delete forgets the group.
    let err = broker
        .reset_offsets("fresh", "resets", OffsetResetSpec::ShiftBy(1))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::NoCommittedOffset { .. }),
        "{err}"
    );
    broker.delete_group("resets").await.unwrap();
    assert!(matches!(
        broker.describe_group("resets").await,
        Err(BrokerError::GroupIdNotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_moves_the_fewest_partitions_when_a_member_joins() {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("sticky", 6))
        .await
        .unwrap();
    let shared = Arc::new(Shared::default());
    let config = group_config("sticky", AssignmentStrategy::CooperativeSticky);
    let mut members: Vec<Member> = (0..3)
        .map(|i| {
            spawn_member(
                &broker,
                config.clone(),
                &["sticky"],
                i,
                shared.clone(),
                false,
            )
        })
        .collect();
    assert!(wait_until(WAIT, || shared.covers(&[0, 1, 2], 6, 2, 2)).await);
    let before: HashMap<TopicPartition, usize> = {
        let a = shared.assignments.lock().unwrap();
        a.iter()
            .flat_map(|(m, list)| list.iter().map(move |tp| (tp.clone(), *m)))
            .collect()
    };
    let revoked_before = shared.ownership.lock().unwrap().revoked;

    members.push(spawn_member(
        &broker,
        config,
        &["sticky"],
        3,
        shared.clone(),
        false,
    ));
    // 6 partitions over 4 members: two keep 2, two hold 1.
    assert!(
        wait_until(WAIT, || shared.covers(&[0, 1, 2, 3], 6, 1, 2)).await,
        "{:?}",
        shared.assignments.lock().unwrap()
    );
    let after: HashMap<TopicPartition, usize> = {
        let a = shared.assignments.lock().unwrap();
        a.iter()
            .flat_map(|(m, list)| list.iter().map(move |tp| (tp.clone(), *m)))
            .collect()
    };
    let moved = before
        .iter()
        .filter(|(tp, m)| after.get(*tp) != Some(*m))
        .count();
    // The minimum for a balanced assignment: one partition goes to the new member.
    assert_eq!(moved, 1, "before {before:?}, after {after:?}");
    let (violations, revoked) = {
        let o = shared.ownership.lock().unwrap();
        (o.violations.clone(), o.revoked)
    };
    assert!(violations.is_empty(), "{violations:?}");
    // Cooperative: only the moving partition was revoked, nobody gave up everything.
    assert_eq!(revoked - revoked_before, 1);
    let d = broker.describe_group("sticky").await.unwrap();
    assert_eq!(d.strategy, Some(AssignmentStrategy::CooperativeSticky));
    assert_eq!(d.members.len(), 4);
    for m in members {
        m.stop_polling().await.close().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_assignment_matches_kafkas_range_assignor() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("t0", 3)).await.unwrap();
    broker.create_topic(NewTopic::new("t1", 3)).await.unwrap();
    let shared = Arc::new(Shared::default());
    let config = group_config("range", AssignmentStrategy::Range);
    let members: Vec<Member> = (0..2)
        .map(|i| {
            spawn_member(
                &broker,
                config.clone(),
                &["t0", "t1"],
                i,
                shared.clone(),
                false,
            )
        })
        .collect();
    assert!(wait_until(WAIT, || shared.covers(&[0, 1], 6, 2, 4)).await);
    let ids = shared.member_ids.lock().unwrap().clone();
    // Kafka's RangeAssignor sorts members by id: the first gets the first two partitions of
    // each topic, the second the last one.
    let (first, second) = if ids[&0] < ids[&1] { (0, 1) } else { (1, 0) };
    let tp = TopicPartition::new;
    assert_eq!(
        shared.assignment(first),
        vec![tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
    );
    assert_eq!(shared.assignment(second), vec![tp("t0", 2), tp("t1", 2)]);
    for m in members {
        m.stop_polling().await.close().await.unwrap();
    }
}

#[tokio::test]
async fn auto_commit_commits_positions_during_poll_and_on_close() {
    let broker = Broker::in_memory().await.unwrap();
    broker.create_topic(NewTopic::new("auto", 1)).await.unwrap();
    produce(&broker, "auto", 1, 0..5).await;
    let tp = TopicPartition::new("auto", 0);
    let config = ConsumerConfig {
        enable_auto_commit: true,
        auto_commit_interval_ms: 50,
        ..group_config("auto", AssignmentStrategy::Range)
    };
    let mut consumer = Consumer::new(&broker, config.clone());
    consumer
        .subscribe(["auto"], NoOpConsumerRebalanceListener)
        .await
        .unwrap();
    let mut got = 0;
    let start = Instant::now();
    while got < 5 && start.elapsed() < WAIT {
        got += consumer
            .poll(Duration::from_millis(20))
            .await
            .unwrap()
            .len();
    }
    assert_eq!(got, 5);
    // Later polls commit the position of the records returned before.
    let start = Instant::now();
    loop {
        consumer.poll(Duration::from_millis(20)).await.unwrap();
        let committed = consumer.committed(std::slice::from_ref(&tp)).await.unwrap();
        if committed.get(&tp).map(|c| c.offset) == Some(5) {
            break;
        }
        assert!(
            start.elapsed() < WAIT,
            "auto-commit never committed offset 5"
        );
    }
    produce(&broker, "auto", 1, 5..8).await;
    let mut got = 0;
    let start = Instant::now();
    while got < 3 && start.elapsed() < WAIT {
        got += consumer
            .poll(Duration::from_millis(20))
            .await
            .unwrap()
            .len();
    }
    consumer.close().await.unwrap();
    let d = broker.describe_group("auto").await.unwrap();
    assert_eq!(d.partitions[0].committed_offset, Some(8));
    assert_eq!(d.partitions[0].lag, Some(0));
}

#[tokio::test]
async fn group_misuse_is_a_typed_error() {
    let broker = Broker::in_memory().await.unwrap();
    broker
        .create_topic(NewTopic::new("misuse", 1))
        .await
        .unwrap();
    // No group.id.
    let mut c = Consumer::new(&broker, ConsumerConfig::default());
    let err = c
        .subscribe(["misuse"], NoOpConsumerRebalanceListener)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("group.id"), "{err}");
    // assign and subscribe exclude each other.
    let mut c = Consumer::new(&broker, group_config("misuse", AssignmentStrategy::Range));
    c.assign_topic("misuse").await.unwrap();
    let err = c
        .subscribe(["misuse"], NoOpConsumerRebalanceListener)
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::IllegalState { .. }), "{err}");
    c.unsubscribe().await.unwrap();
    c.subscribe(["misuse"], NoOpConsumerRebalanceListener)
        .await
        .unwrap();
    assert!(matches!(
        c.assign(vec![TopicPartition::new("misuse", 0)]).await,
        Err(BrokerError::IllegalState { .. })
    ));
    c.poll(Duration::from_millis(10)).await.unwrap();
    // Members of one group must agree on the strategy.
    let mut other = Consumer::new(
        &broker,
        group_config("misuse", AssignmentStrategy::CooperativeSticky),
    );
    other
        .subscribe(["misuse"], NoOpConsumerRebalanceListener)
        .await
        .unwrap();
    let err = other.poll(Duration::from_millis(10)).await.unwrap_err();
    assert!(
        matches!(err, BrokerError::InconsistentGroupProtocol { .. }),
        "{err}"
    );
    // Metadata longer than offset.metadata.max.bytes.
    let err = c
        .commit_sync(Some(HashMap::from([(
            TopicPartition::new("misuse", 0),
            OffsetAndMetadata::with_metadata(0, "x".repeat(5000)),
        )])))
        .await
        .unwrap_err();
    assert!(
        matches!(err, BrokerError::OffsetMetadataTooLarge { .. }),
        "{err}"
    );
    // A heartbeat interval that is not below the session timeout.
    let mut bad = Consumer::new(
        &broker,
        ConsumerConfig {
            heartbeat_interval_ms: SESSION_TIMEOUT_MS,
            ..group_config("misuse-2", AssignmentStrategy::Range)
        },
    );
    let err = bad
        .subscribe(["misuse"], NoOpConsumerRebalanceListener)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("heartbeat.interval.ms"), "{err}");
    c.close().await.unwrap();
}
