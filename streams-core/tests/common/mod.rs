//! The Processor API word count shared by the end-to-end tests: split lines
//! into words, re-key through the repartition topic `words-repartition`,
//! count in the cached, logged store `counts`, and write the counts the
//! cache flushes to `word-counts`.

#![allow(dead_code)]

use streams_core::{
    CacheEntry, Processor, ProcessorContext, Record, Result, Serdes, StoreBuilder, Topology,
};

/// The input topic.
pub(crate) const INPUT: &str = "text-lines";
/// The output topic.
pub(crate) const OUTPUT: &str = "word-counts";

/// Splits lines into words, keyed by word.
pub(crate) struct Split;

impl Processor<String, String, String, String> for Split {
    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, String>,
        record: Record<String, String>,
    ) -> Result<()> {
        let Some(line) = record.value else {
            return Ok(());
        };
        for word in line.split_whitespace() {
            if word == "panic!" {
                panic!("a user function failed on purpose");
            }
            ctx.forward(Record::new(
                word.to_owned(),
                word.to_owned(),
                record.timestamp,
            ))?;
        }
        Ok(())
    }
}

/// Counts words in store `counts`; forwards the counts the cache flushes.
pub(crate) struct Count;

impl Processor<String, String, String, i64> for Count {
    fn init(&mut self, ctx: &mut ProcessorContext<'_, String, i64>) -> Result<()> {
        ctx.set_flush_listener("counts")
    }

    fn process(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        record: Record<String, String>,
    ) -> Result<()> {
        let Some(word) = record.key else {
            return Ok(());
        };
        let mut counts = ctx.key_value_store::<String, i64>("counts")?;
        let count = counts.get(&word)?.unwrap_or(0) + 1;
        counts.put(&word, &count)?;
        Ok(())
    }

    fn flushed(
        &mut self,
        ctx: &mut ProcessorContext<'_, String, i64>,
        _store: &str,
        entry: CacheEntry,
    ) -> Result<()> {
        let change = ctx
            .key_value_store::<String, i64>("counts")?
            .decode(&entry)?;
        ctx.forward(Record::from_parts(
            Some(change.key),
            change.new_value,
            ctx.stream_time().unwrap_or(0),
        ))
    }
}

/// The word-count topology.
pub(crate) fn word_count() -> Topology {
    let mut topology = Topology::new();
    topology
        .add_source("lines", Serdes::string(), Serdes::string(), &[INPUT])
        .unwrap()
        .add_processor("split", || Split, &["lines"])
        .unwrap()
        .add_sink(
            "to-words",
            "words-repartition",
            Serdes::string(),
            Serdes::string(),
            &["split"],
        )
        .unwrap()
        .add_source(
            "words",
            Serdes::string(),
            Serdes::string(),
            &["words-repartition"],
        )
        .unwrap()
        .add_processor("count", || Count, &["words"])
        .unwrap()
        .add_state_store(
            StoreBuilder::key_value("counts", Serdes::string(), Serdes::i64())
                .with_caching_enabled(),
            &["count"],
        )
        .unwrap()
        .add_sink("out", OUTPUT, Serdes::string(), Serdes::i64(), &["count"])
        .unwrap();
    topology
}
