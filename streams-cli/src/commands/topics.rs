//! `streams topics create | list | describe | delete | compact`.

use std::io::Write;
use std::path::Path;

use anyhow::Result;
use broker_embedded::{
    Broker, BrokerError, CleanStats, NewTopic, RepairReport, TopicConfig, TopicDescription,
};

use super::{render_table, with_broker, write_out, Align, DirMode, Outcome};
use crate::args::TopicsCommand;

/// Runs one `topics` command, writing its report to `out`.
pub(crate) async fn run(
    dir: &Path,
    command: TopicsCommand,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let mode = match command {
        TopicsCommand::Create { .. } => DirMode::Create,
        TopicsCommand::List | TopicsCommand::Describe { .. } => DirMode::ReadOnly,
        TopicsCommand::Repair {
            accept_data_loss: false,
            ..
        } => DirMode::ReadOnly,
        _ => DirMode::MustExist,
    };
    let text = with_broker(dir, mode, |broker| execute(broker, command)).await?;
    write_out(out, &text)?;
    Ok(Outcome::Done)
}

async fn execute(broker: Broker, command: TopicsCommand) -> Result<String> {
    match command {
        TopicsCommand::Create {
            topic,
            partitions,
            configs,
            if_not_exists,
        } => {
            let new = NewTopic {
                name: topic.clone(),
                partitions,
                configs,
            };
            match broker.create_topic(new).await {
                Ok(()) => Ok(format!("Created topic {topic}.\n")),
                Err(BrokerError::TopicExists { .. }) if if_not_exists => {
                    Ok(format!("Topic {topic} already exists; nothing changed.\n"))
                }
                Err(e) => Err(e.into()),
            }
        }
        TopicsCommand::List => {
            let mut text = String::new();
            for name in broker.list_topics().await? {
                text.push_str(&name);
                text.push('\n');
            }
            Ok(text)
        }
        TopicsCommand::Describe { topic } => {
            let names = match topic {
                Some(name) => vec![name],
                None => broker.list_topics().await?,
            };
            let defaults = broker.config().default_topic_config.clone();
            let mut text = String::new();
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                let description = broker.describe_topic(name).await?;
                text.push_str(&render_description(&description, &defaults));
            }
            Ok(text)
        }
        TopicsCommand::Delete { topic, if_exists } => match broker.delete_topic(&topic).await {
            Ok(()) => Ok(format!("Deleted topic {topic}.\n")),
            Err(BrokerError::UnknownTopic { .. }) if if_exists => {
                Ok(format!("Topic {topic} does not exist; nothing changed.\n"))
            }
            Err(e) => Err(e.into()),
        },
        TopicsCommand::Compact { topic } => {
            let stats = broker.compact_topic(&topic).await?;
            Ok(render_clean_stats(&topic, &stats))
        }
        TopicsCommand::Repair {
            topic,
            partition,
            accept_data_loss,
        } => {
            let report = broker
                .repair_partition(&topic, partition, accept_data_loss)
                .await?;
            render_repair(&format!("{topic}-{partition}"), &report)
        }
    }
}

/// What `topics repair` found or did, in words; an unrepairable partition is an error.
fn render_repair(partition: &str, report: &RepairReport) -> Result<String> {
    match report {
        RepairReport::Online => Ok(format!(
            "Partition {partition} is online; nothing to repair.\n"
        )),
        RepairReport::Unrepairable { reason } => anyhow::bail!(
            "partition {partition} cannot be repaired by truncation: {reason}; move the \
             damaged file aside by hand or restore the partition dir from a backup"
        ),
        RepairReport::Repairable {
            reason,
            first_dropped,
            dropped_end,
            dropped_bytes,
            files,
            repaired,
        } => {
            let dropped = if dropped_end > first_dropped {
                format!(
                    "offsets {first_dropped} to {} ({dropped_bytes} bytes)",
                    dropped_end - 1
                )
            } else {
                format!("{dropped_bytes} unreadable bytes from offset {first_dropped} on")
            };
            let mut text = if *repaired {
                format!(
                    "Repaired partition {partition}: dropped {dropped}; its log now ends at \
                     offset {first_dropped}.\nIt was offline: {reason}\n"
                )
            } else {
                format!(
                    "Partition {partition} is offline: {reason}\nA repair truncates its log at \
                     offset {first_dropped} and drops {dropped}.\n"
                )
            };
            text.push_str(if *repaired {
                "Files truncated or removed:\n"
            } else {
                "Files it truncates or removes:\n"
            });
            for file in files {
                text.push_str(&format!("  {}\n", file.display()));
            }
            if !*repaired {
                text.push_str(
                    "Nothing was changed. Run again with --accept-data-loss to repair.\n",
                );
            }
            Ok(text)
        }
    }
}

/// A topic's partitions and configs as aligned tables. A config's source is `default` when
/// its value is the broker's default for new topics, else `topic`.
fn render_description(description: &TopicDescription, defaults: &TopicConfig) -> String {
    let mut text = format!(
        "Topic: {}  Partitions: {}\n",
        description.name,
        description.partitions.len()
    );
    let rows: Vec<Vec<String>> = description
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.to_string(),
                p.log_start_offset.to_string(),
                p.log_end_offset.to_string(),
                p.size_bytes.to_string(),
                p.segment_count.to_string(),
            ]
        })
        .collect();
    text.push_str(&render_table(
        &[
            ("PARTITION", Align::Right),
            ("LOG-START-OFFSET", Align::Right),
            ("LOG-END-OFFSET", Align::Right),
            ("SIZE-BYTES", Align::Right),
            ("SEGMENTS", Align::Right),
        ],
        &rows,
    ));
    for p in &description.partitions {
        if let Some(reason) = &p.offline {
            text.push_str(&format!("OFFLINE partition {}: {reason}\n", p.partition));
        }
    }
    text.push('\n');
    let defaults = defaults.to_pairs();
    let rows: Vec<Vec<String>> = description
        .config
        .to_pairs()
        .into_iter()
        .map(|(key, value)| {
            let source = if defaults.get(key) == Some(&value) {
                "default"
            } else {
                "topic"
            };
            vec![key.to_owned(), value, source.to_owned()]
        })
        .collect();
    text.push_str(&render_table(
        &[
            ("CONFIG", Align::Left),
            ("VALUE", Align::Left),
            ("SOURCE", Align::Left),
        ],
        &rows,
    ));
    text
}

fn render_clean_stats(topic: &str, stats: &CleanStats) -> String {
    if stats.segments_cleaned == 0 {
        return format!(
            "Compacted topic {topic}: nothing to clean (the active segment and records younger \
             than min.compaction.lag.ms are left alone).\n"
        );
    }
    format!(
        "Compacted topic {topic}: {} segments cleaned, {} records read, {} records removed, \
         {} -> {} bytes.\n",
        stats.segments_cleaned,
        stats.records_read,
        stats.records_removed,
        stats.bytes_before,
        stats.bytes_after
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use broker_embedded::PartitionDescription;

    #[test]
    fn describe_shows_partitions_and_config_sources() {
        let mut config = TopicConfig::default();
        config.set("cleanup.policy", "compact").unwrap();
        let description = TopicDescription {
            name: "orders".into(),
            partitions: vec![
                PartitionDescription {
                    partition: 0,
                    log_start_offset: 0,
                    log_end_offset: 12,
                    size_bytes: 4096,
                    segment_count: 2,
                    offline: None,
                },
                PartitionDescription {
                    partition: 1,
                    log_start_offset: 3,
                    log_end_offset: 5,
                    size_bytes: 80,
                    segment_count: 1,
                    offline: None,
                },
            ],
            config,
        };
        let text = render_description(&description, &TopicConfig::default());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Topic: orders  Partitions: 2");
        assert_eq!(
            lines[1],
            "PARTITION  LOG-START-OFFSET  LOG-END-OFFSET  SIZE-BYTES  SEGMENTS"
        );
        assert_eq!(
            lines[2],
            "        0                 0              12        4096         2"
        );
        assert_eq!(
            lines[3],
            "        1                 3               5          80         1"
        );
        assert_eq!(lines[4], "");
        assert!(lines[5].starts_with("CONFIG"), "{text}");
        assert!(
            lines
                .iter()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["cleanup.policy", "compact", "topic"]),
            "{text}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.split_whitespace().collect::<Vec<_>>()
                    == ["retention.ms", "604800000", "default"]),
            "{text}"
        );
        assert_eq!(lines.len(), 6 + TopicConfig::default().to_pairs().len());
    }

    #[test]
    fn clean_stats_say_what_happened() {
        let stats = CleanStats {
            segments_cleaned: 3,
            records_read: 10,
            records_removed: 4,
            bytes_before: 900,
            bytes_after: 500,
        };
        assert_eq!(
            render_clean_stats("t", &stats),
            "Compacted topic t: 3 segments cleaned, 10 records read, 4 records removed, \
             900 -> 500 bytes.\n"
        );
        assert!(render_clean_stats("t", &CleanStats::default()).contains("nothing to clean"));
    }
}
