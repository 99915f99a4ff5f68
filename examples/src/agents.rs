//! The word count written with Faust-style agents, shared by the
//! `agents_wordcount` binary and the `agents` benchmark.

use broker_embedded::Broker;
use futures::StreamExt as _;
use streams_agents::{App, Table};
use streams_core::{Serdes, StoreBackend, StreamsConfig};

use crate::words;

/// The topic of the words `split` sends, keyed by the word.
pub const WORDS_TOPIC: &str = "words";
/// The table of the counts.
pub const COUNTS_TABLE: &str = "word_counts";

/// Faust's word count with agents, on `broker`: the agent `split` reads
/// lines from `text-lines` (which it creates with `partitions` partitions
/// when missing) and sends each word (under [`words`]' rule) to
/// [`WORDS_TOPIC`], keyed by the word; the agent `count` counts them in the
/// table [`COUNTS_TABLE`] (default 0, on `backend` or the default one) and
/// sends each new count to `word-counts`, as the DSL's
/// [`crate::word_count_topology`] does.
pub fn word_count_app(
    config: StreamsConfig,
    broker: Broker,
    partitions: u32,
    backend: Option<StoreBackend>,
) -> streams_agents::Result<(App, Table<String, i64>)> {
    let mut app = App::new(config)
        .with_broker(broker)
        .with_topic_partitions(partitions);
    let lines =
        app.topic::<String, String>(crate::TEXT_LINES_TOPIC, Serdes::string(), Serdes::string())?;
    let words_topic =
        app.topic::<String, String>(WORDS_TOPIC, Serdes::string(), Serdes::string())?;
    let counts_topic =
        app.topic::<String, i64>(crate::WORD_COUNTS_TOPIC, Serdes::string(), Serdes::i64())?;
    let counts = match backend {
        Some(backend) => app.table_on::<String, i64>(COUNTS_TABLE, backend)?,
        None => app.table::<String, i64>(COUNTS_TABLE)?,
    }
    .default(|| 0);

    let to_words = words_topic.clone();
    app.agent("split", &lines, move |lines| {
        let words_topic = to_words.clone();
        async move {
            let mut lines = Box::pin(lines.values());
            while let Some(line) = lines.next().await {
                for word in words(&line?) {
                    words_topic.send(word.clone(), word).await?;
                }
            }
            Ok(())
        }
    })?
    .describe("splits lines into words");

    let table = counts.clone();
    app.agent("count", &words_topic, move |mut words| {
        let (counts, out) = (table.clone(), counts_topic.clone());
        async move {
            while let Some(word) = words.next().await {
                let Some(word) = word?.key else { continue };
                let count = counts.update(&word, |n| n + 1).await?;
                out.send(word, count).await?;
            }
            Ok(())
        }
    })?
    .describe("counts words in the table word_counts");
    Ok((app, counts))
}
