//! The JSONPath subset that Amazon States Language paths use in practice, and reference paths.
//!
//! A path starts at `$` (the state's input, or the value a field applies to) or at `$$` (the
//! context object), followed by field steps (`.name`, `['name']`, `["name"]`), array indexes
//! (`[2]`, `[-1]` for the last item) and wildcards (`[*]`, `.*`). Deep scans (`..`), filters
//! (`[?(...)]`), slices, unions and functions are rejected when the definition is parsed, so a
//! definition never depends on JSONPath features the local executor would get wrong.
//!
//! As in Jayway JsonPath (which Step Functions uses), a path without wildcards is *definite* and
//! selects one value or nothing; a path with a wildcard is *indefinite* and selects the list of
//! values it matched, possibly empty.

use serde_json::Value;
use std::fmt;

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    /// `$`: the value the path applies to.
    Input,
    /// `$$`: the context object.
    Context,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Step {
    Field(String),
    /// An array index; negative counts from the end.
    Index(i64),
    /// `[*]` or `.*`: every item of an array or every value of an object.
    Wildcard,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Path {
    text: String,
    root: Root,
    steps: Vec<Step>,
}

/// Why a path's text is not in the supported subset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathSyntaxError {
    pub(crate) path: String,
    pub(crate) reason: String,
}

impl fmt::Display for PathSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid path {:?}: {}", self.path, self.reason)
    }
}

impl Path {
    /// Parses `text` as a path.
    pub(crate) fn parse(text: &str) -> Result<Path, PathSyntaxError> {
        let err = |reason: &str| PathSyntaxError {
            path: text.to_string(),
            reason: reason.to_string(),
        };
        let (root, rest) = if let Some(rest) = text.strip_prefix("$$") {
            (Root::Context, rest)
        } else if let Some(rest) = text.strip_prefix('$') {
            (Root::Input, rest)
        } else {
            return Err(err("a path starts with $ or $$"));
        };
        let chars: Vec<char> = rest.chars().collect();
        let mut steps = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '.' => {
                    if chars.get(i + 1) == Some(&'.') {
                        return Err(err("deep scan (..) is not supported"));
                    }
                    let start = i + 1;
                    let mut end = start;
                    while end < chars.len() && !matches!(chars[end], '.' | '[') {
                        if matches!(chars[end], ']' | '\'' | '"' | '(' | ')' | '?' | '@') {
                            return Err(err(&format!(
                                "unexpected {:?} in a field name (quote it: ['name'])",
                                chars[end]
                            )));
                        }
                        end += 1;
                    }
                    let name: String = chars[start..end].iter().collect();
                    if name.is_empty() {
                        return Err(err("empty field name after '.'"));
                    }
                    if name.trim() != name {
                        return Err(err("a field name has leading or trailing spaces"));
                    }
                    steps.push(if name == "*" {
                        Step::Wildcard
                    } else {
                        Step::Field(name)
                    });
                    i = end;
                }
                '[' => {
                    let (step, next) = parse_bracket(&chars, i).map_err(|r| err(&r))?;
                    steps.push(step);
                    i = next;
                }
                c => {
                    return Err(err(&format!(
                        "unexpected {c:?} (expected '.' or '[' after the root or a step)"
                    )));
                }
            }
        }
        Ok(Path {
            text: text.to_string(),
            root,
            steps,
        })
    }

    /// The path as written.
    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn root(&self) -> Root {
        self.root
    }

    /// True when the path has no wildcard, so it selects at most one value.
    pub(crate) fn is_definite(&self) -> bool {
        !self.steps.contains(&Step::Wildcard)
    }

    /// True for `$` (or `$$`) alone.
    pub(crate) fn is_root(&self) -> bool {
        self.steps.is_empty()
    }

    /// Selects from `input` (or `context`, for `$$` paths). A definite path gives the value or
    /// `None`; an indefinite path gives the array of everything it matched.
    pub(crate) fn select(&self, input: &Value, context: &Value) -> Option<Value> {
        let start = match self.root {
            Root::Input => input,
            Root::Context => context,
        };
        if self.is_definite() {
            let mut current = start;
            for step in &self.steps {
                current = match step {
                    Step::Field(name) => current.as_object()?.get(name)?,
                    Step::Index(i) => index(current.as_array()?, *i)?,
                    Step::Wildcard => return None,
                };
            }
            return Some(current.clone());
        }
        let mut current: Vec<&Value> = vec![start];
        for step in &self.steps {
            let mut next = Vec::new();
            for value in current {
                match step {
                    Step::Field(name) => {
                        if let Some(v) = value.as_object().and_then(|o| o.get(name)) {
                            next.push(v);
                        }
                    }
                    Step::Index(i) => {
                        if let Some(v) = value.as_array().and_then(|a| index(a, *i)) {
                            next.push(v);
                        }
                    }
                    Step::Wildcard => match value {
                        Value::Array(items) => next.extend(items.iter()),
                        Value::Object(fields) => next.extend(fields.values()),
                        _ => {}
                    },
                }
            }
            current = next;
        }
        Some(Value::Array(current.into_iter().cloned().collect()))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn index(items: &[Value], i: i64) -> Option<&Value> {
    let len = i64::try_from(items.len()).ok()?;
    let i = if i < 0 { len + i } else { i };
    if i < 0 {
        return None;
    }
    items.get(usize::try_from(i).ok()?)
}

/// Parses the bracket step starting at `chars[open] == '['`; returns it and the index after `]`.
fn parse_bracket(chars: &[char], open: usize) -> Result<(Step, usize), String> {
    let mut i = open + 1;
    match chars.get(i) {
        Some('\'') | Some('"') => {
            let quote = chars[i];
            i += 1;
            let mut name = String::new();
            loop {
                match chars.get(i) {
                    None => return Err("unterminated quoted field name".to_string()),
                    Some('\\') => {
                        let escaped = chars
                            .get(i + 1)
                            .ok_or_else(|| "unterminated escape in a field name".to_string())?;
                        name.push(*escaped);
                        i += 2;
                    }
                    Some(c) if *c == quote => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        name.push(*c);
                        i += 1;
                    }
                }
            }
            if chars.get(i) != Some(&']') {
                return Err(
                    "expected ']' after a quoted field name (unions are not supported)".to_string(),
                );
            }
            Ok((Step::Field(name), i + 1))
        }
        Some('*') => {
            if chars.get(i + 1) != Some(&']') {
                return Err("expected ']' after '[*'".to_string());
            }
            Ok((Step::Wildcard, i + 2))
        }
        Some('?') => Err("filter expressions ([?(...)]) are not supported".to_string()),
        Some(_) => {
            let start = i;
            while i < chars.len() && chars[i] != ']' {
                i += 1;
            }
            if i == chars.len() {
                return Err("unterminated '['".to_string());
            }
            let inside: String = chars[start..i].iter().collect();
            let n: i64 = inside.trim().parse().map_err(|_| {
                format!("unsupported subscript [{inside}] (supported: [n], [-n], [*], ['name'])")
            })?;
            Ok((Step::Index(n), i + 1))
        }
        None => Err("unterminated '['".to_string()),
    }
}

/// A path that identifies a single node and can be written to: `ResultPath`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ReferencePath {
    path: Path,
}

/// Why a result could not be placed at a reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlaceError(pub(crate) String);

impl ReferencePath {
    /// Parses a reference path: `$` followed by field and index steps only.
    pub(crate) fn parse(text: &str) -> Result<ReferencePath, PathSyntaxError> {
        let path = Path::parse(text)?;
        if path.root != Root::Input {
            return Err(PathSyntaxError {
                path: text.to_string(),
                reason: "a reference path cannot use the context object ($$)".to_string(),
            });
        }
        if !path.is_definite() {
            return Err(PathSyntaxError {
                path: text.to_string(),
                reason: "a reference path cannot contain wildcards".to_string(),
            });
        }
        Ok(ReferencePath { path })
    }

    pub(crate) fn text(&self) -> &str {
        self.path.text()
    }

    /// Returns `target` with `value` placed at this path, creating missing objects on the way,
    /// as ResultPath does.
    pub(crate) fn place(&self, target: Value, value: Value) -> Result<Value, PlaceError> {
        fn place_at(target: &mut Value, steps: &[Step], value: Value) -> Result<(), PlaceError> {
            let Some((step, rest)) = steps.split_first() else {
                *target = value;
                return Ok(());
            };
            match step {
                Step::Field(name) => {
                    let Value::Object(fields) = target else {
                        return Err(PlaceError(format!(
                            "field {name:?} cannot be set on a {}",
                            type_name(target)
                        )));
                    };
                    let slot = fields
                        .entry(name.clone())
                        .or_insert_with(|| Value::Object(Default::default()));
                    place_at(slot, rest, value)
                }
                Step::Index(i) => {
                    let Value::Array(items) = target else {
                        return Err(PlaceError(format!(
                            "index [{i}] cannot be set on a {}",
                            type_name(target)
                        )));
                    };
                    let len = items.len();
                    let at = if *i < 0 {
                        i64::try_from(len).ok().map(|l| l + i)
                    } else {
                        Some(*i)
                    };
                    let slot = at
                        .and_then(|a| usize::try_from(a).ok())
                        .and_then(|a| items.get_mut(a))
                        .ok_or_else(|| {
                            PlaceError(format!("index [{i}] is out of bounds (length {len})"))
                        })?;
                    place_at(slot, rest, value)
                }
                Step::Wildcard => Err(PlaceError("wildcards cannot be set".to_string())),
            }
        }
        let mut target = target;
        place_at(&mut target, &self.path.steps, value)?;
        Ok(target)
    }
}

/// A JSON type's name for messages.
pub(crate) fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn select(path: &str, input: Value) -> Option<Value> {
        Path::parse(path)
            .unwrap()
            .select(&input, &json!({"ctx": 1}))
    }

    #[test]
    fn definite_paths_select_one_value() {
        let input = json!({"a": {"b": [10, 20, 30]}, "odd key": {"x.y": true}});
        assert_eq!(select("$", input.clone()), Some(input.clone()));
        assert_eq!(select("$.a.b[1]", input.clone()), Some(json!(20)));
        assert_eq!(select("$.a.b[-1]", input.clone()), Some(json!(30)));
        assert_eq!(select("$['a']['b'][0]", input.clone()), Some(json!(10)));
        assert_eq!(
            select("$[\"odd key\"]['x.y']", input.clone()),
            Some(json!(true))
        );
        assert_eq!(select("$.a.missing", input.clone()), None);
        assert_eq!(select("$.a.b[3]", input.clone()), None);
        assert_eq!(select("$.a.b.c", input), None);
        assert_eq!(select("$$.ctx", json!(null)), Some(json!(1)));
    }

    #[test]
    fn indefinite_paths_select_a_list() {
        let input = json!({"items": [{"k": 1}, {"k": 2}, {"j": 3}]});
        assert_eq!(select("$.items[*].k", input.clone()), Some(json!([1, 2])));
        assert_eq!(select("$.items.*.j", input.clone()), Some(json!([3])));
        assert_eq!(select("$.none[*]", input), Some(json!([])));
    }

    #[test]
    fn unsupported_syntax_is_rejected() {
        for bad in [
            "a.b",
            "$..a",
            "$.a[?(@.b)]",
            "$.a[1:2]",
            "$.a[0,1]",
            "$.",
            "$a",
            "$['a'",
        ] {
            assert!(Path::parse(bad).is_err(), "{bad} should be rejected");
        }
        assert!(ReferencePath::parse("$.a[*]").is_err());
        assert!(ReferencePath::parse("$$.Execution").is_err());
    }

    #[test]
    fn reference_paths_place_values_creating_objects() {
        let p = ReferencePath::parse("$.a.b").unwrap();
        assert_eq!(
            p.place(json!({"x": 1}), json!(2)).unwrap(),
            json!({"x": 1, "a": {"b": 2}})
        );
        let p = ReferencePath::parse("$").unwrap();
        assert_eq!(p.place(json!({"x": 1}), json!(2)).unwrap(), json!(2));
        let p = ReferencePath::parse("$.list[1]").unwrap();
        assert_eq!(
            p.place(json!({"list": [0, 0]}), json!(5)).unwrap(),
            json!({"list": [0, 5]})
        );
        assert!(p.place(json!({"list": [0]}), json!(5)).is_err());
        assert!(
            ReferencePath::parse("$.a")
                .unwrap()
                .place(json!("text"), json!(1))
                .is_err()
        );
    }
}
