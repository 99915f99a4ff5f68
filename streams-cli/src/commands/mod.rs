//! The commands: each opens the data dir (or connects to the cluster), does its work, and
//! closes the broker.

use std::future::Future;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context as _, Result};
use broker_embedded::{Broker, BrokerConfig};

use crate::backend::{kafka::Cluster, Backend, Target};

pub(crate) mod consume;
pub(crate) mod groups;
pub(crate) mod produce;
pub(crate) mod serve;
pub(crate) mod topics;

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It did all it had to do.
    Done,
    /// Ctrl-C stopped it; what it had done so far is kept.
    Interrupted,
}

/// Whether a command may create a broker where `--data-dir` finds none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirMode {
    /// Create one (commands that create topics).
    Create,
    /// A dir without a broker is an error, and nothing is created: a mistyped path or an
    /// empty dir must not look like an empty broker.
    MustExist,
    /// As `MustExist`, and the broker is opened read-only: nothing in the data dir is
    /// written, so the command works on a read-only or full file system.
    ReadOnly,
}

/// The broker's topic metadata dir inside its data dir (`META_DIR` in broker-embedded's
/// `broker.rs`): a dir holds a broker when it has this.
const BROKER_MARKER: &str = "meta/topics";
/// Where an application (the examples' `--data-dir DIR`) keeps its broker: `DIR/broker`,
/// beside its state stores in `DIR/state`.
const APP_BROKER_DIR: &str = "broker";
/// Most entries of a dir looked at for a suggestion.
const SUGGESTION_SCAN_LIMIT: usize = 256;
/// How many parent dirs are looked at for a suggestion.
const SUGGESTION_PARENTS: usize = 3;

/// Whether `dir` holds a broker. A dir that cannot be looked at (permissions) is an error,
/// so that it is not taken for an empty one.
fn holds_broker(dir: &Path) -> Result<bool> {
    let marker = dir.join(BROKER_MARKER);
    match std::fs::metadata(&marker) {
        Ok(meta) => Ok(meta.is_dir()),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("looking for a broker in {}", dir.display())),
    }
}

/// The broker dir that `--data-dir dir` names: `dir` itself if it holds a broker, else
/// `dir/broker` if that does (an application's data dir, as the examples lay it out), else
/// `dir` for a command that may create a broker. A command that may not gets an error naming
/// the dir, and nothing is created.
pub(crate) fn locate_broker(dir: &Path, mode: DirMode) -> Result<PathBuf> {
    if holds_broker(dir)? {
        return Ok(dir.to_owned());
    }
    let app = dir.join(APP_BROKER_DIR);
    if holds_broker(&app)? {
        tracing::info!(
            data_dir = %dir.display(),
            broker_dir = %app.display(),
            "the data dir holds no broker but its broker/ dir does (an application's data dir): using that"
        );
        return Ok(app);
    }
    match mode {
        DirMode::Create => Ok(dir.to_owned()),
        DirMode::MustExist | DirMode::ReadOnly => Err(no_broker(dir)),
    }
}

/// The error for a dir without a broker: what is there, and where a broker is if one is
/// near (a dir inside it, or one of its parents).
fn no_broker(dir: &Path) -> anyhow::Error {
    let what = if !dir.exists() {
        "the dir does not exist"
    } else if !dir.is_dir() {
        "it is not a dir"
    } else {
        "it has no meta/topics dir"
    };
    let hint = match nearby_broker(dir) {
        Some(near) => format!("did you mean --data-dir {}?", near.display()),
        None => "create one with 'streams topics create --topic T' (or 'streams produce \
                 --partitions N'), or pass the data dir of an existing broker or application"
            .to_owned(),
    };
    anyhow!("no broker in {}: {what}; {hint}", dir.display())
}

/// A dir just inside `dir` or one of its parents that holds a broker (directly or in its
/// `broker/` dir): where `--data-dir` probably meant to point.
fn nearby_broker(dir: &Path) -> Option<PathBuf> {
    let is_broker_or_app = |d: &Path| {
        holds_broker(d).unwrap_or(false) || holds_broker(&d.join(APP_BROKER_DIR)).unwrap_or(false)
    };
    if let Ok(entries) = std::fs::read_dir(dir) {
        let mut children: Vec<PathBuf> = entries
            .take(SUGGESTION_SCAN_LIMIT)
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_dir())
            .collect();
        children.sort();
        if let Some(child) = children.into_iter().find(|c| is_broker_or_app(c)) {
            return Some(child);
        }
    }
    dir.ancestors()
        .skip(1)
        .take(SUGGESTION_PARENTS)
        .filter(|p| !p.as_os_str().is_empty())
        .find(|p| is_broker_or_app(p))
        .map(Path::to_owned)
}

/// Writes `text` to stdout and flushes it. Returns `false` if the reader has gone away (a
/// closed pipe, as in `streams consume ... | head`), which is not an error.
pub(crate) fn write_out(out: &mut dyn Write, text: &str) -> Result<bool> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing to stdout"),
    }
}

/// Resolves on Ctrl-C (SIGINT). If the handler cannot be installed it never resolves, and
/// Ctrl-C keeps its default effect of ending the process at once.
pub(crate) async fn ctrl_c() {
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C");
        std::future::pending::<()>().await;
    }
}

/// Opens the broker that `dir` names (see [`locate_broker`]; taking its lock), runs `work`,
/// then closes the broker. The error of `work` wins over an error of the close.
pub(crate) async fn with_broker<T, F, Fut>(dir: &Path, mode: DirMode, work: F) -> Result<T>
where
    F: FnOnce(Broker) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let dir = locate_broker(dir, mode)?;
    tracing::info!(dir = %dir.display(), "opening the data dir");
    let config = BrokerConfig {
        read_only: mode == DirMode::ReadOnly,
        ..BrokerConfig::default()
    };
    let broker = Broker::open(&dir, config).await?;
    let result = work(broker.clone()).await;
    let closed = broker
        .close()
        .await
        .context("closing the broker (data may not be fully flushed)");
    match (result, closed) {
        (Err(e), Err(close)) => {
            tracing::warn!(error = %format!("{close:#}"), "closing the broker after an error failed");
            Err(e)
        }
        (Err(e), Ok(())) => Err(e),
        (Ok(_), Err(close)) => Err(close),
        (Ok(value), Ok(())) => Ok(value),
    }
}

/// Runs `work` on what `target` names: the data dir's broker, opened and closed as
/// [`with_broker`] does (`mode` applies to it), or the cluster, connected to first.
pub(crate) async fn with_backend<T, F, Fut>(target: &Target, mode: DirMode, work: F) -> Result<T>
where
    F: FnOnce(Backend) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    match target {
        Target::Dir(dir) => with_broker(dir, mode, |broker| work(Backend::Dir(broker))).await,
        Target::Kafka(servers) => {
            let cluster = Cluster::connect(servers).await?;
            work(Backend::Kafka(cluster)).await
        }
    }
}

/// How the rows of a column line up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    /// Padded on the right.
    Left,
    /// Padded on the left.
    Right,
}

/// Renders rows under headers in columns two spaces apart, without trailing spaces.
pub(crate) fn render_table(headers: &[(&str, Align)], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|(h, _)| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let header_row: Vec<String> = headers.iter().map(|(h, _)| (*h).to_owned()).collect();
    for row in std::iter::once(&header_row).chain(rows) {
        let mut line = String::new();
        for (i, ((_, align), cell)) in headers.iter().zip(row).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            let pad = widths[i].saturating_sub(cell.chars().count());
            match align {
                Align::Left => {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes `dir` look like a broker's data dir to [`holds_broker`].
    fn fake_broker(dir: &Path) {
        std::fs::create_dir_all(dir.join(BROKER_MARKER)).unwrap();
    }

    fn refusal(dir: &Path) -> String {
        match locate_broker(dir, DirMode::MustExist) {
            Ok(found) => panic!("{} found {}", dir.display(), found.display()),
            Err(e) => format!("{e:#}"),
        }
    }

    #[test]
    fn a_broker_dir_is_itself_and_an_app_dir_leads_to_its_broker() {
        let tmp = tempfile::tempdir().unwrap();
        let broker = tmp.path().join("b");
        fake_broker(&broker);
        let app = tmp.path().join("app");
        fake_broker(&app.join("broker"));
        std::fs::create_dir_all(app.join("state")).unwrap();
        for mode in [DirMode::Create, DirMode::MustExist] {
            assert_eq!(locate_broker(&broker, mode).unwrap(), broker);
            assert_eq!(locate_broker(&app, mode).unwrap(), app.join("broker"));
            assert_eq!(
                locate_broker(&app.join("broker"), mode).unwrap(),
                app.join("broker")
            );
        }
        // A broker dir that also has a broker/ dir inside is a broker dir.
        fake_broker(&broker.join("broker"));
        assert_eq!(locate_broker(&broker, DirMode::MustExist).unwrap(), broker);
    }

    #[test]
    fn no_broker_is_an_error_unless_the_command_may_create_one() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        let missing = tmp.path().join("missing");
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        for dir in [&empty, &missing] {
            assert_eq!(&locate_broker(dir, DirMode::Create).unwrap(), dir);
        }
        let create = "create one with 'streams topics create --topic T' (or 'streams produce \
                      --partitions N'), or pass the data dir of an existing broker or application";
        assert_eq!(
            refusal(&empty),
            format!(
                "no broker in {}: it has no meta/topics dir; {create}",
                empty.display()
            )
        );
        assert_eq!(
            refusal(&missing),
            format!(
                "no broker in {}: the dir does not exist; {create}",
                missing.display()
            )
        );
        assert_eq!(
            refusal(&file),
            format!("no broker in {}: it is not a dir; {create}", file.display())
        );
        assert!(!missing.exists());
        assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    }

    #[test]
    fn a_broker_near_the_dir_is_suggested() {
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path().join("apps");
        let app = parent.join("wordcount");
        fake_broker(&app.join("broker"));
        std::fs::create_dir_all(app.join("state")).unwrap();
        std::fs::create_dir_all(parent.join("aaa-empty")).unwrap();
        let meant = |dir: &Path, near: &Path| {
            let err = refusal(dir);
            assert!(
                err.ends_with(&format!("; did you mean --data-dir {}?", near.display())),
                "{err}"
            );
        };
        // Its parent, a dir inside the app's dir, a dir inside the broker dir.
        meant(&parent, &app);
        meant(&app.join("state"), &app);
        meant(&app.join("broker").join("meta"), &app.join("broker"));
        meant(&app.join("state").join("typo"), &app);
        // A plain broker inside the dir.
        let other = tmp.path().join("other");
        fake_broker(&other.join("data"));
        meant(&other, &other.join("data"));
    }

    #[test]
    fn tables_align_columns_without_trailing_spaces() {
        let text = render_table(
            &[
                ("NAME", Align::Left),
                ("N", Align::Right),
                ("LAST", Align::Left),
            ],
            &[
                vec!["a".into(), "1000".into(), "x".into()],
                vec!["longer".into(), "7".into(), "".into()],
            ],
        );
        assert_eq!(
            text,
            "NAME       N  LAST\n\
             a       1000  x\n\
             longer     7\n"
        );
    }
}
