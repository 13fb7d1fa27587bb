//! Conformance of the local executor with Step Functions as moto implements it: the same
//! definition, the same input and the same canned Lambda results must give the same final
//! output (or error) and pass through the same states.
//!
//! How canned results reach moto: moto's simple Lambda backend ignores which function is
//! invoked and answers from a FIFO queue per region. The harness therefore gives every Lambda
//! substitution its own region (`arn:aws:lambda:<region>:123456789012:function:<name>`), so plain
//! Lambda ARN tasks each read their own queue. Tasks using `arn:aws:states:::lambda:invoke`
//! call Lambda in the execution's region whatever the FunctionName, so they share one queue:
//! among them, invocations that may run concurrently (different branches or iterations of the
//! same Parallel or Map state) must have equal canned results, or moto's order would be a race;
//! the harness checks this and says so instead of flaking.
//!
//! The local run goes first and records every invocation; its results, in its order, fill
//! moto's queues before moto's execution starts.
//!
//! Known differences:
//! - moto's `lambda:invoke` result has only `StatusCode` and `Payload`, while Step Functions
//!   (and the local executor) also return `ExecutedVersion`, `SdkHttpMetadata` and
//!   `SdkResponseMetadata`; the harness drops those three before comparing.
//! - moto wraps the value of a path that goes through an array index and then a field
//!   (`$[0].audio`) in a list (its workaround for getmoto/moto#7825); Step Functions' Jayway
//!   JsonPath treats such a path as definite and gives the value, as the local executor does.
//!   The definitions here select `$[0]` and read fields later instead.

use crate::support::Recorder;
use anyhow::{Context, bail, ensure};
use aws_sdk_sfn::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sfn::error::DisplayErrorContext;
use aws_sdk_sfn::types::ExecutionStatus;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use storyreel_asl::{
    Executor, ExecutorOptions, StateMachine, TaskContext, TaskError, TaskHandler, async_trait,
};
use storyreel_moto::Moto;

const ACCOUNT: &str = "123456789012";
const EXECUTION_REGION: &str = "us-east-1";
/// One region per Lambda substitution, so each function has its own queue in moto.
const FUNCTION_REGIONS: &[&str] = &[
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "sa-east-1",
];

/// One canned Lambda invocation as the local run made it.
#[derive(Debug, Clone)]
struct Invocation {
    state: String,
    path: String,
    resource: String,
    result: Value,
}

/// Answers every invocation of a function with its canned result, and records it.
struct Canned {
    results: HashMap<String, Value>,
    log: Mutex<Vec<Invocation>>,
}

#[async_trait]
impl TaskHandler for Canned {
    async fn invoke(
        &self,
        resource: &str,
        _: Value,
        ctx: &TaskContext,
    ) -> Result<Value, TaskError> {
        let name = resource.rsplit(':').next().unwrap_or(resource);
        let result = self
            .results
            .get(resource)
            .or_else(|| self.results.get(name))
            .cloned()
            .ok_or_else(|| {
                TaskError::new("NoCannedResult", format!("no canned result for {resource}"))
            })?;
        self.log.lock().unwrap().push(Invocation {
            state: ctx.state_name.clone(),
            path: ctx.path.clone(),
            resource: resource.to_string(),
            result: result.clone(),
        });
        Ok(result)
    }
}

/// How an execution ended, as `DescribeExecution` reports it.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Succeeded(Value),
    Failed {
        error: Option<String>,
        cause: Option<String>,
    },
}

/// Runs `definition` locally and on moto and asserts the same outcome and states.
///
/// `substitutions` are the definition's non-Lambda substitutions; `lambdas` maps each Lambda
/// substitution name (`RenderChunkFunctionArn`) to the canned result its function returns on
/// every call. The harness binds those substitutions to function ARNs itself.
pub async fn conformance(
    definition: &str,
    substitutions: &HashMap<String, String>,
    lambdas: &[(&str, Value)],
    input: Value,
) -> anyhow::Result<()> {
    ensure!(
        lambdas.len() <= FUNCTION_REGIONS.len(),
        "at most {} Lambda substitutions",
        FUNCTION_REGIONS.len()
    );
    let mut subs = substitutions.clone();
    let mut results = HashMap::new();
    for ((key, result), region) in lambdas.iter().zip(FUNCTION_REGIONS) {
        let name = key.strip_suffix("Arn").unwrap_or(key);
        let arn = format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{name}");
        subs.insert(key.to_string(), arn.clone());
        results.insert(arn, result.clone());
    }

    // The local run.
    let machine = StateMachine::parse(definition, &subs)
        .context("the local executor rejected the definition")?;
    let sm_name = "conformance";
    let execution_name = "conformance-run";
    let canned = Arc::new(Canned {
        results,
        log: Mutex::new(Vec::new()),
    });
    let recorder = Arc::new(Recorder::default());
    let local = Executor::new(machine, canned.clone())
        .with_options(ExecutorOptions {
            state_machine_arn: format!(
                "arn:aws:states:{EXECUTION_REGION}:{ACCOUNT}:stateMachine:{sm_name}"
            ),
            role_arn: format!("arn:aws:iam::{ACCOUNT}:role/conformance"),
            ..ExecutorOptions::default()
        })
        .with_observer(recorder.clone())
        .execute(execution_name, input.clone())
        .await;
    let local_outcome = match local {
        Ok(output) => Outcome::Succeeded(output),
        Err(e) => Outcome::Failed {
            error: e.error,
            cause: e.cause,
        },
    };
    let local_entered: Vec<String> = recorder
        .entered()
        .into_iter()
        .map(|path| path.rsplit('/').next().unwrap_or(&path).to_string())
        .collect();
    let invocations = canned.log.lock().unwrap().clone();

    // Fill moto's queues in the local run's order.
    let definition_json: Value = serde_json::from_str(definition)?;
    let invoke_states = lambda_invoke_states(&definition_json);
    let mut queues: Vec<(String, Vec<Invocation>)> = Vec::new();
    for inv in invocations {
        let region = if invoke_states.contains(&inv.state) {
            EXECUTION_REGION.to_string()
        } else {
            inv.resource
                .split(':')
                .nth(3)
                .unwrap_or(EXECUTION_REGION)
                .to_string()
        };
        match queues.iter_mut().find(|(r, _)| *r == region) {
            Some((_, q)) => q.push(inv),
            None => queues.push((region, vec![inv])),
        }
    }
    for (region, queue) in &queues {
        check_no_race(region, queue)?;
    }

    let moto = Moto::start();
    moto.execute_state_machines();
    for (region, queue) in &queues {
        let results: Vec<String> = queue.iter().map(|i| i.result.to_string()).collect();
        moto.queue_lambda_results(region, &results);
    }
    let mut moto_definition = definition.to_string();
    for (k, v) in &subs {
        moto_definition = moto_definition.replace(&format!("${{{k}}}"), v);
    }
    let (moto_outcome, moto_entered) =
        run_on_moto(&moto, sm_name, &moto_definition, execution_name, &input).await?;

    let local_outcome = normalise_outcome(local_outcome);
    let moto_outcome = normalise_outcome(moto_outcome);
    ensure!(
        local_outcome == moto_outcome,
        "different outcomes:\n  local: {local_outcome:?}\n  moto:  {moto_outcome:?}"
    );

    // States inside Parallel branches and Map iterations interleave differently from run to
    // run, so compare the order of top-level states and the multiset of all states.
    let top_level: Vec<String> = definition_json["States"]
        .as_object()
        .map(|s| s.keys().cloned().collect())
        .unwrap_or_default();
    let top = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|n| top_level.contains(n))
            .cloned()
            .collect()
    };
    ensure!(
        top(&local_entered) == top(&moto_entered),
        "different top-level states:\n  local: {:?}\n  moto:  {:?}",
        top(&local_entered),
        top(&moto_entered)
    );
    let sorted = |names: &[String]| {
        let mut v = names.to_vec();
        v.sort();
        v
    };
    ensure!(
        sorted(&local_entered) == sorted(&moto_entered),
        "different states entered:\n  local: {:?}\n  moto:  {:?}",
        sorted(&local_entered),
        sorted(&moto_entered)
    );
    Ok(())
}

/// Runs the definition from a file, with the lambdas and input given.
pub async fn conformance_file(
    path: &std::path::Path,
    substitutions: &HashMap<String, String>,
    lambdas: &[(&str, Value)],
    input: Value,
) -> anyhow::Result<()> {
    let definition =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    conformance(&definition, substitutions, lambdas, input).await
}

/// Names of Task states that use the optimised lambda:invoke integration, anywhere.
fn lambda_invoke_states(definition: &Value) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(scope: &Value, out: &mut Vec<String>) {
        let Some(states) = scope["States"].as_object() else {
            return;
        };
        for (name, state) in states {
            if state["Resource"]
                .as_str()
                .is_some_and(|r| r.contains(":states:::lambda:invoke"))
            {
                out.push(name.clone());
            }
            for branch in state["Branches"].as_array().into_iter().flatten() {
                walk(branch, out);
            }
            walk(&state["ItemProcessor"], out);
            walk(&state["Iterator"], out);
        }
    }
    walk(definition, &mut out);
    out
}

/// Two invocations may run at once in moto when their paths part at a branch or item index.
fn concurrent(a: &str, b: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.split('/').collect(), b.split('/').collect());
    match a.iter().zip(&b).position(|(x, y)| x != y) {
        Some(k) => k % 2 == 1,
        None => false,
    }
}

fn check_no_race(region: &str, queue: &[Invocation]) -> anyhow::Result<()> {
    for (i, a) in queue.iter().enumerate() {
        for b in &queue[i + 1..] {
            if a.result != b.result && concurrent(&a.path, &b.path) {
                bail!(
                    "{} and {} share moto's Lambda queue in {region} and may run concurrently, so \
                     their canned results must be equal ({} vs {})",
                    a.path,
                    b.path,
                    a.result,
                    b.result
                );
            }
        }
    }
    Ok(())
}

async fn run_on_moto(
    moto: &Moto,
    sm_name: &str,
    definition: &str,
    execution_name: &str,
    input: &Value,
) -> anyhow::Result<(Outcome, Vec<String>)> {
    let config = aws_sdk_sfn::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(EXECUTION_REGION))
        .endpoint_url(moto.endpoint())
        .credentials_provider(Credentials::new("test", "test", None, None, "moto"))
        .build();
    let sfn = aws_sdk_sfn::Client::from_conf(config);
    let created = sfn
        .create_state_machine()
        .name(sm_name)
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/conformance"))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("CreateStateMachine: {}", DisplayErrorContext(e)))?;
    // Named: moto mishandles unnamed executions.
    let started = sfn
        .start_execution()
        .state_machine_arn(created.state_machine_arn())
        .name(execution_name)
        .input(input.to_string())
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("StartExecution: {}", DisplayErrorContext(e)))?;
    let execution_arn = started.execution_arn().to_string();
    let deadline = Instant::now() + Duration::from_secs(120);
    let described = loop {
        let d = sfn
            .describe_execution()
            .execution_arn(&execution_arn)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("DescribeExecution: {}", DisplayErrorContext(e)))?;
        if *d.status() != ExecutionStatus::Running {
            break d;
        }
        ensure!(
            Instant::now() < deadline,
            "moto's execution still runs after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let outcome = match described.status() {
        ExecutionStatus::Succeeded => {
            let output = described
                .output()
                .context("a succeeded execution without output")?;
            Outcome::Succeeded(serde_json::from_str(output)?)
        }
        ExecutionStatus::Failed => Outcome::Failed {
            error: described.error().map(str::to_string),
            cause: described.cause().map(str::to_string),
        },
        other => bail!("moto's execution ended {other:?}"),
    };
    let mut entered = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = sfn
            .get_execution_history()
            .execution_arn(&execution_arn)
            .max_results(1000)
            .set_next_token(token.clone())
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("GetExecutionHistory: {}", DisplayErrorContext(e)))?;
        entered.extend(
            page.events()
                .iter()
                .filter_map(|e| e.state_entered_event_details())
                .map(|d| d.name().to_string()),
        );
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    Ok((outcome, entered))
}

fn normalise_outcome(outcome: Outcome) -> Outcome {
    match outcome {
        Outcome::Succeeded(v) => Outcome::Succeeded(strip_invoke_metadata(v)),
        failed => failed,
    }
}

/// Drops the Invoke response fields moto leaves out (see the module docs).
fn strip_invoke_metadata(value: Value) -> Value {
    match value {
        Value::Object(mut fields) => {
            if fields.contains_key("StatusCode") && fields.contains_key("Payload") {
                for k in ["ExecutedVersion", "SdkHttpMetadata", "SdkResponseMetadata"] {
                    fields.remove(k);
                }
            }
            Value::Object(
                fields
                    .into_iter()
                    .map(|(k, v)| (k, strip_invoke_metadata(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.into_iter().map(strip_invoke_metadata).collect()),
        other => other,
    }
}

// ---- The tests ------------------------------------------------------------------------------

/// Task (Lambda ARN and lambda:invoke), Pass with intrinsics, Choice, Parallel, Map with
/// ItemSelector and `$$.Map.Item`, Retry, and a Catch with ResultPath.
const PIPELINE: &str = r#"{
  "Comment": "The shape of storyreel's workflow, with canned steps",
  "StartAt": "Story",
  "States": {
    "Story": {
      "Type": "Task",
      "Resource": "${StoryFunctionArn}",
      "Parameters": {"job.$": "$.job", "text.$": "$.text"},
      "ResultPath": "$.story",
      "Retry": [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.TooManyRequestsException"], "IntervalSeconds": 1, "BackoffRate": 2, "MaxAttempts": 3, "JitterStrategy": "FULL"}],
      "Next": "Narrate"
    },
    "Narrate": {
      "Type": "Parallel",
      "Branches": [
        {"StartAt": "Speech", "States": {"Speech": {"Type": "Task", "Resource": "${SpeechFunctionArn}", "Parameters": {"text.$": "$.story.text"}, "End": true}}},
        {"StartAt": "Marks", "States": {"Marks": {
          "Type": "Task",
          "Resource": "arn:aws:states:::lambda:invoke",
          "Parameters": {"FunctionName": "${MarksFunctionArn}", "Payload": {"text.$": "$.story.text", "execution.$": "$$.Execution.Name"}},
          "OutputPath": "$.Payload",
          "End": true
        }}}
      ],
      "ResultSelector": {"speech.$": "$[0]", "marks.$": "$[1]"},
      "ResultPath": "$.narration",
      "Next": "Plan chunks"
    },
    "Plan chunks": {
      "Type": "Pass",
      "Parameters": {
        "chunks.$": "States.ArrayRange(0, $.story.chunks, 1)",
        "title.$": "States.Format('{} ({})', $.story.title, $.job)",
        "count.$": "States.MathAdd($.story.chunks, 1)"
      },
      "ResultPath": "$.plan",
      "Next": "Anything to render?"
    },
    "Anything to render?": {
      "Type": "Choice",
      "Choices": [
        {"And": [{"Variable": "$.plan.count", "NumericGreaterThan": 0}, {"Variable": "$.plan.title", "StringMatches": "*(job-*)"}], "Next": "Render chunks"}
      ],
      "Default": "Nothing to do"
    },
    "Render chunks": {
      "Type": "Map",
      "ItemsPath": "$.plan.chunks",
      "MaxConcurrency": 2,
      "ItemSelector": {"job.$": "$.job", "index.$": "$$.Map.Item.Index", "chunk.$": "$$.Map.Item.Value", "audio.$": "$.narration.speech.audio"},
      "ItemProcessor": {
        "ProcessorConfig": {"Mode": "INLINE"},
        "StartAt": "Render chunk",
        "States": {
          "Render chunk": {"Type": "Task", "Resource": "${RenderChunkFunctionArn}", "ResultSelector": {"key.$": "$.key"}, "ResultPath": "$.rendered", "Next": "Chunk done"},
          "Chunk done": {"Type": "Pass", "Parameters": {"index.$": "$.index", "key.$": "$.rendered.key"}, "End": true}
        }
      },
      "ResultPath": "$.chunks",
      "Next": "Check"
    },
    "Check": {
      "Type": "Parallel",
      "Branches": [{"StartAt": "Validate", "States": {"Validate": {"Type": "Fail", "Error": "ValidationFailed", "Cause": "checked on purpose"}}}],
      "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.check", "Next": "Merge"}],
      "End": true
    },
    "Merge": {
      "Type": "Task",
      "Resource": "${MergeFunctionArn}",
      "Parameters": {"keys.$": "$.chunks[*].key", "indexes.$": "$.chunks[*].index"},
      "ResultPath": "$.merged",
      "OutputPath": "$",
      "Next": "Publish"
    },
    "Publish": {
      "Type": "Task",
      "Resource": "arn:aws:states:::lambda:invoke",
      "Parameters": {"FunctionName": "${PublishFunctionArn}", "Payload.$": "$"},
      "ResultSelector": {"link.$": "$.Payload.link", "status.$": "$.StatusCode"},
      "ResultPath": "$.published",
      "End": true
    },
    "Nothing to do": {"Type": "Succeed"}
  }
}"#;

fn pipeline_lambdas() -> Vec<(&'static str, Value)> {
    vec![
        (
            "StoryFunctionArn",
            json!({"text": "once upon a time", "title": "Tale", "chunks": 3}),
        ),
        (
            "SpeechFunctionArn",
            json!({"audio": "jobs/job-1/speech.wav"}),
        ),
        (
            "MarksFunctionArn",
            json!({"marks": "jobs/job-1/marks.json"}),
        ),
        (
            "RenderChunkFunctionArn",
            json!({"key": "jobs/job-1/chunk.mp4", "frames": 30}),
        ),
        ("MergeFunctionArn", json!({"video": "jobs/job-1/video.mp4"})),
        (
            "PublishFunctionArn",
            json!({"link": "file:///out/video.mp4"}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_pipeline() {
    conformance(
        PIPELINE,
        &HashMap::new(),
        &pipeline_lambdas(),
        json!({"job": "job-1", "text": "once"}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_choice_default() {
    let mut lambdas = pipeline_lambdas();
    lambdas[0].1 = json!({"text": "", "title": "Empty", "chunks": -1});
    conformance(
        PIPELINE,
        &HashMap::new(),
        &lambdas,
        json!({"job": "job-2", "text": ""}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_failure() {
    let definition = r#"{
      "StartAt": "Story",
      "States": {
        "Story": {"Type": "Task", "Resource": "${StoryFunctionArn}", "Next": "Valid?"},
        "Valid?": {"Type": "Choice", "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}], "Default": "Record failure"},
        "Record failure": {"Type": "Pass", "Parameters": {"step": "Story", "why.$": "$.why"}, "ResultPath": "$.failure", "Next": "Failed"},
        "Failed": {"Type": "Fail", "Error": "StoryInvalid", "Cause": "the story has no text"},
        "Done": {"Type": "Succeed"}
      }
    }"#;
    let lambdas = [("StoryFunctionArn", json!({"ok": false, "why": "empty"}))];
    conformance(definition, &HashMap::new(), &lambdas, json!({}))
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
}

/// The product's definition, as `template.yaml` deploys it.
fn video_definition() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../statemachine/video.asl.json")
}

/// Canned step outputs shaped like the steps' (only what the definition reads matters).
fn video_lambdas(duplicate: bool) -> Vec<(&'static str, Value)> {
    let job = json!({"job_id": "job-1", "title": "A tale", "render": {"max_concurrency": 2}});
    vec![
        (
            "StoryFunctionArn",
            json!({"job": job, "duplicate": duplicate}),
        ),
        (
            "SpeechFunctionArn",
            json!({"audio_key": "jobs/job-1/speech.wav", "duration_ms": 4000, "frames": 120,
                   "chunks": [{"index": 0, "start": 0, "frames": 60}, {"index": 1, "start": 60, "frames": 60}]}),
        ),
        (
            "MarksFunctionArn",
            json!({"marks_key": "jobs/job-1/marks.json"}),
        ),
        (
            "RenderChunkFunctionArn",
            json!({"index": 0, "key": "jobs/job-1/chunks/0.mp4", "frames": 60, "bytes": 1000, "reused": false}),
        ),
        (
            "MergeFunctionArn",
            json!({"video_key": "jobs/job-1/video.mp4"}),
        ),
        (
            "PublishFunctionArn",
            json!({"link": "file:///out/job-1/video.mp4"}),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_video_definition() {
    let input = json!({"story": {"text": "Once upon a time."}});
    conformance_file(
        &video_definition(),
        &HashMap::new(),
        &video_lambdas(false),
        input,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_video_definition_duplicate_job() {
    let input = json!({"story": {"text": "Once upon a time."}});
    conformance_file(
        &video_definition(),
        &HashMap::new(),
        &video_lambdas(true),
        input,
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}"));
}

#[test]
fn concurrency_is_judged_from_paths() {
    assert!(concurrent("M/0/Render chunk", "M/1/Render chunk"));
    assert!(concurrent("Narrate/0/Speech", "Narrate/1/Marks"));
    assert!(!concurrent("Story", "Merge"));
    assert!(!concurrent("M/0/A", "M/0/B"));
    assert!(!concurrent("Story", "Story"));
}
