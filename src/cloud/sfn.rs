//! Cloud runs: a job request started as a named Step Functions execution and followed until
//! it ends, reading the execution's status and the job record (step, chunks done of total).
//!
//! Executions are named after the job (`execution name == job id`), and the request carries
//! that job id, so:
//! - starting the same request twice starts one execution (`ExecutionAlreadyExists`, or Step
//!   Functions' own idempotency for an identical running one) and the second caller follows it;
//! - `storyreel cloud status JOB` finds both the record and the execution by the job id;
//! - the state machine's `Story failed` state, which records a failure under the execution's
//!   name, records it under the right job.
//!
//! The id is `<slug>-<hash>`: the slug from the title, the story's first line or the prompt,
//! the hash of the request (and a nonce for prompts, whose every run writes a new story, or for
//! an explicit re-run).

use std::time::Duration;

use aws_sdk_sfn::Client;
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::Value;

use super::{AnySdkError, Failure, SdkConfig, classify};
use crate::jobs::{JobRecord, JobStatus, JobStore};
use crate::keys;
use crate::steps::story::JobRequest;

/// Why a cloud run could not be started or followed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "state machine {arn:?} does not exist (check --state-machine-arn or STORYREEL_STATE_MACHINE_ARN, the stack output StateMachineArn)"
    )]
    NoStateMachine {
        arn: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("execution {arn:?} does not exist")]
    NoExecution {
        arn: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "invalid state machine ARN {arn:?} (expected arn:aws:states:<region>:<account>:stateMachine:<name>)"
    )]
    InvalidArn { arn: String },
    #[error("access denied to {what:?} ({op})")]
    Denied {
        op: &'static str,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("Step Functions is throttling or unavailable ({op} {what:?})")]
    Unavailable {
        op: &'static str,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{op} {what:?} failed")]
    Aws {
        op: &'static str,
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("reading the job record of {job_id:?} failed")]
    Jobs {
        job_id: String,
        #[source]
        source: crate::jobs::JobError,
    },
    #[error("invalid request: {0}")]
    InvalidRequest(String),
}

impl RunError {
    /// True when retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RunError::Unavailable { .. } => true,
            RunError::Jobs { source, .. } => source.is_retryable(),
            _ => false,
        }
    }
}

/// An execution that was started (or found started).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub name: String,
    pub execution_arn: String,
    /// True when an execution of this name existed already.
    pub existed: bool,
}

/// An execution as `DescribeExecution` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub arn: String,
    pub name: String,
    /// `RUNNING`, `SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`, ...
    pub status: String,
    pub output: Option<Value>,
    pub error: Option<String>,
    pub cause: Option<String>,
}

impl Execution {
    /// True while the execution runs.
    pub fn running(&self) -> bool {
        self.status == ExecutionStatus::Running.as_str()
            || self.status == ExecutionStatus::PendingRedrive.as_str()
    }
}

/// What a follower shows while it waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub status: String,
    /// The job's current state (from the record), once the record exists.
    pub step: Option<String>,
    pub chunks_done: usize,
    pub chunks_total: u32,
}

/// How a run ended, from the execution and the job record.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub job_id: Option<String>,
    pub succeeded: bool,
    /// The download link (publish's output or the record's).
    pub link: Option<String>,
    /// Another execution owns the job (a repeated trigger): its record tells the rest.
    pub duplicate: bool,
    /// `Error: cause` of a failed execution or job.
    pub failure: Option<String>,
    pub record: Option<JobRecord>,
}

/// The job id and execution name for a request: `<slug>-<hash>` of the request (without a job
/// id) and `nonce` (empty for a request that should run once).
pub fn job_id_for(request: &JobRequest, nonce: &str) -> String {
    let mut plain = request.clone();
    plain.job_id = None;
    let json = serde_json::to_string(&plain).unwrap_or_default();
    let slug_from = request
        .title
        .clone()
        .or_else(|| {
            request
                .story
                .text
                .as_deref()
                .and_then(|t| t.lines().map(str::trim).find(|l| !l.is_empty()))
                .map(str::to_string)
        })
        .or_else(|| request.story.prompt.clone())
        .or_else(|| request.story.key.clone())
        .unwrap_or_default();
    keys::job_id(
        &slug_from,
        &keys::hash(&[json.as_bytes(), nonce.as_bytes()]),
    )
}

/// A nonce that differs on every call (clock, process, counter).
pub fn nonce() -> String {
    super::backgrounds::new_id()
}

/// The execution ARN of `name` under a state machine ARN.
pub fn execution_arn(state_machine_arn: &str, name: &str) -> Result<String, RunError> {
    let parts: Vec<&str> = state_machine_arn.split(':').collect();
    if parts.len() != 7 || parts[0] != "arn" || parts[2] != "states" || parts[5] != "stateMachine" {
        return Err(RunError::InvalidArn {
            arn: state_machine_arn.to_string(),
        });
    }
    Ok(format!(
        "{}:{}:{}:{}:{}:execution:{}:{name}",
        parts[0], parts[1], parts[2], parts[3], parts[4], parts[6]
    ))
}

/// Executions of one state machine.
#[derive(Debug, Clone)]
pub struct CloudRuns {
    client: Client,
    state_machine_arn: String,
}

impl CloudRuns {
    /// A client built from `conf` (storyreel's retry policy).
    pub fn new(conf: &SdkConfig, state_machine_arn: &str) -> Self {
        let config = aws_sdk_sfn::config::Builder::from(conf)
            .retry_config(super::retry_config())
            .build();
        Self::from_client(Client::from_conf(config), state_machine_arn)
    }

    /// Runs through a client configured by the caller.
    pub fn from_client(client: Client, state_machine_arn: &str) -> Self {
        CloudRuns {
            client,
            state_machine_arn: state_machine_arn.to_string(),
        }
    }

    /// The state machine's ARN.
    pub fn state_machine_arn(&self) -> &str {
        &self.state_machine_arn
    }

    fn err<E>(&self, op: &'static str, what: &str, e: AnySdkError<E>) -> RunError
    where
        E: aws_sdk_sfn::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let failure = classify(
            &e,
            &["ExecutionDoesNotExist"],
            &["StateMachineDoesNotExist"],
        );
        let source: Box<dyn std::error::Error + Send + Sync> = Box::new(e);
        let what = what.to_string();
        match failure {
            Failure::NoContainer => RunError::NoStateMachine {
                arn: self.state_machine_arn.clone(),
                source,
            },
            Failure::NotFound => RunError::NoExecution { arn: what, source },
            Failure::Denied => RunError::Denied { op, what, source },
            Failure::Unavailable => RunError::Unavailable { op, what, source },
            Failure::Other => RunError::Aws { op, what, source },
        }
    }

    /// Starts execution `name` with `input`, or finds the one of that name.
    pub async fn start(&self, name: &str, input: &Value) -> Result<Started, RunError> {
        let arn = execution_arn(&self.state_machine_arn, name)?;
        let result = self
            .client
            .start_execution()
            .state_machine_arn(&self.state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await;
        match result {
            // New, or Step Functions' idempotent answer for an identical running execution.
            Ok(out) => Ok(Started {
                name: name.to_string(),
                existed: false,
                execution_arn: out.execution_arn().to_string(),
            }),
            Err(e) => {
                use aws_sdk_sfn::error::ProvideErrorMetadata;
                if e.code() == Some("ExecutionAlreadyExists") {
                    Ok(Started {
                        name: name.to_string(),
                        execution_arn: arn,
                        existed: true,
                    })
                } else {
                    Err(self.err("start", &self.state_machine_arn, e))
                }
            }
        }
    }

    /// The execution's status, output and error.
    pub async fn describe(&self, execution_arn: &str) -> Result<Execution, RunError> {
        let d = self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
            .map_err(|e| self.err("describe", execution_arn, e))?;
        Ok(Execution {
            arn: d.execution_arn().to_string(),
            name: d.name().unwrap_or_default().to_string(),
            status: d.status().as_str().to_string(),
            output: d.output().and_then(|o| serde_json::from_str(o).ok()),
            error: d.error().map(str::to_string),
            cause: d.cause().map(str::to_string),
        })
    }

    /// Polls the execution (and the job record, when `jobs` is given) every `poll` until it
    /// ends, calling `on_progress` whenever what it shows changes. Returns the last
    /// description and record.
    pub async fn follow(
        &self,
        execution_arn: &str,
        job_id: Option<&str>,
        jobs: Option<&dyn JobStore>,
        poll: Duration,
        on_progress: &mut (dyn FnMut(&Progress) + Send),
    ) -> Result<(Execution, Option<JobRecord>), RunError> {
        let mut last: Option<Progress> = None;
        let mut record: Option<JobRecord> = None;
        loop {
            let exec = self.describe(execution_arn).await?;
            if let (Some(jobs), Some(id)) = (jobs, job_id) {
                match jobs.get(id).await {
                    Ok(r) => record = r.or(record),
                    // A throttled read is skipped; the next poll tries again.
                    Err(e) if e.is_retryable() => {}
                    Err(e) => {
                        return Err(RunError::Jobs {
                            job_id: id.to_string(),
                            source: e,
                        });
                    }
                }
            }
            let progress = Progress {
                status: exec.status.clone(),
                step: record.as_ref().map(|r| r.step.clone()),
                chunks_done: record.as_ref().map_or(0, |r| r.chunks_done.len()),
                chunks_total: record.as_ref().map_or(0, |r| r.chunks_total),
            };
            if last.as_ref() != Some(&progress) {
                on_progress(&progress);
                last = Some(progress);
            }
            // A run whose video is made and whose destinations are all settled or deferred
            // only waits for a quota to reset (hours): following it further shows nothing.
            let waiting = record.as_ref().is_some_and(|r| {
                r.status == crate::jobs::JobStatus::Succeeded
                    && !r.publish.is_empty()
                    && r.publish.values().all(|s| {
                        s.is_settled() || s.status == storyreel_publish::DestinationStatus::Deferred
                    })
            });
            if !exec.running() || waiting {
                return Ok((exec, record));
            }
            tokio::time::sleep(poll).await;
        }
    }
}

/// Reads how a run ended from the execution's output (publish's output, or the story step's
/// for a duplicate) and the job record.
pub fn outcome(exec: &Execution, record: Option<JobRecord>) -> Outcome {
    let output = exec.output.as_ref();
    let duplicate = output
        .and_then(|o| o.get("duplicate"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let job_id = output
        .and_then(|o| o.get("job_id").or_else(|| o.pointer("/job/job_id")))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| record.as_ref().map(|r| r.job_id.clone()));
    let link = output
        .and_then(|o| o.pointer("/outputs/link"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            record
                .as_ref()
                .and_then(|r| r.outputs.as_ref())
                .map(|o| o.link.clone())
        })
        .filter(|l| !l.is_empty());
    let exec_ok = exec.status == ExecutionStatus::Succeeded.as_str();
    // Publish's output is the job's result; a duplicate's (the story step's) says nothing of
    // it, so the record decides.
    let published = output.and_then(|o| o.get("status")).and_then(Value::as_str);
    let job_ok = match published {
        Some(status) => status == "succeeded",
        None => record
            .as_ref()
            .is_some_and(|r| r.status == JobStatus::Succeeded),
    };
    let failure = if !exec_ok {
        Some(format!(
            "{} {}: {}",
            exec.status,
            exec.error.as_deref().unwrap_or("error"),
            exec.cause
                .as_deref()
                .map(crate::steps::publish::readable_cause)
                .unwrap_or_default()
        ))
    } else {
        record
            .as_ref()
            .and_then(|r| r.error.as_ref())
            .map(|e| format!("{} failed: {}: {}", e.step, e.error, e.cause))
    };
    Outcome {
        job_id,
        succeeded: exec_ok && job_ok,
        link,
        duplicate,
        failure,
        record,
    }
}

/// Checks a request before it is sent: exactly one story source, and a job id of the form
/// executions accept.
pub fn check_request(request: &JobRequest) -> Result<(), RunError> {
    let s = &request.story;
    let given = [s.text.is_some(), s.key.is_some(), s.prompt.is_some()];
    if given.iter().filter(|g| **g).count() != 1 {
        return Err(RunError::InvalidRequest(
            "give exactly one of a story text, a story key and a prompt".into(),
        ));
    }
    if let Some(text) = &s.text
        && text.len() as u64 > crate::steps::story::MAX_STORY_BYTES
    {
        return Err(RunError::InvalidRequest(format!(
            "story of {} bytes (expected <= {})",
            text.len(),
            crate::steps::story::MAX_STORY_BYTES
        )));
    }
    if let Some(id) = &request.job_id {
        let ok = (1..=80).contains(&id.len())
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !ok {
            return Err(RunError::InvalidRequest(format!(
                "job id {id:?} (expected 1-80 characters of A-Z, a-z, 0-9, '-' and '_')"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::steps::story::StorySource;

    #[test]
    fn execution_arns_follow_the_state_machine() {
        assert_eq!(
            execution_arn(
                "arn:aws:states:us-east-1:123456789012:stateMachine:video",
                "j-1"
            )
            .unwrap(),
            "arn:aws:states:us-east-1:123456789012:execution:video:j-1"
        );
        assert!(execution_arn("video", "j").is_err());
    }

    #[test]
    fn job_ids_are_stable_per_request_and_nonce() {
        let req = JobRequest {
            story: StorySource {
                text: Some("\n My Title \n\nBody.".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let a = job_id_for(&req, "");
        assert!(a.starts_with("my-title-"), "{a}");
        assert_eq!(a, job_id_for(&req, ""));
        assert_ne!(a, job_id_for(&req, "again"));
        let mut with_id = req.clone();
        with_id.job_id = Some(a.clone());
        assert_eq!(job_id_for(&with_id, ""), a);
        check_request(&with_id).unwrap();
    }

    #[test]
    fn outcomes_read_publish_or_duplicate_output() {
        let exec = Execution {
            arn: "a".into(),
            name: "j".into(),
            status: "SUCCEEDED".into(),
            output: Some(serde_json::json!({"job_id": "j", "status": "succeeded",
                "outputs": {"link": "https://l"}})),
            error: None,
            cause: None,
        };
        let o = outcome(&exec, None);
        assert!(o.succeeded);
        assert_eq!(o.link.as_deref(), Some("https://l"));
        assert_eq!(o.job_id.as_deref(), Some("j"));
        let failed = Execution {
            status: "FAILED".into(),
            output: None,
            error: Some("InvalidInput".into()),
            cause: Some(r#"{"errorType":"InvalidInput","errorMessage":"story: empty"}"#.into()),
            ..exec.clone()
        };
        let o = outcome(&failed, None);
        assert!(!o.succeeded);
        assert_eq!(
            o.failure.as_deref(),
            Some("FAILED InvalidInput: story: empty")
        );
        let dup = Execution {
            output: Some(serde_json::json!({"job": {"job_id": "j"}, "duplicate": true})),
            ..exec
        };
        let o = outcome(&dup, None);
        assert!(o.duplicate);
        assert!(!o.succeeded);
        let mut done = JobRecord::new("j", "other", "drop", "drop/a.txt", None);
        done.status = JobStatus::Succeeded;
        done.outputs = Some(crate::jobs::JobOutputs {
            link: "https://done".into(),
            ..Default::default()
        });
        let o = outcome(&dup, Some(done));
        assert!(o.succeeded);
        assert_eq!(o.link.as_deref(), Some("https://done"));
    }
}
