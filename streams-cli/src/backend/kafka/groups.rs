//! Consumer groups on a cluster: listed and described with librdkafka's group list (Kafka's
//! ListGroups and DescribeGroups), their committed offsets read and written by a client in
//! the group (OffsetFetch, OffsetCommit), deleted with the admin client (DeleteGroups).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, Context as _, Result};
use broker_embedded::{BrokerError, GroupPartitionDescription, TopicPartition};
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use super::assignment::assigned_partitions;
use super::{
    code_text, offset_from, partition_from, partition_list, Cluster, INTERNAL_TOPICS,
    REQUEST_TIMEOUT,
};
use crate::backend::GroupView;

/// A group's members: each member id with the partitions assigned to it.
type Members = Vec<(String, Vec<(String, i32)>)>;

/// Group states that mean the group does not exist (Kafka answers `Dead` for an unknown
/// group before DescribeGroups v6).
const GONE_STATES: [&str; 2] = ["Dead", ""];

impl Cluster {
    /// The consumer group ids, sorted.
    pub(crate) fn list_groups(&self) -> Result<Vec<String>> {
        let list = self
            .client
            .fetch_group_list(None, REQUEST_TIMEOUT)
            .with_context(|| format!("listing the consumer groups of {}", self.servers))?;
        let ids: BTreeSet<String> = list
            .groups()
            .iter()
            .filter(|g| !GONE_STATES.contains(&g.state()))
            .map(|g| g.name().to_owned())
            .collect();
        Ok(ids.into_iter().collect())
    }

    /// A group's state, members (with the partitions the consumer protocol assigned them),
    /// committed offsets, log end offsets and lag. The committed offsets are looked up for
    /// every partition of every topic the cluster has, so that offsets of a deleted topic do
    /// not show (a data dir shows them, with `-` as their log end offset).
    pub(crate) fn describe_group(&self, group: &str) -> Result<GroupView> {
        let (state, members) = self.group_members(group)?;
        let committed = self.committed_offsets(group)?;
        let mut partitions: BTreeMap<(String, u32), GroupPartitionDescription> = BTreeMap::new();
        for ((topic, partition), offset) in committed {
            partitions.insert(
                (topic.clone(), partition),
                GroupPartitionDescription {
                    topic,
                    partition,
                    committed_offset: Some(offset),
                    metadata: None,
                    log_end_offset: None,
                    lag: None,
                    member_id: None,
                },
            );
        }
        for (member_id, assigned) in &members {
            for (topic, partition) in assigned {
                let Ok(partition) = partition_from(*partition) else {
                    continue;
                };
                partitions
                    .entry((topic.clone(), partition))
                    .or_insert_with(|| GroupPartitionDescription {
                        topic: topic.clone(),
                        partition,
                        committed_offset: None,
                        metadata: None,
                        log_end_offset: None,
                        lag: None,
                        member_id: None,
                    })
                    .member_id = Some(member_id.clone());
            }
        }
        if GONE_STATES.contains(&state.as_str()) && partitions.is_empty() {
            return Err(BrokerError::GroupIdNotFound {
                group: group.to_owned(),
            }
            .into());
        }
        for p in partitions.values_mut() {
            p.log_end_offset = match self.offsets(&p.topic, p.partition) {
                Ok((_, end)) => Some(end),
                Err(e) => {
                    tracing::debug!(error = %format!("{e:#}"), "no log end offset");
                    None
                }
            };
            p.lag = match (p.committed_offset, p.log_end_offset) {
                (Some(committed), Some(end)) => Some(end.saturating_sub(committed)),
                _ => None,
            };
        }
        Ok(GroupView {
            group_id: group.to_owned(),
            state,
            members: members.into_iter().map(|(id, _)| id).collect(),
            partitions: partitions.into_values().collect(),
        })
    }

    /// A group's state, and its members with their assigned partitions, by member id.
    fn group_members(&self, group: &str) -> Result<(String, Members)> {
        let list = self
            .client
            .fetch_group_list(Some(group), REQUEST_TIMEOUT)
            .map_err(|e| match e.rdkafka_error_code() {
                Some(RDKafkaErrorCode::GroupIdNotFound) => BrokerError::GroupIdNotFound {
                    group: group.to_owned(),
                }
                .into(),
                _ => anyhow::Error::new(e).context(format!("describing consumer group {group}")),
            })?;
        let Some(info) = list.groups().iter().find(|g| g.name() == group) else {
            return Ok((String::new(), Vec::new()));
        };
        let consumer_protocol = info.protocol_type() == "consumer";
        let mut members: Members = info
            .members()
            .iter()
            .map(|m| {
                let assigned = m
                    .assignment()
                    .filter(|_| consumer_protocol)
                    .and_then(assigned_partitions)
                    .unwrap_or_default();
                (m.id().to_owned(), assigned)
            })
            .collect();
        members.sort();
        Ok((info.state().to_owned(), members))
    }

    /// The group's committed offsets, in every partition of every topic (internal ones
    /// aside) that has one.
    fn committed_offsets(&self, group: &str) -> Result<BTreeMap<(String, u32), u64>> {
        let metadata = self.metadata(None)?;
        let mut query = TopicPartitionList::new();
        for topic in metadata.topics() {
            if INTERNAL_TOPICS.contains(&topic.name()) {
                continue;
            }
            for p in topic.partitions() {
                query.add_partition(topic.name(), p.id());
            }
        }
        if query.count() == 0 {
            return Ok(BTreeMap::new());
        }
        let client = self.group_client(group)?;
        let found = client
            .committed_offsets(query, REQUEST_TIMEOUT)
            .with_context(|| format!("reading the committed offsets of group {group}"))?;
        let mut committed = BTreeMap::new();
        for elem in found.elements() {
            if let Offset::Offset(offset) = elem.offset() {
                committed.insert(
                    (elem.topic().to_owned(), partition_from(elem.partition())?),
                    offset_from(offset)?,
                );
            }
        }
        Ok(committed)
    }

    /// Commits `offsets` for `group` from outside group management (generation -1), which a
    /// Kafka broker accepts only while the group has no members.
    pub(crate) fn commit_offsets(
        &self,
        group: &str,
        offsets: &[(TopicPartition, u64)],
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let client = self.group_client(group)?;
        let list = partition_list(offsets)?;
        client
            .commit(&list, CommitMode::Sync)
            .with_context(|| format!("committing the new offsets of group {group}"))?;
        Ok(())
    }

    /// Deletes a group and its committed offsets. An unknown group is
    /// [`BrokerError::GroupIdNotFound`], a group with members [`BrokerError::GroupNotEmpty`].
    pub(crate) async fn delete_group(&self, group: &str) -> Result<()> {
        let view = self.describe_group(group)?;
        let not_empty = || -> anyhow::Error {
            BrokerError::GroupNotEmpty {
                group: group.to_owned(),
                state: view.state.clone(),
                members: view.members.len(),
            }
            .into()
        };
        if !view.members.is_empty() {
            return Err(not_empty());
        }
        let results = self
            .admin
            .delete_groups(&[group], &Self::admin_options())
            .await
            .with_context(|| format!("deleting consumer group {group}"))?;
        match results.into_iter().next() {
            Some(Ok(_)) => Ok(()),
            Some(Err((_, RDKafkaErrorCode::GroupIdNotFound))) => {
                Err(BrokerError::GroupIdNotFound {
                    group: group.to_owned(),
                }
                .into())
            }
            Some(Err((_, RDKafkaErrorCode::NonEmptyGroup))) => Err(not_empty()),
            Some(Err((_, code))) => Err(anyhow!(
                "deleting consumer group {group}: {}",
                code_text(code)
            )),
            None => Err(anyhow!("deleting consumer group {group}: no answer")),
        }
    }
}
