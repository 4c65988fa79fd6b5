//! JSON in and out of the module without `serde_json`.
//!
//! The exports hand JSON text across the boundary (`JSON.stringify` of an argument in,
//! `JSON.parse` of a result out), so the objects a page sees are exactly those `serde_json`
//! printed before. `serde_json` and serde's visitors, with the float formatting their error
//! messages need, were about half of the module; the few shapes the exports read and write
//! are done by hand here, in a few hundred bytes of code.
//!
//! Writing: keys in the order of the core's serde derives (the parity tests compare
//! `JSON.stringify` of the result with `backupctl --json` byte for byte).
//!
//! Reading: what serde's derives accept for the same types, with serde's messages (`unknown
//! field`, `missing field`, `duplicate field`, `invalid type`, `invalid value`); a host test
//! holds each reader to the derive. Differences, all on bodies a form never builds: no
//! `at line 1 column N` suffix, a float is quoted as `JSON.stringify` wrote it, and a nested
//! struct given as an array is refused instead of read field by field.

use crate::prelude::*;
use core::fmt::Write as _;

/// Nesting deeper than this is refused, as `serde_json` does, so no input can exhaust the
/// stack.
const MAX_DEPTH: usize = 128;

/// A parsed JSON value; numbers keep the distinctions serde makes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// A non-negative integer that fits in `u64`.
    Unsigned(u64),
    /// A negative integer that fits in `i64`.
    Signed(i64),
    /// Any other number, as written.
    Float(String),
    String(String),
    Array(Vec<Value>),
    /// Keys in the order written, duplicates kept (a reader refuses them).
    Object(Vec<(String, Value)>),
}

/// Parses one JSON text (as `JSON.stringify` writes it; whitespace is allowed).
pub fn parse(text: &str) -> Result<Value, String> {
    let mut parser = Parser {
        text,
        bytes: text.as_bytes(),
        at: 0,
    };
    let value = parser.value(0)?;
    parser.skip_space();
    if parser.at < parser.bytes.len() {
        return Err("trailing characters".into());
    }
    Ok(value)
}

/// The text and its bytes: every piece taken out of it is cut at an ASCII byte, so it is
/// taken as text with `get` (no UTF-8 check, which linked `from_utf8`, and no slicing panic).
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn skip_space(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.bytes.get(self.at) {
            self.at += 1;
        }
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.bytes.get(self.at).copied();
        self.at += 1;
        b
    }

    fn eat(&mut self, literal: &str) -> Result<(), String> {
        if self
            .bytes
            .get(self.at..)
            .unwrap_or_default()
            .starts_with(literal.as_bytes())
        {
            self.at += literal.len();
            Ok(())
        } else {
            Err("expected value".into())
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("recursion limit exceeded".into());
        }
        self.skip_space();
        match self.bytes.get(self.at) {
            None => Err("EOF while parsing a value".into()),
            Some(b'n') => self.eat("null").map(|()| Value::Null),
            Some(b't') => self.eat("true").map(|()| Value::Bool(true)),
            Some(b'f') => self.eat("false").map(|()| Value::Bool(false)),
            Some(b'"') => self.string().map(Value::String),
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_space();
                if self.bytes.get(self.at) == Some(&b']') {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.skip_space();
                    match self.next() {
                        Some(b',') => {}
                        Some(b']') => return Ok(Value::Array(items)),
                        _ => return Err("expected `,` or `]`".into()),
                    }
                }
            }
            Some(b'{') => {
                self.at += 1;
                let mut entries = Vec::new();
                self.skip_space();
                if self.bytes.get(self.at) == Some(&b'}') {
                    self.at += 1;
                    return Ok(Value::Object(entries));
                }
                loop {
                    self.skip_space();
                    if self.bytes.get(self.at) != Some(&b'"') {
                        return Err("key must be a string".into());
                    }
                    let key = self.string()?;
                    self.skip_space();
                    if self.next() != Some(b':') {
                        return Err("expected `:`".into());
                    }
                    entries.push((key, self.value(depth + 1)?));
                    self.skip_space();
                    match self.next() {
                        Some(b',') => {}
                        Some(b'}') => return Ok(Value::Object(entries)),
                        _ => return Err("expected `,` or `}`".into()),
                    }
                }
            }
            Some(_) => self.number(),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.at;
        let mut integer = true;
        while let Some(&b) = self.bytes.get(self.at) {
            match b {
                b'0'..=b'9' | b'-' => {}
                b'.' | b'e' | b'E' | b'+' => integer = false,
                _ => break,
            }
            self.at += 1;
        }
        // The piece is ASCII: every byte matched above is.
        let text = self.text.get(start..self.at).unwrap_or_default();
        if text.is_empty() || text == "-" {
            return Err("expected value".into());
        }
        if integer {
            if let Ok(n) = text.parse::<u64>() {
                return Ok(Value::Unsigned(n));
            }
            // A negative one by its digits as a `u64`, so that one integer parser serves both
            // (`-0` is `Signed(0)`, as `i64`'s parser reads it).
            let negative = text.strip_prefix('-').and_then(|d| d.parse::<u64>().ok());
            if let Some(n) = negative.and_then(|n| 0i64.checked_sub_unsigned(n)) {
                return Ok(Value::Signed(n));
            }
        }
        Ok(Value::Float(text.to_owned()))
    }

    fn string(&mut self) -> Result<String, String> {
        self.at += 1; // the opening quote
        let mut out = String::new();
        // Unescaped text is copied in runs, from `run` to the next quote or backslash.
        let mut run = self.at;
        loop {
            let end = self.at;
            let b = self.next();
            if matches!(b, None | Some(b'"' | b'\\')) {
                out.push_str(self.text.get(run..end).unwrap_or_default());
            }
            match b {
                None => return Err("EOF while parsing a string".into()),
                Some(b'"') => break,
                Some(b'\\') => {
                    let c = match self.next() {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err("invalid escape".into()),
                    };
                    out.push(c);
                    run = self.at;
                }
                Some(_) => {}
            }
        }
        Ok(out)
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .ok_or("invalid escape")?;
        self.at += 4;
        Ok(digits)
    }

    fn unicode_escape(&mut self) -> Result<char, String> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                    return Err("lone leading surrogate in hex escape".into());
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err("lone leading surrogate in hex escape".into());
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            code => code,
        };
        char::from_u32(code).ok_or_else(|| "invalid unicode code point".into())
    }
}

/// serde's `Unexpected`, as `serde_json` shows it in an `invalid type` message.
fn unexpected(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Unsigned(n) => format!("integer `{n}`"),
        Value::Signed(n) => format!("integer `{n}`"),
        Value::Float(text) => format!("floating point `{text}`"),
        Value::String(s) => {
            let mut out = String::from("string \"");
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    '\0' => out.push_str("\\0"),
                    c if c.is_control() => {
                        let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(_) => "sequence".into(),
        Value::Object(_) => "map".into(),
    }
}

pub fn invalid_type(value: &Value, expected: &str) -> String {
    format!("invalid type: {}, expected {expected}", unexpected(value))
}

pub fn invalid_value(value: &Value, expected: &str) -> String {
    format!("invalid value: {}, expected {expected}", unexpected(value))
}

pub fn string(value: Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s),
        other => Err(invalid_type(&other, "a string")),
    }
}

/// `Option<String>`: `null` is `None`.
pub fn opt_string(value: Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        other => string(other).map(Some),
    }
}

pub fn strings(value: Value) -> Result<Vec<String>, String> {
    match value {
        // A loop rather than `collect` into a `Result`, whose adapter is code of its own.
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(string(item)?);
            }
            Ok(out)
        }
        other => Err(invalid_type(&other, "a sequence")),
    }
}

/// An integer of the type named `expected` (`u32`, `u64` or `i64`), in `min..=max`.
fn integer(value: Value, expected: &str, min: i128, max: i128) -> Result<i128, String> {
    let n = match value {
        Value::Unsigned(n) => i128::from(n),
        Value::Signed(n) => i128::from(n),
        other => return Err(invalid_type(&other, expected)),
    };
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        let shown = match i64::try_from(n) {
            Ok(n) if n < 0 => Value::Signed(n),
            _ => Value::Unsigned(n as u64),
        };
        Err(invalid_value(&shown, expected))
    }
}

pub fn opt_i64(value: Value) -> Result<Option<i64>, String> {
    match value {
        Value::Null => Ok(None),
        // In range, so the cast is exact.
        other => integer(other, "i64", i64::MIN.into(), i64::MAX.into()).map(|n| Some(n as i64)),
    }
}

pub fn opt_u32(value: Value) -> Result<Option<u32>, String> {
    match value {
        Value::Null => Ok(None),
        other => integer(other, "u32", 0, u32::MAX.into()).map(|n| Some(n as u32)),
    }
}

pub fn opt_u64(value: Value) -> Result<Option<u64>, String> {
    match value {
        Value::Null => Ok(None),
        other => u64(other).map(Some),
    }
}

pub fn u64(value: Value) -> Result<u64, String> {
    integer(value, "u64", 0, u64::MAX.into()).map(|n| n as u64)
}

/// The entries of a struct given as an object, each key checked against `fields` (the JSON
/// names, in declaration order) and seen at most once: `f(index, value)` reads each in the
/// order written. Unknown keys are refused when `deny_unknown` and skipped otherwise.
pub fn fields(
    value: Value,
    name: &str,
    fields: &[&str],
    deny_unknown: bool,
    mut f: impl FnMut(usize, Value) -> Result<(), String>,
) -> Result<(), String> {
    let entries = match value {
        Value::Object(entries) => entries,
        other => return Err(invalid_type(&other, &format!("struct {name}"))),
    };
    let mut seen = 0u32;
    for (key, value) in entries {
        match fields.iter().position(|f| *f == key) {
            Some(i) => {
                if seen & (1 << i) != 0 {
                    return Err(format!("duplicate field `{key}`"));
                }
                seen |= 1 << i;
                f(i, value)?;
            }
            None if deny_unknown => return Err(unknown("field", &key, fields)),
            None => {}
        }
    }
    Ok(())
}

/// serde's `unknown field` or `unknown variant` message (`what` says which): `name` is not
/// one of `expected`.
pub fn unknown(what: &str, name: &str, expected: &[&str]) -> String {
    let mut message = format!("unknown {what} `{name}`, expected ");
    match expected {
        [one] => {
            let _ = write!(message, "`{one}`");
        }
        [a, b] => {
            let _ = write!(message, "`{a}` or `{b}`");
        }
        _ => {
            message.push_str("one of ");
            for (i, f) in expected.iter().enumerate() {
                if i > 0 {
                    message.push_str(", ");
                }
                let _ = write!(message, "`{f}`");
            }
        }
    }
    message
}

pub fn missing_field(name: &str) -> String {
    format!("missing field `{name}`")
}

/// JSON text being written: the few shapes the exports return.
pub struct Writer {
    pub out: String,
    /// Whether the object being written has no key yet.
    first: bool,
}

/// A writer with room for a typical result, so most calls never grow it.
impl Default for Writer {
    fn default() -> Writer {
        Writer {
            out: String::with_capacity(512),
            first: false,
        }
    }
}

impl Writer {
    pub fn open(&mut self) {
        self.out.push('{');
        self.first = true;
    }

    pub fn close(&mut self) {
        self.out.push('}');
        self.first = false;
    }

    /// Writes `"name":` (after a comma unless it is the object's first key).
    pub fn key(&mut self, name: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        self.string(name);
        self.out.push(':');
    }

    pub fn string(&mut self, text: &str) {
        self.out.push('"');
        self.escaped(text);
        self.out.push('"');
    }

    /// `text` escaped for inside a JSON string, as `serde_json` escapes it.
    pub fn escaped(&mut self, text: &str) {
        // Every character that needs an escape is ASCII, so the text is copied in runs
        // between them, split only at ASCII bytes (always character boundaries, so `get`
        // always answers; indexing would link the slicing panic's formatting).
        let mut run = 0;
        for (i, b) in text.bytes().enumerate() {
            let escape = match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0..=0x1f => "",
                _ => continue,
            };
            self.out.push_str(text.get(run..i).unwrap_or_default());
            run = i + 1;
            if escape.is_empty() {
                let _ = write!(self.out, "\\u{:04x}", b);
            } else {
                self.out.push_str(escape);
            }
        }
        self.out.push_str(text.get(run..).unwrap_or_default());
    }

    /// `n` in decimal, pushed digit by digit rather than through `write!`, whose
    /// formatting machinery was a measurable part of `validateSchedule`'s time.
    pub fn number(&mut self, n: u64) {
        if n >= 10 {
            self.number(n / 10);
        }
        self.out.push(char::from(b'0' + (n % 10) as u8));
    }

    pub fn bool(&mut self, b: bool) {
        self.out.push_str(if b { "true" } else { "false" });
    }

    pub fn strings(&mut self, items: &[String]) {
        self.out.push('[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.string(item);
        }
        self.out.push(']');
    }

    /// `[{code, field, start, end, message}, …]`, the core's `FieldError` in order.
    pub fn errors(&mut self, errors: &[backup_core::FieldError]) {
        self.out.push('[');
        for (i, e) in errors.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.open();
            self.key("code");
            self.string(e.code.as_str());
            self.key("field");
            self.string(e.field.as_str());
            self.key("start");
            self.number(e.start as u64);
            self.key("end");
            self.number(e.end as u64);
            self.key("message");
            self.string(&e.message);
            self.close();
        }
        self.out.push(']');
    }
}
