//! Errors: a definition that cannot run locally, a task's failure, an execution's failure.

use std::fmt;

/// Why a state machine definition was rejected by [`StateMachine::parse`](crate::StateMachine::parse).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// The definition text is not JSON.
    #[error("the state machine definition is not JSON")]
    Json(#[source] serde_json::Error),
    /// A `${Name}` placeholder has no value among the substitutions.
    #[error("no value for the definition substitution ${{{name}}} (given: {given})")]
    MissingSubstitution {
        /// The placeholder's name.
        name: String,
        /// The names that were given, comma-separated.
        given: String,
    },
    /// The definition is not valid Amazon States Language.
    #[error("{location}: {message}")]
    Invalid {
        /// Where: `state "Name"` or `the state machine`.
        location: String,
        /// What is wrong, with the offending value and what was expected.
        message: String,
    },
    /// The definition is valid but uses something the local executor does not implement.
    #[error("{location}: {what} is not supported by the local executor")]
    Unsupported {
        /// Where: `state "Name"` or `the state machine`.
        location: String,
        /// The unsupported construct.
        what: String,
    },
}

/// A task's failure as its handler reports it: an error name that `Retry` and `Catch` match
/// (`ErrorEquals`), and a cause.
///
/// For a Lambda function the name is the function error's `errorType`, and Lambda service
/// errors are named like `Lambda.TooManyRequestsException`, as in Step Functions. Names that
/// start with `States.` are reserved for Step Functions' own errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    /// The error name.
    pub error: String,
    /// A human-readable cause (for Lambda, the JSON error payload).
    pub cause: String,
}

impl TaskError {
    /// A task error with this name and cause.
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> TaskError {
        TaskError {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

/// An execution's failure: the `error` and `cause` that `DescribeExecution` would report.
///
/// Both are optional because a `Fail` state may leave them out. Errors raised by the
/// interpreter are named as Step Functions names them (`States.Runtime`, `States.Timeout`,
/// `States.NoChoiceMatched`, `States.ResultPathMatchFailure`, `States.DataLimitExceeded`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExecutionError {
    /// The error name.
    pub error: Option<String>,
    /// The cause.
    pub cause: Option<String>,
}

impl fmt::Display for ExecutionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "execution failed with error {}",
            self.error.as_deref().unwrap_or("(none)")
        )?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}
