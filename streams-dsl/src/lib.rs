//! The fluent DSL of the stream processor, in the manner of Kafka Streams'
//! `StreamsBuilder`: [`KStream`], [`KTable`], [`KGroupedStream`] and
//! [`KGroupedTable`], cogrouped into a [`CogroupedKStream`], windowed with
//! [`TimeWindows`] into a
//! [`TimeWindowedKStream`], with [`SessionWindows`] into a
//! [`SessionWindowedKStream`] or with [`SlidingWindows`] into a
//! [`SlidingWindowedKStream`], streams joined within [`JoinWindows`]
//! ([`KStream::join`], [`KStream::left_join`], [`KStream::outer_join`]),
//! configured with [`Consumed`], [`Produced`], [`Grouped`],
//! [`Materialized`], [`StreamJoined`], [`Named`], [`Branched`] and
//! [`Repartitioned`]. [`StreamsBuilder::build`] yields a
//! [`streams_core::Topology`].
//!
//! Word count:
//!
//! ```
//! use streams_core::{Serdes, TopologyTestDriver};
//! use streams_dsl::{Consumed, Grouped, Materialized, Produced, StreamsBuilder};
//!
//! let builder = StreamsBuilder::new();
//! builder
//!     .stream::<String, String>("text-lines", Consumed::with(Serdes::string(), Serdes::string()))
//!     .flat_map_values(|line| line.to_lowercase().split_whitespace().map(str::to_owned).collect::<Vec<_>>())
//!     .group_by(|_key, word| word.clone(), Grouped::with(Serdes::string(), Serdes::string()))
//!     .count(Materialized::as_("word-counts"))
//!     .to_stream()
//!     .to("word-counts-output", Produced::with(Serdes::string(), Serdes::i64()));
//!
//! let driver = TopologyTestDriver::new(builder.build()?)?;
//! let lines = driver.create_input_topic("text-lines", Serdes::string(), Serdes::string());
//! let counts = driver.create_output_topic("word-counts-output", Serdes::string(), Serdes::i64());
//! lines.pipe_value("the cat and the hat".to_owned())?;
//! let latest = counts.read_key_values_to_map()?;
//! assert_eq!(latest.get("the"), Some(&Some(2)));
//! assert_eq!(latest.get("hat"), Some(&Some(1)));
//! # Ok::<(), streams_core::StreamsError>(())
//! ```
//!
//! Names: operators get `KSTREAM-<OPERATION>-<10-digit index>` (or
//! `KTABLE-...`) from one counter per builder, so the same program builds
//! the same names; [`Named`] and the names in the option objects replace
//! them. See `docs/dsl.md`.

// `StreamsError` is streams-core's error, returned by every `Processor`
// and `Topology` call; its size is that crate's choice, so this lint
// would flag every processor closure here.
#![allow(clippy::result_large_err)]

mod builder;
mod change;
mod cogrouped;
mod cogrouped_windowed;
mod fk_join;
mod global_ktable;
mod grouped;
mod join_serdes;
mod join_windows;
mod joined;
mod kstream;
mod kstream_join;
mod kstream_table;
mod ktable;
mod ktable_join;
mod old_values;
mod options;
mod processors;
mod session_windows;
mod sliding_windows;
mod stream_joined;
mod suppress;
mod table_joined;
mod value_getter;
mod windowed_aggregation;
mod windowed_kstream;
mod windows;

/// The guide, `docs/dsl.md`: its examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/dsl.md")]
struct DslGuide;

/// The windowing chapter, `docs/windowing.md`: its examples run as
/// doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/windowing.md")]
struct WindowingGuide;

/// The joins chapter, `docs/joins.md`: its examples run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/joins.md")]
struct JoinsGuide;

pub use builder::{DslMetrics, StreamsBuilder};
pub use change::{Change, ChangeSerde, ValueAndTimestamp, ValueAndTimestampSerde};
pub use cogrouped::CogroupedKStream;
pub use cogrouped_windowed::{
    SessionWindowedCogroupedKStream, SlidingWindowedCogroupedKStream, TimeWindowedCogroupedKStream,
    WindowedCogroupedKStream,
};
pub use global_ktable::GlobalKTable;
pub use grouped::KGroupedStream;
pub use join_windows::JoinWindows;
pub use joined::Joined;
pub use kstream::{BranchedKStream, KStream};
pub use ktable::{KGroupedTable, KTable};
pub use options::{Branched, Consumed, Grouped, Materialized, Named, Produced, Repartitioned};
pub use session_windows::SessionWindows;
pub use sliding_windows::SlidingWindows;
pub use stream_joined::StreamJoined;
pub use suppress::{BufferConfig, StrictBufferConfig, Suppressed};
pub use table_joined::TableJoined;
pub use windowed_kstream::{
    SessionWindowedKStream, SlidingWindowedKStream, TimeWindowedKStream, WindowSpec,
    WindowedKStream,
};
pub use windows::{LateRecords, TimeWindows};
