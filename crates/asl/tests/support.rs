//! Test doubles: a task handler driven by a closure that records every call, and an observer
//! that records every event.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use storyreel_asl::{
    Event, ExecutionError, Executor, ExecutorOptions, StateMachine, TaskContext, TaskError,
    TaskHandler, async_trait,
};

/// One task invocation as the handler saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub resource: String,
    pub input: Value,
    pub ctx: TaskContext,
    /// tokio's clock when the call started (paused in most tests).
    pub at: tokio::time::Instant,
}

type Behaviour =
    dyn Fn(&str, &Value, &TaskContext, usize) -> Result<Value, TaskError> + Send + Sync;

/// A handler that answers with `behaviour(resource, input, ctx, call number)` and records calls.
pub struct Scripted {
    behaviour: Box<Behaviour>,
    pub calls: Mutex<Vec<Call>>,
}

impl Scripted {
    pub fn new(
        behaviour: impl Fn(&str, &Value, &TaskContext, usize) -> Result<Value, TaskError>
        + Send
        + Sync
        + 'static,
    ) -> Arc<Scripted> {
        Arc::new(Scripted {
            behaviour: Box::new(behaviour),
            calls: Mutex::new(Vec::new()),
        })
    }

    /// Returns its input.
    pub fn echo() -> Arc<Scripted> {
        Scripted::new(|_, input, _, _| Ok(input.clone()))
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl TaskHandler for Scripted {
    async fn invoke(
        &self,
        resource: &str,
        input: Value,
        ctx: &TaskContext,
    ) -> Result<Value, TaskError> {
        let n = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(Call {
                resource: resource.to_string(),
                input: input.clone(),
                ctx: ctx.clone(),
                at: tokio::time::Instant::now(),
            });
            calls.len() - 1
        };
        (self.behaviour)(resource, &input, ctx, n)
    }
}

/// Records events.
#[derive(Default)]
pub struct Recorder(pub Mutex<Vec<Event>>);

impl storyreel_asl::Observer for Recorder {
    fn on_event(&self, event: &Event) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }

    /// Paths of entered states, in order.
    pub fn entered(&self) -> Vec<String> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::StateEntered { path, .. } => Some(path),
                _ => None,
            })
            .collect()
    }
}

pub const FN_A: &str = "arn:aws:lambda:us-east-1:123456789012:function:a";

pub fn parse(definition: &Value) -> StateMachine {
    StateMachine::parse(&definition.to_string(), &HashMap::new())
        .unwrap_or_else(|e| panic!("definition rejected: {e}"))
}

pub fn parse_err(definition: &Value) -> String {
    match StateMachine::parse(&definition.to_string(), &HashMap::new()) {
        Ok(_) => panic!("definition accepted: {definition}"),
        Err(e) => e.to_string(),
    }
}

pub fn options() -> ExecutorOptions {
    ExecutorOptions {
        max_parallelism: 16,
        ..ExecutorOptions::default()
    }
}

/// Runs `definition` on `input` with `handler`; returns the outcome and the events.
pub async fn run(
    definition: &Value,
    handler: Arc<dyn TaskHandler>,
    input: Value,
) -> (Result<Value, ExecutionError>, Arc<Recorder>) {
    run_with(definition, handler, input, options()).await
}

pub async fn run_with(
    definition: &Value,
    handler: Arc<dyn TaskHandler>,
    input: Value,
    options: ExecutorOptions,
) -> (Result<Value, ExecutionError>, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let result = Executor::new(parse(definition), handler)
        .with_options(options)
        .with_observer(recorder.clone())
        .execute("test-run", input)
        .await;
    (result, recorder)
}

pub fn failed(error: &str, result: &Result<Value, ExecutionError>) -> String {
    match result {
        Err(e) => {
            assert_eq!(e.error.as_deref(), Some(error), "{e}");
            e.cause.clone().unwrap_or_default()
        }
        Ok(v) => panic!("expected failure {error}, got output {v}"),
    }
}
