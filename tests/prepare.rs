//! Issue 15, "Prepare on add": `storyreel backgrounds add` stores the library's working form
//! of the footage — the 9:16 crop at the source's resolution (never upscaled, at most
//! 1080x1920), 30 fps, H.264 without B-frames with a keyframe every 30 frames, no audio, fast
//! start — judged here by ffprobe and ffmpeg; a render from it matches a render from the
//! source; footage that cannot be prepared adds nothing and leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

use crate::support::*;

/// `storyreel backgrounds add SRC --dir LIB` with its scratch files under `tmp` (TMPDIR), no
/// length minimum (fixtures are short), and `extra` arguments.
fn add_command(lib: &Path, tmp: &Path, src: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_storyreel"));
    c.args(["backgrounds", "add", "--min-seconds", "0", "--dir"])
        .arg(lib)
        .arg(src)
        .env("TMPDIR", tmp);
    c
}

/// Adds `src` to the library in `lib`; returns the stored file, its metadata and stderr.
fn add(lib: &Path, tmp: &Path, src: &Path) -> (PathBuf, Value, String) {
    let out = run(&mut add_command(lib, tmp, src));
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let video = lib.join(format!("backgrounds/{id}.mp4"));
    let meta = std::fs::read(lib.join(format!("backgrounds/{id}.json"))).expect("metadata");
    let meta = serde_json::from_slice(&meta).expect("metadata is JSON");
    assert_nothing_left(tmp);
    (
        video,
        meta,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Names of the entries of `dir` (none if it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn assert_nothing_left(tmp: &Path) {
    assert_eq!(
        entries(tmp),
        Vec::<String>::new(),
        "scratch files left in TMPDIR"
    );
}

/// Per frame, in presentation order: (key frame, picture type, time in s).
fn frames(path: &Path) -> Vec<(bool, String, f64)> {
    let v = ffprobe(
        path,
        &[
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=key_frame,pict_type,best_effort_timestamp_time",
        ],
    );
    v["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| {
            (
                num(f, "key_frame") == 1.0,
                text(f, "pict_type").to_string(),
                num(f, "best_effort_timestamp_time"),
            )
        })
        .collect()
}

/// The checks of issue 15's "done when" on one prepared file of `w x h` lasting `frames`.
fn assert_prepared(video: &Path, (w, h): (u64, u64), want_frames: u64) {
    let streams = streams(video);
    assert_eq!(streams.len(), 1, "one stream, no audio: {streams:#?}");
    let v = only_stream(&streams, "video");
    assert_eq!(text(v, "codec_name"), "h264");
    assert_eq!(num(v, "has_b_frames"), 0.0, "{v}");
    assert_eq!(text(v, "avg_frame_rate"), "30/1");
    assert_eq!(text(v, "r_frame_rate"), "30/1");
    assert_eq!((num(v, "width") as u64, num(v, "height") as u64), (w, h));
    // 9:16 up to the even size whose render crop is the source's (a few pixels).
    let off = (w as f64 - h as f64 * 9.0 / 16.0).abs();
    assert!(off < 4.0, "{w}x{h} is not 9:16");
    assert_eq!(num(v, "nb_read_frames") as u64, want_frames);
    assert_eq!(decode_errors(video), "", "ffmpeg decodes without complaint");
    let frames = frames(video);
    assert_eq!(frames.len() as u64, want_frames);
    for (i, (key, kind, t)) in frames.iter().enumerate() {
        assert_eq!(*key, i % 30 == 0, "frame {i}: key frame every 30 frames");
        assert!(kind == "I" || kind == "P", "frame {i} is a {kind} picture");
        assert!(
            (t - i as f64 / 30.0).abs() < 1e-3,
            "frame {i} at {t} s (expected {} s)",
            i as f64 / 30.0
        );
    }
    let boxes: Vec<String> = top_level_boxes(video).into_iter().map(|b| b.0).collect();
    let at = |k: &str| boxes.iter().position(|b| b == k);
    assert!(
        at("ftyp") == Some(0) && at("moov").is_some() && at("moov") < at("mdat"),
        "fast start (moov before mdat): {boxes:?}"
    );
}

/// Every frame of `video` against ffmpeg's crop (`crop`, e.g. `204:360:218:0`) of the source
/// frame shown at i/30 s; returns the worst PSNR (Y) in dB.
fn worst_psnr_against_source(video: &Path, src: &Path, src_fps: u64, crop: &str) -> f64 {
    let (w, h): (usize, usize) = {
        let mut it = crop
            .split(':')
            .map(|v| v.parse::<usize>().expect("crop size"));
        (it.next().expect("w"), it.next().expect("h"))
    };
    let ours = raw_frames(video, "format=gray", "gray", w * h);
    let reference = raw_frames(src, &format!("crop={crop},format=gray"), "gray", w * h);
    ours.iter()
        .enumerate()
        .map(|(i, f)| {
            let k = (i as u64 * src_fps / 30) as usize % reference.len();
            psnr(f, &reference[k])
        })
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn issue15_added_60fps_footage_with_b_frames_is_stored_prepared() {
    let dir = tempdir();
    let d = dir.path();
    let (lib, tmp) = (d.join("lib"), d.join("tmp"));
    std::fs::create_dir(&tmp).expect("tmp");
    // 640x360 at 60 fps with B-frames (3, pyramid) and two-second GOPs.
    let src = counter_video(d, "src.mp4", (640, 360), 60, 3.0);
    let (video, meta, stderr) = add(&lib, &tmp, &src);
    let id = meta["id"].as_str().expect("id");
    assert!(
        stderr.contains(&format!(
            "added {id}: 204x360 30 fps 3.0 s h264 (from 640x360 60 fps h264, prepared in"
        )),
        "{stderr}"
    );
    assert_prepared(&video, (204, 360), 90);
    // Source columns 218..422: the centre that a render of either file keeps.
    let worst = worst_psnr_against_source(&video, &src, 60, "204:360:218:0");
    assert!(
        worst > 40.0,
        "worst frame {worst:.1} dB against the source's crop"
    );
    // The metadata describes the stored file, and the source under `source`.
    let bytes = std::fs::metadata(&video).expect("stored").len();
    for (k, want) in [
        ("width", 204.0),
        ("height", 360.0),
        ("fps", 30.0),
        ("frames", 90.0),
        ("keyint", 30.0),
        ("duration_ms", 3000.0),
        ("bytes", bytes as f64),
    ] {
        assert_eq!(num(&meta, k), want, "{k} in {meta:#}");
    }
    assert_eq!(meta["codec"], "h264");
    assert_eq!(meta["preset"], "faster");
    assert!(num(&meta, "crf") > 0.0 && num(&meta, "prepare_ms") > 0.0);
    let s = &meta["source"];
    assert_eq!(
        (num(s, "width"), num(s, "height"), num(s, "fps")),
        (640.0, 360.0, 60.0)
    );
    assert_eq!(
        (s["codec"].as_str(), s["name"].as_str()),
        (Some("h264"), Some("src.mp4"))
    );
    assert_eq!(
        num(s, "bytes") as u64,
        std::fs::metadata(&src).expect("src").len()
    );
    assert!((num(s, "duration_ms") - 3000.0).abs() <= 20.0, "{s}");
    let mut stored = entries(&lib.join("backgrounds"));
    stored.sort();
    assert_eq!(stored, [format!("{id}.json"), format!("{id}.mp4")]);
}

#[test]
fn issue15_prepare_never_upscales_and_caps_at_1080x1920() {
    let dir = tempdir();
    let d = dir.path();
    let (lib, tmp) = (d.join("lib"), d.join("tmp"));
    std::fs::create_dir(&tmp).expect("tmp");
    let h264 = ["-c:v", "libx264", "-preset", "ultrafast"];
    // Small and already 9:16: kept as it is. Taller than 9:16: the height is cut, the width
    // kept. Larger than the output: scaled down to exactly 1080x1920. 25 fps: 30 fps out.
    for ((w, h), fps, want) in [
        ((180, 320), 30, (180, 320)),
        ((360, 800), 25, (360, 640)),
        ((1280, 2400), 30, (1080, 1920)),
    ] {
        let src = testsrc_video(d, &format!("{w}x{h}.mp4"), (w, h), fps, 1.0, &h264);
        let (video, meta, _) = add(&lib, &tmp, &src);
        assert_prepared(&video, want, 30);
        assert_eq!(
            (
                num(&meta["source"], "width"),
                num(&meta["source"], "height")
            ),
            (f64::from(w), f64::from(h))
        );
    }
}

/// Mean PSNR (Y, dB) of the first 60 frames of `render` (background only) against ffmpeg's
/// own crop-and-scale of the source frame on screen at i/30 s (`src_fps`, started at 0).
fn mean_psnr_against_reference(render: &Path, src: &Path, (w, h): (u32, u32), src_fps: u64) -> f64 {
    let bytes = 1080 * 1920;
    let ours = raw_frames(render, "format=gray", "gray", bytes);
    // ffmpeg's "cover" fit: the centred 9:16 crop (offset and size rounded down to even by
    // the crop filter on 4:2:0), bilinear scaled to 1080x1920.
    let (cw, ch) = (w.min(h * 9 / 16), h.min(w * 16 / 9));
    let reference = raw_frames(
        src,
        &format!("crop={cw}:{ch},scale=1080:1920:flags=bilinear,format=gray"),
        "gray",
        bytes,
    );
    let total: f64 = ours
        .iter()
        .take(60)
        .enumerate()
        .map(|(i, f)| {
            psnr(
                f,
                &reference[(i as u64 * src_fps / 30) as usize % reference.len()],
            )
        })
        .sum();
    total / 60.0
}

#[test]
fn issue15_render_from_the_prepared_file_matches_a_render_from_the_source() {
    let dir = tempdir();
    let d = dir.path();
    let (lib, tmp) = (d.join("lib"), d.join("tmp"));
    std::fs::create_dir(&tmp).expect("tmp");
    // The suite's sharpest footage: a moving test pattern under an enlarged counter, at 60 fps
    // with B-frames. 1280x720 prepares to 408x720.
    let size = (1280, 720);
    let src = counter_video(d, "src.mp4", size, 60, 3.0);
    let (prepared, _, _) = add(&lib, &tmp, &src);
    assert_prepared(&prepared, (408, 720), 90);
    // The only word starts where the narration ends: frames 0..60 show just the background.
    let audio = click_wav(d, "narration.wav", 2000.0, &[]);
    let marks = write(d, "marks.jsonl", marks_jsonl(&[("end", 2000)]));
    // Default render settings: what a video made from either file gets.
    let render = |bg: &Path, name: &str| {
        let out = d.join(name);
        Job::new(&audio, &marks, &out)
            .background(bg)
            .args(&["--start", "0"])
            .run_ok();
        out
    };
    let from_source = mean_psnr_against_reference(&render(&src, "raw.mp4"), &src, size, 60);
    let from_prepared =
        mean_psnr_against_reference(&render(&prepared, "prepared.mp4"), &src, size, 60);
    eprintln!(
        "render from the source {from_source:.2} dB, from the prepared file {from_prepared:.2} dB"
    );
    assert!(
        from_source > 35.0 && (from_source - from_prepared).abs() <= 0.5,
        "against ffmpeg's crop and scale of the source: render from the source {from_source:.2} \
         dB, from the prepared file {from_prepared:.2} dB (expected within 0.5 dB)"
    );
}

/// A fast-start 320x180 H.264 clip (25 fps, B-frames): its bytes and where its mdat payload
/// starts and ends.
fn fast_start_clip(d: &Path) -> (Vec<u8>, usize, usize) {
    let args = [
        "-c:v",
        "libx264",
        "-bf",
        "3",
        "-g",
        "25",
        "-movflags",
        "+faststart",
    ];
    let p = testsrc_video(d, "whole.mp4", (320, 180), 25, 2.0, &args);
    let boxes = top_level_boxes(&p);
    let (at, size) = boxes
        .iter()
        .find(|b| b.0 == "mdat")
        .map(|b| (b.1 as usize, b.2 as usize))
        .expect("mdat");
    (std::fs::read(&p).expect("read clip"), at + 8, at + size)
}

#[test]
fn issue15_corrupt_or_truncated_footage_adds_nothing_and_leaves_nothing_behind() {
    let dir = tempdir();
    let d = dir.path();
    let (lib, tmp) = (d.join("lib"), d.join("tmp"));
    std::fs::create_dir(&tmp).expect("tmp");
    let (bytes, start, end) = fast_start_clip(d);
    // Slice data of the second half of the pictures replaced by noise (framing intact): found
    // while preparing, after frames have been encoded.
    let mut noisy = bytes.clone();
    let mut pos = start;
    while pos + 4 < end {
        let len = u32::from_be_bytes(noisy[pos..pos + 4].try_into().expect("4 bytes")) as usize;
        let nal = pos + 4;
        if matches!(noisy[nal] & 0x1f, 1 | 5) && pos > (start + end) / 2 && len > 16 {
            noisy[nal + 8..nal + len]
                .copy_from_slice(&crate::support::noise(0x2545_F491_4F6C_DD1Du64, len - 8));
        }
        pos = nal + len;
    }
    let cases: Vec<(PathBuf, &[&str])> = vec![
        (
            write(
                d,
                "noise.mp4",
                crate::support::noise(0x2545_F491_4F6C_DD1Du64, 65_536),
            ),
            &["cannot be decoded"],
        ),
        (
            write(d, "cut-mdat.mp4", &bytes[..(start + end) / 2]),
            &["cannot be decoded", "truncated"],
        ),
        (
            write(d, "noisy-slices.mp4", &noisy),
            &["cannot be decoded", "corrupt"],
        ),
        (d.join("missing.mp4"), &["cannot read it"]),
    ];
    for (src, needles) in cases {
        let out: Output = add_command(&lib, &tmp, &src)
            .output()
            .expect("run storyreel");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{} was added", src.display());
        assert!(!stderr.contains("panicked"), "{stderr}");
        let name = src.to_str().expect("utf-8 path");
        for n in needles.iter().chain([&name]) {
            assert!(
                stderr.contains(n),
                "{name}: stderr should mention {n:?}:\n{stderr}"
            );
        }
        assert_eq!(
            entries(&lib.join("backgrounds")),
            Vec::<String>::new(),
            "{name}: the library has objects after a failed add"
        );
        assert_nothing_left(&tmp);
        assert!(out.stdout.is_empty(), "{name}: an id was printed");
    }
}
