//! The cloud adapters and commands of issue #6 against moto (AWS-protocol servers on loopback)
//! with the real `aws-sdk-*` clients, and against a scripted HTTP server for the answers moto
//! cannot give (access denied, throttling).
//!
//! moto's limits, measured while planning and written around rather than skipped:
//! - S3 lifecycle rules and DynamoDB TTL are stored, never applied: the tests check the
//!   `expires_at` attribute is written, not that records vanish.
//! - `put_events` answers 500 when a matching rule targets a state machine: channel rules are
//!   checked with `list_targets_by_rule`; event routing is checked with an SQS target.
//! - Schedules never fire: a tick is simulated by substituting `<time>` the way EventBridge's
//!   input transformer does.
//! - Executions must be named (storyreel always names them).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
};
use serde_json::{Value, json};
use storyreel::background::VideoBackground;
use storyreel::cloud::backgrounds::{self, BackgroundSelector, LibraryError};
use storyreel::cloud::channels::{self, ChannelError, ChannelSpec, Channels};
use storyreel::cloud::s3::MultipartConfig;
use storyreel::cloud::sfn::{self, CloudRuns, RunError};
use storyreel::cloud::{DynamoJobs, MAX_ATTEMPTS, S3Store, SdkConfig, triggers};
use storyreel::jobs::{
    JobError, JobFailure, JobOutputs, JobRecord, JobStatus, JobStore, JobUpdate,
};
use storyreel::steps::VoiceOptions;
use storyreel::steps::story::{JobRequest, StoryInput, StorySource};
use storyreel::store::{BlobStore, StoreError};

use crate::moto::{ACCOUNT, Moto, MotoConfig, REGION, config_for};
use crate::support;

/// The error and its causes, `: `-separated.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn new_bucket(conf: &SdkConfig, name: &str) -> S3Store {
    let store = S3Store::new(conf, name);
    store
        .client()
        .create_bucket()
        .bucket(name)
        .send()
        .await
        .expect("create the bucket");
    store
}

/// The job table as `template.yaml` declares it.
pub(crate) async fn new_table(conf: &SdkConfig, name: &str) -> DynamoJobs {
    let jobs = DynamoJobs::new(conf, name);
    jobs.client()
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("job_id")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("job_id")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create the table");
    jobs
}

/// Deterministic bytes that do not compress.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_round_trips_ranges_multipart_and_links() {
    let moto = Moto::start();
    let conf = moto.config().await;
    let store = new_bucket(&conf, "media")
        .await
        .with_multipart(MultipartConfig {
            threshold: 6 << 20,
            part_size: 5 << 20,
            concurrency: 2,
        });
    assert_eq!(store.describe(), "s3://media");
    // Every client carries the retry policy.
    assert_eq!(
        store
            .client()
            .config()
            .retry_config()
            .unwrap()
            .max_attempts(),
        MAX_ATTEMPTS
    );

    let key = "drop/My Story (1).txt";
    assert!(store.head(key).await.unwrap().is_none());
    assert!(matches!(
        store.get(key, 100).await,
        Err(StoreError::NotFound { .. })
    ));
    store
        .put(key, b"Title\n\nBody.".to_vec(), "text/plain")
        .await
        .unwrap();
    assert_eq!(store.get(key, 100).await.unwrap(), b"Title\n\nBody.");
    let e = store.get(key, 5).await.unwrap_err();
    assert!(
        matches!(
            e,
            StoreError::TooLarge {
                bytes: 12,
                max: 5,
                ..
            }
        ),
        "{e}"
    );
    let info = store.head(key).await.unwrap().unwrap();
    assert_eq!(info.bytes, 12);
    assert!(!info.etag.is_empty() && !info.etag.contains('"'));
    store.copy(key, "jobs/j 1/story.txt").await.unwrap();
    assert!(matches!(
        store.copy("drop/none.txt", "x/y").await,
        Err(StoreError::NotFound { key, .. }) if key == "drop/none.txt"
    ));
    let keys: Vec<String> = store
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, [key, "jobs/j 1/story.txt"]);

    // Multipart upload of a file above the threshold, and a download of it.
    let dir = support::tempdir();
    let big = noise(12 << 20, 7);
    let path = dir.path().join("big.bin");
    std::fs::write(&path, &big).unwrap();
    store
        .put_file("tmp/j/video.mp4", &path, "video/mp4")
        .await
        .unwrap();
    let info = store.head("tmp/j/video.mp4").await.unwrap().unwrap();
    assert_eq!(info.bytes, big.len() as u64);
    assert!(
        info.etag.ends_with("-3"),
        "a 12 MiB file in 5 MiB parts is a 3-part upload: {}",
        info.etag
    );
    let back = dir.path().join("back.bin");
    store.get_file("tmp/j/video.mp4", &back).await.unwrap();
    assert!(std::fs::read(&back).unwrap() == big);
    // A small file is one PutObject.
    std::fs::write(dir.path().join("small.bin"), b"small").unwrap();
    store
        .put_file("tmp/j/small.bin", &dir.path().join("small.bin"), "x/y")
        .await
        .unwrap();
    assert_eq!(store.get("tmp/j/small.bin", 10).await.unwrap(), b"small");

    // Ranged reads through the block cache, from a blocking thread as the demuxer does.
    let reader = store.reader("tmp/j/video.mp4").await.unwrap();
    let expected = big.clone();
    tokio::task::spawn_blocking(move || {
        assert_eq!(reader.len().unwrap(), expected.len() as u64);
        for (offset, len) in [
            (0u64, 8usize),
            (1_048_570, 20),
            (5 << 20, 3 << 20),
            ((12 << 20) - 5, 5),
            (3_000_000, 1),
            (1_048_570, 20),
        ] {
            let mut buf = vec![0u8; len];
            reader.read_exact_at(offset, &mut buf).unwrap();
            assert!(
                buf == expected[offset as usize..offset as usize + len],
                "bytes {offset}+{len}"
            );
        }
        let mut buf = [0u8; 10];
        let e = reader.read_exact_at((12 << 20) - 5, &mut buf).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("s3://media/tmp/j/video.mp4"), "{e}");
    })
    .await
    .unwrap();

    // A pre-signed link downloads with plain curl (issue #6, done when 2).
    let link = store.link("jobs/j 1/story.txt", 3600).await.unwrap();
    assert!(link.starts_with(&moto.endpoint()), "path-style: {link}");
    assert!(link.contains("X-Amz-Expires=3600"), "{link}");
    let out = dir.path().join("curl.txt");
    support::run(std::process::Command::new(support::tool("curl")).args([
        "-sS".as_ref(),
        "-f".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        link.as_ref(),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), b"Title\n\nBody.");
    // Expiry is bounded by SigV4's seven days.
    let long = store
        .link("jobs/j 1/story.txt", 30 * 24 * 3600)
        .await
        .unwrap();
    assert!(long.contains("X-Amz-Expires=604800"), "{long}");

    // delete_prefix removes a "directory", not its prefix-siblings.
    store
        .put("tmp/jx/keep", b"k".to_vec(), "x/y")
        .await
        .unwrap();
    store.delete_prefix("tmp/j").await.unwrap();
    let keys: Vec<String> = store
        .list("tmp/")
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert_eq!(keys, ["tmp/jx/keep"]);
    store.delete_prefix("nothing/here").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_library_add_list_use_remove() {
    let moto = Moto::start();
    let conf = moto.config().await;
    let store = new_bucket(&conf, "media").await;
    let dir = support::tempdir();
    let h264 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "30"];
    let clip = support::testsrc_video(dir.path(), "parkour.mp4", (320, 240), 30, 12.0, &h264);
    let short = support::testsrc_video(dir.path(), "short.mp4", (320, 240), 30, 3.0, &h264);
    // Not a video at all (MPEG-4 Part 2 is now decoded where FFmpeg is installed, issue 15).
    let garbage = support::write(dir.path(), "garbage.mp4", vec![0x5a; 4096]);

    let tags = ["Parkour".to_string(), "test".to_string()];
    let meta = backgrounds::add(&store, &clip, &tags, backgrounds::MIN_DURATION_MS)
        .await
        .unwrap();
    assert_eq!(meta.tags, ["parkour", "test"]);
    // Issue 15: the stored file is the prepared 9:16 crop at 30 fps; `source` is the clip.
    assert_eq!((meta.width, meta.height), (136, 240));
    assert_eq!((meta.source.width, meta.source.height), (320, 240));
    assert!((meta.duration_ms as i64 - 12_000).abs() <= 50, "{meta:?}");
    assert_eq!(meta.fps, 30.0);
    assert!((meta.source.fps - 30.0).abs() < 0.1, "{meta:?}");
    assert_eq!(meta.codec, "h264");
    assert_eq!(meta.source.bytes, std::fs::metadata(&clip).unwrap().len());
    let stored = store.head(&meta.key).await.unwrap().unwrap();
    assert_eq!(meta.bytes, stored.bytes);
    assert_eq!(meta.key, format!("backgrounds/{}.mp4", meta.id));
    assert_eq!(meta.original_name, "parkour.mp4");

    // Refused before anything is stored, naming the file and the reason.
    let e = backgrounds::add(&store, &short, &[], backgrounds::MIN_DURATION_MS)
        .await
        .unwrap_err();
    let text = chain(&e);
    assert!(
        text.contains("short.mp4") && text.contains("lasts 3.0 s"),
        "{text}"
    );
    let e = backgrounds::add(&store, &garbage, &[], backgrounds::MIN_DURATION_MS)
        .await
        .unwrap_err();
    assert!(
        matches!(e, LibraryError::Undecodable { .. }),
        "{}",
        chain(&e)
    );
    assert!(chain(&e).contains("garbage.mp4"), "{}", chain(&e));
    let e = backgrounds::add(&store, &clip, &["no spaces".into()], 0)
        .await
        .unwrap_err();
    assert!(matches!(e, LibraryError::InvalidTag { .. }));
    assert_eq!(store.list("backgrounds/").await.unwrap().len(), 2);

    // Listed, by tag too.
    let all = backgrounds::list(&store, None).await.unwrap();
    assert_eq!(all, std::slice::from_ref(&meta));
    assert_eq!(
        backgrounds::list(&store, Some("parkour"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        backgrounds::list(&store, Some("subway"))
            .await
            .unwrap()
            .is_empty()
    );

    // Used by a job: picked by tag, then opened through ranged reads as render-chunk does, and
    // decoded to the same pictures as a local copy of the stored file.
    let picked =
        backgrounds::pick_background(&all, &BackgroundSelector::Tag("parkour".into()), 42).unwrap();
    assert_eq!(picked.id, meta.id);
    let choice = backgrounds::choice(picked, None);
    let reader = store.reader(&choice.key).await.unwrap();
    let name = choice.key.clone();
    let local = dir.path().join("stored.mp4");
    store.get_file(&choice.key, &local).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut remote = VideoBackground::open(reader, &name).unwrap();
        let mut local = VideoBackground::open_file(&local).unwrap();
        assert_eq!(remote.duration_ms(), local.duration_ms());
        let scale = i64::from(remote.track().timescale);
        for ms in [0i64, 5_000, 11_500, 2_000] {
            let ticks = ms * scale / 1000;
            let a = remote.draw(ticks, 108, 192).unwrap();
            let (y, u, v) = (a.y.clone(), a.u.clone(), a.v.clone());
            let b = local.draw(ticks, 108, 192).unwrap();
            assert!(
                y == b.y && u == b.u && v == b.v,
                "picture at {ms} ms differs"
            );
        }
    })
    .await
    .unwrap();

    // Removed: gone from the catalog and the bucket.
    let removed = backgrounds::remove(&store, &meta.id).await.unwrap();
    assert_eq!(removed.id, meta.id);
    assert!(backgrounds::list(&store, None).await.unwrap().is_empty());
    assert!(store.head(&meta.key).await.unwrap().is_none());
    let e = backgrounds::remove(&store, &meta.id).await.unwrap_err();
    assert!(matches!(e, LibraryError::UnknownId { .. }));
    assert!(e.to_string().contains(&meta.id), "{e}");
}

/// The S3 "Object Created" event as S3 sends it through EventBridge.
fn object_created(bucket: &str, key: &str, size: u64, etag: &str) -> Value {
    json!({
        "version": "0",
        "id": "17793124-05d4-b198-2fde-7ededc63b103",
        "detail-type": "Object Created",
        "source": "aws.s3",
        "account": ACCOUNT,
        "time": "2026-01-01T00:00:00Z",
        "region": REGION,
        "resources": [format!("arn:aws:s3:::{bucket}")],
        "detail": {
            "version": "0",
            "bucket": {"name": bucket},
            "object": {"key": triggers::encode_event_key(key), "size": size, "etag": etag},
            "request-id": "N4N7GDK58NMKJ12R",
            "requester": ACCOUNT,
            "reason": "PutObject"
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_event_delivered_twice_makes_one_job() {
    let moto = Moto::start();
    let conf = moto.config().await;
    let store = new_bucket(&conf, "media").await;
    let jobs = new_table(&conf, "jobs").await;

    // The drop rule of template.yaml, routed to a queue (moto answers 500 for state machine
    // targets of put_events).
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let queue = sqs.create_queue().queue_name("drops").send().await.unwrap();
    let queue_url = queue.queue_url().unwrap().to_string();
    let queue_arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:drops");
    let events = aws_sdk_eventbridge::Client::new(&conf);
    let pattern = json!({
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {"bucket": {"name": ["media"]}, "object": {"key": [{"prefix": "drop/"}]}}
    });
    events
        .put_rule()
        .name("storyreel-drop")
        .event_pattern(pattern.to_string())
        .send()
        .await
        .unwrap();
    events
        .put_targets()
        .rule("storyreel-drop")
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();

    let key = "drop/the-cake.txt";
    store
        .put(
            key,
            b"The cake\n\nI baked a cake for my sister's wedding and she hated it.".to_vec(),
            "text/plain",
        )
        .await
        .unwrap();
    let info = store.head(key).await.unwrap().unwrap();
    let event = object_created("media", key, info.bytes, &info.etag);
    // S3 (at least once) delivers the same event twice; an upload elsewhere does not match.
    let outside = object_created("media", "out/x.txt", 1, "e");
    for e in [&event, &event, &outside] {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .source("aws.s3")
            .detail_type("Object Created")
            .detail(e["detail"].to_string())
            .resources("arn:aws:s3:::media")
            .build();
        let out = events.put_events().entries(entry).send().await.unwrap();
        assert_eq!(out.failed_entry_count(), 0);
    }
    let mut delivered: Vec<Value> = Vec::new();
    for _ in 0..20 {
        let got = sqs
            .receive_message()
            .queue_url(&queue_url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in got.messages() {
            delivered.push(serde_json::from_str(m.body().unwrap()).unwrap());
        }
        if delivered.len() >= 2 {
            break;
        }
    }
    assert_eq!(delivered.len(), 2, "{delivered:?}");

    // Each delivery runs the story step under its own execution: one job.
    let mut outputs = Vec::new();
    let drop_publish = storyreel::publishing::parse_destinations("youtube:main").unwrap();
    for (i, e) in delivered.into_iter().enumerate() {
        assert_eq!(e["detail"]["object"]["key"], key);
        let out = storyreel::steps::story(
            StoryInput {
                request: e,
                execution: format!("drop-{i}"),
            },
            &store,
            &jobs,
            None,
            // The stack's DropPublish: every dropped story's job publishes there.
            &drop_publish,
        )
        .await
        .unwrap_or_else(|e| panic!("{}", e.chain()));
        assert_eq!(out.job.publish, drop_publish);
        outputs.push(out);
    }
    assert!(!outputs[0].duplicate);
    assert!(outputs[1].duplicate, "the second delivery is a duplicate");
    assert_eq!(outputs[0].job.job_id, outputs[1].job.job_id);
    let list = jobs.list(10).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].source, "drop");
    assert_eq!(list[0].source_detail, key);
    assert_eq!(list[0].execution, "drop-0");
    let story = store.get(&outputs[0].job.story_key, 1000).await.unwrap();
    assert!(
        String::from_utf8(story)
            .unwrap()
            .starts_with("The cake\n\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamo_jobs_mirror_the_local_job_table() {
    let moto = Moto::start();
    let conf = moto.config().await;
    let jobs = new_table(&conf, "jobs").await;
    assert_eq!(
        jobs.client()
            .config()
            .retry_config()
            .unwrap()
            .max_attempts(),
        MAX_ATTEMPTS
    );
    let mut first = JobRecord::new("j1", "e1", "text", "", Some("One".into()));
    first.created_at -= 10;
    let (stored, created) = jobs.create(&first).await.unwrap();
    assert!(created);
    assert_eq!(stored, first);
    let other = JobRecord::new("j1", "e2", "drop", "drop/x.txt", None);
    let (existing, created) = jobs.create(&other).await.unwrap();
    assert!(!created, "creation is conditional");
    assert_eq!(existing.execution, "e1");

    jobs.update("j1", JobUpdate::Step("Narrate".into()))
        .await
        .unwrap();
    jobs.update("j1", JobUpdate::ChunksTotal(3)).await.unwrap();
    for i in [0, 2, 2, 0, 1] {
        jobs.update("j1", JobUpdate::ChunkDone(i)).await.unwrap();
    }
    let j = jobs.get("j1").await.unwrap().unwrap();
    assert_eq!(j.chunks_done, [0, 1, 2].into());
    assert_eq!(j.chunks_total, 3);
    assert_eq!(j.step, "Narrate");

    let failure = JobFailure {
        step: "Merge".into(),
        error: "Fatal".into(),
        cause: "merge: disk full".into(),
    };
    jobs.update("j1", JobUpdate::Failed(failure.clone()))
        .await
        .unwrap();
    let j = jobs.get("j1").await.unwrap().unwrap();
    assert_eq!((j.status, j.step.as_str()), (JobStatus::Failed, "Merge"));
    assert_eq!(j.error, Some(failure));
    let outputs = JobOutputs {
        video: "out/j1/video.mp4".into(),
        link: "https://example/x".into(),
        ..Default::default()
    };
    jobs.update("j1", JobUpdate::Succeeded(outputs.clone()))
        .await
        .unwrap();
    let j = jobs.get("j1").await.unwrap().unwrap();
    assert_eq!(j.status, JobStatus::Succeeded);
    assert_eq!(j.step, "Done");
    assert_eq!(j.error, None);
    assert_eq!(j.outputs, Some(outputs));

    // The same semantics as the local table, update by update.
    let mut local = first.clone();
    for u in [
        JobUpdate::Step("Narrate".into()),
        JobUpdate::ChunksTotal(3),
        JobUpdate::ChunkDone(0),
        JobUpdate::ChunkDone(1),
        JobUpdate::ChunkDone(2),
    ] {
        storyreel::jobs::apply(&mut local, u);
    }
    assert_eq!(local.chunks_done, [0, 1, 2].into());

    // Expiry: the TTL attribute is written (moto stores TTL but never applies it).
    let item = jobs
        .client()
        .get_item()
        .table_name("jobs")
        .key(
            "job_id",
            aws_sdk_dynamodb::types::AttributeValue::S("j1".into()),
        )
        .send()
        .await
        .unwrap();
    let expires: u64 = item.item().unwrap()["expires_at"]
        .as_n()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        expires,
        first.created_at + storyreel::cloud::dynamo::DEFAULT_TTL_SECS
    );

    jobs.create(&JobRecord::new("j2", "e", "prompt", "p", None))
        .await
        .unwrap();
    let list = jobs.list(10).await.unwrap();
    let ids: Vec<&str> = list.iter().map(|j| j.job_id.as_str()).collect();
    assert_eq!(ids, ["j2", "j1"], "newest first");
    assert_eq!(jobs.list(1).await.unwrap().len(), 1);
    assert!(jobs.get("nope").await.unwrap().is_none());
    assert!(matches!(
        jobs.update("nope", JobUpdate::ChunkDone(0)).await,
        Err(JobError::NotFound(id)) if id == "nope"
    ));
}

fn channel_spec() -> ChannelSpec {
    ChannelSpec {
        name: "aita-daily".into(),
        schedule: "rate(6 hours)".into(),
        prompt: "A wedding disaster, told by the <best> man".into(),
        seconds: Some(50),
        style: None,
        voice: VoiceOptions {
            engine: "polly-neural".into(),
            voice: "Matthew".into(),
            rate: None,
        },
        background: None,
        card: Some("r/AITA".into()),
        publish: {
            let mut yt = storyreel_publish::Destination::parse("youtube:main").unwrap();
            yt.privacy = storyreel_publish::youtube::Privacy::Unlisted;
            yt.hashtags = vec!["aita".into()];
            vec![
                yt,
                storyreel_publish::Destination::parse("tiktok:main").unwrap(),
            ]
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channel_created_listed_paused_and_removed() {
    let moto = Moto::start();
    let conf = moto.config().await;
    let sfn_client = aws_sdk_sfn::Client::new(&conf);
    let sm = sfn_client
        .create_state_machine()
        .name("video")
        .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/sfn"))
        .send()
        .await
        .unwrap();
    let sm_arn = sm.state_machine_arn().to_string();
    let role = format!("arn:aws:iam::{ACCOUNT}:role/storyreel-channels");
    let channels = Channels::new(&conf);
    let spec = channel_spec();

    // Refused locally: no rule is made.
    let mut bad = spec.clone();
    bad.schedule = "every 6 hours".into();
    let e = channels.create(&bad, &sm_arn, &role).await.unwrap_err();
    assert!(matches!(e, ChannelError::InvalidSchedule { .. }), "{e}");
    assert!(channels.list().await.unwrap().is_empty());

    assert!(channels.create(&spec, &sm_arn, &role).await.unwrap());
    assert!(
        !channels.create(&spec, &sm_arn, &role).await.unwrap(),
        "a second create updates"
    );

    // The rule targets the state machine with the channel's input.
    let events = channels.client();
    let rule = events
        .describe_rule()
        .name("storyreel-channel-aita-daily")
        .send()
        .await
        .unwrap();
    assert_eq!(rule.schedule_expression(), Some("rate(6 hours)"));
    let targets = events
        .list_targets_by_rule()
        .rule("storyreel-channel-aita-daily")
        .send()
        .await
        .unwrap();
    let [target] = targets.targets() else {
        panic!("expected one target: {:?}", targets.targets());
    };
    assert_eq!(target.arn(), sm_arn);
    assert_eq!(target.role_arn(), Some(role.as_str()));
    let transformer = target.input_transformer().unwrap();
    assert_eq!(
        transformer.input_paths_map().unwrap(),
        &HashMap::from([("time".to_string(), "$.time".to_string())])
    );
    // A tick, as EventBridge's input transformer renders it (moto never fires schedules).
    let tick = transformer
        .input_template()
        .replace("<time>", "\"2026-01-01T06:00:00Z\"");
    let request: JobRequest = serde_json::from_str(&tick).unwrap();
    assert_eq!(
        request.story.prompt.as_deref(),
        Some("A wedding disaster, told by the <best> man")
    );
    assert_eq!(request.story.seconds, Some(50));
    assert_eq!(request.voice.voice, "Matthew");
    assert_eq!(request.channel.as_deref(), Some("r/AITA"));
    let trigger = request.trigger.unwrap();
    assert_eq!(
        (trigger.channel.as_str(), trigger.time.as_str()),
        ("aita-daily", "2026-01-01T06:00:00Z")
    );
    // Issue 14: every tick carries the channel's destinations, privacy explicit.
    assert_eq!(request.publish, spec.publish);
    let raw: serde_json::Value = serde_json::from_str(&tick).unwrap();
    assert_eq!(raw["publish"][0]["platform"], "youtube");
    assert_eq!(raw["publish"][0]["account"], "main");
    assert_eq!(raw["publish"][0]["privacy"], "unlisted");
    assert_eq!(raw["publish"][1]["platform"], "tiktok");
    assert_eq!(raw["publish"][1]["privacy"], "private");

    let list = channels.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "aita-daily");
    assert!(list[0].enabled);
    assert_eq!(list[0].target.as_deref(), Some(sm_arn.as_str()));
    assert_eq!(
        list[0].request.as_ref().unwrap()["story"]["prompt"],
        "A wedding disaster, told by the <best> man"
    );

    channels.pause("aita-daily").await.unwrap();
    assert!(!channels.get("aita-daily").await.unwrap().enabled);
    channels.resume("aita-daily").await.unwrap();
    assert!(channels.get("aita-daily").await.unwrap().enabled);

    // A channel with a background tag carries the selector for the story step.
    let mut tagged = spec.clone();
    tagged.name = "parkour".into();
    tagged.background = Some(BackgroundSelector::Tag("parkour".into()));
    channels.create(&tagged, &sm_arn, &role).await.unwrap();
    let c = channels.get("parkour").await.unwrap();
    assert_eq!(
        c.request.unwrap()[channels::BACKGROUND_SELECTOR_FIELD],
        json!({"tag": "parkour"})
    );

    channels.remove("aita-daily").await.unwrap();
    channels.remove("parkour").await.unwrap();
    assert!(channels.list().await.unwrap().is_empty());
    let e = channels.remove("aita-daily").await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "channel \"aita-daily\" not found (no EventBridge rule \"storyreel-channel-aita-daily\")"
    );
    let e = channels.pause("nope").await.unwrap_err();
    assert!(matches!(e, ChannelError::NotFound { .. }), "{e}");
}

/// The product's definition with each Lambda in its own region, so each reads its own FIFO of
/// canned results in moto.
fn video_definition() -> (String, Vec<(&'static str, &'static str)>) {
    let steps = [
        ("StoryFunctionArn", "us-east-2"),
        ("SpeechFunctionArn", "us-west-1"),
        ("MarksFunctionArn", "us-west-2"),
        ("RenderChunkFunctionArn", "eu-west-1"),
        ("MergeFunctionArn", "eu-west-2"),
        ("PublishFunctionArn", "eu-central-1"),
    ];
    let mut definition = storyreel::workflow::DEFINITION.to_string();
    for (sub, region) in steps {
        let name = sub.trim_end_matches("Arn");
        definition = definition.replace(
            &format!("${{{sub}}}"),
            &format!("arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"),
        );
    }
    (definition, steps.to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloud_run_started_and_followed_to_completion() {
    let moto = Moto::start();
    moto.execute_state_machines();
    let conf = moto.config().await;
    let jobs = new_table(&conf, "jobs").await;
    let (definition, steps) = video_definition();
    let sfn_client = aws_sdk_sfn::Client::new(&conf);
    let sm = sfn_client
        .create_state_machine()
        .name("video")
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/sfn"))
        .send()
        .await
        .unwrap();
    let sm_arn = sm.state_machine_arn().to_string();

    let mut request = JobRequest {
        story: StorySource {
            text: Some("A tale\n\nOnce upon a time.".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let job_id = sfn::job_id_for(&request, "");
    request.job_id = Some(job_id.clone());
    sfn::check_request(&request).unwrap();
    let link = format!("https://media.example/out/{job_id}/video.mp4?X-Amz-Signature=x");

    // Canned step results, shaped like the steps' outputs.
    let job = json!({"job_id": job_id, "title": "A tale", "story_key": format!("jobs/{job_id}/story.txt"),
        "render": {"max_concurrency": 2}});
    let results = [
        json!({"job": job, "duplicate": false}),
        json!({"cache": "c", "audio_key": "narration/c/audio.wav", "duration_ms": 4000, "frames": 135,
               "chunks": [{"index": 0, "start": 0, "end": 90}, {"index": 1, "start": 90, "end": 135}]}),
        json!({"cache": "c", "marks_key": "narration/c/marks.json"}),
        json!({"index": 0, "key": "tmp/j/chunks/p/00000.h264"}),
        json!({"video_key": format!("tmp/{job_id}/video.mp4")}),
        json!({"job_id": job_id, "status": "succeeded", "error": null,
               "outputs": {"video": format!("out/{job_id}/video.mp4"), "srt": "s", "vtt": "v",
                           "thumbnail": "t", "link": link}}),
    ];
    for ((_, region), result) in steps.iter().zip(&results) {
        // Render chunk runs once per chunk; its two invocations share one result.
        let copies = if *region == "eu-west-1" { 2 } else { 1 };
        moto.queue_lambda_results(region, &vec![result.to_string(); copies]);
    }
    // What the steps would have recorded (canned Lambdas write nothing).
    let mut record = JobRecord::new(&job_id, &job_id, "text", "", Some("A tale".into()));
    record.chunks_total = 2;
    jobs.create(&record).await.unwrap();
    jobs.update(&job_id, JobUpdate::Step("Render chunks".into()))
        .await
        .unwrap();
    jobs.update(&job_id, JobUpdate::ChunkDone(1)).await.unwrap();

    let runs = CloudRuns::new(&conf, &sm_arn);
    let input = serde_json::to_value(&request).unwrap();
    let started = runs.start(&job_id, &input).await.unwrap();
    assert!(!started.existed);
    assert_eq!(
        started.execution_arn,
        sfn::execution_arn(&sm_arn, &job_id).unwrap()
    );
    let mut seen = Vec::new();
    let (exec, rec) = runs
        .follow(
            &started.execution_arn,
            Some(&job_id),
            Some(&jobs),
            Duration::from_millis(100),
            &mut |p| seen.push(p.clone()),
        )
        .await
        .unwrap();
    assert_eq!(exec.status, "SUCCEEDED", "{exec:?}");
    assert_eq!(
        seen.first()
            .map(|p| (p.step.clone(), p.chunks_done, p.chunks_total)),
        Some((Some("Render chunks".into()), 1, 2)),
        "{seen:?}"
    );
    let outcome = sfn::outcome(&exec, rec);
    assert!(outcome.succeeded, "{outcome:?}");
    assert_eq!(outcome.link.as_deref(), Some(link.as_str()));
    assert_eq!(outcome.job_id.as_deref(), Some(job_id.as_str()));

    // The same request again follows the same execution instead of starting another.
    let again = runs.start(&job_id, &input).await.unwrap();
    assert_eq!(again.execution_arn, started.execution_arn);
    let (exec, _) = runs
        .follow(
            &again.execution_arn,
            None,
            None,
            Duration::from_millis(100),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(exec.status, "SUCCEEDED");
    let listed = sfn_client
        .list_executions()
        .state_machine_arn(&sm_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.executions().len(), 1);

    // Errors name what is missing.
    let e = runs
        .describe(&sfn::execution_arn(&sm_arn, "nope").unwrap())
        .await
        .unwrap_err();
    assert!(matches!(e, RunError::NoExecution { .. }), "{}", chain(&e));
    let missing = format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:missing");
    let e = CloudRuns::new(&conf, &missing)
        .start("x", &json!({}))
        .await
        .unwrap_err();
    assert!(
        matches!(e, RunError::NoStateMachine { .. }) && e.to_string().contains(&missing),
        "{}",
        chain(&e)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_bucket_and_table_are_named() {
    let moto = Moto::start();
    let conf = moto.config().await;
    let store = S3Store::new(&conf, "no-such-bucket");
    for e in [
        store.get("a.txt", 10).await.unwrap_err(),
        store.head("a.txt").await.unwrap_err(),
        store.put("a.txt", b"x".to_vec(), "t").await.unwrap_err(),
        store.list("").await.unwrap_err(),
    ] {
        let text = chain(&e);
        assert!(
            text.contains("bucket \"no-such-bucket\" does not exist")
                && text.contains("STORYREEL_BUCKET"),
            "{text}"
        );
        assert!(!e.is_retryable());
    }
    let jobs = DynamoJobs::new(&conf, "no-such-table");
    let e = jobs.get("j").await.unwrap_err();
    let text = chain(&e);
    assert!(
        text.contains("job table \"no-such-table\" does not exist")
            && text.contains("STORYREEL_TABLE"),
        "{text}"
    );
    let e = jobs
        .create(&JobRecord::new("j", "e", "text", "", None))
        .await
        .unwrap_err();
    assert!(chain(&e).contains("does not exist"), "{}", chain(&e));
    // And the step sees them as fatal, not retryable.
    let e = storyreel::steps::story(
        StoryInput {
            request: json!({"story": {"text": "Title\n\nBody of the story."}}),
            execution: "x".into(),
        },
        &store,
        &jobs,
        None,
        &[],
    )
    .await
    .unwrap_err();
    assert_eq!(e.name.as_str(), "Fatal", "{}", e.chain());
    assert!(e.chain().contains("no-such-table"), "{}", e.chain());
}

/// One scripted HTTP answer.
#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, String)>,
    body: String,
}

/// A loopback HTTP server that answers with a script (the last answer repeats) and counts
/// requests: the answers moto cannot give (403, throttling).
struct Scripted {
    port: u16,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Scripted {
    fn start(script: Vec<Reply>) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (requests.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if halt.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let n = count.fetch_add(1, Ordering::Relaxed);
                let reply = script[n.min(script.len() - 1)].clone();
                let _ = Self::answer(&mut stream, &reply);
            }
        });
        Scripted {
            port,
            requests,
            stop,
        }
    }

    fn answer(stream: &mut TcpStream, reply: &Reply) -> std::io::Result<()> {
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if stream.read(&mut byte)? == 0 {
                return Ok(());
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).to_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        stream.read_exact(&mut body)?;
        let mut extra = String::new();
        for (k, v) in &reply.headers {
            extra.push_str(&format!("{k}: {v}\r\n"));
        }
        write!(
            stream,
            "HTTP/1.1 {} X\r\nContent-Type: {}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n{}",
            reply.status,
            reply.content_type,
            reply.body.len(),
            reply.body
        )?;
        stream.flush()
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::Relaxed)
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn s3_error(status: u16, code: &str) -> Reply {
    Reply {
        status,
        content_type: "application/xml",
        headers: vec![],
        body: format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>\
             <Message>{code} from the test server</Message><RequestId>R</RequestId></Error>"
        ),
    }
}

fn dynamo_error(code: &str) -> Reply {
    Reply {
        status: 400,
        content_type: "application/x-amz-json-1.0",
        headers: vec![],
        body: json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{code}"),
                     "message": format!("{code} from the test server")})
        .to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_denied_is_named_and_throttling_is_retried() {
    // S3: access denied is not retried, and says which object.
    let server = Scripted::start(vec![s3_error(403, "AccessDenied")]);
    let store = S3Store::new(&config_for(&server.endpoint()).await, "media");
    let e = store.get("out/j/video.mp4", 100).await.unwrap_err();
    assert!(
        matches!(e, StoreError::AccessDenied { .. }),
        "{}",
        chain(&e)
    );
    let text = chain(&e);
    assert!(
        text.starts_with("access denied to \"out/j/video.mp4\" in s3://media")
            && text.contains("AccessDenied"),
        "{text}"
    );
    assert_eq!(server.requests(), 1);

    // S3: SlowDown twice, then the object: the SDK's retries absorb it.
    let ok = Reply {
        status: 200,
        content_type: "text/plain",
        headers: vec![("ETag", "\"abc\"".into())],
        body: "hello".into(),
    };
    let server = Scripted::start(vec![
        s3_error(503, "SlowDown"),
        s3_error(503, "SlowDown"),
        ok,
    ]);
    let store = S3Store::new(&config_for(&server.endpoint()).await, "media");
    assert_eq!(store.get("a.txt", 100).await.unwrap(), b"hello");
    assert_eq!(server.requests(), 3);

    // DynamoDB: throughput exceeded twice, then the item.
    let item = Reply {
        status: 200,
        content_type: "application/x-amz-json-1.0",
        headers: vec![],
        body: json!({"Item": {"job_id": {"S": "j1"}, "status": {"S": "running"},
            "step": {"S": "Story"}, "created_at": {"N": "1"}, "updated_at": {"N": "1"}}})
        .to_string(),
    };
    let server = Scripted::start(vec![
        dynamo_error("ProvisionedThroughputExceededException"),
        dynamo_error("ThrottlingException"),
        item,
    ]);
    let jobs = DynamoJobs::new(&config_for(&server.endpoint()).await, "jobs");
    let job = jobs.get("j1").await.unwrap().unwrap();
    assert_eq!(job.step, "Story");
    assert_eq!(server.requests(), 3);

    // DynamoDB: access denied names the table.
    let server = Scripted::start(vec![dynamo_error("AccessDeniedException")]);
    let jobs = DynamoJobs::new(&config_for(&server.endpoint()).await, "jobs");
    let e = jobs.get("j1").await.unwrap_err();
    assert!(
        chain(&e).contains("access denied to job table \"jobs\""),
        "{}",
        chain(&e)
    );
    assert!(!e.is_retryable());
    assert_eq!(server.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_that_persists_is_retryable_after_the_sdk_gives_up() {
    let server = Scripted::start(vec![s3_error(503, "SlowDown")]);
    let store = S3Store::new(&config_for(&server.endpoint()).await, "media");
    let e = store.get("a.txt", 100).await.unwrap_err();
    assert!(matches!(e, StoreError::Unavailable { .. }), "{}", chain(&e));
    assert!(e.is_retryable());
    assert!(
        chain(&e).contains("s3://media is throttling"),
        "{}",
        chain(&e)
    );
    assert_eq!(server.requests(), MAX_ATTEMPTS as usize);

    let server = Scripted::start(vec![dynamo_error("RequestLimitExceeded")]);
    let jobs = DynamoJobs::new(&config_for(&server.endpoint()).await, "jobs");
    let e = jobs
        .update("j1", JobUpdate::ChunkDone(0))
        .await
        .unwrap_err();
    assert!(matches!(e, JobError::Unavailable { .. }), "{}", chain(&e));
    assert!(e.is_retryable());
    assert!(
        chain(&e).contains("job table jobs is throttling"),
        "{}",
        chain(&e)
    );
    assert_eq!(server.requests(), MAX_ATTEMPTS as usize);
}

/// `storyreel` with no AWS configuration from the environment or files.
fn storyreel_cli() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_storyreel"));
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") || k.starts_with("STORYREEL_") {
            c.env_remove(k);
        }
    }
    c.env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            "/nonexistent/aws-credentials",
        )
        .env("AWS_EC2_METADATA_DISABLED", "true");
    c
}

/// `storyreel` configured for `moto` the standard way: `AWS_ENDPOINT_URL`, region, keys and
/// the stack's names in the environment.
fn storyreel_on(moto: &Moto) -> std::process::Command {
    let mut c = storyreel_cli();
    c.env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_REGION", REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("STORYREEL_BUCKET", "media")
        .env("STORYREEL_TABLE", "jobs");
    c
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn cli_background_library_in_a_local_directory_needs_no_aws() {
    let dir = support::tempdir();
    let store = dir.path().join("store");
    let clip = support::testsrc_video(
        dir.path(),
        "clip.mp4",
        (320, 240),
        30,
        11.0,
        &["-c:v", "libx264", "-preset", "veryfast"],
    );
    let out = support::run(
        storyreel_cli()
            .args(["backgrounds", "add"])
            .arg(&clip)
            .args(["--tag", "Minecraft", "--dir"])
            .arg(&store),
    );
    let id = stdout(&out).trim().to_string();
    backgrounds::check_id(&id).unwrap();
    assert!(store.join(format!("backgrounds/{id}.mp4")).is_file());
    let out = support::run(
        storyreel_cli()
            .args([
                "backgrounds",
                "list",
                "--json",
                "--tag",
                "minecraft",
                "--dir",
            ])
            .arg(&store),
    );
    let list: Vec<backgrounds::BackgroundMeta> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id, id);
    support::run(
        storyreel_cli()
            .args(["backgrounds", "rm", &id, "--dir"])
            .arg(&store),
    );
    let out = support::run(
        storyreel_cli()
            .args(["backgrounds", "list", "--json", "--dir"])
            .arg(&store),
    );
    assert_eq!(stdout(&out).trim(), "[]");
    // Without a bucket or a directory, the error says what to set.
    let out = storyreel_cli()
        .args(["backgrounds", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("STORYREEL_BUCKET") && err.contains("--dir"),
        "{err}"
    );
    // A bad schedule is refused before any AWS configuration is read.
    let out = storyreel_cli()
        .args(["channel", "create", "daily", "--schedule", "every day"])
        .args(["--prompt", "a story"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid schedule \"every day\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_against_moto() {
    let moto = Moto::start();
    let conf = moto.config().await;
    let store = new_bucket(&conf, "media").await;
    let jobs = new_table(&conf, "jobs").await;
    let dir = support::tempdir();
    let clip = support::testsrc_video(
        dir.path(),
        "clip.mp4",
        (320, 240),
        30,
        11.0,
        &["-c:v", "libx264", "-preset", "veryfast"],
    );

    // Backgrounds in the bucket, path-style through AWS_ENDPOINT_URL.
    let out = support::run(
        storyreel_on(&moto)
            .args(["backgrounds", "add"])
            .arg(&clip)
            .args(["--tag", "parkour"]),
    );
    let id = stdout(&out).trim().to_string();
    assert!(
        store
            .head(&format!("backgrounds/{id}.mp4"))
            .await
            .unwrap()
            .is_some()
    );
    let out = support::run(storyreel_on(&moto).args(["backgrounds", "list"]));
    assert!(stdout(&out).contains(&id) && stdout(&out).contains("parkour"));
    let out = storyreel_on(&moto)
        .args(["backgrounds", "list", "--bucket", "nope"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bucket \"nope\" does not exist"), "{err}");

    // Jobs and a job's status, with a fresh link that downloads.
    store
        .put(
            "out/j1/video.mp4",
            b"not really a video".to_vec(),
            "video/mp4",
        )
        .await
        .unwrap();
    jobs.create(&JobRecord::new("j1", "j1", "text", "", Some("Cake".into())))
        .await
        .unwrap();
    jobs.update(
        "j1",
        JobUpdate::Succeeded(JobOutputs {
            video: "out/j1/video.mp4".into(),
            link: "expired".into(),
            ..Default::default()
        }),
    )
    .await
    .unwrap();
    let out = support::run(storyreel_on(&moto).args(["cloud", "jobs"]));
    assert!(stdout(&out).contains("j1") && stdout(&out).contains("succeeded"));
    let out = support::run(storyreel_on(&moto).args(["cloud", "status", "j1"]));
    let text = stdout(&out);
    let link = text
        .lines()
        .find_map(|l| l.strip_prefix("link:"))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .trim();
    let got = support::run(std::process::Command::new(support::tool("curl")).args(["-sSf", link]));
    assert_eq!(got.stdout, b"not really a video");

    // A channel, through the stack's names in the environment.
    let sm_arn = aws_sdk_sfn::Client::new(&conf)
        .create_state_machine()
        .name("video")
        .definition(r#"{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}"#)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/sfn"))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    let channel = |args: &[&str]| {
        support::run(
            storyreel_on(&moto)
                .env("STORYREEL_STATE_MACHINE_ARN", &sm_arn)
                .env(
                    "STORYREEL_EVENTS_ROLE_ARN",
                    format!("arn:aws:iam::{ACCOUNT}:role/channels"),
                )
                .arg("channel")
                .args(args),
        )
    };
    channel(&[
        "create",
        "daily",
        "--schedule",
        "cron(0 12 * * ? *)",
        "--prompt",
        "a workplace story",
        "--background-tag",
        "parkour",
        "--publish",
        "youtube:main",
        "--publish",
        "tiktok:main",
        "--privacy",
        "unlisted",
    ]);
    // Issue 14: the rule's target input (what every tick starts) names the destinations.
    let targets = aws_sdk_eventbridge::Client::new(&conf)
        .list_targets_by_rule()
        .rule("storyreel-channel-daily")
        .send()
        .await
        .unwrap();
    let template = targets.targets()[0]
        .input_transformer()
        .unwrap()
        .input_template()
        .replace("<time>", "\"2026-12-24T12:00:00Z\"");
    let tick: Value = serde_json::from_str(&template).unwrap();
    assert_eq!(tick["publish"][0]["platform"], "youtube");
    assert_eq!(tick["publish"][0]["account"], "main");
    assert_eq!(tick["publish"][0]["privacy"], "unlisted");
    assert_eq!(tick["publish"][1]["platform"], "tiktok");
    let request: storyreel::steps::story::JobRequest = serde_json::from_value(tick).unwrap();
    assert_eq!(request.publish.len(), 2);
    let out = channel(&["list"]);
    assert!(stdout(&out).contains("daily") && stdout(&out).contains("active"));
    channel(&["pause", "daily"]);
    let out = channel(&["list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["enabled"], false);
    assert_eq!(list[0]["request"]["background_selector"]["tag"], "parkour");
    channel(&["rm", "daily"]);
    let out = channel(&["list", "--json"]);
    assert_eq!(stdout(&out).trim(), "[]");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_cloud_make_follows_the_run_to_its_link() {
    let moto = Moto::start();
    moto.execute_state_machines();
    let conf = moto.config().await;
    new_table(&conf, "jobs").await;
    let (definition, steps) = video_definition();
    let sm_arn = aws_sdk_sfn::Client::new(&conf)
        .create_state_machine()
        .name("video")
        .definition(definition)
        .role_arn(format!("arn:aws:iam::{ACCOUNT}:role/sfn"))
        .send()
        .await
        .unwrap()
        .state_machine_arn()
        .to_string();
    let link = "https://media.example/out/cli/video.mp4?X-Amz-Signature=x";
    let results = [
        json!({"job": {"job_id": "cli", "render": {"max_concurrency": 1}}, "duplicate": false}),
        json!({"chunks": [{"index": 0, "start": 0, "end": 90}]}),
        json!({"marks_key": "m"}),
        json!({"index": 0}),
        json!({"video_key": "v"}),
        json!({"job_id": "cli", "status": "succeeded", "outputs": {"link": link}}),
    ];
    for ((_, region), result) in steps.iter().zip(&results) {
        moto.queue_lambda_results(region, &[result.to_string()]);
    }
    let dir = support::tempdir();
    let story = support::write(dir.path(), "story.txt", "The cake\n\nI baked a cake.");
    let out = support::run(
        storyreel_on(&moto)
            .env("STORYREEL_STATE_MACHINE_ARN", &sm_arn)
            .args(["cloud", "make", "--story"])
            .arg(&story),
    );
    assert_eq!(stdout(&out).trim(), link);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("started job the-cake-"), "{err}");
    // The execution is named after the job.
    let listed = aws_sdk_sfn::Client::new(&conf)
        .list_executions()
        .state_machine_arn(&sm_arn)
        .send()
        .await
        .unwrap();
    assert!(listed.executions()[0].name().starts_with("the-cake-"));
}
