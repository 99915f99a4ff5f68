//! Topology, processor API and runtime of the stream processor.
//!
//! This crate is in its first stage: the runtime lands with the streams issue.
