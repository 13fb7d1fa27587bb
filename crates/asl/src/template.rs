//! Payload templates: `Parameters`, `ItemSelector` and `ResultSelector`.
//!
//! A template is JSON in which every field whose name ends in `.$` takes its value from a path
//! (`$.x` into the value the template applies to, `$$.x` into the context object) or from an
//! intrinsic function call; the `.$` is dropped from the name. Templates are compiled when the
//! definition is parsed, so a bad path is reported up front, not halfway through a run.

use crate::intrinsic::{self, Call};
use crate::json_path::Path;
use serde_json::{Map, Value};

/// A compiled payload template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Template {
    /// A value copied as it is.
    Literal(Value),
    Object(Vec<(String, Template)>),
    Array(Vec<Template>),
    /// A `name.$` field whose value is a path; `field` is the name as written (with `.$`).
    Path {
        field: String,
        path: Path,
    },
    /// A `name.$` field whose value is an intrinsic function call.
    Call {
        field: String,
        call: Call,
    },
}

impl Template {
    /// Compiles a template; the error says which field is wrong and why.
    pub(crate) fn compile(value: &Value) -> Result<Template, String> {
        match value {
            Value::Object(fields) => {
                let mut compiled = Vec::with_capacity(fields.len());
                for (name, value) in fields {
                    if let Some(stripped) = name.strip_suffix(".$") {
                        let Value::String(text) = value else {
                            return Err(format!(
                                "field {name:?} ends in .$ but its value is {value} \
                                 (expected a path or an intrinsic function call as a string)"
                            ));
                        };
                        let dynamic = if intrinsic::is_call(text) {
                            Template::Call {
                                field: name.clone(),
                                call: Call::parse(text)
                                    .map_err(|e| format!("field {name:?}: {e}"))?,
                            }
                        } else {
                            Template::Path {
                                field: name.clone(),
                                path: Path::parse(text)
                                    .map_err(|e| format!("field {name:?}: {e}"))?,
                            }
                        };
                        compiled.push((stripped.to_string(), dynamic));
                    } else {
                        compiled.push((name.clone(), Template::compile(value)?));
                    }
                }
                Ok(Template::Object(compiled))
            }
            Value::Array(items) => Ok(Template::Array(
                items
                    .iter()
                    .map(Template::compile)
                    .collect::<Result<_, _>>()?,
            )),
            other => Ok(Template::Literal(other.clone())),
        }
    }

    /// Applies the template to `input`; the error is the cause of a States.Runtime failure.
    pub(crate) fn apply(&self, input: &Value, context: &Value) -> Result<Value, String> {
        match self {
            Template::Literal(v) => Ok(v.clone()),
            Template::Object(fields) => {
                let mut out = Map::with_capacity(fields.len());
                for (name, template) in fields {
                    out.insert(name.clone(), template.apply(input, context)?);
                }
                Ok(Value::Object(out))
            }
            Template::Array(items) => items.iter().map(|t| t.apply(input, context)).collect(),
            Template::Path { field, path } => path.select(input, context).ok_or_else(|| {
                format!(
                    "The JSONPath '{}' specified for the field '{field}' could not be found in \
                     the input '{}'",
                    path.text(),
                    if path.root() == crate::json_path::Root::Context {
                        context
                    } else {
                        input
                    }
                )
            }),
            Template::Call { field, call } => call
                .eval(input, context)
                .map_err(|e| format!("The function for the field '{field}' failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn expands_paths_calls_and_nested_values() {
        let t = Template::compile(&json!({
            "static": {"deep": [1, {"x.$": "$.a"}]},
            "a.$": "$.a",
            "id.$": "$$.Execution.Id",
            "both.$": "States.Array($.a, $$.Execution.Id)",
            "all.$": "$"
        }))
        .unwrap();
        let out = t
            .apply(&json!({"a": 7}), &json!({"Execution": {"Id": "arn:x"}}))
            .unwrap();
        assert_eq!(
            out,
            json!({
                "static": {"deep": [1, {"x": 7}]},
                "a": 7,
                "id": "arn:x",
                "both": [7, "arn:x"],
                "all": {"a": 7}
            })
        );
    }

    #[test]
    fn reports_bad_templates_and_missing_values() {
        assert!(Template::compile(&json!({"a.$": 1})).is_err());
        assert!(Template::compile(&json!({"a.$": "no path"})).is_err());
        assert!(Template::compile(&json!({"a.$": "States.Nope()"})).is_err());
        let t = Template::compile(&json!({"a.$": "$.missing"})).unwrap();
        let err = t.apply(&json!({}), &json!({})).unwrap_err();
        assert!(
            err.contains("'$.missing'") && err.contains("'a.$'"),
            "{err}"
        );
    }
}
