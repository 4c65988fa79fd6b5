//! The JSON objects `backupctl schedule check --json` and `backupctl template render --json`
//! print, and that the WebAssembly module returns (SPEC §8).
//!
//! Defined once here so the CLI, the browser and the API can never drift apart: a parity test
//! compares their output byte for byte.

use crate::prelude::*;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::civil::format_rfc3339;
use crate::error::FieldError;
use crate::schedule::Schedule;
use crate::template::{RenderContext, Template};

/// The most next runs one check lists.
pub const MAX_NEXT_RUNS: usize = 1000;

/// The result of checking one schedule expression.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleCheck {
    pub valid: bool,
    pub schedule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eventbridge: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_interval_minutes: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// Checks `expr`, listing up to `count` (at most [`MAX_NEXT_RUNS`]) runs strictly after
/// `after`.
pub fn check_schedule(expr: &str, after: DateTime<Utc>, count: usize) -> ScheduleCheck {
    match Schedule::parse(expr) {
        Ok(s) => ScheduleCheck {
            valid: true,
            schedule: expr.to_string(),
            description: Some(s.describe()),
            eventbridge: Some(s.eventbridge()),
            min_interval_minutes: Some(s.min_interval_minutes()),
            next: Some(
                s.upcoming(after)
                    .take(count.min(MAX_NEXT_RUNS))
                    .map(format_rfc3339)
                    .collect(),
            ),
            errors: None,
        },
        Err(errors) => ScheduleCheck {
            valid: false,
            schedule: expr.to_string(),
            description: None,
            eventbridge: None,
            min_interval_minutes: None,
            next: None,
            errors: Some(errors.0),
        },
    }
}

/// The result of previewing one backup description template (SPEC §8 `template render`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateCheck {
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rendered: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
}

/// Parses `template` and renders it with `context`, as a run would name its backup.
pub fn check_template(template: &str, context: &RenderContext) -> TemplateCheck {
    match Template::parse(template) {
        Ok(t) => TemplateCheck {
            valid: true,
            rendered: Some(t.render(context)),
            errors: None,
        },
        Err(errors) => TemplateCheck {
            valid: false,
            rendered: None,
            errors: Some(errors.0),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_valid_schedule_prints_the_spec_object() {
        let after = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let json = serde_json::to_string(&check_schedule("0 */1 * * *", after, 2)).unwrap();
        assert_eq!(
            json,
            r#"{"valid":true,"schedule":"0 */1 * * *","description":"At minute 0 of every hour","eventbridge":["cron(0 * * * ? *)"],"minIntervalMinutes":60,"next":["2026-01-01T01:00:00Z","2026-01-01T02:00:00Z"]}"#
        );
    }

    #[test]
    fn an_invalid_schedule_prints_its_errors() {
        let after = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let value = serde_json::to_value(check_schedule("*/30 * * * *", after, 5)).unwrap();
        assert_eq!(value["valid"], false);
        assert_eq!(value["schedule"], "*/30 * * * *");
        let e = &value["errors"][0];
        assert_eq!(e["code"], "too_frequent");
        assert_eq!(e["field"], "minute");
        assert_eq!((e["start"].as_u64(), e["end"].as_u64()), (Some(0), Some(4)));
        assert!(e["message"].as_str().unwrap().contains("once an hour"));
        assert!(value.get("next").is_none());
    }

    #[test]
    fn a_template_renders_or_lists_its_errors() {
        let context = RenderContext {
            cluster_id: "c1".into(),
            cluster_description: "Orders".into(),
            cluster_provider: "directory".into(),
            cluster_region: "local".into(),
            index: 3,
            datetime: Utc.with_ymd_and_hms(2026, 11, 27, 5, 0, 0).unwrap(),
        };
        let json = serde_json::to_string(&check_template(
            "{cluster} #{index} {datetime:RFC3339}",
            &context,
        ))
        .unwrap();
        assert_eq!(
            json,
            r#"{"valid":true,"rendered":"Orders #3 2026-11-27T05:00:00Z"}"#
        );
        let value = serde_json::to_value(check_template("{nope}", &context)).unwrap();
        assert_eq!(value["valid"], false);
        assert_eq!(value["errors"][0]["code"], "unknown_placeholder");
        assert_eq!(value["errors"][0]["field"], "description");
        assert!(value.get("rendered").is_none());
    }
}
