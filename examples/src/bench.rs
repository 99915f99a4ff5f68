//! What the end-to-end benchmarks share: each runs its sides in child
//! processes (the benchmark re-executed with an environment variable naming
//! the side), so that every run starts from a fresh process and its peak
//! memory is its own, and compares medians over alternating rounds.

use std::process::{Command, Stdio};

use anyhow::{bail, Context as _};

/// The median of `values` (the upper one of an even count); `NaN` if empty.
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs this benchmark's executable as a child with `env` set to `side`,
/// and returns the one line it printed and the number after `field=` in it.
pub fn run_child(env: &str, side: &str, field: &str) -> anyhow::Result<(String, f64)> {
    let exe = std::env::current_exe().context("cannot find the benchmark's executable")?;
    let output = Command::new(&exe)
        .env(env, side)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run the {side} child"))?;
    if !output.status.success() {
        bail!("the {side} run failed ({})", output.status);
    }
    let line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let prefix = format!("{field}=");
    let value = line
        .split_whitespace()
        .find_map(|f| f.strip_prefix(prefix.as_str()))
        .and_then(|v| v.parse().ok())
        .with_context(|| format!("the {side} run printed no {field}: {line}"))?;
    Ok((line, value))
}

/// Runs the two `sides` one after the other for `rounds` rounds (so that a
/// change in the machine's load hits both alike), printing each child's
/// line, and returns the median of `field` for each side, in order.
pub fn alternate(
    env: &str,
    sides: [&str; 2],
    field: &str,
    rounds: usize,
) -> anyhow::Result<[f64; 2]> {
    let mut figures = [Vec::with_capacity(rounds), Vec::with_capacity(rounds)];
    for round in 0..rounds {
        for (side, values) in sides.iter().zip(figures.iter_mut()) {
            let (line, value) = run_child(env, side, field)?;
            println!("round={round} {line}");
            values.push(value);
        }
    }
    let [first, second] = &mut figures;
    Ok([median(first), median(second)])
}

/// Starts `app` and waits until its group `group` has committed every
/// record of `topics` on `broker` (see [`crate::wait_until_idle`]); returns
/// the time from just before the start. Fails after `deadline`.
pub async fn run_until_idle(
    app: &mut streams_core::StreamsApp,
    broker: &broker_embedded::Broker,
    group: &str,
    topics: &[String],
    deadline: std::time::Duration,
) -> anyhow::Result<std::time::Duration> {
    let start = std::time::Instant::now();
    app.start().await?;
    crate::wait_until_idle(app, broker, group, topics, Some(deadline), |_| {}).await?;
    Ok(start.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_value() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(&mut []).is_nan());
    }
}
