//! Background footage of any frame rate, shape, GOP structure and length: each output frame
//! must show the source picture presented at or before `start + i/30` s (looping), cropped to
//! fill 9:16 and scaled like ffmpeg's own `crop` + bilinear `scale` would.

use std::path::Path;

use crate::support::*;

/// Rows at the top of the output where nothing but the background is ever drawn (9% of 1920).
const TOP_ROWS: usize = 172;

/// 2 s of narration with two captioned words.
fn narration(d: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let audio = click_wav(d, "narration.wav", 2000.0, &[300.0, 1200.0]);
    let marks = write(
        d,
        "marks.jsonl",
        marks_jsonl(&[("quick", 300), ("brown", 1200)]),
    );
    (audio, marks)
}

/// Renders 2 s of narration over `bg` from `start_ms`, checks the file decodes cleanly with the
/// right frame count, and checks every frame's background against ffmpeg's reference.
fn render_over(d: &Path, bg: &Path, src_size: (u32, u32), src_fps: u32, start_ms: u64) {
    let (audio, marks) = narration(d);
    let out = d.join("out.mp4");
    let start = format!("{}", start_ms as f64 / 1000.0);
    Job::new(&audio, &marks, &out)
        .background(bg)
        .args(&["--start", &start, "--crf", "12", "--preset", "ultrafast"])
        .run_ok();
    assert_eq!(decode_errors(&out), "", "ffmpeg decodes without complaint");
    let frames = expected_frames(2000);
    let v = only_stream(&streams(&out), "video").clone();
    assert_eq!(num(&v, "nb_read_frames") as u64, frames, "frames decoded");
    assert_background_follows_source(&out, bg, src_size, src_fps, start_ms);
}

/// Compares the top rows of every output frame with ffmpeg's rendering of the source frame
/// that should be on screen, and with its neighbours in time, which must match worse.
fn assert_background_follows_source(
    out: &Path,
    bg: &Path,
    (w, h): (u32, u32),
    src_fps: u32,
    start_ms: u64,
) {
    let bytes = 1080 * TOP_ROWS;
    let top = format!("crop=1080:{TOP_ROWS}:0:0");
    let ours = raw_frames(out, &format!("{top},format=gray"), "gray", bytes);
    // ffmpeg's "cover" fit: the centred 9:16 crop (of the 4:2:0 picture, so offset and size
    // round down to even numbers), bilinear scaled to 1080x1920.
    let (cw, ch) = (w.min(h * 9 / 16), h.min(w * 16 / 9));
    let reference = raw_frames(
        bg,
        &format!("crop={cw}:{ch},scale=1080:1920:flags=bilinear,{top},format=gray"),
        "gray",
        bytes,
    );
    let n = reference.len() as i64;
    assert!(n > 20, "the reference has only {n} frames");
    let src = |k: i64| &reference[k.rem_euclid(n) as usize];
    let mut bad = Vec::new();
    for (i, frame) in ours.iter().enumerate() {
        // Source frame presented at or before start + i/30 s (frame k shows from k/fps s).
        let k = ((start_ms * 30 + i as u64 * 1000) * u64::from(src_fps) / 30_000) as i64;
        let here = psnr(frame, src(k));
        let next = psnr(frame, src(k + 1)).max(psnr(frame, src(k - 1)));
        let far = psnr(frame, src(k + 10)).max(psnr(frame, src(k - 10)));
        if here <= 28.0 || here <= next || far > here - 6.0 {
            bad.push(format!(
                "frame {i}: source frame {} {here:.1} dB, ±1 frame {next:.1} dB, ±10 frames {far:.1} dB",
                k.rem_euclid(n)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} frames do not show the source frame at or before start + i/30 s (expected \
         > 28 dB against it, less against its neighbours, 6 dB less 10 frames away):\n{}",
        bad.len(),
        ours.len(),
        bad.join("\n")
    );
}

#[test]
fn landscape_background_with_b_frames_is_cropped_scaled_and_timed_like_ffmpeg() {
    let dir = tempdir();
    let bg = counter_video(dir.path(), "bg.mp4", (1280, 720), 25, 4.0);
    render_over(dir.path(), &bg, (1280, 720), 25, 500);
}

#[test]
fn background_at_60fps_is_resampled_to_30fps() {
    let dir = tempdir();
    let bg = counter_video(dir.path(), "bg.mp4", (854, 480), 60, 3.0);
    render_over(dir.path(), &bg, (854, 480), 60, 250);
}

#[test]
fn portrait_background_is_scaled_without_crop() {
    let dir = tempdir();
    let bg = counter_video(dir.path(), "bg.mp4", (720, 1280), 30, 3.0);
    render_over(dir.path(), &bg, (720, 1280), 30, 0);
}

#[test]
fn background_shorter_than_the_narration_loops() {
    let dir = tempdir();
    let bg = counter_video(dir.path(), "bg.mp4", (640, 360), 25, 1.0);
    render_over(dir.path(), &bg, (640, 360), 25, 0);
}

/// Worst 10x10 block of two `width`-wide gray pictures, as PSNR in dB, with its position.
fn worst_block(a: &[u8], b: &[u8], width: usize) -> (f64, usize, usize) {
    let height = a.len() / width;
    let mut worst = (f64::INFINITY, 0, 0);
    for by in (0..height - 9).step_by(10) {
        for bx in (0..width - 9).step_by(10) {
            let rows = |p: &[u8]| -> Vec<u8> {
                (by..by + 10)
                    .flat_map(|y| p[y * width + bx..][..10].to_vec())
                    .collect()
            };
            let db = psnr(&rows(a), &rows(b));
            if db < worst.0 {
                worst = (db, bx, by);
            }
        }
    }
    worst
}

#[test]
fn background_with_b_pyramid_decodes_like_ffmpeg() {
    // x264's defaults (3 B-frames, B-pyramid) are what most footage is encoded with; H.264
    // decoding is exact, so apart from scaling each output frame must equal ffmpeg's decode
    // everywhere, not just on average.
    let dir = tempdir();
    let d = dir.path();
    // 854x480 at 30 fps: one source frame per output frame, crop 270x480 (exact 9:16).
    let bg = counter_video(d, "bg.mp4", (854, 480), 30, 3.0);
    // The only word starts at the end of the narration: frames 0..60 show just the background.
    let audio = click_wav(d, "narration.wav", 2000.0, &[]);
    let marks = write(d, "marks.jsonl", marks_jsonl(&[("end", 2000)]));
    let out = d.join("out.mp4");
    Job::new(&audio, &marks, &out)
        .background(&bg)
        .args(&["--start", "0", "--crf", "0", "--preset", "ultrafast"])
        .run_ok();
    // Compared at a quarter of the size: a wrong 16x16 macroblock is still a 10x10 block, while
    // rounding differences between the two bilinear scalers average out.
    let (w, h) = (270, 480);
    let small = format!("scale={w}:{h}:flags=area,format=gray");
    let ours = raw_frames(&out, &small, "gray", w * h);
    let reference = raw_frames(
        &bg,
        &format!("crop=270:480,scale=1080:1920:flags=bilinear,{small}"),
        "gray",
        w * h,
    );
    assert_eq!(ours.len() as u64, expected_frames(2000));
    assert_eq!(reference.len(), 90, "3 s of source at 30 fps");
    let mut bad = Vec::new();
    for (i, frame) in ours.iter().enumerate().take(60) {
        let (db, x, y) = worst_block(frame, &reference[i], w);
        if db < 35.0 {
            bad.push(format!(
                "frame {i}: block at ({}, {}) of the 1080x1920 output is {db:.1} dB",
                x * 4,
                y * 4
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "the background differs from ffmpeg's decode of the same frames (expected every \
         40x40 block > 35 dB):\n{}",
        bad.join("\n")
    );
}

#[test]
fn phone_video_with_a_rotation_matrix_is_turned_upright_like_players_do() {
    // Phones record portrait as landscape pictures plus a 90° display matrix; ffmpeg (the
    // reference here) applies it when decoding, and so must storyreel.
    let dir = tempdir();
    let d = dir.path();
    let landscape = counter_video(d, "landscape.mp4", (1280, 720), 30, 3.0);
    for degrees in [90, 270] {
        let bg = d.join(format!("rotated-{degrees}.mp4"));
        run(ffmpeg()
            .arg("-i")
            .arg(&landscape)
            .args([
                "-c",
                "copy",
                "-metadata:s:v:0",
                &format!("rotate={degrees}"),
            ])
            .arg(&bg));
        render_over(d, &bg, (720, 1280), 30, 0);
    }
}

/// Draws the same source times from `bg` with libavcodec and with `rusty_h264`: frame by frame
/// through one loop and a second, then seeks back and forth. Every picture must be identical,
/// since both are exact H.264 decoders; this is what lets a chunk decoded by one (a machine
/// with FFmpeg) join a chunk decoded by the other (a Lambda).
fn assert_decoders_agree(bg: &Path) {
    use storyreel::background::{DecoderKind, VideoBackground};
    let open = |kind| {
        let mut v = VideoBackground::open_file(bg).expect("open background");
        v.use_decoder(kind);
        assert_eq!(v.decoder(), kind);
        v
    };
    let mut av = open(DecoderKind::Libavcodec);
    let mut rusty = open(DecoderKind::RustyH264);
    let ts = i64::from(av.track().timescale);
    let duration = av.track().duration;
    // Output frames at 30 fps past the end (the footage loops), then pseudo-random seeks.
    let mut times: Vec<i64> = (0..)
        .map(|i| i * ts / 30)
        .take_while(|&t| t < duration + ts)
        .collect();
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    for _ in 0..40 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        times.push((x % (duration as u64 * 2)) as i64);
    }
    for t in times {
        let a = av
            .draw(t, 360, 640)
            .unwrap_or_else(|e| panic!("libavcodec at {t}: {e}"));
        let (ay, au, av_) = (a.y.clone(), a.u.clone(), a.v.clone());
        let r = rusty
            .draw(t, 360, 640)
            .unwrap_or_else(|e| panic!("rusty_h264 at {t}: {e}"));
        assert!(
            ay == r.y && au == r.u && av_ == r.v,
            "{}: the two decoders differ at source time {t}/{ts} s",
            bg.display()
        );
    }
}

#[test]
fn libavcodec_and_rusty_h264_show_identical_pictures() {
    storyreel::background::decoder::libavcodec_available()
        .expect("the tests install ffmpeg, and with it libavcodec");
    let dir = tempdir();
    let d = dir.path();
    fn enc<'a>(extra: &[&'a str]) -> Vec<&'a str> {
        let mut a = vec!["-c:v", "libx264", "-preset", "veryfast", "-crf", "20"];
        a.extend_from_slice(extra);
        a
    }
    let kinds: Vec<std::path::PathBuf> = vec![
        // B-pyramid, 2 s GOPs (x264's defaults).
        counter_video(d, "pyramid.mp4", (854, 480), 30, 3.0),
        // 25 fps, picture height not a multiple of 16 (cropped in the SPS), 1 s GOPs.
        testsrc_video(
            d,
            "25fps.mp4",
            (640, 360),
            25,
            2.5,
            &enc(&["-bf", "3", "-g", "25"]),
        ),
        // 60 fps: every other picture is skipped when not a reference.
        testsrc_video(
            d,
            "60fps.mp4",
            (480, 270),
            60,
            2.0,
            &enc(&["-bf", "2", "-g", "60"]),
        ),
        // Portrait, Baseline profile (CAVLC, no B-frames).
        testsrc_video(
            d,
            "baseline.mp4",
            (360, 640),
            30,
            2.0,
            &enc(&["-profile:v", "baseline", "-g", "20"]),
        ),
        // Open GOPs: sync samples are I pictures that are not IDRs; four slices a picture,
        // weighted prediction.
        testsrc_video(
            d,
            "open-gop.mp4",
            (640, 352),
            30,
            3.0,
            &enc(&[
                "-bf",
                "3",
                "-x264-params",
                "open-gop=1:keyint=30:min-keyint=30:slices=4:weightp=2",
            ]),
        ),
    ];
    for bg in &kinds {
        assert_decoders_agree(bg);
    }
    // A rotation matrix (phone video) is applied the same way to both decoders' pictures.
    let rotated = d.join("rotated.mp4");
    run(ffmpeg()
        .arg("-i")
        .arg(&kinds[0])
        .args(["-c", "copy", "-metadata:s:v:0", "rotate=90"])
        .arg(&rotated));
    assert_decoders_agree(&rotated);
}

#[test]
fn the_decoder_can_be_chosen_and_renders_the_same_video() {
    let dir = tempdir();
    let d = dir.path();
    let bg = counter_video(d, "bg.mp4", (854, 480), 30, 3.0);
    let (audio, marks) = narration(d);
    let mut md5s = Vec::new();
    for decoder in ["libavcodec", "rusty_h264"] {
        let out = d.join(format!("{decoder}.mp4"));
        Job::new(&audio, &marks, &out)
            .background(&bg)
            .args(&["--start", "0.5", "--preset", "ultrafast"])
            .env("STORYREEL_H264_DECODER", decoder)
            .run_ok();
        md5s.push(filtered_frame_md5s(&out, "null"));
    }
    assert_eq!(md5s[0].len() as u64, expected_frames(2000));
    assert!(md5s[0] == md5s[1], "the two decoders gave different videos");
    // A value that names no decoder is refused, naming the variable and the choices.
    let out = Job::new(&audio, &marks, &d.join("bad.mp4"))
        .background(&bg)
        .env("STORYREEL_H264_DECODER", "ffmpeg")
        .run();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    for needle in [
        "STORYREEL_H264_DECODER",
        "\"ffmpeg\"",
        "libavcodec",
        "rusty_h264",
        "bg.mp4",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from: {err}");
    }
}
