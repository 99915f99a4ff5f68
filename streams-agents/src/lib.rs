//! Faust-style async agents and tables over the streams runtime.
//!
//! An [`App`] declares topics, tables and agents; an agent is an async
//! function over a [`futures::Stream`] of [`Event`]s, one instance per
//! partition of its topic, run by the same runtime, broker, state stores
//! and changelogs as the DSL:
//!
//! ```no_run
//! use futures::StreamExt;
//! use streams_agents::App;
//! use streams_core::{Serdes, StreamsConfig};
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     let mut app = App::new(StreamsConfig::new("faust-stream"));
//!     let Ok(rides) = app.topic::<String, String>("rides", Serdes::string(), Serdes::string()) else {
//!         return std::process::ExitCode::FAILURE;
//!     };
//!     let Ok(vendor_rides) = app.table::<String, i64>("vendor_rides") else {
//!         return std::process::ExitCode::FAILURE;
//!     };
//!     let vendor_rides = vendor_rides.default(|| 0);
//!     let agent = app.agent("process", &rides, move |mut rides| {
//!         let vendor_rides = vendor_rides.clone();
//!         async move {
//!             while let Some(ride) = rides.next().await {
//!                 if let Some(vendor) = ride?.key {
//!                     vendor_rides.update(&vendor, |n| n + 1).await?;
//!                 }
//!             }
//!             Ok(())
//!         }
//!     });
//!     if agent.is_err() {
//!         return std::process::ExitCode::FAILURE;
//!     }
//!     app.main().await
//! }
//! ```
//!
//! `docs/agents.md` is the guide: the Faust tutorial line by line, every
//! operation, and the guarantees.

// The runtime's `StreamsError` is large; processors return it by value, as
// every processor of the DSL does.
#![allow(clippy::result_large_err)]

/// The guide, `docs/agents.md`: its examples compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/agents.md")]
struct AgentsGuide;

mod agent;
mod app;
pub mod ask;
mod cli;
mod current;
mod definitions;
mod driver;
mod error;
mod event;
mod global_table;
mod mailbox;
mod running;
mod stream;
mod table;
mod take;
mod timer;
mod topic;
mod windowed_table;

pub use agent::Agent;
pub use app::{App, DEFAULT_TOPIC_PARTITIONS};
pub use error::{AgentError, AgentResult, Result};
pub use event::Event;
pub use global_table::GlobalTable;
pub use running::RunningApp;
pub use stream::{AgentStream, GroupedStream};
pub use table::Table;
pub use topic::Topic;
pub use windowed_table::WindowedTable;
