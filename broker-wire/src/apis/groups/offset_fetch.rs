//! OffsetFetch: a group's committed offsets, for the partitions asked or all of them (one
//! group before version 8, a batch of groups from version 8).

use broker_embedded::TopicPartition;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{GroupId, OffsetFetchRequest, OffsetFetchResponse, TopicName};

use super::{broker_error_code, code, str_bytes, text};
use crate::context::Context;

/// One partition's answer: index, committed offset (-1 for none), metadata, error code.
type Fetched = (i32, i64, String, i16);

/// The committed offsets of `group` for `topics` (`None`: every partition with one), by
/// topic in the order asked; or the group's error code.
async fn fetch(
    context: &Context,
    group: &str,
    topics: Option<Vec<(TopicName, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Vec<(TopicName, Vec<Fetched>)>, i16> {
    let broker = &context.broker;
    let failed = |e| broker_error_code("OffsetFetch", group, &e);
    let Some(topics) = topics else {
        let all = broker
            .fetch_offsets(group, None, require_stable)
            .await
            .map_err(failed)?;
        let mut out: Vec<(TopicName, Vec<Fetched>)> = Vec::new();
        for f in all {
            let answer = (
                f.partition.partition as i32,
                f.offset.as_ref().map_or(-1, |o| o.offset as i64),
                f.offset.map(|o| o.metadata).unwrap_or_default(),
                code(f.error),
            );
            match out.last_mut() {
                Some((name, partitions)) if name.0.as_str() == f.partition.topic => {
                    partitions.push(answer)
                }
                _ => out.push((TopicName(str_bytes(f.partition.topic)), vec![answer])),
            }
        }
        return Ok(out);
    };
    let asked: Vec<TopicPartition> = topics
        .iter()
        .flat_map(|(name, indexes)| {
            indexes.iter().filter_map(move |i| {
                u32::try_from(*i)
                    .ok()
                    .map(|p| TopicPartition::new(text(&name.0), p))
            })
        })
        .collect();
    let mut answers = broker
        .fetch_offsets(group, Some(&asked), require_stable)
        .await
        .map_err(failed)?
        .into_iter();
    Ok(topics
        .into_iter()
        .map(|(name, indexes)| {
            let partitions = indexes
                .into_iter()
                .map(
                    |i| match u32::try_from(i).ok().and_then(|_| answers.next()) {
                        Some(f) => (
                            i,
                            f.offset.as_ref().map_or(-1, |o| o.offset as i64),
                            f.offset.map(|o| o.metadata).unwrap_or_default(),
                            code(f.error),
                        ),
                        // A negative partition index has no offset.
                        None => (i, -1, String::new(), 0),
                    },
                )
                .collect();
            (name, partitions)
        })
        .collect())
}

pub(crate) async fn respond(
    context: &Context,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let require_stable = version >= 7 && request.require_stable;
    if version >= 8 {
        let mut groups = Vec::with_capacity(request.groups.len());
        for g in request.groups {
            let topics = g.topics.map(|topics| {
                topics
                    .into_iter()
                    .map(|t| (t.name, t.partition_indexes))
                    .collect()
            });
            groups.push(fetch_group(context, g.group_id, topics, require_stable).await);
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let group = text(&request.group_id.0);
    let topics = request.topics.map(|topics| {
        topics
            .into_iter()
            .map(|t| (t.name, t.partition_indexes))
            .collect::<Vec<_>>()
    });
    let asked = topics.clone();
    match fetch(context, &group, topics, require_stable).await {
        Ok(topics) => OffsetFetchResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(name, partitions)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(name)
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|(i, offset, metadata, error)| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(i)
                                        .with_committed_offset(offset)
                                        .with_committed_leader_epoch(-1)
                                        .with_metadata(Some(str_bytes(metadata)))
                                        .with_error_code(error)
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        // Version 1 has no error for the whole group: every partition carries it.
        Err(error) if version < 2 => OffsetFetchResponse::default().with_topics(
            asked
                .unwrap_or_default()
                .into_iter()
                .map(|(name, indexes)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(name)
                        .with_partitions(
                            indexes
                                .into_iter()
                                .map(|i| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(i)
                                        .with_committed_offset(-1)
                                        .with_metadata(Some(Default::default()))
                                        .with_error_code(error)
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
        Err(error) => OffsetFetchResponse::default().with_error_code(error),
    }
}

/// One group of a batched (version 8 and later) fetch.
async fn fetch_group(
    context: &Context,
    group_id: GroupId,
    topics: Option<Vec<(TopicName, Vec<i32>)>>,
    require_stable: bool,
) -> OffsetFetchResponseGroup {
    let group = text(&group_id.0);
    match fetch(context, &group, topics, require_stable).await {
        Ok(topics) => OffsetFetchResponseGroup::default()
            .with_group_id(group_id)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(name, partitions)| {
                        OffsetFetchResponseTopics::default()
                            .with_name(name)
                            .with_partitions(
                                partitions
                                    .into_iter()
                                    .map(|(i, offset, metadata, error)| {
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(i)
                                            .with_committed_offset(offset)
                                            .with_committed_leader_epoch(-1)
                                            .with_metadata(Some(str_bytes(metadata)))
                                            .with_error_code(error)
                                    })
                                    .collect(),
                            )
                    })
                    .collect(),
            ),
        Err(error) => OffsetFetchResponseGroup::default()
            .with_group_id(group_id)
            .with_error_code(error),
    }
}
