//! Any UTF-8 text as a backup description template: parsing never panics, every error can be
//! underlined, and a template that parses renders for any run a user can describe.
#![no_main]

use backup_core::template::{RenderContext, Template};
use backup_core::Field;
use chrono::DateTime;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let chars = text.chars().count();
    match Template::parse(text) {
        Err(errors) => {
            assert!(!errors.is_empty(), "`{text}`: an error without problems");
            for e in errors.iter() {
                assert_eq!(e.field, Field::Description, "`{text}`: {e}");
                assert!(
                    e.start <= e.end && e.end <= chars,
                    "`{text}`: span {}..{} outside 0..{chars}",
                    e.start,
                    e.end
                );
                assert!(!e.message.trim().is_empty(), "`{text}`: empty message");
            }
        }
        Ok(t) => {
            assert_eq!(t.as_str(), text);
            // From the first instant RFC 3339 can write to its last, with odd milliseconds.
            for (seconds, nanos, index) in [
                (-62_167_219_200, 0, 1),
                (1_795_755_600, 123_000_000, 42),
                (253_402_300_799, 999_999_999, u64::MAX),
            ] {
                let context = RenderContext {
                    cluster_id: "c196ogto0aeqohe3ommq".into(),
                    cluster_description: "{cluster} }{ é\u{0}".into(),
                    cluster_provider: "directory".into(),
                    cluster_region: "local".into(),
                    index,
                    datetime: DateTime::from_timestamp(seconds, nanos).unwrap(),
                };
                let rendered = t.render(&context);
                if !text.contains(['{', '}']) {
                    assert_eq!(rendered, text, "plain text renders as itself");
                }
            }
        }
    }
});
