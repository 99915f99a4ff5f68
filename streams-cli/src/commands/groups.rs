//! `streams groups list | describe | reset-offsets | delete`, as with kafka-consumer-groups.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use broker_embedded::{BrokerError, OffsetResetSpec, TopicPartition};
use tracing::info;

use super::{render_table, with_backend, write_out, Align, DirMode, Outcome};
use crate::args::{GroupsCommand, ResetTarget};
use crate::backend::{is_unknown_group, Backend, GroupView, Target};

/// What a cell shows when there is no value (no committed offset, no member).
const NONE: &str = "-";

/// Runs one `groups` command, writing its report to `out`.
pub(crate) async fn run(
    target: &Target,
    command: GroupsCommand,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let mode = match command {
        GroupsCommand::List | GroupsCommand::Describe { .. } => DirMode::ReadOnly,
        _ => DirMode::MustExist,
    };
    let text = with_backend(target, mode, |backend| execute(backend, command)).await?;
    write_out(out, &text)?;
    Ok(Outcome::Done)
}

/// Does the work of one `groups` command and returns what it prints.
async fn execute(backend: Backend, command: GroupsCommand) -> Result<String> {
    match command {
        GroupsCommand::List => {
            let mut text = String::new();
            for group in backend.list_groups().await? {
                text.push_str(&group);
                text.push('\n');
            }
            Ok(text)
        }
        GroupsCommand::Describe { group } => {
            let view = backend.describe_group(&group).await?;
            Ok(render_description(&view))
        }
        GroupsCommand::ResetOffsets(args) => {
            let target = args.target(chrono::Utc::now().timestamp_millis());
            let (group, topic) = (args.group.as_str(), args.topic.as_str());
            let offsets = match (target, &backend) {
                _ if args.dry_run => plan_reset(&backend, group, topic, target).await?,
                // The broker's own reset plans and commits under the group's lock.
                (ResetTarget::Spec(spec), Backend::Dir(broker)) => {
                    broker.reset_offsets(group, topic, spec).await?
                }
                _ => {
                    let offsets = plan_reset(&backend, group, topic, target).await?;
                    backend.commit_offsets(group, &offsets).await?;
                    info!(group, topic, ?target, "offsets reset");
                    offsets
                }
            };
            Ok(render_reset(group, &offsets))
        }
        GroupsCommand::Delete { group } => {
            backend.delete_group(&group).await?;
            Ok(format!("Deleted consumer group {group}.\n"))
        }
    }
}

/// The offsets a reset to `target` sets, computed without writing anything: the target in
/// each partition of `topic`, clamped to `[log start, log end]` (for a [`ResetTarget::Spec`]
/// on a data dir, what [`broker_embedded::Broker::reset_offsets`] would set). Refused, as
/// the reset itself, while the group has members.
async fn plan_reset(
    backend: &Backend,
    group: &str,
    topic: &str,
    target: ResetTarget,
) -> Result<Vec<(TopicPartition, u64)>> {
    let committed: HashMap<u32, u64> = match backend.describe_group(group).await {
        Ok(view) => {
            if !view.members.is_empty() {
                return Err(BrokerError::GroupNotEmpty {
                    group: group.to_owned(),
                    state: view.state.clone(),
                    members: view.members.len(),
                }
                .into());
            }
            view.partitions
                .iter()
                .filter(|p| p.topic == topic)
                .filter_map(|p| p.committed_offset.map(|c| (p.partition, c)))
                .collect()
        }
        // A reset may create the group; before it, it has no committed offsets.
        Err(e) if is_unknown_group(&e) => HashMap::new(),
        Err(e) => return Err(e),
    };
    let partitions = backend.partition_count(topic).await?;
    let mut targets = Vec::with_capacity(partitions as usize);
    for p in 0..partitions {
        let (start, end) = backend.offsets(topic, p).await?;
        let wanted =
            match target {
                ResetTarget::Spec(OffsetResetSpec::ToEarliest) => start,
                ResetTarget::Spec(OffsetResetSpec::ToLatest) => end,
                ResetTarget::Spec(OffsetResetSpec::ToOffset(offset)) => offset,
                ResetTarget::Spec(OffsetResetSpec::ShiftBy(delta)) => {
                    let current = committed.get(&p).copied().ok_or_else(|| {
                        BrokerError::NoCommittedOffset {
                            group: group.to_owned(),
                            topic: topic.to_owned(),
                            partition: p,
                        }
                    })?;
                    let shifted = i128::from(current) + i128::from(delta);
                    u64::try_from(shifted.max(0)).unwrap_or(u64::MAX)
                }
                // Kafka's `offsetsForTimes`; where every record is older, the log end.
                ResetTarget::Timestamp(timestamp) => backend
                    .offset_for_timestamp(topic, p, timestamp)
                    .await?
                    .unwrap_or(end),
            };
        targets.push((TopicPartition::new(topic, p), wanted.clamp(start, end)));
    }
    Ok(targets)
}

fn cell(value: Option<impl ToString>) -> String {
    value.map_or_else(|| NONE.to_owned(), |v| v.to_string())
}

/// A group's state line, then one row per partition (and per member without partitions) with
/// the columns of `kafka-consumer-groups --describe`.
fn render_description(description: &GroupView) -> String {
    let group = &description.group_id;
    let mut text = format!(
        "Group: {group}  State: {}  Members: {}\n",
        description.state,
        description.members.len()
    );
    let mut rows: Vec<Vec<String>> = description
        .partitions
        .iter()
        .map(|p| {
            vec![
                group.clone(),
                p.topic.clone(),
                p.partition.to_string(),
                cell(p.committed_offset),
                cell(p.log_end_offset),
                cell(p.lag),
                cell(p.member_id.as_deref()),
            ]
        })
        .collect();
    for member in &description.members {
        let owns_a_row = description
            .partitions
            .iter()
            .any(|p| p.member_id.as_deref() == Some(member.as_str()));
        if !owns_a_row {
            let mut row = vec![group.clone()];
            row.extend(std::iter::repeat_n(NONE.to_owned(), 5));
            row.push(member.clone());
            rows.push(row);
        }
    }
    text.push_str(&render_table(
        &[
            ("GROUP", Align::Left),
            ("TOPIC", Align::Left),
            ("PARTITION", Align::Right),
            ("CURRENT-OFFSET", Align::Right),
            ("LOG-END-OFFSET", Align::Right),
            ("LAG", Align::Right),
            ("CONSUMER-ID", Align::Left),
        ],
        &rows,
    ));
    text
}

/// The new offset of each partition, as `kafka-consumer-groups --reset-offsets` prints them.
fn render_reset(group: &str, offsets: &[(TopicPartition, u64)]) -> String {
    let rows: Vec<Vec<String>> = offsets
        .iter()
        .map(|(tp, offset)| {
            vec![
                group.to_owned(),
                tp.topic.clone(),
                tp.partition.to_string(),
                offset.to_string(),
            ]
        })
        .collect();
    render_table(
        &[
            ("GROUP", Align::Left),
            ("TOPIC", Align::Left),
            ("PARTITION", Align::Right),
            ("NEW-OFFSET", Align::Right),
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use crate::args::ResetOffsetsArgs;
    use broker_embedded::{
        Broker, Consumer, ConsumerConfig, NewTopic, NoOpConsumerRebalanceListener, Producer,
        ProducerRecord,
    };

    /// A broker with topic `t` of 2 partitions: 5 records in partition 0, 3 in partition 1.
    async fn broker_with_records() -> Broker {
        let broker = Broker::in_memory().await.unwrap();
        broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
        let producer = Producer::new(&broker);
        for (partition, n) in [(0, 5), (1, 3)] {
            for i in 0..n {
                producer
                    .send(ProducerRecord::new("t", format!("v{i}")).partition(partition))
                    .await
                    .unwrap();
            }
        }
        broker
    }

    /// A consumer of group `g` subscribed to `t`, that has joined and read `n` records.
    async fn member(broker: &Broker, n: usize) -> Consumer {
        let config = ConsumerConfig {
            group_id: Some("g".to_owned()),
            enable_auto_commit: false,
            auto_offset_reset: broker_embedded::AutoOffsetReset::Earliest,
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::new(broker, config);
        consumer
            .subscribe(["t"], NoOpConsumerRebalanceListener)
            .await
            .unwrap();
        let mut read = 0;
        for _ in 0..100 {
            if read == n {
                break;
            }
            read += consumer
                .poll_up_to(n - read, Duration::from_millis(100))
                .await
                .unwrap()
                .len();
        }
        assert_eq!(read, n, "records read by the member");
        // A poll that hands out nothing still completes the join.
        consumer.poll_up_to(0, Duration::ZERO).await.unwrap();
        consumer
    }

    fn reset(group: &str, spec: &[&str], dry_run: bool) -> GroupsCommand {
        let mut args = ResetOffsetsArgs {
            group: group.to_owned(),
            topic: "t".to_owned(),
            to_earliest: false,
            to_latest: false,
            to_offset: None,
            shift_by: None,
            to_datetime: None,
            by_duration: None,
            dry_run,
        };
        match spec {
            ["earliest"] => args.to_earliest = true,
            ["latest"] => args.to_latest = true,
            ["offset", n] => args.to_offset = Some(n.parse().unwrap()),
            ["shift", n] => args.shift_by = Some(n.parse().unwrap()),
            ["datetime", ms] => args.to_datetime = Some(ms.parse().unwrap()),
            ["duration", ms] => {
                args.by_duration = Some(Duration::from_millis(ms.parse().unwrap()));
            }
            _ => panic!("bad spec {spec:?}"),
        }
        GroupsCommand::ResetOffsets(args)
    }

    async fn run_ok(broker: &Broker, command: GroupsCommand) -> String {
        match execute(Backend::Dir(broker.clone()), command).await {
            Ok(text) => text,
            Err(e) => panic!("{e:#}"),
        }
    }

    async fn run_err(broker: &Broker, command: GroupsCommand) -> String {
        match execute(Backend::Dir(broker.clone()), command).await {
            Ok(text) => panic!("succeeded: {text}"),
            Err(e) => format!("{e:#}"),
        }
    }

    fn cells(text: &str) -> Vec<Vec<String>> {
        text.lines()
            .map(|l| l.split_whitespace().map(str::to_owned).collect())
            .collect()
    }

    #[tokio::test]
    async fn an_active_member_shows_in_describe_and_blocks_reset_and_delete() {
        let broker = broker_with_records().await;
        let mut consumer = member(&broker, 8).await;
        consumer.commit_sync(None).await.unwrap();
        let member_id = consumer.group_metadata().unwrap().member_id;
        assert!(!member_id.is_empty());

        let text = run_ok(&broker, GroupsCommand::Describe { group: "g".into() }).await;
        assert_eq!(
            cells(&text),
            [
                vec!["Group:", "g", "State:", "Stable", "Members:", "1"],
                vec![
                    "GROUP",
                    "TOPIC",
                    "PARTITION",
                    "CURRENT-OFFSET",
                    "LOG-END-OFFSET",
                    "LAG",
                    "CONSUMER-ID"
                ],
                vec!["g", "t", "0", "5", "5", "0", &member_id],
                vec!["g", "t", "1", "3", "3", "0", &member_id],
            ],
            "{text}"
        );

        let refused = "group g has 1 active member(s) (state Stable); offsets can only be \
                       changed while the group is inactive: stop its consumers first";
        for dry_run in [false, true] {
            for spec in [
                &["earliest"][..],
                &["latest"],
                &["offset", "1"],
                &["shift", "-1"],
                &["datetime", "0"],
                &["duration", "3600000"],
            ] {
                assert_eq!(
                    run_err(&broker, reset("g", spec, dry_run)).await,
                    refused,
                    "{spec:?} dry run {dry_run}"
                );
            }
        }
        assert_eq!(
            run_err(&broker, GroupsCommand::Delete { group: "g".into() }).await,
            refused
        );

        consumer.close().await.unwrap();
        let text = run_ok(&broker, reset("g", &["earliest"], false)).await;
        assert_eq!(
            cells(&text)[1..],
            [vec!["g", "t", "0", "0"], vec!["g", "t", "1", "0"]],
            "{text}"
        );
        let text = run_ok(&broker, GroupsCommand::Describe { group: "g".into() }).await;
        assert!(
            text.starts_with("Group: g  State: Empty  Members: 0\n"),
            "{text}"
        );
        assert_eq!(
            cells(&text)[2],
            ["g", "t", "0", "0", "5", "5", "-"],
            "{text}"
        );
        broker.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_member_without_partitions_gets_a_row() {
        let broker = broker_with_records().await;
        let config = ConsumerConfig {
            group_id: Some("h".to_owned()),
            enable_auto_commit: false,
            ..ConsumerConfig::default()
        };
        let mut consumer = Consumer::new(&broker, config);
        consumer
            .subscribe(["not-yet"], NoOpConsumerRebalanceListener)
            .await
            .unwrap();
        consumer.poll_up_to(1, Duration::ZERO).await.unwrap();
        let member_id = consumer.group_metadata().unwrap().member_id;
        let text = run_ok(&broker, GroupsCommand::Describe { group: "h".into() }).await;
        assert_eq!(
            cells(&text)[2],
            ["h", "-", "-", "-", "-", "-", member_id.as_str()],
            "{text}"
        );
        consumer.close().await.unwrap();
        broker.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_dry_run_prints_what_the_reset_sets_and_changes_nothing() {
        let broker = broker_with_records().await;
        let consumer = {
            let mut c = member(&broker, 8).await;
            // Committed: 3 of partition 0, 2 of partition 1.
            let offsets = [
                (TopicPartition::new("t", 0), 3),
                (TopicPartition::new("t", 1), 2),
            ]
            .into_iter()
            .map(|(tp, o)| (tp, broker_embedded::OffsetAndMetadata::new(o)))
            .collect();
            c.commit_sync(Some(offsets)).await.unwrap();
            c
        };
        consumer.close().await.unwrap();
        let describe = || GroupsCommand::Describe { group: "g".into() };
        let before = run_ok(&broker, describe()).await;

        for (spec, want) in [
            (&["earliest"][..], [0, 0]),
            (&["latest"], [5, 3]),
            (&["offset", "4"], [4, 3]),
            (&["offset", "100"], [5, 3]),
            (&["shift", "1"], [4, 3]),
            (&["shift", "-2"], [1, 0]),
            (&["shift", "-100"], [0, 0]),
        ] {
            let planned = run_ok(&broker, reset("g", spec, true)).await;
            assert_eq!(
                cells(&planned)[1..],
                [
                    vec!["g".to_owned(), "t".into(), "0".into(), want[0].to_string()],
                    vec!["g".to_owned(), "t".into(), "1".into(), want[1].to_string()],
                ],
                "{spec:?}: {planned}"
            );
            assert_eq!(run_ok(&broker, describe()).await, before, "{spec:?}");
        }
        // The dry run agrees with the reset itself.
        let planned = run_ok(&broker, reset("g", &["shift", "-2"], true)).await;
        let done = run_ok(&broker, reset("g", &["shift", "-2"], false)).await;
        assert_eq!(planned, done);
        assert_ne!(run_ok(&broker, describe()).await, before);

        // A group that does not exist yet has nothing to shift from, but can be set.
        assert_eq!(
            run_err(&broker, reset("new", &["shift", "1"], true)).await,
            "group new has no committed offset for t-0 to shift from"
        );
        let planned = run_ok(&broker, reset("new", &["offset", "2"], true)).await;
        assert_eq!(
            run_err(
                &broker,
                GroupsCommand::Describe {
                    group: "new".into()
                }
            )
            .await,
            "consumer group new does not exist"
        );
        assert_eq!(
            planned,
            run_ok(&broker, reset("new", &["offset", "2"], false)).await
        );
        broker.close().await.unwrap();
    }

    #[tokio::test]
    async fn a_reset_to_a_time_takes_the_first_record_at_or_after_it() {
        let broker = Broker::in_memory().await.unwrap();
        broker.create_topic(NewTopic::new("t", 2)).await.unwrap();
        let producer = Producer::new(&broker);
        // Partition 0 at times 100, 200, 300, 400; partition 1 at 150, 250 and (out of
        // order, as CreateTime allows) 120.
        for (partition, times) in [(0, &[100, 200, 300, 400][..]), (1, &[150, 250, 120])] {
            for &ts in times {
                producer
                    .send(
                        ProducerRecord::new("t", "v")
                            .partition(partition)
                            .timestamp(ts),
                    )
                    .await
                    .unwrap();
            }
        }
        let describe = || GroupsCommand::Describe { group: "g".into() };
        for (time, want) in [
            ("0", [0, 0]),
            ("100", [0, 0]),
            ("101", [1, 0]),
            ("200", [1, 1]),
            ("251", [2, 3]),
            ("400", [3, 3]),
            ("401", [4, 3]),
            ("-5", [0, 0]),
        ] {
            let planned = run_ok(&broker, reset("g", &["datetime", time], true)).await;
            let done = run_ok(&broker, reset("g", &["datetime", time], false)).await;
            assert_eq!(planned, done, "at {time}");
            assert_eq!(
                cells(&done)[1..],
                [
                    vec!["g".to_owned(), "t".into(), "0".into(), want[0].to_string()],
                    vec!["g".to_owned(), "t".into(), "1".into(), want[1].to_string()],
                ],
                "at {time}: {done}"
            );
            let text = run_ok(&broker, describe()).await;
            let committed: Vec<String> = cells(&text)[2..].iter().map(|r| r[3].clone()).collect();
            assert_eq!(
                committed,
                [want[0].to_string(), want[1].to_string()],
                "at {time}: {text}"
            );
        }
        // Records of a moment ago are younger than a day ago and older than the time of the
        // reset, which PT0S resets to.
        let a_moment_ago = chrono::Utc::now().timestamp_millis() - 1;
        for p in 0..2 {
            producer
                .send(
                    ProducerRecord::new("t", "recent")
                        .partition(p)
                        .timestamp(a_moment_ago),
                )
                .await
                .unwrap();
        }
        let text = run_ok(&broker, reset("g", &["duration", "86400000"], false)).await;
        assert_eq!(cells(&text)[1][3], "4", "{text}");
        assert_eq!(cells(&text)[2][3], "3", "{text}");
        let text = run_ok(&broker, reset("g", &["duration", "0"], false)).await;
        assert_eq!(cells(&text)[1][3], "5", "{text}");
        assert_eq!(cells(&text)[2][3], "4", "{text}");
        broker.close().await.unwrap();
    }

    #[test]
    fn describe_renders_dashes_for_missing_values() {
        use broker_embedded::{GroupDescription, GroupPartitionDescription, GroupState};
        let description = GroupDescription {
            group_id: "g".into(),
            state: GroupState::Empty,
            generation: 3,
            strategy: None,
            protocol_type: String::new(),
            protocol: None,
            leader: None,
            members: Vec::new(),
            partitions: vec![
                GroupPartitionDescription {
                    topic: "orders".into(),
                    partition: 0,
                    committed_offset: Some(7),
                    metadata: Some(String::new()),
                    log_end_offset: Some(1200),
                    lag: Some(1193),
                    member_id: None,
                },
                GroupPartitionDescription {
                    topic: "gone".into(),
                    partition: 12,
                    committed_offset: Some(4),
                    metadata: Some(String::new()),
                    log_end_offset: None,
                    lag: None,
                    member_id: None,
                },
            ],
        };
        assert_eq!(
            render_description(&crate::backend::dir::group_view(description)),
            "Group: g  State: Empty  Members: 0\n\
             GROUP  TOPIC   PARTITION  CURRENT-OFFSET  LOG-END-OFFSET   LAG  CONSUMER-ID\n\
             g      orders          0               7            1200  1193  -\n\
             g      gone           12               4               -     -  -\n"
        );
    }
}
