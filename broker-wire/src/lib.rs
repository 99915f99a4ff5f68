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
//! Served so far: ApiVersions (v0 to v4), Metadata (v0 to v13, with
//! `auto.create.topics.enable` and topic ids), and the admin APIs: CreateTopics (v2 to v7),
//! DeleteTopics (v1 to v6), CreatePartitions (v0 to v3), DeleteRecords (v0 to v2),
//! DescribeConfigs (v1 to v4), AlterConfigs (v0 to v2), IncrementalAlterConfigs (v0 and v1)
//! and DescribeCluster (v0 to v2). [`SUPPORTED_APIS`] is the list clients are told.

mod apis;
mod codes;
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
