//! Bad input fails cleanly: exit status 1, an `error:` line naming the problem and the file at
//! fault, no panic, and nothing left under the output's name.

use std::path::{Path, PathBuf};

use crate::support::*;

/// Valid narration and marks: 2 s, two words.
fn good_inputs(d: &Path) -> (PathBuf, PathBuf) {
    let audio = click_wav(d, "narration.wav", 2000.0, &[300.0, 1200.0]);
    let marks = write(
        d,
        "marks.jsonl",
        marks_jsonl(&[("quick", 300), ("brown", 1200)]),
    );
    (audio, marks)
}

/// Runs `job`, expecting a clean failure whose message contains every one of `needles`;
/// returns the message.
fn assert_fails(job: &Job, needles: &[&str]) -> String {
    let out = job.run();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{:?} should fail with status 1, got {}:\n{stderr}",
        job.command(),
        out.status
    );
    assert!(
        !stderr.contains("panicked"),
        "panic on bad input:\n{stderr}"
    );
    assert!(stderr.contains("error: "), "no error line:\n{stderr}");
    for n in needles {
        assert!(stderr.contains(n), "stderr should mention {n:?}:\n{stderr}");
    }
    // No partial video, and no temporary files or chunk folders beside it either.
    let dir = job.out.parent().expect("output has a folder");
    let stem = job.out.file_stem().and_then(|s| s.to_str()).expect("stem");
    let left: Vec<String> = std::fs::read_dir(dir)
        .expect("list output folder")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(stem))
        .collect();
    assert!(
        left.is_empty(),
        "left behind after the failure: {left:?}\n{stderr}"
    );
    stderr
}

fn str_path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Renders 2 s of narration over `bg`, expecting failure mentioning `needles` and `bg`;
/// returns the message.
fn assert_background_rejected(d: &Path, bg: &Path, needles: &[&str]) -> String {
    assert_background_rejected_by(d, bg, needles, "auto")
}

/// As [`assert_background_rejected`], with FFmpeg's libraries turned off (with them, other
/// codecs than H.264 render: tests/codecs.rs).
fn assert_background_rejected_without_ffmpeg(d: &Path, bg: &Path, needles: &[&str]) -> String {
    let (audio, marks) = good_inputs(d);
    let job = Job::new(&audio, &marks, &d.join("out.mp4"))
        .background(bg)
        .args(&["--start", "0", "--preset", "ultrafast"])
        .env("STORYREEL_FFMPEG", "off");
    let mut all = needles.to_vec();
    all.push(str_path(bg));
    assert_fails(&job, &all)
}

/// As [`assert_background_rejected`], with `STORYREEL_H264_DECODER=decoder`.
fn assert_background_rejected_by(d: &Path, bg: &Path, needles: &[&str], decoder: &str) -> String {
    let (audio, marks) = good_inputs(d);
    let job = Job::new(&audio, &marks, &d.join("out.mp4"))
        .background(bg)
        .args(&["--start", "0", "--preset", "ultrafast"])
        .env("STORYREEL_H264_DECODER", decoder);
    let mut all = needles.to_vec();
    all.push(str_path(bg));
    assert_fails(&job, &all)
}

/// An H.264 MP4 (moov at the end unless `faststart`) and its top-level boxes.
fn real_mp4(d: &Path, faststart: bool) -> (PathBuf, Vec<(String, u64, u64)>) {
    let mut args = vec!["-c:v", "libx264", "-bf", "3", "-g", "25"];
    if faststart {
        args.extend(["-movflags", "+faststart"]);
    }
    let p = testsrc_video(d, "whole.mp4", (320, 180), 25, 2.0, &args);
    let boxes = top_level_boxes(&p);
    (p, boxes)
}

fn find_box(boxes: &[(String, u64, u64)], kind: &str) -> (u64, u64) {
    boxes
        .iter()
        .find(|b| b.0 == kind)
        .map(|b| (b.1, b.2))
        .unwrap_or_else(|| panic!("no `{kind}` in {boxes:?}"))
}

/// The first `len` bytes of `src`, written to `d/name`.
fn truncated(src: &Path, d: &Path, name: &str, len: u64) -> PathBuf {
    let bytes = std::fs::read(src).expect("read mp4");
    write(d, name, &bytes[..len as usize])
}

/// `len` bytes of xorshift noise, the same every run.
fn noise(len: usize) -> Vec<u8> {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A file of noise (no box structure at all), rejected; returns the message.
fn reject_random_bytes(d: &Path) -> String {
    let bg = write(d, "noise.mp4", noise(65_536));
    assert_background_rejected(d, &bg, &["background", "not an mp4"])
}

#[test]
fn issue2_background_of_random_bytes_is_rejected() {
    let dir = tempdir();
    reject_random_bytes(dir.path());
}

#[test]
fn issue2_background_truncated_inside_moov_is_rejected() {
    let dir = tempdir();
    let d = dir.path();
    let (whole, boxes) = real_mp4(d, false);
    let (at, size) = find_box(&boxes, "moov");
    let bg = truncated(&whole, d, "cut-moov.mp4", at + size / 2);
    assert_background_rejected(d, &bg, &["background", "moov"]);
}

#[test]
fn issue2_background_with_mdat_cut_short_is_rejected() {
    let dir = tempdir();
    let d = dir.path();
    let (whole, boxes) = real_mp4(d, true);
    let (moov, _) = find_box(&boxes, "moov");
    let (at, size) = find_box(&boxes, "mdat");
    assert!(moov < at, "faststart puts moov first: {boxes:?}");
    let bg = truncated(&whole, d, "cut-mdat.mp4", at + size / 2);
    assert_background_rejected(d, &bg, &["background", "truncated"]);
}

/// A fast-start H.264 MP4's bytes, with where its media data starts and ends.
fn fast_start_mp4_bytes(d: &Path) -> (Vec<u8>, usize, usize) {
    let (whole, boxes) = real_mp4(d, true);
    let (at, size) = find_box(&boxes, "mdat");
    let bytes = std::fs::read(&whole).expect("read mp4");
    (bytes, (at + 8) as usize, (at + size) as usize)
}

#[test]
fn issue2_background_with_corrupt_h264_data_is_rejected() {
    // Intact boxes and sample tables, but the last three quarters of the media data are noise:
    // this fails while chunks are being rendered, not when the file is opened.
    let dir = tempdir();
    let d = dir.path();
    let (mut bytes, start, to) = fast_start_mp4_bytes(d);
    let from = start + (to - start) / 4;
    bytes[from..to].copy_from_slice(&noise(to - from));
    let bg = write(d, "garbage.mp4", bytes);
    assert_background_rejected(d, &bg, &["background", "corrupt h.264"]);
}

#[test]
fn background_with_corrupt_slice_data_is_rejected_by_either_decoder() {
    // Framing intact (every NAL unit's length and header), but the slice data of the second
    // half of the pictures is noise: only the decoder itself can notice. Neither decoder may
    // conceal it into a picture.
    let dir = tempdir();
    let d = dir.path();
    let (mut bytes, start, end) = fast_start_mp4_bytes(d);
    let mut pos = start;
    let mut slices = 0;
    while pos + 4 < end {
        let len = u32::from_be_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        let nal = pos + 4;
        assert!(
            nal + len <= end,
            "one video track: mdat is length-prefixed NAL units"
        );
        let kind = bytes[nal] & 0x1f;
        if matches!(kind, 1 | 5) && pos > (start + end) / 2 && len > 16 {
            bytes[nal + 8..nal + len].copy_from_slice(&noise(len - 8));
            slices += 1;
        }
        pos = nal + len;
    }
    assert!(slices > 5, "{slices} slices corrupted");
    let bg = write(d, "noisy-slices.mp4", bytes);
    for decoder in ["libavcodec", "rusty_h264"] {
        assert_background_rejected_by(
            d,
            &bg,
            &["background", "corrupt h.264 data at frame"],
            decoder,
        );
    }
}

/// An HEVC MP4, rejected; returns the message.
fn reject_hevc(d: &Path) -> String {
    let bg = testsrc_video(
        d,
        "hevc.mp4",
        (320, 180),
        25,
        0.5,
        &["-c:v", "libx265", "-x265-params", "log-level=error"],
    );
    assert_background_rejected_without_ffmpeg(d, &bg, &["HEVC video in MP4"])
}

#[test]
fn issue2_hevc_background_is_rejected_naming_the_codec() {
    let dir = tempdir();
    reject_hevc(dir.path());
}

#[test]
fn issue2_vp9_in_mp4_background_is_rejected_naming_the_codec() {
    let dir = tempdir();
    let d = dir.path();
    let bg = testsrc_video(
        d,
        "vp9.mp4",
        (320, 180),
        25,
        0.5,
        &[
            "-c:v",
            "libvpx-vp9",
            "-deadline",
            "realtime",
            "-cpu-used",
            "8",
        ],
    );
    assert_background_rejected_without_ffmpeg(d, &bg, &["VP9 video in MP4"]);
}

#[test]
fn issue2_missing_background_is_rejected() {
    let dir = tempdir();
    let d = dir.path();
    let bg = d.join("no-such-clip.mp4");
    assert_background_rejected(d, &bg, &["cannot read background"]);
}

#[test]
fn issue2_audio_without_samples_is_rejected() {
    let dir = tempdir();
    let d = dir.path();
    let (_, marks) = good_inputs(d);
    let audio = d.join("empty.wav");
    storyreel_audio::write_wav(&audio, &storyreel_audio::Pcm::new(48_000, Vec::new()))
        .expect("write empty wav");
    assert_eq!(
        std::fs::metadata(&audio).expect("wav written").len(),
        44,
        "a bare WAV header"
    );
    let job = Job::new(&audio, &marks, &d.join("out.mp4"));
    assert_fails(&job, &["no samples", str_path(&audio)]);
}

/// Marks whose line 3 is cut off mid-object, rejected; returns the message.
fn reject_malformed_marks(d: &Path) -> String {
    let (audio, good) = good_inputs(d);
    let mut lines: Vec<String> = std::fs::read_to_string(good)
        .expect("read marks")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(lines.len() >= 3);
    lines[2] = "{\"time\":1200,\"type\":\"word\",".to_string();
    let marks = write(d, "broken.jsonl", lines.join("\n"));
    let job = Job::new(&audio, &marks, &d.join("out.mp4"));
    assert_fails(&job, &["line 3", str_path(&marks)])
}

#[test]
fn issue2_malformed_marks_name_the_line_and_file() {
    let dir = tempdir();
    reject_malformed_marks(dir.path());
}

#[test]
fn issue2_marks_past_the_end_of_the_audio_name_the_word_and_times() {
    let dir = tempdir();
    let d = dir.path();
    let (audio, _) = good_inputs(d);
    let marks = write(
        d,
        "late.jsonl",
        marks_jsonl(&[("quick", 300), ("brown", 1200), ("straggler", 2600)]),
    );
    let job = Job::new(&audio, &marks, &d.join("out.mp4"));
    assert_fails(&job, &["straggler", "2600", "2000", str_path(&marks)]);
}

#[test]
fn error_messages_state_each_cause_once() {
    // `error: a: b: c` prints the cause chain; a cause whose message also embeds its source
    // makes the chain say the same thing twice.
    let dir = tempdir();
    let d = dir.path();
    for stderr in [
        reject_random_bytes(d),
        reject_hevc(d),
        reject_malformed_marks(d),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.starts_with("error: "))
            .expect("an error line");
        let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
        let repeated: Vec<&str> = parts
            .iter()
            .enumerate()
            .filter(|&(i, p)| p.len() >= 12 && parts[..i].contains(p))
            .map(|(_, p)| *p)
            .collect();
        assert!(
            repeated.is_empty(),
            "{repeated:?} repeated in the message:\n{line}"
        );
    }
}
