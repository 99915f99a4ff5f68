//! How far a consumer group is through its input ([`GroupProgress`]), and the wait of an
//! application until its group has processed every input record ([`wait_for_group`]), on
//! any broker that can tell a group's progress ([`ProgressSource`]: the embedded broker, a
//! Kafka cluster).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::bail;
use streams_core::{AppState, StreamsApp};

/// How far consumer group `group` is through `topics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupProgress {
    /// Sum over the partitions of `topics` of the committed offsets (0 for
    /// a partition with no commit).
    pub committed: u64,
    /// Records of `topics` not yet committed: the log end offset minus the
    /// committed offset, summed, where a short gap that holds only
    /// transaction markers counts as none.
    pub remaining: u64,
    /// The sum of the committed offsets of each topic.
    pub committed_per_topic: HashMap<String, u64>,
}

/// A broker that tells how far a consumer group is.
pub(crate) trait ProgressSource {
    /// The committed position and lag of `group` over every partition of `topics`; a
    /// topic that does not exist yet (an internal topic before its application starts)
    /// is left out, a group the broker does not know has committed nothing.
    async fn group_progress(&self, group: &str, topics: &[String])
        -> anyhow::Result<GroupProgress>;

    /// How long to wait between two questions.
    fn poll_interval(&self) -> Duration;
}

/// How long the questions about a group's progress may keep failing before the wait
/// gives up: a cluster's group coordinator can be busy for a while (moving, loading).
const PROGRESS_ERRORS_FOR: Duration = Duration::from_secs(60);

/// Waits until `app` is [`AppState::Running`] and its consumer group `group` has
/// committed every record of `topics` on `source`; see [`crate::wait_until_idle`]. A
/// failed question is asked again, for up to [`PROGRESS_ERRORS_FOR`] in a row.
pub(crate) async fn wait_for_group(
    source: &impl ProgressSource,
    app: &StreamsApp,
    group: &str,
    topics: &[String],
    deadline: Option<Duration>,
    mut on_progress: impl FnMut(&GroupProgress),
) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut failing_since: Option<Instant> = None;
    loop {
        match app.state() {
            AppState::Error => bail!(
                "the streams application failed: {}",
                app.error()
                    .unwrap_or_else(|| "no cause recorded".to_owned())
            ),
            AppState::NotRunning | AppState::PendingShutdown => {
                bail!("the streams application stopped before processing its input")
            }
            _ => {}
        }
        let progress = match source.group_progress(group, topics).await {
            Ok(progress) => {
                failing_since = None;
                progress
            }
            Err(e)
                if failing_since.unwrap_or_else(Instant::now).elapsed() < PROGRESS_ERRORS_FOR =>
            {
                tracing::warn!(group, error = %format!("{e:#}"), "cannot read the group's progress; asking again");
                failing_since.get_or_insert_with(Instant::now);
                tokio::time::sleep(source.poll_interval()).await;
                continue;
            }
            Err(e) => return Err(e),
        };
        on_progress(&progress);
        if progress.remaining == 0 && app.state() == AppState::Running {
            return Ok(());
        }
        if let Some(limit) = deadline {
            if started.elapsed() > limit {
                bail!(
                    "the application did not catch up within {limit:?}: {} records not yet committed",
                    progress.remaining
                );
            }
        }
        tokio::time::sleep(source.poll_interval()).await;
    }
}
