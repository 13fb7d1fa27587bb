//! The seven `functions/*` binaries, driven through the Lambda Runtime API protocol by a loopback
//! server ([`crate::support::runtime_api`]) with the `events/` files, as Lambda and
//! `sam local invoke` run them: each answers its event as the in-process step does, and a bad
//! event comes back as an error response under the stable error name.
//!
//! The binaries are built by the test (`cargo build -p storyreel-fn-<step>`, a no-op when up
//! to date) into this test binary's own target directory and profile; see
//! [`function_binary`].

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
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
    for step in storyreel::steps::FUNCTION_NAMES {
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

const PROMPT_TITLE: &str = "The Ladder That Came Back Gold";
/// The titles the chat server answers with, in turn.
const TITLES: [&str; 3] = [
    PROMPT_TITLE,
    "My Neighbour Kept a Secret All Summer",
    "What I Found Taped to the Top Step",
];

/// About 80 words: the 30-second budget of `story-prompt.json` at 160 words a minute.
fn prompt_body() -> String {
    let sentences = [
        "My neighbour borrowed my ladder in the spring and kept it all summer long.",
        "I asked about it twice, and both times he smiled and said soon.",
        "By autumn I had given up and bought a new ladder for the gutters.",
        "Then one morning the old ladder was leaning against my fence again.",
        "Every rung had been sanded smooth and painted a bright shining gold.",
        "Taped to the top step was a note in his neat handwriting.",
        "It said that a ladder that helps people climb deserves to look proud.",
        "I still have no idea what he did with it all those months.",
    ];
    sentences.join(" ")
}

/// One request the chat server received.
#[derive(Debug, Clone)]
struct ChatRequest {
    /// The `Authorization` header.
    authorization: Option<String>,
    body: Value,
}

/// A loopback chat-completions endpoint (`OPENAI_BASE_URL`) that streams one story as
/// server-sent events of `{"title", "body"}` JSON content; records each request.
fn chat_server(requests: Arc<Mutex<Vec<ChatRequest>>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the chat server");
    let addr = listener.local_addr().expect("address");
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let Ok(clone) = conn.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(clone);
            let mut len = 0usize;
            let mut authorization = None;
            let mut line = String::new();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if l.starts_with("authorization:") {
                    authorization = Some(line["authorization:".len()..].trim().to_owned());
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut buf = vec![0; len.min(1 << 20)];
            if reader.read_exact(&mut buf).is_err() {
                continue;
            }
            let req: Value = serde_json::from_slice(&buf).unwrap_or(Value::Null);
            let title = {
                let mut requests = requests.lock().unwrap();
                requests.push(ChatRequest {
                    authorization,
                    body: req.clone(),
                });
                // A new title each time: the writer refuses to repeat a recent one.
                TITLES[(requests.len() - 1) % TITLES.len()]
            };
            let content = format!(
                "{{\"title\":{},\"body\":{}}}",
                Value::String(title.into()),
                Value::String(prompt_body())
            );
            let mut out = String::from(
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
            );
            let chars: Vec<char> = content.chars().collect();
            for (i, piece) in chars.chunks(40).enumerate() {
                let mut delta = json!({"content": piece.iter().collect::<String>()});
                if i == 0 {
                    delta["role"] = json!("assistant");
                }
                let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                    "created": 1, "model": req["model"],
                    "choices": [{"index": 0, "delta": delta, "finish_reason": null}]});
                out.push_str(&format!("data: {chunk}\n\n"));
            }
            let last = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                "created": 1, "model": req["model"],
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
            out.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
            let _ = conn.write_all(out.as_bytes());
        }
    });
    format!("http://{addr}/v1")
}

/// `story-prompt.json` through the story Lambda configured with an OpenAI-compatible endpoint
/// (issue 5, item 3): the prompt becomes a job with the model's title and a cleaned story.
#[test]
fn the_story_function_writes_from_a_prompt_with_an_endpoint_configured() {
    let requests = Arc::new(Mutex::new(Vec::new()));
    let base = chat_server(requests.clone());
    let dir = tempdir();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let mut story = Function::start_with(
        &function_binary("story"),
        "storyreel-story",
        Some(&store),
        &dir.path().join("functions"),
        &[
            ("OPENAI_BASE_URL", base.as_str()),
            ("OPENAI_API_KEY", "sk-test"),
            ("STORYREEL_MODEL", "test-model"),
        ],
    );
    let request = event("story-prompt.json");
    let out = story.ok(&request);
    assert_eq!(out["duplicate"], false);
    assert_eq!(out["job"]["title"], PROMPT_TITLE);
    let key = out["job"]["story_key"].as_str().expect("story key");
    let text = std::fs::read_to_string(store.join(key)).expect("story stored");
    assert!(
        text.starts_with(&format!("{PROMPT_TITLE}\n\n")),
        "title line, blank line, body: {text:?}"
    );
    assert!(text.contains("painted a bright shining gold"), "{text:?}");

    let asked = requests.lock().unwrap().clone();
    assert!(!asked.is_empty(), "the endpoint was not called");
    assert_eq!(asked[0].body["model"], "test-model");
    assert_eq!(asked[0].authorization.as_deref(), Some("Bearer sk-test"));
    let prompt = request["request"]["story"]["prompt"].as_str().unwrap();
    assert!(
        asked[0].body["messages"].to_string().contains(prompt),
        "the prompt reaches the model: {}",
        asked[0].body["messages"]
    );
}

/// The deployed story function's key lives in SSM Parameter Store (`OPENAI_API_KEY_PARAMETER`,
/// a SecureString): read with the real SSM client from moto on the first prompt, sent as the
/// bearer token, kept for the container (the second prompt works after the parameter is
/// gone), and never logged. A missing parameter is a named, non-retried error.
#[test]
fn the_story_function_reads_its_key_from_parameter_store_once() {
    const SECRET: &str = "sk-from-parameter-store-7f3a";
    use crate::moto::MotoConfig;
    let moto = crate::moto::Moto::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ssm = aws_sdk_ssm::Client::new(&rt.block_on(moto.config()));
    rt.block_on(
        ssm.put_parameter()
            .name("/storyreel/openai-api-key")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .value(SECRET)
            .send(),
    )
    .expect("put the key parameter");

    let requests = Arc::new(Mutex::new(Vec::new()));
    let base = chat_server(requests.clone());
    let dir = tempdir();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let endpoint = moto.endpoint();
    let start = |parameter: &str| {
        Function::start_with(
            &function_binary("story"),
            "storyreel-story",
            Some(&store),
            &dir.path().join("functions"),
            &[
                ("OPENAI_BASE_URL", base.as_str()),
                ("OPENAI_API_KEY_PARAMETER", parameter),
                ("AWS_ENDPOINT_URL", endpoint.as_str()),
                ("AWS_ACCESS_KEY_ID", "testing"),
                ("AWS_SECRET_ACCESS_KEY", "testing"),
            ],
        )
    };
    let mut story = start("/storyreel/openai-api-key");
    let mut request = event("story-prompt.json");
    story.ok(&request);
    rt.block_on(
        ssm.delete_parameter()
            .name("/storyreel/openai-api-key")
            .send(),
    )
    .expect("delete the key parameter");
    request["execution"] = json!("a-second-execution");
    request["request"]["story"]["prompt"] = json!("a second prompt, after the key is gone");
    story.ok(&request);
    let asked = requests.lock().unwrap().clone();
    assert_eq!(asked.len(), 2, "{asked:?}");
    for a in &asked {
        assert_eq!(
            a.authorization.as_deref(),
            Some(format!("Bearer {SECRET}").as_str())
        );
    }

    // A new container finds no parameter: a named error, not retried.
    let mut fresh = start("/storyreel/openai-api-key");
    let e = fresh.err(&request);
    assert_eq!(e.error_type, "InvalidInput", "{e:?}");
    assert!(
        e.error_message
            .contains("/storyreel/openai-api-key does not exist"),
        "{e:?}"
    );
    for log in [story.log(), fresh.log()] {
        assert!(!log.contains(SECRET), "the key was logged:\n{log}");
    }
}

/// Issue 14: the deployed publish path. With `STORYREEL_ACCOUNTS_SSM_PREFIX` set (the template
/// sets it), the publish function reads the connected account from its SSM SecureString
/// (moto, with the real SSM client), refreshes the token at the loopback Google, and uploads
/// the job's finished video to the loopback YouTube once; no token reaches its log.
#[test]
fn the_publish_function_reads_its_account_from_parameter_store() {
    use crate::moto::MotoConfig;
    use storyreel_platforms::{GOOGLE_CLIENT_ID, GOOGLE_CLIENT_SECRET, Platforms};
    let moto = crate::moto::Moto::start();
    let platforms = Platforms::start();
    let refresh = platforms.grant_refresh_token(storyreel_platforms::Platform::YouTube);
    let account = json!({"platform": "youtube", "name": "main", "client_id": GOOGLE_CLIENT_ID,
        "client_secret": GOOGLE_CLIENT_SECRET, "refresh_token": refresh, "scope": "", "connected_at": 1});
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let ssm = aws_sdk_ssm::Client::new(&rt.block_on(moto.config()));
    rt.block_on(
        ssm.put_parameter()
            .name("/storyreel/accounts/youtube/main")
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .value(account.to_string())
            .send(),
    )
    .expect("put the account parameter");

    let dir = tempdir();
    let store = dir.path().join("store");
    let youtube = storyreel_publish::Destination::parse("youtube:main").unwrap();
    let video =
        crate::publish::finished_job_in(&store, "sample", 700_000, std::slice::from_ref(&youtube));
    let endpoint = moto.endpoint();
    let mut env: Vec<(&str, String)> = platforms.env();
    env.extend([
        (
            "STORYREEL_ACCOUNTS_SSM_PREFIX",
            "/storyreel/accounts/".to_string(),
        ),
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut publish = Function::start_with(
        &function_binary("publish"),
        "storyreel-publish",
        Some(&store),
        &dir.path().join("functions"),
        &env,
    );
    let mut e = event("publish.json");
    e["job"]["publish"] = json!([youtube]);
    let out = publish.ok(&e);
    assert_eq!(
        out["destinations"]["youtube:main"]["status"], "published",
        "{out}"
    );
    // A retry of the step (Step Functions retries on a lost answer) uploads nothing more.
    let again = publish.ok(&e);
    assert_eq!(again["destinations"], out["destinations"]);
    let videos = platforms.youtube_videos();
    assert_eq!(videos.len(), 1);
    assert!(videos[0].bytes == video);
    // Without the parameter: the destination fails naming the account, the video is kept.
    rt.block_on(
        ssm.delete_parameter()
            .name("/storyreel/accounts/youtube/main")
            .send(),
    )
    .expect("delete the account parameter");
    crate::publish::finished_job_in(&store, "other", 1000, std::slice::from_ref(&youtube));
    e["job"]["job_id"] = json!("other");
    e["job"]["story_key"] = json!("jobs/other/story.txt");
    let out = publish.ok(&e);
    let failed = &out["destinations"]["youtube:main"];
    assert_eq!(failed["status"], "failed", "{out}");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("storyreel accounts connect youtube --name main"),
        "{out}"
    );
    let log = publish.log();
    let mut secrets = platforms.issued_tokens();
    secrets.extend([refresh, GOOGLE_CLIENT_SECRET.to_string()]);
    for s in secrets {
        assert!(!log.contains(&s), "a token reached the function's log");
        assert!(!out.to_string().contains(&s), "a token reached the output");
    }
}

/// Issue 15: the prepare-background bootstrap configured as the template deploys it (the
/// bucket, here moto's, with the real S3 client), on `events/prepare-background.json` for an
/// upload with tags in its metadata: the upload becomes a library entry and leaves
/// `backgrounds/incoming/`; the event again adds nothing; a file that is not a video gets its
/// failure record; Lambda's record of an event that timed out on every attempt
/// (`events/prepare-background-failure.json`) becomes a failure record too; the function's
/// scratch space is empty after each.
#[test]
fn the_prepare_background_function_adds_uploads_and_records_failures() {
    use crate::events::{prepare_background_event, prepare_background_failure};
    use crate::moto::MotoConfig;
    use storyreel::cloud::S3Store;
    use storyreel::store::BlobStore;
    let moto = crate::moto::Moto::start();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let store = S3Store::new(&rt.block_on(moto.config()), "media");
    rt.block_on(store.client().create_bucket().bucket("media").send())
        .expect("create the bucket");
    let dir = tempdir();
    let h264 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "30"];
    let clip = testsrc_video(dir.path(), "clip.mp4", (320, 180), 30, 11.0, &h264);
    let put = |key: &str, body: Vec<u8>, tags: Option<&str>| {
        let mut req = store
            .client()
            .put_object()
            .bucket("media")
            .key(key)
            .body(body.into());
        if let Some(t) = tags {
            req = req.metadata("tags", t);
        }
        rt.block_on(req.send()).expect("put the upload");
        let info = rt.block_on(store.head(key)).unwrap().expect("uploaded");
        prepare_background_event(key, info.bytes, &info.etag)
    };
    let footage = "backgrounds/incoming/minecraft parkour.mp4";
    let upload = put(
        footage,
        std::fs::read(&clip).unwrap(),
        Some("lofi, minecraft"),
    );

    let endpoint = moto.endpoint();
    let scratch = dir.path().join("functions");
    let mut f = Function::start_with(
        &function_binary("prepare-background"),
        "storyreel-prepare-background",
        None,
        &scratch,
        &[
            // The template's Globals: the stack's bucket and table.
            ("STORYREEL_BUCKET", "media"),
            ("STORYREEL_TABLE", "jobs"),
            ("AWS_ENDPOINT_URL", endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
    );
    let leftovers = || {
        let tmp = scratch.join("storyreel-prepare-background-tmp/storyreel");
        std::fs::read_dir(tmp)
            .map(|d| d.flatten().map(|e| e.path()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    refuses_malformed(&mut f, "prepare-background");
    let out = f.ok(&upload);
    assert_eq!(out["status"], "added", "{out}");
    assert_eq!(
        out["background"]["tags"],
        json!(["lofi", "minecraft"]),
        "{out}"
    );
    let library = rt
        .block_on(storyreel::cloud::backgrounds::list(&store, None))
        .unwrap();
    assert_eq!(library.len(), 1);
    assert_eq!(library[0].id, out["background"]["id"].as_str().unwrap());
    assert!(rt.block_on(store.head(footage)).unwrap().is_none());
    assert!(leftovers().is_empty(), "{:?}", leftovers());
    let again = f.ok(&upload);
    assert_eq!(again["status"], "duplicate", "{again}");

    let notes = put(
        "backgrounds/incoming/notes.txt",
        b"not a video".to_vec(),
        None,
    );
    let out = f.ok(&notes);
    assert_eq!(out["status"], "failed", "{out}");
    let record_key = out["failure_key"].as_str().expect("a record");
    let record: Value =
        serde_json::from_slice(&rt.block_on(store.get(record_key, 1 << 20)).unwrap()).unwrap();
    assert_eq!(record["error"], "InvalidInput", "{record}");
    assert!(
        record["message"].as_str().unwrap().contains("notes.txt"),
        "{record}"
    );
    assert!(leftovers().is_empty(), "{:?}", leftovers());

    // Every attempt timed out: Lambda hands the function its record of the event.
    let stuck = put("backgrounds/incoming/long.mp4", b"...".to_vec(), None);
    let out = f.ok(&prepare_background_failure(&stuck));
    assert_eq!(out["status"], "failed", "{out}");
    let record: Value = serde_json::from_slice(
        &rt.block_on(store.get("backgrounds/incoming/long.mp4.error.json", 1 << 20))
            .unwrap(),
    )
    .unwrap();
    assert!(
        record["message"]
            .as_str()
            .unwrap()
            .contains("Task timed out"),
        "{record}"
    );
    assert_eq!(rt.block_on(backgrounds_len(&store)), 1);
    assert!(
        f.log()
            .contains("added backgrounds/incoming/minecraft parkour.mp4"),
        "{}",
        f.log()
    );
}

async fn backgrounds_len(store: &storyreel::cloud::S3Store) -> usize {
    storyreel::cloud::backgrounds::list(store, None)
        .await
        .map_or(0, |l| l.len())
}
