//! `storyreel cost`: what one video costs on AWS, term by term, from the price table, the
//! deployed definition and the measured render times (or a fresh measurement: `--measure`).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::json;
use storyreel::cost::{
    self, Chunking, CostEstimate, Measured, PlannedVideo, STATED, SpeechEngine, US_EAST_1,
    VideoFacts, measure,
};

/// Options of `storyreel cost`.
#[derive(clap::Args)]
pub struct CostArgs {
    /// Seconds of narration of the video.
    #[arg(long, default_value_t = 60)]
    pub seconds: u32,
    /// Speech engine: espeak, polly-standard, polly-neural, polly-long-form or polly-generative.
    #[arg(long, default_value = "polly-neural")]
    pub engine: String,
    /// Chunks the video is cut into (instead of --chunk-frames).
    #[arg(long, conflicts_with = "chunk_frames")]
    pub chunks: Option<u32>,
    /// Frames per chunk (default: the job default, 300).
    #[arg(long)]
    pub chunk_frames: Option<u32>,
    /// Memory of render-chunk in MB (Lambda gives one vCPU per 1,769 MB).
    #[arg(long, default_value_t = cost::DEFAULT_RENDER_MEMORY_MB)]
    pub memory: u32,
    /// The story is written by the LLM from a prompt (adds tokens and the story step's wait).
    #[arg(long, overrides_with = "no_prompt")]
    pub prompt: bool,
    /// The story is given as text (the default).
    #[arg(long, overrides_with = "prompt")]
    pub no_prompt: bool,
    /// Print the estimate as JSON.
    #[arg(long)]
    pub json: bool,
    /// Also print render-chunk memory sizes side by side (chunk time, latency, cost).
    #[arg(long)]
    pub compare_memory: bool,
    /// Measure render times on this machine (a few minutes) and use them instead of the
    /// committed ones.
    #[arg(long)]
    pub measure: bool,
    /// Footage to measure with (default: a 70 s 1080p clip made with ffmpeg, as the render
    /// benchmark makes it). It is prepared first, as `backgrounds add` prepares what every
    /// library job renders, unless --raw.
    #[arg(long, requires = "measure")]
    pub background: Option<PathBuf>,
    /// Measure over the footage as it is, not its prepared form (how renders ran before the
    /// library prepared backgrounds; a job given a file still renders it raw).
    #[arg(long, requires = "measure")]
    pub raw: bool,
    /// Renders of every chunk per thread count; the fastest counts.
    #[arg(long, default_value_t = 1, requires = "measure")]
    pub repeat: u32,
    /// Write the measurement as JSON (the committed one is src/cost/measured.json).
    #[arg(long, requires = "measure")]
    pub write: Option<PathBuf>,
}

/// Runs `storyreel cost`.
pub fn cost(args: CostArgs) -> anyhow::Result<()> {
    let engine = SpeechEngine::parse(&args.engine)?;
    let chunking = match (args.chunks, args.chunk_frames) {
        (Some(n), _) => Chunking::Count(n),
        (None, Some(f)) => Chunking::Frames(f),
        (None, None) => Chunking::Frames(storyreel::plan::DEFAULT_CHUNK_FRAMES),
    };
    let video = PlannedVideo {
        seconds: args.seconds,
        engine,
        chunking,
        memory_mb: args.memory,
        prompt: args.prompt && !args.no_prompt,
    };
    // Check the video before a measurement that takes minutes.
    let committed = Measured::embedded()?;
    VideoFacts::planned(&video, &committed, storyreel::workflow::DEFINITION, &STATED)?;
    let measured = if args.measure {
        let m = run_measure(&args)?;
        if let Some(path) = &args.write {
            let text = serde_json::to_string_pretty(&m)? + "\n";
            std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        m
    } else {
        committed
    };
    let facts = VideoFacts::planned(&video, &measured, storyreel::workflow::DEFINITION, &STATED)?;
    let estimate = cost::estimate(&US_EAST_1, &STATED, &measured, &facts);
    if args.json {
        let sizes = args
            .compare_memory
            .then(|| memory_table(&video, &measured))
            .transpose()?;
        let services: std::collections::BTreeMap<&str, &str> = estimate
            .terms
            .iter()
            .map(|t| (t.service.as_str(), cost::price_source(&t.service)))
            .collect();
        let out = json!({
            "video": {
                "seconds": video.seconds,
                "engine": video.engine.name(),
                "frames": facts.frames,
                "chunks": facts.chunks.len(),
                "chunk_frames": facts.chunks.first().map_or(0, |c| c.frames),
                "render_chunk_memory_mb": video.memory_mb,
                "prompt": video.prompt,
                "narration_chars": facts.narration_chars,
                "video_bytes": facts.video_bytes,
                "transitions": facts.transitions.states,
                "lambda_requests": facts.transitions.tasks(),
            },
            "estimate": estimate,
            "sources": services,
            "prices": US_EAST_1,
            "assumptions": STATED,
            "measured": {
                "machine": measured.machine,
                "date": measured.date,
                "command": measured.command,
                "runs": measured.runs,
            },
            "memory_sizes": sizes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    print_estimate(&video, &facts, &estimate, &measured);
    if args.compare_memory {
        print_memory_table(&memory_table(&video, &measured)?);
    }
    Ok(())
}

/// Measures on this machine.
fn run_measure(args: &CostArgs) -> anyhow::Result<Measured> {
    let scratch = std::env::temp_dir().join(format!("storyreel-cost-{}", std::process::id()));
    let (background, label) = match &args.background {
        Some(p) => (p.clone(), describe_background(p)?),
        None => generated_background()?,
    };
    std::fs::create_dir_all(&scratch).with_context(|| format!("create {}", scratch.display()))?;
    let (background, label) = if args.raw {
        (background, format!("{label}; raw, as given"))
    } else {
        prepare_for_measure(&background, &label, &scratch)?
    };
    let command = std::env::args()
        .enumerate()
        .map(|(i, a)| if i == 0 { "storyreel".to_string() } else { a })
        .collect::<Vec<_>>()
        .join(" ");
    let opts = measure::MeasureOptions {
        background,
        background_label: label,
        start_ms: 2000,
        seconds: 60,
        repeat: args.repeat,
        scratch: scratch.clone(),
        command,
    };
    eprintln!(
        "measuring render-chunk on this machine: every chunk of a 60 s video, x264 1 thread on \
         1 CPU and 2 threads on 2 CPUs, {} time(s)...",
        args.repeat
    );
    let result = measure::measure(&opts, &mut |line| eprintln!("  {line}"));
    let _ = std::fs::remove_dir_all(&scratch);
    let m = result.context("measure render-chunk")?;
    for r in &m.runs {
        eprintln!(
            "x264 {} thread(s) on {} CPU(s): {:.2} ms/frame + {:.0} ms per chunk; a {}-frame chunk \
             {:.2} s (CPU {:.2} ms/frame, painting {:.2} ms/frame)",
            r.threads,
            r.cpus,
            r.wall.slope,
            r.wall.intercept,
            m.chunk_frames,
            r.chunk_ms / 1000.0,
            r.cpu_ms_per_frame,
            r.paint_cpu_ms_per_frame
        );
    }
    Ok(m)
}

/// A file's size, picture and length, for the record.
fn describe_background(path: &Path) -> anyhow::Result<String> {
    let info = storyreel::background::VideoBackground::open_file(path)?.info();
    let bytes = std::fs::metadata(path)?.len();
    let secs = info.duration_ms as f64 / 1000.0;
    Ok(format!(
        "{}: {}x{} {} fps {}, {:.1} s, {:.1} Mbit/s, started at 2 s",
        path.file_name().unwrap_or_default().to_string_lossy(),
        info.width,
        info.height,
        info.fps,
        info.codec,
        secs,
        bytes as f64 * 8.0 / secs.max(0.001) / 1e6
    ))
}

/// Prepares `raw` into `scratch` as the library would store it; returns it and its label.
fn prepare_for_measure(
    raw: &Path,
    label: &str,
    scratch: &Path,
) -> anyhow::Result<(PathBuf, String)> {
    use storyreel::prepare::{PrepareSettings, prepare_background};
    eprintln!("preparing the background as `storyreel backgrounds add` does...");
    let out = scratch.join("prepared.mp4");
    let mut video = storyreel::background::VideoBackground::open_file(raw)?;
    let info = prepare_background(
        &mut video,
        &out,
        &PrepareSettings::default(),
        &mut |_, _| {},
    )
    .with_context(|| format!("prepare {}", raw.display()))?;
    Ok((
        out,
        format!(
            "{label}; prepared as the library stores it: {}x{} {} fps H.264, an IDR every {} \
             frames, CRF {} {} ({:.1} s to prepare)",
            info.width,
            info.height,
            info.fps,
            info.keyint,
            info.crf,
            info.preset,
            info.elapsed_ms as f64 / 1000.0
        ),
    ))
}

/// The render benchmark's background, made once with ffmpeg into the temporary directory.
fn generated_background() -> anyhow::Result<(PathBuf, String)> {
    let dir = std::env::temp_dir().join("storyreel-cost");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("background-1080p30.mp4");
    if !path.exists() {
        eprintln!(
            "making a 70 s 1920x1080 H.264 background with ffmpeg (High, B-frames, 2 s GOP)..."
        );
        let tmp = dir.join(format!("background-{}.mp4", std::process::id()));
        let out = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg("testsrc2=s=1920x1080:r=30,noise=alls=4:allf=t")
            .args([
                "-t", "70", "-c:v", "libx264", "-preset", "fast", "-crf", "22",
            ])
            .args(["-bf", "3", "-g", "60", "-pix_fmt", "yuv420p"])
            .arg(&tmp)
            .output()
            .context("run ffmpeg to make a background (or give --background FILE)")?;
        if !out.status.success() {
            bail!(
                "ffmpeg could not make a background (give --background FILE): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::fs::rename(&tmp, &path)?;
    }
    let label = describe_background(&path)?;
    Ok((
        path,
        format!(
            "{label}; ffmpeg testsrc2 with temporal noise, libx264 -preset fast -crf 22 -bf 3 -g 60 \
             (as benches/render.rs makes it)"
        ),
    ))
}

/// A price as `$16.00 per 1M characters`.
fn price(t: &cost::CostTerm) -> String {
    let per = match t.per {
        1 => String::new(),
        1_000 => "1k ".into(),
        1_000_000 => "1M ".into(),
        n => format!("{n} "),
    };
    // Enough decimals to show the price exactly (at most 10), at least 2.
    let mut p = format!("{:.10}", t.price_usd);
    while p.ends_with('0') && p.len() > p.find('.').map_or(0, |d| d + 3) {
        p.pop();
    }
    format!("${p} per {per}{}", t.unit)
}

fn quantity(q: f64) -> String {
    if q == q.round() && q.abs() < 1e12 {
        format!("{q:.0}")
    } else if q >= 100.0 {
        format!("{q:.1}")
    } else {
        format!("{q:.6}")
    }
}

fn print_estimate(v: &PlannedVideo, f: &VideoFacts, e: &CostEstimate, m: &Measured) {
    let longest = f.chunks.iter().map(|c| c.frames).max().unwrap_or(0);
    let chunk_s = f.chunks.iter().map(|c| c.seconds).fold(0.0, f64::max);
    println!("Estimated cost of one {} s video", v.seconds);
    println!(
        "  narration  {}: {} characters ({} s x {} words/min / 60 x {} characters a word, space \
         included), sent once for the audio and once for the speech marks",
        v.engine.name(),
        f.narration_chars,
        v.seconds,
        STATED.words_per_minute,
        STATED.chars_per_word
    );
    println!(
        "  render     {} frames in {} chunks of up to {longest} frames; render-chunk at {} MB \
         ({:.2} vCPU): {chunk_s:.1} s per chunk",
        f.frames,
        f.chunks.len(),
        v.memory_mb,
        f64::from(v.memory_mb) / cost::MB_PER_VCPU
    );
    println!(
        "  story      {}",
        if v.prompt {
            format!("written by {} from a prompt", US_EAST_1.llm_model)
        } else {
            "given as text (no LLM)".into()
        }
    );
    println!(
        "  workflow   {} state transitions and {} Lambda requests, from statemachine/video.asl.json",
        f.transitions.states,
        f.transitions.tasks()
    );
    println!("  measured   {} on {} ({})", m.date, m.machine, m.command);
    println!(
        "  prices     {}, on-demand, without free tiers, as of {}",
        e.region, e.prices_as_of
    );
    println!();
    let w_item = e
        .terms
        .iter()
        .map(|t| t.item.len())
        .max()
        .unwrap_or(10)
        .max(10);
    println!(
        "{:<15} {:<w_item$} {:>14} {:<12} {:<34} {:>10}",
        "service", "item", "quantity", "unit", "unit price", "USD"
    );
    for t in &e.terms {
        println!(
            "{:<15} {:<w_item$} {:>14} {:<12} {:<34} {:>10.6}",
            t.service,
            t.item,
            quantity(t.quantity),
            t.unit,
            price(t),
            t.usd
        );
    }
    println!(
        "{:<15} {:<w_item$} {:>14} {:<12} {:<34} {:>10.6}",
        "total", "", "", "", "", e.total_usd
    );
    println!();
    println!("Where the quantities come from:");
    for t in &e.terms {
        if !t.basis.is_empty() {
            println!("  {} {}: {}", t.service, t.item, t.basis);
        }
    }
    println!();
    println!("Prices ({}, {}):", e.region, e.prices_as_of);
    let mut seen = Vec::new();
    for t in &e.terms {
        if !seen.contains(&t.service) {
            seen.push(t.service.clone());
            println!("  {:<15} {}", t.service, cost::price_source(&t.service));
        }
    }
    println!();
    println!(
        "Not counted: free tiers; CloudWatch Logs (a few KB of JSON logs per invocation at \
         $0.50/GB ingested: ~$0.00001 a video); X-Ray traces (Tracing: Active; $5 per 1M after \
         100,000 free a month); SSM parameter reads (standard parameters are free); retries \
         (each adds a transition, $0.000025, and the retried invocation's Lambda time)."
    );
}

/// One row of the memory comparison.
struct SizeRow {
    memory_mb: u32,
    chunk_s: f64,
    render_usd: f64,
    total_usd: f64,
}

fn memory_table(v: &PlannedVideo, m: &Measured) -> anyhow::Result<Vec<SizeRow>> {
    let mut rows = Vec::new();
    for memory_mb in [885, 1769, 2654, 3538, 5307, 7076, 10240] {
        let video = PlannedVideo { memory_mb, ..*v };
        let f = VideoFacts::planned(&video, m, storyreel::workflow::DEFINITION, &STATED)?;
        let e = cost::estimate(&US_EAST_1, &STATED, m, &f);
        let render_usd = e
            .terms
            .iter()
            .filter(|t| t.item.starts_with("render-chunk"))
            .map(|t| t.usd)
            .sum();
        rows.push(SizeRow {
            memory_mb,
            chunk_s: f.chunks.iter().map(|c| c.seconds).fold(0.0, f64::max),
            render_usd,
            total_usd: e.total_usd,
        });
    }
    Ok(rows)
}

impl serde::Serialize for SizeRow {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        json!({
            "memory_mb": self.memory_mb,
            "vcpus": f64::from(self.memory_mb) / cost::MB_PER_VCPU,
            "chunk_seconds": self.chunk_s,
            "render_chunk_usd": self.render_usd,
            "total_usd": self.total_usd,
        })
        .serialize(s)
    }
}

fn print_memory_table(rows: &[SizeRow]) {
    println!();
    println!("render-chunk memory (all chunks at once, so the render takes one chunk's time):");
    println!(
        "{:>10} {:>6} {:>14} {:>18} {:>14}",
        "memory MB", "vCPU", "chunk s", "render-chunk USD", "video USD"
    );
    for r in rows {
        println!(
            "{:>10} {:>6.2} {:>14.1} {:>18.6} {:>14.6}",
            r.memory_mb,
            f64::from(r.memory_mb) / cost::MB_PER_VCPU,
            r.chunk_s,
            r.render_usd,
            r.total_usd
        );
    }
    println!("(above 2 vCPUs extrapolated: x264 scales, the painting thread does not)");
}
