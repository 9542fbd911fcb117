//! Leaf formats and values (TS §6.3.1, TND 1.3 §10.5.2.8–19), and their JSON encoding in
//! `application/dmmo+json` (our reading of the open points of reference §15, written down
//! in `docs/decisions.md`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

/// The format of a node (DDF `DFFormat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Interior node.
    Node,
    /// Leaf without a value.
    Null,
    /// Base64 text.
    B64,
    /// Binary data.
    Bin,
    /// Boolean.
    Bool,
    /// Text.
    Chr,
    /// 32-bit signed integer (TND 1.3 §10.5.2.13).
    Int,
    /// XML text.
    Xml,
    /// ISO 8601 date with the century.
    Date,
    /// ISO 8601 time.
    Time,
    /// 32-bit float (TND 1.3 §10.5.2.19).
    Float,
}

impl Format {
    /// All formats, in DDF order.
    pub const ALL: [Format; 11] = [
        Format::B64,
        Format::Bin,
        Format::Bool,
        Format::Chr,
        Format::Int,
        Format::Node,
        Format::Null,
        Format::Xml,
        Format::Date,
        Format::Time,
        Format::Float,
    ];

    /// The DDF element name, also our storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Node => "node",
            Format::Null => "null",
            Format::B64 => "b64",
            Format::Bin => "bin",
            Format::Bool => "bool",
            Format::Chr => "chr",
            Format::Int => "int",
            Format::Xml => "xml",
            Format::Date => "date",
            Format::Time => "time",
            Format::Float => "float",
        }
    }

    /// Parses a DDF element name.
    pub fn parse(s: &str) -> Option<Format> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A leaf's value. `Debug` shows the format and size only, so that a value (which may be a
/// key or a password) never reaches a log line by accident.
#[derive(Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `chr`.
    Chr(String),
    /// `int`.
    Int(i32),
    /// `bool`.
    Bool(bool),
    /// `float`.
    Float(f32),
    /// `bin`.
    Bin(Vec<u8>),
    /// `b64`: the base64 text itself.
    B64(String),
    /// `xml`.
    Xml(String),
    /// `date`, ISO 8601.
    Date(String),
    /// `time`, ISO 8601.
    Time(String),
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({}, {} bytes)", self.format(), self.size())
    }
}

/// Why a value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The JSON (or text) does not fit the node's format.
    #[error("expected {expected} value, got {got}")]
    Type {
        /// The node's format.
        expected: Format,
        /// What came instead.
        got: String,
    },
    /// Interior nodes have no value.
    #[error("interior nodes have no value")]
    Interior,
}

impl Value {
    /// The format this value belongs to.
    pub fn format(&self) -> Format {
        match self {
            Value::Null => Format::Null,
            Value::Chr(_) => Format::Chr,
            Value::Int(_) => Format::Int,
            Value::Bool(_) => Format::Bool,
            Value::Float(_) => Format::Float,
            Value::Bin(_) => Format::Bin,
            Value::B64(_) => Format::B64,
            Value::Xml(_) => Format::Xml,
            Value::Date(_) => Format::Date,
            Value::Time(_) => Format::Time,
        }
    }

    /// Size in bytes of the stored value (what the node-value limit counts).
    pub fn size(&self) -> usize {
        match self {
            Value::Null => 0,
            Value::Int(_) | Value::Float(_) => 4,
            Value::Bool(_) => 1,
            Value::Bin(b) => b.len(),
            Value::Chr(s) | Value::B64(s) | Value::Xml(s) | Value::Date(s) | Value::Time(s) => {
                s.len()
            }
        }
    }

    /// The value as text, the way a raw `text/plain` body or a diagnostic listing shows it:
    /// `bin` as base64, everything else in its natural text form.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Chr(s) | Value::B64(s) | Value::Xml(s) | Value::Date(s) | Value::Time(s) => {
                s.clone()
            }
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Float(x) => x.to_string(),
            Value::Bin(b) => B64.encode(b),
        }
    }

    /// The JSON form in `application/dmmo+json` (docs/decisions.md, "Leaf values"):
    /// `int`/`float` numbers, `bool` booleans, `null` JSON null, `bin` a base64 string,
    /// everything else a string.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Float(x) => serde_json::Number::from_f64(f64::from(*x))
                .map(serde_json::Value::Number)
                // NaN and infinities have no JSON number form; DM 1.3 floats follow XML
                // Schema, whose lexical forms for them are these strings.
                .unwrap_or_else(|| serde_json::Value::String(float_text(*x))),
            other => serde_json::Value::String(other.to_text()),
        }
    }

    /// Reads a JSON leaf for a node of `format`. Lenient where the TS's own examples are
    /// (`"Enabled": "true"` for a bool, numbers sent as strings), strict on everything else.
    pub fn from_json(format: Format, json: &serde_json::Value) -> Result<Value, ValueError> {
        use serde_json::Value as J;
        let mismatch = || ValueError::Type {
            expected: format,
            got: json_kind(json).to_owned(),
        };
        match (format, json) {
            (Format::Node, _) => Err(ValueError::Interior),
            (Format::Null, J::Null) => Ok(Value::Null),
            (Format::Null, J::String(s)) if s.is_empty() => Ok(Value::Null),
            (Format::Int, J::Number(n)) => n
                .as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .map(Value::Int)
                .ok_or_else(mismatch),
            (Format::Float, J::Number(n)) => n
                .as_f64()
                .map(|x| Value::Float(x as f32))
                .ok_or_else(mismatch),
            (Format::Bool, J::Bool(b)) => Ok(Value::Bool(*b)),
            (_, J::String(s)) => Value::from_text(format, s),
            _ => Err(mismatch()),
        }
    }

    /// [`Value::from_json`], taking a string's text instead of copying it.
    pub fn from_json_owned(format: Format, json: serde_json::Value) -> Result<Value, ValueError> {
        match (format, json) {
            (Format::Chr, serde_json::Value::String(s)) => Ok(Value::Chr(s)),
            (Format::Xml, serde_json::Value::String(s)) => Ok(Value::Xml(s)),
            (format, json) => Value::from_json(format, &json),
        }
    }

    /// Reads the text form of a value (a raw `text/plain` leaf body, a string in JSON).
    pub fn from_text(format: Format, text: &str) -> Result<Value, ValueError> {
        let mismatch = || ValueError::Type {
            expected: format,
            got: format!("text {:?}", shorten(text)),
        };
        match format {
            Format::Node => Err(ValueError::Interior),
            Format::Null if text.is_empty() => Ok(Value::Null),
            Format::Null => Err(mismatch()),
            Format::Chr => Ok(Value::Chr(text.to_owned())),
            Format::Xml => Ok(Value::Xml(text.to_owned())),
            Format::Int => text.trim().parse().map(Value::Int).map_err(|_| mismatch()),
            Format::Float => parse_float(text.trim())
                .map(Value::Float)
                .ok_or_else(mismatch),
            Format::Bool => match text.trim() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(mismatch()),
            },
            // Binary values are often key material (DMAcc secrets): an error never quotes
            // them, since errors reach logs, servers and `omadmctl status`.
            Format::Bin => B64
                .decode(text.trim())
                .map(Value::Bin)
                .map_err(|_| not_base64(format)),
            Format::B64 => {
                let t = text.trim();
                B64.decode(t).map_err(|_| not_base64(format))?;
                Ok(Value::B64(t.to_owned()))
            }
            Format::Date if is_iso_date(text) => Ok(Value::Date(text.to_owned())),
            Format::Time if is_iso_time(text) => Ok(Value::Time(text.to_owned())),
            Format::Date | Format::Time => Err(mismatch()),
        }
    }
}

fn float_text(x: f32) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x > 0.0 {
        "INF".into()
    } else {
        "-INF".into()
    }
}

fn parse_float(s: &str) -> Option<f32> {
    match s {
        "NaN" => Some(f32::NAN),
        "INF" => Some(f32::INFINITY),
        "-INF" => Some(f32::NEG_INFINITY),
        // Rust also accepts "inf"/"nan" spellings; XML Schema does not.
        _ if s
            .chars()
            .any(|c| c.is_ascii_alphabetic() && c != 'e' && c != 'E') =>
        {
            None
        }
        _ => s.parse().ok(),
    }
}

fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

fn not_base64(format: Format) -> ValueError {
    ValueError::Type {
        expected: format,
        got: "text that is not base64 (not shown: it may be a secret)".into(),
    }
}

fn shorten(s: &str) -> String {
    s.chars().take(24).collect()
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// ISO 8601 calendar date with the century: `YYYY-MM-DD` or `YYYYMMDD`.
fn is_iso_date(s: &str) -> bool {
    let (y, m, d) = match (s.len(), s.as_bytes().get(4)) {
        (10, Some(b'-')) if s.as_bytes()[7] == b'-' => (&s[0..4], &s[5..7], &s[8..10]),
        (8, _) if s.is_ascii() => (&s[0..4], &s[4..6], &s[6..8]),
        _ => return false,
    };
    if !(digits(y) && digits(m) && digits(d)) {
        return false;
    }
    let (m, d): (u8, u8) = (m.parse().unwrap_or(0), d.parse().unwrap_or(0));
    (1..=12).contains(&m) && (1..=31).contains(&d)
}

/// ISO 8601 time of day: `hh:mm[:ss[.fff]]` or `hhmm[ss]`, then optionally `Z` or `±hh[:mm]`.
fn is_iso_time(s: &str) -> bool {
    let (clock, zone) = match s.find(['Z', '+', '-']) {
        Some(i) => s.split_at(i),
        None => (s, ""),
    };
    let zone_ok = zone.is_empty() || zone == "Z" || {
        let z = &zone[1..];
        let parts: Vec<&str> = z.split(':').collect();
        match parts.as_slice() {
            [h] => (h.len() == 2 || h.len() == 4) && digits(h),
            [h, m] => h.len() == 2 && m.len() == 2 && digits(h) && digits(m),
            _ => false,
        }
    };
    let (main, frac) = match clock.split_once(['.', ',']) {
        Some((a, b)) => (a, Some(b)),
        None => (clock, None),
    };
    if frac.is_some_and(|f| !digits(f)) {
        return false;
    }
    let fields: Vec<&str> = if main.contains(':') {
        main.split(':').collect()
    } else if main.len() % 2 == 0 && main.is_ascii() {
        (0..main.len())
            .step_by(2)
            .map(|i| &main[i..i + 2])
            .collect()
    } else {
        return false;
    };
    let limits = [23u8, 59, 60];
    zone_ok
        && (2..=3).contains(&fields.len())
        && fields
            .iter()
            .zip(limits)
            .all(|(f, max)| f.len() == 2 && digits(f) && f.parse::<u8>().is_ok_and(|v| v <= max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_round_trips_per_format() {
        let cases = [
            (
                Format::Chr,
                json!("IMEI:493005100592800"),
                Value::Chr("IMEI:493005100592800".into()),
            ),
            (Format::Int, json!(1404), Value::Int(1404)),
            (Format::Int, json!(-5), Value::Int(-5)),
            (Format::Bool, json!(true), Value::Bool(true)),
            (Format::Float, json!(1.5), Value::Float(1.5)),
            (Format::Null, json!(null), Value::Null),
            (
                Format::Bin,
                json!("AAEC/w=="),
                Value::Bin(vec![0, 1, 2, 255]),
            ),
            (
                Format::B64,
                json!("aGVsbG8="),
                Value::B64("aGVsbG8=".into()),
            ),
            (Format::Xml, json!("<a/>"), Value::Xml("<a/>".into())),
            (
                Format::Date,
                json!("2026-11-24"),
                Value::Date("2026-11-24".into()),
            ),
            (
                Format::Time,
                json!("12:30:05Z"),
                Value::Time("12:30:05Z".into()),
            ),
        ];
        for (format, j, v) in cases {
            assert_eq!(
                Value::from_json(format, &j),
                Ok(v.clone()),
                "{format} from {j}"
            );
            assert_eq!(v.to_json(), j, "{format} to json");
            assert_eq!(v.format(), format);
        }
    }

    #[test]
    fn lenient_where_the_ts_examples_are() {
        // TS App. I.2 sends a DCMO bool as "true".
        assert_eq!(
            Value::from_json(Format::Bool, &json!("true")),
            Ok(Value::Bool(true))
        );
        assert_eq!(
            Value::from_json(Format::Int, &json!("12")),
            Ok(Value::Int(12))
        );
        assert_eq!(Value::from_json(Format::Null, &json!("")), Ok(Value::Null));
    }

    #[test]
    fn refuses_what_does_not_fit() {
        let bad = [
            (Format::Int, json!(1.5)),
            (Format::Int, json!(4_294_967_296u64)),
            (Format::Int, json!("twelve")),
            (Format::Bool, json!(1)),
            (Format::Bool, json!("yes")),
            (Format::Chr, json!(12)),
            (Format::Chr, json!({"a": 1})),
            (Format::Bin, json!("not base64!")),
            (Format::B64, json!("%%%")),
            (Format::Null, json!("x")),
            (Format::Date, json!("24.11.2026")),
            (Format::Date, json!("2026-13-01")),
            (Format::Time, json!("25:00")),
            (Format::Time, json!("noon")),
            (Format::Float, json!("inf")),
            (Format::Node, json!({})),
        ];
        for (format, j) in bad {
            assert!(
                Value::from_json(format, &j).is_err(),
                "{format} accepted {j}"
            );
        }
    }

    #[test]
    fn iso_forms() {
        for ok in ["2026-11-24", "20261124"] {
            assert!(is_iso_date(ok), "{ok}");
        }
        for ok in [
            "12:30",
            "12:30:05",
            "123005",
            "12:30:05.250",
            "12:30:05+01:00",
            "12:30-0500",
            "23:59:60Z",
        ] {
            assert!(is_iso_time(ok), "{ok}");
        }
        for bad in ["", "2026-11-2", "2026/11/24", "2026-00-10", "é0261124"] {
            assert!(!is_iso_date(bad), "{bad}");
        }
        for bad in [
            "",
            "12",
            "12:3",
            "24:00",
            "12:30:05+1",
            "12:30:05.x",
            "1é:30",
        ] {
            assert!(!is_iso_time(bad), "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_value() {
        let v = Value::Chr("hunter2".into());
        let shown = format!("{v:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, "Value(chr, 7 bytes)");
    }

    fn any_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        prop_oneof![
            Just(Value::Null),
            ".{0,16}".prop_map(Value::Chr),
            any::<i32>().prop_map(Value::Int),
            any::<bool>().prop_map(Value::Bool),
            any::<f32>()
                .prop_filter("finite", |x| x.is_finite())
                .prop_map(Value::Float),
            proptest::collection::vec(any::<u8>(), 0..32).prop_map(Value::Bin),
            proptest::collection::vec(any::<u8>(), 0..32).prop_map(|b| Value::B64(B64.encode(b))),
            ".{0,16}".prop_map(Value::Xml),
            (1000u32..9999, 1u32..=12, 1u32..=31)
                .prop_map(|(y, m, d)| Value::Date(format!("{y:04}-{m:02}-{d:02}"))),
            (0u32..24, 0u32..60, 0u32..60)
                .prop_map(|(h, m, s)| Value::Time(format!("{h:02}:{m:02}:{s:02}Z"))),
        ]
    }

    proptest::proptest! {
        #[test]
        fn json_and_text_forms_round_trip(v in any_value()) {
            proptest::prop_assert_eq!(Value::from_json(v.format(), &v.to_json()), Ok(v.clone()));
            // Text forms round-trip too, but for chr/xml with surrounding blanks only where
            // the format keeps text verbatim (numbers are trimmed).
            proptest::prop_assert_eq!(Value::from_text(v.format(), &v.to_text()), Ok(v.clone()));
        }
    }

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
        }
        assert_eq!(Format::parse("string"), None);
    }
}
