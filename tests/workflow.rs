//! `storyreel make` end to end: the deployed state machine on the local executor, judged by
//! ffprobe/ffmpeg; resuming a killed run; failures recorded through the Catch (issue 4).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, decode_errors, frame_md5s, only_stream, streams, text};

const STORY: &str = "The Lamp in the Window\n\nEvery night at nine the lamp across the street \
turned on. Nobody lived there. I checked with the landlord twice. On Friday I knocked, and the \
lamp went out.";

fn storyreel() -> Command {
    Command::new(env!("CARGO_BIN_EXE_storyreel"))
}

fn make(story: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = storyreel();
    c.arg("make")
        .arg("--story")
        .arg(story)
        .arg("--out")
        .arg(out)
        .args(extra);
    c
}

/// The one job record under `out/jobs/`.
fn job_record(out: &Path) -> Option<Value> {
    let dir = out.join("jobs");
    let entry = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))?;
    serde_json::from_slice(&std::fs::read(entry.path()).ok()?).ok()
}

fn output_video(job: &Value) -> PathBuf {
    PathBuf::from(text(&job["outputs"], "link"))
}

#[test]
fn make_runs_the_state_machine_and_leaves_a_playable_video() {
    let dir = support::tempdir();
    let story = support::write(dir.path(), "story.txt", STORY);
    let out = dir.path().join("out");
    let o = support::run(&mut make(&story, &out, &["--chunk-frames", "90"]));
    let stderr = String::from_utf8_lossy(&o.stderr);
    for state in ["Story", "Narrate", "Render chunks", "Merge", "Publish"] {
        assert!(stderr.contains(state), "no progress for {state}: {stderr}");
    }
    let job = job_record(&out).expect("a job record");
    assert_eq!(job["status"], "succeeded", "{job:#}");
    assert_eq!(job["title"], "The Lamp in the Window");
    let total = job["chunks_total"].as_u64().unwrap();
    assert!(total >= 2, "{job:#}");
    assert_eq!(job["chunks_done"].as_array().unwrap().len() as u64, total);
    let video = output_video(&job);
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        video.display().to_string()
    );
    let s = streams(&video);
    let v = only_stream(&s, "video");
    assert_eq!(text(v, "codec_name"), "h264");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1080), Some(1920))
    );
    assert_eq!(text(v, "r_frame_rate"), "30/1");
    assert_eq!(text(only_stream(&s, "audio"), "codec_name"), "aac");
    assert_eq!(decode_errors(&video), "");
    // Captions follow the narration: the body's words appear in the SRT, the title's do not
    // (it is on the card).
    let srt = std::fs::read_to_string(out.join(text(&job["outputs"], "srt"))).unwrap();
    for w in ["Every", "night", "landlord", "knocked,"] {
        assert!(srt.contains(w), "{w} missing from captions:\n{srt}");
    }
    assert!(out.join(text(&job["outputs"], "thumbnail")).is_file());
    // Intermediate objects are gone once published.
    let tmp = out.join("tmp");
    assert!(!tmp.exists() || std::fs::read_dir(&tmp).unwrap().next().is_none());

    // Running the same job again finds it done and renders nothing.
    let again = support::run(&mut make(&story, &out, &["--chunk-frames", "90"]));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(!stderr.contains("Render chunks"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&again.stdout).trim(),
        video.display().to_string()
    );
}

#[test]
fn a_killed_make_resumes_without_rerendering_finished_chunks() {
    let dir = support::tempdir();
    let story = support::write(dir.path(), "story.txt", STORY);
    let args = ["--chunk-frames", "30", "--jobs", "1"];

    // The reference: one uninterrupted run.
    let whole = dir.path().join("whole");
    support::run(&mut make(&story, &whole, &args));
    let reference = frame_md5s(&output_video(&job_record(&whole).unwrap()));

    // Kill the run once a few chunks are done.
    let out = dir.path().join("out");
    let mut child = make(&story, &out, &args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let done_before = loop {
        let done = job_record(&out)
            .and_then(|j| j["chunks_done"].as_array().map(Vec::len))
            .unwrap_or(0);
        if done >= 2 {
            break done;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "make finished before it was killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "no chunk finished in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let job = job_record(&out).unwrap();
    assert_eq!(job["status"], "running");
    let total = job["chunks_total"].as_u64().unwrap() as usize;
    assert!(done_before < total, "every chunk was done before the kill");

    let o = support::run(&mut make(&story, &out, &args));
    let stderr = String::from_utf8_lossy(&o.stderr);
    let reused = stderr.matches("already rendered, reused").count();
    assert!(
        reused >= done_before,
        "only {reused} of {done_before} finished chunks reused:\n{stderr}"
    );
    assert!(reused < total, "nothing was left to render:\n{stderr}");
    let job = job_record(&out).unwrap();
    assert_eq!(job["status"], "succeeded");
    let video = output_video(&job);
    assert_eq!(decode_errors(&video), "");
    assert_eq!(
        frame_md5s(&video),
        reference,
        "the resumed video differs from a whole run"
    );
}

#[test]
fn a_malformed_story_fails_through_the_catch_and_is_recorded() {
    let dir = support::tempdir();
    // Nothing speakable after cleaning.
    let story = support::write(dir.path(), "story.txt", "**  **\n\n<br>\n");
    let out = dir.path().join("out");
    let o = make(&story, &out, &[]).output().unwrap();
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("Story"), "{stderr}");
    assert!(stderr.contains("InvalidInput"), "{stderr}");
    assert!(stderr.contains("story"), "{stderr}");
    let job = job_record(&out).expect("the failure is recorded on a job");
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"]["step"], "Story");
    assert_eq!(job["error"]["error"], "InvalidInput");
    assert!(
        job["error"]["cause"].as_str().unwrap().contains("story"),
        "{job:#}"
    );
    // Nothing half-written looks done.
    assert!(!out.join("out").exists());
}

#[test]
fn a_corrupt_background_fails_in_a_later_step_with_the_step_named() {
    let dir = support::tempdir();
    let story = support::write(dir.path(), "story.txt", STORY);
    let bg = support::write(
        dir.path(),
        "bg.mp4",
        b"\0\0\0\x18ftypisom not really a video",
    );
    let out = dir.path().join("out");
    let o = make(&story, &out, &["--background", bg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    let job = job_record(&out).unwrap();
    assert_eq!(job["status"], "failed", "{job:#}");
    assert_eq!(job["error"]["step"], "Render chunks", "{job:#}");
    assert_eq!(job["error"]["error"], "InvalidInput");
    let cause = job["error"]["cause"].as_str().unwrap();
    assert!(
        cause.contains("render-chunk") && cause.contains("background"),
        "{cause}"
    );
    assert!(stderr.contains("background"), "{stderr}");
    assert!(!out.join("out").exists());
}

/// Issue 15: `make --background` picks from the library in the `--out` directory (by
/// `tag:NAME`, `random` or id) exactly as it would render that library file named directly.
#[test]
fn make_picks_its_background_from_the_out_directorys_library() {
    let dir = support::tempdir();
    let story = support::write(dir.path(), "story.txt", STORY);
    let out = dir.path().join("out");
    let clip = support::testsrc_video(
        dir.path(),
        "clip.mp4",
        (320, 240),
        30,
        11.0,
        &["-c:v", "libx264", "-preset", "veryfast"],
    );
    let added = support::run(
        storyreel()
            .args(["backgrounds", "add", "--tag", "lofi", "--dir"])
            .arg(&out)
            .arg(&clip),
    );
    let id = String::from_utf8_lossy(&added.stdout).trim().to_string();
    let library_file = out.join(format!("backgrounds/{id}.mp4"));
    assert!(library_file.is_file(), "{id}");

    let by_tag = support::run(&mut make(
        &story,
        &out,
        &["--background", "tag:lofi", "--start", "2", "--draft"],
    ));
    let stderr = String::from_utf8_lossy(&by_tag.stderr);
    assert!(stderr.contains(&format!("background {id}")), "{stderr}");
    let picked = PathBuf::from(String::from_utf8_lossy(&by_tag.stdout).trim());
    assert_eq!(decode_errors(&picked), "");

    // The same footage named as a file (another job, another output) shows the same pictures.
    let out2 = dir.path().join("out2");
    let direct = support::run(&mut make(
        &story,
        &out2,
        &[
            "--background",
            library_file.to_str().unwrap(),
            "--start",
            "2",
            "--draft",
        ],
    ));
    let direct = PathBuf::from(String::from_utf8_lossy(&direct.stdout).trim());
    assert_eq!(frame_md5s(&picked), frame_md5s(&direct));

    // Unknown tags and ids fail naming what the library has; nothing is rendered.
    for (arg, expect) in [
        ("tag:subway", "lofi"),
        ("0123456789abcdef", "no background"),
        ("no such file.mp4", "neither a file nor a library id"),
    ] {
        let o = make(&story, &out, &["--background", arg, "--draft"])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{arg}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains(expect), "{arg}: {stderr}");
    }
}
