//! The command line, with the flag names of Kafka's console tools.

use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};

use crate::formats::Format;

/// Manage topics and produce and consume records in an embedded broker's data dir.
#[derive(Debug, Parser)]
#[command(
    name = "streams",
    version,
    max_term_width = 100,
    subcommand_required = true,
    arg_required_else_help = false
)]
pub(crate) struct Cli {
    /// The broker's data dir (required).
    #[arg(long, global = true, value_name = "DIR", env = "STREAMS_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,

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
}

/// `streams consume`.
#[derive(Debug, Args)]
pub(crate) struct ConsumeArgs {
    /// Topic to read.
    #[arg(long, value_parser = parse_topic)]
    pub(crate) topic: String,
    /// Start at the earliest record instead of the end (only new records).
    #[arg(long, conflicts_with = "offset")]
    pub(crate) from_beginning: bool,
    /// Read only this partition.
    #[arg(long, value_name = "P")]
    pub(crate) partition: Option<u32>,
    /// Where to start in --partition: an offset, earliest or latest.
    #[arg(long, value_name = "O", requires = "partition")]
    pub(crate) offset: Option<StartOffset>,
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
        ]);
        let Command::Produce(p) = cli.command else {
            panic!("not produce");
        };
        assert_eq!(p.key_separator.as_deref(), Some(":"));
        assert_eq!(p.partitions, Some(2));
        assert_eq!(p.key_format, Format::I64);
        assert_eq!(p.value_format, Format::Json);
        assert_eq!(p.null_marker.as_deref(), Some("NULL"));

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
}
