//! The six `functions/*` binaries, driven through the Lambda Runtime API protocol by a loopback
//! server ([`crate::support::runtime_api`]) with the `events/` files, as Lambda and
//! `sam local invoke` run them: each answers its event as the in-process step does, and a bad
//! event comes back as an error response under the stable error name.
//!
//! The binaries are built by the test (`cargo build -p storyreel-fn-<step>`, a no-op when up
//! to date) into this test binary's own target directory and profile; see
//! [`function_binary`].

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::events::{assert_event_is, chunk_events, event};
use crate::support::runtime_api::{Function, Reported, function_binary};
use crate::support::*;

/// Starts the function of `step` on `store`.
fn start(step: &str, store: &Path, scratch: &Path) -> Function {
    Function::start(
        &function_binary(step),
        &format!("storyreel-{step}"),
        Some(store),
        scratch,
    )
}

/// Fails unless `e` is an `InvalidInput` error response naming `step`.
fn assert_invalid(step: &str, e: &Reported) {
    assert_eq!(e.error_type, "InvalidInput", "{step}: {e:?}");
    assert!(
        e.error_message.starts_with(&format!("{step}: ")),
        "the message names the step {step}: {e:?}"
    );
    assert!(!e.error_message.contains("panicked"), "{e:?}");
}

/// A malformed event is refused, named, and the function goes on serving (the error did not
/// end the runtime loop).
fn refuses_malformed(f: &mut Function, step: &str) {
    let e = f.err(&json!({"nope": 1}));
    assert_invalid(step, &e);
    assert!(
        e.error_message.contains("malformed event"),
        "{step}: {:?}",
        e.error_message
    );
}

/// The whole sample, function by function: story → speech → marks → render-chunk (every
/// chunk, one warm container) → merge → publish, each answering what the stored events expect.
#[test]
fn every_function_serves_its_events_through_the_runtime_api() {
    let dir = tempdir();
    let store = dir.path().join("store");
    let scratch = dir.path().join("functions");
    std::fs::create_dir_all(&store).unwrap();

    let mut story = start("story", &store, &scratch);
    refuses_malformed(&mut story, "story");
    let out = story.ok(&event("story.json"));
    assert_eq!(out["duplicate"], false);
    assert_event_is("speech.json", &json!({"job": out["job"]}));
    // No LLM configured (the harness clears OPENAI_*): a prompt is refused, saying what to set.
    let e = story.err(&event("story-prompt.json"));
    assert_invalid("story", &e);
    assert!(
        e.error_message.contains("OPENAI_API_KEY") && e.error_message.contains("OPENAI_BASE_URL"),
        "{e:?}"
    );
    drop(story);

    let mut speech = start("speech", &store, &scratch);
    refuses_malformed(&mut speech, "speech");
    let speech_out = speech.ok(&event("speech.json"));
    drop(speech);
    let mut marks = start("marks", &store, &scratch);
    refuses_malformed(&mut marks, "marks");
    let marks_out = marks.ok(&event("marks.json"));
    drop(marks);
    let mut first = event("render-chunk.json");
    first["speech"] = speech_out;
    first["marks"] = marks_out;
    assert_event_is("render-chunk.json", &first);

    let mut render = start("render-chunk", &store, &scratch);
    refuses_malformed(&mut render, "render-chunk");
    let chunks: Vec<Value> = chunk_events().iter().map(|e| render.ok(e)).collect();
    drop(render);
    let mut merge_event = event("merge.json");
    merge_event["chunks"] = Value::Array(chunks);
    assert_event_is("merge.json", &merge_event);

    let mut merge = start("merge", &store, &scratch);
    refuses_malformed(&mut merge, "merge");
    let merged = merge.ok(&event("merge.json"));
    drop(merge);
    let mut publish_event = event("publish.json");
    publish_event["merged"] = merged;
    assert_event_is("publish.json", &publish_event);

    let mut publish = start("publish", &store, &scratch);
    refuses_malformed(&mut publish, "publish");
    let out = publish.ok(&event("publish.json"));
    assert_eq!(out["status"], "succeeded", "{out}");
    let video = store.join(out["outputs"]["video"].as_str().expect("video key"));
    assert_eq!(
        decode_errors(&video),
        "",
        "{} decodes cleanly",
        video.display()
    );
    drop(publish);

    // Record failure, as the state machine's Catch calls publish.
    let other = dir.path().join("failure-store");
    std::fs::create_dir_all(&other).unwrap();
    let mut publish = start("publish", &other, &scratch);
    let out = publish.ok(&event("publish-failure.json"));
    assert_eq!(out["status"], "failed", "{out}");
    assert_eq!(out["error"]["step"], "Render chunks");
}

/// Each binary reports an error through `/invocation/{id}/error` with the stable name in
/// `errorType` and Lambda's function-error header.
#[test]
fn a_bad_event_is_an_error_response_with_the_stable_name() {
    let dir = tempdir();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    for step in storyreel::steps::STEP_NAMES {
        let mut f = start(step, &store, &dir.path().join("functions"));
        let e = f.err(&json!("not an event"));
        assert_invalid(step, &e);
        assert!(
            e.header.is_some(),
            "{step}: no Lambda-Runtime-Function-Error-Type header"
        );
    }
    // A well-formed event for a job that is not there: the story it names is missing.
    let mut speech = start("speech", &store, &dir.path().join("functions"));
    let e = speech.err(&event("speech.json"));
    assert!(
        ["InvalidInput", "Fatal"].contains(&e.error_type.as_str()),
        "{e:?}"
    );
    assert!(e.error_message.starts_with("speech: "), "{e:?}");
}

/// Without storage configured the function cannot start: it exits saying what to set (and
/// reports to `/runtime/init/error` if the runtime does so).
#[test]
fn a_function_without_storage_fails_at_init() {
    let dir = tempdir();
    let mut f = Function::start(
        &function_binary("story"),
        "storyreel-story",
        None,
        dir.path(),
    );
    let status = f
        .wait_exit(Duration::from_secs(60))
        .expect("the function exits when it cannot build its clients");
    assert!(!status.success(), "{status}");
    let log = f.log();
    assert!(log.contains("STORYREEL_LOCAL_DIR"), "log:\n{log}");
    if let Some(e) = f.api.init_error() {
        assert!(e.error_message.contains("STORYREEL_LOCAL_DIR"), "{e:?}");
    }
    assert!(f.api.violations().is_empty(), "{:?}", f.api.violations());
}
