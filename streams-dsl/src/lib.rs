//! The fluent DSL (`StreamsBuilder`, `KStream`, `KTable`) that builds topologies.
//!
//! This crate is in its first stage: the DSL lands with the streams issue.
