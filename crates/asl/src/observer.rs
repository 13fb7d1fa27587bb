//! Progress events of an execution, for a progress display or a test that compares the states an
//! execution passed through with Step Functions' execution history.

use serde_json::Value;
use std::time::Duration;

/// Something that happened during an execution.
///
/// `path` names a state by its position: its name at the top level, and
/// `<Map state path>/<item index>/<name>` or `<Parallel state path>/<branch index>/<name>` inside
/// a Map iteration or a Parallel branch (for example `Render chunks/3/Render chunk`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// The execution started.
    ExecutionStarted {
        /// The execution ARN.
        execution_id: String,
        /// The execution input.
        input: Value,
    },
    /// A state was entered (once per entry; retries do not enter again).
    StateEntered {
        /// The state's name.
        name: String,
        /// The state's position.
        path: String,
        /// The state's raw input.
        input: Value,
    },
    /// A state finished and passed `output` on (also after a caught error).
    StateExited {
        /// The state's name.
        name: String,
        /// The state's position.
        path: String,
        /// The state's output.
        output: Value,
    },
    /// A state failed and no Catch handled it (the error goes to the enclosing state).
    StateFailed {
        /// The state's name.
        name: String,
        /// The state's position.
        path: String,
        /// The error name.
        error: Option<String>,
        /// The cause.
        cause: Option<String>,
    },
    /// A state failed and a retrier will run it again after `delay`.
    TaskRetry {
        /// The state's name.
        state: String,
        /// The state's position.
        path: String,
        /// The retry about to happen: 1 for the first retry.
        attempt: u32,
        /// The error that caused the retry.
        error: Option<String>,
        /// Its cause.
        cause: Option<String>,
        /// The wait before the retry (after jitter and the executor's time scale).
        delay: Duration,
    },
    /// One iteration of a Map state finished.
    MapItemDone {
        /// The Map state's name.
        state: String,
        /// The Map state's position.
        path: String,
        /// The item's index.
        index: usize,
        /// How many items the Map has.
        total: usize,
    },
    /// The execution succeeded with this output.
    ExecutionSucceeded {
        /// The execution output.
        output: Value,
    },
    /// The execution failed.
    ExecutionFailed {
        /// The error name.
        error: Option<String>,
        /// The cause.
        cause: Option<String>,
    },
}

/// Receives an execution's events, possibly from several tasks at once (Map iterations and
/// Parallel branches run concurrently). It should return quickly.
pub trait Observer: Send + Sync {
    /// Called for each event, in the order it happened within one branch or iteration.
    fn on_event(&self, event: &Event);
}

impl<F> Observer for F
where
    F: Fn(&Event) + Send + Sync,
{
    fn on_event(&self, event: &Event) {
        self(event)
    }
}
