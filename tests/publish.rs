//! Publishing (issue 14) against loopback platforms that speak Google's, YouTube's and
//! TikTok's documented wire protocols (`storyreel-platforms`), never a mock of our client:
//! `make --publish` end to end, faults (a connection dropped at 40%, 503s, a kill after the
//! platform completed, the step run twice), deferral on quota and its later retry, a revoked
//! token, a forbidden thumbnail, and no token anywhere a person or a log could see it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use storyreel::jobs::{FsJobs, JobOutputs, JobRecord, JobStore, JobUpdate};
use storyreel::publishing::{PublishJob, Publishers};
use storyreel::store::{BlobStore, FsStore};
use storyreel_platforms::{Fault, Platforms};
use storyreel_publish::accounts::FsTokens;
use storyreel_publish::{
    Account, Destination, DestinationState, DestinationStatus, Endpoints, Platform, Secret,
    TokenStore,
};

use crate::support;

const STORY: &str = "The Lamp in the Window\n\nEvery night at nine the lamp across the street \
turned on. Nobody lived there. I checked with the landlord twice.";

/// A loopback platform with one connected account on each platform, in a config directory.
struct World {
    dir: tempfile::TempDir,
    p: Platforms,
    refresh: Vec<String>,
}

impl World {
    fn new() -> World {
        let dir = support::tempdir();
        let p = Platforms::start();
        let yt = p.grant_refresh_token(storyreel_platforms::Platform::YouTube);
        let tt = p.grant_refresh_token(storyreel_platforms::Platform::TikTok);
        let w = World {
            dir,
            p,
            refresh: vec![yt.clone(), tt.clone()],
        };
        let tokens = w.tokens();
        rt().block_on(async {
            for (platform, id, secret, refresh) in [
                (
                    Platform::YouTube,
                    storyreel_platforms::GOOGLE_CLIENT_ID,
                    storyreel_platforms::GOOGLE_CLIENT_SECRET,
                    yt,
                ),
                (
                    Platform::TikTok,
                    storyreel_platforms::TIKTOK_CLIENT_KEY,
                    storyreel_platforms::TIKTOK_CLIENT_SECRET,
                    tt,
                ),
            ] {
                tokens
                    .put(&Account {
                        platform,
                        name: "main".into(),
                        client_id: id.into(),
                        client_secret: Secret::new(secret),
                        refresh_token: Secret::new(refresh),
                        scope: String::new(),
                        open_id: None,
                        connected_at: 1,
                    })
                    .await
                    .unwrap();
            }
        });
        w
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn tokens(&self) -> FsTokens {
        FsTokens::new(self.config())
    }

    /// The `storyreel` command with this world's accounts and platform endpoints.
    fn storyreel(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_storyreel"));
        c.env("STORYREEL_CONFIG_DIR", self.config());
        for (k, v) in self.p.env() {
            c.env(k, v);
        }
        c
    }

    /// Publishing in this process, against this world (short backoffs for the tests).
    fn publishers(&self) -> Publishers {
        let mut p = Publishers::new(Arc::new(self.tokens()), false);
        let env = self.p.env();
        p.endpoints = Endpoints::from_lookup(|k| {
            env.iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.clone())
        });
        p.backoff = Duration::from_millis(20);
        p.poll = Duration::from_millis(50);
        p
    }

    /// Every secret this world knows: tokens the platform issued or accepted, the refresh
    /// tokens, the client secrets.
    fn secrets(&self) -> Vec<String> {
        let mut all = self.p.issued_tokens();
        all.extend(self.refresh.iter().cloned());
        all.push(storyreel_platforms::GOOGLE_CLIENT_SECRET.into());
        all.push(storyreel_platforms::TIKTOK_CLIENT_SECRET.into());
        all
    }

    /// Fails if any secret appears in `text` (`what` says where it was found).
    fn assert_no_secret(&self, what: &str, text: &str) {
        for s in self.secrets() {
            assert!(!text.contains(&s), "a token or secret appears in {what}");
        }
    }

    fn record(&self, job_id: &str) -> JobRecord {
        rt().block_on(FsJobs::new(self.out().join("jobs")).get(job_id))
            .unwrap()
            .expect("a job record")
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A finished job in `out` as publish leaves it before its destinations: a `bytes`-long
/// video (pseudo-random, so every byte counts), a thumbnail, the story, a succeeded record
/// whose destinations are registered as pending.
fn finished_job(w: &World, job_id: &str, bytes: usize, dests: &[Destination]) -> Vec<u8> {
    finished_job_in(&w.out(), job_id, bytes, dests)
}

/// [`finished_job`] in any store directory.
pub fn finished_job_in(out: &Path, job_id: &str, bytes: usize, dests: &[Destination]) -> Vec<u8> {
    let out = out.to_path_buf();
    let store = FsStore::new(&out);
    let jobs = FsJobs::new(out.join("jobs"));
    let mut video = Vec::with_capacity(bytes);
    let mut x: u32 = 0x9e37_79b9;
    while video.len() < bytes {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        video.extend_from_slice(&x.to_le_bytes());
    }
    video.truncate(bytes);
    let (v, srt, vtt, thumb) = storyreel::keys::outputs(job_id);
    rt().block_on(async {
        store.put(&v, video.clone(), "video/mp4").await.unwrap();
        store
            .put(
                &thumb,
                b"\xff\xd8\xff\xe0 a thumbnail".to_vec(),
                "image/jpeg",
            )
            .await
            .unwrap();
        store
            .put(
                &storyreel::keys::story(job_id),
                STORY.as_bytes().to_vec(),
                "text/plain",
            )
            .await
            .unwrap();
        let record = JobRecord::new(
            job_id,
            "e",
            "text",
            "",
            Some("The Lamp in the Window".into()),
        );
        jobs.create(&record).await.unwrap();
        storyreel::publishing::register(&jobs, job_id, dests)
            .await
            .unwrap();
        jobs.update(
            job_id,
            JobUpdate::Succeeded(JobOutputs {
                video: v.clone(),
                srt,
                vtt,
                thumbnail: thumb,
                link: out.join(&v).display().to_string(),
            }),
        )
        .await
        .unwrap();
    });
    video
}

/// Drives a job's destinations once, in this process.
fn publish_now(
    w: &World,
    job_id: &str,
    dests: &[Destination],
) -> Result<std::collections::BTreeMap<String, DestinationState>, String> {
    let out = w.out();
    let store = FsStore::new(&out);
    let jobs = FsJobs::new(out.join("jobs"));
    let (video, _, _, thumbnail) = storyreel::keys::outputs(job_id);
    let story = storyreel::keys::story(job_id);
    let target = PublishJob {
        job_id,
        title: Some("The Lamp in the Window"),
        destinations: dests,
        video_key: &video,
        thumbnail_key: &thumbnail,
        story_key: &story,
    };
    rt().block_on(storyreel::publishing::publish_job(
        &w.publishers(),
        &store,
        &jobs,
        &target,
        false,
    ))
    .map_err(|e| e.chain())
}

fn youtube() -> Destination {
    Destination::parse("youtube:main").unwrap()
}

fn tiktok() -> Destination {
    Destination::parse("tiktok:main").unwrap()
}

/// PUTs to upload sessions, with their Content-Range, in order.
fn upload_ranges(p: &Platforms) -> Vec<String> {
    p.requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-range"))
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// Done when 1: `make --publish` uploads once to each platform the exact bytes of the
/// published MP4, with the story's title, explicit privacy and the declarations, and the job
/// record shows the ids; a second identical `make` uploads nothing more.
#[test]
fn make_publishes_to_youtube_and_tiktok_once() {
    let w = World::new();
    let story = support::write(w.dir.path(), "story.txt", STORY);
    let out = w.out();
    let make = || {
        let mut c = w.storyreel();
        c.arg("make")
            .arg("--story")
            .arg(&story)
            .arg("--out")
            .arg(&out)
            .args(["--draft", "--chunk-frames", "150"])
            .args(["--publish", "youtube:main", "--publish", "tiktok:main"])
            .args(["--hashtags", "reddit,nosleep"]);
        c
    };
    let o = support::run(&mut make());
    let log = stderr(&o);
    assert!(
        log.contains("youtube:main: published https://www.youtube.com/watch?v="),
        "{log}"
    );
    assert!(log.contains("tiktok:main: published"), "{log}");

    let job: Value = {
        let dir = out.join("jobs");
        let entry = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "json"))
            .unwrap();
        serde_json::from_slice(&std::fs::read(entry.path()).unwrap()).unwrap()
    };
    let video = std::fs::read(out.join(job["outputs"]["video"].as_str().unwrap())).unwrap();
    let thumbnail = std::fs::read(out.join(job["outputs"]["thumbnail"].as_str().unwrap())).unwrap();

    let yt = w.p.youtube_videos();
    assert_eq!(yt.len(), 1, "one YouTube video");
    assert!(
        yt[0].bytes == video,
        "YouTube received exactly the published MP4"
    );
    let r = &yt[0].resource;
    assert_eq!(r["snippet"]["title"], "The Lamp in the Window");
    assert!(
        r["snippet"]["description"]
            .as_str()
            .unwrap()
            .contains("Every night at nine"),
        "{r}"
    );
    assert!(
        r["snippet"]["description"]
            .as_str()
            .unwrap()
            .contains("#reddit #nosleep #Shorts")
    );
    assert_eq!(r["status"]["privacyStatus"], "private");
    assert_eq!(r["status"]["selfDeclaredMadeForKids"], false);
    assert_eq!(r["status"]["containsSyntheticMedia"], true);
    assert_eq!(yt[0].thumbnail.as_deref(), Some(thumbnail.as_slice()));
    let d = &job["publish"]["youtube:main"];
    assert_eq!(d["status"], "published", "{job:#}");
    assert_eq!(d["video_id"], yt[0].id.as_str());
    assert_eq!(
        d["url"],
        format!("https://www.youtube.com/watch?v={}", yt[0].id)
    );
    assert_eq!(d["destination"]["privacy"], "private");

    let tt = w.p.tiktok_posts();
    assert_eq!(tt.len(), 1, "one TikTok post");
    assert!(
        tt[0].bytes == video,
        "TikTok received exactly the published MP4"
    );
    assert!(!tt[0].direct, "an inbox draft unless the app is audited");
    assert_eq!(
        job["publish"]["tiktok:main"]["status"], "published",
        "{job:#}"
    );

    // The same make again: the job is done, nothing is uploaded twice.
    let again = support::run(&mut make());
    assert_eq!(w.p.youtube_videos().len(), 1);
    assert_eq!(w.p.tiktok_posts().len(), 1);

    for (what, text) in [
        (
            "make's output",
            format!("{log}{}", String::from_utf8_lossy(&o.stdout)),
        ),
        ("the second make's output", stderr(&again)),
        ("the job record", job.to_string()),
    ] {
        w.assert_no_secret(what, &text);
    }
}

/// Done when 2: a connection dropped at 40% resumes from the byte the session confirmed (a
/// multiple of 256 KiB, not what was sent), 503 twice is retried, and each ends with one video.
#[test]
fn a_dropped_connection_resumes_from_the_confirmed_byte_and_503s_are_retried() {
    let w = World::new();
    let video = finished_job(&w, "drop-40", 3_000_000, &[youtube()]);
    w.p.inject(Fault::DropUploadAt { fraction: 0.4 });
    let states = publish_now(&w, "drop-40", &[youtube()]).unwrap();
    assert_eq!(states["youtube:main"].status, DestinationStatus::Published);
    let videos = w.p.youtube_videos();
    assert_eq!(videos.len(), 1);
    assert!(videos[0].bytes == video);
    let ranges = upload_ranges(&w.p);
    // The first PUT was cut; the session was asked what it holds; the upload went on from
    // there: 40% of 3,000,000 is 1,200,000, of which the session keeps 4 x 256 KiB.
    assert!(ranges.iter().any(|r| r == "bytes */3000000"), "{ranges:?}");
    let resumed = ranges
        .iter()
        .filter(|r| r.starts_with("bytes ") && !r.starts_with("bytes */"))
        .nth(1)
        .expect("a second upload request");
    assert!(
        resumed.starts_with("bytes 1048576-"),
        "resumed from the confirmed byte: {ranges:?}"
    );
    assert_eq!(
        w.record("drop-40").publish["youtube:main"].bytes_confirmed,
        3_000_000
    );

    let w = World::new();
    let video = finished_job(&w, "twice-503", 1_500_000, &[youtube(), tiktok()]);
    w.p.inject(Fault::UploadStatus {
        status: 503,
        times: 2,
    });
    let states = publish_now(&w, "twice-503", &[youtube(), tiktok()]).unwrap();
    assert_eq!(states["youtube:main"].status, DestinationStatus::Published);
    assert_eq!(states["tiktok:main"].status, DestinationStatus::Published);
    assert_eq!(w.p.youtube_videos().len(), 1);
    assert!(w.p.youtube_videos()[0].bytes == video);
    assert_eq!(w.p.tiktok_posts().len(), 1);
    assert!(w.p.tiktok_posts()[0].bytes == video);
}

/// Done when 2: `storyreel publish retry` killed after the platform completed the upload but
/// before the job record said so, then run again: the record ends published with the one
/// video the platform has (found through the recorded session), for both platforms.
#[test]
fn killed_after_the_platform_completed_then_run_again_publishes_once() {
    for (dest, platform) in [(youtube(), Platform::YouTube), (tiktok(), Platform::TikTok)] {
        let w = World::new();
        let job = format!("killed-{platform}");
        let video = finished_job(&w, &job, 600_000, std::slice::from_ref(&dest));
        w.p.inject(Fault::HoldCompletion);
        let retry = || {
            let mut c = w.storyreel();
            c.args(["publish", "retry", "--job", &job, "--out"])
                .arg(w.out());
            c
        };
        let mut child = retry()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        assert!(
            w.p.wait_held(Duration::from_secs(60)),
            "{platform}: the upload never completed"
        );
        child.kill().unwrap();
        let killed = child.wait_with_output().unwrap();
        let state = w.record(&job).publish[&dest.id()].clone();
        assert_ne!(state.status, DestinationStatus::Published, "{state:?}");
        assert!(state.session.is_some(), "the session was recorded first");

        let o = support::run(&mut retry());
        let state = w.record(&job).publish[&dest.id()].clone();
        assert_eq!(state.status, DestinationStatus::Published, "{state:?}");
        match platform {
            Platform::YouTube => {
                let v = w.p.youtube_videos();
                assert_eq!(v.len(), 1, "one video");
                assert!(v[0].bytes == video);
                assert_eq!(state.video_id.as_deref(), Some(v[0].id.as_str()));
                assert_eq!(state.sessions, 1, "no second session");
            }
            Platform::TikTok => {
                let v = w.p.tiktok_posts();
                assert_eq!(v.len(), 1, "one post");
                assert!(v[0].bytes == video);
                assert_eq!(state.sessions, 1, "no second init");
            }
        }
        w.assert_no_secret("publish retry's output", &stderr(&o));
        w.assert_no_secret("the killed run's output", &stderr(&killed));
    }
}

/// Done when 2, through the workflow: `storyreel make --publish` killed inside the publish
/// step after YouTube completed the upload but before the record said so; the same `make`
/// again carries the job on (nothing re-rendered that was done) and records the one video.
#[test]
fn a_make_killed_inside_publish_resumes_and_publishes_once() {
    let w = World::new();
    let story = support::write(w.dir.path(), "story.txt", STORY);
    let make = || {
        let mut c = w.storyreel();
        c.arg("make")
            .arg("--story")
            .arg(&story)
            .arg("--out")
            .arg(w.out())
            .args(["--draft", "--publish", "youtube:main"]);
        c
    };
    w.p.inject(Fault::HoldCompletion);
    let mut child = make()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        w.p.wait_held(Duration::from_secs(300)),
        "the upload never completed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(w.p.youtube_videos().len(), 1, "the platform has the video");

    let o = support::run(&mut make());
    let log = stderr(&o);
    assert!(log.contains("youtube:main: published"), "{log}");
    let videos = w.p.youtube_videos();
    assert_eq!(videos.len(), 1, "still one video");
    let job_id = std::fs::read_dir(w.out().join("jobs"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_suffix(".json")
                .map(String::from)
        })
        .next()
        .unwrap();
    let record = w.record(&job_id);
    assert_eq!(
        log.matches("already rendered, reused").count(),
        record.chunks_total as usize,
        "every chunk reused, none rendered again: {log}"
    );
    let state = record.publish["youtube:main"].clone();
    assert_eq!(state.status, DestinationStatus::Published);
    assert_eq!(state.video_id.as_deref(), Some(videos[0].id.as_str()));
    assert_eq!(state.sessions, 1);
    let published = std::fs::read(w.out().join(storyreel::keys::outputs(&job_id).0)).unwrap();
    assert!(videos[0].bytes == published);
}

/// Done when 2: the publish step itself run twice on the same input (as a retry of a step
/// whose answer was lost): one video, the same record.
#[test]
fn the_publish_step_run_twice_publishes_once() {
    let w = World::new();
    let out = w.out();
    let mut steps = storyreel::workflow::LocalSteps::in_dir(&out, 1);
    steps.publishers = w.publishers();
    let events = Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let event = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(events.join(name)).unwrap()).unwrap()
    };
    let rt = rt();
    let mut story = event("story.json");
    story["request"]["publish"] = json!([{"platform": "youtube", "account": "main"}]);
    let s = rt.block_on(steps.invoke_step("story", story)).unwrap();
    let job = s["job"].clone();
    assert_eq!(job["publish"][0]["privacy"], "private");
    let base = json!({"job": job});
    let speech = rt
        .block_on(steps.invoke_step("speech", base.clone()))
        .unwrap();
    let marks = rt
        .block_on(steps.invoke_step("marks", base.clone()))
        .unwrap();
    let mut chunks = Vec::new();
    for c in speech["chunks"].as_array().unwrap() {
        let e = json!({"job": job, "speech": speech, "marks": marks, "chunk": c});
        chunks.push(rt.block_on(steps.invoke_step("render-chunk", e)).unwrap());
    }
    let merged = rt
        .block_on(steps.invoke_step(
            "merge",
            json!({"job": job, "speech": speech, "marks": marks, "chunks": chunks}),
        ))
        .unwrap();
    let input = json!({"job": job, "speech": speech, "marks": marks, "merged": merged});
    let first = rt
        .block_on(steps.invoke_step("publish", input.clone()))
        .unwrap();
    let second = rt.block_on(steps.invoke_step("publish", input)).unwrap();
    assert_eq!(first["destinations"]["youtube:main"]["status"], "published");
    assert_eq!(first["destinations"], second["destinations"]);
    assert_eq!(first["outputs"], second["outputs"]);
    assert!(first.get("retry_at").is_none(), "nothing deferred: {first}");
    let videos = w.p.youtube_videos();
    assert_eq!(videos.len(), 1);
    let job_id = job["job_id"].as_str().unwrap();
    let published = std::fs::read(out.join(storyreel::keys::outputs(job_id).0)).unwrap();
    assert!(videos[0].bytes == published);
    let inserts =
        w.p.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path_and_query.contains("uploadType=resumable"))
            .count();
    assert_eq!(inserts, 1, "one upload session");
}

/// Done when 3: quota and limits defer the destination with the reason and time, keeping the
/// video; once the time has come `publish retry` uploads it. TikTok's spam-risk limit too.
#[test]
fn quota_defers_and_a_later_retry_uploads() {
    let w = World::new();
    let video = finished_job(&w, "quota", 400_000, &[youtube(), tiktok()]);
    w.p.inject(Fault::YouTubeInsert {
        reason: "quotaExceeded",
    });
    w.p.inject(Fault::TikTok {
        endpoint: "inbox_init",
        status: 403,
        code: "spam_risk_too_many_posts",
    });
    let before = storyreel::jobs::unix_now();
    let states = publish_now(&w, "quota", &[youtube(), tiktok()]).unwrap();
    for (dest, reason) in [
        ("youtube:main", "quotaExceeded"),
        ("tiktok:main", "spam_risk_too_many_posts"),
    ] {
        let s = &states[dest];
        assert_eq!(s.status, DestinationStatus::Deferred, "{dest}: {s:?}");
        assert!(s.reason.as_deref().unwrap().contains(reason), "{s:?}");
        let until = s.deferred_until.unwrap();
        assert!(
            until > before + 60,
            "{dest}: deferred into the future: {s:?}"
        );
    }
    // YouTube's daily quota resets at midnight Pacific time (UTC-8, or UTC-7 in summer).
    let until = states["youtube:main"].deferred_until.unwrap();
    assert!(
        until % 86_400 == 8 * 3600 || until % 86_400 == 7 * 3600,
        "{until}"
    );
    assert!(until <= before + 86_400 + 3600);
    assert!(w.p.youtube_videos().is_empty() && w.p.tiktok_posts().is_empty());
    let (video_key, ..) = storyreel::keys::outputs("quota");
    assert!(
        std::fs::read(w.out().join(&video_key)).unwrap() == video,
        "video kept"
    );
    // The job record and `publish status` show the reason and time.
    let shown = support::run(
        w.storyreel()
            .args(["publish", "status", "--job", "quota", "--out"])
            .arg(w.out()),
    );
    let text = String::from_utf8_lossy(&shown.stdout).into_owned();
    assert!(text.contains("youtube:main: deferred until 20"), "{text}");
    assert!(text.contains("quotaExceeded"), "{text}");

    // Before the time comes, a retry leaves it alone.
    let o = support::run(
        w.storyreel()
            .args(["publish", "retry", "--out"])
            .arg(w.out()),
    );
    assert!(
        stderr(&o).contains("nothing to publish now"),
        "{}",
        stderr(&o)
    );
    assert!(w.p.youtube_videos().is_empty());

    // Time passes (the record says the time has come), and a retry uploads both.
    rt().block_on(async {
        let jobs = FsJobs::new(w.out().join("jobs"));
        let record = jobs.get("quota").await.unwrap().unwrap();
        for (dest, s) in &record.publish {
            let mut due = s.clone();
            due.rev += 1;
            due.deferred_until = Some(storyreel::jobs::unix_now() - 1);
            assert!(
                jobs.put_destination("quota", dest, s.rev, &due)
                    .await
                    .unwrap()
            );
        }
    });
    let o = support::run(
        w.storyreel()
            .args(["publish", "retry", "--out"])
            .arg(w.out()),
    );
    let record = w.record("quota");
    assert_eq!(
        record.publish["youtube:main"].status,
        DestinationStatus::Published
    );
    assert_eq!(
        record.publish["tiktok:main"].status,
        DestinationStatus::Published
    );
    assert_eq!(w.p.youtube_videos().len(), 1);
    assert!(w.p.youtube_videos()[0].bytes == video);
    assert_eq!(w.p.tiktok_posts().len(), 1);
    w.assert_no_secret("publish retry's output", &stderr(&o));
    w.assert_no_secret("the job record", &serde_json::to_string(&record).unwrap());
}

/// Done when 3: a revoked refresh token fails the destination with the command that
/// reconnects the account (the video is kept); a channel that may not set custom thumbnails
/// gets a warning, not a failure. No token in any message or record.
#[test]
fn a_revoked_token_says_reconnect_and_a_forbidden_thumbnail_is_a_warning() {
    let w = World::new();
    finished_job(&w, "revoked", 300_000, &[youtube()]);
    w.p.revoke(&w.refresh[0]);
    let states = publish_now(&w, "revoked", &[youtube()]).unwrap();
    let s = &states["youtube:main"];
    assert_eq!(s.status, DestinationStatus::Failed, "{s:?}");
    let reason = s.reason.clone().unwrap();
    assert!(
        reason.contains(
            "reconnect the account with `storyreel accounts connect youtube --name main`"
        ),
        "{reason}"
    );
    assert!(w.p.youtube_videos().is_empty());
    assert!(
        w.out()
            .join(storyreel::keys::outputs("revoked").0)
            .is_file()
    );
    // `publish retry --failed` after a reconnect (a fresh token stored) uploads it.
    let fresh =
        w.p.grant_refresh_token(storyreel_platforms::Platform::YouTube);
    rt().block_on(async {
        let tokens = w.tokens();
        let mut a = tokens
            .get(Platform::YouTube, "main")
            .await
            .unwrap()
            .unwrap();
        a.refresh_token = Secret::new(fresh);
        tokens.put(&a).await.unwrap();
    });
    w.p.inject(Fault::ThumbnailForbidden);
    let o = support::run(
        w.storyreel()
            .args(["publish", "retry", "--failed", "--out"])
            .arg(w.out()),
    );
    let record = w.record("revoked");
    let s = &record.publish["youtube:main"];
    assert_eq!(s.status, DestinationStatus::Published, "{s:?}");
    assert!(s.warnings.iter().any(|w| w.contains("thumbnail")), "{s:?}");
    assert_eq!(w.p.youtube_videos().len(), 1);
    assert!(w.p.youtube_videos()[0].thumbnail.is_none());
    assert!(
        stderr(&o).contains("warning: thumbnail not set"),
        "{}",
        stderr(&o)
    );
    w.assert_no_secret("the failure reason", &reason);
    w.assert_no_secret("publish retry's output", &stderr(&o));
    w.assert_no_secret("the job record", &serde_json::to_string(&record).unwrap());
}
