//! What a render produces: the MP4's streams, timing and layout as ffprobe/ffmpeg see them, the
//! sidecars, where captions and the title card are drawn and when, and that splitting the
//! render into chunks changes no frame.

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
    // One worker takes every chunk in turn: its decoder carries on across chunk boundaries
    // instead of seeking, which must not change a pixel either.
    let sequential = chunk_job(d, "sequential.mp4").args(&lossless).args(&[
        "--chunk-frames",
        "37",
        "--jobs",
        "1",
    ]);
    let a = frame_md5s(chunked.run_ok());
    let b = frame_md5s(whole.run_ok());
    let c = frame_md5s(sequential.run_ok());
    assert_eq!(a.len() as u64, expected_frames(3000));
    assert_eq!(b.len(), a.len());
    assert_eq!(c, b, "chunks rendered one after another by one worker");
    let distinct: std::collections::HashSet<&String> = a.iter().collect();
    assert!(
        distinct.len() > a.len() / 2,
        "only {} distinct frames: the footage should move",
        distinct.len()
    );
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

/// Paints the caption safe area (x 6–85%, y 10–80% of 1080x1920, widened by 2 px for
/// rounding) black, leaving what must be background alone.
const MASK_SAFE_AREA: &str = "drawbox=x=62:y=190:w=858:h=1348:color=black:t=fill";

#[test]
fn captions_and_title_card_stay_inside_the_safe_area() {
    // Lossless renders over the generated background (a function of the frame number alone):
    // outside the safe area every pixel must equal the same frame of a render whose only
    // caption is one short word at the very end.
    let dir = tempdir();
    let d = dir.path();
    let title = "Am I wrong for refusing to lend my sister the wedding dress she asked for?";
    let body = "Incomprehensibilities WWWWWWWWWWWWWWWW happened, and honestly everyone \
                involved regrets absolutely everything, especially Wolfgang Amadeus";
    let mut words: Vec<(&str, u64)> = Vec::new();
    for (i, w) in title.split_whitespace().enumerate() {
        words.push((w, 100 + 80 * i as u64));
    }
    for (i, w) in body.split_whitespace().enumerate() {
        words.push((w, 1500 + 200 * i as u64));
    }
    let end = words.last().map_or(0, |w| w.1) + 400;
    let audio = click_wav(d, "narration.wav", end as f64, &[]);
    let lossless = ["--crf", "0", "--preset", "ultrafast"];
    let busy = d.join("busy.mp4");
    Job::new(&audio, &write(d, "busy.jsonl", marks_jsonl(&words)), &busy)
        .args(&lossless)
        .args(&["--title", title, "--channel", "r/AmItheAsshole"])
        .run_ok();
    let plain = d.join("plain.mp4");
    Job::new(
        &audio,
        &write(d, "plain.jsonl", marks_jsonl(&[("end", end)])),
        &plain,
    )
    .args(&lossless)
    .run_ok();

    // The busy render does draw something on most frames…
    let (a, b) = (frame_md5s(&busy), frame_md5s(&plain));
    assert_eq!(a.len() as u64, expected_frames(end));
    let drawn = a.iter().zip(&b).filter(|(x, y)| x != y).count();
    assert!(
        drawn > a.len() * 3 / 4,
        "captions on only {drawn} of {} frames",
        a.len()
    );
    // …but never outside the safe area.
    let a = filtered_frame_md5s(&busy, MASK_SAFE_AREA);
    let b = filtered_frame_md5s(&plain, MASK_SAFE_AREA);
    let outside: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
    assert!(
        outside.is_empty(),
        "frames {outside:?} draw outside x 6–85%, y 10–80% of the frame"
    );
}

/// Counts of near-white and of highlight-yellow pixels in an RGB24 picture.
fn white_and_yellow(rgb: &[u8]) -> (usize, usize) {
    let (mut white, mut yellow) = (0, 0);
    for p in rgb.chunks_exact(3) {
        if p[0] > 200 && p[1] > 200 && p[2] > 200 {
            white += 1;
        } else if p[0] > 200 && p[1] > 180 && p[2] < 90 {
            yellow += 1;
        }
    }
    (white, yellow)
}

#[test]
fn title_card_covers_the_narrated_title_then_captions_start() {
    let dir = tempdir();
    let d = dir.path();
    let words = [
        ("My", 100),
        ("cat", 400),
        ("story", 700),
        ("It", 1500),
        ("began", 1800),
        ("today", 2100),
    ];
    let audio = click_wav(d, "narration.wav", 2500.0, &[]);
    let marks = write(d, "marks.jsonl", marks_jsonl(&words));
    let out = d.join("card.mp4");
    Job::new(&audio, &marks, &out)
        .args(&["--title", "My cat story", "--preset", "ultrafast"])
        .run_ok();
    let (w, h) = (270, 480);
    let frames = raw_frames(&out, &format!("scale={w}:{h}"), "rgb24", w * h * 3);
    assert_eq!(frames.len() as u64, expected_frames(2500));
    // The card is a white panel of a few percent of the picture; caption letters are far less.
    let card = |white: usize| white > w * h / 20;
    // Frame 45 (1.5 s) is the first at or after "It", the first word after the title.
    for (n, f) in frames.iter().enumerate() {
        let (white, yellow) = white_and_yellow(f);
        if n < 45 {
            assert!(
                card(white) && yellow == 0,
                "frame {n}: card expected alone, {white} white, {yellow} yellow px"
            );
        } else if n < 75 {
            assert!(
                !card(white) && yellow > 30,
                "frame {n}: a caption expected, {white} white, {yellow} yellow px"
            );
        }
    }
    // The thumbnail is the card.
    let thumb = raw_frames(
        &out.with_extension("jpg"),
        &format!("scale={w}:{h}"),
        "rgb24",
        w * h * 3,
    );
    let (white, yellow) = white_and_yellow(&thumb[0]);
    assert!(
        card(white) && yellow == 0,
        "thumbnail: {white} white, {yellow} yellow px"
    );
}

#[test]
fn spoken_story_gets_captions_that_follow_the_voice() {
    // `storyreel speak` (espeak-ng word events) feeds `storyreel render`: every word of the
    // story is captioned once, in order, and each caption page starts when its first word is
    // spoken.
    let dir = tempdir();
    let d = dir.path();
    let story = write(
        d,
        "story.txt",
        "The note was folded twice. I opened it slowly, and my hands shook.",
    );
    let (wav, marks) = (d.join("n.wav"), d.join("n.marks"));
    let spoke = std::process::Command::new(env!("CARGO_BIN_EXE_storyreel"))
        .arg("speak")
        .arg("--story")
        .arg(&story)
        .arg("--out-audio")
        .arg(&wav)
        .arg("--out-marks")
        .arg(&marks)
        .output()
        .expect("run storyreel speak");
    assert!(
        spoke.status.success(),
        "{}",
        String::from_utf8_lossy(&spoke.stderr)
    );
    let out = d.join("out.mp4");
    Job::new(&wav, &marks, &out).args(&["--draft"]).run_ok();
    assert_eq!(decode_errors(&out), "");

    let word_marks: Vec<(u64, String)> = std::fs::read_to_string(&marks)
        .expect("marks")
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["type"] == "word")
        .map(|m| {
            (
                m["time"].as_u64().unwrap_or(0),
                m["value"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let srt = std::fs::read_to_string(out.with_extension("srt")).expect("srt");
    let cues: Vec<(u64, String)> = srt
        .split("\n\n")
        .filter_map(|cue| {
            let mut lines = cue.lines().skip(1);
            let times = lines.next()?;
            let start = times.split(" --> ").next()?;
            let p: Vec<u64> = start
                .split([':', ','])
                .filter_map(|x| x.trim().parse().ok())
                .collect();
            let ms = ((p.first()? * 60 + p.get(1)?) * 60 + p.get(2)?) * 1000 + p.get(3)?;
            Some((ms, lines.collect::<Vec<_>>().join(" ")))
        })
        .collect();
    let captioned: Vec<String> = cues
        .iter()
        .flat_map(|(_, t)| t.split_whitespace().map(str::to_string))
        .collect();
    let spoken: Vec<String> = word_marks.iter().map(|(_, w)| w.clone()).collect();
    assert_eq!(
        captioned, spoken,
        "every spoken word captioned once, in order"
    );
    let mut next_word = 0;
    for (start, text) in &cues {
        let first_mark = word_marks[next_word].0;
        assert!(
            start.abs_diff(first_mark) <= 1,
            "cue {text:?} starts at {start} ms, its first word is spoken at {first_mark} ms"
        );
        next_word += text.split_whitespace().count();
    }
}
