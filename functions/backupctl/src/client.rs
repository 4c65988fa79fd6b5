//! The commands that talk to the HTTP API at `--url`.

use std::process::ExitCode;

use crate::cli::{Command, Global};

pub fn run(_global: &Global, _command: Command) -> anyhow::Result<ExitCode> {
    anyhow::bail!("this command needs the HTTP API client, which this build does not have yet")
}
