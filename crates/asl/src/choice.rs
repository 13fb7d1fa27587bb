//! Choice rules: the boolean expressions of a Choice state, compiled and evaluated with Step
//! Functions' semantics (a comparison between values of the wrong types is false; a `Variable`
//! that selects nothing is a States.Runtime error, except for `IsPresent`).

use crate::json_path::Path;
use crate::timestamp;
use serde_json::{Map, Value};
use std::cmp::Ordering;

/// A compiled choice rule.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Rule {
    And(Vec<Rule>),
    Or(Vec<Rule>),
    Not(Box<Rule>),
    Test { variable: Path, test: Test },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    Numeric,
    Boolean,
    Timestamp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cmp {
    Equals,
    LessThan,
    GreaterThan,
    LessThanEquals,
    GreaterThanEquals,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Literal(Value),
    Path(Path),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Test {
    Compare {
        kind: Kind,
        cmp: Cmp,
        operand: Operand,
    },
    Matches(Vec<Glob>),
    IsNull(bool),
    IsPresent(bool),
    IsNumeric(bool),
    IsString(bool),
    IsBoolean(bool),
    IsTimestamp(bool),
}

/// One token of a StringMatches pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Glob {
    Char(char),
    Star,
}

const CONNECTIVES: [&str; 3] = ["And", "Or", "Not"];

/// The comparison operator names, for messages.
const OPERATORS: &str = "StringEquals, StringLessThan, StringGreaterThan, StringLessThanEquals, \
    StringGreaterThanEquals, StringMatches, NumericEquals, NumericLessThan, NumericGreaterThan, \
    NumericLessThanEquals, NumericGreaterThanEquals, BooleanEquals, TimestampEquals, \
    TimestampLessThan, TimestampGreaterThan, TimestampLessThanEquals, TimestampGreaterThanEquals \
    (each also with a Path suffix, except StringMatches), IsNull, IsPresent, IsNumeric, IsString, \
    IsBoolean, IsTimestamp";

impl Rule {
    /// Compiles a rule object; `top_level` rules carry `Next`, nested ones must not.
    /// Returns the rule and, for a top-level rule, its `Next`.
    pub(crate) fn compile(
        value: &Value,
        top_level: bool,
    ) -> Result<(Rule, Option<String>), String> {
        let Value::Object(fields) = value else {
            return Err(format!("a choice rule is {value} (expected an object)"));
        };
        let mut next = None;
        let mut rest: Map<String, Value> = Map::new();
        for (k, v) in fields {
            match k.as_str() {
                "Comment" => {}
                "Next" if top_level => {
                    next = Some(
                        v.as_str()
                            .ok_or_else(|| format!("Next is {v} (expected a state name)"))?
                            .to_string(),
                    );
                }
                "Next" => return Err("a nested choice rule cannot have Next".to_string()),
                "Assign" | "Condition" | "Output" => {
                    return Err(format!(
                        "field {k:?} in a choice rule is not supported by the local executor"
                    ));
                }
                _ => {
                    rest.insert(k.clone(), v.clone());
                }
            }
        }
        if top_level && next.is_none() {
            return Err("a choice rule has no Next".to_string());
        }
        let rule = if let Some(connective) = CONNECTIVES.iter().find(|c| rest.contains_key(**c)) {
            if rest.len() != 1 {
                let others: Vec<&String> = rest.keys().filter(|k| k != connective).collect();
                return Err(format!("{connective} cannot be combined with {others:?}"));
            }
            let operand = &rest[*connective];
            match *connective {
                "Not" => Rule::Not(Box::new(Rule::compile(operand, false)?.0)),
                _ => {
                    let Some(items) = operand.as_array().filter(|a| !a.is_empty()) else {
                        return Err(format!(
                            "{connective} is {operand} (expected a non-empty array of rules)"
                        ));
                    };
                    let rules = items
                        .iter()
                        .map(|r| Rule::compile(r, false).map(|(r, _)| r))
                        .collect::<Result<Vec<_>, _>>()?;
                    if *connective == "And" {
                        Rule::And(rules)
                    } else {
                        Rule::Or(rules)
                    }
                }
            }
        } else {
            let variable = rest
                .remove("Variable")
                .ok_or_else(|| "a choice rule has neither Variable nor And/Or/Not".to_string())?;
            let variable = variable
                .as_str()
                .ok_or_else(|| format!("Variable is {variable} (expected a path)"))?;
            let variable = Path::parse(variable).map_err(|e| format!("Variable: {e}"))?;
            if rest.len() != 1 {
                let names: Vec<&String> = rest.keys().collect();
                return Err(format!(
                    "a choice rule needs exactly one comparison operator, found {names:?} \
                     (supported: {OPERATORS})"
                ));
            }
            let (op, operand) = rest.iter().next().ok_or("no comparison operator")?;
            Rule::Test {
                variable,
                test: compile_test(op, operand)?,
            }
        };
        Ok((rule, next))
    }

    /// Evaluates the rule against the state's effective input. The error is the cause of a
    /// States.Runtime failure.
    pub(crate) fn eval(&self, input: &Value, context: &Value) -> Result<bool, String> {
        match self {
            Rule::And(rules) => {
                for r in rules {
                    if !r.eval(input, context)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            Rule::Or(rules) => {
                for r in rules {
                    if r.eval(input, context)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            Rule::Not(rule) => Ok(!rule.eval(input, context)?),
            Rule::Test { variable, test } => {
                let value = variable.select(input, context);
                if let Test::IsPresent(expected) = test {
                    return Ok(value.is_some() == *expected);
                }
                let value = value.ok_or_else(|| {
                    format!(
                        "Invalid path '{}': The choice state's condition path references an \
                         invalid value.",
                        variable.text()
                    )
                })?;
                Ok(match test {
                    Test::IsPresent(_) => true,
                    Test::IsNull(b) => value.is_null() == *b,
                    Test::IsNumeric(b) => value.is_number() == *b,
                    Test::IsString(b) => value.is_string() == *b,
                    Test::IsBoolean(b) => value.is_boolean() == *b,
                    Test::IsTimestamp(b) => {
                        value.as_str().and_then(timestamp::parse).is_some() == *b
                    }
                    Test::Matches(pattern) => {
                        value.as_str().is_some_and(|s| glob_matches(pattern, s))
                    }
                    Test::Compare { kind, cmp, operand } => {
                        let other = match operand {
                            Operand::Literal(v) => v.clone(),
                            Operand::Path(p) => p.select(input, context).ok_or_else(|| {
                                format!(
                                    "Invalid path '{}': The choice state's condition path \
                                     references an invalid value.",
                                    p.text()
                                )
                            })?,
                        };
                        compare(*kind, *cmp, &value, &other)
                    }
                })
            }
        }
    }
}

fn compile_test(op: &str, operand: &Value) -> Result<Test, String> {
    let flag = |name: &str| {
        operand
            .as_bool()
            .ok_or_else(|| format!("{name} is {operand} (expected true or false)"))
    };
    match op {
        "IsNull" => return Ok(Test::IsNull(flag(op)?)),
        "IsPresent" => return Ok(Test::IsPresent(flag(op)?)),
        "IsNumeric" => return Ok(Test::IsNumeric(flag(op)?)),
        "IsString" => return Ok(Test::IsString(flag(op)?)),
        "IsBoolean" => return Ok(Test::IsBoolean(flag(op)?)),
        "IsTimestamp" => return Ok(Test::IsTimestamp(flag(op)?)),
        "StringMatches" => {
            let pattern = operand
                .as_str()
                .ok_or_else(|| format!("StringMatches is {operand} (expected a string)"))?;
            return Ok(Test::Matches(compile_glob(pattern)));
        }
        _ => {}
    }
    let unknown = || format!("unknown comparison operator {op:?} (supported: {OPERATORS})");
    let (base, is_path) = match op.strip_suffix("Path") {
        Some(base) => (base, true),
        None => (op, false),
    };
    let (kind, rest) = [
        ("String", Kind::String),
        ("Numeric", Kind::Numeric),
        ("Boolean", Kind::Boolean),
        ("Timestamp", Kind::Timestamp),
    ]
    .iter()
    .find_map(|(prefix, kind)| base.strip_prefix(prefix).map(|rest| (*kind, rest)))
    .ok_or_else(unknown)?;
    let cmp = match rest {
        "Equals" => Cmp::Equals,
        "LessThan" => Cmp::LessThan,
        "GreaterThan" => Cmp::GreaterThan,
        "LessThanEquals" => Cmp::LessThanEquals,
        "GreaterThanEquals" => Cmp::GreaterThanEquals,
        _ => return Err(unknown()),
    };
    if kind == Kind::Boolean && cmp != Cmp::Equals {
        return Err(unknown());
    }
    let operand = if is_path {
        let text = operand
            .as_str()
            .ok_or_else(|| format!("{op} is {operand} (expected a path)"))?;
        Operand::Path(Path::parse(text).map_err(|e| format!("{op}: {e}"))?)
    } else {
        let ok = match kind {
            Kind::String => operand.is_string(),
            Kind::Numeric => operand.is_number(),
            Kind::Boolean => operand.is_boolean(),
            Kind::Timestamp => operand.as_str().and_then(timestamp::parse).is_some(),
        };
        if !ok {
            let expected = match kind {
                Kind::String => "a string",
                Kind::Numeric => "a number",
                Kind::Boolean => "true or false",
                Kind::Timestamp => "an RFC 3339 timestamp such as 2024-01-31T12:00:00Z",
            };
            return Err(format!("{op} is {operand} (expected {expected})"));
        }
        Operand::Literal(operand.clone())
    };
    Ok(Test::Compare { kind, cmp, operand })
}

fn compare(kind: Kind, cmp: Cmp, value: &Value, other: &Value) -> bool {
    let ordering = match kind {
        Kind::String => match (value.as_str(), other.as_str()) {
            (Some(a), Some(b)) => Some(a.cmp(b)),
            _ => None,
        },
        Kind::Numeric => match (value.as_f64(), other.as_f64()) {
            (Some(a), Some(b)) if value.is_number() && other.is_number() => a.partial_cmp(&b),
            _ => None,
        },
        Kind::Boolean => match (value.as_bool(), other.as_bool()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => None,
        },
        Kind::Timestamp => match (
            value.as_str().and_then(timestamp::parse),
            other.as_str().and_then(timestamp::parse),
        ) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => None,
        },
    };
    let Some(ordering) = ordering else {
        return false;
    };
    match cmp {
        Cmp::Equals => ordering == Ordering::Equal,
        Cmp::LessThan => ordering == Ordering::Less,
        Cmp::GreaterThan => ordering == Ordering::Greater,
        Cmp::LessThanEquals => ordering != Ordering::Greater,
        Cmp::GreaterThanEquals => ordering != Ordering::Less,
    }
}

/// `*` matches any run of characters; `\*` is a literal star and `\\` a literal backslash.
fn compile_glob(pattern: &str) -> Vec<Glob> {
    let mut out = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(escaped) => out.push(Glob::Char(escaped)),
                None => out.push(Glob::Char('\\')),
            },
            '*' => out.push(Glob::Star),
            c => out.push(Glob::Char(c)),
        }
    }
    out
}

fn glob_matches(pattern: &[Glob], text: &str) -> bool {
    let text: Vec<char> = text.chars().collect();
    // Classic wildcard matching with backtracking to the last star: linear space, no recursion.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(Glob::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            Some(Glob::Star) => {
                star = Some((p, t));
                p += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|g| *g == Glob::Star)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(rule: Value, input: Value) -> Result<bool, String> {
        let (rule, _) = Rule::compile(&rule, false)?;
        rule.eval(&input, &json!({}))
    }

    #[test]
    fn comparisons_follow_types() {
        let input = json!({"s": "b", "n": 3, "t": true, "ts": "2024-01-01T00:00:00Z", "z": null});
        assert_eq!(
            check(
                json!({"Variable": "$.s", "StringEquals": "b"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.s", "StringLessThan": "c"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.n", "StringEquals": "3"}),
                input.clone()
            ),
            Ok(false)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.n", "NumericGreaterThanEquals": 3}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.n", "NumericLessThan": 2.5}),
                input.clone()
            ),
            Ok(false)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.t", "BooleanEquals": true}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.ts", "TimestampGreaterThan": "2023-12-31T23:59:59+00:00"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.n", "NumericEqualsPath": "$.n"}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.s", "StringGreaterThanPath": "$.n"}),
                input.clone()
            ),
            Ok(false)
        );
        assert_eq!(
            check(json!({"Variable": "$.z", "IsNull": true}), input.clone()),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.nope", "IsPresent": false}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.ts", "IsTimestamp": true}),
                input.clone()
            ),
            Ok(true)
        );
        assert_eq!(
            check(json!({"Variable": "$.s", "IsString": true}), input.clone()),
            Ok(true)
        );
        assert_eq!(
            check(
                json!({"Variable": "$.n", "IsNumeric": false}),
                input.clone()
            ),
            Ok(false)
        );
        assert_eq!(
            check(json!({"Variable": "$.t", "IsBoolean": true}), input.clone()),
            Ok(true)
        );
        assert!(check(json!({"Variable": "$.nope", "IsNull": true}), input.clone()).is_err());
        assert!(
            check(
                json!({"Variable": "$.n", "NumericEqualsPath": "$.nope"}),
                input
            )
            .is_err()
        );
    }

    #[test]
    fn connectives() {
        let input = json!({"n": 5});
        let gt = json!({"Variable": "$.n", "NumericGreaterThan": 1});
        let lt = json!({"Variable": "$.n", "NumericLessThan": 1});
        assert_eq!(check(json!({"And": [gt, lt]}), input.clone()), Ok(false));
        assert_eq!(check(json!({"Or": [gt, lt]}), input.clone()), Ok(true));
        assert_eq!(check(json!({"Not": lt}), input), Ok(true));
    }

    #[test]
    fn string_matches_wildcards_and_escapes() {
        let m = |p: &str, s: &str| glob_matches(&compile_glob(p), s);
        assert!(m("log-*.txt", "log-2024.txt"));
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b", "aXXc"));
        assert!(m(r"a\*", "a*"));
        assert!(!m(r"a\*", "ab"));
        assert!(m(r"a\\*", r"a\anything"));
    }

    #[test]
    fn bad_rules_are_rejected() {
        for bad in [
            json!({"Variable": "$.x"}),
            json!({"Variable": "$.x", "StringEquals": 1}),
            json!({"Variable": "$.x", "NumericEquals": "1"}),
            json!({"Variable": "$.x", "TimestampEquals": "yesterday"}),
            json!({"Variable": "$.x", "BooleanLessThan": true}),
            json!({"Variable": "$.x", "StringEquals": "a", "NumericEquals": 1}),
            json!({"Variable": "$.x", "StringContains": "a"}),
            json!({"And": []}),
            json!({"Not": {"Variable": "$.x", "IsNull": true}, "Variable": "$.x"}),
            json!({"Variable": "$.x", "IsNull": true, "Next": "A"}),
        ] {
            assert!(
                Rule::compile(&bad, false).is_err(),
                "{bad} should be rejected"
            );
        }
        assert!(Rule::compile(&json!({"Variable": "$.x", "IsNull": true}), true).is_err());
    }
}
