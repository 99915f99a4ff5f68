//! `streams consume`: records to stdout, as with kafka-console-consumer.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Waker};
use std::time::Duration;

use anyhow::{Context as _, Result};
use broker_embedded::{ConsumerRecord, TopicPartition};
use tokio::time::Instant;

use super::{ctrl_c, with_backend, write_out, DirMode, Outcome};
use crate::args::{ConsumeArgs, StartOffset};
use crate::backend::{Backend, ReadSpec, Source, Target};
use crate::formats::{self, Format};

/// Most records taken by one poll.
const MAX_POLL_RECORDS: u64 = 500;
/// Longest one poll waits before the loop looks for Ctrl-C again. Polls are never cancelled
/// half-way, so every record a poll hands out is either printed or sought back to, and a group
/// commits exactly what was printed.
const POLL_SLICE: Duration = Duration::from_millis(100);
/// How often a group consumer commits what it printed while it runs (Kafka's default
/// `auto.commit.interval.ms`).
const COMMIT_INTERVAL: Duration = Duration::from_secs(5);

/// Which fields are printed before the value, and how keys and values are shown.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PrintOptions {
    /// Print the key.
    pub(crate) key: bool,
    /// Print the partition.
    pub(crate) partition: bool,
    /// Print the offset.
    pub(crate) offset: bool,
    /// Print the timestamp.
    pub(crate) timestamp: bool,
    /// How keys are shown.
    pub(crate) key_format: Format,
    /// How values are shown.
    pub(crate) value_format: Format,
}

impl PrintOptions {
    /// The options the flags of `consume` ask for.
    pub(crate) fn from_args(args: &ConsumeArgs) -> Self {
        PrintOptions {
            key: args.print_key,
            partition: args.print_partition,
            offset: args.print_offset,
            timestamp: args.print_timestamp,
            key_format: args.key_format,
            value_format: args.value_format,
        }
    }
}

/// Appends one output line for `record`: the asked-for fields in the order key, partition,
/// offset, timestamp, then the value, separated by tabs. A null key or value is `null`.
pub(crate) fn format_record(
    record: &ConsumerRecord,
    options: &PrintOptions,
    line: &mut String,
) -> Result<()> {
    let show = |what: &str, format: Format, data: Option<&[u8]>| -> Result<String> {
        match data {
            None => Ok("null".to_owned()),
            Some(bytes) => formats::decode(format, bytes).with_context(|| {
                format!(
                    "partition {}-{} offset {}: {what} is not valid {format}",
                    record.topic, record.partition, record.offset
                )
            }),
        }
    };
    if options.key {
        line.push_str(&show("key", options.key_format, record.key.as_deref())?);
        line.push('\t');
    }
    if options.partition {
        line.push_str(&record.partition.to_string());
        line.push('\t');
    }
    if options.offset {
        line.push_str(&record.offset.to_string());
        line.push('\t');
    }
    if options.timestamp {
        line.push_str(&record.timestamp.to_string());
        line.push('\t');
    }
    line.push_str(&show(
        "value",
        options.value_format,
        record.value.as_deref(),
    )?);
    line.push('\n');
    Ok(())
}

/// Runs `consume`, printing records to `out` and the `Processed a total of N messages`
/// summary to stderr.
pub(crate) async fn run(
    target: &Target,
    args: ConsumeArgs,
    out: &mut dyn Write,
) -> Result<Outcome> {
    // Without a group nothing is committed: the data dir is only read.
    let mode = if args.group.is_some() {
        DirMode::MustExist
    } else {
        DirMode::ReadOnly
    };
    let (count, outcome) =
        with_backend(target, mode, |backend| consume(backend, args, out)).await?;
    eprintln!("Processed a total of {count} messages");
    Ok(outcome)
}

/// What to read, and where to start, as the flags say.
fn read_spec(args: &ConsumeArgs) -> ReadSpec {
    ReadSpec {
        topic: args.topic.clone(),
        partition: args.partition,
        start: match args.offset {
            Some(start) => start,
            None if args.from_beginning => StartOffset::Earliest,
            None => StartOffset::Latest,
        },
        group: args.group.clone(),
        isolation_level: args.isolation_level,
    }
}

/// Reads and prints; as a group member, commits what was printed before returning, whatever
/// ended the reading. The error of the reading wins over an error of the commit.
async fn consume(
    backend: Backend,
    args: ConsumeArgs,
    out: &mut dyn Write,
) -> Result<(u64, Outcome)> {
    let options = PrintOptions::from_args(&args);
    let mut source = backend.open_source(&read_spec(&args)).await?;
    let Some(group) = args.group.clone() else {
        let result = print_records(&mut source, &args, &options, false, out).await;
        let closed = source.close().await;
        return match (result, closed) {
            (Ok(done), Ok(())) => Ok(done),
            (Err(e), _) | (Ok(_), Err(e)) => Err(e),
        };
    };
    let result = print_records(&mut source, &args, &options, true, out).await;
    let committed = source
        .commit_printed()
        .await
        .map_err(|e| e.error)
        .with_context(|| format!("committing the offsets of group {group}"));
    let closed = source
        .close()
        .await
        .with_context(|| format!("leaving group {group}"));
    let finished = committed.and(closed);
    match (result, finished) {
        (Err(e), Err(finish)) => {
            tracing::warn!(error = %format!("{finish:#}"), "finishing the group consumer after an error failed");
            Err(e)
        }
        (Err(e), Ok(())) => Err(e),
        (Ok(_), Err(finish)) => Err(finish),
        (Ok(done), Ok(())) => Ok(done),
    }
}

/// Whether `future` has completed, polled once without waiting. The first call also starts
/// it (for Ctrl-C: installs the handler). Not to be called again once it returned `true`.
fn poll_once(future: Pin<&mut impl Future<Output = ()>>) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    future.poll(&mut cx).is_ready()
}

/// Polls and prints until `--max-messages`, `--timeout-ms`, Ctrl-C, a closed stdout or an
/// error. Returns how many records were printed. Records a poll handed out but that were not
/// printed (after a record that cannot be shown, or when stdout fails) are sought back to, so
/// that the consumer's positions are always just past the printed records. A group member
/// also commits them every [`COMMIT_INTERVAL`]. The idle time of `--timeout-ms` counts from
/// when a group member got its partitions (a cluster's group may take seconds to form).
async fn print_records(
    source: &mut Source,
    args: &ConsumeArgs,
    options: &PrintOptions,
    in_group: bool,
    out: &mut dyn Write,
) -> Result<(u64, Outcome)> {
    let interrupt = ctrl_c();
    tokio::pin!(interrupt);
    // Installs the Ctrl-C handler before anything is printed.
    let interrupted = poll_once(interrupt.as_mut());
    let idle_limit = args.timeout_ms.map(Duration::from_millis);
    let mut last_record = Instant::now();
    let mut next_commit = Instant::now() + COMMIT_INTERVAL;
    let mut count: u64 = 0;
    let mut text = String::new();
    loop {
        if interrupted || poll_once(interrupt.as_mut()) {
            return Ok((count, Outcome::Interrupted));
        }
        let want = match args.max_messages {
            Some(max) if count >= max => return Ok((count, Outcome::Done)),
            Some(max) => (max - count).min(MAX_POLL_RECORDS),
            None => MAX_POLL_RECORDS,
        };
        if !source.ready() {
            last_record = Instant::now();
        }
        // A limit too far in the future to represent is no limit.
        let wait = match idle_limit.and_then(|limit| last_record.checked_add(limit)) {
            Some(deadline) => deadline
                .saturating_duration_since(Instant::now())
                .min(POLL_SLICE),
            None => POLL_SLICE,
        };
        let records = source.poll_up_to(want as usize, wait).await?;
        if records.is_empty() {
            if source.ready() && idle_limit.is_some_and(|limit| last_record.elapsed() >= limit) {
                return Ok((count, Outcome::Done));
            }
            continue;
        }
        last_record = Instant::now();
        text.clear();
        let mut result = Ok(());
        let mut formatted = 0;
        for record in &records {
            let len = text.len();
            result = format_record(record, options, &mut text);
            if result.is_err() {
                text.truncate(len);
                break;
            }
            formatted += 1;
        }
        // The records before a bad one are printed before the error is reported.
        let written = write_out(out, &text);
        let printed = if matches!(written, Ok(true)) {
            formatted
        } else {
            0
        };
        seek_back(source, &records[printed..])?;
        if !written? {
            // The reader went away (`consume | head`): stop quietly, as a pipeline expects.
            return Ok((count, Outcome::Done));
        }
        count += printed as u64;
        result?;
        if in_group && Instant::now() >= next_commit {
            match source.commit_printed().await {
                Ok(()) => {}
                Err(e) if e.fatal => return Err(e.error),
                Err(e) => {
                    tracing::warn!(error = %format!("{:#}", e.error), "committing the printed offsets failed")
                }
            }
            next_commit = Instant::now() + COMMIT_INTERVAL;
        }
        // Lets the runtime see a Ctrl-C while records keep coming.
        tokio::task::yield_now().await;
    }
}

/// Moves each partition of `unprinted` back to its first record there.
fn seek_back(source: &mut Source, unprinted: &[ConsumerRecord]) -> Result<()> {
    let mut first: HashMap<TopicPartition, u64> = HashMap::new();
    for record in unprinted {
        first
            .entry(TopicPartition::new(&*record.topic, record.partition))
            .or_insert(record.offset);
    }
    for (tp, offset) in &first {
        source.seek(tp, *offset)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_embedded::{Broker, TimestampType};
    use bytes::Bytes;

    fn record(key: Option<&[u8]>, value: Option<&[u8]>) -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 17,
            timestamp: 1_700_000_000_000,
            timestamp_type: TimestampType::CreateTime,
            key: key.map(Bytes::copy_from_slice),
            value: value.map(Bytes::copy_from_slice),
            headers: Vec::new(),
        }
    }

    fn options() -> PrintOptions {
        PrintOptions {
            key: false,
            partition: false,
            offset: false,
            timestamp: false,
            key_format: Format::String,
            value_format: Format::String,
        }
    }

    fn line(record: &ConsumerRecord, options: &PrintOptions) -> String {
        let mut text = String::new();
        format_record(record, options, &mut text).unwrap();
        text
    }

    #[test]
    fn only_the_value_by_default() {
        assert_eq!(line(&record(Some(b"k"), Some(b"v")), &options()), "v\n");
        assert_eq!(line(&record(Some(b"k"), None), &options()), "null\n");
    }

    #[test]
    fn fields_come_in_order_key_partition_offset_timestamp_value() {
        let all = PrintOptions {
            key: true,
            partition: true,
            offset: true,
            timestamp: true,
            ..options()
        };
        assert_eq!(
            line(&record(Some(b"k"), Some(b"v")), &all),
            "k\t2\t17\t1700000000000\tv\n"
        );
        assert_eq!(
            line(&record(None, None), &all),
            "null\t2\t17\t1700000000000\tnull\n"
        );
        let some = PrintOptions {
            key: true,
            offset: true,
            ..options()
        };
        assert_eq!(line(&record(Some(b"k"), Some(b"v")), &some), "k\t17\tv\n");
    }

    #[test]
    fn formats_apply_to_keys_and_values() {
        let o = PrintOptions {
            key: true,
            key_format: Format::I64,
            value_format: Format::Hex,
            ..options()
        };
        let r = record(Some(&7i64.to_be_bytes()), Some(&[0xca, 0xfe]));
        assert_eq!(line(&r, &o), "7\tcafe\n");
        let o = PrintOptions {
            value_format: Format::Json,
            ..options()
        };
        assert_eq!(
            line(&record(None, Some(b"{ \"a\" : 1 }")), &o),
            "{\"a\":1}\n"
        );
    }

    #[test]
    fn undecodable_data_is_an_error_naming_partition_and_offset() {
        let o = PrintOptions {
            value_format: Format::Json,
            ..options()
        };
        let mut text = String::new();
        let err = format_record(&record(None, Some(b"{oops")), &o, &mut text).unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.starts_with("partition t-2 offset 17: value is not valid json: "),
            "{msg}"
        );
        let o = PrintOptions {
            key: true,
            key_format: Format::I64,
            ..options()
        };
        let err = format_record(&record(Some(b"abc"), Some(b"v")), &o, &mut text).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "partition t-2 offset 17: key is not valid i64: an i64 is 8 bytes big-endian, \
             this is 3 bytes"
        );
    }

    /// `consume` run in-process on `broker` with the given flags; returns what it printed.
    async fn consume_lines(broker: &Broker, flags: &[&str]) -> (String, u64) {
        use clap::Parser as _;
        let argv = ["streams", "consume"].iter().chain(flags).copied();
        let cli = crate::args::Cli::try_parse_from(argv).unwrap();
        let crate::args::Command::Consume(args) = cli.command else {
            panic!("not consume");
        };
        let mut out = Vec::new();
        let (count, outcome) = consume(Backend::Dir(broker.clone()), args, &mut out)
            .await
            .unwrap();
        assert_eq!(outcome, Outcome::Done);
        (String::from_utf8(out).unwrap(), count)
    }

    #[tokio::test]
    async fn the_isolation_level_decides_whether_transactions_are_seen_before_their_end() {
        use broker_embedded::{NewTopic, Producer, ProducerConfig, ProducerRecord};
        let broker = Broker::in_memory().await.unwrap();
        broker.create_topic(NewTopic::new("t", 1)).await.unwrap();
        let plain = Producer::new(&broker);
        plain.send(ProducerRecord::new("t", "plain")).await.unwrap();
        let producer = Producer::with_config(
            &broker,
            ProducerConfig {
                transactional_id: Some("tx".to_owned()),
                ..ProducerConfig::default()
            },
        );
        producer.init_transactions().await.unwrap();
        producer.begin_transaction().unwrap();
        producer
            .send(ProducerRecord::new("t", "committed"))
            .await
            .unwrap();
        producer.commit_transaction().await.unwrap();
        producer.begin_transaction().unwrap();
        producer
            .send(ProducerRecord::new("t", "aborted"))
            .await
            .unwrap();
        producer.abort_transaction().await.unwrap();
        producer.begin_transaction().unwrap();
        producer
            .send(ProducerRecord::new("t", "open"))
            .await
            .unwrap();

        let read = ["--topic", "t", "--from-beginning", "--timeout-ms", "50"];
        let (text, count) = consume_lines(&broker, &read).await;
        assert_eq!(text, "plain\ncommitted\naborted\nopen\n");
        assert_eq!(count, 4);
        let uncommitted: Vec<&str> = read
            .iter()
            .copied()
            .chain(["--isolation-level", "read_uncommitted"])
            .collect();
        assert_eq!(consume_lines(&broker, &uncommitted).await.0, text);
        let committed: Vec<&str> = read
            .iter()
            .copied()
            .chain(["--isolation-level", "read_committed"])
            .collect();
        assert_eq!(
            consume_lines(&broker, &committed).await,
            ("plain\ncommitted\n".to_owned(), 2)
        );
        producer.commit_transaction().await.unwrap();
        assert_eq!(
            consume_lines(&broker, &committed).await,
            ("plain\ncommitted\nopen\n".to_owned(), 3)
        );
        broker.close().await.unwrap();
    }
}
