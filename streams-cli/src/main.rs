//! `streams`: manage topics and consumer groups and produce and consume records in an embedded
//! broker's data dir or on a Kafka cluster, with the commands and flags of Kafka's console
//! tools.
//!
//! Exit status: 0 on success, 1 on a failure, 2 on a usage error, 130 after Ctrl-C. A failure
//! prints exactly one line on stderr, `error: ` followed by the causes joined by `: `.

use std::io::{BufReader, IsTerminal as _};
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory as _, FromArgMatches as _};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::EnvFilter;

mod args;
mod backend;
mod commands;
mod formats;
mod iso8601;

use args::{Cli, Command, TopicsCommand};
use backend::Target;
use commands::Outcome;

/// Exit status of a usage error (as clap's).
const EXIT_USAGE: u8 = 2;
/// Exit status after Ctrl-C (128 + SIGINT, as shells report it).
const EXIT_INTERRUPTED: u8 = 130;
/// Buffer for reading stdin.
const STDIN_BUFFER_BYTES: usize = 64 * 1024;

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("unknown cause");
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: internal error (a bug, please report it): {}{location}",
            one_line(message)
        );
    }));

    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        Err(e) => return usage_error(&e),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    init_logging();

    let target = match choose_target(&cli, &matches) {
        Ok(target) => target,
        Err(message) => {
            eprintln!("error: {message} (see --help)");
            return ExitCode::from(EXIT_USAGE);
        }
    };

    // The server serves connections on every core; the other commands run on one thread.
    let mut builder = if matches!(cli.command, Command::Serve(_)) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!(
                "error: starting the async runtime: {}",
                one_line(&e.to_string())
            );
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let mut stdout = std::io::stdout().lock();
        match cli.command {
            Command::Topics { command } => {
                commands::topics::run(&target, command, &mut stdout).await
            }
            Command::Produce(args) => {
                let input = BufReader::with_capacity(STDIN_BUFFER_BYTES, std::io::stdin());
                let show_progress = std::io::stdout().is_terminal();
                commands::produce::run(&target, args, input, show_progress, &mut stdout).await
            }
            Command::Consume(args) => commands::consume::run(&target, args, &mut stdout).await,
            Command::Groups { command } => {
                commands::groups::run(&target, command, &mut stdout).await
            }
            Command::Serve(args) => match &target {
                Target::Dir(data_dir) => commands::serve::run(data_dir, args, &mut stdout).await,
                // choose_target refuses it.
                Target::Kafka(_) => Err(anyhow::anyhow!("serve needs --data-dir")),
            },
        }
    });
    match result {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::Interrupted) => ExitCode::from(EXIT_INTERRUPTED),
        Err(e) => {
            eprintln!("{}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// What the command works on: `--data-dir` or `--bootstrap-server`. Exactly one is needed;
/// a flag given on the command line wins over the other's environment variable. Commands
/// that work on a data dir's files refuse a cluster. The error is a usage error's message.
fn choose_target(cli: &Cli, matches: &ArgMatches) -> Result<Target, String> {
    let from_command_line = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let dir = cli.data_dir.clone().filter(|d| !d.as_os_str().is_empty());
    let servers = cli.bootstrap_server.clone().filter(|s| !s.is_empty());
    let target = match (dir, servers) {
        (None, None) => {
            return Err(
                "--data-dir DIR or --bootstrap-server HOST:PORT is required (or set \
                        STREAMS_DATA_DIR or STREAMS_BOOTSTRAP_SERVER)"
                    .to_owned(),
            )
        }
        (Some(dir), None) => Target::Dir(dir),
        (None, Some(servers)) => Target::Kafka(servers),
        (Some(dir), Some(servers)) => {
            match (
                from_command_line("data_dir"),
                from_command_line("bootstrap_server"),
            ) {
                (true, false) => Target::Dir(dir),
                (false, true) => Target::Kafka(servers),
                (true, true) => {
                    return Err(
                        "--data-dir and --bootstrap-server cannot be used together: \
                                give the data dir or the cluster"
                            .to_owned(),
                    )
                }
                (false, false) => {
                    return Err(
                        "STREAMS_DATA_DIR and STREAMS_BOOTSTRAP_SERVER are both set: \
                                pass --data-dir or --bootstrap-server to choose"
                            .to_owned(),
                    )
                }
            }
        }
    };
    if let Target::Kafka(_) = target {
        let data_dir_only = match &cli.command {
            Command::Serve(_) => Some("serve"),
            Command::Topics {
                command: TopicsCommand::Compact { .. },
            } => Some("topics compact"),
            Command::Topics {
                command: TopicsCommand::Repair { .. },
            } => Some("topics repair"),
            _ => None,
        };
        if let Some(command) = data_dir_only {
            return Err(format!(
                "{command} works on a data dir: it takes --data-dir, not --bootstrap-server"
            ));
        }
    }
    Ok(target)
}

/// Logs to stderr; the level comes from `RUST_LOG`, `warn` by default.
fn init_logging() {
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Newlines and runs of spaces in a message become single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `error: ` and the cause chain joined by `: `, on one line. A cause whose text its parent
/// already quotes (as an I/O error inside the broker's message) is not repeated.
fn error_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in err.chain() {
        let text = one_line(&cause.to_string());
        if text.is_empty() || parts.last().is_some_and(|last| last.contains(&text)) {
            continue;
        }
        parts.push(text);
    }
    format!("error: {}", parts.join(": "))
}

/// Prints help or the version as clap does; any other parse error as one line.
fn usage_error(e: &clap::Error) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            // Only fails if stdout is closed, and then there is no one to tell.
            let _ = e.print();
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{}", clap_error_line(&e.render().to_string()));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Folds clap's rendered error (message, tips, usage) into one line: the message and tips,
/// then a pointer to `--help`.
fn clap_error_line(rendered: &str) -> String {
    let mut line = String::new();
    for part in rendered.lines().map(str::trim) {
        if part.starts_with("Usage:") || part.starts_with("For more information") {
            break;
        }
        if part.is_empty() {
            continue;
        }
        if !line.is_empty() {
            line.push_str(if part.starts_with("tip:") { "; " } else { " " });
        }
        line.push_str(part);
    }
    if !line.starts_with("error:") {
        line.insert_str(0, "error: ");
    }
    line.push_str(" (see --help)");
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    #[test]
    fn error_line_joins_causes_without_repeating_them() {
        let io = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied");
        let broker = broker_embedded::BrokerError::Io {
            path: "/d/x".into(),
            source: io,
        };
        let err = Err::<(), _>(broker)
            .context("opening\nthe dir")
            .unwrap_err();
        assert_eq!(
            error_line(&err),
            "error: opening the dir: I/O error on /d/x: denied"
        );
        let err = anyhow::anyhow!("plain");
        assert_eq!(error_line(&err), "error: plain");
    }

    #[test]
    fn clap_errors_become_one_line() {
        for args in [
            &["streams", "topics", "create"][..],
            &["streams", "produce", "--topic", "t", "--bogus"],
            &["streams", "consume", "--topic", "t", "--offset", "3"],
            &[
                "streams", "topics", "create", "--topic", "t", "--config", "x",
            ],
            &["streams", "nope"],
            &["streams"],
            &["streams", "topics"],
        ] {
            let Err(e) = Cli::command().try_get_matches_from(args) else {
                panic!("{args:?} parsed");
            };
            let line = clap_error_line(&e.render().to_string());
            assert!(!line.contains('\n'), "{line}");
            assert!(line.starts_with("error: "), "{line}");
            assert!(line.ends_with("(see --help)"), "{line}");
            assert!(
                line.len() > "error:  (see --help)".len() + 5,
                "{args:?}: {line}"
            );
        }
        let Err(e) = Cli::command().try_get_matches_from(["streams", "topics", "create"]) else {
            panic!("parsed");
        };
        let line = clap_error_line(&e.render().to_string());
        assert!(line.contains("--topic <TOPIC>"), "{line}");
    }
}
