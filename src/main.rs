//! The `storyreel` command line: glue over the library's steps.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use storyreel::pipeline::{Progress, RenderRequest, render_video};
use storyreel::plan::RenderOptions;

mod cli;

#[derive(Parser)]
#[command(
    name = "storyreel",
    version,
    about = "Turns a story into a finished short vertical video"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Render narration + speech marks (+ background) into a 1080x1920 MP4 with captions.
    Render(RenderArgs),
    /// Narrate a story: audio plus word timings (Amazon Polly speech-marks format).
    Speak {
        /// The story (UTF-8 text; a first line is read as the title, as written).
        #[arg(long)]
        story: PathBuf,
        /// Engine: espeak (local, default) or polly, polly-standard, polly-neural,
        /// polly-long-form, polly-generative (Amazon Polly; standard AWS configuration).
        #[arg(long, default_value = "espeak")]
        engine: String,
        /// Voice: an espeak-ng name or language, or a Polly voice id (see `storyreel voices`).
        #[arg(long)]
        voice: Option<String>,
        /// Speaking rate in words per minute (default: the engine's).
        #[arg(long)]
        rate: Option<u32>,
        /// Narration audio to write (WAV).
        #[arg(long)]
        out_audio: PathBuf,
        /// Word timings to write (Amazon Polly speech-marks format, JSON lines).
        #[arg(long)]
        out_marks: PathBuf,
    },
    /// List voices: espeak-ng's, or Amazon Polly's (DescribeVoices).
    Voices {
        #[arg(long, default_value = "espeak")]
        engine: String,
    },
    /// Write a story from a prompt with an OpenAI-compatible LLM (OPENAI_API_KEY, OPENAI_BASE_URL).
    Story(cli::speak::StoryArgs),
    /// Make a video: runs the whole workflow (the deployed state machine) on this machine.
    Make(Box<cli::make::MakeArgs>),
    /// What one video costs on AWS, term by term (Polly, Lambda, Step Functions, S3,
    /// DynamoDB, LLM tokens), from measured render times.
    Cost(cli::cost::CostArgs),
    /// Run one step on an event, in-process (the offline twin of `sam local invoke`).
    Invoke {
        /// The step: story, speech, marks, render-chunk, merge or publish.
        step: String,
        /// The event JSON (see events/).
        #[arg(long)]
        event: PathBuf,
        /// The local store (mirrors the bucket).
        #[arg(long, default_value = "storyreel-out")]
        dir: PathBuf,
    },
    /// The local drop folder: every story file dropped into DIR becomes a video.
    Watch {
        dir: PathBuf,
        /// Output directory (the local store).
        #[arg(long, default_value = "storyreel-out")]
        out: PathBuf,
        /// Process what is there now, then exit.
        #[arg(long)]
        once: bool,
        /// Where dropped stories' videos are published (and deferred uploads are retried
        /// while watching).
        #[command(flatten)]
        publish: cli::publish::PublishArgs,
    },
    /// Publishing on this machine: retry deferred or interrupted uploads, show destinations.
    #[command(subcommand)]
    Publish(cli::publish::PublishCommand),
    /// Connected YouTube and TikTok accounts: connect, add, list, rm.
    Accounts(cli::accounts::AccountsArgs),
    #[command(flatten)]
    Cloud(cli::cloud::CloudCommands),
    /// Stand-in word timings: spread a text's words evenly over an audio file.
    #[command(hide = true)]
    EvenMarks {
        #[arg(long)]
        text: PathBuf,
        #[arg(long)]
        audio: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(clap::Args)]
struct RenderArgs {
    /// Narration audio (WAV, MP3, OGG, M4A).
    #[arg(long)]
    audio: PathBuf,
    /// Word timings in Amazon Polly speech-marks format (JSON lines).
    #[arg(long)]
    marks: PathBuf,
    /// Background footage (any video FFmpeg decodes; H.264 MP4/MOV without it); default: a
    /// generated background.
    #[arg(long)]
    background: Option<PathBuf>,
    /// Title shown as a post card while it is narrated.
    #[arg(long)]
    title: Option<String>,
    /// Name shown on the title card.
    #[arg(long, default_value = "r/storyreel")]
    channel: String,
    /// Where in the background to start, in seconds (default: random).
    #[arg(long)]
    start: Option<f64>,
    /// Frames per chunk, the unit of parallel work.
    #[arg(long, default_value_t = storyreel::plan::DEFAULT_CHUNK_FRAMES)]
    chunk_frames: u32,
    /// Chunks rendered at once (default: one per two cores; each chunk paints on one
    /// thread while x264 encodes on the others).
    #[arg(long)]
    jobs: Option<usize>,
    /// x264 preset.
    #[arg(long, default_value = "veryfast")]
    preset: String,
    /// x264 constant rate factor (0 = lossless, 51 = worst).
    #[arg(long, default_value_t = 23.0)]
    crf: f32,
    /// Quick preview: 540x960, fastest settings.
    #[arg(long)]
    draft: bool,
    /// Output MP4; the .srt, .vtt and .jpg sidecars are written beside it.
    #[arg(long)]
    out: PathBuf,
}

fn render(args: RenderArgs) -> anyhow::Result<()> {
    if let Some(s) = args.start {
        anyhow::ensure!(
            s.is_finite() && s >= 0.0,
            "invalid --start {s} (expected seconds >= 0)"
        );
    }
    let jobs = args.jobs.unwrap_or_else(storyreel::pipeline::default_jobs);
    let req = RenderRequest {
        audio: args.audio,
        marks: args.marks,
        background: args.background,
        title: args.title,
        channel: args.channel,
        start_ms: args.start.map(|s| (s * 1000.0).round() as u64),
        options: RenderOptions {
            preset: args.preset,
            crf: args.crf,
            chunk_frames: args.chunk_frames,
            draft: args.draft,
        },
        jobs,
        out: args.out,
    };
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(0)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg:>10} [{bar:40}] {pos}/{len} frames {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let started = std::time::Instant::now();
    let report = render_video(&req, &|p| match p {
        Progress::Planned { frames, chunks } => {
            bar.set_length(frames);
            bar.set_message(format!("{chunks} chunks"));
        }
        Progress::Frames { done } => bar.set_position(done),
        Progress::Merging => bar.set_message("merging"),
    })
    .with_context(|| format!("render {}", req.out.display()))?;
    bar.finish_and_clear();
    let cpu = &report.cpu;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wrote {} ({} frames, {:.1} s of video) in {:.1} s: {:.1} fps; cpu: x264 {:.1} s, \
         background+captions {:.1} s, other {:.1} s",
        report.video.display(),
        report.plan.frames,
        report.plan.duration_ms() as f64 / 1000.0,
        secs,
        report.plan.frames as f64 / secs.max(1e-9),
        cpu.x264.as_secs_f64(),
        cpu.paint.as_secs_f64(),
        cpu.other.as_secs_f64(),
    );
    eprintln!(
        "sidecars: {}, {}, {}",
        report.srt.display(),
        report.vtt.display(),
        report.thumbnail.display()
    );
    Ok(())
}

fn even_marks(
    text: &std::path::Path,
    audio: &std::path::Path,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let story =
        std::fs::read_to_string(text).with_context(|| format!("read {}", text.display()))?;
    let pcm = storyreel_audio::decode_file(audio)
        .with_context(|| format!("audio {}", audio.display()))?;
    let ms = pcm.samples.len() as u64 * 1000 / u64::from(pcm.sample_rate.max(1));
    std::fs::write(out, storyreel::sample::even_marks(&story, ms))
        .with_context(|| format!("write {}", out.display()))?;
    Ok(())
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the async runtime")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Render(a) => render(a),
        Command::EvenMarks { text, audio, out } => even_marks(&text, &audio, &out),
        Command::Speak {
            story,
            engine,
            voice,
            rate,
            out_audio,
            out_marks,
        } => runtime().and_then(|rt| {
            rt.block_on(cli::speak::speak(
                &story, &engine, voice, rate, &out_audio, &out_marks,
            ))
        }),
        Command::Voices { engine } => {
            runtime().and_then(|rt| rt.block_on(cli::speak::voices(&engine)))
        }
        Command::Story(a) => runtime().and_then(|rt| rt.block_on(cli::speak::story(a))),
        Command::Make(a) => runtime().and_then(|rt| rt.block_on(cli::make::make(*a))),
        Command::Cost(a) => cli::cost::cost(a),
        Command::Invoke { step, event, dir } => {
            runtime().and_then(|rt| rt.block_on(cli::make::invoke(&step, &event, &dir)))
        }
        Command::Watch {
            dir,
            out,
            once,
            publish,
        } => runtime().and_then(|rt| rt.block_on(cli::make::watch(&dir, &out, once, &publish))),
        Command::Publish(c) => runtime().and_then(|rt| rt.block_on(cli::publish::run(c))),
        Command::Accounts(a) => runtime().and_then(|rt| rt.block_on(cli::accounts::run(a))),
        Command::Cloud(c) => runtime().and_then(|rt| rt.block_on(cli::cloud::run(c))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
