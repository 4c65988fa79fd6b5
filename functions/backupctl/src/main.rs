//! `backupctl`: the scheduled-backup orchestrator's command line.
//!
//! It accepts Event Store Cloud's `esc orchestrate` command lines with `esc` replaced by
//! `backupctl` (`orchestrate` may be left out), runs the local server (`serve`), and checks
//! schedules and templates offline with the same core the server and the browser use.
//!
//! # Layout
//! - `cli`: the command-line grammar (clap), and nothing else.
//! - `offline`: `schedule check` and `template render`, which need no server.
//! - `client`: the commands that talk to the HTTP API at `--url`; `client/sigv4` signs them
//!   for an AWS deployment's API with `--aws-sigv4` (feature `aws`).
//! - `serve`: the local server: HTTP API, web form and scheduler over SQLite.
//! - `guard`, `listener`, `token`: `serve`'s access rules, accept loop and API token (§12).
//!
//! Exit statuses: 0 success (a valid schedule or template), 1 a failure or invalid input,
//! 2 a usage error.

mod cli;
mod client;
mod guard;
mod listener;
mod offline;
mod serve;
mod token;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Schedule(cmd) => offline::schedule(cmd, cli.global.json),
        Command::Template(cmd) => offline::template(cmd, cli.global.json),
        Command::Serve(args) => serve::run(args),
        other => client::run(&cli.global, other),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}
