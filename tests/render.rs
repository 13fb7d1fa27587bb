//! What a render produces: the MP4's streams, timing and layout as ffprobe/ffmpeg see them, the
//! sidecars, and that splitting the render into chunks changes no frame.

use std::path::Path;

use crate::support::*;

const STORY: &str = "My cat story. It began on a rainy day.";
const TITLE: &str = "My cat story";

/// Checks the video stream of `path`: H.264, `size`, 30 fps, 4:2:0, `frames` frames decoded.
fn assert_video_stream(streams: &[serde_json::Value], size: (u64, u64), frames: u64) {
    let v = only_stream(streams, "video");
    assert_eq!(text(v, "codec_name"), "h264", "{v}");
    assert_eq!(
        (num(v, "width") as u64, num(v, "height") as u64),
        size,
        "{v}"
    );
    assert_eq!(text(v, "r_frame_rate"), "30/1", "{v}");
    assert_eq!(text(v, "pix_fmt"), "yuv420p", "{v}");
    assert_eq!(
        num(v, "nb_frames") as u64,
        frames,
        "frames in the container"
    );
    assert_eq!(num(v, "nb_read_frames") as u64, frames, "frames decoded");
}

#[test]
fn output_is_h264_and_aac_lc_in_a_fast_start_mp4_with_sidecars() {
    let dir = tempdir();
    let d = dir.path();
    let audio = espeak(d, "narration.wav", STORY);
    let (samples, rate) = audio_samples(&audio);
    let ms = audio_ms(&audio);
    let words = spread_words(STORY, 100, ms - 300);
    let marks = write(d, "marks.jsonl", marks_jsonl(&words));
    let out = d.join("video.mp4");
    // The default preset (veryfast) uses B-frames, so the edit list that hides their delay is
    // part of what "starts at zero" checks.
    Job::new(&audio, &marks, &out)
        .args(&["--title", TITLE])
        .run_ok();

    let frames = expected_frames(ms);
    let streams = streams(&out);
    assert_eq!(
        streams.len(),
        2,
        "one video and one audio stream: {streams:#?}"
    );
    assert_video_stream(&streams, FULL, frames);
    let a = only_stream(&streams, "audio");
    assert_eq!(text(a, "codec_name"), "aac", "{a}");
    assert_eq!(text(a, "profile"), "LC", "{a}");

    // Both streams start at zero and last the narration plus the 500 ms tail, to a frame.
    let want_s = samples as f64 / rate as f64 + 0.5;
    let frame_s = 1.0 / FPS as f64;
    let v = only_stream(&streams, "video");
    for (name, s) in [("video", v), ("audio", a)] {
        assert_eq!(num(s, "start_time"), 0.0, "{name} starts at 0: {s}");
    }
    let format = ffprobe(&out, &["-show_format"]);
    for (name, dur) in [
        ("video stream", num(v, "duration")),
        ("audio stream", num(a, "duration")),
        ("container", num(&format["format"], "duration")),
    ] {
        assert!(
            (dur - want_s).abs() <= frame_s + 1e-6,
            "{name} lasts {dur} s, expected {want_s} s ± one frame"
        );
    }
    assert_eq!(decode_errors(&out), "", "ffmpeg decodes without complaint");

    // Fast start: the index precedes the media data.
    let boxes = top_level_boxes(&out);
    let at = |kind: &str| {
        boxes
            .iter()
            .position(|b| b.0 == kind)
            .unwrap_or_else(|| panic!("no `{kind}` box in {boxes:?}"))
    };
    assert_eq!(boxes[0].0, "ftyp", "{boxes:?}");
    assert!(at("moov") < at("mdat"), "moov must precede mdat: {boxes:?}");

    // Sidecars: SRT cues in order, covering exactly the body (the title is on the card).
    let srt = std::fs::read_to_string(out.with_extension("srt")).expect("read srt");
    let cues = parse_srt(&srt);
    assert!(!cues.is_empty(), "no cues in {srt:?}");
    let body_start = words[3].1;
    assert!(
        cues[0].0 >= body_start,
        "first cue at {} ms, under the title card (body starts at {body_start} ms)",
        cues[0].0
    );
    for pair in cues.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "cues overlap or go back: {pair:?}");
    }
    for c in &cues {
        assert!(c.0 < c.1, "empty cue {c:?}");
        assert!(c.1 <= frames * 1000 / FPS, "cue {c:?} ends after the video");
    }
    let said: Vec<String> = cues
        .iter()
        .flat_map(|c| c.2.split_whitespace().map(str::to_string))
        .collect();
    let body: Vec<&str> = STORY.split_whitespace().skip(3).collect();
    assert_eq!(said, body, "captions are the story after the title");

    let vtt = std::fs::read_to_string(out.with_extension("vtt")).expect("read vtt");
    assert!(vtt.starts_with("WEBVTT"), "{vtt:?}");
    assert_eq!(
        vtt.lines().filter(|l| l.contains(" --> ")).count(),
        cues.len(),
        "the VTT has the SRT's cues: {vtt}"
    );

    assert_thumbnail(&out.with_extension("jpg"), FULL);
}

fn assert_thumbnail(path: &Path, size: (u64, u64)) {
    let v = ffprobe(path, &["-show_streams"]);
    let s = &v["streams"][0];
    assert_eq!(text(s, "codec_name"), "mjpeg", "{s}");
    assert_eq!(
        (num(s, "width") as u64, num(s, "height") as u64),
        size,
        "{s}"
    );
}

#[test]
fn draft_renders_540x960() {
    let dir = tempdir();
    let d = dir.path();
    let audio = click_wav(d, "narration.wav", 2000.0, &[200.0, 900.0]);
    let marks = write(
        d,
        "marks.jsonl",
        marks_jsonl(&[("quick", 200), ("look", 900)]),
    );
    let out = d.join("draft.mp4");
    Job::new(&audio, &marks, &out).args(&["--draft"]).run_ok();
    assert_video_stream(&streams(&out), DRAFT, expected_frames(2000));
    assert_eq!(decode_errors(&out), "");
    assert_thumbnail(&out.with_extension("jpg"), DRAFT);
}

/// Narration, marks (with a title read aloud) and a B-frame background for the chunk tests:
/// 3 s of narration (105 frames) that starts 1.3 s into a 4 s clip, so the footage loops.
fn chunk_job(d: &Path, out: &str) -> Job {
    let words = [
        ("One", 100),
        ("small", 400),
        ("step", 700),
        ("then", 1100),
        ("we", 1400),
        ("walked", 1600),
        ("home", 2000),
        ("slowly", 2300),
        ("together", 2600),
    ];
    let audio = click_wav(d, "narration.wav", 3000.0, &[100.0, 1100.0, 2300.0]);
    let marks = write(d, "marks.jsonl", marks_jsonl(&words));
    let bg = d.join("bg.mp4");
    if !bg.exists() {
        run(ffmpeg()
            .args([
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=640x360:rate=25",
                "-t",
                "4",
            ])
            .args([
                "-c:v", "libx264", "-bf", "3", "-g", "50", "-pix_fmt", "yuv420p",
            ])
            .arg(&bg));
        let v = ffprobe(&bg, &["-show_streams", "-select_streams", "v:0"]);
        assert!(
            num(&v["streams"][0], "has_b_frames") > 0.0,
            "the fixture must have B-frames"
        );
    }
    Job::new(&audio, &marks, &d.join(out))
        .background(&bg)
        .args(&["--title", "One small step", "--start", "1.3"])
}

#[test]
fn issue2_chunked_render_matches_single_pass() {
    let dir = tempdir();
    let d = dir.path();
    let lossless = ["--crf", "0", "--preset", "ultrafast"];
    let chunked =
        chunk_job(d, "chunked.mp4")
            .args(&lossless)
            .args(&["--chunk-frames", "37", "--jobs", "2"]);
    let whole =
        chunk_job(d, "whole.mp4")
            .args(&lossless)
            .args(&["--chunk-frames", "18000", "--jobs", "1"]);
    let a = frame_md5s(chunked.run_ok());
    let b = frame_md5s(whole.run_ok());
    assert_eq!(a.len() as u64, expected_frames(3000));
    assert_eq!(b.len(), a.len());
    let differ: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert!(
        differ.is_empty(),
        "frames {differ:?} differ between the chunked (37 frames a chunk) and the single-pass \
         render (chunk boundaries at 37, 74)"
    );
}

#[test]
fn issue2_lossy_chunked_render_decodes_cleanly() {
    let dir = tempdir();
    let d = dir.path();
    // Default preset and crf: B-frames inside each chunk, reordered across the merge.
    let job = chunk_job(d, "lossy.mp4").args(&["--chunk-frames", "30"]);
    let out = job.run_ok();
    assert_eq!(decode_errors(out), "");
    assert_video_stream(&streams(out), FULL, expected_frames(3000));
}
