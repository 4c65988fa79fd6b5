//! The pure rules of scheduled backups, shared by the Lambda functions, `backupctl`, the
//! local engine and the WebAssembly form.
//!
//! Nothing here performs I/O, reads a clock or awaits: callers pass the instant in
//! (`schedule.next_after(now)`, `plan_prune(..)`), which is what lets the same code run in a
//! browser (`wasm32-unknown-unknown`) and be tested exhaustively.
//!
//! # Layout
//! - [`error`]: the `code`/`field`/span/`message` error shape every check returns, and
//!   [`Problems`], a request's errors keyed by its JSON field names.
//! - [`schedule`]: the five-field cron dialect: parsing, validation, next runs, the English
//!   description and the EventBridge translation.
//! - [`template`]: backup description templates (`{cluster} {datetime:rfc3339}`).
//! - [`retention`]: which of a job's backups a successful run keeps and which it prunes.
//! - [`job`]: validation of a whole create-job request, every problem keyed by field.
//! - [`cluster`]: validation of a register-cluster request (id, description, region, the
//!   path's shape, EBS volume ids, instance tag) and of an operator's lock request
//!   (operation name, TTL), keyed the same way. The file-system checks of a path stay with
//!   the local provider.
//! - [`api`]: the JSON shapes of the HTTP API (SPEC §7), shared by server, CLI and console.
//!   Among them [`api::RunFailure`], the `errorCode` of a failed run or backup: its serde
//!   names are the stable codes, and an unknown stored code reads as `Unknown`.
//! - [`check`]: the JSON objects `backupctl schedule check` / `template render` print and the
//!   WebAssembly module returns.
//! - [`civil`]: calendar arithmetic on whole minutes and the one timestamp format we print.

// `no_std` (with `alloc`) outside its tests, so that the WebAssembly module, built without
// the standard library, links neither std's panic machinery nor its formatting of panic
// messages and locations (see wasm/README.md). Everything here needs only `alloc` anyway:
// no I/O, no clock, no threads.
#![cfg_attr(not(test), no_std)]

extern crate alloc;
// utoipa's derives write `std::` paths.
#[cfg(feature = "openapi")]
extern crate std;

/// What the standard prelude would bring, from `alloc`.
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}

pub mod api;
pub mod check;
pub mod civil;
pub mod cluster;
pub mod error;
pub mod job;
pub mod retention;
pub mod schedule;
pub mod template;

pub use error::{ErrorCode, Field, FieldError, FieldErrors, Problems};
pub use schedule::Schedule;
