//! The pure rules of scheduled backups, shared by the Lambda functions, `backupctl`, the
//! local engine and the WebAssembly form.
//!
//! Nothing here performs I/O, reads a clock or awaits: callers pass the instant in
//! (`schedule.next_after(now)`, `plan_prune(..)`), which is what lets the same code run in a
//! browser (`wasm32-unknown-unknown`) and be tested exhaustively.
//!
//! # Layout
//! - [`error`]: the `code`/`field`/span/`message` error shape every check returns.
//! - [`schedule`]: the five-field cron dialect: parsing, validation, next runs, the English
//!   description and the EventBridge translation.
//! - [`template`]: backup description templates (`{cluster} {datetime:rfc3339}`).
//! - [`retention`]: which of a job's backups a successful run keeps and which it prunes.
//! - [`job`]: validation of a whole create-job request, every problem keyed by field.
//! - [`api`]: the JSON shapes of the HTTP API (SPEC §7), shared by server, CLI and console.
//!   Among them [`api::RunFailure`], the `errorCode` of a failed run or backup: its serde
//!   names are the stable codes, and an unknown stored code reads as `Unknown`.
//! - [`check`]: the JSON objects `backupctl schedule check` / `template render` print and the
//!   WebAssembly module returns.
//! - [`civil`]: calendar arithmetic on whole minutes and the one timestamp format we print.

pub mod api;
pub mod check;
pub mod civil;
pub mod error;
pub mod job;
pub mod retention;
pub mod schedule;
pub mod template;

pub use error::{ErrorCode, Field, FieldError, FieldErrors};
pub use schedule::Schedule;
