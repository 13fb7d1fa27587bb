//! Per-stage costs of the render path on one thread, per 1080x1920 output frame:
//! background decode + fit, scaling alone, caption blend, and x264 alone.
//!
//! `cargo bench --bench stages` (reuses the render benchmark's background when present,
//! otherwise makes a 10 s 1080p one with ffmpeg). Thread CPU time, so other load on the machine
//! matters less than for wall time.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use storyreel::background::{Background, DecoderKind, VideoBackground};
use storyreel::compose::Overlay;
use storyreel::encode::{Encoder, EncoderSettings};
use storyreel::frame::Frame;
use storyreel::render::thread_cpu_time;
use storyreel::scale::Scaler;
use storyreel_captions::pages::{Page, Word};
use storyreel_captions::render::{CaptionRenderer, CaptionStyle};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const W: usize = 1080;
const H: usize = 1920;

fn per_frame(n: u64, mut f: impl FnMut(u64) -> Result<()>) -> Result<Duration> {
    let t0 = thread_cpu_time();
    for i in 0..n {
        f(i)?;
    }
    Ok(thread_cpu_time().saturating_sub(t0) / n as u32)
}

fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/bench-work");
    std::fs::create_dir_all(&dir)?;
    let mut bg = dir.join("background-1080p30.mp4");
    if !bg.exists() {
        bg = dir.join("stages-background.mp4");
        if !bg.exists() {
            let ok = Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
                .arg("testsrc2=s=1920x1080:r=30,noise=alls=4:allf=t")
                .args([
                    "-t", "10", "-c:v", "libx264", "-preset", "fast", "-crf", "22",
                ])
                .args(["-bf", "3", "-g", "60", "-pix_fmt", "yuv420p"])
                .arg(&bg)
                .status()?
                .success();
            if !ok {
                return Err("ffmpeg could not make the background".into());
            }
        }
    }
    let n = 240;

    // Decode + crop + scale, frame by frame from the start (one keyframe pre-roll at most),
    // with each decoder: the one the render uses (libavcodec when installed) and the built-in.
    let decode_fit_with = |kind: DecoderKind| -> Result<Duration> {
        let mut video = VideoBackground::open_file(&bg)?;
        video.use_decoder(kind);
        let mut background = Background::from_video(video, 0);
        per_frame(n, |i| {
            background.draw(i, 30, W, H)?;
            Ok(())
        })
    };
    let default_kind = DecoderKind::from_env()?;
    let decode_fit = decode_fit_with(default_kind)?;
    let decode_fit_rusty = decode_fit_with(DecoderKind::RustyH264)?;

    // Scaling alone: 1920x1080 → crop 606x1080 → 1080x1920.
    let src = Frame::black(1920, 1080);
    let mut scaler = Scaler::new(1920, 1080, W, H);
    let mut out = Frame::black(W, H);
    let scale = per_frame(n, |_| {
        scaler.scale([&src.y, &src.u, &src.v], [1920, 960, 960], &mut out);
        Ok(())
    })?;

    // A three-word caption page with its outline and shadow, blended over a frame (plus the
    // frame copy the painter makes first).
    let captions = CaptionRenderer::new(CaptionStyle::for_frame(W as u32, H as u32));
    let word = |text: &str, start_ms| Word {
        text: text.into(),
        start_ms,
        end_ms: start_ms + 300,
        sentence_end: false,
    };
    let page = Page {
        words: vec![word("set", 0), word("a", 300), word("trap.", 600)],
        start_ms: 0,
        end_ms: 900,
    };
    let sprite = captions.render_page(&page, 1);
    let overlay = Overlay::from_rgba(
        sprite.x,
        sprite.y,
        sprite.width,
        sprite.height,
        &sprite.rgba,
        W,
        H,
    );
    let base = Frame::black(W, H);
    let blend = per_frame(n, |_| {
        out.copy_from(&base);
        overlay.blend(&mut out);
        Ok(())
    })?;
    let page_render = per_frame(20, |i| {
        std::hint::black_box(captions.render_page(&page, i as usize % 3));
        Ok(())
    })?;

    // x264 alone, single-threaded, on the decoded background (so it has real content).
    let mut background = Background::open_file(&bg, 0)?;
    let settings = EncoderSettings {
        width: W as u32,
        height: H as u32,
        fps: 30,
        preset: "veryfast".into(),
        crf: 23.0,
        keyint: 60,
    };
    let mut encoder = Encoder::new(&settings, 1)?;
    let mut frames = Vec::new();
    for i in 0..n {
        frames.push(background.draw(i, 30, W, H)?.clone());
    }
    let mut bytes = Vec::new();
    let x264 = per_frame(n, |i| {
        encoder.encode(&frames[i as usize], &mut bytes)?;
        bytes.clear();
        Ok(())
    })?;

    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("| stage (one thread, per 1080x1920 frame) | CPU ms |");
    println!("|---|---|");
    println!(
        "| background decode + crop + scale (1080p H.264, B-frames), {} | {:.2} |",
        default_kind.name(),
        ms(decode_fit)
    );
    println!(
        "| background decode + crop + scale, rusty_h264 | {:.2} |",
        ms(decode_fit_rusty)
    );
    println!(
        "| of which scaling 1920x1080 → 1080x1920 | {:.2} |",
        ms(scale)
    );
    println!("| frame copy + caption blend | {:.2} |", ms(blend));
    println!(
        "| caption page render (once per page and word) | {:.2} |",
        ms(page_render)
    );
    println!("| x264 veryfast CRF 23, 1 thread | {:.2} |", ms(x264));
    println!(
        "non-x264 per frame (decode+fit, copy+blend) / x264: {:.0}%",
        100.0 * (ms(decode_fit) + ms(blend)) / ms(x264)
    );
    Ok(())
}
