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
//! What a client can make the server hold is bounded: `max.connections` connections, each
//! with at most one request in flight and one response pending (the next request is read
//! after the response is written, so a client that pipelines without reading is held back
//! by TCP); a request's buffer grows with the bytes that arrived, not with the size its
//! header claims; arrays whose claimed length exceeds the bytes left in the frame are
//! refused before anything is allocated by that length; and a connection on which nothing
//! moves for `connections.max.idle.ms` is closed. See [`WireConfig`].
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

mod admission;
mod apis;
mod config;
mod connection;
mod context;
mod error;
mod frame;
mod server;

pub use apis::SUPPORTED_APIS;
pub use config::{
    WireConfig, DEFAULT_CONNECTIONS_MAX_IDLE_MS, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_SOCKET_REQUEST_MAX_BYTES,
};
pub use error::{Result, WireError};
pub use server::Server;
