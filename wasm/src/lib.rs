//! The core's checks for JavaScript: what the job form runs while the operator types.
//!
//! A thin layer, as in cloudflare/saffron's wasm crate: every rule lives in `backup-core`, and
//! this crate only renames for JavaScript, turns JavaScript arguments into core types and the
//! core's answers into JavaScript objects. The objects are written as JSON text by [`json`]
//! (in the key order of the core's serde derives) and handed over through `JSON.parse`, so
//! `JSON.stringify(validateSchedule(..))` is byte for byte the line `backupctl schedule check
//! --json` prints (same keys, same order); the parity test in `tests/browser/` holds it to
//! that.
//!
//! No clock is read here: the page passes `Date.now()` in, as every caller of the core does.
//!
//! # Layout
//! - [`checks`]: the exports' work in plain Rust (argument conversion, the `validateJob`
//!   result shape), built and tested on the host too.
//! - [`json`]: reading the arguments and writing the results as JSON text, without
//!   `serde_json` (half the module's size).
//! - [`rfc3339`]: `renderTemplate`'s `datetime`, read as chrono reads it, without chrono's
//!   parser.
//! - [`typescript`]: the TypeScript types of the exports' arguments and results, written
//!   into the package's `.d.ts`.
//! - this file: the `#[wasm_bindgen]` exports themselves and the JSON hand-over.
//!
//! # Exports
//! | JavaScript | returns | same as |
//! |---|---|---|
//! | `validateSchedule(expr, afterEpochMillis, count?)` | `ScheduleCheck` | `backupctl schedule check --json` |
//! | `renderTemplate(template, context)` | `TemplateCheck` | `backupctl template render --json` |
//! | `validateJob(request)` | `JobCheck` | the API's 400 `fields` for `POST …/jobs` |
//! | `validateCluster(request)` | `ClusterCheck` | the API's 400 `fields` for `POST …/clusters` (every provider, hooks and restores; the path's shape only) |
//! | `limits()` | `Limits` | the core's length and count limits, for `maxlength`/`min`/`max` |
//!
//! The operator's lock check (`backup_core::cluster::validate_lock`) is not exported: the
//! lock dialog is not part of the form, and it cost about 1.9 KB of the gzipped module.
//!
//! A malformed argument (a `NaN` instant, a context or request that does not have the
//! documented shape) throws a `RangeError` or `TypeError`; a bad *value* the operator typed
//! never throws, it comes back as `valid: false` with errors.

#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

/// What the standard prelude would bring, from `alloc`, for the build without `std`.
#[allow(unused_imports)]
mod prelude {
    pub(crate) use alloc::borrow::ToOwned;
    pub(crate) use alloc::format;
    pub(crate) use alloc::string::{String, ToString};
    pub(crate) use alloc::vec;
    pub(crate) use alloc::vec::Vec;
}
#[allow(unused_imports)]
use prelude::*;

/// Without `std` a panic traps: the call stops with a `RuntimeError`, as it did with std's
/// handler under `panic = "abort"`, without the code that formatted the message and location
/// nobody could read (wasm32-unknown-unknown has no stderr).
#[cfg(all(target_arch = "wasm32", not(feature = "std")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

pub mod checks;
pub mod json;
pub mod rfc3339;
pub mod typescript;

use wasm_bindgen::prelude::*;

pub use checks::{ArgumentError, JobCheck, Limits, RequestCheck};

/// talc instead of the standard library's dlmalloc: the same job (memory is freed and reused
/// between calls, so a page that checks on every keystroke does not grow) in about a fifth
/// of dlmalloc's code.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

/// Checks a schedule expression and lists its next runs, as `backupctl schedule check
/// --json` prints it: `{valid, schedule, description, eventbridge, minIntervalMinutes, next}`
/// or `{valid: false, schedule, errors}`.
///
/// `afterEpochMillis` is the instant the runs are listed after, in milliseconds since the
/// Unix epoch (pass `Date.now()`); `count` is how many runs to list (default 5, at most
/// 1000). Throws a `RangeError` when `afterEpochMillis` is not a finite instant.
#[wasm_bindgen(js_name = validateSchedule, unchecked_return_type = "ScheduleCheck")]
pub fn validate_schedule(
    expr: &str,
    #[wasm_bindgen(js_name = afterEpochMillis)] after_epoch_millis: f64,
    count: Option<u32>,
) -> Result<JsValue, JsValue> {
    let check = checks::schedule(expr, after_epoch_millis, count).map_err(throwable)?;
    to_js(&checks::schedule_json(&check))
}

/// Renders a backup description template as a run would name its backup, as `backupctl
/// template render --json` prints it: `{valid: true, rendered}` or `{valid: false, errors}`.
///
/// `context` is `{clusterId, clusterDescription, clusterProvider, clusterRegion, index,
/// datetime}`, with `datetime` an RFC 3339 instant (`new Date(ms).toISOString()`). Throws a
/// `TypeError` when `context` does not have that shape.
#[wasm_bindgen(js_name = renderTemplate, unchecked_return_type = "TemplateCheck")]
pub fn render_template(
    template: &str,
    #[wasm_bindgen(unchecked_param_type = "RenderContext")] context: JsValue,
) -> Result<JsValue, JsValue> {
    let context = json_argument("context", &context)?;
    let check = checks::template(template, &context).map_err(throwable)?;
    to_js(&checks::template_json(&check))
}

/// Checks a whole create-job request (the SPEC §7 body) and reports every problem of every
/// field: `{valid: true}` or `{valid: false, problems, fields}`, where `problems` maps each
/// JSON path (`schedule`, `data.clusterId`, …) to its errors with spans and `fields` maps it
/// to one message, exactly the `fields` map of the API's 400 answer.
///
/// Throws a `TypeError` when `request` is not an object of the request's shape (an unknown
/// key, a count that is not a whole number): such a body is a bug in the caller, not a
/// mistake of the operator.
#[wasm_bindgen(js_name = validateJob, unchecked_return_type = "JobCheck")]
pub fn validate_job(
    #[wasm_bindgen(unchecked_param_type = "CreateJobRequest")] request: JsValue,
) -> Result<JsValue, JsValue> {
    request_check(&request, checks::job)
}

/// Checks a register-cluster request as the API does before asking the provider: a
/// `directory` cluster (`path`, `preHook?`, `postHook?`), a `command` cluster (`path`,
/// `backupCommand`, `restoreCommand?`, `runAs?`, `commandTimeoutSeconds?`) or an `aws-ebs`
/// one (`volumeIds | instanceTag`), or a restore (`sourceBackupId` with `path`, or with
/// `availabilityZone` and `volumeType?`; `provider` may then be left out). Answers
/// `{valid: true}` or `{valid: false, problems, fields}`, keyed by field name. Whether a
/// directory exists, the server allows it or runs commands (`serve --allow-commands`), and
/// whether the backup exists, is only the server's to say.
///
/// Throws a `TypeError` when `request` is not an object of the request's shape: exactly the
/// bodies the API answers 400 `malformed_body`, with the same message.
#[wasm_bindgen(js_name = validateCluster, unchecked_return_type = "ClusterCheck")]
pub fn validate_cluster(
    #[wasm_bindgen(unchecked_param_type = "RegisterClusterRequest")] request: JsValue,
) -> Result<JsValue, JsValue> {
    request_check(&request, checks::cluster)
}

/// The limits the core enforces, so a form can set `maxlength`, `min` and `max` from the
/// same numbers the server checks.
#[wasm_bindgen(unchecked_return_type = "Limits")]
pub fn limits() -> Result<JsValue, JsValue> {
    to_js(&checks::limits_json(&checks::limits()))
}

/// `validateJob` and `validateCluster`: one copy of the hand-over code for both (a function
/// pointer, not a generic, so the module holds it once).
fn request_check(
    request: &JsValue,
    check: fn(&str) -> Result<checks::RequestCheck, ArgumentError>,
) -> Result<JsValue, JsValue> {
    let request = json_argument("request", request)?;
    to_js(&checks::request_json(&check(&request).map_err(throwable)?))
}

/// Parses the result's JSON text in JavaScript: one call across the boundary, however many
/// keys the object has.
fn to_js(text: &str) -> Result<JsValue, JsValue> {
    js_sys::JSON::parse(text)
}

/// A JavaScript object argument as JSON text, for [`json`] to read into a core type.
fn json_argument(name: &str, value: &JsValue) -> Result<String, JsValue> {
    if !value.is_object() || js_sys::Array::is_array(value) {
        return Err(throwable(ArgumentError::Type(format!(
            "{name} must be an object (see the package's .d.ts)"
        ))));
    }
    js_sys::JSON::stringify(value)?
        .as_string()
        .ok_or_else(|| throwable(ArgumentError::Type(format!("{name} is not JSON"))))
}

fn throwable(error: ArgumentError) -> JsValue {
    match error {
        ArgumentError::Type(message) => js_sys::TypeError::new(&message).into(),
        ArgumentError::Range(message) => js_sys::RangeError::new(&message).into(),
    }
}
