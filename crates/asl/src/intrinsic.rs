//! Intrinsic functions (`States.Format('{}', $.x)` and friends) for JSONPath states: a parser
//! for the call syntax and an evaluator with Step Functions' semantics.
//!
//! Syntax: `States.Name(arg, ...)` where an argument is a string in single quotes (the reserved
//! characters `'`, `{`, `}` and `\` are escaped with a backslash), a number, `true`, `false`,
//! `null`, a path (`$.x`, `$$.Execution.Id`) or another call. Semantics follow
//! <https://docs.aws.amazon.com/step-functions/latest/dg/intrinsic-functions.html>.

use crate::json_path::{Path, type_name};
use serde_json::{Map, Value};
use std::fmt;

/// Inputs larger than this are rejected by States.Hash and States.Base64*, as in Step Functions.
const MAX_STRING_INPUT: usize = 10_000;
/// States.ArrayRange cannot build a longer array.
const MAX_RANGE_ITEMS: usize = 1_000;

/// The intrinsic functions of the Amazon States Language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Function {
    Format,
    StringToJson,
    JsonToString,
    Array,
    ArrayPartition,
    ArrayContains,
    ArrayRange,
    ArrayGetItem,
    ArrayLength,
    ArrayUnique,
    Base64Encode,
    Base64Decode,
    Hash,
    JsonMerge,
    MathRandom,
    MathAdd,
    StringSplit,
    Uuid,
}

impl Function {
    fn from_name(name: &str) -> Option<Function> {
        Some(match name {
            "States.Format" => Function::Format,
            "States.StringToJson" => Function::StringToJson,
            "States.JsonToString" => Function::JsonToString,
            "States.Array" => Function::Array,
            "States.ArrayPartition" => Function::ArrayPartition,
            "States.ArrayContains" => Function::ArrayContains,
            "States.ArrayRange" => Function::ArrayRange,
            "States.ArrayGetItem" => Function::ArrayGetItem,
            "States.ArrayLength" => Function::ArrayLength,
            "States.ArrayUnique" => Function::ArrayUnique,
            "States.Base64Encode" => Function::Base64Encode,
            "States.Base64Decode" => Function::Base64Decode,
            "States.Hash" => Function::Hash,
            "States.JsonMerge" => Function::JsonMerge,
            "States.MathRandom" => Function::MathRandom,
            "States.MathAdd" => Function::MathAdd,
            "States.StringSplit" => Function::StringSplit,
            "States.UUID" => Function::Uuid,
            _ => return None,
        })
    }

    /// The allowed argument counts (inclusive).
    fn arity(self) -> (usize, usize) {
        match self {
            Function::Format => (1, usize::MAX),
            Function::Array => (0, usize::MAX),
            Function::Uuid => (0, 0),
            Function::StringToJson
            | Function::JsonToString
            | Function::ArrayLength
            | Function::ArrayUnique
            | Function::Base64Encode
            | Function::Base64Decode => (1, 1),
            Function::ArrayPartition
            | Function::ArrayContains
            | Function::ArrayGetItem
            | Function::Hash
            | Function::MathAdd
            | Function::StringSplit => (2, 2),
            Function::ArrayRange | Function::JsonMerge => (3, 3),
            Function::MathRandom => (2, 3),
        }
    }
}

/// One argument of a call.
#[derive(Debug, Clone, PartialEq)]
enum Arg {
    /// A quoted string: its value, and its text with escapes kept (States.Format needs to tell
    /// `{}` from `\{\}`).
    Str {
        value: String,
        raw: String,
    },
    Literal(Value),
    Path(Path),
    Call(Call),
}

/// A parsed intrinsic function call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Call {
    name: String,
    function: Function,
    args: Vec<Arg>,
}

/// Why a call's text cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CallSyntaxError {
    pub(crate) text: String,
    pub(crate) reason: String,
}

impl fmt::Display for CallSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid intrinsic function call {:?}: {}",
            self.text, self.reason
        )
    }
}

/// True when a `.$` value is an intrinsic function call rather than a path.
pub(crate) fn is_call(text: &str) -> bool {
    text.starts_with("States.")
}

impl Call {
    /// Parses a whole call such as `States.Format('{}', $.x)`.
    pub(crate) fn parse(text: &str) -> Result<Call, CallSyntaxError> {
        let mut parser = Parser {
            chars: text.chars().collect(),
            pos: 0,
            depth: 0,
        };
        let result = parser.call().and_then(|call| {
            parser.skip_space();
            if parser.pos == parser.chars.len() {
                Ok(call)
            } else {
                Err(format!(
                    "unexpected text after the call at character {}",
                    parser.pos
                ))
            }
        });
        result.map_err(|reason| CallSyntaxError {
            text: text.to_string(),
            reason,
        })
    }

    /// Evaluates the call; `input` is what `$` refers to. The error is the cause of a
    /// States.Runtime failure.
    pub(crate) fn eval(&self, input: &Value, context: &Value) -> Result<Value, String> {
        let mut values = Vec::with_capacity(self.args.len());
        for arg in &self.args {
            values.push(match arg {
                Arg::Str { value, .. } => Value::String(value.clone()),
                Arg::Literal(v) => v.clone(),
                Arg::Path(p) => p.select(input, context).ok_or_else(|| {
                    format!(
                        "the JSONPath {:?} in {} could not be found in the input",
                        p.text(),
                        self.name
                    )
                })?,
                Arg::Call(c) => c.eval(input, context)?,
            });
        }
        self.apply(values)
            .map_err(|reason| format!("{} failed: {reason}", self.name))
    }

    fn apply(&self, args: Vec<Value>) -> Result<Value, String> {
        match self.function {
            Function::Format => {
                let template = match self.args.first() {
                    Some(Arg::Str { raw, .. }) => parse_template(raw, true),
                    _ => match args.first() {
                        Some(Value::String(s)) => parse_template(s, false),
                        Some(other) => {
                            return Err(format!(
                                "the template is a {} (expected a string)",
                                type_name(other)
                            ));
                        }
                        None => return Err("no template".to_string()),
                    },
                };
                let values = &args[1..];
                let placeholders = template.iter().filter(|p| p.is_none()).count();
                if placeholders != values.len() {
                    return Err(format!(
                        "the template has {placeholders} placeholders but {} values were given",
                        values.len()
                    ));
                }
                let mut values = values.iter();
                let mut out = String::new();
                for piece in template {
                    match piece {
                        Some(text) => out.push_str(&text),
                        None => {
                            if let Some(v) = values.next() {
                                out.push_str(&java_string(v));
                            }
                        }
                    }
                }
                Ok(Value::String(out))
            }
            Function::StringToJson => {
                let s = string_arg(&args[0], "the argument")?;
                if s.trim().is_empty() {
                    return Ok(Value::Null);
                }
                serde_json::from_str(s).map_err(|e| format!("the string is not JSON: {e}"))
            }
            Function::JsonToString => Ok(Value::String(args[0].to_string())),
            Function::Array => Ok(Value::Array(args)),
            Function::ArrayPartition => {
                let size = integer_arg(&args[1], "the chunk size")?;
                if size <= 0 {
                    return Err(format!("chunk size {size} (expected > 0)"));
                }
                let items = array_arg(&args[0], "the first argument")?;
                let size = usize::try_from(size).unwrap_or(usize::MAX);
                Ok(Value::Array(
                    items
                        .chunks(size)
                        .map(|c| Value::Array(c.to_vec()))
                        .collect(),
                ))
            }
            Function::ArrayContains => {
                let items = array_arg(&args[0], "the first argument")?;
                Ok(Value::Bool(items.contains(&args[1])))
            }
            Function::ArrayRange => {
                let start = integer_arg(&args[0], "the start")?;
                let end = integer_arg(&args[1], "the end")?;
                let step = integer_arg(&args[2], "the step")?;
                if step <= 0 {
                    return Err(format!("step {step} (expected > 0)"));
                }
                let count = if end < start {
                    0
                } else {
                    (i128::from(end) - i128::from(start)) / i128::from(step) + 1
                };
                if count > MAX_RANGE_ITEMS as i128 {
                    return Err(format!(
                        "the range has {count} items (expected at most {MAX_RANGE_ITEMS})"
                    ));
                }
                // At most 1000 items, each between start and end: no overflow.
                Ok(Value::Array(
                    (0..count as i64)
                        .map(|k| Value::from(start + k * step))
                        .collect(),
                ))
            }
            Function::ArrayGetItem => {
                let index = integer_arg(&args[1], "the index")?;
                let items = array_arg(&args[0], "the first argument")?;
                usize::try_from(index)
                    .ok()
                    .and_then(|i| items.get(i))
                    .cloned()
                    .ok_or_else(|| {
                        format!("index {index} is out of bounds (length {})", items.len())
                    })
            }
            Function::ArrayLength => Ok(Value::from(array_arg(&args[0], "the argument")?.len())),
            Function::ArrayUnique => {
                let items = array_arg(&args[0], "the argument")?;
                let mut unique: Vec<Value> = Vec::new();
                for item in items {
                    if !unique.contains(item) {
                        unique.push(item.clone());
                    }
                }
                Ok(Value::Array(unique))
            }
            Function::Base64Encode => {
                let s = limited_string_arg(&args[0])?;
                Ok(Value::String(base64_encode(s.as_bytes())))
            }
            Function::Base64Decode => {
                let s = limited_string_arg(&args[0])?;
                let bytes = base64_decode(s).ok_or_else(|| format!("{s:?} is not base64"))?;
                String::from_utf8(bytes)
                    .map(Value::String)
                    .map_err(|_| "the decoded bytes are not UTF-8 text".to_string())
            }
            Function::Hash => {
                let algorithm = string_arg(&args[1], "the algorithm")?;
                let data = limited_string_arg(&args[0])?;
                Ok(Value::String(hash(data.as_bytes(), algorithm)?))
            }
            Function::JsonMerge => {
                if args[2] != Value::Bool(false) {
                    return Err(format!(
                        "deep merge flag {} (Step Functions supports only shallow merging: false)",
                        args[2]
                    ));
                }
                let second = object_arg(&args[1], "the second argument")?.clone();
                let mut merged = object_arg(&args[0], "the first argument")?.clone();
                merged.extend(second);
                Ok(Value::Object(merged))
            }
            Function::MathRandom => {
                let start = java_round(&args[0], "the start")?;
                let end = java_round(&args[1], "the end")?;
                if end < start {
                    return Err(format!("end {end} is below start {start}"));
                }
                let mut rng = match args.get(2) {
                    Some(seed) => fastrand::Rng::with_seed(java_round(seed, "the seed")? as u64),
                    None => fastrand::Rng::new(),
                };
                Ok(Value::from(rng.i64(start..=end)))
            }
            Function::MathAdd => {
                let a = java_round(&args[0], "the first argument")?;
                let b = java_round(&args[1], "the second argument")?;
                let sum = a
                    .checked_add(b)
                    .filter(|s| i32::try_from(*s).is_ok())
                    .ok_or_else(|| format!("{a} + {b} is outside the 32-bit integer range"))?;
                Ok(Value::from(sum))
            }
            Function::StringSplit => {
                let delimiters: Vec<char> =
                    string_arg(&args[1], "the delimiter")?.chars().collect();
                let s = string_arg(&args[0], "the string")?;
                Ok(Value::Array(
                    s.split(|c| delimiters.contains(&c))
                        .filter(|part| !part.is_empty())
                        .map(|part| Value::String(part.to_string()))
                        .collect(),
                ))
            }
            Function::Uuid => Ok(Value::String(uuid_v4())),
        }
    }
}

/// Splits a States.Format template into literal text (`Some`) and placeholders (`None`).
fn parse_template(text: &str, escaped: bool) -> Vec<Option<String>> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if escaped => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                pieces.push(Some(std::mem::take(&mut current)));
                pieces.push(None);
            }
            c => current.push(c),
        }
    }
    pieces.push(Some(current));
    pieces
}

/// A value as States.Format prints it: strings bare, arrays and objects the way Java's
/// collections print themselves (`[a, b]`, `{k=v}`), other values as JSON.
fn java_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(java_string).collect();
            format!("[{}]", parts.join(", "))
        }
        Value::Object(fields) => {
            let parts: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("{k}={}", java_string(v)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

fn string_arg<'a>(value: &'a Value, what: &str) -> Result<&'a str, String> {
    value
        .as_str()
        .ok_or_else(|| format!("{what} is a {} (expected a string)", type_name(value)))
}

fn limited_string_arg(value: &Value) -> Result<&str, String> {
    let s = string_arg(value, "the input")?;
    let len = s.chars().count();
    if len > MAX_STRING_INPUT {
        return Err(format!(
            "the input has {len} characters (expected at most {MAX_STRING_INPUT})"
        ));
    }
    Ok(s)
}

fn array_arg<'a>(value: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    value
        .as_array()
        .ok_or_else(|| format!("{what} is a {} (expected an array)", type_name(value)))
}

fn object_arg<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, String> {
    value
        .as_object()
        .ok_or_else(|| format!("{what} is a {} (expected an object)", type_name(value)))
}

/// An integer argument; integral floats such as `2.0` count.
fn integer_arg(value: &Value, what: &str) -> Result<i64, String> {
    if let Some(i) = value.as_i64() {
        return Ok(i);
    }
    match value.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(format!("{what} is {value} (expected an integer)")),
    }
}

/// A number rounded as Java's `Math.round` does, which Step Functions applies to the math
/// functions' non-integer arguments.
fn java_round(value: &Value, what: &str) -> Result<i64, String> {
    if let Some(i) = value.as_i64() {
        return Ok(i);
    }
    match value.as_f64() {
        Some(f) if f.is_finite() && f.abs() < 9.0e15 => Ok((f + 0.5).floor() as i64),
        _ => Err(format!("{what} is {value} (expected a number)")),
    }
}

fn hash(data: &[u8], algorithm: &str) -> Result<String, String> {
    use sha2::Digest;
    let bytes: Vec<u8> = match algorithm {
        "MD5" => md5::Md5::digest(data).to_vec(),
        "SHA-1" => sha1::Sha1::digest(data).to_vec(),
        "SHA-256" => sha2::Sha256::digest(data).to_vec(),
        "SHA-384" => sha2::Sha384::digest(data).to_vec(),
        "SHA-512" => sha2::Sha512::digest(data).to_vec(),
        other => {
            return Err(format!(
                "algorithm {other:?} (expected MD5, SHA-1, SHA-256, SHA-384 or SHA-512)"
            ));
        }
    };
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= n {
                out.push(char::from(BASE64[(v >> (18 - 6 * k) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (i, chunk) in bytes.chunks(4).enumerate() {
        let last = i + 1 == bytes.len() / 4;
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && !last) {
            return None;
        }
        let mut v: u32 = 0;
        for &c in &chunk[..4 - pad] {
            let d = BASE64.iter().position(|&a| a == c)?;
            v = (v << 6) | d as u32;
        }
        v <<= 6 * pad as u32;
        let decoded = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Some(out)
}

/// A random (version 4) UUID.
pub(crate) fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    for byte in &mut b {
        *byte = fastrand::u8(..);
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// Nested calls deeper than this are rejected (Step Functions allows 10 levels).
const MAX_DEPTH: usize = 10;

struct Parser {
    chars: Vec<char>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn skip_space(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn call(&mut self) -> Result<Call, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("calls are nested more than {MAX_DEPTH} deep"));
        }
        let start = self.pos;
        while self
            .chars
            .get(self.pos)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == '.')
        {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let function = Function::from_name(&name)
            .ok_or_else(|| format!("unsupported intrinsic function {name:?}"))?;
        self.skip_space();
        if self.chars.get(self.pos) != Some(&'(') {
            return Err(format!("expected '(' after {name}"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.skip_space();
        if self.chars.get(self.pos) == Some(&')') {
            self.pos += 1;
        } else {
            loop {
                self.skip_space();
                args.push(self.arg()?);
                self.skip_space();
                match self.chars.get(self.pos) {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    Some(c) => {
                        return Err(format!(
                            "expected ',' or ')' in {name} at character {}, found {c:?}",
                            self.pos
                        ));
                    }
                    None => return Err(format!("missing ')' to close {name}")),
                }
            }
        }
        let (min, max) = function.arity();
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                format!("{min}")
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(format!(
                "{name} takes {expected} arguments, {} given",
                args.len()
            ));
        }
        if function == Function::Format
            && matches!(args.first(), Some(Arg::Literal(_)) | Some(Arg::Call(_)))
        {
            return Err("the first argument of States.Format must be a string or a path".into());
        }
        self.depth -= 1;
        Ok(Call {
            name,
            function,
            args,
        })
    }

    fn arg(&mut self) -> Result<Arg, String> {
        match self.chars.get(self.pos) {
            Some('\'') => self.string(),
            Some('$') => self.path(),
            Some('S') => Ok(Arg::Call(self.call()?)),
            Some(_) => {
                let start = self.pos;
                while self
                    .chars
                    .get(self.pos)
                    .is_some_and(|c| !matches!(c, ',' | ')') && !c.is_whitespace())
                {
                    self.pos += 1;
                }
                let token: String = self.chars[start..self.pos].iter().collect();
                match token.as_str() {
                    "true" => Ok(Arg::Literal(Value::Bool(true))),
                    "false" => Ok(Arg::Literal(Value::Bool(false))),
                    "null" => Ok(Arg::Literal(Value::Null)),
                    _ => match serde_json::from_str::<Value>(&token) {
                        Ok(n @ Value::Number(_)) => Ok(Arg::Literal(n)),
                        _ => Err(format!(
                            "unexpected argument {token:?} (expected a 'string', a number, \
                             true, false, null, a path or a States. call)"
                        )),
                    },
                }
            }
            None => Err("missing argument".to_string()),
        }
    }

    fn string(&mut self) -> Result<Arg, String> {
        self.pos += 1;
        let mut value = String::new();
        let mut raw = String::new();
        loop {
            match self.chars.get(self.pos) {
                None => return Err("unterminated string".to_string()),
                Some('\\') => {
                    let escaped = *self
                        .chars
                        .get(self.pos + 1)
                        .ok_or_else(|| "unterminated escape in a string".to_string())?;
                    if !matches!(escaped, '\'' | '{' | '}' | '\\') {
                        return Err(format!(
                            "unsupported escape \\{escaped} (only \\', \\{{, \\}} and \\\\ are allowed)"
                        ));
                    }
                    value.push(escaped);
                    raw.push('\\');
                    raw.push(escaped);
                    self.pos += 2;
                }
                Some('\'') => {
                    self.pos += 1;
                    return Ok(Arg::Str { value, raw });
                }
                Some(c) => {
                    value.push(*c);
                    raw.push(*c);
                    self.pos += 1;
                }
            }
        }
    }

    fn path(&mut self) -> Result<Arg, String> {
        let start = self.pos;
        let mut quote: Option<char> = None;
        let mut brackets = 0usize;
        while let Some(&c) = self.chars.get(self.pos) {
            match (quote, c) {
                (Some(q), '\\') if q == '\'' || q == '"' => self.pos += 1,
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '[') => brackets += 1,
                (None, ']') => brackets = brackets.saturating_sub(1),
                (None, ',' | ')') if brackets == 0 => break,
                (None, c) if c.is_whitespace() && brackets == 0 => break,
                _ => {}
            }
            self.pos += 1;
        }
        let end = self.pos.min(self.chars.len());
        let text: String = self.chars[start..end].iter().collect();
        Path::parse(&text).map(Arg::Path).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(call: &str, input: Value) -> Result<Value, String> {
        Call::parse(call)
            .map_err(|e| e.to_string())?
            .eval(&input, &json!({"Execution": {"Name": "run-1"}}))
    }

    #[test]
    fn format_substitutes_and_honours_escapes() {
        let input = json!({"name": "Ada", "n": 3, "list": [1, "a"], "obj": {"k": true}});
        assert_eq!(
            eval(
                "States.Format('Hello {}, {} times', $.name, $.n)",
                input.clone()
            ),
            Ok(json!("Hello Ada, 3 times"))
        );
        assert_eq!(
            eval(r"States.Format('\{\} it\'s {} \\', $.name)", input.clone()),
            Ok(json!(r"{} it's Ada \"))
        );
        assert_eq!(
            eval("States.Format('{} {}', $.list, $.obj)", input.clone()),
            Ok(json!("[1, a] {k=true}"))
        );
        assert_eq!(
            eval("States.Format('{}', $$.Execution.Name)", input.clone()),
            Ok(json!("run-1"))
        );
        assert!(eval("States.Format('{} {}', $.name)", input).is_err());
    }

    #[test]
    fn json_functions() {
        let input = json!({"s": "{\"a\":[1,2]}", "o": {"b": 1}, "p": {"b": 2, "c": 3}});
        assert_eq!(
            eval("States.StringToJson($.s)", input.clone()),
            Ok(json!({"a": [1, 2]}))
        );
        assert_eq!(
            eval("States.JsonToString($.o)", input.clone()),
            Ok(json!("{\"b\":1}"))
        );
        assert_eq!(
            eval("States.JsonMerge($.o, $.p, false)", input.clone()),
            Ok(json!({"b": 2, "c": 3}))
        );
        assert!(eval("States.JsonMerge($.o, $.p, true)", input.clone()).is_err());
        assert_eq!(
            eval("States.StringToJson(States.JsonToString($.o))", input),
            Ok(json!({"b": 1}))
        );
    }

    #[test]
    fn array_functions() {
        let input = json!({"a": [1, 2, 2, 3, 4], "i": 1});
        assert_eq!(
            eval("States.Array(1, 'x', true, null, $.i)", input.clone()),
            Ok(json!([1, "x", true, null, 1]))
        );
        assert_eq!(eval("States.Array()", input.clone()), Ok(json!([])));
        assert_eq!(
            eval("States.ArrayRange(1, 9, 2)", input.clone()),
            Ok(json!([1, 3, 5, 7, 9]))
        );
        assert_eq!(
            eval("States.ArrayRange(0, 3, 1)", input.clone()),
            Ok(json!([0, 1, 2, 3]))
        );
        assert!(eval("States.ArrayRange(0, 1000, 1)", input.clone()).is_err());
        assert!(eval("States.ArrayRange(0, 3, 0)", input.clone()).is_err());
        assert_eq!(eval("States.ArrayLength($.a)", input.clone()), Ok(json!(5)));
        assert_eq!(
            eval("States.ArrayGetItem($.a, $.i)", input.clone()),
            Ok(json!(2))
        );
        assert!(eval("States.ArrayGetItem($.a, 5)", input.clone()).is_err());
        assert_eq!(
            eval("States.ArrayUnique($.a)", input.clone()),
            Ok(json!([1, 2, 3, 4]))
        );
        assert_eq!(
            eval("States.ArrayContains($.a, 3)", input.clone()),
            Ok(json!(true))
        );
        assert_eq!(
            eval("States.ArrayPartition($.a, 2)", input.clone()),
            Ok(json!([[1, 2], [2, 3], [4]]))
        );
        assert!(eval("States.ArrayLength($.i)", input).is_err());
    }

    #[test]
    fn math_string_hash_and_encoding_functions() {
        let input = json!({"v": 111, "s": "a,b,,c d"});
        assert_eq!(
            eval("States.MathAdd($.v, -1)", input.clone()),
            Ok(json!(110))
        );
        assert_eq!(eval("States.MathAdd(1.5, 1)", input.clone()), Ok(json!(3)));
        assert!(eval("States.MathAdd(2147483647, 1)", input.clone()).is_err());
        let r = eval("States.MathRandom(1, 3)", input.clone()).unwrap();
        assert!((1..=3).contains(&r.as_i64().unwrap()));
        assert_eq!(
            eval("States.MathRandom(1, 1000, 7)", input.clone()),
            eval("States.MathRandom(1, 1000, 7)", input.clone())
        );
        assert_eq!(
            eval("States.StringSplit($.s, ', ')", input.clone()),
            Ok(json!(["a", "b", "c", "d"]))
        );
        assert_eq!(
            eval("States.Hash('abc', 'SHA-256')", input.clone()),
            Ok(json!(
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
            ))
        );
        assert_eq!(
            eval("States.Hash('abc', 'MD5')", input.clone()),
            Ok(json!("900150983cd24fb0d6963f7d28e17f72"))
        );
        assert_eq!(
            eval("States.Hash('abc', 'SHA-1')", input.clone()),
            Ok(json!("a9993e364706816aba3e25717850c26c9cd0d89d"))
        );
        assert!(eval("States.Hash('abc', 'CRC32')", input.clone()).is_err());
        assert_eq!(
            eval("States.Base64Encode('Data to encode')", input.clone()),
            Ok(json!("RGF0YSB0byBlbmNvZGU="))
        );
        assert_eq!(
            eval("States.Base64Decode('RGF0YSB0byBlbmNvZGU=')", input.clone()),
            Ok(json!("Data to encode"))
        );
        assert_eq!(
            eval(
                "States.Base64Decode(States.Base64Encode('ab'))",
                input.clone()
            ),
            Ok(json!("ab"))
        );
        let uuid = eval("States.UUID()", input).unwrap();
        let uuid = uuid.as_str().unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
    }

    #[test]
    fn parser_rejects_bad_calls() {
        for bad in [
            "States.Nope(1)",
            "States.Format(1)",
            "States.UUID(1)",
            "States.ArrayLength()",
            "States.Array(1,",
            "States.Array('x)",
            "States.Array(1) extra",
            r"States.Format('\n')",
            "States.Array(bare)",
        ] {
            assert!(Call::parse(bad).is_err(), "{bad} should be rejected");
        }
        let nested = "States.Array(".repeat(11) + &")".repeat(11);
        assert!(Call::parse(&nested).is_err());
        let call = Call::parse("States.Array( $['a,b'] , States.Array( 1 ) )").unwrap();
        assert_eq!(
            call.eval(&json!({"a,b": 5}), &json!({})),
            Ok(json!([5, [1]]))
        );
    }
}
