//! Parsing and validating a state machine definition into the model the executor runs.
//!
//! Everything is checked before the first state runs: field names and types per state type,
//! transitions, reachability, unique state names, paths, payload templates, intrinsic function
//! calls, choice rules and retriers. A field the local executor does not implement is an error
//! naming the state, never silently ignored.

use crate::choice::Rule;
use crate::error::DefinitionError;
use crate::intrinsic::{self, Call};
use crate::json_path::{Path, ReferencePath, Root};
use crate::template::Template;
use crate::timestamp::{self, Nanos};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// A parsed, validated state machine, ready to run with an [`Executor`](crate::Executor).
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub(crate) root: Arc<Scope>,
    pub(crate) timeout: Option<Duration>,
}

/// A list of states with a start: the machine itself, a Parallel branch or a Map's processor.
#[derive(Debug)]
pub(crate) struct Scope {
    pub(crate) start_at: String,
    pub(crate) states: HashMap<String, State>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) name: String,
    pub(crate) kind: Kind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Transition {
    Next(String),
    End,
}

/// InputPath and OutputPath; `None` is JSON `null` (the state sees or emits `{}`).
#[derive(Debug)]
pub(crate) struct Io {
    pub(crate) input_path: Option<Path>,
    pub(crate) output_path: Option<Path>,
}

#[derive(Debug)]
pub(crate) enum Kind {
    Pass(Pass),
    Task(Box<Task>),
    Choice(Choice),
    Wait(Wait),
    Succeed(Io),
    Fail(Fail),
    Parallel(Box<Parallel>),
    Map(Box<MapState>),
}

#[derive(Debug)]
pub(crate) struct Pass {
    pub(crate) io: Io,
    pub(crate) parameters: Option<Template>,
    pub(crate) result: Option<Value>,
    pub(crate) result_path: Option<ReferencePath>,
    pub(crate) then: Transition,
}

#[derive(Debug)]
pub(crate) enum Resource {
    /// A Lambda function ARN in `Resource`: the payload is the effective input and the result
    /// is the function's return value.
    Function(String),
    /// `arn:aws:states:::lambda:invoke`: `Parameters` give `FunctionName` and `Payload`, and the
    /// result is the Invoke API's response with the return value under `Payload`.
    LambdaInvoke,
}

#[derive(Debug)]
pub(crate) struct Task {
    pub(crate) io: Io,
    pub(crate) resource: Resource,
    pub(crate) parameters: Option<Template>,
    pub(crate) result_selector: Option<Template>,
    pub(crate) result_path: Option<ReferencePath>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) handling: Handling,
    pub(crate) then: Transition,
}

#[derive(Debug)]
pub(crate) struct Choice {
    pub(crate) io: Io,
    pub(crate) choices: Vec<(Rule, String)>,
    pub(crate) default: Option<String>,
}

#[derive(Debug)]
pub(crate) enum WaitFor {
    Seconds(u64),
    SecondsPath(Path),
    Timestamp(Nanos),
    TimestampPath(Path),
}

#[derive(Debug)]
pub(crate) struct Wait {
    pub(crate) io: Io,
    pub(crate) wait: WaitFor,
    pub(crate) then: Transition,
}

/// Where a Fail state's Error or Cause comes from.
#[derive(Debug)]
pub(crate) enum FailField {
    Literal(String),
    Path(Path),
    Call(Call),
}

#[derive(Debug)]
pub(crate) struct Fail {
    pub(crate) error: Option<FailField>,
    pub(crate) cause: Option<FailField>,
}

#[derive(Debug)]
pub(crate) struct Parallel {
    pub(crate) io: Io,
    pub(crate) branches: Vec<Arc<Scope>>,
    pub(crate) parameters: Option<Template>,
    pub(crate) result_selector: Option<Template>,
    pub(crate) result_path: Option<ReferencePath>,
    pub(crate) handling: Handling,
    pub(crate) then: Transition,
}

#[derive(Debug)]
pub(crate) enum Concurrency {
    /// 0 means no limit of the definition's own.
    Fixed(u64),
    Path(Path),
}

#[derive(Debug)]
pub(crate) struct MapState {
    pub(crate) io: Io,
    pub(crate) items_path: Path,
    pub(crate) item_selector: Option<Template>,
    pub(crate) processor: Arc<Scope>,
    pub(crate) max_concurrency: Concurrency,
    pub(crate) result_selector: Option<Template>,
    pub(crate) result_path: Option<ReferencePath>,
    pub(crate) handling: Handling,
    pub(crate) then: Transition,
}

/// Retry and Catch of a Task, Parallel or Map state.
#[derive(Debug, Default)]
pub(crate) struct Handling {
    pub(crate) retry: Vec<Retrier>,
    pub(crate) catch: Vec<Catcher>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Jitter {
    None,
    Full,
}

#[derive(Debug)]
pub(crate) struct Retrier {
    pub(crate) error_equals: Vec<String>,
    pub(crate) interval_seconds: f64,
    pub(crate) max_attempts: u32,
    pub(crate) backoff_rate: f64,
    pub(crate) max_delay_seconds: Option<f64>,
    pub(crate) jitter: Jitter,
}

#[derive(Debug)]
pub(crate) struct Catcher {
    pub(crate) error_equals: Vec<String>,
    pub(crate) next: String,
    pub(crate) result_path: Option<ReferencePath>,
}

/// Step Functions' own error names, which `ErrorEquals` may use.
/// <https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html>
const STATES_ERRORS: &[&str] = &[
    "States.ALL",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.Http.Socket",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
    "States.BranchFailed",
    "States.QueryEvaluationError",
];

/// Fields of Step Functions that the local executor does not implement, with what they are.
const UNSUPPORTED_FIELDS: &[(&str, &str)] = &[
    (
        "HeartbeatSeconds",
        "HeartbeatSeconds (callback and activity heartbeats)",
    ),
    ("HeartbeatSecondsPath", "HeartbeatSecondsPath"),
    ("TimeoutSecondsPath", "TimeoutSecondsPath"),
    ("Credentials", "Credentials (cross-account tasks)"),
    ("Assign", "Assign (workflow variables)"),
    ("Arguments", "Arguments (JSONata)"),
    ("Output", "Output (JSONata)"),
    ("Items", "Items (JSONata)"),
    ("ItemReader", "ItemReader (distributed Map)"),
    ("ItemBatcher", "ItemBatcher (distributed Map)"),
    ("ResultWriter", "ResultWriter (distributed Map)"),
    ("Label", "Label (distributed Map)"),
    ("ToleratedFailurePercentage", "ToleratedFailurePercentage"),
    (
        "ToleratedFailurePercentagePath",
        "ToleratedFailurePercentagePath",
    ),
    ("ToleratedFailureCount", "ToleratedFailureCount"),
    ("ToleratedFailureCountPath", "ToleratedFailureCountPath"),
];

/// The longest state name Step Functions accepts.
const MAX_NAME_CHARS: usize = 80;

impl StateMachine {
    /// Parses and validates a definition after replacing every `${Name}` in its strings with
    /// `substitutions[Name]`, as SAM's `DefinitionSubstitutions` does.
    ///
    /// Fails on JSON errors, a placeholder without a value, invalid Amazon States Language, and
    /// anything the local executor does not implement (the JSONata query language, Distributed
    /// Map, service integrations other than Lambda, heartbeats, variables, ...), naming the state.
    pub fn parse(
        definition: &str,
        substitutions: &HashMap<String, String>,
    ) -> Result<StateMachine, DefinitionError> {
        let value: Value = serde_json::from_str(definition).map_err(DefinitionError::Json)?;
        let value = substitute(value, substitutions)?;
        let machine = "the state machine".to_string();
        let Value::Object(top) = value else {
            return Err(invalid(&machine, "the definition is not a JSON object"));
        };
        check_fields(
            &machine,
            "state machine",
            &top,
            &[
                "StartAt",
                "States",
                "Comment",
                "Version",
                "TimeoutSeconds",
                "QueryLanguage",
            ],
        )?;
        if let Some(v) = top.get("Version")
            && v != "1.0"
        {
            return Err(invalid(
                &machine,
                &format!("Version is {v} (expected \"1.0\")"),
            ));
        }
        check_query_language(&machine, &top)?;
        let timeout = match top.get("TimeoutSeconds") {
            None => None,
            Some(v) => Some(Duration::from_secs(positive_integer(
                &machine,
                "TimeoutSeconds",
                v,
            )?)),
        };
        let mut names = HashSet::new();
        let root = parse_scope(&top, "", &mut names)?;
        Ok(StateMachine {
            root: Arc::new(root),
            timeout,
        })
    }
}

fn invalid(location: &str, message: &str) -> DefinitionError {
    DefinitionError::Invalid {
        location: location.to_string(),
        message: message.to_string(),
    }
}

fn unsupported(location: &str, what: &str) -> DefinitionError {
    DefinitionError::Unsupported {
        location: location.to_string(),
        what: what.to_string(),
    }
}

/// Replaces `${Name}` placeholders in every string and object key.
fn substitute(value: Value, subs: &HashMap<String, String>) -> Result<Value, DefinitionError> {
    fn in_str(text: &str, subs: &HashMap<String, String>) -> Result<String, DefinitionError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            let after = &rest[start + 2..];
            let name_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if name_len == 0 || !after[name_len..].starts_with('}') {
                // Not a placeholder: keep the "${" and go on.
                out.push_str(&rest[..start + 2]);
                rest = after;
                continue;
            }
            let name = &after[..name_len];
            let value = subs.get(name).ok_or_else(|| {
                let mut given: Vec<&str> = subs.keys().map(String::as_str).collect();
                given.sort_unstable();
                DefinitionError::MissingSubstitution {
                    name: name.to_string(),
                    given: if given.is_empty() {
                        "none".to_string()
                    } else {
                        given.join(", ")
                    },
                }
            })?;
            out.push_str(&rest[..start]);
            out.push_str(value);
            rest = &after[name_len + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
    Ok(match value {
        Value::String(s) => Value::String(in_str(&s, subs)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|v| substitute(v, subs))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(fields) => {
            let mut out = Map::new();
            for (k, v) in fields {
                out.insert(in_str(&k, subs)?, substitute(v, subs)?);
            }
            Value::Object(out)
        }
        other => other,
    })
}

/// Rejects fields outside `allowed`, telling unsupported Step Functions fields from typos.
fn check_fields(
    location: &str,
    kind: &str,
    fields: &Map<String, Value>,
    allowed: &[&str],
) -> Result<(), DefinitionError> {
    for name in fields.keys() {
        if allowed.contains(&name.as_str()) {
            continue;
        }
        if let Some((_, what)) = UNSUPPORTED_FIELDS.iter().find(|(f, _)| f == name) {
            return Err(unsupported(location, what));
        }
        return Err(invalid(
            location,
            &format!(
                "unknown field {name:?} for a {kind} (allowed: {})",
                allowed.join(", ")
            ),
        ));
    }
    Ok(())
}

fn check_query_language(
    location: &str,
    fields: &Map<String, Value>,
) -> Result<(), DefinitionError> {
    match fields.get("QueryLanguage") {
        None => Ok(()),
        Some(v) if v == "JSONPath" => Ok(()),
        Some(v) if v == "JSONata" => Err(unsupported(location, "the JSONata query language")),
        Some(v) => Err(invalid(
            location,
            &format!("QueryLanguage is {v} (expected \"JSONPath\" or \"JSONata\")"),
        )),
    }
}

fn positive_integer(location: &str, field: &str, v: &Value) -> Result<u64, DefinitionError> {
    match v.as_u64() {
        Some(n) if n > 0 => Ok(n),
        _ => Err(invalid(
            location,
            &format!("{field} is {v} (expected a positive integer)"),
        )),
    }
}

fn string_field<'a>(
    location: &str,
    fields: &'a Map<String, Value>,
    name: &str,
) -> Result<Option<&'a str>, DefinitionError> {
    match fields.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err(invalid(
            location,
            &format!("{name} is {v} (expected a string)"),
        )),
    }
}

fn parse_path(location: &str, field: &str, text: &str) -> Result<Path, DefinitionError> {
    Path::parse(text).map_err(|e| invalid(location, &format!("{field}: {e}")))
}

/// An InputPath/OutputPath-like field: absent is `$`, `null` is `None`.
fn optional_path(
    location: &str,
    fields: &Map<String, Value>,
    name: &str,
) -> Result<Option<Path>, DefinitionError> {
    match fields.get(name) {
        None => Ok(Some(parse_path(location, name, "$")?)),
        Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let path = parse_path(location, name, s)?;
            if path.root() == Root::Context {
                return Err(invalid(
                    location,
                    &format!("{name} is {s:?} (expected a path into the input, starting with $.)"),
                ));
            }
            Ok(Some(path))
        }
        Some(v) => Err(invalid(
            location,
            &format!("{name} is {v} (expected a path or null)"),
        )),
    }
}

fn parse_io(location: &str, fields: &Map<String, Value>) -> Result<Io, DefinitionError> {
    Ok(Io {
        input_path: optional_path(location, fields, "InputPath")?,
        output_path: optional_path(location, fields, "OutputPath")?,
    })
}

fn result_path(
    location: &str,
    fields: &Map<String, Value>,
) -> Result<Option<ReferencePath>, DefinitionError> {
    match fields.get("ResultPath") {
        None => Ok(Some(
            ReferencePath::parse("$").map_err(|e| invalid(location, &e.to_string()))?,
        )),
        Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => ReferencePath::parse(s)
            .map(Some)
            .map_err(|e| invalid(location, &format!("ResultPath: {e}"))),
        Some(v) => Err(invalid(
            location,
            &format!("ResultPath is {v} (expected a reference path or null)"),
        )),
    }
}

fn template(
    location: &str,
    fields: &Map<String, Value>,
    name: &str,
    must_be_object: bool,
) -> Result<Option<Template>, DefinitionError> {
    match fields.get(name) {
        None => Ok(None),
        Some(v) => {
            if must_be_object && !v.is_object() {
                return Err(invalid(
                    location,
                    &format!("{name} is {v} (expected an object)"),
                ));
            }
            Template::compile(v)
                .map(Some)
                .map_err(|e| invalid(location, &format!("{name}: {e}")))
        }
    }
}

fn transition(location: &str, fields: &Map<String, Value>) -> Result<Transition, DefinitionError> {
    let next = string_field(location, fields, "Next")?;
    let end = match fields.get("End") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(invalid(location, &format!("End is {v} (expected true)"))),
    };
    match (next, end) {
        (Some(n), false) => Ok(Transition::Next(n.to_string())),
        (None, true) => Ok(Transition::End),
        (Some(_), true) => Err(invalid(location, "has both Next and End")),
        (None, false) => Err(invalid(location, "has neither Next nor \"End\": true")),
    }
}

fn error_equals(location: &str, v: Option<&Value>) -> Result<Vec<String>, DefinitionError> {
    let Some(Value::Array(items)) = v else {
        return Err(invalid(
            location,
            "ErrorEquals is missing or not an array of error names",
        ));
    };
    if items.is_empty() {
        return Err(invalid(location, "ErrorEquals is empty"));
    }
    let mut names = Vec::new();
    for item in items {
        let name = item.as_str().ok_or_else(|| {
            invalid(
                location,
                &format!("ErrorEquals has {item} (expected a string)"),
            )
        })?;
        if name.starts_with("States.") && !STATES_ERRORS.contains(&name) {
            return Err(invalid(
                location,
                &format!(
                    "unknown error name {name:?} (Step Functions' own: {})",
                    STATES_ERRORS.join(", ")
                ),
            ));
        }
        names.push(name.to_string());
    }
    if names.len() > 1 && names.iter().any(|n| n == "States.ALL") {
        return Err(invalid(
            location,
            "States.ALL must appear alone in ErrorEquals",
        ));
    }
    Ok(names)
}

fn parse_handling(
    location: &str,
    fields: &Map<String, Value>,
) -> Result<Handling, DefinitionError> {
    let mut handling = Handling::default();
    if let Some(retry) = fields.get("Retry") {
        let items = retry
            .as_array()
            .ok_or_else(|| invalid(location, &format!("Retry is {retry} (expected an array)")))?;
        for (i, item) in items.iter().enumerate() {
            let loc = format!("{location}, retrier {i}");
            let Value::Object(r) = item else {
                return Err(invalid(&loc, "a retrier is not an object"));
            };
            check_fields(
                &loc,
                "retrier",
                r,
                &[
                    "ErrorEquals",
                    "IntervalSeconds",
                    "MaxAttempts",
                    "BackoffRate",
                    "MaxDelaySeconds",
                    "JitterStrategy",
                    "Comment",
                ],
            )?;
            let error_equals = error_equals(&loc, r.get("ErrorEquals"))?;
            if error_equals.iter().any(|n| n == "States.ALL") && i + 1 != items.len() {
                return Err(invalid(&loc, "a States.ALL retrier must be the last one"));
            }
            let interval_seconds = match r.get("IntervalSeconds") {
                None => 1.0,
                Some(v) => positive_integer(&loc, "IntervalSeconds", v)? as f64,
            };
            let max_attempts = match r.get("MaxAttempts") {
                None => 3,
                Some(v) => v
                    .as_u64()
                    .filter(|n| *n <= 99_999_999)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        invalid(
                            &loc,
                            &format!("MaxAttempts is {v} (expected an integer from 0 to 99999999)"),
                        )
                    })?,
            };
            let backoff_rate = match r.get("BackoffRate") {
                None => 2.0,
                Some(v) => v
                    .as_f64()
                    .filter(|b| *b >= 1.0 && b.is_finite())
                    .ok_or_else(|| {
                        invalid(
                            &loc,
                            &format!("BackoffRate is {v} (expected a number >= 1.0)"),
                        )
                    })?,
            };
            let max_delay_seconds = match r.get("MaxDelaySeconds") {
                None => None,
                Some(v) => Some(positive_integer(&loc, "MaxDelaySeconds", v)? as f64),
            };
            let jitter = match r.get("JitterStrategy") {
                None => Jitter::None,
                Some(v) if v == "NONE" => Jitter::None,
                Some(v) if v == "FULL" => Jitter::Full,
                Some(v) => {
                    return Err(invalid(
                        &loc,
                        &format!("JitterStrategy is {v} (expected \"FULL\" or \"NONE\")"),
                    ));
                }
            };
            handling.retry.push(Retrier {
                error_equals,
                interval_seconds,
                max_attempts,
                backoff_rate,
                max_delay_seconds,
                jitter,
            });
        }
    }
    if let Some(catch) = fields.get("Catch") {
        let items = catch
            .as_array()
            .ok_or_else(|| invalid(location, &format!("Catch is {catch} (expected an array)")))?;
        for (i, item) in items.iter().enumerate() {
            let loc = format!("{location}, catcher {i}");
            let Value::Object(c) = item else {
                return Err(invalid(&loc, "a catcher is not an object"));
            };
            check_fields(
                &loc,
                "catcher",
                c,
                &["ErrorEquals", "Next", "ResultPath", "Comment"],
            )?;
            let error_equals = error_equals(&loc, c.get("ErrorEquals"))?;
            if error_equals.iter().any(|n| n == "States.ALL") && i + 1 != items.len() {
                return Err(invalid(&loc, "a States.ALL catcher must be the last one"));
            }
            let next = string_field(&loc, c, "Next")?
                .ok_or_else(|| invalid(&loc, "a catcher has no Next"))?
                .to_string();
            handling.catch.push(Catcher {
                error_equals,
                next,
                result_path: result_path(&loc, c)?,
            });
        }
    }
    Ok(handling)
}

/// Parses `StartAt` and `States` of a machine, branch or item processor and checks its graph.
fn parse_scope(
    fields: &Map<String, Value>,
    where_: &str,
    names: &mut HashSet<String>,
) -> Result<Scope, DefinitionError> {
    let scope_loc = if where_.is_empty() {
        "the state machine".to_string()
    } else {
        where_.trim_start_matches(" in ").to_string()
    };
    let start_at = string_field(&scope_loc, fields, "StartAt")?
        .ok_or_else(|| invalid(&scope_loc, "StartAt is missing"))?
        .to_string();
    let Some(Value::Object(states_json)) = fields.get("States") else {
        return Err(invalid(&scope_loc, "States is missing or not an object"));
    };
    if states_json.is_empty() {
        return Err(invalid(&scope_loc, "States is empty"));
    }
    let mut states = HashMap::new();
    for (name, value) in states_json {
        let location = format!("state {name:?}{where_}");
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(invalid(
                &location,
                &format!("a state name has 1 to {MAX_NAME_CHARS} characters"),
            ));
        }
        if !names.insert(name.clone()) {
            return Err(invalid(
                &location,
                "the name is used by another state (state names are unique in a state machine)",
            ));
        }
        let kind = parse_state(name, value, &location, names)?;
        states.insert(
            name.clone(),
            State {
                name: name.clone(),
                kind,
            },
        );
    }
    let scope = Scope { start_at, states };
    check_graph(&scope, &scope_loc, where_)?;
    Ok(scope)
}

/// The states a state can go to next.
fn successors(kind: &Kind) -> Vec<&str> {
    fn next(t: &Transition) -> Option<&str> {
        match t {
            Transition::Next(n) => Some(n),
            Transition::End => None,
        }
    }
    fn with_catch<'a>(then: &'a Transition, handling: &'a Handling) -> Vec<&'a str> {
        next(then)
            .into_iter()
            .chain(handling.catch.iter().map(|c| c.next.as_str()))
            .collect()
    }
    match kind {
        Kind::Pass(p) => next(&p.then).into_iter().collect(),
        Kind::Wait(w) => next(&w.then).into_iter().collect(),
        Kind::Task(t) => with_catch(&t.then, &t.handling),
        Kind::Parallel(p) => with_catch(&p.then, &p.handling),
        Kind::Map(m) => with_catch(&m.then, &m.handling),
        Kind::Choice(c) => c
            .choices
            .iter()
            .map(|(_, n)| n.as_str())
            .chain(c.default.as_deref())
            .collect(),
        Kind::Succeed(_) | Kind::Fail(_) => Vec::new(),
    }
}

fn is_terminal(kind: &Kind) -> bool {
    match kind {
        Kind::Pass(p) => p.then == Transition::End,
        Kind::Task(t) => t.then == Transition::End,
        Kind::Parallel(p) => p.then == Transition::End,
        Kind::Map(m) => m.then == Transition::End,
        Kind::Wait(w) => w.then == Transition::End,
        Kind::Succeed(_) | Kind::Fail(_) => true,
        Kind::Choice(_) => false,
    }
}

fn check_graph(scope: &Scope, scope_loc: &str, where_: &str) -> Result<(), DefinitionError> {
    if !scope.states.contains_key(&scope.start_at) {
        return Err(invalid(
            scope_loc,
            &format!("StartAt {:?} is not one of its states", scope.start_at),
        ));
    }
    for state in scope.states.values() {
        for next in successors(&state.kind) {
            if !scope.states.contains_key(next) {
                return Err(invalid(
                    &format!("state {:?}{where_}", state.name),
                    &format!(
                        "transition to {next:?}, which is not a state here (a state can only go \
                         to states of its own branch or item processor)"
                    ),
                ));
            }
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    let mut todo = vec![scope.start_at.as_str()];
    while let Some(name) = todo.pop() {
        if seen.insert(name)
            && let Some(state) = scope.states.get(name)
        {
            todo.extend(successors(&state.kind));
        }
    }
    let unreachable: BTreeSet<&str> = scope
        .states
        .keys()
        .map(String::as_str)
        .filter(|n| !seen.contains(n))
        .collect();
    if let Some(name) = unreachable.iter().next() {
        return Err(invalid(
            &format!("state {name:?}{where_}"),
            "the state is not reachable from StartAt",
        ));
    }
    if !scope.states.values().any(|s| is_terminal(&s.kind)) {
        return Err(invalid(
            scope_loc,
            "no terminal state (End, Succeed or Fail)",
        ));
    }
    Ok(())
}

const PASS_FIELDS: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "Parameters",
    "Result",
    "ResultPath",
];
const TASK_FIELDS: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "Retry",
    "Catch",
    "Resource",
    "TimeoutSeconds",
];
const CHOICE_FIELDS: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "InputPath",
    "OutputPath",
    "Choices",
    "Default",
];
const WAIT_FIELDS: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "Seconds",
    "SecondsPath",
    "Timestamp",
    "TimestampPath",
];
const SUCCEED_FIELDS: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "InputPath",
    "OutputPath",
];
const FAIL_FIELDS: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Error",
    "ErrorPath",
    "Cause",
    "CausePath",
];
const PARALLEL_FIELDS: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "Retry",
    "Catch",
    "Branches",
];
const MAP_FIELDS: &[&str] = &[
    "Type",
    "Comment",
    "QueryLanguage",
    "Next",
    "End",
    "InputPath",
    "OutputPath",
    "ItemsPath",
    "ItemSelector",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "Retry",
    "Catch",
    "ItemProcessor",
    "Iterator",
    "MaxConcurrency",
    "MaxConcurrencyPath",
];

fn parse_state(
    name: &str,
    value: &Value,
    location: &str,
    names: &mut HashSet<String>,
) -> Result<Kind, DefinitionError> {
    let Value::Object(f) = value else {
        return Err(invalid(location, "a state is not a JSON object"));
    };
    let ty =
        string_field(location, f, "Type")?.ok_or_else(|| invalid(location, "Type is missing"))?;
    check_query_language(location, f)?;
    let allowed = match ty {
        "Pass" => PASS_FIELDS,
        "Task" => TASK_FIELDS,
        "Choice" => CHOICE_FIELDS,
        "Wait" => WAIT_FIELDS,
        "Succeed" => SUCCEED_FIELDS,
        "Fail" => FAIL_FIELDS,
        "Parallel" => PARALLEL_FIELDS,
        "Map" => MAP_FIELDS,
        other => {
            return Err(invalid(
                location,
                &format!(
                    "unknown Type {other:?} (expected Task, Pass, Choice, Wait, Succeed, Fail, \
                     Parallel or Map)"
                ),
            ));
        }
    };
    check_fields(location, &format!("{ty} state"), f, allowed)?;
    Ok(match ty {
        "Pass" => Kind::Pass(Pass {
            io: parse_io(location, f)?,
            parameters: template(location, f, "Parameters", false)?,
            result: f.get("Result").cloned(),
            result_path: result_path(location, f)?,
            then: transition(location, f)?,
        }),
        "Task" => Kind::Task(Box::new(parse_task(location, f)?)),
        "Choice" => Kind::Choice(parse_choice(location, f)?),
        "Wait" => Kind::Wait(parse_wait(location, f)?),
        "Succeed" => Kind::Succeed(parse_io(location, f)?),
        "Fail" => Kind::Fail(Fail {
            error: fail_field(location, f, "Error", "ErrorPath")?,
            cause: fail_field(location, f, "Cause", "CausePath")?,
        }),
        "Parallel" => Kind::Parallel(Box::new(parse_parallel(name, location, f, names)?)),
        _ => Kind::Map(Box::new(parse_map(name, location, f, names)?)),
    })
}

fn parse_task(location: &str, f: &Map<String, Value>) -> Result<Task, DefinitionError> {
    let resource_text = string_field(location, f, "Resource")?
        .ok_or_else(|| invalid(location, "Resource is missing"))?;
    let resource = parse_resource(location, resource_text)?;
    let parameters = template(location, f, "Parameters", false)?;
    if let Resource::LambdaInvoke = resource {
        let Some(Value::Object(p)) = f.get("Parameters") else {
            return Err(invalid(
                location,
                "arn:aws:states:::lambda:invoke needs Parameters with FunctionName and Payload",
            ));
        };
        if !p.contains_key("FunctionName") && !p.contains_key("FunctionName.$") {
            return Err(invalid(
                location,
                "lambda:invoke Parameters have no FunctionName",
            ));
        }
        for key in p.keys() {
            let base = key.strip_suffix(".$").unwrap_or(key);
            match base {
                "FunctionName" | "Payload" => {}
                "Qualifier" | "InvocationType" | "ClientContext" | "LogType" => {
                    return Err(unsupported(
                        location,
                        &format!("the lambda:invoke parameter {key}"),
                    ));
                }
                _ => {
                    return Err(invalid(
                        location,
                        &format!(
                            "unknown lambda:invoke parameter {key:?} (expected FunctionName, Payload)"
                        ),
                    ));
                }
            }
        }
    }
    Ok(Task {
        io: parse_io(location, f)?,
        resource,
        parameters,
        result_selector: template(location, f, "ResultSelector", true)?,
        result_path: result_path(location, f)?,
        timeout: match f.get("TimeoutSeconds") {
            None => None,
            Some(v) => Some(Duration::from_secs(positive_integer(
                location,
                "TimeoutSeconds",
                v,
            )?)),
        },
        handling: parse_handling(location, f)?,
        then: transition(location, f)?,
    })
}

fn parse_resource(location: &str, text: &str) -> Result<Resource, DefinitionError> {
    let parts: Vec<&str> = text.splitn(6, ':').collect();
    let expected = "expected a Lambda function ARN such as \
                    arn:aws:lambda:us-east-1:123456789012:function:name, or \
                    arn:aws:states:::lambda:invoke";
    if parts.len() < 6 || parts[0] != "arn" {
        return Err(invalid(
            location,
            &format!("Resource {text:?} is not an ARN ({expected})"),
        ));
    }
    match parts[2] {
        "lambda" => {
            let rest: Vec<&str> = parts[5].split(':').collect();
            if rest.len() >= 2 && rest.len() <= 3 && rest[0] == "function" && !rest[1].is_empty() {
                Ok(Resource::Function(text.to_string()))
            } else {
                Err(invalid(
                    location,
                    &format!("Resource {text:?} is not a Lambda function ARN ({expected})"),
                ))
            }
        }
        "states" => {
            let service = parts[5];
            if service == "lambda:invoke" {
                Ok(Resource::LambdaInvoke)
            } else if service.starts_with("activity:") {
                Err(unsupported(location, &format!("the activity {text}")))
            } else {
                Err(unsupported(
                    location,
                    &format!(
                        "the service integration {text} (only Lambda functions and lambda:invoke are)"
                    ),
                ))
            }
        }
        _ => Err(unsupported(
            location,
            &format!("the resource {text} ({expected})"),
        )),
    }
}

fn parse_choice(location: &str, f: &Map<String, Value>) -> Result<Choice, DefinitionError> {
    let Some(Value::Array(items)) = f.get("Choices") else {
        return Err(invalid(location, "Choices is missing or not an array"));
    };
    if items.is_empty() {
        return Err(invalid(location, "Choices is empty"));
    }
    let mut choices = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let (rule, next) = Rule::compile(item, true)
            .map_err(|e| invalid(location, &format!("choice rule {i}: {e}")))?;
        let next =
            next.ok_or_else(|| invalid(location, &format!("choice rule {i} has no Next")))?;
        choices.push((rule, next));
    }
    Ok(Choice {
        io: parse_io(location, f)?,
        choices,
        default: string_field(location, f, "Default")?.map(str::to_string),
    })
}

fn parse_wait(location: &str, f: &Map<String, Value>) -> Result<Wait, DefinitionError> {
    let given: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
        .into_iter()
        .filter(|k| f.contains_key(*k))
        .collect();
    if given.len() != 1 {
        return Err(invalid(
            location,
            &format!(
                "a Wait state needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath (found {given:?})"
            ),
        ));
    }
    let wait = match given[0] {
        "Seconds" => {
            let v = &f["Seconds"];
            WaitFor::Seconds(v.as_u64().ok_or_else(|| {
                invalid(
                    location,
                    &format!("Seconds is {v} (expected a non-negative integer)"),
                )
            })?)
        }
        "Timestamp" => {
            let v = &f["Timestamp"];
            WaitFor::Timestamp(v.as_str().and_then(timestamp::parse).ok_or_else(|| {
                invalid(location, &format!("Timestamp is {v} (expected an RFC 3339 timestamp such as 2024-01-31T12:00:00Z)"))
            })?)
        }
        field => {
            let text = string_field(location, f, field)?.unwrap_or("$");
            let path = parse_path(location, field, text)?;
            if field == "SecondsPath" {
                WaitFor::SecondsPath(path)
            } else {
                WaitFor::TimestampPath(path)
            }
        }
    };
    Ok(Wait {
        io: parse_io(location, f)?,
        wait,
        then: transition(location, f)?,
    })
}

fn fail_field(
    location: &str,
    f: &Map<String, Value>,
    literal: &str,
    path: &str,
) -> Result<Option<FailField>, DefinitionError> {
    match (
        string_field(location, f, literal)?,
        string_field(location, f, path)?,
    ) {
        (Some(_), Some(_)) => Err(invalid(location, &format!("has both {literal} and {path}"))),
        (Some(text), None) => Ok(Some(FailField::Literal(text.to_string()))),
        (None, Some(text)) if intrinsic::is_call(text) => Call::parse(text)
            .map(|c| Some(FailField::Call(c)))
            .map_err(|e| invalid(location, &format!("{path}: {e}"))),
        (None, Some(text)) => Ok(Some(FailField::Path(parse_path(location, path, text)?))),
        (None, None) => Ok(None),
    }
}

fn parse_parallel(
    name: &str,
    location: &str,
    f: &Map<String, Value>,
    names: &mut HashSet<String>,
) -> Result<Parallel, DefinitionError> {
    let Some(Value::Array(items)) = f.get("Branches") else {
        return Err(invalid(location, "Branches is missing or not an array"));
    };
    if items.is_empty() {
        return Err(invalid(location, "Branches is empty"));
    }
    let mut branches = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let where_ = format!(" in branch {i} of {name:?}");
        let Value::Object(b) = item else {
            return Err(invalid(location, &format!("branch {i} is not an object")));
        };
        let loc = format!("branch {i} of state {name:?}");
        check_fields(
            &loc,
            "branch",
            b,
            &["StartAt", "States", "Comment", "QueryLanguage"],
        )?;
        check_query_language(&loc, b)?;
        branches.push(Arc::new(parse_scope(b, &where_, names)?));
    }
    Ok(Parallel {
        io: parse_io(location, f)?,
        branches,
        parameters: template(location, f, "Parameters", false)?,
        result_selector: template(location, f, "ResultSelector", true)?,
        result_path: result_path(location, f)?,
        handling: parse_handling(location, f)?,
        then: transition(location, f)?,
    })
}

fn parse_map(
    name: &str,
    location: &str,
    f: &Map<String, Value>,
    names: &mut HashSet<String>,
) -> Result<MapState, DefinitionError> {
    let (processor_field, processor) = match (f.get("ItemProcessor"), f.get("Iterator")) {
        (Some(_), Some(_)) => return Err(invalid(location, "has both ItemProcessor and Iterator")),
        (Some(p), None) => ("ItemProcessor", p),
        (None, Some(p)) => ("Iterator", p),
        (None, None) => return Err(invalid(location, "has no ItemProcessor")),
    };
    let Value::Object(p) = processor else {
        return Err(invalid(
            location,
            &format!("{processor_field} is not an object"),
        ));
    };
    let loc = format!("the {processor_field} of state {name:?}");
    let mut allowed = vec!["StartAt", "States", "Comment", "QueryLanguage"];
    if processor_field == "ItemProcessor" {
        allowed.push("ProcessorConfig");
    }
    check_fields(&loc, processor_field, p, &allowed)?;
    check_query_language(&loc, p)?;
    if let Some(config) = p.get("ProcessorConfig") {
        let Value::Object(config) = config else {
            return Err(invalid(&loc, "ProcessorConfig is not an object"));
        };
        // Mode first: a DISTRIBUTED Map is the thing to report, not its ExecutionType.
        let mut entries: Vec<(&String, &Value)> = config.iter().collect();
        entries.sort_by_key(|(k, _)| k.as_str() != "Mode");
        for (k, v) in entries {
            match (k.as_str(), v.as_str()) {
                ("Mode", Some("INLINE")) => {}
                ("Mode", Some("DISTRIBUTED")) => {
                    return Err(unsupported(location, "the DISTRIBUTED Map mode"));
                }
                ("ExecutionType", _) => {
                    return Err(unsupported(
                        location,
                        "ProcessorConfig.ExecutionType (distributed Map)",
                    ));
                }
                _ => {
                    return Err(invalid(
                        &loc,
                        &format!("ProcessorConfig has {k:?}: {v} (expected Mode: \"INLINE\")"),
                    ));
                }
            }
        }
    }
    let where_ = format!(" in the {processor_field} of {name:?}");
    let processor = Arc::new(parse_scope(p, &where_, names)?);
    let item_selector = match (f.contains_key("ItemSelector"), f.contains_key("Parameters")) {
        (true, true) => return Err(invalid(location, "has both ItemSelector and Parameters")),
        (true, false) => template(location, f, "ItemSelector", true)?,
        (false, true) => template(location, f, "Parameters", true)?,
        (false, false) => None,
    };
    let items_path = match f.get("ItemsPath") {
        None => parse_path(location, "ItemsPath", "$")?,
        Some(Value::String(s)) => parse_path(location, "ItemsPath", s)?,
        Some(v) => {
            return Err(invalid(
                location,
                &format!("ItemsPath is {v} (expected a path)"),
            ));
        }
    };
    let max_concurrency = match (f.get("MaxConcurrency"), f.get("MaxConcurrencyPath")) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                location,
                "has both MaxConcurrency and MaxConcurrencyPath",
            ));
        }
        (Some(v), None) => Concurrency::Fixed(v.as_u64().ok_or_else(|| {
            invalid(
                location,
                &format!("MaxConcurrency is {v} (expected a non-negative integer)"),
            )
        })?),
        (None, Some(Value::String(s))) => {
            Concurrency::Path(parse_path(location, "MaxConcurrencyPath", s)?)
        }
        (None, Some(v)) => {
            return Err(invalid(
                location,
                &format!("MaxConcurrencyPath is {v} (expected a path)"),
            ));
        }
        (None, None) => Concurrency::Fixed(0),
    };
    Ok(MapState {
        io: parse_io(location, f)?,
        items_path,
        item_selector,
        processor,
        max_concurrency,
        result_selector: template(location, f, "ResultSelector", true)?,
        result_path: result_path(location, f)?,
        handling: parse_handling(location, f)?,
        then: transition(location, f)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<StateMachine, DefinitionError> {
        StateMachine::parse(&v.to_string(), &HashMap::new())
    }

    #[test]
    fn substitutions_replace_placeholders_in_strings() {
        let subs = HashMap::from([(
            "FnArn".to_string(),
            "arn:aws:lambda:us-east-1:1:function:f".to_string(),
        )]);
        let v = substitute(
            json!({"R": "${FnArn}", "k${FnArn}": ["x ${FnArn} y", "$${", "${ not}"]}),
            &subs,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "R": "arn:aws:lambda:us-east-1:1:function:f",
                "karn:aws:lambda:us-east-1:1:function:f": ["x arn:aws:lambda:us-east-1:1:function:f y", "$${", "${ not}"]
            })
        );
        let err = substitute(json!("${Missing}"), &subs).unwrap_err();
        assert!(
            err.to_string().contains("${Missing}") && err.to_string().contains("FnArn"),
            "{err}"
        );
    }

    #[test]
    fn graph_errors_name_the_state() {
        let err = parse(json!({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}}}))
            .unwrap_err();
        assert!(
            err.to_string().contains("state \"A\"") && err.to_string().contains("\"B\""),
            "{err}"
        );
        let err = parse(json!({"StartAt": "A", "States": {
            "A": {"Type": "Pass", "End": true}, "B": {"Type": "Pass", "End": true}}}))
        .unwrap_err();
        assert!(
            err.to_string().contains("state \"B\"") && err.to_string().contains("not reachable"),
            "{err}"
        );
        let err = parse(json!({"StartAt": "A", "States": {"A": {"Type": "Pass"}}})).unwrap_err();
        assert!(err.to_string().contains("neither Next nor"), "{err}");
    }
}
