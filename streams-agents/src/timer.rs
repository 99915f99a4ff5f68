//! Timers of an app (Faust's `@app.timer(interval)` and
//! `@app.crontab(cron)`): async functions run on a schedule on every
//! running instance.

use std::fmt;
use std::str::FromStr as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use futures::future::BoxFuture;
use tokio::task::JoinHandle;

use crate::error::{AgentError, AgentResult, Result};

/// Makes a timer's run.
pub(crate) type TimerFn = Arc<dyn Fn() -> BoxFuture<'static, AgentResult> + Send + Sync>;

/// The next matching time of a cron expression after a time, in a
/// schedule's zone.
type NextFn = Arc<dyn Fn(&Cron, DateTime<Utc>) -> Option<DateTime<Utc>> + Send + Sync>;

/// When a timer runs.
#[derive(Clone)]
pub(crate) enum Schedule {
    /// Every interval, the first time one interval after the start.
    Every(Duration),
    /// At each time the cron expression matches, in a time zone.
    Cron { cron: Arc<Cron>, next: NextFn },
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Every(interval) => write!(f, "every {interval:?}"),
            Self::Cron { cron, .. } => write!(f, "cron {}", cron.pattern),
        }
    }
}

impl Schedule {
    /// A cron schedule in `zone`.
    ///
    /// # Errors
    ///
    /// [`AgentError::Usage`] naming the expression when it does not parse.
    pub(crate) fn cron<Tz>(expression: &str, zone: Tz) -> Result<Self>
    where
        Tz: TimeZone + Send + Sync + 'static,
    {
        let cron = Cron::from_str(expression).map_err(|e| {
            AgentError::Usage(format!(
                "crontab {expression:?} is not a cron expression: {e}"
            ))
        })?;
        let next: NextFn = Arc::new(move |cron: &Cron, after: DateTime<Utc>| {
            let local = after.with_timezone(&zone);
            cron.find_next_occurrence(&local, false)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        });
        Ok(Self::Cron {
            cron: Arc::new(cron),
            next,
        })
    }

    /// How long from `now` to the next run.
    fn wait(&self, now: DateTime<Utc>) -> Option<Duration> {
        match self {
            Self::Every(interval) => Some(*interval),
            Self::Cron { cron, next } => {
                let at = next(cron, now)?;
                Some((at - now).to_std().unwrap_or(Duration::ZERO))
            }
        }
    }
}

/// A timer as the app keeps it.
pub(crate) struct TimerSpec {
    pub(crate) name: String,
    pub(crate) schedule: Schedule,
    pub(crate) run: TimerFn,
}

/// Runs `timer` until aborted; its first error goes to `failed` and ends
/// it.
pub(crate) fn spawn(timer: &TimerSpec, failed: Arc<Mutex<Option<String>>>) -> JoinHandle<()> {
    let (name, schedule, run) = (
        timer.name.clone(),
        timer.schedule.clone(),
        timer.run.clone(),
    );
    tokio::spawn(async move {
        loop {
            let Some(wait) = schedule.wait(Utc::now()) else {
                tracing::info!(timer = %name, ?schedule, "the schedule has no next time; the timer stops");
                return;
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
            if let Err(e) = run().await {
                tracing::error!(timer = %name, error = %e, "timer failed; stopping the app");
                let mut failed = failed.lock().unwrap_or_else(PoisonError::into_inner);
                failed.get_or_insert_with(|| {
                    AgentError::AgentFailed {
                        agent: name.clone(),
                        source: e,
                    }
                    .to_string()
                });
                return;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use chrono::FixedOffset;

    use super::*;

    #[test]
    fn a_cron_schedule_waits_for_its_next_match_in_its_zone() {
        let now = Utc
            .with_ymd_and_hms(2026, 12, 6, 10, 15, 30)
            .single()
            .unwrap();
        let hourly = Schedule::cron("0 * * * *", Utc).unwrap();
        assert_eq!(hourly.wait(now), Some(Duration::from_secs(44 * 60 + 30)));
        // 09:00 in UTC+2 is 07:00 UTC: tomorrow's, from 10:15 UTC.
        let zone = FixedOffset::east_opt(2 * 3600).unwrap();
        let daily = Schedule::cron("0 9 * * *", zone).unwrap();
        assert_eq!(
            daily.wait(now),
            Some(Duration::from_secs((20 * 60 + 44) * 60 + 30))
        );
        let error = Schedule::cron("every hour", Utc).unwrap_err();
        assert!(error.to_string().contains("\"every hour\""), "{error}");
    }
}
