//! Render benchmark: storyreel against ffmpeg burning the same captions into the same
//! background with the same x264 preset and CRF, measured in the same run.
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
            let sr = bench_storyreel(wav, marks, &bg, &dir.join(format!("storyreel-{name}.mp4")))?;
            let ff = if *name == "full" {
                Some(bench_ffmpeg(&plan, wav, &bg, &dir)?)
            } else {
                None
            };
            rows.push((r, *name, *ms, plan.frames, sr, ff));
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
    println!(
        "| run | narration | frames | tool | wall s | fps | cpu s | x264 cpu s | background+captions cpu s | non-x264 / x264 | peak RSS MB | wall vs ffmpeg |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (r, name, ms, frames, sr, ff) in &rows {
        let (x, paint, _) = sr.split.unwrap_or_default();
        // Everything the process spent that was not x264 (painting, audio, merge, I/O).
        let other = sr.cpu.as_secs_f64() - x;
        let ratio = ff.as_ref().map_or("".into(), |f| {
            format!("{:.2}", sr.wall.as_secs_f64() / f.wall.as_secs_f64())
        });
        println!(
            "| {r} | {name} {:.1} s | {frames} | storyreel | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0}% | {} | {ratio} |",
            *ms as f64 / 1000.0,
            sr.wall.as_secs_f64(),
            *frames as f64 / sr.wall.as_secs_f64(),
            sr.cpu.as_secs_f64(),
            x,
            paint,
            100.0 * other / x.max(1e-9),
            sr.peak_mb,
        );
        if let Some(f) = ff {
            println!(
                "| {r} | {name} {:.1} s | {frames} | ffmpeg burn-in | {:.1} | {:.1} | {:.1} | | | | {} | 1.00 |",
                *ms as f64 / 1000.0,
                f.wall.as_secs_f64(),
                *frames as f64 / f.wall.as_secs_f64(),
                f.cpu.as_secs_f64(),
                f.peak_mb,
            );
        }
    }
    let mut ratios: Vec<f64> = rows
        .iter()
        .filter_map(|(_, _, _, _, sr, ff)| {
            ff.as_ref()
                .map(|f| sr.wall.as_secs_f64() / f.wall.as_secs_f64())
        })
        .collect();
    let mut shares: Vec<f64> = rows
        .iter()
        .filter_map(|(_, _, _, _, sr, _)| {
            let (x, _, _) = sr.split?;
            Some((sr.cpu.as_secs_f64() - x) / x.max(1e-9))
        })
        .collect();
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    println!();
    println!(
        "median over {runs} runs: storyreel wall / ffmpeg wall = {:.2}; non-x264 cpu / x264 cpu = {:.0}%",
        median(&mut ratios),
        100.0 * median(&mut shares)
    );
    Ok(())
}
