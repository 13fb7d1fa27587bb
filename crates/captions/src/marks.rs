//! Parsing of Amazon Polly speech marks (JSON lines) into timed marks.
//!
//! Polly writes one JSON object per line:
//! `{"time":370,"type":"word","start":5,"end":9,"value":"cat"}`. Word and sentence marks carry
//! byte offsets into the synthesised text; viseme marks do not. The input is untrusted (it comes
//! back from a service, or from a user's drop folder), so every line is bounded and every
//! problem is reported with its 1-based line number instead of a panic.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest accepted line, in bytes. Polly lines are < 200 bytes; the bound keeps a corrupt file
/// from being parsed as one huge JSON document.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Most marks accepted in one file (a 10-minute narration has ~2,000 word marks).
pub const MAX_MARKS: usize = 1_000_000;
/// Latest accepted mark time: 24 hours. Keeps all later time arithmetic far from overflow.
pub const MAX_TIME_MS: u64 = 24 * 60 * 60 * 1000;

/// What a mark stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MarkKind {
    /// A spoken word; its time is when the word starts.
    Word,
    /// The start of a sentence.
    Sentence,
    /// Any other type (`viseme`, `ssml`, or a type Polly adds later); kept, never an error.
    Other,
}

/// One speech mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// Milliseconds from the start of the audio.
    pub time_ms: u64,
    /// The mark's type.
    pub kind: MarkKind,
    /// Byte offset of the start of the mark's text in the synthesised input (0 if absent).
    pub start: usize,
    /// Byte offset just past the mark's text (0 if absent); always `>= start`.
    pub end: usize,
    /// The mark's text: the word, the sentence, the viseme code, or the SSML mark name.
    pub value: String,
}

/// Why a speech-marks file was rejected. Every variant but [`MarksError::NoWordMarks`] names the
/// 1-based line it was found on.
#[derive(Debug, thiserror::Error)]
pub enum MarksError {
    /// The line is not valid JSON.
    #[error("line {line}: expected a json object with \"time\" and \"type\"")]
    Json {
        /// 1-based line number.
        line: usize,
        /// What serde_json found wrong.
        #[source]
        source: serde_json::Error,
    },
    /// The line is valid JSON but not an object.
    #[error("line {line}: expected a json object with \"time\" and \"type\", found {found}")]
    NotObject {
        /// 1-based line number.
        line: usize,
        /// The kind of JSON value found instead.
        found: &'static str,
    },
    /// A required field is absent.
    #[error("line {line}: missing field \"{field}\"{context}")]
    MissingField {
        /// 1-based line number.
        line: usize,
        /// The field's name.
        field: &'static str,
        /// Extra words saying why the field is required, e.g. " (required for word marks)".
        context: &'static str,
    },
    /// A field holds a value of the wrong type or out of range.
    #[error("line {line}: field \"{field}\" is {found} (expected {expected})")]
    BadField {
        /// 1-based line number.
        line: usize,
        /// The field's name.
        field: &'static str,
        /// The offending value, shortened.
        found: String,
        /// What was allowed.
        expected: &'static str,
    },
    /// The byte range is reversed.
    #[error("line {line}: start {start} is after end {end} (expected start <= end)")]
    StartAfterEnd {
        /// 1-based line number.
        line: usize,
        /// The `start` field.
        start: usize,
        /// The `end` field.
        end: usize,
    },
    /// A word mark is earlier than the word before it.
    #[error("line {line}: time {time_ms} ms goes backwards (previous word at {previous_ms} ms)")]
    TimeBackwards {
        /// 1-based line number.
        line: usize,
        /// This word's time.
        time_ms: u64,
        /// The previous word's time.
        previous_ms: u64,
    },
    /// The line exceeds [`MAX_LINE_BYTES`].
    #[error("line {line}: {len} bytes is too long (expected <= {max})", max = MAX_LINE_BYTES)]
    LineTooLong {
        /// 1-based line number.
        line: usize,
        /// The line's length in bytes.
        len: usize,
    },
    /// The file holds more than [`MAX_MARKS`] marks.
    #[error("line {line}: too many marks (expected <= {max})", max = MAX_MARKS)]
    TooManyMarks {
        /// 1-based line number of the first mark over the limit.
        line: usize,
    },
    /// The file holds no word mark, so there is nothing to caption.
    #[error("no word marks")]
    NoWordMarks,
}

/// Parses Polly speech marks, one JSON object per line (blank lines and a leading byte-order mark
/// are allowed).
///
/// Contract: on success, the result holds at least one [`MarkKind::Word`] mark, word marks are in
/// non-decreasing time order (equal times allowed), every time is `<= MAX_TIME_MS`, and every mark
/// has `start <= end`. Marks keep their input order. Never panics, whatever the input.
pub fn parse_marks(jsonl: &str) -> Result<Vec<Mark>, MarksError> {
    let jsonl = jsonl.strip_prefix('\u{feff}').unwrap_or(jsonl);
    let mut marks = Vec::new();
    let mut previous_word_ms: Option<u64> = None;
    let mut has_word = false;

    for (index, raw) in jsonl.split('\n').enumerate() {
        let line = index + 1;
        if raw.len() > MAX_LINE_BYTES {
            return Err(MarksError::LineTooLong {
                line,
                len: raw.len(),
            });
        }
        let text = raw.trim();
        if text.is_empty() {
            continue;
        }
        if marks.len() >= MAX_MARKS {
            return Err(MarksError::TooManyMarks { line });
        }
        let mark = parse_line(line, text)?;
        if mark.kind == MarkKind::Word {
            if let Some(previous_ms) = previous_word_ms
                && mark.time_ms < previous_ms
            {
                return Err(MarksError::TimeBackwards {
                    line,
                    time_ms: mark.time_ms,
                    previous_ms,
                });
            }
            previous_word_ms = Some(mark.time_ms);
            has_word = true;
        }
        marks.push(mark);
    }

    if !has_word {
        return Err(MarksError::NoWordMarks);
    }
    Ok(marks)
}

fn parse_line(line: usize, text: &str) -> Result<Mark, MarksError> {
    let value: Value =
        serde_json::from_str(text).map_err(|source| MarksError::Json { line, source })?;
    let Value::Object(obj) = value else {
        return Err(MarksError::NotObject {
            line,
            found: json_kind(&value),
        });
    };

    let kind = match obj.get("type") {
        None => {
            return Err(MarksError::MissingField {
                line,
                field: "type",
                context: "",
            });
        }
        Some(Value::String(s)) => match s.as_str() {
            "word" => MarkKind::Word,
            "sentence" => MarkKind::Sentence,
            _ => MarkKind::Other,
        },
        Some(other) => return Err(bad_field(line, "type", other, "a string")),
    };

    let time_ms = match obj.get("time") {
        None => {
            return Err(MarksError::MissingField {
                line,
                field: "time",
                context: "",
            });
        }
        Some(v) => match v.as_u64() {
            Some(t) if t <= MAX_TIME_MS => t,
            _ => {
                return Err(bad_field(
                    line,
                    "time",
                    v,
                    "a whole number of milliseconds, 0 ..= 86400000",
                ));
            }
        },
    };

    // Viseme and SSML marks have no meaningful byte range; only text marks must have one.
    let needs_range = kind != MarkKind::Other;
    let start = offset(line, &obj, "start", needs_range)?;
    let end = offset(line, &obj, "end", needs_range)?;
    if start > end {
        return Err(MarksError::StartAfterEnd { line, start, end });
    }

    let value = match obj.get("value") {
        None if needs_range => {
            return Err(MarksError::MissingField {
                line,
                field: "value",
                context: " (required for word and sentence marks)",
            });
        }
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(bad_field(line, "value", other, "a string")),
    };

    Ok(Mark {
        time_ms,
        kind,
        start,
        end,
        value,
    })
}

fn offset(
    line: usize,
    obj: &Map<String, Value>,
    field: &'static str,
    required: bool,
) -> Result<usize, MarksError> {
    match obj.get(field) {
        None if required => Err(MarksError::MissingField {
            line,
            field,
            context: " (required for word and sentence marks)",
        }),
        None => Ok(0),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| bad_field(line, field, v, "a byte offset >= 0")),
    }
}

fn bad_field(
    line: usize,
    field: &'static str,
    found: &Value,
    expected: &'static str,
) -> MarksError {
    // The offending value is shown, but never more than a short prefix of it.
    const MAX_SHOWN: usize = 40;
    let mut found_text = found.to_string();
    if found_text.chars().count() > MAX_SHOWN {
        found_text = found_text.chars().take(MAX_SHOWN).collect::<String>() + "…";
    }
    MarksError::BadField {
        line,
        field,
        found: found_text,
        expected,
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> String {
        match parse_marks(input) {
            Ok(m) => panic!("expected an error, got {m:?}"),
            Err(e) => {
                // The whole chain, as the CLI prints it.
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(cause) = src {
                    s.push_str(": ");
                    s.push_str(&cause.to_string());
                    src = cause.source();
                }
                s
            }
        }
    }

    const OK: &str = r#"{"time":6,"type":"sentence","start":0,"end":23,"value":"Hello there, my friend."}
{"time":6,"type":"word","start":0,"end":5,"value":"Hello"}
{"time":125,"type":"viseme","value":"k"}

{"time":373,"type":"word","start":6,"end":12,"value":"there,"}
{"time":900,"type":"ssml","start":13,"end":40,"value":"pause"}
"#;

    #[test]
    fn parses_all_kinds_and_skips_blank_lines() {
        let marks = parse_marks(OK).unwrap();
        assert_eq!(marks.len(), 5);
        assert_eq!(marks[0].kind, MarkKind::Sentence);
        assert_eq!(
            marks[1],
            Mark {
                time_ms: 6,
                kind: MarkKind::Word,
                start: 0,
                end: 5,
                value: "Hello".into()
            }
        );
        assert_eq!(marks[2].kind, MarkKind::Other);
        assert_eq!((marks[2].start, marks[2].end), (0, 0));
        assert_eq!(marks[4].kind, MarkKind::Other);
    }

    #[test]
    fn accepts_crlf_bom_and_equal_times() {
        let input = "\u{feff}{\"time\":5,\"type\":\"word\",\"start\":0,\"end\":1,\"value\":\"a\"}\r\n\
                     {\"time\":5,\"type\":\"word\",\"start\":2,\"end\":3,\"value\":\"b\"}\r\n";
        let marks = parse_marks(input).unwrap();
        assert_eq!(marks.len(), 2);
        assert_eq!(marks[1].time_ms, 5);
    }

    #[test]
    fn not_json_names_line() {
        let input = format!("{}\n\n{{\"time\": 1", OK.lines().next().unwrap());
        let e = err(&input);
        assert!(
            e.starts_with("line 3: expected a json object with \"time\" and \"type\": "),
            "{e}"
        );
    }

    #[test]
    fn not_an_object() {
        assert_eq!(
            err("[1,2]"),
            "line 1: expected a json object with \"time\" and \"type\", found an array"
        );
    }

    #[test]
    fn time_goes_backwards() {
        let input = "{\"time\":1500,\"type\":\"word\",\"start\":0,\"end\":1,\"value\":\"a\"}\n\
                     {\"time\":100,\"type\":\"viseme\",\"value\":\"p\"}\n\
                     {\"time\":1200,\"type\":\"word\",\"start\":2,\"end\":3,\"value\":\"b\"}";
        assert_eq!(
            err(input),
            "line 3: time 1200 ms goes backwards (previous word at 1500 ms)"
        );
    }

    #[test]
    fn bad_times() {
        assert_eq!(
            err(r#"{"time":-5,"type":"word","start":0,"end":1,"value":"a"}"#),
            "line 1: field \"time\" is -5 (expected a whole number of milliseconds, 0 ..= 86400000)"
        );
        assert_eq!(
            err(r#"{"time":1.5,"type":"word","start":0,"end":1,"value":"a"}"#),
            "line 1: field \"time\" is 1.5 (expected a whole number of milliseconds, 0 ..= 86400000)"
        );
        assert_eq!(
            err(r#"{"time":"12","type":"word","start":0,"end":1,"value":"a"}"#),
            "line 1: field \"time\" is \"12\" (expected a whole number of milliseconds, 0 ..= 86400000)"
        );
        assert!(
            err(r#"{"time":99999999999999,"type":"word","start":0,"end":1,"value":"a"}"#)
                .contains("0 ..= 86400000")
        );
    }

    #[test]
    fn missing_fields() {
        assert_eq!(
            err(r#"{"type":"word","start":0,"end":1,"value":"a"}"#),
            "line 1: missing field \"time\""
        );
        assert_eq!(
            err(r#"{"time":0,"start":0,"end":1,"value":"a"}"#),
            "line 1: missing field \"type\""
        );
        assert_eq!(
            err(r#"{"time":0,"type":"word","end":1,"value":"a"}"#),
            "line 1: missing field \"start\" (required for word and sentence marks)"
        );
        assert_eq!(
            err(r#"{"time":0,"type":"word","start":0,"end":1}"#),
            "line 1: missing field \"value\" (required for word and sentence marks)"
        );
    }

    #[test]
    fn start_after_end() {
        assert_eq!(
            err(r#"{"time":0,"type":"word","start":9,"end":4,"value":"a"}"#),
            "line 1: start 9 is after end 4 (expected start <= end)"
        );
    }

    #[test]
    fn bad_value_is_shortened() {
        let long = "x".repeat(1000);
        let e = err(&format!(
            r#"{{"time":0,"type":"word","start":0,"end":1,"value":["{long}"]}}"#
        ));
        assert!(e.starts_with("line 1: field \"value\" is [\"xxx"), "{e}");
        assert!(e.len() < 120, "{e}");
    }

    #[test]
    fn overlong_line() {
        let input = format!(
            "\n{{\"time\":0,\"type\":\"word\",\"value\":\"{}\"}}",
            "a".repeat(MAX_LINE_BYTES)
        );
        let len = input.lines().nth(1).map_or(0, str::len);
        assert!(len > MAX_LINE_BYTES);
        assert_eq!(
            err(&input),
            format!("line 2: {len} bytes is too long (expected <= 65536)")
        );
    }

    #[test]
    fn too_many_marks() {
        let line = "{\"time\":0,\"type\":\"viseme\",\"value\":\"p\"}\n";
        let input = line.repeat(MAX_MARKS + 1);
        assert_eq!(
            err(&input),
            "line 1000001: too many marks (expected <= 1000000)"
        );
    }

    #[test]
    fn no_word_marks() {
        assert_eq!(err(""), "no word marks");
        assert_eq!(err("\n  \n"), "no word marks");
        assert_eq!(
            err(r#"{"time":0,"type":"sentence","start":0,"end":1,"value":"a"}"#),
            "no word marks"
        );
    }

    #[test]
    fn garbage_never_panics() {
        for input in [
            "{",
            "}",
            "null",
            "\"x\"",
            "{\"time\":null,\"type\":1}",
            "\u{0}",
            "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        ] {
            assert!(parse_marks(input).is_err());
        }
        let deep = "[".repeat(60_000);
        assert!(parse_marks(&deep).is_err());
    }
}
