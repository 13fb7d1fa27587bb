//! Issue 15 ("In the cloud"): footage uploaded under `backgrounds/incoming/` of the bucket
//! (moto, with the real S3, EventBridge and SQS clients) is announced by the bucket's
//! EventBridge notifications, matched by the rule `template.yaml` deploys (routed to a queue
//! here: moto does not invoke Lambdas), and handled by the prepare-background function as its
//! Lambda would: an H.264 clip with tags in its metadata becomes a library entry and leaves
//! `incoming/`, the same event again adds nothing, a text file and a clip too short get
//! failure records naming what is wrong and stay, and the function's own records are skipped.
//!
//! moto's own S3 notification spells the ETag `eTag` (AWS: `etag`) and does not URL-encode the
//! key: the function then reads the upload's ETag itself, which the test also exercises; the
//! redelivery is sent in AWS's shape (`events/prepare-background.json`).

use std::path::Path;
use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use serde_json::{Value, json};
use serde_yaml::Value as Yaml;
use storyreel::cloud::S3Store;
use storyreel::cloud::backgrounds;
use storyreel::steps::prepare_background::{
    FailureRecord, INCOMING_PREFIX, PrepareStatus, background_id, failure_key,
};
use storyreel::steps::{PrepareBackgroundOutput, prepare_background};
use storyreel::store::BlobStore;

use crate::events::prepare_background_event;
use crate::moto::{ACCOUNT, Moto, MotoConfig, REGION};
use crate::support;

/// The pattern of the template's rule for uploads under `backgrounds/incoming/`, as JSON, with
/// the bucket's name in place of `!Ref MediaBucket`.
pub fn template_rule_pattern(bucket: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("template.yaml");
    let t: Yaml = serde_yaml::from_str(&std::fs::read_to_string(p).expect("read template.yaml"))
        .expect("template.yaml is YAML");
    let pattern = &t["Resources"]["PrepareBackgroundFunction"]["Properties"]["Events"]["BackgroundUploaded"]
        ["Properties"]["Pattern"];
    assert!(!pattern.is_null(), "the function has its EventBridge rule");
    fn to_json(v: &Yaml, bucket: &str) -> Value {
        match v {
            Yaml::Tagged(t) => {
                assert_eq!(t.value.as_str(), Some("MediaBucket"), "{v:?}");
                json!(bucket)
            }
            Yaml::Sequence(s) => Value::Array(s.iter().map(|x| to_json(x, bucket)).collect()),
            Yaml::Mapping(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.as_str().expect("key").to_owned(), to_json(v, bucket)))
                    .collect(),
            ),
            other => serde_json::to_value(other).expect("a plain value"),
        }
    }
    to_json(pattern, bucket)
}

async fn put(store: &S3Store, key: &str, body: ByteStream, tags: Option<&str>) {
    let mut req = store
        .client()
        .put_object()
        .bucket(store.bucket())
        .key(key)
        .body(body);
    if let Some(tags) = tags {
        req = req.metadata("tags", tags);
    }
    req.send().await.expect("put the upload");
}

async fn run(event: &Value, store: &S3Store, scratch: &Path) -> PrepareBackgroundOutput {
    let input = serde_json::from_value(event.clone()).expect("a prepare-background input");
    prepare_background(input, store, scratch)
        .await
        .unwrap_or_else(|e| panic!("prepare-background failed on {event}: {}", e.chain()))
}

/// Waits for `n` events on the queue (moto delivers them as it handles the put).
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < n && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            got.push(serde_json::from_str(m.body().unwrap_or_default()).expect("JSON"));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete the message");
        }
    }
    assert_eq!(got.len(), n, "{got:#?}");
    got
}

fn key_of(event: &Value) -> String {
    storyreel::cloud::triggers::decode_event_key(
        event["detail"]["object"]["key"].as_str().expect("a key"),
    )
    .expect("a valid key")
}

async fn record(store: &S3Store, key: &str) -> FailureRecord {
    let bytes = store.get(&failure_key(key), 1 << 20).await.expect("record");
    serde_json::from_slice(&bytes).expect("a failure record")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_under_incoming_become_library_entries_or_failure_records() {
    let moto = Moto::start();
    let conf = moto.config().await;
    let store = S3Store::new(&conf, "media");
    let s3 = store.client();
    s3.create_bucket().bucket("media").send().await.unwrap();
    // The template's bucket sends its events to EventBridge.
    s3.put_bucket_notification_configuration()
        .bucket("media")
        .notification_configuration(
            aws_sdk_s3::types::NotificationConfiguration::builder()
                .event_bridge_configuration(
                    aws_sdk_s3::types::EventBridgeConfiguration::builder().build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let queue = sqs
        .create_queue()
        .queue_name("incoming")
        .send()
        .await
        .unwrap();
    let url = queue.queue_url().unwrap().to_string();
    let events = aws_sdk_eventbridge::Client::new(&conf);
    events
        .put_rule()
        .name("storyreel-incoming")
        .event_pattern(template_rule_pattern("media").to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("storyreel-incoming")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(format!("arn:aws:sqs:{REGION}:{ACCOUNT}:incoming"))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let dir = support::tempdir();
    let scratch = dir.path().join("scratch");
    let h264 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "30"];
    let clip = support::testsrc_video(dir.path(), "clip.mp4", (320, 180), 30, 11.0, &h264);
    let footage = format!("{INCOMING_PREFIX}minecraft parkour.mp4");
    let notes = format!("{INCOMING_PREFIX}notes.txt");
    let short = format!("{INCOMING_PREFIX}short.mp4");
    let short_clip = support::testsrc_video(dir.path(), "short.mp4", (320, 180), 30, 3.0, &h264);
    put(
        &store,
        &footage,
        ByteStream::from_path(&clip).await.unwrap(),
        Some("lofi,Minecraft"),
    )
    .await;
    put(
        &store,
        &notes,
        ByteStream::from_static(b"remember the milk"),
        None,
    )
    .await;
    put(
        &store,
        &short,
        ByteStream::from_path(&short_clip).await.unwrap(),
        Some("lofi"),
    )
    .await;
    // Not under the prefix: the rule does not match it.
    put(
        &store,
        "drop/story.txt",
        ByteStream::from_static(b"x"),
        None,
    )
    .await;

    let mut delivered = receive(&sqs, &url, 3).await;
    delivered.sort_by_key(key_of);
    let keys: Vec<String> = delivered.iter().map(key_of).collect();
    assert_eq!(keys, [footage.clone(), notes.clone(), short.clone()]);

    // The clip: in the library with its tags, and gone from incoming/.
    let info = store.head(&footage).await.unwrap().expect("uploaded");
    let out = run(&delivered[0], &store, &scratch).await;
    assert_eq!(out.status, PrepareStatus::Added, "{out:?}");
    let meta = out.background.expect("the entry");
    assert_eq!(meta.id, background_id(&footage, &info.etag));
    assert_eq!(meta.tags, ["lofi", "minecraft"]);
    assert_eq!(meta.original_name, "minecraft parkour.mp4");
    assert_eq!(meta.source.name, "minecraft parkour.mp4");
    assert_eq!(meta.source.codec, "h264");
    assert!(meta.duration_ms >= backgrounds::MIN_DURATION_MS, "{meta:?}");
    assert_eq!(
        backgrounds::list(&store, Some("minecraft")).await.unwrap(),
        std::slice::from_ref(&meta)
    );
    assert!(store.head(&footage).await.unwrap().is_none(), "removed");
    let video = dir.path().join("prepared.mp4");
    store.get_file(&meta.key, &video).await.unwrap();
    assert_eq!(
        support::decode_errors(&video),
        "",
        "the prepared video decodes"
    );

    // The same event again, and its redelivery in AWS's own shape: nothing added.
    let again = run(&delivered[0], &store, &scratch).await;
    assert_eq!(again.status, PrepareStatus::Skipped, "{again:?}");
    assert!(again.message.contains("is gone"), "{again:?}");
    let aws_shaped = prepare_background_event(&footage, info.bytes, &info.etag);
    let again = run(&aws_shaped, &store, &scratch).await;
    assert_eq!(again.status, PrepareStatus::Duplicate, "{again:?}");
    assert!(again.message.contains(&meta.id), "{again:?}");
    assert_eq!(backgrounds::list(&store, None).await.unwrap().len(), 1);

    // Not a video, and a clip too short: failure records, uploads left.
    for (event, name, says) in [
        (&delivered[1], &notes, "notes.txt"),
        (&delivered[2], &short, "lasts 3.0 s"),
    ] {
        let out = run(event, &store, &scratch).await;
        assert_eq!(out.status, PrepareStatus::Failed, "{out:?}");
        assert_eq!(out.failure_key.as_deref(), Some(failure_key(name).as_str()));
        let info = store.head(name).await.unwrap().expect("the upload stays");
        let r = record(&store, name).await;
        assert_eq!(
            (&r.key, &r.etag, r.bytes),
            (name, &info.etag, info.bytes),
            "{r:?}"
        );
        assert_eq!(r.event_id, event["id"].as_str().unwrap());
        assert_eq!(r.error, "InvalidInput");
        assert!(r.message.contains(says), "{r:?}");
        assert!(
            !r.message.contains(&*scratch.to_string_lossy()),
            "the record names the upload, not the scratch file: {r:?}"
        );
        assert!(r.causes.len() >= 2, "{r:?}");
        assert!(
            storyreel_publish::time::parse_rfc3339(&r.failed_at).is_some(),
            "{r:?}"
        );
        assert!(r.help.contains("backgrounds/incoming/"), "{r:?}");
        // A redelivery of the same event does not do the work again.
        let again = run(event, &store, &scratch).await;
        assert_eq!(again.status, PrepareStatus::Skipped, "{again:?}");
        assert!(again.message.contains("already failed"), "{again:?}");
    }
    let text = record(&store, &notes).await;
    assert!(text.message.contains("cannot be prepared"), "{text:?}");

    // The records are uploads under the prefix too: the rule sends them, the function skips
    // them and writes nothing.
    let own = receive(&sqs, &url, 2).await;
    for e in &own {
        assert!(key_of(e).ends_with(".error.json"), "{e}");
        let out = run(e, &store, &scratch).await;
        assert_eq!(out.status, PrepareStatus::Skipped, "{out:?}");
    }
    let mut left: Vec<String> = store
        .list(INCOMING_PREFIX)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            notes.clone(),
            failure_key(&notes),
            short.clone(),
            failure_key(&short)
        ]
    );
    let scratch_left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(
        scratch_left.is_empty(),
        "scratch left behind: {scratch_left:?}"
    );
}
