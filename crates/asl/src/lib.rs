//! A local interpreter for the Amazon States Language (JSONPath query language), with the
//! semantics of AWS Step Functions, so a workflow's deployed definition runs unchanged on one
//! machine.
//!
//! [`StateMachine::parse`] applies `${Name}` definition substitutions and validates the whole
//! definition up front, rejecting anything it does not implement with the state's name.
//! An [`Executor`] runs it on tokio, invoking a [`TaskHandler`] for each Task state (a Lambda
//! function ARN, or the optimised `arn:aws:states:::lambda:invoke` integration) and reporting
//! progress to an [`Observer`].
//!
//! Supported: Task, Pass, Choice, Wait, Succeed, Fail, Parallel and inline Map states; InputPath,
//! Parameters, ItemSelector, ResultSelector, ResultPath and OutputPath; the context object;
//! the intrinsic functions; Retry (with backoff, MaxDelaySeconds and jitter) and Catch; Task and
//! execution TimeoutSeconds; the 256 KiB payload quota.
//!
//! ```
//! use std::{collections::HashMap, sync::Arc};
//! use serde_json::{json, Value};
//! use storyreel_asl::{async_trait, Executor, StateMachine, TaskContext, TaskError, TaskHandler};
//!
//! struct Double;
//!
//! #[async_trait]
//! impl TaskHandler for Double {
//!     async fn invoke(&self, _resource: &str, input: Value, _ctx: &TaskContext)
//!         -> Result<Value, TaskError> {
//!         let n = input["n"].as_i64().ok_or_else(|| TaskError::new("InvalidInput", "no n"))?;
//!         Ok(json!({"n": n * 2}))
//!     }
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
//! let definition = r#"{"StartAt": "Double", "States": {
//!     "Double": {"Type": "Task", "Resource": "${DoubleFunctionArn}", "End": true}}}"#;
//! let substitutions = HashMap::from([(
//!     "DoubleFunctionArn".to_string(),
//!     "arn:aws:lambda:us-east-1:123456789012:function:double".to_string(),
//! )]);
//! let machine = StateMachine::parse(definition, &substitutions).unwrap();
//! let output = Executor::new(machine, Arc::new(Double)).execute("run-1", json!({"n": 21})).await;
//! assert_eq!(output, Ok(json!({"n": 42})));
//! # });
//! ```

mod choice;
mod definition;
mod error;
mod executor;
mod intrinsic;
mod json_path;
mod observer;
mod task;
mod template;
mod timestamp;

pub use async_trait::async_trait;
pub use definition::StateMachine;
pub use error::{DefinitionError, ExecutionError, TaskError};
pub use executor::{Executor, ExecutorOptions, MAX_PAYLOAD_BYTES};
pub use observer::{Event, Observer};
pub use task::{TaskContext, TaskHandler};
pub use timestamp::civil_from_days;
