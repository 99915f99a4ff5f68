//! Topic metadata in the data dir: Kafka's topic-name rules, the bounds on partition counts,
//! topic ids, and `meta/topics/<topic>/properties` (a version line, the topic id, the
//! partition count, the configs), written atomically.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::config::TopicConfig;
use crate::error::{BrokerError, Result};

/// Where topic metadata lives inside the data dir.
pub(crate) const META_DIR: &str = "meta/topics";

/// The name of a topic's metadata file.
pub(crate) const META_FILE: &str = "properties";

/// The version of the topic metadata file layout: 2 adds the `topic.id` line. Version 1
/// files are read (the topic gets an id at open, written back as version 2).
pub(crate) const META_FORMAT_VERSION: u32 = 2;

/// Kafka's reserved id of its metadata topic (`Uuid.METADATA_TOPIC_ID`), never given out.
const METADATA_TOPIC_ID: Uuid = Uuid::from_u128(1);

/// A new random topic id, as Kafka's `Uuid.randomUuid()` makes one: a version-4 UUID that
/// is neither the nil id nor Kafka's reserved metadata topic id, and whose base64 form
/// (how Kafka prints ids) does not start with `-`, which command lines would take for a
/// flag.
pub(crate) fn new_topic_id() -> Uuid {
    loop {
        let id = uuid::Builder::from_random_bytes(rand::random::<[u8; 16]>()).into_uuid();
        // Base64 starts with the first byte's top six bits; 62 is '-' in the URL alphabet.
        if !id.is_nil() && id != METADATA_TOPIC_ID && id.as_bytes()[0] >> 2 != 62 {
            return id;
        }
    }
}

/// What a topic's metadata file holds.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TopicMeta {
    /// The topic id; `None` in a version 1 file, written before topics had ids.
    pub(crate) id: Option<Uuid>,
    /// The partition count.
    pub(crate) partitions: u32,
    /// The topic's configs.
    pub(crate) config: TopicConfig,
}

/// Checks a topic name against Kafka's rules.
pub fn validate_topic_name(name: &str) -> Result<()> {
    let bad = |reason| {
        Err(BrokerError::InvalidTopicName {
            name: name.to_owned(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("the name is empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return bad("longer than 249 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
    }
    Ok(())
}

/// A topic's metadata file: `meta/topics/<topic>/properties`, a dir per topic so that a
/// name of Kafka's full 249 characters fits the file system; a topic created before that
/// layout keeps its `meta/topics/<topic>.properties`.
pub(crate) fn meta_file(dir: &Path, topic: &str) -> PathBuf {
    let legacy = dir.join(META_DIR).join(format!("{topic}.{META_FILE}"));
    if legacy.is_file() {
        legacy
    } else {
        dir.join(META_DIR).join(topic).join(META_FILE)
    }
}

/// The longest file name most file systems take (`NAME_MAX`).
pub(crate) const NAME_MAX: usize = 255;

/// Checks that a topic of `partitions` partitions fits `max` and that its partition dirs'
/// names (`<topic>-<partition>`) fit the file system.
pub(crate) fn check_partitions(name: &str, partitions: u32, max: u32) -> Result<()> {
    if partitions == 0 {
        return Err(BrokerError::InvalidConfig {
            key: "partitions".to_owned(),
            value: "0".to_owned(),
            reason: "a topic needs at least one partition".to_owned(),
        });
    }
    if partitions > max {
        return Err(BrokerError::InvalidConfig {
            key: "partitions".to_owned(),
            value: partitions.to_string(),
            reason: format!(
                "more than max.partitions.per.topic ({max}), the broker's limit per topic"
            ),
        });
    }
    let longest = name.len() + 1 + (partitions - 1).to_string().len();
    if longest > NAME_MAX {
        return Err(BrokerError::InvalidTopicName {
            name: name.to_owned(),
            reason: "too long for its partition dirs (<topic>-<partition> must fit 255 bytes)",
        });
    }
    Ok(())
}

pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| BrokerError::io(dir, e))
}

/// Writes a file atomically: temp file, fsync, rename, fsync of the dir.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(|e| BrokerError::io(&tmp, e))?;
    file.write_all(contents)
        .and_then(|_| file.sync_all())
        .map_err(|e| BrokerError::io(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| BrokerError::io(path, e))?;
    if let Some(parent) = path.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Renders a topic's metadata file: a version line, the topic id, the partition count, then
/// the configs.
pub(crate) fn render_meta(id: Uuid, partitions: u32, config: &TopicConfig) -> String {
    let mut out = format!(
        "format.version={META_FORMAT_VERSION}\ntopic.id={}\npartitions={partitions}\n",
        id.hyphenated()
    );
    for (key, value) in config.to_pairs() {
        out.push_str(key);
        out.push('=');
        out.push_str(&value);
        out.push('\n');
    }
    out
}

/// Parses a topic's metadata file (version 1 or 2); a partition count above
/// `max_partitions` is corrupt, never allocated.
pub(crate) fn parse_meta(file: &Path, text: &str, max_partitions: u32) -> Result<TopicMeta> {
    let corrupt = |reason: String| BrokerError::CorruptMetadata {
        file: file.to_owned(),
        reason,
    };
    let mut version = None;
    let mut partitions = None;
    let mut id = None;
    let mut config = TopicConfig::default();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| corrupt(format!("line {}: expected key=value", n + 1)))?;
        match key {
            "format.version" => {
                version = Some(
                    value
                        .parse::<u32>()
                        .map_err(|_| corrupt(format!("bad format.version {value:?}")))?,
                )
            }
            "partitions" => {
                let count = value
                    .parse::<u32>()
                    .ok()
                    .filter(|p| *p > 0)
                    .ok_or_else(|| corrupt(format!("bad partition count {value:?}")))?;
                if count > max_partitions {
                    return Err(corrupt(format!(
                        "partition count {count} is above max.partitions.per.topic \
                         ({max_partitions})"
                    )));
                }
                partitions = Some(count);
            }
            "topic.id" => {
                let parsed = Uuid::try_parse(value)
                    .ok()
                    .filter(|id| !id.is_nil())
                    .ok_or_else(|| corrupt(format!("bad topic.id {value:?}")))?;
                id = Some(parsed);
            }
            _ => config
                .set(key, value)
                .map_err(|e| corrupt(format!("line {}: {e}", n + 1)))?,
        }
    }
    match version {
        Some(1) => {}
        Some(META_FORMAT_VERSION) if id.is_some() => {}
        Some(META_FORMAT_VERSION) => return Err(corrupt("missing topic.id".to_owned())),
        Some(v) => return Err(corrupt(format!("unsupported format.version {v}"))),
        None => return Err(corrupt("missing format.version".to_owned())),
    }
    let partitions = partitions.ok_or_else(|| corrupt("missing partitions".to_owned()))?;
    Ok(TopicMeta {
        id,
        partitions,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("text-lines").is_ok());
        assert!(validate_topic_name("app.store_1-changelog").is_ok());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        for bad in ["", ".", "..", "a b", "a/b", "ü"] {
            assert!(
                matches!(
                    validate_topic_name(bad),
                    Err(BrokerError::InvalidTopicName { .. })
                ),
                "{bad:?}"
            );
        }
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
    }

    #[test]
    fn metadata_round_trips_and_rejects_garbage() {
        let config = TopicConfig::from_pairs([("cleanup.policy", "compact")]).unwrap();
        let id = new_topic_id();
        let text = render_meta(id, 3, &config);
        assert!(text.starts_with("format.version=2\ntopic.id="), "{text}");
        let meta = parse_meta(Path::new("t.properties"), &text, 10).unwrap();
        assert_eq!(
            meta,
            TopicMeta {
                id: Some(id),
                partitions: 3,
                config: config.clone()
            }
        );
        // A version 1 file, written before topics had ids, has none.
        let old = parse_meta(
            Path::new("t.properties"),
            "format.version=1\npartitions=2\ncleanup.policy=compact\n",
            10,
        )
        .unwrap();
        assert_eq!((old.id, old.partitions), (None, 2));
        assert_eq!(old.config, config);
        for bad in [
            "",
            "partitions=3\n",
            "format.version=9\npartitions=3\n",
            "format.version=2\npartitions=3\n",
            "format.version=2\ntopic.id=xyz\npartitions=3\n",
            "format.version=2\ntopic.id=00000000-0000-0000-0000-000000000000\npartitions=3\n",
            "format.version=1\npartitions=0\n",
            "format.version=1\npartitions=11\n",
            "format.version=1\npartitions=4294967295\n",
            "format.version=1\npartitions=2\nretention.ms=x\n",
            "format.version=1\ngarbage\n",
        ] {
            let err = parse_meta(Path::new("t.properties"), bad, 10).unwrap_err();
            assert!(err.to_string().contains("t.properties"), "{err}");
        }
    }

    #[test]
    fn topic_ids_are_random_and_never_reserved() {
        let ids: std::collections::HashSet<Uuid> = (0..1000).map(|_| new_topic_id()).collect();
        assert_eq!(ids.len(), 1000);
        for id in ids {
            assert!(!id.is_nil() && id != METADATA_TOPIC_ID);
            assert_ne!(id.as_bytes()[0] >> 2, 62, "base64 form starts with '-'");
            assert_eq!(id.get_version_num(), 4);
        }
    }
}
