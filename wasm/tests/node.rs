//! Each export as JavaScript sees it, run under Node by `wasm-bindgen-test-runner`
//! (`scripts/test-wasm.sh`): real `JsValue`s in, real objects and exceptions out.
#![cfg(target_arch = "wasm32")]

use backup_wasm::{limits, render_template, validate_cluster, validate_job, validate_schedule};
use js_sys::{Reflect, JSON};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::wasm_bindgen_test;

/// `2026-11-27T06:00:00Z`, a Friday.
const FRIDAY_6AM: f64 = 1_795_759_200_000.0;

fn stringify(value: &JsValue) -> String {
    JSON::stringify(value).unwrap().as_string().unwrap()
}

fn object(json: &str) -> JsValue {
    JSON::parse(json).unwrap()
}

fn get(value: &JsValue, key: &str) -> JsValue {
    Reflect::get(value, &JsValue::from_str(key)).unwrap()
}

#[wasm_bindgen_test]
fn validate_schedule_returns_the_cli_object() {
    // GIVEN a Monday-noon schedule and Friday 06:00 UTC as now
    let result = validate_schedule("0 12 * * 1", FRIDAY_6AM, None).unwrap();
    // THEN JSON.stringify of the object is the line `backupctl schedule check --json` prints
    assert_eq!(
        stringify(&result),
        r#"{"valid":true,"schedule":"0 12 * * 1","description":"At 12:00 on Monday","eventbridge":["cron(0 12 ? * MON *)"],"minIntervalMinutes":10080,"next":["2026-11-30T12:00:00Z","2026-12-07T12:00:00Z","2026-12-14T12:00:00Z","2026-12-21T12:00:00Z","2026-12-28T12:00:00Z"]}"#
    );
    // AND it is a plain object a page can read fields from
    assert_eq!(get(&result, "valid"), JsValue::TRUE);
}

#[wasm_bindgen_test]
fn validate_schedule_reports_too_frequent_with_its_span() {
    let result = validate_schedule("*/30 * * * *", FRIDAY_6AM, Some(5)).unwrap();
    assert_eq!(get(&result, "valid"), JsValue::FALSE);
    let error = js_sys::Array::from(&get(&result, "errors")).get(0);
    assert_eq!(get(&error, "code"), "too_frequent");
    assert_eq!(get(&error, "field"), "minute");
    assert_eq!(get(&error, "start").as_f64(), Some(0.0));
    assert_eq!(get(&error, "end").as_f64(), Some(4.0));
    assert!(get(&result, "next").is_undefined());
}

#[wasm_bindgen_test]
fn validate_schedule_lists_count_runs() {
    let result = validate_schedule("0 * * * *", FRIDAY_6AM, Some(12)).unwrap();
    assert_eq!(js_sys::Array::from(&get(&result, "next")).length(), 12);
}

#[wasm_bindgen_test]
fn validate_schedule_throws_a_range_error_for_a_non_instant() {
    // GIVEN a page that forgot to pass Date.now() (undefined arrives as NaN)
    let thrown = validate_schedule("0 * * * *", f64::NAN, None).unwrap_err();
    // THEN a RangeError says what to pass
    let error = thrown
        .dyn_ref::<js_sys::RangeError>()
        .expect("a RangeError");
    assert!(String::from(error.message()).contains("Date.now()"));
}

#[wasm_bindgen_test]
fn a_range_error_shows_the_number_as_rust_does() {
    // GIVEN instants out of Date's range WHEN refused THEN the message writes the number as
    // Rust's `Display` for f64 does (the module asks JavaScript for the digits instead)
    for bad in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        8.64e15 + 2.0,
        -1e300,
        1e21,
        1.7976931348623157e308,
        -9.007199254740993e15,
    ] {
        let thrown = validate_schedule("0 * * * *", bad, None).unwrap_err();
        let message = String::from(thrown.dyn_ref::<js_sys::RangeError>().unwrap().message());
        assert!(message.ends_with(&format!("; {bad} is not")), "{message}");
    }
}

#[wasm_bindgen_test]
fn render_template_returns_the_cli_object() {
    let context = object(
        r#"{"clusterId":"c196ogto0aeqohe3ommq","clusterDescription":"Orders","clusterProvider":"directory","clusterRegion":"local","index":26,"datetime":"2026-11-27T05:00:00Z"}"#,
    );
    let result = render_template(
        "{cluster} #{index:hex} {datetime:RFC3339} {{x}}",
        context.clone(),
    )
    .unwrap();
    assert_eq!(
        stringify(&result),
        r#"{"valid":true,"rendered":"Orders #1a 2026-11-27T05:00:00Z {x}"}"#
    );
    let result = render_template("{cluster} {nope}", context).unwrap();
    assert_eq!(
        stringify(&get(&result, "valid")),
        "false",
        "{}",
        stringify(&result)
    );
    let error = js_sys::Array::from(&get(&result, "errors")).get(0);
    assert_eq!(get(&error, "code"), "unknown_placeholder");
    assert_eq!(get(&error, "start").as_f64(), Some(10.0));
    assert_eq!(get(&error, "end").as_f64(), Some(16.0));
}

#[wasm_bindgen_test]
fn render_template_throws_a_type_error_for_a_bad_context() {
    for bad in [
        JsValue::UNDEFINED,
        JsValue::NULL,
        JsValue::from_str("{}"),
        object("[]"),
        object(r#"{"clusterId":"c1"}"#),
    ] {
        let thrown = render_template("{cluster}", bad).unwrap_err();
        assert!(thrown.is_instance_of::<js_sys::TypeError>());
    }
}

#[wasm_bindgen_test]
fn validate_job_accepts_the_seed_request() {
    let request = object(
        r#"{"description":"My Hourly Backup","schedule":"0 */1 * * *","type":"ScheduledBackup","data":{"clusterId":"c196ogto0aeqohe3ommq","description":"{cluster} Hourly Backup {datetime:RFC3339}","maxBackupCount":2}}"#,
    );
    assert_eq!(
        stringify(&validate_job(request).unwrap()),
        r#"{"valid":true}"#
    );
}

#[wasm_bindgen_test]
fn validate_job_keys_every_problem_by_field() {
    // GIVEN a request where every field is wrong
    let request = object(
        r#"{"description":" ","schedule":"*/30 * * * *","type":"Backup","data":{"clusterId":"a b","description":"{foo}","maxBackupCount":0}}"#,
    );
    let result = validate_job(request).unwrap();
    assert_eq!(get(&result, "valid"), JsValue::FALSE);
    // THEN problems and the API-style messages have the same keys, in the same order
    let problems = js_sys::Object::keys(&get(&result, "problems").into());
    let fields = js_sys::Object::keys(&get(&result, "fields").into());
    let names: Vec<String> = problems.iter().map(|k| k.as_string().unwrap()).collect();
    assert_eq!(
        names,
        [
            "data.clusterId",
            "data.description",
            "data.maxBackupCount",
            "description",
            "schedule",
            "type"
        ]
    );
    assert_eq!(stringify(&problems), stringify(&fields));
    let schedule = js_sys::Array::from(&get(&get(&result, "problems"), "schedule")).get(0);
    assert_eq!(get(&schedule, "code"), "too_frequent");
    let message = get(&get(&result, "fields"), "schedule")
        .as_string()
        .unwrap();
    assert!(message.contains("once an hour"), "{message}");
}

#[wasm_bindgen_test]
fn validate_job_throws_a_type_error_for_a_body_of_the_wrong_shape() {
    for bad in [
        JsValue::UNDEFINED,
        object("[]"),
        object(r#"{"schedul":"0 * * * *"}"#),
        object(r#"{"data":{"maxBackupCount":2.5}}"#),
    ] {
        let thrown = validate_job(bad).unwrap_err();
        assert!(thrown.is_instance_of::<js_sys::TypeError>());
    }
}

#[wasm_bindgen_test]
fn limits_are_the_cores() {
    let result = limits().unwrap();
    assert_eq!(get(&result, "maxBackupCount").as_f64(), Some(1000.0));
    assert_eq!(get(&result, "maxTemplateChars").as_f64(), Some(256.0));
    assert_eq!(get(&result, "minIntervalMinutes").as_f64(), Some(60.0));
}

#[wasm_bindgen_test]
fn validate_cluster_keys_problems_by_field_with_codes() {
    // GIVEN a directory cluster with a relative path WHEN checked in the browser
    let result = validate_cluster(object(
        r#"{"id":"c1","description":"Orders","provider":"directory","path":"data"}"#,
    ))
    .unwrap();
    // THEN the path's problem has the API's code and message
    assert_eq!(get(&result, "valid"), JsValue::FALSE);
    let error = js_sys::Array::from(&get(&get(&result, "problems"), "path")).get(0);
    assert_eq!(get(&error, "code"), "not_absolute");
    assert_eq!(
        get(&get(&result, "fields"), "path"),
        "Give the data directory as an absolute path (starting with /); `data` is not."
    );
    // AND a valid one is just valid
    let ok = validate_cluster(object(
        r#"{"id":"c1","description":"Orders","provider":"directory","path":"/var/lib/db"}"#,
    ))
    .unwrap();
    assert_eq!(stringify(&ok), r#"{"valid":true}"#);
    // AND a body of another shape throws a TypeError
    let thrown = validate_cluster(object(r#"{"id":"c1"}"#)).unwrap_err();
    assert!(thrown.dyn_ref::<js_sys::TypeError>().is_some());
}

#[wasm_bindgen_test]
fn validate_cluster_reads_command_clusters_hooks_and_restores() {
    // GIVEN the bodies the API takes since the command provider, hooks and restores
    for body in [
        r#"{"id":"pg","description":"PostgreSQL","provider":"command","path":"/var/lib/postgresql/16/main","backupCommand":"pg_basebackup -D \"$BACKUP_DIR\"","restoreCommand":"cp -a \"$BACKUP_DIR\"/. \"$TARGET_DIR\"","runAs":"postgres","commandTimeoutSeconds":7200}"#,
        r#"{"id":"c1","description":"Orders","provider":"directory","path":"/var/lib/db","preHook":"sync","postHook":null}"#,
        r#"{"id":"r1","description":"Restored","sourceBackupId":"c196ogto0aeqohe3ommq","path":"/srv/restored"}"#,
        r#"{"id":"r2","description":"Restored","sourceBackupId":"c196ogto0aeqohe3ommq","availabilityZone":"eu-west-1a","volumeType":"gp3"}"#,
    ] {
        // THEN each is valid
        let result = validate_cluster(object(body)).unwrap();
        assert_eq!(stringify(&result), r#"{"valid":true}"#, "{body}");
    }
    // AND a command cluster's own fields are checked, keyed by their names
    let result = validate_cluster(object(
        r#"{"id":"pg","description":"d","provider":"command","path":"/a","backupCommand":"b","commandTimeoutSeconds":0}"#,
    ))
    .unwrap();
    let error =
        js_sys::Array::from(&get(&get(&result, "problems"), "commandTimeoutSeconds")).get(0);
    assert_eq!(get(&error, "code"), "out_of_range");
    // AND a body the API refuses as malformed throws its message
    let thrown = validate_cluster(object(
        r#"{"id":"pg","description":"d","provider":"command","path":"/a"}"#,
    ))
    .unwrap_err();
    let message = String::from(thrown.dyn_ref::<js_sys::TypeError>().unwrap().message());
    assert!(
        message.ends_with(": missing field `backupCommand`"),
        "{message}"
    );
}
