//! `streams produce`: lines from stdin become records, as with kafka-console-producer.

use std::fmt;
use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::{ctrl_c, with_backend, write_out, DirMode, Outcome};
use crate::args::ProduceArgs;
use crate::backend::{is_unknown_topic, Appended, Backend, KeyValue, Target};
use crate::formats::{self, Format};

/// Splits a line into key and value and encodes both.
#[derive(Debug, Clone)]
pub(crate) struct LineParser {
    /// Where the key ends; `None`: the whole line is the value and the key is null.
    pub(crate) key_separator: Option<Vec<u8>>,
    /// A key or value equal to this is null.
    pub(crate) null_marker: Option<Vec<u8>>,
    /// How keys are written.
    pub(crate) key_format: Format,
    /// How values are written.
    pub(crate) value_format: Format,
}

impl LineParser {
    /// The parser the flags of `produce` ask for.
    pub(crate) fn from_args(args: &ProduceArgs) -> Self {
        LineParser {
            key_separator: args.key_separator.as_ref().map(|s| s.as_bytes().to_vec()),
            null_marker: args.null_marker.as_ref().map(|s| s.as_bytes().to_vec()),
            key_format: args.key_format,
            value_format: args.value_format,
        }
    }

    /// Parses one line (without its line ending) into key and value.
    pub(crate) fn parse(&self, line: &[u8]) -> Result<KeyValue, String> {
        let (key, value) = match &self.key_separator {
            None => (None, line),
            Some(sep) => match find(line, sep) {
                Some(at) => (Some(&line[..at]), &line[at + sep.len()..]),
                None => {
                    return Err(format!(
                        "no key separator {:?} in {:?}",
                        String::from_utf8_lossy(sep),
                        String::from_utf8_lossy(line)
                    ))
                }
            },
        };
        let key = match key {
            Some(k) => self.field("key", self.key_format, k)?,
            None => None,
        };
        let value = self.field("value", self.value_format, value)?;
        Ok((key, value))
    }

    fn field(&self, what: &str, format: Format, text: &[u8]) -> Result<Option<Bytes>, String> {
        if self.null_marker.as_deref() == Some(text) {
            return Ok(None);
        }
        formats::encode(format, text)
            .map(Some)
            .map_err(|e| format!("{what} is not valid {format}: {e}"))
    }
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Removes a trailing `\n` or `\r\n`.
fn strip_line_ending(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// Reads lines on a thread of its own, so that a blocked read never holds up Ctrl-C. The
/// thread ends at end of input, on a read error (sent on), or when the receiver is gone.
fn spawn_reader(
    mut input: impl BufRead + Send + 'static,
    capacity: usize,
) -> Result<mpsc::Receiver<std::io::Result<Vec<u8>>>> {
    let (tx, rx) = mpsc::channel(capacity);
    std::thread::Builder::new()
        .name("stdin-reader".to_owned())
        .spawn(move || loop {
            let mut line = Vec::new();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {
                    strip_line_ending(&mut line);
                    if tx.blocking_send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        })
        .context("starting the stdin reader thread")?;
    Ok(rx)
}

/// Clears the spinner however the command ends, so that an error line stands alone.
#[derive(Debug)]
struct ClearOnDrop(ProgressBar);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A spinner with the count and rate, on stderr, only when stdout is a terminal.
fn progress_bar(show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {human_pos} records, {rate} records/s")
    {
        bar.set_style(
            style.with_key("rate", |state: &ProgressState, w: &mut dyn fmt::Write| {
                let _ = write!(w, "{:.0}", state.per_sec());
            }),
        );
    }
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// Runs `produce`: reads `input` to its end (or Ctrl-C), then prints what it wrote (see
/// [`Written`]). The summary is printed whenever records were written, also when a later
/// step fails (a bad line, a failed send or flush, closing the broker), before the error, so
/// that a retry need not guess what is already in the topic.
pub(crate) async fn run(
    target: &Target,
    args: ProduceArgs,
    input: impl BufRead + Send + 'static,
    show_progress: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    // Without --partitions the topic must exist, so there must be a broker already.
    let mode = if args.partitions.is_some() {
        DirMode::Create
    } else {
        DirMode::MustExist
    };
    with_backend(target, mode, |backend| {
        produce(backend, args, input, show_progress, out)
    })
    .await
}

/// What one `produce` appended to its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Written {
    topic: String,
    appended: Appended,
}

impl Written {
    /// `wrote N records to T (partition P: offsets A-B, ...)`, with a line ending; past
    /// [`SUMMARY_PARTITIONS`] partitions, the rest as a count.
    fn summary(&self) -> String {
        let ranges = &self.appended.ranges;
        let mut text = format!("wrote {} records to {}", self.appended.count, self.topic);
        for (i, (partition, first, last)) in ranges.iter().enumerate() {
            if i == SUMMARY_PARTITIONS {
                let more = ranges.len() - i;
                text.push_str(&format!(", and {more} more partitions"));
                break;
            }
            text.push_str(if i == 0 { " (" } else { ", " });
            if first == last {
                text.push_str(&format!("partition {partition}: offset {first}"));
            } else {
                text.push_str(&format!("partition {partition}: offsets {first}-{last}"));
            }
        }
        if !ranges.is_empty() {
            text.push(')');
        }
        text.push('\n');
        text
    }
}

/// How many partitions a produce summary names one by one.
const SUMMARY_PARTITIONS: usize = 8;

async fn ensure_topic(backend: &Backend, topic: &str, partitions: Option<u32>) -> Result<()> {
    match partitions {
        Some(n) => {
            if backend.ensure_topic(topic, n).await? {
                info!(topic, partitions = n, "topic created");
            } else {
                let existing = backend.partition_count(topic).await?;
                if existing != n {
                    warn!(
                        topic,
                        partitions = existing,
                        "the topic exists with another partition count; --partitions {n} is ignored"
                    );
                }
            }
            Ok(())
        }
        None => match backend.partition_count(topic).await {
            Ok(_) => Ok(()),
            Err(e) if is_unknown_topic(&e) => Err(anyhow!(
                "unknown topic {topic}; create it with 'streams topics create --topic {topic}' \
                 or pass --partitions N"
            )),
            Err(e) => Err(e),
        },
    }
}

async fn produce(
    backend: Backend,
    args: ProduceArgs,
    input: impl BufRead + Send + 'static,
    show_progress: bool,
    out: &mut dyn Write,
) -> Result<Outcome> {
    let topic = args.topic.clone();
    ensure_topic(&backend, &topic, args.partitions).await?;
    let parser = LineParser::from_args(&args);
    let batch_size = args.batch_size as usize;
    let mut sink = backend.open_sink(&topic, args.compression_type).await?;
    let mut lines_in = spawn_reader(input, (batch_size * 4).min(1 << 16))?;
    let bar = ClearOnDrop(progress_bar(show_progress));

    let interrupt = ctrl_c();
    tokio::pin!(interrupt);
    let mut outcome = Outcome::Done;
    let mut lines = Vec::with_capacity(batch_size);
    let mut line_no: u64 = 0;
    let mut written: u64 = 0;
    let mut bad_line = None;
    let mut send_error = None;
    while bad_line.is_none() && send_error.is_none() {
        lines.clear();
        let received = if outcome == Outcome::Interrupted {
            lines_in.recv_many(&mut lines, batch_size).await
        } else {
            tokio::select! {
                biased;
                () = &mut interrupt => {
                    // Keep what was read already: take what is queued, then stop.
                    outcome = Outcome::Interrupted;
                    lines_in.close();
                    continue;
                }
                n = lines_in.recv_many(&mut lines, batch_size) => n,
            }
        };
        if received == 0 {
            break;
        }
        let first_line = line_no + 1;
        let mut records: Vec<KeyValue> = Vec::with_capacity(received);
        for line in lines.drain(..) {
            line_no += 1;
            let parsed = match line {
                Ok(line) => parser
                    .parse(&line)
                    .map_err(|e| format!("line {line_no}: {e}")),
                Err(e) => Err(format!("reading stdin after line {}: {e}", line_no - 1)),
            };
            match parsed {
                Ok(record) => records.push(record),
                Err(e) => {
                    bad_line = Some(e);
                    break;
                }
            }
        }
        if records.is_empty() {
            continue;
        }
        let count = records.len() as u64;
        let last_line = first_line + count - 1;
        match sink.send_batch(records).await {
            Ok(()) => {
                written += count;
                bar.0.inc(count);
            }
            Err(e) => {
                send_error = Some(e.context(if count == 1 {
                    format!("sending line {first_line} to {topic}")
                } else {
                    format!("sending lines {first_line}-{last_line} to {topic}")
                }));
            }
        }
    }
    drop(bar);
    let flushed = sink
        .flush()
        .await
        .with_context(|| format!("flushing {topic}"));

    // What was written is printed before any error, so that a retry does not duplicate it.
    let failed = bad_line.is_some() || send_error.is_some() || flushed.is_err();
    match sink.appended().await {
        Ok(appended) => {
            let done = Written {
                topic: topic.clone(),
                appended,
            };
            if !failed || done.appended.count > 0 {
                write_out(out, &done.summary())?;
            }
        }
        Err(e) => {
            warn!(error = %format!("{e:#}"), "cannot read the log end offsets after producing");
            if !failed || written > 0 {
                write_out(out, &format!("wrote {written} records to {topic}\n"))?;
            }
        }
    }

    if let Some(e) = send_error {
        if let Err(flush) = flushed {
            warn!(error = %format!("{flush:#}"), "flushing after a failed send failed too");
        }
        return Err(e);
    }
    flushed?;
    match bad_line {
        Some(e) => Err(anyhow!("{e} ({})", written_before(written, &topic))),
        None => Ok(outcome),
    }
}

/// What was kept of the input before a bad line.
fn written_before(written: u64, topic: &str) -> String {
    match written {
        0 => format!("nothing was written to {topic}"),
        1 => format!("the 1 record before it was written to {topic}"),
        n => format!("the {n} records before it were written to {topic}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(sep: Option<&str>) -> LineParser {
        LineParser {
            key_separator: sep.map(|s| s.as_bytes().to_vec()),
            null_marker: None,
            key_format: Format::String,
            value_format: Format::String,
        }
    }

    fn kv(key: Option<&str>, value: Option<&str>) -> KeyValue {
        (
            key.map(|k| Bytes::copy_from_slice(k.as_bytes())),
            value.map(|v| Bytes::copy_from_slice(v.as_bytes())),
        )
    }

    #[test]
    fn without_a_separator_the_line_is_the_value() {
        let p = parser(None);
        assert_eq!(p.parse(b"a:b"), Ok(kv(None, Some("a:b"))));
        assert_eq!(p.parse(b""), Ok(kv(None, Some(""))));
    }

    #[test]
    fn the_key_ends_at_the_first_separator() {
        let p = parser(Some(":"));
        assert_eq!(p.parse(b"k:v"), Ok(kv(Some("k"), Some("v"))));
        assert_eq!(p.parse(b"k:v:w"), Ok(kv(Some("k"), Some("v:w"))));
        assert_eq!(p.parse(b":v"), Ok(kv(Some(""), Some("v"))));
        assert_eq!(p.parse(b"k:"), Ok(kv(Some("k"), Some(""))));
        let p = parser(Some("::"));
        assert_eq!(p.parse(b"a:b::c::d"), Ok(kv(Some("a:b"), Some("c::d"))));
    }

    #[test]
    fn a_line_without_the_separator_is_an_error() {
        let err = parser(Some(":")).parse(b"no key here").unwrap_err();
        assert_eq!(err, r#"no key separator ":" in "no key here""#);
        assert!(parser(Some("::")).parse(b"a:b").is_err());
        assert!(parser(Some(":")).parse(b"").is_err());
    }

    #[test]
    fn the_null_marker_makes_nulls() {
        let mut p = parser(Some(","));
        p.null_marker = Some(b"NULL".to_vec());
        assert_eq!(p.parse(b"k,NULL"), Ok(kv(Some("k"), None)));
        assert_eq!(p.parse(b"NULL,v"), Ok(kv(None, Some("v"))));
        assert_eq!(p.parse(b"k,NULLS"), Ok(kv(Some("k"), Some("NULLS"))));
    }

    #[test]
    fn keys_and_values_are_encoded_by_their_formats() {
        let p = LineParser {
            key_separator: Some(b"=".to_vec()),
            null_marker: Some(b"-".to_vec()),
            key_format: Format::I64,
            value_format: Format::Hex,
        };
        let (key, value) = p.parse(b"258=00ff").unwrap();
        assert_eq!(key.as_deref(), Some(&[0, 0, 0, 0, 0, 0, 1, 2][..]));
        assert_eq!(value.as_deref(), Some(&[0, 0xff][..]));
        assert_eq!(p.parse(b"1=-").unwrap().1, None);
        let err = p.parse(b"x=00").unwrap_err();
        assert!(err.starts_with("key is not valid i64: "), "{err}");
        let err = p.parse(b"1=0").unwrap_err();
        assert!(err.starts_with("value is not valid hex: "), "{err}");
    }

    #[test]
    fn line_endings_are_stripped() {
        for (raw, want) in [
            (&b"a\n"[..], &b"a"[..]),
            (b"a\r\n", b"a"),
            (b"a", b"a"),
            (b"a\r", b"a\r"),
            (b"\n", b""),
        ] {
            let mut line = raw.to_vec();
            strip_line_ending(&mut line);
            assert_eq!(line, want, "{raw:?}");
        }
    }

    #[test]
    fn the_error_says_what_was_written() {
        assert_eq!(written_before(0, "t"), "nothing was written to t");
        assert_eq!(
            written_before(1, "t"),
            "the 1 record before it was written to t"
        );
        assert_eq!(
            written_before(5, "t"),
            "the 5 records before it were written to t"
        );
    }

    #[test]
    fn the_summary_names_each_partition_written_to() {
        let written = Written {
            topic: "t".into(),
            appended: Appended {
                ranges: vec![(0, 0, 2), (2, 7, 7)],
                count: 4,
            },
        };
        assert_eq!(
            written.summary(),
            "wrote 4 records to t (partition 0: offsets 0-2, partition 2: offset 7)\n"
        );
        let none = Written {
            topic: "t".into(),
            appended: Appended::default(),
        };
        assert_eq!(none.summary(), "wrote 0 records to t\n");
        let many = Written {
            topic: "t".into(),
            appended: Appended {
                ranges: (0..10).map(|p| (p, 0, 0)).collect(),
                count: 10,
            },
        };
        assert!(
            many.summary()
                .ends_with("partition 7: offset 0, and 2 more partitions)\n"),
            "{}",
            many.summary()
        );
    }

    #[test]
    fn find_finds_the_first_occurrence() {
        assert_eq!(find(b"abcabc", b"bc"), Some(1));
        assert_eq!(find(b"abc", b"abcd"), None);
        assert_eq!(find(b"abc", b""), None);
        assert_eq!(find(b"abc", b"x"), None);
    }

    #[tokio::test]
    async fn the_reader_sends_every_line_then_ends() {
        let input = std::io::Cursor::new(b"one\r\ntwo\n\nlast".to_vec());
        let mut rx = spawn_reader(input, 2).unwrap();
        let mut got = Vec::new();
        while let Some(line) = rx.recv().await {
            got.push(line.unwrap());
        }
        assert_eq!(got, [&b"one"[..], b"two", b"", b"last"]);
    }
}
