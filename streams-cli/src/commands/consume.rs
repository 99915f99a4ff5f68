//! `streams consume`: records to stdout, as with kafka-console-consumer.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use broker_embedded::{
    AutoOffsetReset, Broker, Consumer, ConsumerConfig, ConsumerRecord, TopicPartition,
};

use super::{ctrl_c, with_broker, write_out, DirMode, Outcome};
use crate::args::{ConsumeArgs, StartOffset};
use crate::formats::{self, Format};

/// Most records taken by one poll.
const MAX_POLL_RECORDS: u64 = 500;
/// How long one poll waits when there is no `--timeout-ms`; the loop polls again after it.
const IDLE_POLL: Duration = Duration::from_secs(3600);

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
pub(crate) async fn run(dir: &Path, args: ConsumeArgs, out: &mut dyn Write) -> Result<Outcome> {
    let (count, outcome) =
        with_broker(dir, DirMode::MustExist, |broker| consume(broker, args, out)).await?;
    eprintln!("Processed a total of {count} messages");
    Ok(outcome)
}

/// Positions a consumer on the partitions to read.
async fn assign(broker: &Broker, consumer: &mut Consumer, args: &ConsumeArgs) -> Result<()> {
    let topic = args.topic.as_str();
    let partitions: Vec<TopicPartition> = match args.partition {
        Some(p) => vec![TopicPartition::new(topic, p)],
        None => {
            let n = broker.partition_count(topic).await?;
            (0..n).map(|p| TopicPartition::new(topic, p)).collect()
        }
    };
    consumer.assign(partitions.clone()).await?;
    let start = match args.offset {
        Some(start) => start,
        None if args.from_beginning => StartOffset::Earliest,
        None => StartOffset::Latest,
    };
    for tp in &partitions {
        match start {
            StartOffset::Earliest => consumer.seek_to_beginning(tp).await?,
            StartOffset::Latest => consumer.seek_to_end(tp).await?,
            StartOffset::At(offset) => {
                let (log_start, log_end) = broker.offsets(topic, tp.partition).await?;
                if offset < log_start || offset > log_end {
                    bail!(
                        "offset {offset} is out of range for partition {tp} \
                         (log start offset {log_start}, log end offset {log_end})"
                    );
                }
                consumer.seek(tp, offset)?;
            }
        }
    }
    Ok(())
}

async fn consume(broker: Broker, args: ConsumeArgs, out: &mut dyn Write) -> Result<(u64, Outcome)> {
    let options = PrintOptions::from_args(&args);
    let config = ConsumerConfig {
        auto_offset_reset: if args.from_beginning {
            AutoOffsetReset::Earliest
        } else {
            AutoOffsetReset::Latest
        },
        ..ConsumerConfig::default()
    };
    let mut consumer = Consumer::new(&broker, config);
    assign(&broker, &mut consumer, &args).await?;

    let wait = args.timeout_ms.map_or(IDLE_POLL, Duration::from_millis);
    let interrupt = ctrl_c();
    tokio::pin!(interrupt);
    let mut count: u64 = 0;
    let mut text = String::new();
    loop {
        let want = match args.max_messages {
            Some(max) if count >= max => return Ok((count, Outcome::Done)),
            Some(max) => (max - count).min(MAX_POLL_RECORDS),
            None => MAX_POLL_RECORDS,
        };
        let records = tokio::select! {
            biased;
            () = &mut interrupt => return Ok((count, Outcome::Interrupted)),
            polled = consumer.poll_up_to(want as usize, wait) => polled?,
        };
        if records.is_empty() {
            if args.timeout_ms.is_some() {
                return Ok((count, Outcome::Done));
            }
            continue;
        }
        text.clear();
        let mut result = Ok(());
        let mut formatted = 0;
        for record in &records {
            let len = text.len();
            result = format_record(record, &options, &mut text);
            if result.is_err() {
                text.truncate(len);
                break;
            }
            formatted += 1;
        }
        // The records before a bad one are printed before the error is reported.
        if !write_out(out, &text)? {
            // The reader went away (`consume | head`): stop quietly, as a pipeline expects.
            return Ok((count, Outcome::Done));
        }
        count += formatted;
        result?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_embedded::TimestampType;
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
}
