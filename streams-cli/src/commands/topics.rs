//! `streams topics create | list | describe | delete | compact | repair`.

use std::io::Write;

use anyhow::{anyhow, Result};
use broker_embedded::{Broker, CleanStats, NewTopic, RepairReport};

use super::{render_table, with_backend, write_out, Align, DirMode, Outcome};
use crate::args::TopicsCommand;
use crate::backend::{is_topic_exists, is_unknown_topic, Backend, Target, TopicView};

/// What a cell shows when there is no value (a size the protocol does not tell).
const NONE: &str = "-";

/// Runs one `topics` command, writing its report to `out`.
pub(crate) async fn run(
    target: &Target,
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
    let text = with_backend(target, mode, |backend| execute(backend, command)).await?;
    write_out(out, &text)?;
    Ok(Outcome::Done)
}

async fn execute(backend: Backend, command: TopicsCommand) -> Result<String> {
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
            match backend.create_topic(new).await {
                Ok(()) => Ok(format!("Created topic {topic}.\n")),
                Err(e) if if_not_exists && is_topic_exists(&e) => {
                    Ok(format!("Topic {topic} already exists; nothing changed.\n"))
                }
                Err(e) => Err(e),
            }
        }
        TopicsCommand::List => {
            let mut text = String::new();
            for name in backend.list_topics().await? {
                text.push_str(&name);
                text.push('\n');
            }
            Ok(text)
        }
        TopicsCommand::Describe { topic } => {
            let names = match topic {
                Some(name) => vec![name],
                None => backend.list_topics().await?,
            };
            let mut text = String::new();
            for (i, name) in names.iter().enumerate() {
                if i > 0 {
                    text.push('\n');
                }
                let view = backend.describe_topic(name).await?;
                text.push_str(&render_description(&view));
            }
            Ok(text)
        }
        TopicsCommand::Delete { topic, if_exists } => match backend.delete_topic(&topic).await {
            Ok(()) => Ok(format!("Deleted topic {topic}.\n")),
            Err(e) if if_exists && is_unknown_topic(&e) => {
                Ok(format!("Topic {topic} does not exist; nothing changed.\n"))
            }
            Err(e) => Err(e),
        },
        TopicsCommand::Compact { topic } => {
            let stats = data_dir_broker(&backend, "topics compact")?
                .compact_topic(&topic)
                .await?;
            Ok(render_clean_stats(&topic, &stats))
        }
        TopicsCommand::Repair {
            topic,
            partition,
            accept_data_loss,
        } => {
            let report = data_dir_broker(&backend, "topics repair")?
                .repair_partition(&topic, partition, accept_data_loss)
                .await?;
            render_repair(&format!("{topic}-{partition}"), &report)
        }
    }
}

/// The data dir's broker, for a command that works on its files.
fn data_dir_broker<'a>(backend: &'a Backend, command: &str) -> Result<&'a Broker> {
    backend
        .broker()
        .ok_or_else(|| anyhow!("{command} works on a data dir's files: it needs --data-dir"))
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
/// its value is the broker's default for new topics, else `topic`. A value the backend does
/// not know (a cluster tells no sizes or segments) is `-`.
fn render_description(view: &TopicView) -> String {
    let cell = |value: Option<u64>| value.map_or_else(|| NONE.to_owned(), |v| v.to_string());
    let mut text = format!(
        "Topic: {}  Partitions: {}\n",
        view.name,
        view.partitions.len()
    );
    let rows: Vec<Vec<String>> = view
        .partitions
        .iter()
        .map(|p| {
            vec![
                p.partition.to_string(),
                cell(p.log_start_offset),
                cell(p.log_end_offset),
                cell(p.size_bytes),
                cell(p.segment_count),
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
    for p in &view.partitions {
        if let Some(reason) = &p.offline {
            text.push_str(&format!("OFFLINE partition {}: {reason}\n", p.partition));
        }
    }
    text.push('\n');
    let rows: Vec<Vec<String>> = view
        .configs
        .iter()
        .map(|c| {
            let source = if c.is_default { "default" } else { "topic" };
            vec![c.key.clone(), c.value.clone(), source.to_owned()]
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
    use crate::backend::dir::topic_view;
    use crate::backend::PartitionView;
    use broker_embedded::{PartitionDescription, TopicConfig, TopicDescription};

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
        let text = render_description(&topic_view(&description, &TopicConfig::default()));
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
    fn values_a_cluster_does_not_tell_are_dashes() {
        let view = TopicView {
            name: "t".into(),
            partitions: vec![
                PartitionView {
                    partition: 0,
                    log_start_offset: Some(2),
                    log_end_offset: Some(10),
                    size_bytes: None,
                    segment_count: None,
                    offline: None,
                },
                PartitionView {
                    partition: 1,
                    log_start_offset: None,
                    log_end_offset: None,
                    size_bytes: None,
                    segment_count: None,
                    offline: Some("no leader".into()),
                },
            ],
            configs: Vec::new(),
        };
        assert_eq!(
            render_description(&view),
            "Topic: t  Partitions: 2\n\
             PARTITION  LOG-START-OFFSET  LOG-END-OFFSET  SIZE-BYTES  SEGMENTS\n\
             \x20       0                 2              10           -         -\n\
             \x20       1                 -               -           -         -\n\
             OFFLINE partition 1: no leader\n\
             \n\
             CONFIG  VALUE  SOURCE\n"
        );
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
