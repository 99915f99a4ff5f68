//! The command line, with the flag names of Kafka's console tools.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

use broker_embedded::OffsetResetSpec;

use crate::formats::Format;
use crate::iso8601;

/// Manage topics and consumer groups, and produce and consume records, in an embedded
/// broker's data dir or on a Kafka cluster; serve a data dir in the Kafka wire protocol.
#[derive(Debug, Parser)]
#[command(
    name = "streams",
    version,
    max_term_width = 100,
    subcommand_required = true,
    arg_required_else_help = false
)]
pub(crate) struct Cli {
    /// The broker's data dir, or an application's data dir whose broker is in DIR/broker.
    /// This or --bootstrap-server is required.
    #[arg(long, global = true, value_name = "DIR", env = "STREAMS_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// A Kafka cluster to work on instead of a data dir: HOST:PORT of one of its brokers, or
    /// several separated by commas (as kafka-topics.sh takes it). Not with --data-dir, nor
    /// for serve, topics compact and topics repair.
    #[arg(long, global = true, value_name = "HOST:PORT", env = "STREAMS_BOOTSTRAP_SERVER",
          value_parser = parse_bootstrap_servers)]
    pub(crate) bootstrap_server: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create, list, describe, delete and compact topics.
    #[command(subcommand_required = true, arg_required_else_help = false)]
    Topics {
        /// The topic command.
        #[command(subcommand)]
        command: TopicsCommand,
    },
    /// Write lines from stdin as records (like kafka-console-producer).
    Produce(ProduceArgs),
    /// Print records to stdout (like kafka-console-consumer).
    Consume(ConsumeArgs),
    /// List, describe, reset the offsets of and delete consumer groups (like
    /// kafka-consumer-groups).
    #[command(subcommand_required = true, arg_required_else_help = false)]
    Groups {
        /// The group command.
        #[command(subcommand)]
        command: GroupsCommand,
    },
    /// Serve the data dir's broker over TCP in the Kafka wire protocol, until Ctrl-C or
    /// SIGTERM (like kafka-server-start).
    Serve(ServeArgs),
}

/// `streams serve`.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Where to listen, ADDRESS:PORT (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9092")]
    pub(crate) listen: std::net::SocketAddr,
    /// The HOST:PORT clients are told to connect to (advertised.listeners; default: the
    /// listen address).
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub(crate) advertised_listener: Option<(String, u16)>,
    /// Listen on an address other than loopback. There is no authentication or TLS yet:
    /// anyone who can reach the port can read and write every topic.
    #[arg(long)]
    pub(crate) allow_non_loopback: bool,
    /// A broker config by Kafka's name: num.partitions, auto.create.topics.enable,
    /// socket.request.max.bytes, max.connections, connections.max.idle.ms,
    /// group.initial.rebalance.delay.ms, group.min.session.timeout.ms,
    /// group.max.session.timeout.ms; repeatable.
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config)]
    pub(crate) configs: Vec<(String, String)>,
}

fn parse_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?} is not HOST:PORT"))?;
    if host.is_empty() {
        return Err(format!("{s:?} has no host"));
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("{s:?}: the port must be a number from 0 to 65535"))?;
    Ok((host.to_owned(), port))
}

/// Checks a `--bootstrap-server` list, `HOST:PORT[,HOST:PORT...]`; returns it without
/// spaces around the entries.
fn parse_bootstrap_servers(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        // As an empty STREAMS_DATA_DIR, an empty value is no value.
        return Ok(String::new());
    }
    let mut servers = Vec::new();
    for entry in s.split(',').map(str::trim) {
        if entry.is_empty() {
            return Err(format!(
                "{s:?} has an empty entry; expected HOST:PORT[,HOST:PORT...]"
            ));
        }
        let (_, port) = parse_host_port(entry)?;
        if port == 0 {
            return Err(format!("{entry:?}: the port must be from 1 to 65535"));
        }
        servers.push(entry);
    }
    Ok(servers.join(","))
}

/// `streams groups ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum GroupsCommand {
    /// List group ids, one per line.
    List,
    /// Show a group's state and, per partition, its committed offset, log end offset, lag and
    /// member.
    Describe {
        /// The group id.
        #[arg(long, value_parser = parse_non_empty)]
        group: String,
    },
    /// Move a group's committed offsets for every partition of a topic (the group must have
    /// no active member).
    ResetOffsets(ResetOffsetsArgs),
    /// Delete a group and its committed offsets (the group must have no active member).
    Delete {
        /// The group id.
        #[arg(long, value_parser = parse_non_empty)]
        group: String,
    },
}

/// `streams groups reset-offsets`.
#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("target")
        .required(true)
        .args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime", "by_duration"])
))]
pub(crate) struct ResetOffsetsArgs {
    /// The group id.
    #[arg(long, value_parser = parse_non_empty)]
    pub(crate) group: String,
    /// The topic whose partitions are reset (all of them).
    #[arg(long, value_parser = parse_topic)]
    pub(crate) topic: String,
    /// To the log start offset of each partition.
    #[arg(long)]
    pub(crate) to_earliest: bool,
    /// To the log end offset of each partition.
    #[arg(long)]
    pub(crate) to_latest: bool,
    /// To offset N in each partition (clamped to the partition's log start and end).
    #[arg(long, value_name = "N")]
    pub(crate) to_offset: Option<u64>,
    /// By N from the committed offset of each partition, negative to go back (clamped to the
    /// partition's log start and end).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(crate) shift_by: Option<i64>,
    /// To the earliest offset whose timestamp is at or after DATETIME in each partition (the
    /// log end offset if every record is older). ISO 8601 as Kafka takes it:
    /// YYYY-MM-DDTHH:mm:SS.sss with an optional zone (Z, +02:00); without a zone, UTC.
    #[arg(long, value_name = "DATETIME", value_parser = iso8601::parse_datetime)]
    pub(crate) to_datetime: Option<i64>,
    /// As --to-datetime, at the time now minus DURATION: ISO 8601 PnDTnHnMnS, e.g. PT1H30M or
    /// P1DT2H.
    #[arg(long, value_name = "DURATION", value_parser = iso8601::parse_duration)]
    pub(crate) by_duration: Option<Duration>,
    /// Only print the new offsets; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

impl ResetOffsetsArgs {
    /// The reset the flags ask for; `now_ms` (epoch milliseconds) is the time
    /// `--by-duration` counts back from.
    pub(crate) fn target(&self, now_ms: i64) -> ResetTarget {
        if let Some(n) = self.to_offset {
            ResetTarget::Spec(OffsetResetSpec::ToOffset(n))
        } else if let Some(n) = self.shift_by {
            ResetTarget::Spec(OffsetResetSpec::ShiftBy(n))
        } else if self.to_latest {
            ResetTarget::Spec(OffsetResetSpec::ToLatest)
        } else if let Some(ts) = self.to_datetime {
            ResetTarget::Timestamp(ts)
        } else if let Some(duration) = self.by_duration {
            // The parser keeps durations within an i64 of milliseconds.
            let back = i64::try_from(duration.as_millis()).unwrap_or(i64::MAX);
            ResetTarget::Timestamp(now_ms.saturating_sub(back))
        } else {
            // clap makes one of the six flags required; this is --to-earliest.
            ResetTarget::Spec(OffsetResetSpec::ToEarliest)
        }
    }
}

/// Where `groups reset-offsets` moves each partition's committed offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResetTarget {
    /// A target the broker's own reset computes.
    Spec(OffsetResetSpec),
    /// The earliest offset whose timestamp is at or after this time (epoch milliseconds), or
    /// the log end offset if every record is older (`--to-datetime`, `--by-duration`).
    Timestamp(i64),
}

/// `streams topics ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum TopicsCommand {
    /// Create a topic.
    Create {
        /// Topic name.
        #[arg(long, value_parser = parse_topic)]
        topic: String,
        /// Number of partitions (default: the broker's num.partitions, 1).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        partitions: Option<u32>,
        /// A topic config by Kafka's name, e.g. cleanup.policy=compact; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_config)]
        configs: Vec<(String, String)>,
        /// Succeed without changes if the topic exists.
        #[arg(long)]
        if_not_exists: bool,
    },
    /// List topic names, one per line.
    List,
    /// Show partitions (offsets, size, segments) and configs of one topic or all.
    Describe {
        /// The topic to describe (default: every topic).
        #[arg(long, value_parser = parse_topic)]
        topic: Option<String>,
    },
    /// Delete a topic and its data.
    Delete {
        /// Topic name.
        #[arg(long, value_parser = parse_topic)]
        topic: String,
        /// Succeed without changes if the topic does not exist.
        #[arg(long)]
        if_exists: bool,
    },
    /// Compact a topic now, whatever its dirty ratio (cleanup.policy must include compact).
    Compact {
        /// Topic name.
        #[arg(long, value_parser = parse_topic)]
        topic: String,
    },
    /// Report what repairing an offline partition would drop; with --accept-data-loss,
    /// repair it by truncating its log at the last good batch.
    Repair {
        /// Topic name (internal topics such as __consumer_offsets included).
        #[arg(long, value_parser = parse_topic)]
        topic: String,
        /// The offline partition.
        #[arg(long, value_name = "P")]
        partition: u32,
        /// Carry out the repair, dropping every offset from the damage on.
        #[arg(long)]
        accept_data_loss: bool,
    },
}

/// `streams produce`.
#[derive(Debug, Args)]
pub(crate) struct ProduceArgs {
    /// Topic to write to.
    #[arg(long, value_parser = parse_topic)]
    pub(crate) topic: String,
    /// Split each line into key and value at the first SEP (without it, lines are values with
    /// a null key).
    #[arg(long, value_name = "SEP", value_parser = parse_non_empty)]
    pub(crate) key_separator: Option<String>,
    /// Create the topic with N partitions if it does not exist.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) partitions: Option<u32>,
    /// A key or value equal to this text is sent as null (a tombstone for a value).
    #[arg(long, value_name = "TEXT")]
    pub(crate) null_marker: Option<String>,
    /// How keys are written on stdin.
    #[arg(long, value_enum, default_value_t = Format::String)]
    pub(crate) key_format: Format,
    /// How values are written on stdin.
    #[arg(long, value_enum, default_value_t = Format::String)]
    pub(crate) value_format: Format,
    /// Records per send.
    #[arg(long, value_name = "N", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) batch_size: u32,
    /// The codec of the batches written (the producer's compression.type); a topic whose
    /// own compression.type is a codec stores them with that one instead.
    #[arg(long, value_enum, value_name = "CODEC", default_value_t = CompressionType::None)]
    pub(crate) compression_type: CompressionType,
}

/// `produce --compression-type`, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CompressionType {
    /// No compression (Kafka's default).
    #[value(name = "none")]
    None,
    /// gzip.
    #[value(name = "gzip")]
    Gzip,
    /// Snappy.
    #[value(name = "snappy")]
    Snappy,
    /// LZ4.
    #[value(name = "lz4")]
    Lz4,
    /// Zstandard.
    #[value(name = "zstd")]
    Zstd,
}

impl From<CompressionType> for broker_embedded::Compression {
    fn from(codec: CompressionType) -> Self {
        match codec {
            CompressionType::None => broker_embedded::Compression::None,
            CompressionType::Gzip => broker_embedded::Compression::Gzip,
            CompressionType::Snappy => broker_embedded::Compression::Snappy,
            CompressionType::Lz4 => broker_embedded::Compression::Lz4,
            CompressionType::Zstd => broker_embedded::Compression::Zstd,
        }
    }
}

/// `streams consume`.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// Topic to read.
    #[arg(long, value_parser = parse_topic)]
    pub(crate) topic: String,
    /// Start at the earliest record instead of the end (only new records); with --group, only
    /// in partitions the group has no committed offset for.
    #[arg(long, conflicts_with = "offset")]
    pub(crate) from_beginning: bool,
    /// Read only this partition.
    #[arg(long, value_name = "P")]
    pub(crate) partition: Option<u32>,
    /// Where to start in --partition: an offset, earliest or latest.
    #[arg(long, value_name = "O", requires = "partition")]
    pub(crate) offset: Option<StartOffset>,
    /// Consume as a member of consumer group G: start at the group's committed offsets and
    /// commit the offsets after the printed records before exiting.
    #[arg(long, value_name = "G", value_parser = parse_non_empty,
          conflicts_with_all = ["partition", "offset"])]
    pub(crate) group: Option<String>,
    /// Which records of transactions to read.
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = IsolationLevel::ReadUncommitted)]
    pub(crate) isolation_level: IsolationLevel,
    /// Exit after printing N records.
    #[arg(long, value_name = "N")]
    pub(crate) max_messages: Option<u64>,
    /// Exit when no new record came for MS milliseconds (default: wait until --max-messages
    /// or Ctrl-C).
    #[arg(long, value_name = "MS")]
    pub(crate) timeout_ms: Option<u64>,
    /// Print each record's key.
    #[arg(long)]
    pub(crate) print_key: bool,
    /// Print each record's partition.
    #[arg(long)]
    pub(crate) print_partition: bool,
    /// Print each record's offset.
    #[arg(long)]
    pub(crate) print_offset: bool,
    /// Print each record's timestamp (epoch milliseconds).
    #[arg(long)]
    pub(crate) print_timestamp: bool,
    /// How keys are shown.
    #[arg(long, value_enum, default_value_t = Format::String)]
    pub(crate) key_format: Format,
    /// How values are shown.
    #[arg(long, value_enum, default_value_t = Format::String)]
    pub(crate) value_format: Format,
}

/// `consume --isolation-level`, with Kafka's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum IsolationLevel {
    /// Every record, including those of open and aborted transactions (Kafka's default).
    #[value(name = "read_uncommitted")]
    ReadUncommitted,
    /// Only records below the last stable offset (the start of the earliest open
    /// transaction), without those of aborted transactions.
    #[value(name = "read_committed")]
    ReadCommitted,
}

impl From<IsolationLevel> for broker_embedded::IsolationLevel {
    fn from(level: IsolationLevel) -> Self {
        match level {
            IsolationLevel::ReadUncommitted => broker_embedded::IsolationLevel::ReadUncommitted,
            IsolationLevel::ReadCommitted => broker_embedded::IsolationLevel::ReadCommitted,
        }
    }
}

/// Where `consume --offset` starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartOffset {
    /// The log start offset.
    Earliest,
    /// The log end offset: only new records.
    Latest,
    /// This offset.
    At(u64),
}

impl FromStr for StartOffset {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "earliest" => Ok(StartOffset::Earliest),
            "latest" => Ok(StartOffset::Latest),
            _ => s
                .parse::<u64>()
                .map(StartOffset::At)
                .map_err(|_| "expected a non-negative offset, earliest or latest".to_owned()),
        }
    }
}

/// Checks a topic name against Kafka's rules.
fn parse_topic(s: &str) -> Result<String, String> {
    broker_embedded::validate_topic_name(s)
        .map(|()| s.to_owned())
        .map_err(|e| e.to_string())
}

/// Splits `key=value` at the first `=`.
fn parse_config(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err("expected KEY=VALUE, e.g. cleanup.policy=compact".to_owned()),
    }
}

fn parse_non_empty(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;
    use clap::CommandFactory;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("streams").chain(args.iter().copied()))
    }

    fn ok(args: &[&str]) -> Cli {
        match parse(args) {
            Ok(cli) => cli,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    fn err(args: &[&str]) -> clap::Error {
        match parse(args) {
            Ok(cli) => panic!("{args:?} parsed: {cli:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn data_dir_is_global() {
        let cli = ok(&["topics", "list", "--data-dir", "/d"]);
        assert_eq!(cli.data_dir, Some(PathBuf::from("/d")));
        let cli = ok(&["--data-dir", "/d", "topics", "list"]);
        assert_eq!(cli.data_dir, Some(PathBuf::from("/d")));
    }

    #[test]
    fn bootstrap_server_is_global_and_takes_a_list() {
        let cli = ok(&["topics", "list", "--bootstrap-server", "k1:9092"]);
        assert_eq!(cli.bootstrap_server.as_deref(), Some("k1:9092"));
        let cli = ok(&[
            "--bootstrap-server",
            "k1:9092, k2:9093,[::1]:9094",
            "groups",
            "list",
        ]);
        assert_eq!(
            cli.bootstrap_server.as_deref(),
            Some("k1:9092,k2:9093,[::1]:9094")
        );
        assert_eq!(parse_bootstrap_servers(" "), Ok(String::new()));
        for bad in [
            "k1", "k1:", ":9092", "k1:x", "k1:0", "k1:70000", "k1:9092,", ",k1:1",
        ] {
            let e = err(&["--bootstrap-server", bad, "topics", "list"]);
            assert_eq!(e.kind(), ErrorKind::ValueValidation, "{bad}");
        }
    }

    #[test]
    fn topics_create_takes_partitions_and_configs() {
        let cli = ok(&[
            "topics",
            "create",
            "--topic",
            "t",
            "--partitions",
            "3",
            "--config",
            "cleanup.policy=compact",
            "--config",
            "segment.bytes = 1024",
            "--config",
            "x=a=b",
        ]);
        let Command::Topics {
            command:
                TopicsCommand::Create {
                    topic,
                    partitions,
                    configs,
                    if_not_exists,
                },
        } = cli.command
        else {
            panic!("not topics create: {cli:?}");
        };
        assert_eq!(topic, "t");
        assert_eq!(partitions, Some(3));
        assert!(!if_not_exists);
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            configs,
            [
                pair("cleanup.policy", "compact"),
                pair("segment.bytes", "1024"),
                pair("x", "a=b")
            ]
        );
    }

    #[test]
    fn bad_topics_arguments_are_usage_errors() {
        let e = err(&["topics", "create", "--topic", "t", "--config", "nokey"]);
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert!(e.to_string().contains("KEY=VALUE"), "{e}");
        let e = err(&["topics", "create", "--topic", "t", "--config", "=1"]);
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        let e = err(&["topics", "create", "--topic", "a b"]);
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        assert!(e.to_string().contains("invalid topic name"), "{e}");
        let e = err(&["topics", "create", "--topic", "t", "--partitions", "0"]);
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        let e = err(&["topics", "create"]);
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let e = err(&["topics"]);
        assert_eq!(e.kind(), ErrorKind::MissingSubcommand);
    }

    #[test]
    fn produce_defaults_and_formats() {
        let cli = ok(&["produce", "--topic", "t"]);
        let Command::Produce(p) = cli.command else {
            panic!("not produce");
        };
        assert_eq!(p.key_separator, None);
        assert_eq!(p.partitions, None);
        assert_eq!(p.key_format, Format::String);
        assert_eq!(p.value_format, Format::String);
        assert_eq!(p.batch_size, 1000);
        assert_eq!(p.compression_type, CompressionType::None);

        let cli = ok(&[
            "produce",
            "--topic",
            "t",
            "--key-separator",
            ":",
            "--partitions",
            "2",
            "--key-format",
            "i64",
            "--value-format",
            "json",
            "--null-marker",
            "NULL",
            "--compression-type",
            "lz4",
        ]);
        let Command::Produce(p) = cli.command else {
            panic!("not produce");
        };
        assert_eq!(p.key_separator.as_deref(), Some(":"));
        assert_eq!(p.partitions, Some(2));
        assert_eq!(p.key_format, Format::I64);
        assert_eq!(p.value_format, Format::Json);
        assert_eq!(p.null_marker.as_deref(), Some("NULL"));
        assert_eq!(p.compression_type, CompressionType::Lz4);
        for (name, codec) in [
            ("none", broker_embedded::Compression::None),
            ("gzip", broker_embedded::Compression::Gzip),
            ("snappy", broker_embedded::Compression::Snappy),
            ("lz4", broker_embedded::Compression::Lz4),
            ("zstd", broker_embedded::Compression::Zstd),
        ] {
            let cli = ok(&["produce", "--topic", "t", "--compression-type", name]);
            let Command::Produce(p) = cli.command else {
                panic!("not produce");
            };
            assert_eq!(
                broker_embedded::Compression::from(p.compression_type),
                codec
            );
        }
        let e = err(&["produce", "--topic", "t", "--compression-type", "brotli"]);
        assert_eq!(e.kind(), ErrorKind::InvalidValue);

        let e = err(&["produce", "--topic", "t", "--key-separator", ""]);
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        let e = err(&["produce", "--topic", "t", "--value-format", "xml"]);
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
    }

    #[test]
    fn consume_flags() {
        let cli = ok(&[
            "consume",
            "--topic",
            "t",
            "--from-beginning",
            "--print-key",
            "--print-partition",
            "--print-offset",
            "--print-timestamp",
            "--max-messages",
            "5",
            "--timeout-ms",
            "100",
            "--value-format",
            "hex",
        ]);
        let Command::Consume(c) = cli.command else {
            panic!("not consume");
        };
        assert!(c.from_beginning && c.print_key && c.print_partition);
        assert!(c.print_offset && c.print_timestamp);
        assert_eq!(c.max_messages, Some(5));
        assert_eq!(c.timeout_ms, Some(100));
        assert_eq!(c.value_format, Format::Hex);
        assert_eq!(c.key_format, Format::String);
        assert_eq!(c.offset, None);
    }

    #[test]
    fn consume_offset_needs_a_partition_and_excludes_from_beginning() {
        for (text, want) in [
            ("7", StartOffset::At(7)),
            ("earliest", StartOffset::Earliest),
            ("latest", StartOffset::Latest),
        ] {
            let cli = ok(&[
                "consume",
                "--topic",
                "t",
                "--partition",
                "1",
                "--offset",
                text,
            ]);
            let Command::Consume(c) = cli.command else {
                panic!("not consume");
            };
            assert_eq!(c.partition, Some(1));
            assert_eq!(c.offset, Some(want));
        }
        let e = err(&["consume", "--topic", "t", "--offset", "1"]);
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let e = err(&[
            "consume",
            "--topic",
            "t",
            "--partition",
            "0",
            "--offset",
            "1",
            "--from-beginning",
        ]);
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        for bad in ["-1", "first", ""] {
            let e = err(&[
                "consume",
                "--topic",
                "t",
                "--partition",
                "0",
                "--offset",
                bad,
            ]);
            assert!(
                matches!(
                    e.kind(),
                    ErrorKind::ValueValidation | ErrorKind::UnknownArgument
                ),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn consume_group_and_isolation_level() {
        let cli = ok(&[
            "consume",
            "--topic",
            "t",
            "--group",
            "g",
            "--from-beginning",
        ]);
        let Command::Consume(c) = cli.command else {
            panic!("not consume");
        };
        assert_eq!(c.group.as_deref(), Some("g"));
        assert!(c.from_beginning);
        assert_eq!(c.isolation_level, IsolationLevel::ReadUncommitted);
        for (text, want) in [
            ("read_committed", IsolationLevel::ReadCommitted),
            ("read_uncommitted", IsolationLevel::ReadUncommitted),
        ] {
            let cli = ok(&["consume", "--topic", "t", "--isolation-level", text]);
            let Command::Consume(c) = cli.command else {
                panic!("not consume");
            };
            assert_eq!(c.isolation_level, want);
        }
        let e = err(&[
            "consume",
            "--topic",
            "t",
            "--isolation-level",
            "read-committed",
        ]);
        assert_eq!(e.kind(), ErrorKind::InvalidValue);
        let e = err(&[
            "consume",
            "--topic",
            "t",
            "--group",
            "g",
            "--partition",
            "0",
        ]);
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        let e = err(&[
            "consume",
            "--topic",
            "t",
            "--group",
            "g",
            "--partition",
            "0",
            "--offset",
            "1",
        ]);
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        let e = err(&["consume", "--topic", "t", "--group", ""]);
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
    }

    #[test]
    fn groups_commands() {
        let cli = ok(&["groups", "list"]);
        assert!(matches!(
            cli.command,
            Command::Groups {
                command: GroupsCommand::List
            }
        ));
        let cli = ok(&["groups", "describe", "--group", "g"]);
        let Command::Groups {
            command: GroupsCommand::Describe { group },
        } = cli.command
        else {
            panic!("not describe");
        };
        assert_eq!(group, "g");
        let e = err(&["groups", "describe"]);
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let e = err(&["groups", "delete"]);
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let e = err(&["groups"]);
        assert_eq!(e.kind(), ErrorKind::MissingSubcommand);
    }

    #[test]
    fn reset_offsets_takes_exactly_one_target() {
        use ResetTarget::{Spec, Timestamp};
        /// The time `--by-duration` counts back from in this test.
        const NOW: i64 = 1_714_557_600_000;
        let base = ["groups", "reset-offsets", "--group", "g", "--topic", "t"];
        let spec = |extra: &[&str]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            let cli = ok(&args);
            let Command::Groups {
                command: GroupsCommand::ResetOffsets(r),
            } = cli.command
            else {
                panic!("not reset-offsets");
            };
            (r.target(NOW), r.dry_run)
        };
        assert_eq!(
            spec(&["--to-earliest"]),
            (Spec(OffsetResetSpec::ToEarliest), false)
        );
        assert_eq!(
            spec(&["--to-latest", "--dry-run"]),
            (Spec(OffsetResetSpec::ToLatest), true)
        );
        assert_eq!(
            spec(&["--to-offset", "7"]),
            (Spec(OffsetResetSpec::ToOffset(7)), false)
        );
        assert_eq!(
            spec(&["--shift-by", "-3"]),
            (Spec(OffsetResetSpec::ShiftBy(-3)), false)
        );
        assert_eq!(
            spec(&["--shift-by=-3"]),
            (Spec(OffsetResetSpec::ShiftBy(-3)), false)
        );
        assert_eq!(
            spec(&["--shift-by", "2"]),
            (Spec(OffsetResetSpec::ShiftBy(2)), false)
        );
        assert_eq!(
            spec(&["--to-datetime", "2024-05-01T10:00:00.000Z"]),
            (Timestamp(NOW), false)
        );
        assert_eq!(
            spec(&[
                "--to-datetime",
                "2024-05-01T12:00:00.000+02:00",
                "--dry-run"
            ]),
            (Timestamp(NOW), true)
        );
        assert_eq!(
            spec(&["--to-datetime", "2024-05-01T10:00:01.500"]),
            (Timestamp(NOW + 1_500), false)
        );
        assert_eq!(
            spec(&["--by-duration", "PT1H30M"]),
            (Timestamp(NOW - 90 * 60_000), false)
        );
        assert_eq!(
            spec(&["--by-duration", "P1DT2H"]),
            (Timestamp(NOW - 26 * 3_600_000), false)
        );
        assert_eq!(spec(&["--by-duration", "PT0S"]), (Timestamp(NOW), false));

        let with = |extra: &[&str]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            err(&args)
        };
        assert_eq!(with(&[]).kind(), ErrorKind::MissingRequiredArgument);
        assert_eq!(
            with(&["--to-earliest", "--to-latest"]).kind(),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            with(&["--to-offset", "1", "--shift-by", "1"]).kind(),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            with(&[
                "--to-datetime",
                "2024-05-01T10:00:00.000",
                "--by-duration",
                "PT1H"
            ])
            .kind(),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            with(&["--to-earliest", "--by-duration", "PT1H"]).kind(),
            ErrorKind::ArgumentConflict
        );
        assert_eq!(
            with(&["--to-offset", "-1"]).kind(),
            ErrorKind::UnknownArgument
        );
        assert_eq!(
            with(&["--shift-by", "x"]).kind(),
            ErrorKind::ValueValidation
        );
        let e = err(&["groups", "reset-offsets", "--topic", "t", "--to-latest"]);
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
    }

    #[test]
    fn bad_datetimes_and_durations_name_the_value_and_the_format() {
        let base = ["groups", "reset-offsets", "--group", "g", "--topic", "t"];
        for (flag, value, format) in [
            (
                "--to-datetime",
                "2024-05-01 10:00:00",
                iso8601::DATETIME_FORMAT,
            ),
            (
                "--to-datetime",
                "2024-13-01T10:00:00.000",
                iso8601::DATETIME_FORMAT,
            ),
            ("--by-duration", "1h", iso8601::DURATION_FORMAT),
            ("--by-duration", "PT", iso8601::DURATION_FORMAT),
        ] {
            let args: Vec<&str> = base.iter().copied().chain([flag, value]).collect();
            let e = err(&args);
            assert_eq!(e.kind(), ErrorKind::ValueValidation, "{value}");
            let text = e.to_string();
            assert!(text.contains(&format!("'{value}'")), "{text}");
            assert!(text.contains(flag), "{text}");
            assert!(text.contains(format), "{text}");
        }
    }
}
