//! The commands: each opens the data dir, does its work, and closes the broker.

use std::future::Future;
use std::io::{ErrorKind, Write};
use std::path::Path;

use anyhow::{bail, Context as _, Result};
use broker_embedded::{Broker, BrokerConfig};

pub(crate) mod consume;
pub(crate) mod groups;
pub(crate) mod produce;
pub(crate) mod topics;

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It did all it had to do.
    Done,
    /// Ctrl-C stopped it; what it had done so far is kept.
    Interrupted,
}

/// Whether a command may create the data dir when it does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DirMode {
    /// Create it (commands that create topics).
    Create,
    /// A missing dir is an error, so that a mistyped path does not look like an empty broker.
    MustExist,
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

/// Opens the broker in `dir` (taking its lock), runs `work`, then closes the broker. The
/// error of `work` wins over an error of the close.
pub(crate) async fn with_broker<T, F, Fut>(dir: &Path, mode: DirMode, work: F) -> Result<T>
where
    F: FnOnce(Broker) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    if mode == DirMode::MustExist && !dir.is_dir() {
        bail!("data dir {} does not exist", dir.display());
    }
    tracing::info!(dir = %dir.display(), "opening the data dir");
    let broker = Broker::open(dir, BrokerConfig::default()).await?;
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
