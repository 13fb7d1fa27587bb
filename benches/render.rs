//! Render benchmark: storyreel against ffmpeg burning the same captions into the same
//! background with the same x264 preset and CRF, measured in the same run.
//!
//! storyreel renders twice per run: from the raw 1080p30 background (as ffmpeg does) and from
//! that background's prepared form (what `storyreel backgrounds add` stores and every library
//! job renders: 608x1080, 30 fps, an IDR every second). Preparing is timed once, as the one-time
//! cost it is. Then one chunk starting mid-GOP is rendered on its own (as a Lambda renders it)
//! from a 60 fps background with a 5 s GOP (a screen recorder's) and from its prepared form.
//!
//! `cargo bench --bench render` (needs ffmpeg with libass, espeak-ng, fonts-league-spartan:
//! `scripts/setup.sh` installs them). Prints a Markdown report for BENCHMARKS.md.
//! Environment: `STORYREEL_BENCH_STORY` (default `../shared/bench/story-60s.txt`),
//! `STORYREEL_BENCH_RUNS` (default 3; storyreel and ffmpeg alternate, and the summary takes
//! the median of the per-run ratios, as a shared machine's speed drifts between runs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use std::process::Stdio;

use storyreel::plan::{PlanInputs, RenderOptions, RenderPlan, make_plan};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

/// Runs `cmd` to completion and returns its wall time, CPU time and peak RSS (MB), measured
/// by the kernel for that child alone (wait4), plus its stderr.
fn measure(cmd: &mut Command) -> Result<(Duration, Duration, u64, String)> {
    let t0 = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr {
        std::io::Read::read_to_string(&mut e, &mut stderr)?;
    }
    let mut status = 0;
    // SAFETY: wait4 fills the status and rusage we own, for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall = t0.elapsed();
    if rc != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("{cmd:?} failed: {stderr}").into());
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    Ok((
        wall,
        tv(ru.ru_utime) + tv(ru.ru_stime),
        ru.ru_maxrss as u64 / 1024,
        stderr,
    ))
}

/// The CPU split the CLI reports: "cpu: x264 A s, background+captions B s, other C s".
fn parse_split(stderr: &str) -> Option<(f64, f64, f64)> {
    let line = stderr.lines().find(|l| l.contains("cpu: x264"))?;
    let nums: Vec<f64> = line
        .split("cpu: ")
        .nth(1)?
        .split(',')
        .filter_map(|part| part.split_whitespace().rev().nth(1)?.parse().ok())
        .collect();
    (nums.len() == 3).then(|| (nums[0], nums[1], nums[2]))
}

fn ass_time(ms: u64) -> String {
    let cs = ms / 10;
    format!(
        "{}:{:02}:{:02}.{:02}",
        cs / 360_000,
        cs / 6000 % 60,
        cs / 100 % 60,
        cs % 100
    )
}

/// The same pages and highlight states as storyreel's plan, as ASS events for ffmpeg.
fn ass_for(plan: &RenderPlan) -> String {
    let mut s = String::from(
        "[Script Info]\nScriptType: v4.00+\nPlayResX: 1080\nPlayResY: 1920\nWrapStyle: 2\n\n\
         [V4+ Styles]\nFormat: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding\n\
         Style: Cap,League Spartan Black,120,&H00FFFFFF,&H00FFFFFF,&H00000000,&H8C000000,1,0,0,0,100,100,0,0,1,9,4,5,0,0,0,1\n\n\
         [Events]\nFormat: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text\n",
    );
    for page in &plan.pages {
        for (i, w) in page.words.iter().enumerate() {
            let start = w.start_ms.max(page.start_ms);
            let end = page
                .words
                .get(i + 1)
                .map_or(page.end_ms, |n| n.start_ms)
                .min(page.end_ms);
            if end <= start {
                continue;
            }
            let text: Vec<String> = page
                .words
                .iter()
                .enumerate()
                .map(|(j, x)| {
                    let t = x.text.to_uppercase();
                    if i == j {
                        format!("{{\\c&H00E6FF&}}{t}{{\\c&HFFFFFF&}}")
                    } else {
                        t
                    }
                })
                .collect();
            s.push_str(&format!(
                "Dialogue: 0,{},{},Cap,,0,0,0,,{{\\pos(491,1114)}}{}\n",
                ass_time(start),
                ass_time(end),
                text.join(" ")
            ));
        }
    }
    s
}

struct Measured {
    wall: Duration,
    cpu: Duration,
    /// x264, background+captions, other (CPU seconds), as storyreel reports them.
    split: Option<(f64, f64, f64)>,
    peak_mb: u64,
}

fn bench_storyreel(audio: &Path, marks: &Path, background: &Path, out: &Path) -> Result<Measured> {
    let (wall, cpu, peak_mb, stderr) = measure(
        Command::new(env!("CARGO_BIN_EXE_storyreel"))
            .arg("render")
            .arg("--audio")
            .arg(audio)
            .arg("--marks")
            .arg(marks)
            .arg("--background")
            .arg(background)
            .args(["--start", "2", "--out"])
            .arg(out),
    )?;
    Ok(Measured {
        wall,
        cpu,
        split: parse_split(&stderr),
        peak_mb,
    })
}

fn bench_ffmpeg(plan: &RenderPlan, audio: &Path, bg: &Path, dir: &Path) -> Result<Measured> {
    let ass = dir.join("captions.ass");
    std::fs::write(&ass, ass_for(plan))?;
    let dur = format!("{:.3}", plan.frames as f64 / 30.0);
    let (wall, cpu, peak_mb, _) = measure(
        Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-ss", "2", "-stream_loop", "-1", "-i"])
            .arg(bg)
            .arg("-i")
            .arg(audio)
            .args(["-map", "0:v", "-map", "1:a", "-t", &dur, "-vf"])
            .arg(format!(
                "fps=30,crop=ih*9/16:ih,scale=1080:1920:flags=bilinear,ass={}:fontsdir=/usr/share/fonts/opentype/league-spartan",
                ass.display()
            ))
            .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"])
            .args(["-c:a", "aac", "-b:a", "128k", "-ar", "48000", "-ac", "1", "-movflags", "+faststart"])
            .arg(dir.join("ffmpeg.mp4")),
    )?;
    Ok(Measured {
        wall,
        cpu,
        split: None,
        peak_mb,
    })
}

/// Adds `raw` to a fresh library in `dir` with the CLI (as a user does) and returns the
/// prepared file and the wall time preparing took.
fn prepare(raw: &Path, dir: &Path) -> Result<(PathBuf, Duration)> {
    let _ = std::fs::remove_dir_all(dir);
    let t0 = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_storyreel"))
        .args(["backgrounds", "add", "--dir"])
        .arg(dir)
        .arg(raw)
        .stderr(Stdio::inherit())
        .output()?;
    let wall = t0.elapsed();
    if !out.status.success() {
        return Err(format!("backgrounds add {} failed", raw.display()).into());
    }
    let id = String::from_utf8(out.stdout)?.trim().to_string();
    Ok((dir.join(format!("backgrounds/{id}.mp4")), wall))
}

/// CPU time of all children waited for so far (to take differences around one child).
fn children_cpu() -> Duration {
    // SAFETY: getrusage fills the struct we own.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Renders chunk `index` of a plan over `bg` started at `start_ms`, on its own as a Lambda
/// invocation does (the background opened afresh, so decoding starts at the keyframe before
/// the chunk), with `decoder`; returns the wall time.
fn chunk_alone(
    marks: &Path,
    audio_ms: u64,
    bg: &Path,
    start_ms: u64,
    index: u32,
    decoder: storyreel::background::DecoderKind,
) -> Result<Duration> {
    use storyreel::background::{Background, VideoBackground};
    let marks = std::fs::read_to_string(marks)?;
    let plan = make_plan(&PlanInputs {
        audio_ms,
        marks_jsonl: &marks,
        title: None,
        channel: "r/storyreel",
        background: Some(storyreel::plan::BackgroundRef {
            key: bg.display().to_string(),
            start_ms,
        }),
        options: &RenderOptions::default(),
    })?;
    let captions = storyreel::plan::caption_renderer(&plan);
    let t0 = Instant::now();
    let mut video = VideoBackground::open_file(bg)?;
    video.use_decoder(decoder);
    let mut background = Background::from_video(video, start_ms);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    storyreel::render::render_chunk(
        &plan,
        index,
        &mut background,
        &captions,
        threads + threads / 2,
        &mut std::io::sink(),
        &mut |_| {},
    )?;
    Ok(t0.elapsed())
}

/// The plan storyreel made, rebuilt from the same inputs (for the ASS captions).
fn plan_for(marks: &Path, audio_ms: u64) -> Result<RenderPlan> {
    let marks = std::fs::read_to_string(marks)?;
    Ok(make_plan(&PlanInputs {
        audio_ms,
        marks_jsonl: &marks,
        title: None,
        channel: "r/storyreel",
        background: None,
        options: &RenderOptions::default(),
    })?)
}

fn main() -> Result<()> {
    // `cargo bench` passes `--bench`; there is nothing to filter.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let story = std::env::var_os("STORYREEL_BENCH_STORY")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../shared/bench/story-60s.txt"));
    let runs: usize = std::env::var("STORYREEL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = root.join("target/bench-work");
    std::fs::create_dir_all(&dir)?;

    let bg = dir.join("background-1080p30.mp4");
    if !bg.exists() {
        eprintln!(
            "bench: generating a 70 s 1920x1080 H.264 background (High, B-frames, 2 s GOP)..."
        );
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc2=s=1920x1080:r=30,noise=alls=4:allf=t")
            .args([
                "-t", "70", "-c:v", "libx264", "-preset", "fast", "-crf", "22", "-bf", "3", "-g",
                "60",
            ])
            .args(["-pix_fmt", "yuv420p"])
            .arg(&bg))?;
    }
    let bg60 = dir.join("background-1080p60-gop5s.mp4");
    if !bg60.exists() {
        eprintln!(
            "bench: generating a 30 s 1920x1080 60 fps H.264 background (2 B-frames, 5 s GOP, as screen recorders write)..."
        );
        run(Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc2=s=1920x1080:r=60,noise=alls=4:allf=t")
            .args([
                "-t",
                "30",
                "-c:v",
                "libx264",
                "-preset",
                "fast",
                "-crf",
                "22",
                "-bf",
                "2",
                "-g",
                "300",
                "-keyint_min",
                "300",
                "-sc_threshold",
                "0",
            ])
            .args(["-pix_fmt", "yuv420p"])
            .arg(&bg60))?;
    }
    eprintln!("bench: preparing both backgrounds with `storyreel backgrounds add`...");
    let mut prepared_rows = Vec::new();
    let mut prepared = Vec::new();
    for (raw, lib) in [(&bg, "library-30"), (&bg60, "library-60")] {
        let before = children_cpu();
        let (file, wall) = prepare(raw, &dir.join(lib))?;
        let cpu = children_cpu().saturating_sub(before);
        let raw_ms = storyreel::background::VideoBackground::open_file(raw)?.duration_ms();
        let info = storyreel::background::VideoBackground::open_file(&file)?.info();
        prepared_rows.push((
            raw.clone(),
            raw_ms,
            wall,
            cpu,
            info,
            std::fs::metadata(&file)?.len(),
        ));
        prepared.push(file);
    }
    let text = std::fs::read_to_string(&story)?;
    let words: Vec<&str> = text.split_whitespace().collect();
    let short = words[..words.len() / 3].join(" ");
    let mut inputs = Vec::new();
    for (name, body) in [("full", text.clone()), ("third", short)] {
        let txt = dir.join(format!("{name}.txt"));
        std::fs::write(&txt, &body)?;
        let wav = dir.join(format!("{name}.wav"));
        run(Command::new("espeak-ng")
            .args(["-v", "en-us", "-s", "165", "-w"])
            .arg(&wav)
            .arg("-f")
            .arg(&txt))?;
        let pcm = storyreel_audio::decode_file(&wav)?;
        let ms = (pcm.samples.len() as u64 * 1000).div_ceil(u64::from(pcm.sample_rate));
        let marks = dir.join(format!("{name}.marks"));
        std::fs::write(&marks, storyreel::sample::even_marks(&body, ms))?;
        inputs.push((name, wav, marks, ms));
    }

    let mut rows = Vec::new();
    for r in 0..runs {
        for (name, wav, marks, ms) in &inputs {
            let plan = plan_for(marks, *ms)?;
            if *name == "full" {
                let sr =
                    bench_storyreel(wav, marks, &bg, &dir.join(format!("storyreel-{name}.mp4")))?;
                rows.push((r, *name, "raw", *ms, plan.frames, sr, None));
            }
            let sr = bench_storyreel(
                wav,
                marks,
                &prepared[0],
                &dir.join(format!("storyreel-prepared-{name}.mp4")),
            )?;
            rows.push((r, *name, "prepared", *ms, plan.frames, sr, None));
            if *name == "full" {
                let ff = bench_ffmpeg(&plan, wav, &bg, &dir)?;
                // Every storyreel row of this run is compared with this run's ffmpeg.
                for row in rows.iter_mut().filter(|row| row.0 == r && row.1 == "full") {
                    row.6 = Some(ff.wall);
                }
                rows.push((r, *name, "ffmpeg", *ms, plan.frames, ff, None));
            }
        }
    }

    // One chunk alone, starting mid-GOP: chunk 1 (frames 300..600) of a video started at
    // 2.5 s begins at source time 12.5 s, 2.5 s after the 60 fps source's keyframe at 10 s.
    let (_, _, full_marks, full_ms) = &inputs[0];
    let mut chunk_rows = Vec::new();
    for r in 0..runs {
        for decoder in [
            storyreel::background::DecoderKind::Libavcodec,
            storyreel::background::DecoderKind::RustyH264,
        ] {
            if decoder == storyreel::background::DecoderKind::Libavcodec
                && storyreel::background::decoder::Decoder::new(decoder).is_err()
            {
                continue;
            }
            let raw = chunk_alone(full_marks, *full_ms, &bg60, 2500, 1, decoder)?;
            let prep = chunk_alone(full_marks, *full_ms, &prepared[1], 2500, 1, decoder)?;
            chunk_rows.push((r, decoder, raw, prep));
        }
    }

    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "machine: {} cores, {cpu_model}; storyreel's background decoder: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        storyreel::background::DecoderKind::from_env()
            .map_or_else(|e| format!("none ({e})"), |k| k.name().to_string())
    );
    println!();
    println!("Preparing (`storyreel backgrounds add`, once per background):");
    println!();
    println!("| source | prepared | bytes | wall s | cpu s | wall s per minute of footage |");
    println!("|---|---|---|---|---|---|");
    for (raw, raw_ms, wall, cpu, info, bytes) in &prepared_rows {
        println!(
            "| {} ({:.1} s) | {}x{} {} fps {} | {:.1} MB | {:.1} | {:.1} | {:.1} |",
            raw.file_name().unwrap_or_default().to_string_lossy(),
            *raw_ms as f64 / 1000.0,
            info.width,
            info.height,
            info.fps,
            info.codec,
            *bytes as f64 / 1e6,
            wall.as_secs_f64(),
            cpu.as_secs_f64(),
            wall.as_secs_f64() * 60_000.0 / (*raw_ms).max(1) as f64,
        );
    }
    println!();
    println!(
        "| run | narration | frames | tool | background | wall s | fps | cpu s | x264 cpu s | background+captions cpu s | non-x264 / x264 | peak RSS MB | wall vs ffmpeg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (r, name, kind, ms, frames, m, ff_wall) in &rows {
        let (tool, background) = match *kind {
            "ffmpeg" => ("ffmpeg burn-in", "raw 1920x1080"),
            "raw" => ("storyreel", "raw 1920x1080"),
            _ => ("storyreel", "prepared 608x1080"),
        };
        let (x, paint, _) = m.split.unwrap_or_default();
        // Everything the process spent that was not x264 (painting, audio, merge, I/O).
        let other = m.cpu.as_secs_f64() - x;
        let share = if m.split.is_some() {
            format!("{:.0}%", 100.0 * other / x.max(1e-9))
        } else {
            String::new()
        };
        let ratio = if *kind == "ffmpeg" {
            "1.00".to_string()
        } else {
            ff_wall.map_or(String::new(), |f| {
                format!("{:.2}", m.wall.as_secs_f64() / f.as_secs_f64())
            })
        };
        let cell = |v: f64| {
            if m.split.is_some() {
                format!("{v:.1}")
            } else {
                String::new()
            }
        };
        println!(
            "| {r} | {name} {:.1} s | {frames} | {tool} | {background} | {:.1} | {:.1} | {:.1} | {} | {} | {share} | {} | {ratio} |",
            *ms as f64 / 1000.0,
            m.wall.as_secs_f64(),
            *frames as f64 / m.wall.as_secs_f64(),
            m.cpu.as_secs_f64(),
            cell(x),
            cell(paint),
            m.peak_mb,
        );
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    let summary = |kind: &str| {
        let full = rows.iter().filter(|row| row.1 == "full" && row.2 == kind);
        let ratio = median(
            full.clone()
                .filter_map(|row| Some(row.5.wall.as_secs_f64() / row.6?.as_secs_f64()))
                .collect(),
        );
        let share = median(
            full.clone()
                .filter_map(|row| {
                    let (x, _, _) = row.5.split?;
                    Some((row.5.cpu.as_secs_f64() - x) / x.max(1e-9))
                })
                .collect(),
        );
        let peak = full.map(|row| row.5.peak_mb).max().unwrap_or(0);
        (ratio, share, peak)
    };
    println!();
    for kind in ["raw", "prepared"] {
        let (ratio, share, peak) = summary(kind);
        println!(
            "median over {runs} runs, {kind} background: storyreel wall / ffmpeg wall = {ratio:.2}; non-x264 cpu / x264 cpu = {:.0}%; peak RSS {peak} MB",
            100.0 * share
        );
    }
    println!();
    println!(
        "One 300-frame chunk alone (as a Lambda renders it), starting 2.5 s into a 5 s GOP of the 60 fps background:"
    );
    println!();
    println!(
        "| run | decoder | raw 1920x1080 60 fps, 5 s GOP: wall s | prepared 608x1080 30 fps: wall s | prepared / raw |"
    );
    println!("|---|---|---|---|---|");
    for (r, decoder, raw, prep) in &chunk_rows {
        println!(
            "| {r} | {} | {:.2} | {:.2} | {:.2} |",
            decoder.name(),
            raw.as_secs_f64(),
            prep.as_secs_f64(),
            prep.as_secs_f64() / raw.as_secs_f64()
        );
    }
    Ok(())
}
