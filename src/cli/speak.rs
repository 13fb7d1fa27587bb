//! `storyreel speak`, `voices` and `story`: narration and stories on their own.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use storyreel::narration::Narrators;
use storyreel::steps::VoiceOptions;

/// Narrators for `engine`: espeak-ng always; Polly from the standard AWS configuration.
pub async fn narrators(engine: &str) -> Narrators {
    let n = Narrators::local();
    if engine.starts_with("polly") {
        let conf = aws_config::load_from_env().await;
        n.with_polly(storyreel_speech::PollySpeech::new(
            aws_sdk_polly::Client::new(&conf),
        ))
    } else {
        n
    }
}

/// The voice when none is given: espeak-ng's default, or Polly's.
pub fn default_voice(engine: &str) -> String {
    if engine.starts_with("polly") {
        storyreel_speech::POLLY_DEFAULT_VOICE.to_string()
    } else {
        storyreel_speech::ESPEAK_DEFAULT_VOICE.to_string()
    }
}

/// `storyreel speak`.
pub async fn speak(
    story: &Path,
    engine: &str,
    voice: Option<String>,
    rate: Option<u32>,
    out_audio: &Path,
    out_marks: &Path,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(story).with_context(|| format!("read {}", story.display()))?;
    let narrators = narrators(engine).await;
    let options = VoiceOptions {
        engine: engine.to_string(),
        voice: voice.unwrap_or_else(|| default_voice(engine)),
        rate,
    };
    let spec = narrators.spec(&options, "speak")?;
    let narration = storyreel_speech::narrate(
        narrators.audio(&spec, "speak")?,
        narrators.marks(&spec, "speak")?,
        &text,
        &spec,
    )
    .await
    .with_context(|| format!("speak {}", story.display()))?;
    storyreel_audio::write_wav(out_audio, &narration.pcm)
        .with_context(|| format!("write {}", out_audio.display()))?;
    std::fs::write(out_marks, &narration.marks_jsonl)
        .with_context(|| format!("write {}", out_marks.display()))?;
    eprintln!(
        "wrote {} ({:.1} s) and {}",
        out_audio.display(),
        narration.pcm.duration_ms() / 1000.0,
        out_marks.display()
    );
    Ok(())
}

/// `storyreel voices`.
pub async fn voices(engine: &str) -> anyhow::Result<()> {
    use storyreel_speech::SpeechSynth;
    let list = if engine.starts_with("polly") {
        let conf = aws_config::load_from_env().await;
        let polly = storyreel_speech::PollySpeech::new(aws_sdk_polly::Client::new(&conf));
        let only = match engine {
            "polly" => None,
            e => Some(
                e.trim_start_matches("polly-")
                    .parse::<storyreel_speech::PollyEngine>()
                    .map_err(|_| anyhow::anyhow!("unknown engine {e:?} (expected espeak, polly, polly-standard, polly-neural, polly-long-form or polly-generative)"))?,
            ),
        };
        polly.voices(only).await.context("list Polly voices")?
    } else if engine == "espeak" {
        storyreel_speech::EspeakSpeech::new().voices()?
    } else {
        anyhow::bail!(
            "unknown engine {engine:?} (expected espeak or polly[-standard|-neural|-long-form|-generative])"
        );
    };
    let mut out = std::io::stdout().lock();
    for v in list {
        let line = writeln!(
            out,
            "{:<24} {:<28} {:<16} {}",
            v.identifier,
            v.name,
            v.languages.join(","),
            v.engines.join(",")
        );
        // A closed pipe (`storyreel voices | head`) is the reader's choice, not an error.
        if let Err(e) = line {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
    }
    Ok(())
}

/// Options of `storyreel story`.
#[derive(clap::Args)]
pub struct StoryArgs {
    /// What the story is about.
    #[arg(long)]
    pub prompt: String,
    /// Target narration length in seconds (Shorts allow up to 180).
    #[arg(long, default_value_t = 60)]
    pub seconds: u32,
    /// `post` (a first-person post) or `replies` (a post with replies).
    #[arg(long, default_value = "post")]
    pub style: String,
    /// Model name (default: STORYREEL_MODEL, OPENAI_MODEL, or gpt-4o-mini).
    #[arg(long)]
    pub model: Option<String>,
    /// API base URL (default: OPENAI_BASE_URL, or https://api.openai.com/v1).
    #[arg(long)]
    pub base_url: Option<String>,
    /// Titles not to repeat (one per flag).
    #[arg(long = "avoid-title")]
    pub avoid_titles: Vec<String>,
    /// Story file to write (title line, blank line, body); default: only print it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `storyreel story`: streams the story to the terminal and writes the story file.
pub async fn story(args: StoryArgs) -> anyhow::Result<()> {
    let mut config = storyreel_story::LlmConfig::from_env();
    if let Some(m) = args.model {
        config.model = m;
    }
    if let Some(u) = args.base_url {
        config.base_url = u;
    }
    let writer = storyreel_story::StoryWriter::new(config)?;
    let req = storyreel_story::StoryRequest {
        prompt: args.prompt,
        seconds: args.seconds,
        style: args.style.parse().map_err(|_| {
            anyhow::anyhow!(
                "unknown --style {:?} (expected post or replies)",
                args.style
            )
        })?,
        recent_titles: args.avoid_titles,
    };
    let mut stderr = std::io::stderr();
    let story = writer
        .write(&req, &mut |delta: &str| {
            let _ = stderr.write_all(delta.as_bytes());
            let _ = stderr.flush();
        })
        .await?;
    eprintln!();
    let text = story.to_file_text();
    match args.out {
        Some(path) => {
            std::fs::write(&path, &text).with_context(|| format!("write {}", path.display()))?;
            eprintln!("wrote {} ({} words)", path.display(), story.word_count());
        }
        None => print!("{text}"),
    }
    Ok(())
}
