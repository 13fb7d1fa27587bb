//! The workflow on one machine: the deployed state machine definition, interpreted by
//! `storyreel-asl`, with every `${...FunctionArn}` bound to the in-process step. Chunks render
//! on a bounded pool instead of Lambdas; the store is a directory that mirrors the bucket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;
use storyreel_asl::{
    ExecutionError, Executor, ExecutorOptions, Observer, StateMachine, TaskContext, TaskError,
    TaskHandler, async_trait,
};

use crate::jobs::{FsJobs, JobStore};
use crate::narration::Narrators;
use crate::publishing::Publishers;
use crate::steps::{self, StepError, story::StoryLlm};
use crate::store::{BlobStore, FsStore};

pub use crate::definition::DEFINITION;

/// The SAM resource name of a step: `render-chunk` → `RenderChunkFunction`.
pub fn resource_name(step: &str) -> String {
    let mut out = String::new();
    for part in step.split('-') {
        let mut c = part.chars();
        if let Some(f) = c.next() {
            out.extend(f.to_uppercase());
            out.push_str(c.as_str());
        }
    }
    out + "Function"
}

/// The local function ARN of a step.
pub fn local_arn(step: &str) -> String {
    format!("arn:aws:lambda:local:000000000000:function:{step}")
}

/// `${StoryFunctionArn}` and the others, bound to local ARNs.
pub fn substitutions() -> HashMap<String, String> {
    steps::STEP_NAMES
        .iter()
        .map(|s| (format!("{}Arn", resource_name(s)), local_arn(s)))
        .collect()
}

/// The steps in this process, with the capabilities of a local run.
pub struct LocalSteps {
    pub store: Arc<dyn BlobStore>,
    pub jobs: Arc<dyn JobStore>,
    pub narrators: Narrators,
    pub llm: Option<Arc<dyn StoryLlm>>,
    pub scratch: PathBuf,
    /// x264 threads per chunk.
    pub threads: u32,
    /// Connected accounts and the platforms, for publish (and drop-folder destinations).
    pub publishers: Publishers,
}

impl LocalSteps {
    /// A local run rooted at `dir`: the store is `dir` (mirroring the bucket's keys), job
    /// records are `dir/jobs/<job_id>.json`.
    pub fn in_dir(dir: &Path, chunks_at_once: usize) -> LocalSteps {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        LocalSteps {
            store: Arc::new(FsStore::new(dir)),
            jobs: Arc::new(FsJobs::new(dir.join("jobs"))),
            narrators: Narrators::local(),
            llm: None,
            scratch: dir.join(".scratch"),
            // x264's rule of 1.5 threads per core, shared by the chunks in flight.
            threads: ((3 * cores) / (2 * chunks_at_once.max(1))).max(1) as u32,
            publishers: Publishers::local(),
        }
    }

    /// Runs one step on a JSON event, as its Lambda would.
    pub async fn invoke_step(&self, step: &str, event: Value) -> Result<Value, StepError> {
        use steps::ErrorName::InvalidInput;
        fn parse<T: serde::de::DeserializeOwned>(
            step: &'static str,
            v: Value,
        ) -> Result<T, StepError> {
            serde_json::from_value(v)
                .map_err(|e| StepError::wrap(step, InvalidInput, "malformed event", e))
        }
        fn out<T: serde::Serialize>(step: &'static str, v: T) -> Result<Value, StepError> {
            serde_json::to_value(v).map_err(|e| StepError::fatal(step, "encode output", e))
        }
        let store = self.store.as_ref();
        let jobs = self.jobs.as_ref();
        match step {
            "story" => out(
                "story",
                steps::story(
                    parse("story", event)?,
                    store,
                    jobs,
                    self.llm.as_deref(),
                    &self.publishers.drop_publish,
                )
                .await?,
            ),
            "speech" => out(
                "speech",
                steps::speech(parse("speech", event)?, store, jobs, &self.narrators).await?,
            ),
            "marks" => out(
                "marks",
                steps::marks(parse("marks", event)?, store, &self.narrators).await?,
            ),
            "render-chunk" => out(
                "render-chunk",
                steps::render_chunk(
                    parse("render-chunk", event)?,
                    store,
                    jobs,
                    self.threads,
                    &self.scratch,
                )
                .await?,
            ),
            "merge" => out(
                "merge",
                steps::merge(parse("merge", event)?, store, jobs, &self.scratch).await?,
            ),
            "publish" => out(
                "publish",
                steps::publish(parse("publish", event)?, store, jobs, &self.publishers).await?,
            ),
            other => Err(StepError::invalid(
                "invoke",
                format!(
                    "unknown step {other:?} (expected one of {})",
                    steps::STEP_NAMES.join(", ")
                ),
            )),
        }
    }
}

/// A step error as Step Functions sees a Lambda error: the stable name, and a cause that is
/// the Lambda error payload.
pub fn task_error(e: &StepError) -> TaskError {
    let cause = serde_json::json!({"errorType": e.name.as_str(), "errorMessage": e.chain()});
    TaskError::new(e.name.as_str(), cause.to_string())
}

#[async_trait]
impl TaskHandler for LocalSteps {
    async fn invoke(
        &self,
        resource: &str,
        input: Value,
        _ctx: &TaskContext,
    ) -> Result<Value, TaskError> {
        let step = resource.rsplit(':').next().unwrap_or(resource);
        self.invoke_step(step, input)
            .await
            .map_err(|e| task_error(&e))
    }
}

/// Runs the workflow once.
pub async fn execute(
    steps: Arc<LocalSteps>,
    execution: &str,
    input: Value,
    chunks_at_once: usize,
    observer: Option<Arc<dyn Observer>>,
) -> Result<Value, ExecutionError> {
    let machine = match StateMachine::parse(DEFINITION, &substitutions()) {
        Ok(m) => m,
        Err(e) => {
            return Err(ExecutionError {
                error: Some("States.Runtime".into()),
                cause: Some(format!("invalid state machine definition: {e}")),
            });
        }
    };
    let mut exec = Executor::new(machine, steps).with_options(ExecutorOptions {
        max_parallelism: chunks_at_once.max(1),
        ..ExecutorOptions::default()
    });
    if let Some(o) = observer {
        exec = exec.with_observer(o);
    }
    exec.execute(execution, input).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_one_rule() {
        assert_eq!(resource_name("render-chunk"), "RenderChunkFunction");
        assert_eq!(resource_name("story"), "StoryFunction");
        let subs = substitutions();
        for step in steps::STEP_NAMES {
            let key = format!("${{{}Arn}}", resource_name(step));
            assert!(DEFINITION.contains(&key), "{key} not in the definition");
        }
        assert_eq!(subs.len(), 6);
        StateMachine::parse(DEFINITION, &subs).expect("the definition parses and validates");
    }
}
