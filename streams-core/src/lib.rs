//! Topologies, the Processor API, serdes and a test driver for stream
//! processing in the manner of Kafka Streams.
//!
//! - [`Topology`]: sources (topics), processors and sinks, with state
//!   stores ([`StoreBuilder`]) attached to processors. Sub-topologies are
//!   its connected components. [`Topology::describe`] prints Kafka Streams'
//!   `TopologyDescription` text; DOT and Mermaid renderings too.
//! - [`Processor`] and [`ProcessorContext`]: forward records to children,
//!   use typed views of key-value stores ([`TypedKeyValueStore`]), read
//!   [`RecordMetadata`], schedule punctuators on stream time or the wall
//!   clock ([`PunctuationType`]) and request commits.
//! - [`Serde`] and the built-ins of [`Serdes`], byte-compatible with
//!   Kafka's.
//! - [`TopologyTestDriver`]: runs a topology synchronously with no broker.
//! - [`StreamsConfig`]: Kafka Streams' configuration keys.
//!
//! # How records travel between processors
//!
//! Inside a sub-topology records are never serialized. A processor's
//! [`ProcessorContext::forward`] calls each child directly, depth first (as
//! Kafka Streams does: when `forward` returns, the whole subtree has
//! processed the record), and hands it the typed [`Record<K, V>`] through a
//! `&mut dyn Any` that points at an `Option<Record<K, V>>` on the caller's
//! stack; the child downcasts the reference and takes the record out. That
//! costs one type-id comparison per hop: no boxing, no copy, no
//! allocation. A record sent to several children is cloned for all but the
//! last. The types are checked when the topology is built (each node
//! records the `TypeId`s it takes and forwards, and
//! [`Topology::add_processor`] rejects a parent whose output differs), so
//! the downcast cannot fail at run time, and the user-facing API stays
//! typed: `Processor<KIn, VIn, KOut, VOut>`, `ProcessorContext<KOut, VOut>`.
//!
//! Only sources deserialize (topic bytes to records) and only sinks
//! serialize. Stores hold bytes (they are changelogged and may be on disk),
//! so a [`TypedKeyValueStore`] serializes keys and values with the store's
//! serdes.
//!
//! A task owns its nodes in `Option<Box<_>>` slots: a node is taken out of
//! its slot while it runs and put back after, so that it can call its
//! children while borrowed, without `RefCell` or `unsafe`. A topology is a
//! DAG, so a running node is never called again before it returns.
//!
//! A word count with the Processor API:
//!
//! ```
//! use std::collections::HashMap;
//! use streams_core::{
//!     Processor, ProcessorContext, Record, Result, Serdes, StoreBuilder, Topology,
//!     TopologyTestDriver,
//! };
//!
//! struct CountWords;
//!
//! impl Processor<String, String, String, i64> for CountWords {
//!     fn process(
//!         &mut self,
//!         ctx: &mut ProcessorContext<'_, String, i64>,
//!         record: Record<String, String>,
//!     ) -> Result<()> {
//!         let Some(line) = record.value else { return Ok(()) };
//!         for word in line.to_lowercase().split_whitespace() {
//!             let word = word.to_owned();
//!             let count = {
//!                 let mut counts = ctx.key_value_store::<String, i64>("counts")?;
//!                 let count = counts.get(&word)?.unwrap_or(0) + 1;
//!                 counts.put(&word, &count)?;
//!                 count
//!             };
//!             ctx.forward(Record::new(word, count, record.timestamp))?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let mut topology = Topology::new();
//! topology
//!     .add_source("Lines", Serdes::string(), Serdes::string(), &["text-lines"])?
//!     .add_processor("Count", || CountWords, &["Lines"])?
//!     .add_state_store(StoreBuilder::key_value("counts", Serdes::string(), Serdes::i64()), &["Count"])?
//!     .add_sink("Counts", "word-counts", Serdes::string(), Serdes::i64(), &["Count"])?;
//!
//! let driver = TopologyTestDriver::new(topology)?;
//! let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
//! let counts = driver.create_output_topic("word-counts", Serdes::string(), Serdes::i64());
//! lines.pipe_value("the cat and the hat".to_owned())?;
//! let latest = counts.read_key_values_to_map()?;
//! assert_eq!(latest.get("the"), Some(&Some(2)));
//! assert_eq!(latest.get("hat"), Some(&Some(1)));
//! # Ok::<(), streams_core::StreamsError>(())
//! ```

mod changelog_buffer;
mod client;
mod config;
mod error;
mod exec;
mod global;
mod naming;
mod node;
mod output;
mod partition_group;
mod processor;
pub mod punctuation;
pub mod query;
mod record;
mod runtime;
mod serdes;
mod store;
mod store_options;
mod task;
mod test_driver;
pub mod timestamp;
mod topology;
mod type_info;

pub use config::{DeserializationHandler, ProcessingGuarantee, StreamsConfig};
pub use error::{BoxError, ClientErrorKind, Result, StreamsError};
pub use exec::{DroppedRecordsMetric, TaskId};
pub use global::GlobalTableView;
pub use naming::NameGenerator;
pub use processor::{
    processor_fn, stateless_fn, ConnectedStores, FnProcessor, Processor, ProcessorContext,
};
pub use punctuation::{Cancellable, PunctuationType};
pub use record::{Header, Headers, Record, RecordMetadata};
pub use runtime::{
    AppState, Backend, InteractiveQueries, PartitionMetadata, PausePoint, ReadOnlyKeyValueStore,
    StateListener, StreamsApp, TaskMetadata, ThreadMetadata,
};
pub use serdes::{
    BincodeSerde, BoolSerde, ByteVecSerde, BytesSerde, F32Serde, F64Serde, I16Serde, I32Serde,
    I64Serde, JsonSerde, Serde, SerdeError, SerdeFormat, SerdeOperation, Serdes,
    SessionWindowedSerde, StringSerde, TimeWindowedSerde, U16Serde, U32Serde, U64Serde, Window,
    Windowed,
};
pub use store::{
    Change, KeyValueIterator, KeyValueStoreHandle, StoreBuilder, TypedKeyValueStore,
    TypedSessionStore, TypedVersionedKeyValueStore, TypedWindowStore, WindowStoreHandle,
};
pub use store_options::StoreOptions;
pub use test_driver::{
    CommitMode, DriverKeyValueStore, DriverSessionStore, DriverVersionedKeyValueStore,
    DriverWindowStore, TestDriverConfig, TestInputTopic, TestOutputTopic, TestRecord,
    TopologyTestDriver,
};
pub use timestamp::{
    BuiltinTimestampExtractor, ConsumedRecord, FailOnInvalidTimestamp,
    LogAndSkipOnInvalidTimestamp, RecordTimestampExtractor, SharedTimestampExtractor,
    TimestampExtractor, UsePreviousOnInvalidTimestamp, WallClockTimestampExtractor,
};
pub use topology::{
    GlobalStoreDescription, NodeDescription, NodeKindDescription, SubtopologyDescription, Topology,
    TopologyDescription,
};

/// The state-store crate's types that appear in this crate's API.
pub use state_store::{CacheEntry, PutOutcome, StoreBackend, VersionedRecord};
