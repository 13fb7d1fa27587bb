//! Running a parsed state machine with Step Functions' semantics.
//!
//! Each state processes its input as Step Functions does (JSONPath query language):
//! `InputPath` → `Parameters`/`ItemSelector` → the work → `ResultSelector` → `ResultPath` (into
//! the state's raw input) → `OutputPath`. Errors are retried and caught per the state's `Retry`
//! and `Catch`; Map iterations and Parallel branches run as tokio tasks; Wait, retry intervals and
//! `TimeoutSeconds` use tokio's clock, so tests can pause time.

use crate::definition::{
    Catcher, Concurrency, FailField, Handling, Io, Jitter, Kind, MapState, Parallel, Resource,
    Retrier, Scope, State, StateMachine, Task, Transition, WaitFor,
};
use crate::error::ExecutionError;
use crate::json_path::{Path, ReferencePath, type_name};
use crate::observer::{Event, Observer};
use crate::task::{TaskContext, TaskHandler};
use crate::template::Template;
use crate::{intrinsic, timestamp};
use serde_json::{Map, Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::task::{JoinError, JoinSet};

/// Step Functions' payload quota: a state's input or output, or a task's result, larger than
/// this (as UTF-8 JSON) fails with `States.DataLimitExceeded`.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;

/// How an [`Executor`] runs executions.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecutorOptions {
    /// The most Map iterations of one Map state that run at once, whatever the definition's
    /// `MaxConcurrency` (0 there means "no limit", which locally means this many). At least 1.
    /// Default: the number of CPUs.
    pub max_parallelism: usize,
    /// Multiplies every Wait and retry interval (not `TimeoutSeconds`): 0.0 makes them
    /// instantaneous, for tests. Must be finite and not negative. Default: 1.0.
    pub time_scale: f64,
    /// The state machine ARN (`$$.StateMachine.Id`); execution ARNs derive from it as in Step
    /// Functions. Default: `arn:aws:states:local:000000000000:stateMachine:local`.
    pub state_machine_arn: String,
    /// The execution role ARN (`$$.Execution.RoleArn`).
    /// Default: `arn:aws:iam::000000000000:role/local`.
    pub role_arn: String,
}

impl Default for ExecutorOptions {
    fn default() -> ExecutorOptions {
        ExecutorOptions {
            max_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
            time_scale: 1.0,
            state_machine_arn: "arn:aws:states:local:000000000000:stateMachine:local".to_string(),
            role_arn: "arn:aws:iam::000000000000:role/local".to_string(),
        }
    }
}

/// Runs executions of one state machine, invoking a [`TaskHandler`] for its Task states.
///
/// Executions must run inside a tokio runtime (Map iterations and Parallel branches are
/// spawned as tasks). Dropping an execution's future stops all of its work.
pub struct Executor {
    machine: StateMachine,
    handler: Arc<dyn TaskHandler>,
    observer: Option<Arc<dyn Observer>>,
    options: ExecutorOptions,
}

impl Executor {
    /// An executor with default options and no observer.
    pub fn new(machine: StateMachine, handler: Arc<dyn TaskHandler>) -> Executor {
        Executor {
            machine,
            handler,
            observer: None,
            options: ExecutorOptions::default(),
        }
    }

    /// Sets the options.
    ///
    /// # Panics
    /// If `time_scale` is negative or not finite, or `max_parallelism` is 0: programming
    /// errors, not input.
    pub fn with_options(mut self, options: ExecutorOptions) -> Executor {
        assert!(
            options.time_scale.is_finite() && options.time_scale >= 0.0,
            "time_scale {} (expected finite and >= 0)",
            options.time_scale
        );
        assert!(
            options.max_parallelism >= 1,
            "max_parallelism 0 (expected >= 1)"
        );
        self.options = options;
        self
    }

    /// Sends this execution's [`Event`]s to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Executor {
        self.observer = Some(observer);
        self
    }

    /// Runs one execution named `name` (its ARN is derived from the state machine ARN) on
    /// `input`, and returns its output, or the error and cause it failed with.
    pub async fn execute(&self, name: &str, input: Value) -> Result<Value, ExecutionError> {
        let sm_arn = &self.options.state_machine_arn;
        let (execution_id, sm_name) = match sm_arn.split_once(":stateMachine:") {
            Some((prefix, sm_name)) => (format!("{prefix}:execution:{sm_name}:{name}"), sm_name),
            None => (format!("{sm_arn}:{name}"), sm_arn.as_str()),
        };
        let run = Arc::new(Run {
            handler: self.handler.clone(),
            observer: self.observer.clone(),
            max_parallelism: self.options.max_parallelism.max(1),
            time_scale: self.options.time_scale,
            execution_id: execution_id.clone(),
            execution: json!({
                "Id": execution_id,
                "Input": input,
                "Name": name,
                "RoleArn": self.options.role_arn,
                "StartTime": timestamp::format(SystemTime::now()),
                "RedriveCount": 0,
            }),
            state_machine: json!({"Id": sm_arn, "Name": sm_name}),
        });
        run.emit(|| Event::ExecutionStarted {
            execution_id: execution_id.clone(),
            input: input.clone(),
        });
        let result = match check_size(&input, "the execution input") {
            Err(f) => Err(f),
            Ok(()) => {
                let work = run_scope(run.clone(), self.machine.root.clone(), input, String::new());
                match self.machine.timeout {
                    None => work.await,
                    Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
                        Err(Failure::new(
                            "States.Timeout",
                            format!(
                                "the execution ran longer than the state machine's \
                                 TimeoutSeconds ({})",
                                limit.as_secs()
                            ),
                        ))
                    }),
                }
            }
        };
        match result {
            Ok(output) => {
                run.emit(|| Event::ExecutionSucceeded {
                    output: output.clone(),
                });
                Ok(output)
            }
            Err(f) => {
                run.emit(|| Event::ExecutionFailed {
                    error: f.error.clone(),
                    cause: f.cause.clone(),
                });
                Err(ExecutionError {
                    error: f.error,
                    cause: f.cause,
                })
            }
        }
    }
}

/// What one execution shares between its tasks.
struct Run {
    handler: Arc<dyn TaskHandler>,
    observer: Option<Arc<dyn Observer>>,
    max_parallelism: usize,
    time_scale: f64,
    execution_id: String,
    /// `$$.Execution`.
    execution: Value,
    /// `$$.StateMachine`.
    state_machine: Value,
}

impl Run {
    fn emit(&self, event: impl FnOnce() -> Event) {
        if let Some(observer) = &self.observer {
            observer.on_event(&event());
        }
    }

    /// `d` times the time scale; saturates (a Wait's seconds come from the input).
    fn scaled(&self, d: Duration) -> Duration {
        Duration::try_from_secs_f64(d.as_secs_f64() * self.time_scale).unwrap_or(Duration::MAX)
    }

    /// The context object (`$$`) for a state.
    fn context(&self, state: &str, entered_time: &str, retry_count: u32) -> Value {
        json!({
            "Execution": self.execution,
            "State": {"EnteredTime": entered_time, "Name": state, "RetryCount": retry_count},
            "StateMachine": self.state_machine,
        })
    }
}

/// An error on its way up: what Step Functions reports as `error` and `cause`.
#[derive(Debug, Clone)]
struct Failure {
    error: Option<String>,
    cause: Option<String>,
}

impl Failure {
    fn new(error: &str, cause: impl Into<String>) -> Failure {
        Failure {
            error: Some(error.to_string()),
            cause: Some(cause.into()),
        }
    }

    fn runtime(cause: impl Into<String>) -> Failure {
        Failure::new("States.Runtime", cause)
    }

    /// Whether a retrier's or catcher's `ErrorEquals` matches this error, per
    /// <https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html>:
    /// `States.ALL` matches any error name; `States.TaskFailed` any except `States.Timeout`;
    /// and `States.Runtime` and `States.DataLimitExceeded` are terminal: "A retry or catch on
    /// States.ALL won't catch States.Runtime errors", and neither can be retried or caught by
    /// name.
    fn matches(&self, error_equals: &[String]) -> bool {
        let error = self.error.as_deref();
        if matches!(error, Some("States.Runtime" | "States.DataLimitExceeded")) {
            return false;
        }
        error_equals.iter().any(|name| match name.as_str() {
            "States.ALL" => true,
            "States.TaskFailed" => error != Some("States.Timeout"),
            name => error == Some(name),
        })
    }
}

enum Flow {
    Next(String),
    End,
}

fn flow(then: &Transition) -> Flow {
    match then {
        Transition::Next(n) => Flow::Next(n.clone()),
        Transition::End => Flow::End,
    }
}

type Boxed<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs the states of a machine, branch or iteration from `StartAt` to the end. `prefix` is
/// prepended to state names to form their paths in events.
fn run_scope(
    run: Arc<Run>,
    scope: Arc<Scope>,
    input: Value,
    prefix: String,
) -> Boxed<Result<Value, Failure>> {
    Box::pin(async move {
        let mut name = scope.start_at.clone();
        let mut input = input;
        loop {
            // Transitions were checked when the definition was parsed.
            let state = scope.states.get(&name).ok_or_else(|| {
                Failure::runtime(format!("no state named {name:?} (a bug in the validator)"))
            })?;
            let path = format!("{prefix}{name}");
            run.emit(|| Event::StateEntered {
                name: name.clone(),
                path: path.clone(),
                input: input.clone(),
            });
            let result = run_state(&run, state, input, &path)
                .await
                .and_then(|(out, flow)| {
                    check_size(&out, &format!("the output of state {name:?}"))?;
                    Ok((out, flow))
                });
            match result {
                Ok((output, flow)) => {
                    run.emit(|| Event::StateExited {
                        name: name.clone(),
                        path: path.clone(),
                        output: output.clone(),
                    });
                    match flow {
                        Flow::End => return Ok(output),
                        Flow::Next(next) => {
                            name = next;
                            input = output;
                        }
                    }
                }
                Err(failure) => {
                    run.emit(|| Event::StateFailed {
                        name: name.clone(),
                        path: path.clone(),
                        error: failure.error.clone(),
                        cause: failure.cause.clone(),
                    });
                    return Err(failure);
                }
            }
        }
    })
}

async fn run_state(
    run: &Arc<Run>,
    state: &State,
    raw: Value,
    path: &str,
) -> Result<(Value, Flow), Failure> {
    let entered = timestamp::format(SystemTime::now());
    let ctx = run.context(&state.name, &entered, 0);
    match &state.kind {
        Kind::Pass(p) => {
            let effective = apply_input_path(&p.io, &raw)?;
            let parameters = match &p.parameters {
                Some(t) => t.apply(&effective, &ctx).map_err(Failure::runtime)?,
                None => effective,
            };
            let result = p.result.clone().unwrap_or(parameters);
            let output = place_result(&raw, result, p.result_path.as_ref())?;
            Ok((apply_output_path(&p.io, output)?, flow(&p.then)))
        }
        Kind::Choice(c) => {
            let effective = apply_input_path(&c.io, &raw)?;
            for (rule, next) in &c.choices {
                if rule.eval(&effective, &ctx).map_err(Failure::runtime)? {
                    return Ok((
                        apply_output_path(&c.io, effective)?,
                        Flow::Next(next.clone()),
                    ));
                }
            }
            match &c.default {
                Some(next) => Ok((
                    apply_output_path(&c.io, effective)?,
                    Flow::Next(next.clone()),
                )),
                None => Err(Failure::new(
                    "States.NoChoiceMatched",
                    format!(
                        "No Matches! The input of Choice state {:?} matched no rule, and it has \
                         no Default",
                        state.name
                    ),
                )),
            }
        }
        Kind::Wait(w) => {
            let effective = apply_input_path(&w.io, &raw)?;
            let duration = match &w.wait {
                WaitFor::Seconds(s) => Duration::from_secs(*s),
                WaitFor::SecondsPath(p) => {
                    let v = select(p, &effective, &ctx, "SecondsPath")?;
                    let seconds = v.as_u64().ok_or_else(|| {
                        Failure::runtime(format!(
                            "The SecondsPath parameter {:?} of Wait state {:?} does not point to \
                             a non-negative integer: {v}",
                            p.text(),
                            state.name
                        ))
                    })?;
                    Duration::from_secs(seconds)
                }
                WaitFor::Timestamp(t) => timestamp::until(*t, SystemTime::now()),
                WaitFor::TimestampPath(p) => {
                    let v = select(p, &effective, &ctx, "TimestampPath")?;
                    let t = v.as_str().and_then(timestamp::parse).ok_or_else(|| {
                        Failure::runtime(format!(
                            "The TimestampPath parameter {:?} of Wait state {:?} does not point \
                             to an RFC 3339 timestamp: {v}",
                            p.text(),
                            state.name
                        ))
                    })?;
                    timestamp::until(t, SystemTime::now())
                }
            };
            tokio::time::sleep(run.scaled(duration)).await;
            Ok((apply_output_path(&w.io, effective)?, flow(&w.then)))
        }
        Kind::Succeed(io) => {
            let effective = apply_input_path(io, &raw)?;
            Ok((apply_output_path(io, effective)?, Flow::End))
        }
        Kind::Fail(f) => {
            let field =
                |field: &Option<FailField>, what: &str| -> Result<Option<String>, Failure> {
                    let value = match field {
                        None => return Ok(None),
                        Some(FailField::Literal(s)) => return Ok(Some(s.clone())),
                        Some(FailField::Path(p)) => select(p, &raw, &ctx, what)?,
                        Some(FailField::Call(c)) => c.eval(&raw, &ctx).map_err(Failure::runtime)?,
                    };
                    match value {
                        Value::String(s) => Ok(Some(s)),
                        other => Err(Failure::runtime(format!(
                            "The {what} of Fail state {:?} is a {} (expected a string)",
                            state.name,
                            type_name(&other)
                        ))),
                    }
                };
            Err(Failure {
                error: field(&f.error, "ErrorPath")?,
                cause: field(&f.cause, "CausePath")?,
            })
        }
        Kind::Task(_) | Kind::Parallel(_) | Kind::Map(_) => {
            handled(run, state, &raw, path, &entered).await
        }
    }
}

/// Runs a Task, Parallel or Map state with its Retry and Catch.
async fn handled(
    run: &Arc<Run>,
    state: &State,
    raw: &Value,
    path: &str,
    entered: &str,
) -> Result<(Value, Flow), Failure> {
    let (handling, then): (&Handling, &Transition) = match &state.kind {
        Kind::Task(t) => (&t.handling, &t.then),
        Kind::Parallel(p) => (&p.handling, &p.then),
        Kind::Map(m) => (&m.handling, &m.then),
        _ => {
            return Err(Failure::runtime(
                "Retry and Catch apply to Task, Parallel and Map",
            ));
        }
    };
    let mut retries_used = vec![0u32; handling.retry.len()];
    let mut retry_count = 0u32;
    loop {
        let ctx = run.context(&state.name, entered, retry_count);
        let attempt = match &state.kind {
            Kind::Task(t) => task_attempt(run, &state.name, t, raw, path, &ctx, retry_count).await,
            Kind::Parallel(p) => parallel_attempt(run, p, raw, path, &ctx).await,
            Kind::Map(m) => map_attempt(run, &state.name, m, raw, path, &ctx).await,
            _ => {
                return Err(Failure::runtime(
                    "Retry and Catch apply to Task, Parallel and Map",
                ));
            }
        };
        let failure = match attempt {
            Ok(output) => return Ok((output, flow(then))),
            Err(f) => f,
        };
        // The first retrier that matches decides; when it is exhausted the error goes to Catch.
        if let Some(i) = handling
            .retry
            .iter()
            .position(|r| failure.matches(&r.error_equals))
        {
            let retrier = &handling.retry[i];
            if retries_used[i] < retrier.max_attempts {
                let delay = run.scaled(retry_delay(retrier, retries_used[i]));
                retries_used[i] += 1;
                retry_count += 1;
                run.emit(|| Event::TaskRetry {
                    state: state.name.clone(),
                    path: path.to_string(),
                    attempt: retry_count,
                    error: failure.error.clone(),
                    cause: failure.cause.clone(),
                    delay,
                });
                tokio::time::sleep(delay).await;
                continue;
            }
        }
        if let Some(catcher) = handling
            .catch
            .iter()
            .find(|c| failure.matches(&c.error_equals))
        {
            return caught(catcher, raw, failure);
        }
        return Err(failure);
    }
}

/// The wait before retry number `retries_done + 1` of a retrier.
fn retry_delay(retrier: &Retrier, retries_done: u32) -> Duration {
    let exponent = i32::try_from(retries_done).unwrap_or(i32::MAX);
    // The cap keeps an overflowing backoff (infinity) representable; jitter comes after it,
    // so it never multiplies infinity by zero.
    let mut seconds = (retrier.interval_seconds * retrier.backoff_rate.powi(exponent))
        .min(retrier.max_delay_seconds.unwrap_or(f64::INFINITY))
        .min(1.0e9);
    if retrier.jitter == Jitter::Full {
        seconds *= fastrand::f64();
    }
    Duration::from_secs_f64(seconds)
}

/// The output of a state whose error a catcher handled: the error output
/// `{"Error": ..., "Cause": ...}` placed into the raw input at the catcher's ResultPath.
/// OutputPath does not apply.
fn caught(catcher: &Catcher, raw: &Value, failure: Failure) -> Result<(Value, Flow), Failure> {
    let error_output = json!({"Error": failure.error, "Cause": failure.cause});
    let output = place_result(raw, error_output, catcher.result_path.as_ref())?;
    Ok((output, Flow::Next(catcher.next.clone())))
}

async fn task_attempt(
    run: &Arc<Run>,
    name: &str,
    task: &Task,
    raw: &Value,
    path: &str,
    ctx: &Value,
    retry_count: u32,
) -> Result<Value, Failure> {
    let effective = apply_input_path(&task.io, raw)?;
    let parameters = match &task.parameters {
        Some(t) => t.apply(&effective, ctx).map_err(Failure::runtime)?,
        None => effective,
    };
    let (function, payload) = match &task.resource {
        Resource::Function(arn) => (arn.clone(), parameters),
        Resource::LambdaInvoke => {
            let Value::Object(mut p) = parameters else {
                return Err(Failure::runtime(
                    "lambda:invoke Parameters are not an object",
                ));
            };
            let function = match p.remove("FunctionName") {
                Some(Value::String(f)) => f,
                other => {
                    return Err(Failure::runtime(format!(
                        "the lambda:invoke FunctionName is {} (expected a string)",
                        other.unwrap_or(Value::Null)
                    )));
                }
            };
            (function, p.remove("Payload").unwrap_or_else(|| json!({})))
        }
    };
    check_size(&payload, &format!("the input of task {name:?}"))?;
    let task_ctx = TaskContext {
        state_name: name.to_string(),
        path: path.to_string(),
        execution_id: run.execution_id.clone(),
        retry_count,
    };
    let call = run.handler.invoke(&function, payload, &task_ctx);
    let outcome = match task.timeout {
        None => call.await,
        Some(limit) => match tokio::time::timeout(limit, call).await {
            Ok(outcome) => outcome,
            Err(_) => {
                return Err(Failure::new(
                    "States.Timeout",
                    format!(
                        "task {name:?} did not finish within its TimeoutSeconds ({})",
                        limit.as_secs()
                    ),
                ));
            }
        },
    };
    let result = outcome.map_err(|e| Failure {
        error: Some(e.error),
        cause: Some(e.cause),
    })?;
    check_size(&result, &format!("the result of task {name:?}"))?;
    let result = match task.resource {
        Resource::Function(_) => result,
        Resource::LambdaInvoke => lambda_invoke_response(result),
    };
    finish(
        raw,
        result,
        task.result_selector.as_ref(),
        task.result_path.as_ref(),
        &task.io,
        ctx,
    )
}

/// The Lambda Invoke API response as the optimised integration returns it.
fn lambda_invoke_response(payload: Value) -> Value {
    let request_id = intrinsic::uuid_v4();
    json!({
        "ExecutedVersion": "$LATEST",
        "Payload": payload,
        "SdkHttpMetadata": {
            "AllHttpHeaders": {
                "Content-Type": ["application/json"],
                "X-Amz-Executed-Version": ["$LATEST"],
                "x-amzn-RequestId": [request_id],
            },
            "HttpHeaders": {
                "Content-Type": "application/json",
                "X-Amz-Executed-Version": "$LATEST",
                "x-amzn-RequestId": request_id,
            },
            "HttpStatusCode": 200,
        },
        "SdkResponseMetadata": {"RequestId": request_id},
        "StatusCode": 200,
    })
}

async fn parallel_attempt(
    run: &Arc<Run>,
    parallel: &Parallel,
    raw: &Value,
    path: &str,
    ctx: &Value,
) -> Result<Value, Failure> {
    let effective = apply_input_path(&parallel.io, raw)?;
    let input = match &parallel.parameters {
        Some(t) => t.apply(&effective, ctx).map_err(Failure::runtime)?,
        None => effective,
    };
    let mut set = JoinSet::new();
    for (i, branch) in parallel.branches.iter().enumerate() {
        let work = run_scope(
            run.clone(),
            branch.clone(),
            input.clone(),
            format!("{path}/{i}/"),
        );
        set.spawn(async move { (i, work.await) });
    }
    let mut results = vec![Value::Null; parallel.branches.len()];
    // The first failing branch fails the state; dropping `set` stops the others.
    while let Some(joined) = set.join_next().await {
        let (i, result) = joined.map_err(join_failure)?;
        results[i] = result?;
    }
    finish(
        raw,
        Value::Array(results),
        parallel.result_selector.as_ref(),
        parallel.result_path.as_ref(),
        &parallel.io,
        ctx,
    )
}

async fn map_attempt(
    run: &Arc<Run>,
    name: &str,
    map: &MapState,
    raw: &Value,
    path: &str,
    ctx: &Value,
) -> Result<Value, Failure> {
    let effective = apply_input_path(&map.io, raw)?;
    let items = match map.items_path.select(&effective, ctx) {
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(Failure::runtime(format!(
                "The ItemsPath {:?} of Map state {name:?} selects a {} (expected an array)",
                map.items_path.text(),
                type_name(&other)
            )));
        }
        None => {
            return Err(Failure::runtime(format!(
                "The ItemsPath {:?} of Map state {name:?} selects nothing in its input",
                map.items_path.text()
            )));
        }
    };
    let max_concurrency = match &map.max_concurrency {
        Concurrency::Fixed(n) => *n,
        Concurrency::Path(p) => {
            let v = select(p, &effective, ctx, "MaxConcurrencyPath")?;
            v.as_u64().ok_or_else(|| {
                Failure::runtime(format!(
                    "The MaxConcurrencyPath {:?} of Map state {name:?} selects {v} (expected a \
                     non-negative integer)",
                    p.text()
                ))
            })?
        }
    };
    let limit = match usize::try_from(max_concurrency) {
        Ok(0) | Err(_) => run.max_parallelism,
        Ok(n) => n.min(run.max_parallelism),
    };
    let total = items.len();
    let mut results = vec![Value::Null; total];
    let mut pending = items.into_iter().enumerate();
    let mut set = JoinSet::new();
    loop {
        while set.len() < limit {
            let Some((index, item)) = pending.next() else {
                break;
            };
            let input = match &map.item_selector {
                None => item,
                Some(selector) => {
                    let mut item_ctx = ctx.clone();
                    if let Value::Object(fields) = &mut item_ctx {
                        fields.insert(
                            "Map".to_string(),
                            json!({"Item": {"Index": index, "Value": item}}),
                        );
                    }
                    selector
                        .apply(&effective, &item_ctx)
                        .map_err(Failure::runtime)?
                }
            };
            let work = run_scope(
                run.clone(),
                map.processor.clone(),
                input,
                format!("{path}/{index}/"),
            );
            set.spawn(async move { (index, work.await) });
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        // The first failing iteration fails the state; dropping `set` stops the others and no
        // more are started, as Step Functions aborts the remaining iterations.
        let (index, result) = joined.map_err(join_failure)?;
        results[index] = result?;
        run.emit(|| Event::MapItemDone {
            state: name.to_string(),
            path: path.to_string(),
            index,
            total,
        });
    }
    finish(
        raw,
        Value::Array(results),
        map.result_selector.as_ref(),
        map.result_path.as_ref(),
        &map.io,
        ctx,
    )
}

/// A branch or iteration task that did not finish: a panic in a task handler is re-raised, as
/// it is a bug, not a state machine error.
fn join_failure(error: JoinError) -> Failure {
    if error.is_panic() {
        std::panic::resume_unwind(error.into_panic());
    }
    Failure::runtime("a branch or iteration was cancelled")
}

/// ResultSelector, ResultPath and OutputPath.
fn finish(
    raw: &Value,
    result: Value,
    selector: Option<&Template>,
    result_path: Option<&ReferencePath>,
    io: &Io,
    ctx: &Value,
) -> Result<Value, Failure> {
    let result = match selector {
        Some(t) => t.apply(&result, ctx).map_err(Failure::runtime)?,
        None => result,
    };
    let output = place_result(raw, result, result_path)?;
    apply_output_path(io, output)
}

fn select(path: &Path, input: &Value, ctx: &Value, field: &str) -> Result<Value, Failure> {
    path.select(input, ctx).ok_or_else(|| {
        Failure::runtime(format!(
            "Invalid path '{}' in {field}: no value for the path in the input",
            path.text()
        ))
    })
}

fn apply_input_path(io: &Io, raw: &Value) -> Result<Value, Failure> {
    match &io.input_path {
        None => Ok(Value::Object(Map::new())),
        Some(p) if p.is_root() => Ok(raw.clone()),
        Some(p) => p.select(raw, &Value::Null).ok_or_else(|| {
            Failure::runtime(format!(
                "Invalid path '{}' : No results for path in InputPath",
                p.text()
            ))
        }),
    }
}

fn apply_output_path(io: &Io, output: Value) -> Result<Value, Failure> {
    match &io.output_path {
        None => Ok(Value::Object(Map::new())),
        Some(p) if p.is_root() => Ok(output),
        Some(p) => p.select(&output, &Value::Null).ok_or_else(|| {
            Failure::runtime(format!(
                "Invalid path '{}' : No results for path in OutputPath",
                p.text()
            ))
        }),
    }
}

fn place_result(
    raw: &Value,
    result: Value,
    result_path: Option<&ReferencePath>,
) -> Result<Value, Failure> {
    match result_path {
        None => Ok(raw.clone()),
        Some(rp) => rp.place(raw.clone(), result).map_err(|e| {
            Failure::new(
                "States.ResultPathMatchFailure",
                format!(
                    "Unable to apply ResultPath '{}' to the input: {}",
                    rp.text(),
                    e.0
                ),
            )
        }),
    }
}

fn check_size(value: &Value, what: &str) -> Result<(), Failure> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a Value to a counter cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    if count.0 > MAX_PAYLOAD_BYTES {
        return Err(Failure::new(
            "States.DataLimitExceeded",
            format!(
                "{what} has {} bytes (the limit is {MAX_PAYLOAD_BYTES})",
                count.0
            ),
        ));
    }
    Ok(())
}
