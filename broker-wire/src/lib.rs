//! The embedded broker served over TCP in the Kafka wire protocol: what `streams serve` runs.
//!
//! Every request and response goes through the `kafka-protocol` crate's codecs, generated
//! from Kafka's own message schemas. The server is a single-node cluster: node 0, its own
//! controller and every partition's leader. Requests on one connection are answered in
//! order. A request's size is checked against `socket.request.max.bytes` before any of it
//! is read, and a frame that is truncated, garbage, of an unknown API or of a version the
//! server does not serve gets Kafka's answer (an `UNSUPPORTED_VERSION` ApiVersions
//! response) or a closed connection, never a panic.
//!
//! Served: ApiVersions, Metadata (with `auto.create.topics.enable` and topic ids), Produce,
//! Fetch, ListOffsets and OffsetForLeaderEpoch; the admin APIs (CreateTopics, DeleteTopics,
//! CreatePartitions, DeleteRecords, DescribeConfigs, AlterConfigs, IncrementalAlterConfigs,
//! DescribeCluster); FindCoordinator and consumer groups as Kafka's clients use them: the
//! classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup), the offset APIs
//! (OffsetCommit, OffsetFetch, OffsetDelete) and the group admin APIs (ListGroups,
//! DescribeGroups, DeleteGroups), with the broker as the coordinator. A request that waits
//! (a Fetch long poll, a JoinGroup or SyncGroup waiting for other members) holds its own
//! connection only. [`SUPPORTED_APIS`] is the list clients are told, with the versions.

mod apis;
mod config;
mod connection;
mod context;
mod error;
mod frame;
mod server;

pub use apis::SUPPORTED_APIS;
pub use config::{WireConfig, DEFAULT_SOCKET_REQUEST_MAX_BYTES};
pub use error::{Result, WireError};
pub use server::Server;
