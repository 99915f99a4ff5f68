//! Faust's commands for an app's own binary: `worker`, `agents`, `tables`
//! and `send` ([`App::main`]).

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::error::{AgentError, Result};

/// The commands of an app's binary.
#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the app's agents until Ctrl-C (the default).
    Worker,
    /// Lists the agents: name, topic, description.
    Agents,
    /// Lists the tables: name, changelog topic, key and value types.
    Tables,
    /// Sends VALUE (as text, checked against the topic's value serde) to
    /// TOPIC, one of the app's topics.
    Send {
        /// The topic.
        topic: String,
        /// The value, as the topic's serde reads it from its UTF-8 bytes
        /// (JSON for a JSON topic, the text for a string topic).
        value: String,
        /// The key, as the topic's key serde reads it from its UTF-8
        /// bytes.
        #[arg(long)]
        key: Option<String>,
    },
}

/// Prints rows as a table with a header, columns padded to their widest
/// cell.
fn print_table(header: [&str; 3], rows: &[(String, String, String)]) -> std::io::Result<()> {
    let mut widths = header.map(str::len);
    for (a, b, c) in rows {
        for (w, cell) in widths.iter_mut().zip([a, b, c]) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |out: &mut std::io::StdoutLock<'_>, cells: [&str; 3]| {
        writeln!(
            out,
            "{:<w0$}  {:<w1$}  {}",
            cells[0],
            cells[1],
            cells[2],
            w0 = widths[0],
            w1 = widths[1]
        )
    };
    line(&mut out, header)?;
    line(
        &mut out,
        [
            &"-".repeat(widths[0]),
            &"-".repeat(widths[1]),
            &"-".repeat(widths[2]),
        ],
    )?;
    for (a, b, c) in rows {
        line(&mut out, [a, b, c])?;
    }
    Ok(())
}

impl App {
    /// Runs the command of the binary's arguments (Faust's `myapp worker`,
    /// `myapp agents`, `myapp tables`, `myapp send TOPIC VALUE`):
    /// `worker`, the default, runs the agents until Ctrl-C. Call it from
    /// `main` inside a tokio runtime; errors are printed and give exit
    /// status 1.
    pub async fn main(self) -> ExitCode {
        match self.run_command(std::env::args_os()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(AgentError::Usage(message)) => {
                eprintln!("{message}");
                ExitCode::from(2)
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    }

    /// Runs the command of `args` (the first is the program name).
    ///
    /// # Errors
    ///
    /// [`AgentError::Usage`] for bad arguments (with clap's message); the
    /// command's error.
    pub async fn run_command<I, T>(mut self, args: I) -> Result<()>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let cli = match Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(e) if e.use_stderr() => return Err(AgentError::Usage(e.to_string())),
            Err(e) => {
                print!("{e}");
                return Ok(());
            }
        };
        let io = |e: std::io::Error| AgentError::Usage(format!("writing to stdout: {e}"));
        match cli.command.unwrap_or(Command::Worker) {
            Command::Worker => self.run().await,
            Command::Agents => {
                print_table(["agent", "topic", "description"], &self.agents()).map_err(io)
            }
            Command::Tables => {
                print_table(["table", "changelog", "types"], &self.tables()).map_err(io)
            }
            Command::Send { topic, value, key } => {
                self.send_text(&topic, key.as_deref(), &value).await?;
                println!("sent to {topic}");
                Ok(())
            }
        }
    }
}
