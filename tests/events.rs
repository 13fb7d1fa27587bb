//! The sample events in `events/` (what `sam local invoke <Step>Function -e events/<step>.json`
//! and `storyreel invoke <step> --event events/<step>.json` run) stay true: every file parses as
//! its step's input, the step events equal what the steps really produce from
//! `events/story.json`, and the chain they form ends in a video that decodes.
//!
//! `drop.json` and `channel.json` are execution inputs (what EventBridge starts the state
//! machine with), which the `Story` state hands to the story step as `request`. A stale event
//! fails here; `scripts/gen-events.sh` regenerates the step events.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use storyreel::jobs::JobStatus;
use storyreel::steps::story::{JobRequest, StoryLlm, WrittenStory};
use storyreel::steps::{
    MarksInput, MergeInput, PrepareBackgroundInput, PublishInput, RenderChunkInput, SpeechInput,
    StepError, StoryInput,
};
use storyreel::workflow::LocalSteps;

use crate::support::*;

/// Every file in `events/` and what it is: a step's input (by step name) or an execution input.
pub const EVENTS: [(&str, &str); 12] = [
    ("story.json", "story"),
    ("story-prompt.json", "story"),
    ("speech.json", "speech"),
    ("marks.json", "marks"),
    ("render-chunk.json", "render-chunk"),
    ("merge.json", "merge"),
    ("publish.json", "publish"),
    ("publish-failure.json", "publish"),
    ("drop.json", "execution"),
    ("channel.json", "execution"),
    ("prepare-background.json", "prepare-background"),
    ("prepare-background-failure.json", "prepare-background"),
];

/// Fields that legitimately differ between runs: encoded sizes depend on x264's thread count,
/// which follows the machine's cores.
const VARYING: [&str; 1] = ["bytes"];

pub fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("events")
}

/// `events/<name>` as JSON.
pub fn event(name: &str) -> Value {
    let p = events_dir().join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
}

/// `v` without null fields and without the [`VARYING`] ones, numbers as `f64`.
fn comparable(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, v)| !v.is_null() && !VARYING.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), comparable(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(comparable).collect()),
        // `23` as the event file has it and `23.0` as serde writes an f32 are the same value.
        Value::Number(n) => n.as_f64().map_or_else(|| v.clone(), Value::from),
        v => v.clone(),
    }
}

/// Fails unless `events/<name>` is what the steps produce now (`actual`).
pub fn assert_event_is(name: &str, actual: &Value) {
    let stored = event(name);
    assert!(
        comparable(&stored) == comparable(actual),
        "events/{name} is stale (differs from what the steps produce; espeak-ng or the steps \
         changed?): run scripts/gen-events.sh.\nstored:\n{stored:#}\nproduced:\n{actual:#}"
    );
}

/// Parses `v` as `T` and checks that nothing in it was ignored: serialising it back gives the
/// same JSON (up to nulls).
fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(name: &str, v: &Value) {
    let typed: T = serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("events/{name} is not a valid input: {e}"));
    let back = serde_json::to_value(&typed).expect("encode");
    assert_eq!(
        comparable(&back),
        comparable(v),
        "events/{name} has fields its input type ignores"
    );
}

/// A story input for an execution input, as the `Story` state builds it.
fn story_input(request: &Value, execution: &str) -> Value {
    json!({"request": request, "execution": execution})
}

#[test]
fn every_event_file_parses_as_its_input() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(events_dir()).expect("list events/") {
        let name = entry.expect("events/ entry").file_name();
        let name = name.to_string_lossy().into_owned();
        if name.ends_with(".json") {
            seen.push(name);
        }
    }
    seen.sort();
    let mut known: Vec<String> = EVENTS.iter().map(|(n, _)| n.to_string()).collect();
    known.sort();
    assert_eq!(seen, known, "events/ and the list of checked events differ");

    let readme = std::fs::read_to_string(events_dir().join("README.md")).expect("events/README.md");
    for (name, kind) in EVENTS {
        assert!(
            readme.contains(name),
            "events/README.md does not describe {name}"
        );
        let v = event(name);
        match kind {
            "story" => {
                let input: StoryInput = serde_json::from_value(v.clone())
                    .unwrap_or_else(|e| panic!("events/{name}: {e}"));
                let _: JobRequest = serde_json::from_value(input.request)
                    .unwrap_or_else(|e| panic!("events/{name}: request: {e}"));
            }
            "speech" => round_trip::<SpeechInput>(name, &v),
            "marks" => round_trip::<MarksInput>(name, &v),
            "render-chunk" => round_trip::<RenderChunkInput>(name, &v),
            "merge" => round_trip::<MergeInput>(name, &v),
            "publish" => round_trip::<PublishInput>(name, &v),
            "prepare-background" => {
                let _: PrepareBackgroundInput = serde_json::from_value(v.clone())
                    .unwrap_or_else(|e| panic!("events/{name}: {e}"));
            }
            "execution" => {
                let _: StoryInput = serde_json::from_value(story_input(&v, name))
                    .unwrap_or_else(|e| panic!("events/{name}: {e}"));
            }
            other => unreachable!("unknown kind {other}"),
        }
    }

    let publish: PublishInput = serde_json::from_value(event("publish.json")).expect("parses");
    assert!(publish.failure.is_none() && publish.merged.is_some());
    let failure: PublishInput =
        serde_json::from_value(event("publish-failure.json")).expect("parses");
    let f = failure.failure.expect("publish-failure.json has a failure");
    assert!(failure.job.is_none() && failure.merged.is_none());
    assert_eq!(f.job_id, "sample");
    assert!(
        storyreel::steps::ErrorName::ALL
            .iter()
            .any(|n| n.as_str() == f.error.error),
        "the failure's Error {:?} is one of the stable names",
        f.error.error
    );

    let channel: JobRequest = serde_json::from_value(event("channel.json"))
        .expect("channel.json is a job request, as the schedule's InputTransformer writes it");
    assert!(channel.story.prompt.is_some() && channel.trigger.is_some());
    let drop = event("drop.json");
    assert_eq!(drop["source"], "aws.s3");
    assert_eq!(drop["detail-type"], "Object Created");
    let key = drop["detail"]["object"]["key"]
        .as_str()
        .expect("object key");
    assert!(key.starts_with(storyreel::keys::DROP_PREFIX) && key.ends_with(".txt"));

    use storyreel::steps::prepare_background::INCOMING_PREFIX;
    let PrepareBackgroundInput::Uploaded(up) =
        serde_json::from_value(event("prepare-background.json")).expect("parses")
    else {
        panic!("prepare-background.json is an upload's event");
    };
    let key = storyreel::cloud::triggers::decode_event_key(&up.detail.object.key).expect("key");
    assert!(
        key.starts_with(INCOMING_PREFIX) && key.contains(' '),
        "{key}"
    );
    let PrepareBackgroundInput::GaveUp(record) =
        serde_json::from_value(event("prepare-background-failure.json")).expect("parses")
    else {
        panic!("prepare-background-failure.json is Lambda's invocation record");
    };
    assert_eq!(
        record.request_payload,
        event("prepare-background.json"),
        "the record carries the sample upload's event"
    );
}

/// `events/prepare-background.json` for the upload `key` (its size and ETag as the store
/// reports them), as EventBridge delivers it.
pub fn prepare_background_event(key: &str, bytes: u64, etag: &str) -> Value {
    let mut e = event("prepare-background.json");
    e["detail"]["object"]["key"] = json!(storyreel::cloud::triggers::encode_event_key(key));
    e["detail"]["object"]["size"] = json!(bytes);
    e["detail"]["object"]["etag"] = json!(etag);
    e
}

/// `events/prepare-background-failure.json` (Lambda gave up) for the event `upload`.
pub fn prepare_background_failure(upload: &Value) -> Value {
    let mut e = event("prepare-background-failure.json");
    e["requestPayload"] = upload.clone();
    e
}

/// Runs `step` in-process, failing the test on an error.
async fn invoke(steps: &LocalSteps, step: &str, event: Value) -> Value {
    match steps.invoke_step(step, event.clone()).await {
        Ok(v) => v,
        Err(e) => panic!("{step} failed on {event}: {}", e.chain()),
    }
}

/// The chunk events for every chunk of the sample: `render-chunk.json` with `chunk` replaced.
pub fn chunk_events() -> Vec<Value> {
    let base = event("render-chunk.json");
    let items = base["speech"]["chunks"].as_array().expect("chunks").clone();
    items
        .into_iter()
        .map(|c| {
            let mut e = base.clone();
            e["chunk"] = c;
            e
        })
        .collect()
}

/// `storyreel invoke <step> --event <event> --dir <dir>`: the step's output, or the error
/// (`{"errorType", "errorMessage"}`) it printed.
///
/// The chain runs one process per step, as the Lambdas and `scripts/gen-events.sh` do, rather
/// than in this test process: libespeak-ng carries state from one synthesis to the next, so
/// narrating the same text again in a process that has already narrated (as other tests here
/// do, in parallel) gives slightly different audio and marks, and the chunk keys would differ.
pub fn cli_invoke(step: &str, event: &Value, dir: &Path) -> Result<Value, Value> {
    let file = tempfile::NamedTempFile::new().expect("event file");
    std::fs::write(file.path(), serde_json::to_vec(event).unwrap()).expect("write event");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_storyreel"))
        .args(["invoke", step, "--event"])
        .arg(file.path())
        .arg("--dir")
        .arg(dir)
        .output()
        .expect("run storyreel invoke");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "storyreel invoke {step} printed no JSON ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if out.status.success() { Ok(v) } else { Err(v) }
}

/// Runs a step with `storyreel invoke`, failing the test on an error.
fn cli_ok(step: &str, event: &Value, dir: &Path) -> Value {
    cli_invoke(step, event, dir).unwrap_or_else(|e| panic!("{step} failed on {event}: {e}"))
}

/// The sample chain, step by step from `story.json`: each stored event is what the step
/// before produces, and running the stored events ends in a published video that decodes.
#[test]
fn the_sample_events_are_what_the_chain_produces() {
    let dir = tempdir();
    let d = dir.path();

    let story = cli_ok("story", &event("story.json"), d);
    assert_eq!(story["duplicate"], false);
    assert_eq!(story["job"]["job_id"], "sample");
    assert_eq!(story["job"]["story_key"], "jobs/sample/story.txt");
    assert_event_is("speech.json", &json!({"job": story["job"]}));
    assert_event_is("marks.json", &json!({"job": story["job"]}));

    let speech = cli_ok("speech", &event("speech.json"), d);
    let marks = cli_ok("marks", &event("marks.json"), d);
    let chunks = speech["chunks"].as_array().expect("chunks").clone();
    assert!(
        (2..=3).contains(&chunks.len()),
        "the sample is meant to have 2-3 chunks, has {}",
        chunks.len()
    );
    let base = json!({"job": story["job"], "speech": speech, "marks": marks});
    let mut first = base.clone();
    first["chunk"] = chunks[0].clone();
    assert_event_is("render-chunk.json", &first);

    let rendered: Vec<Value> = chunk_events()
        .iter()
        .map(|e| cli_ok("render-chunk", e, d))
        .collect();
    assert!(rendered.iter().all(|c| c["reused"] == false));
    let mut merge = base.clone();
    merge["chunks"] = Value::Array(rendered);
    assert_event_is("merge.json", &merge);

    let merged = cli_ok("merge", &event("merge.json"), d);
    let mut publish = base.clone();
    publish["merged"] = merged;
    assert_event_is("publish.json", &publish);

    let published = cli_ok("publish", &event("publish.json"), d);
    assert_eq!(published["status"], "succeeded");
    let video = d.join(published["outputs"]["video"].as_str().expect("video key"));
    assert_eq!(
        decode_errors(&video),
        "",
        "{} decodes cleanly",
        video.display()
    );
    let v = only_stream(&streams(&video), "video").clone();
    assert_eq!(
        num(&v, "nb_read_frames") as u64,
        speech["frames"].as_u64().unwrap()
    );
    let jobs = LocalSteps::in_dir(d, 1).jobs;
    let record = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(jobs.get("sample"))
        .expect("read job")
        .expect("job exists");
    assert_eq!(record.status, JobStatus::Succeeded);
}

/// `events/publish-failure.json` comes from a real failure: the chunk it describes fails so,
/// and the Catch's record of it marks the job failed, naming the state and the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sample_failure_is_what_the_step_reports() {
    let failure = event("publish-failure.json");
    let cause: Value = serde_json::from_str(failure["failure"]["error"]["Cause"].as_str().unwrap())
        .expect("the Cause is the Lambda error payload as JSON text");
    let dir = tempdir();
    let d = dir.path();
    cli_ok("story", &event("story.json"), d);
    cli_ok("speech", &event("speech.json"), d);
    cli_ok("marks", &event("marks.json"), d);
    let mut bad = event("render-chunk.json");
    let frames = bad["speech"]["frames"].as_u64().unwrap();
    bad["chunk"] = json!({"index": 0, "start": frames + 10, "end": frames + 20});
    let e = cli_invoke("render-chunk", &bad, d).expect_err("a chunk past the end fails");
    assert_eq!(failure["failure"]["error"]["Error"], e["errorType"]);
    assert_eq!(
        cause, e,
        "events/publish-failure.json is stale: run scripts/gen-events.sh"
    );

    // Recorded on a store where the job never started (the Catch may run before Story made it).
    let other = tempdir();
    let steps = LocalSteps::in_dir(other.path(), 1);
    let out = invoke(&steps, "publish", failure).await;
    assert_eq!(out["status"], "failed");
    let record = steps
        .jobs
        .get("sample")
        .await
        .expect("read job")
        .expect("job recorded");
    assert_eq!(record.status, JobStatus::Failed);
    let recorded = record.error.expect("failure recorded");
    assert_eq!(recorded.step, "Render chunks");
    assert_eq!(recorded.cause, cause["errorMessage"], "the readable cause");
}

/// An upload to the drop folder starts one job; the same event again (EventBridge delivers at
/// least once, so another execution may see it) finds the job and stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drop_event_starts_a_job_once() {
    let drop = event("drop.json");
    let key = drop["detail"]["object"]["key"].as_str().unwrap();
    let text = event("story.json")["request"]["story"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        drop["detail"]["object"]["size"].as_u64(),
        Some(text.len() as u64),
        "drop.json describes the sample story's object"
    );
    let dir = tempdir();
    let path = dir.path().join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &text).unwrap();
    let steps = LocalSteps::in_dir(dir.path(), 1);

    let first = invoke(&steps, "story", story_input(&drop, "drop-1")).await;
    assert_eq!(first["duplicate"], false);
    let job_id = first["job"]["job_id"].as_str().unwrap().to_string();
    assert!(job_id.starts_with("the-note-on-the-fridge"), "{job_id}");
    assert_eq!(first["job"]["title"], "The Note on the Fridge");
    let record = steps.jobs.get(&job_id).await.unwrap().expect("job created");
    assert_eq!(
        (record.source.as_str(), record.source_detail.as_str()),
        ("drop", key)
    );
    let story_key = first["job"]["story_key"].as_str().unwrap();
    let stored = std::fs::read_to_string(dir.path().join(story_key)).expect("story stored");
    assert!(
        stored.starts_with("The Note on the Fridge\n\n"),
        "{stored:?}"
    );

    let again = invoke(&steps, "story", story_input(&drop, "drop-2")).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["job"]["job_id"], job_id.as_str());
}

/// Writes the same story for any prompt, recording what it was asked.
struct CannedLlm(std::sync::Mutex<Vec<String>>);

#[async_trait]
impl StoryLlm for CannedLlm {
    async fn write(
        &self,
        prompt: &str,
        _seconds: u32,
        _style: &str,
        _recent_titles: &[String],
    ) -> Result<WrittenStory, StepError> {
        self.0.lock().unwrap().push(prompt.to_string());
        Ok(WrittenStory {
            title: Some("The Neighbour's Ladder".into()),
            body: "My neighbour borrowed my ladder in spring. He returned it painted gold.".into(),
        })
    }
}

/// A prompt needs an LLM: without one the step says how to configure it; with one, the
/// channel's tick makes one job per tick and the prompt event makes a job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prompt_and_channel_events_write_stories() {
    let dir = tempdir();
    let mut steps = LocalSteps::in_dir(dir.path(), 1);
    let e = steps
        .invoke_step("story", event("story-prompt.json"))
        .await
        .expect_err("no LLM configured");
    assert_eq!(e.name.as_str(), "InvalidInput");
    assert!(
        e.chain().contains("OPENAI_API_KEY") && e.chain().contains("OPENAI_BASE_URL"),
        "{}",
        e.chain()
    );

    let llm = Arc::new(CannedLlm(Default::default()));
    steps.llm = Some(llm.clone());
    let out = invoke(&steps, "story", event("story-prompt.json")).await;
    assert_eq!(out["duplicate"], false);
    assert_eq!(out["job"]["title"], "The Neighbour's Ladder");

    let channel = event("channel.json");
    let tick = invoke(&steps, "story", story_input(&channel, "tick-1")).await;
    assert_eq!(tick["duplicate"], false);
    assert_eq!(tick["job"]["channel"], channel["channel"]);
    let job_id = tick["job"]["job_id"].as_str().unwrap();
    let record = steps.jobs.get(job_id).await.unwrap().expect("job created");
    assert_eq!(record.source, "channel");
    let again = invoke(&steps, "story", story_input(&channel, "tick-1-redelivered")).await;
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["job"]["job_id"], job_id);
    let asked = llm.0.lock().unwrap().clone();
    assert_eq!(
        asked[0],
        event("story-prompt.json")["request"]["story"]["prompt"]
    );
    assert_eq!(asked[1], channel["story"]["prompt"]);
}
