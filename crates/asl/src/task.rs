//! The boundary to the code that does the work: a [`TaskHandler`] runs each Task state.

use crate::error::TaskError;
use async_trait::async_trait;
use serde_json::Value;

/// Where a task invocation comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskContext {
    /// The Task state's name.
    pub state_name: String,
    /// The state's position: its name, under `Map name/item index/` or
    /// `Parallel name/branch index/` for states inside a Map or a Parallel.
    pub path: String,
    /// The execution ARN (`$$.Execution.Id`).
    pub execution_id: String,
    /// How many times this state has been retried so far (`$$.State.RetryCount`).
    pub retry_count: u32,
}

/// Runs the work of Task states.
///
/// `resource` is the Lambda function to invoke: the state's `Resource` ARN (after definition
/// substitutions) for a plain Lambda task, or the `FunctionName` parameter for the optimised
/// `arn:aws:states:::lambda:invoke` integration. `input` is the function's payload. The result is
/// what the function returns; the executor wraps it as the integration does
/// (`{"Payload": ..., "StatusCode": 200, ...}`) for `lambda:invoke`.
#[async_trait]
pub trait TaskHandler: Send + Sync {
    /// Invokes the function once. Retries, timeouts and catching are the executor's job.
    async fn invoke(
        &self,
        resource: &str,
        input: Value,
        ctx: &TaskContext,
    ) -> Result<Value, TaskError>;
}
