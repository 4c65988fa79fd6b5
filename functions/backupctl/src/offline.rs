//! `schedule check` and `template render`: the core's checks, with no server.
//!
//! `--json` prints exactly the object the WebAssembly module returns (one line per input),
//! so scripts, the browser and this command can be compared byte for byte.

use std::process::ExitCode;

use anyhow::Context;
use backup_core::check::{check_schedule, check_template, ScheduleCheck, TemplateCheck};
use backup_core::template::RenderContext;
use backup_core::FieldError;
use chrono::{DateTime, Utc};

use crate::cli::{ScheduleCommand, TemplateCommand};

/// Exit status of a usage error, as clap uses.
const USAGE: u8 = 2;

pub fn schedule(command: ScheduleCommand, json: bool) -> anyhow::Result<ExitCode> {
    let ScheduleCommand::Check(args) = command;
    let after = match instant_arg("--after", args.after.as_deref()) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    let count = usize::from(args.count);
    let all_valid = print_checks(
        &args.expressions,
        json,
        |expr| check_schedule(expr, after, count),
        |check| check.valid,
        |_, check| print_schedule(check),
    )?;
    Ok(status(all_valid))
}

pub fn template(command: TemplateCommand, json: bool) -> anyhow::Result<ExitCode> {
    let TemplateCommand::Render(args) = command;
    let datetime = match instant_arg("--datetime", args.datetime.as_deref()) {
        Ok(t) => t,
        Err(code) => return Ok(code),
    };
    let context = RenderContext {
        cluster_id: args.cluster_id,
        cluster_description: args.cluster_description,
        cluster_provider: args.cluster_provider,
        cluster_region: args.cluster_region,
        index: args.index,
        datetime,
    };
    let all_valid = print_checks(
        &args.templates,
        json,
        |template| check_template(template, &context),
        |check| check.valid,
        print_template,
    )?;
    Ok(status(all_valid))
}

fn status(valid: bool) -> ExitCode {
    if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Parses an RFC 3339 option, defaulting to now; a bad value is a usage error (exit 2).
fn instant_arg(flag: &str, value: Option<&str>) -> Result<DateTime<Utc>, ExitCode> {
    match value {
        None => Ok(Utc::now()),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                eprintln!(
                    "error: {flag} `{text}` is not an RFC 3339 instant ({e}); write it like 2026-11-27T06:00:00Z"
                );
                ExitCode::from(USAGE)
            }),
    }
}

/// Checks each input, printing each check as one line of JSON or with `print`: whether
/// every input was valid.
fn print_checks<C: serde::Serialize>(
    inputs: &[String],
    json: bool,
    check: impl Fn(&str) -> C,
    valid: impl Fn(&C) -> bool,
    print: impl Fn(&str, &C),
) -> anyhow::Result<bool> {
    let mut all_valid = true;
    for input in inputs {
        let checked = check(input);
        all_valid &= valid(&checked);
        if json {
            println!(
                "{}",
                serde_json::to_string(&checked).context("printing JSON")?
            );
        } else {
            print(input, &checked);
        }
    }
    Ok(all_valid)
}

fn print_schedule(check: &ScheduleCheck) {
    if let Some(errors) = &check.errors {
        println!("{}  invalid", check.schedule);
        print_errors(&check.schedule, errors);
        return;
    }
    println!("{}  valid", check.schedule);
    if let Some(description) = &check.description {
        println!("  {description} (UTC)");
    }
    if let Some(minutes) = check.min_interval_minutes {
        println!("  at least {minutes} minutes between runs");
    }
    for rule in check.eventbridge.iter().flatten() {
        println!("  EventBridge: {rule}");
    }
    if let Some(next) = &check.next {
        println!("  next runs:");
        for t in next {
            println!("    {t}");
        }
    }
}

fn print_template(template: &str, check: &TemplateCheck) {
    match (&check.rendered, &check.errors) {
        (Some(rendered), _) => println!("{rendered}"),
        (None, Some(errors)) => {
            println!("{template}  invalid");
            print_errors(template, errors);
        }
        (None, None) => {}
    }
}

/// Each error under the input, with carets under its span.
fn print_errors(input: &str, errors: &[FieldError]) {
    for e in errors {
        let printable: String = input
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        println!("  {printable}");
        let width = e.end.saturating_sub(e.start).max(1);
        println!("  {}{}", " ".repeat(e.start), "^".repeat(width));
        println!("  {} ({}): {}", e.code, e.field, e.message);
    }
}
