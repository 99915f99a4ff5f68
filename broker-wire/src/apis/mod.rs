//! The APIs served: each request decoded with `kafka-protocol`, answered, and the response
//! encoded at the request's version.

mod acl_operations;
mod alter_configs;
mod api_versions;
mod config_entries;
mod create_partitions;
mod create_topics;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_configs;
mod errors;
mod fetch;
mod find_coordinator;
mod groups;
mod incremental_alter_configs;
mod list_offsets;
mod metadata;
mod offset_for_leader_epoch;
mod produce;
mod topic_config_change;
mod transactions;

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::context::Context;
use groups::{
    delete_groups, describe_groups, heartbeat, join_group, leave_group, list_groups, offset_commit,
    offset_delete, offset_fetch, sync_group,
};

/// The APIs this server serves, with the versions of each: `(API, lowest, highest)`. An
/// ApiVersions response lists exactly these.
pub const SUPPORTED_APIS: &[(ApiKey, i16, i16)] = &[
    (ApiKey::ApiVersions, 0, 4),
    (ApiKey::Produce, 3, 13),
    (ApiKey::Fetch, 4, 18),
    (ApiKey::ListOffsets, 1, 10),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::Metadata, 0, 13),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeCluster, 0, 2),
    (ApiKey::FindCoordinator, 0, 6),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 6),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 5),
    (ApiKey::AddOffsetsToTxn, 0, 4),
    (ApiKey::EndTxn, 0, 5),
    (ApiKey::TxnOffsetCommit, 0, 5),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::ListTransactions, 0, 2),
    (ApiKey::DescribeTransactions, 0, 0),
];

/// What to do with a request.
#[derive(Debug)]
pub(crate) enum Handled {
    /// Send this response frame.
    Respond(BytesMut),
    /// Send nothing (a Produce with `acks=0`).
    NoResponse,
    /// Close the connection, for this reason (Kafka closes a connection on a request it
    /// cannot parse or an API it does not know).
    Refuse(String),
}

fn served_versions(key: ApiKey) -> Option<(i16, i16)> {
    SUPPORTED_APIS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|&(_, min, max)| (min, max))
}

/// Answers one request frame from the client at `peer`.
pub(crate) async fn handle(context: &Context, peer: SocketAddr, mut body: Bytes) -> Handled {
    if body.len() < 8 {
        return Handled::Refuse(format!(
            "a request of {} bytes is shorter than its header",
            body.len()
        ));
    }
    let api_key = i16::from_be_bytes([body[0], body[1]]);
    let version = i16::from_be_bytes([body[2], body[3]]);
    let correlation_id = i32::from_be_bytes([body[4], body[5], body[6], body[7]]);
    let Ok(key) = ApiKey::try_from(api_key) else {
        return Handled::Refuse(format!("unknown API key {api_key}"));
    };
    let Some((min, max)) = served_versions(key) else {
        return Handled::Refuse(format!("API {key:?} (key {api_key}) is not served"));
    };
    if version < min || version > max {
        if key == ApiKey::ApiVersions {
            // Kafka's rule: answer at version 0 with UNSUPPORTED_VERSION and the versions
            // served, so the client can pick one.
            return Handled::Respond(api_versions::unsupported(correlation_id));
        }
        return Handled::Refuse(format!(
            "{key:?} version {version} is not served (versions {min} to {max} are)"
        ));
    }
    let header = match RequestHeader::decode(&mut body, key.request_header_version(version)) {
        Ok(header) => header,
        Err(e) => return Handled::Refuse(format!("{key:?} v{version}: bad request header: {e}")),
    };
    let request = match RequestKind::decode(key, &mut body, version) {
        Ok(request) => request,
        Err(e) => return Handled::Refuse(format!("{key:?} v{version}: bad request: {e}")),
    };
    let response: ResponseKind = match request {
        RequestKind::ApiVersions(_) => api_versions::respond().into(),
        RequestKind::Metadata(request) => metadata::respond(context, request, version).await.into(),
        RequestKind::Produce(request) => match produce::respond(context, request, version).await {
            produce::Produced::Respond(response) => response.into(),
            produce::Produced::NoResponse => return Handled::NoResponse,
        },
        RequestKind::Fetch(request) => fetch::respond(context, request, version).await.into(),
        RequestKind::ListOffsets(request) => list_offsets::respond(context, request, version)
            .await
            .into(),
        RequestKind::OffsetForLeaderEpoch(request) => {
            offset_for_leader_epoch::respond(context, request)
                .await
                .into()
        }
        RequestKind::CreateTopics(r) => create_topics::respond(context, r, version).await.into(),
        RequestKind::DeleteTopics(r) => delete_topics::respond(context, r, version).await.into(),
        RequestKind::CreatePartitions(r) => create_partitions::respond(context, r).await.into(),
        RequestKind::DeleteRecords(r) => delete_records::respond(context, r).await.into(),
        RequestKind::DescribeConfigs(r) => {
            describe_configs::respond(context, r, version).await.into()
        }
        RequestKind::AlterConfigs(r) => alter_configs::respond(context, r).await.into(),
        RequestKind::IncrementalAlterConfigs(r) => {
            incremental_alter_configs::respond(context, r).await.into()
        }
        RequestKind::DescribeCluster(r) => describe_cluster::respond(context, r).into(),
        RequestKind::FindCoordinator(r) => find_coordinator::respond(context, r, version).into(),
        RequestKind::JoinGroup(r) => join_group::respond(context, &header, peer, r, version)
            .await
            .into(),
        RequestKind::SyncGroup(r) => sync_group::respond(context, r).await.into(),
        RequestKind::Heartbeat(r) => heartbeat::respond(context, r).await.into(),
        RequestKind::LeaveGroup(r) => leave_group::respond(context, r, version).await.into(),
        RequestKind::OffsetCommit(r) => offset_commit::respond(context, r, version).await.into(),
        RequestKind::OffsetFetch(r) => offset_fetch::respond(context, r, version).await.into(),
        RequestKind::OffsetDelete(r) => offset_delete::respond(context, r).await.into(),
        RequestKind::ListGroups(r) => list_groups::respond(context, r, version).await.into(),
        RequestKind::DescribeGroups(r) => {
            describe_groups::respond(context, r, version).await.into()
        }
        RequestKind::DeleteGroups(r) => delete_groups::respond(context, r).await.into(),
        RequestKind::InitProducerId(r) => transactions::init_producer_id(context, r, version)
            .await
            .into(),
        RequestKind::AddPartitionsToTxn(r) => {
            transactions::add_partitions_to_txn(context, r, version)
                .await
                .into()
        }
        RequestKind::AddOffsetsToTxn(r) => transactions::add_offsets_to_txn(context, r, version)
            .await
            .into(),
        RequestKind::EndTxn(r) => transactions::end_txn(context, r, version).await.into(),
        RequestKind::TxnOffsetCommit(r) => transactions::txn_offset_commit(context, r, version)
            .await
            .into(),
        RequestKind::DescribeProducers(r) => {
            transactions::describe_producers(context, r).await.into()
        }
        RequestKind::ListTransactions(r) => {
            transactions::list_transactions(context, r).await.into()
        }
        RequestKind::DescribeTransactions(r) => {
            transactions::describe_transactions(context, r).await.into()
        }
        other => return Handled::Refuse(format!("{other:?} is not served")),
    };
    encode(key, version, header.correlation_id, &response)
}

/// The response frame: header, then body, at the request's version.
fn encode(key: ApiKey, version: i16, correlation_id: i32, response: &ResponseKind) -> Handled {
    let mut out = BytesMut::new();
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoded = header
        .encode(&mut out, key.response_header_version(version))
        .and_then(|()| response.encode(&mut out, version));
    match encoded {
        Ok(()) => Handled::Respond(out),
        Err(e) => Handled::Refuse(format!(
            "{key:?} v{version}: cannot encode the response: {e}"
        )),
    }
}
